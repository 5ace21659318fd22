#!/usr/bin/env python3
"""Stand-in for Cumulus Linux ZTP over DHCP, a closed runtime (Cumulus
Linux User Guide, "Zero Touch Provisioning - ZTP": "ZTP over DHCP",
"Inspect HTTP Headers", "Write ZTP Scripts"): the URL in option 239 is
fetched with the CUMULUS-* headers (CUMULUS-ARCH, CUMULUS-BUILD,
CUMULUS-LICENSE-INSTALLED, CUMULUS-MANUFACTURER, CUMULUS-PRODUCTNAME,
CUMULUS-SERIAL, CUMULUS-BASE-MAC, CUMULUS-MGMT-MAC, CUMULUS-VERSION,
CUMULUS-PROV-COUNT, CUMULUS-PROV-MAX); the script is run only if it
contains the string CUMULUS-AUTOPROVISIONING; it is executed as a file, so
it needs a `#!` line; exit 0 is success (ZTP is then done), anything else a
failure.

usage: ztp.py URL  (env: STANDIN_*; decode-syseeprom from this directory
and lldpcli from ../generic are put in front of PATH). Exits 5 when the
file is refused, else with the script's status.
"""
import os
import stat
import subprocess
import sys
import tempfile
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import standin  # noqa: E402

headers = {
    "CUMULUS-ARCH": "x86_64", "CUMULUS-BUILD": "5.9.1", "CUMULUS-LICENSE-INSTALLED": "0",
    "CUMULUS-MANUFACTURER": "Mellanox", "CUMULUS-PRODUCTNAME": standin.model(),
    "CUMULUS-SERIAL": standin.serial(), "CUMULUS-BASE-MAC": standin.mac().upper(),
    "CUMULUS-MGMT-MAC": standin.mac().upper(), "CUMULUS-VERSION": "5.9.1",
    "CUMULUS-PROV-COUNT": "0", "CUMULUS-PROV-MAX": "32",
}
req = urllib.request.Request(sys.argv[1], headers=headers)
with urllib.request.urlopen(req, timeout=30) as r:
    data = r.read()
if b"CUMULUS-AUTOPROVISIONING" not in data:
    sys.stderr.write("Cumulus ZTP stand-in: no CUMULUS-AUTOPROVISIONING in the script: not run\n")
    sys.exit(5)
if not data.startswith(b"#!"):
    sys.stderr.write("Cumulus ZTP stand-in: no #! line: the file cannot be executed\n")
    sys.exit(5)
fd, path = tempfile.mkstemp(prefix="ztp-", dir=standin.root())
os.write(fd, data)
os.close(fd)
os.chmod(path, stat.S_IRWXU)
env = dict(os.environ)
env["PATH"] = here + os.pathsep + os.path.join(here, "..", "generic") + os.pathsep + env.get("PATH", "")
rc = subprocess.call([path], env=env)
sys.stderr.write("Cumulus ZTP stand-in: script exited %d\n" % rc)
sys.exit(rc)
