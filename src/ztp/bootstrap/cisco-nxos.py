#!/bin/env python
#md5sum="computed by ztpd after rendering"
# ztpd POAP script for Cisco NX-OS (profile "cisco-nxos"). POAP checks the
# md5sum line above against this file without that line; ztpd fills it in.
import json, os, sys, time
from cli import cli

SERVER = "{{ server.http }}"
SERIAL = os.environ.get("POAP_SERIAL_NUMBER", "")

def call(method, path, body=None):
    data = json.dumps(body) if body is not None else ""
    out = cli("terminal dont-ask ; run bash curl -s -o /bootflash/poap.out -w '%%{http_code}' -X %s "
              "-H 'Content-Type: application/json' --data '%s' %s%s" % (method, data, SERVER, path))
    code = int(out.strip()[-3:])
    try:
        body = json.load(open("/bootflash/poap.out"))
    except Exception:
        body = {}
    return code, body

def main():
    hello = {"serial": SERIAL, "model": os.environ.get("POAP_PID", ""), "neighbors": []}
    while True:
        code, body = call("POST", "/ztp/v1/hello", hello)
        if code == 200:
            break
        if code == 202:
            time.sleep(10)
            continue
        for p in body.get("problems", []):
            print("ztp: %s: %s" % (p.get("kind"), p.get("fix")))
        return 1
    cli("copy %s bootflash:poap_replay.cfg vrf management" % body["config_url"])
    cli("copy bootflash:poap_replay.cfg scheduled-config")
    call("POST", "/ztp/v1/devices/%s/progress" % SERIAL, {"stage": "rebooting", "percent": 90})
    return 0

sys.exit(main())
