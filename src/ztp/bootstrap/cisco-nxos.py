#!/bin/env python3
#md5sum="computed by ztpd after rendering"
# ztpd POAP script for Cisco NX-OS (profile "cisco-nxos"). POAP checks the
# md5sum line above against this file without that line; ztpd fills it in.
# POAP gives the serial in POAP_SERIAL and the VRF to use in POAP_VRF
# (POAP_PID is POAP's process id, not a model). The script says hello with
# the serial, the chassis PID and the LLDP neighbours, copies the approved
# config to bootflash and makes it the scheduled-config POAP replays after
# its reload. Exit: 0 success, 1 refused (problems printed), 2 error.
import json, os, re, sys, time
import urllib.error, urllib.request
from cli import cli

SERVER = "{{ server.http }}"
SERIAL = os.environ.get("POAP_SERIAL", "")
VRF = os.environ.get("POAP_VRF", "management")
CONFIG = "poap_ztpd.cfg"
LLDP_WAIT = 60

try:
    # Sockets opened from here on use POAP's VRF (NX-OS Python API).
    from cisco.vrf import set_global_vrf
    set_global_vrf(VRF)
except ImportError:
    pass

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SERVER + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def progress(stage, percent, message=""):
    call("POST", "/ztp/v1/devices/%s/progress" % SERIAL,
         {"stage": stage, "percent": percent, "message": message})

def neighbors():
    out = []
    for block in cli("show lldp neighbors detail").split("\n\n"):
        local = re.search(r"Local Port id: (\S+)", block)
        port = re.search(r"Port id: (\S+)", block)
        name = re.search(r"System Name: (\S+)", block)
        if local and port and name:
            out.append({"local_port": local.group(1), "remote_device": name.group(1),
                        "remote_port": port.group(1)})
    return out

def main():
    if not SERIAL:
        print("ztp: POAP_SERIAL is not set")
        return 2
    model = re.search(r"PID:\s*(\S+)", cli("show inventory")).group(1)
    cli("configure terminal ; feature lldp")
    seen, waited = neighbors(), 0
    while waited < LLDP_WAIT:
        if seen:
            time.sleep(1)
            now = neighbors()
            if now == seen:
                break
            seen = now
            continue
        time.sleep(5)
        waited += 5
        seen = neighbors()
    hello = {"serial": SERIAL, "model": model, "neighbors": seen}
    while True:
        code, body = call("POST", "/ztp/v1/hello", hello)
        if code == 200:
            break
        if code == 202:
            time.sleep(10)
            continue
        for p in body.get("problems", []):
            print("ztp: %s: %s" % (p.get("kind"), p.get("fix")))
        print("ztp: refused (HTTP %d) %s" % (code, body.get("error", "")))
        return 1
    progress("downloading", 0, "config")
    try:
        cli("terminal dont-ask ; copy %s bootflash:%s vrf %s" % (body["config_url"], CONFIG, VRF))
        cli("copy bootflash:%s scheduled-config" % CONFIG)
    except Exception as e:
        progress("failed", 0, "config: %s" % e)
        print("ztp: config failed: %s" % e)
        return 2
    progress("rebooting", 90, "POAP reloads and replays the scheduled-config")
    return 0

sys.exit(main())
