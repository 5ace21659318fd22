#!/usr/bin/env python3
"""Stand-in for EOS ZeroTouch's handling of the file at the option 67 URL
(EOS User Manual, "Zero Touch Provisioning"): a file that starts with `#!`
is a script, made executable and run; exit status 0 is success (ZeroTouch
then reloads the switch), anything else a failure. A file without `#!` is
taken as a startup-config, which is not what ztpd serves: refused here.

usage: zerotouch.py SCRIPT  (env: STANDIN_*; FastCli and the /mnt/flash
redirection from this directory are put in front). Exits with the script's
status.
"""
import os
import stat
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
script = sys.argv[1]
with open(script, "rb") as f:
    first = f.readline()
if not first.startswith(b"#!"):
    sys.stderr.write("ZeroTouch stand-in: %s has no #! line: EOS would apply it as a startup-config\n" % script)
    sys.exit(3)
os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)
env = dict(os.environ)
env["PATH"] = here + os.pathsep + env.get("PATH", "")
env["PYTHONPATH"] = here
rc = subprocess.call([script], env=env)
sys.stderr.write("ZeroTouch stand-in: script exited %d (%s)\n" % (rc, "success, reload" if rc == 0 else "failure"))
sys.exit(rc)
