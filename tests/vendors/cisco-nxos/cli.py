"""Stand-in for NX-OS's on-box `cli` Python module as a POAP script sees
it, a closed runtime (Cisco Nexus 9000 Series NX-OS Programmability Guide,
"Python API"; Fundamentals Configuration Guide, "Using PowerOn Auto
Provisioning"; Cisco's own POAP script, datacenter/nexus9000
nx-os/poap/poap.py, for the conventions).

Conventions checked:
- `cli(cmd)` takes one str; several commands are joined with ` ; ` in one
  call (each call is its own CLI session, so `terminal dont-ask` must come
  in the same call as the `copy` it silences); it returns the output as a
  str and raises `cli_syntax_error` on a command it does not know.
- `copy <proto>://... bootflash:<file> vrf <vrf>`: the VRF must be the one
  POAP gave in POAP_VRF; an existing destination asks to overwrite, which
  fails from a script without `terminal dont-ask` in the same call.
- `copy bootflash:<file> scheduled-config`: the file must exist; POAP
  replays it after the reload.
- `show lldp neighbors detail` needs `feature lldp` configured first
  (`configure terminal ; feature lldp`).
- `clid(cmd)` (JSON output) is not modelled and raises.
/bootflash is STANDIN_ROOT (see standin.py).
"""
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402


class cli_syntax_error(Exception):
    pass


class cmd_exec_error(Exception):
    pass


_state = os.path.join(standin.root(), ".standin-features")


def _features():
    if os.path.exists(_state):
        return set(open(_state).read().split())
    return set()


def _bootflash(name):
    name = name[len("bootflash:"):].lstrip("/")
    if not name or "/" in name:
        raise cli_syntax_error("% stand-in models bootflash:<file> only")
    return os.path.join(standin.root(), name)


def cli(cmd):
    if not isinstance(cmd, str):
        raise TypeError("cli() takes a str")
    dont_ask, config_mode, out = False, False, ""
    for part in (" ".join(p.split()) for p in cmd.split(";")):
        if not part:
            continue
        if part == "terminal dont-ask":
            dont_ask = True
        elif part in ("configure terminal", "config terminal"):
            config_mode = True
        elif part == "feature lldp":
            if not config_mode:
                raise cli_syntax_error("% Invalid command (feature lldp outside configure terminal)")
            with open(_state, "a") as f:
                f.write("lldp\n")
        elif part == "show inventory":
            out += ('NAME: "Chassis",  DESCR: "Nexus9000 chassis"\n'
                    "PID: %s      ,  VID: V02  ,  SN: %s\n" % (standin.model(), standin.serial()))
        elif part == "show lldp neighbors detail":
            if "lldp" not in _features():
                raise cmd_exec_error("% LLDP is not enabled (feature lldp)")
            for local, dev, port in standin.neighbors():
                out += ("Chassis id: 0200.0000.0001\nPort id: %s\nLocal Port id: %s\n"
                        "Port Description: %s\nSystem Name: %s\nSystem Description: Linux\n"
                        "Time remaining: 100 seconds\n\n" % (port, local.replace("Ethernet", "Eth"), port, dev))
            out += "Total entries displayed: %d\n" % len(standin.neighbors())
        elif part.startswith("copy "):
            out += _copy(part.split(), dont_ask)
        else:
            raise cli_syntax_error("% Invalid command at '^' marker: " + part)
    return out


def _copy(words, dont_ask):
    if len(words) == 5 and words[3] == "vrf":
        src, dst, vrf = words[1], words[2], words[4]
        want = os.environ.get("POAP_VRF", "management")
        if vrf != want:
            raise cmd_exec_error("copy in vrf %s: POAP runs in vrf %s" % (vrf, want))
        if not src.startswith(("http://", "tftp://", "scp://", "sftp://", "ftp://", "https://")):
            raise cli_syntax_error("% Invalid source " + src)
        if not src.startswith("http://"):
            raise cli_syntax_error("% stand-in models http:// sources only")
        path = _bootflash(dst)
        if os.path.exists(path) and not dont_ask:
            raise cmd_exec_error("Do you want to overwrite (y/n)? [n] (no terminal dont-ask)")
        with urllib.request.urlopen(src, timeout=30) as r:
            data = r.read()
        with open(path, "wb") as f:
            f.write(data)
        return "Copy complete.\n"
    if len(words) == 3 and words[2] == "scheduled-config":
        path = _bootflash(words[1])
        if not os.path.exists(path):
            raise cmd_exec_error("%% No such file %s" % words[1])
        with open(path, "rb") as s, open(os.path.join(standin.root(), "scheduled-config"), "wb") as d:
            d.write(s.read())
        return "Copy complete.\n"
    raise cli_syntax_error("% stand-in does not model: " + " ".join(words))


def clip(cmd):
    print(cli(cmd))


def clid(cmd):
    raise cli_syntax_error("clid() is not modelled by this stand-in")
