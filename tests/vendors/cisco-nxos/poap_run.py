#!/usr/bin/env python3
"""Stand-in for NX-OS POAP's handling of the script it downloaded (a closed
runtime; Cisco Nexus 9000 Series NX-OS Fundamentals Configuration Guide,
"Using PowerOn Auto Provisioning", and the header of Cisco's poap.py in
datacenter/nexus9000): the script must carry a `#md5sum="<hex>"` line equal
to the MD5 of the script with every line starting `#md5sum` removed (what
`sed '/^#md5sum/d'` leaves), else POAP refuses to run it. It is then run
with POAP's environment (POAP_SERIAL, POAP_PID = the POAP process id,
POAP_VRF, POAP_PHASE, POAP_INTF, POAP_MAC) and this directory's `cli` and
`cisco.vrf` modules; exit 0 is success (POAP reloads and replays
scheduled-config), non-zero a failure (POAP starts over).

usage: poap_run.py SCRIPT   (env: STANDIN_*). Exits 4 on an md5 mismatch,
else with the script's status.
"""
import hashlib
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
script = sys.argv[1]
data = open(script, "rb").read()
lines = data.splitlines(True)
if not lines or not lines[0].startswith(b"#!"):
    sys.stderr.write("POAP stand-in: no #! line\n")
    sys.exit(4)
given = [l for l in lines if l.startswith(b"#md5sum")]
m = re.match(rb'#md5sum="([0-9a-f]{32})"', given[0]) if given else None
if not m:
    sys.stderr.write("POAP stand-in: no #md5sum=\"...\" line\n")
    sys.exit(4)
want = hashlib.md5(b"".join(l for l in lines if not l.startswith(b"#md5sum"))).hexdigest()
if m.group(1).decode() != want:
    sys.stderr.write("POAP stand-in: md5 mismatch: script says %s, computed %s\n" % (m.group(1).decode(), want))
    sys.exit(4)
env = dict(os.environ)
env.update({"PYTHONPATH": here, "POAP_SERIAL": standin.serial(), "POAP_PID": str(os.getpid()),
            "POAP_VRF": "management", "POAP_PHASE": "DHCP", "POAP_INTF": "mgmt0",
            "POAP_MAC": standin.mac().replace(":", "").upper()})
rc = subprocess.call([sys.executable, script], env=env)
sys.stderr.write("POAP stand-in: script exited %d\n" % rc)
sys.exit(rc)
