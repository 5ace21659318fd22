"""Stand-in for the `cli` Python module of Cisco IOS-XE's guestshell, a
closed runtime (Cisco IOS XE Programmability Configuration Guide, "Python
API" and "Zero-Touch Provisioning").

Calling conventions checked, as that guide states them:
- `execute(command)` / `executep(command)`: one EXEC command, a str; no `;`
  and no newline in it (raises ValueError, as the guide says to loop over
  a list instead).
- `configure(configuration)` / `configurep(configuration)`: a str of
  commands separated by newlines, or a list of str; returns a list of
  results. Any other type raises TypeError.
- `cli(command)` / `clip(command)`: one or more commands separated by ` ; `.
- A command this stand-in does not model raises CLISyntaxError, so the
  script cannot lean on one.

Box behaviour modelled: LLDP is off until `lldp run` is configured (IOS-XE's
default), `copy <url> <file>` asks "Destination filename [...]?" and so
fails from a script unless `file prompt quiet` is configured, `copy`
fetches http:// URLs into STANDIN_ROOT (flash:, running-config,
startup-config), and `reload` is refused (it would kill the guestshell that
runs the script). Identity and neighbours come from STANDIN_* (standin.py).
"""
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402


class CLISyntaxError(Exception):
    pass


class CLITimeoutError(Exception):
    pass


class ConfigResult(object):
    def __init__(self, line):
        self.success = True
        self.command = line
        self.line = line
        self.output = ""
        self.notes = None


_config = set()
_state = os.path.join(standin.root(), ".standin-config")
if os.path.exists(_state):
    with open(_state) as f:
        _config.update(l.strip() for l in f if l.strip())


def _save():
    with open(_state, "w") as f:
        f.write("\n".join(sorted(_config)) + "\n")


def _flash(name):
    return os.path.join(standin.root(), name)


def _exec_one(cmd):
    cmd = " ".join(cmd.split())
    if cmd == "show license udi":
        return "UDI: PID:%s,SN:%s\n" % (standin.model(), standin.serial())
    if cmd == "show version":
        return ("Cisco IOS XE Software, Version 17.09.04a\ncisco %s (X86) processor\n"
                "System Serial Number : %s\n" % (standin.model(), standin.serial()))
    if cmd == "show lldp neighbors detail":
        if "lldp run" not in _config:
            return "% LLDP is not enabled\n"
        out = ""
        for local, dev, port in standin.neighbors():
            short = local.replace("GigabitEthernet", "Gi").replace("TenGigabitEthernet", "Te")
            out += ("------------------------------------------------\n"
                    "Local Intf: %s\nChassis id: 0200.0000.0001\nPort id: %s\n"
                    "Port Description: %s\nSystem Name: %s\n\nSystem Description: \nLinux\n\n"
                    "Time remaining: 112 seconds\n" % (short, port, port, dev))
        return out + "\nTotal entries displayed: %d\n" % len(standin.neighbors())
    if cmd.startswith("copy "):
        parts = cmd.split()
        if len(parts) != 3:
            raise CLISyntaxError("% Invalid input: " + cmd)
        src, dst = parts[1], parts[2]
        if "file prompt quiet" not in _config:
            raise CLITimeoutError("copy waits at 'Destination filename [%s]?'" % dst)
        if src == "running-config" and dst == "startup-config":
            data = open(_flash("running-config"), "rb").read()
        elif src.startswith("http://"):
            with urllib.request.urlopen(src, timeout=30) as r:
                data = r.read()
        else:
            raise CLISyntaxError("% stand-in models copy from http:// or running-config only: " + cmd)
        if dst in ("running-config", "startup-config"):
            name = dst
        elif dst.startswith("flash:"):
            name = dst[len("flash:"):].lstrip("/")
        else:
            raise CLISyntaxError("% Invalid destination: " + dst)
        with open(_flash(name), "wb") as f:
            f.write(data)
        return "%d bytes copied\n" % len(data)
    if cmd.startswith("reload"):
        raise CLISyntaxError("reload from guestshell is not modelled: it ends the guestshell running the script")
    raise CLISyntaxError("% Invalid input detected: " + cmd)


def execute(command):
    if not isinstance(command, str):
        raise TypeError("execute() takes one command as a str")
    if ";" in command or "\n" in command:
        raise ValueError("execute() runs a single EXEC command: no ';' or newline")
    return _exec_one(command)


def executep(command):
    print(execute(command))


_CONFIG_OK = ("lldp run", "file prompt quiet", "hostname ", "end", "ip http client source-interface ")


def configure(configuration):
    if isinstance(configuration, str):
        lines = configuration.split("\n")
    elif isinstance(configuration, list) and all(isinstance(l, str) for l in configuration):
        lines = configuration
    else:
        raise TypeError("configure() takes a str (newline-separated) or a list of str")
    results = []
    for line in (l.strip() for l in lines):
        if not line:
            continue
        if not any(line == ok or line.startswith(ok) for ok in _CONFIG_OK if ok.endswith(" ")) and line not in _CONFIG_OK:
            raise CLISyntaxError("% stand-in does not model configuration line: " + line)
        _config.add(line)
        results.append(ConfigResult(line))
    _save()
    return results


def configurep(configuration):
    for r in configure(configuration):
        print("Line 1 SUCCESS: %s" % r.line)


def cli(command):
    if not isinstance(command, str):
        raise TypeError("cli() takes a str")
    out = ""
    for part in command.split(" ; "):
        out += _exec_one(part)
    return out


def clip(command):
    print(cli(command))
