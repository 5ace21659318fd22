#!/usr/bin/env python3
"""Stand-in for IOS-XE ZTP's run of the option 67 file (Cisco IOS XE
Programmability Configuration Guide, "Zero-Touch Provisioning"): the file is
a Python script run in guestshell, where `import cli` gives the module that
reaches IOS (here cli.py of this directory, see its header). Exits with the
script's status.

usage: ztp.py SCRIPT   (env: STANDIN_*)
"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ)
env["PYTHONPATH"] = here
rc = subprocess.call([sys.executable, sys.argv[1]], env=env)
sys.stderr.write("ZTP stand-in: guestshell script exited %d\n" % rc)
sys.exit(rc)
