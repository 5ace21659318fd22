#!/usr/bin/env python3
# ztpd bootstrap for Arista EOS ZTP (profile "arista"): EOS runs this script
# from the option 67 URL. It says hello with the switch's serial, model and
# LLDP neighbours, then writes the approved config to flash.
import json, os, subprocess, sys, time, urllib.request

SERVER = "{{ server.http }}"

def eos(cmd):
    out = subprocess.check_output(["FastCli", "-p", "15", "-c", cmd + " | json"])
    return json.loads(out)

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SERVER + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def progress(serial, stage, percent, message):
    call("POST", "/ztp/v1/devices/%s/progress" % serial,
         {"stage": stage, "percent": percent, "message": message})

def fetch(url, dest):
    with urllib.request.urlopen(url, timeout=300) as r, open(dest + ".part", "wb") as f:
        f.write(r.read())
    os.rename(dest + ".part", dest)

def main():
    ver = eos("show version")
    serial, model = ver["serialNumber"], ver["modelName"]
    neighbors = []
    for n in eos("show lldp neighbors").get("lldpNeighbors", []):
        neighbors.append({"local_port": n["port"], "remote_device": n["neighborDevice"],
                          "remote_port": n["neighborPort"]})
    hello = {"serial": serial, "mac": ver.get("systemMacAddress", ""), "model": model,
             "version": ver.get("version", ""), "neighbors": neighbors}
    while True:
        code, body = call("POST", "/ztp/v1/hello", hello)
        if code == 200:
            break
        if code == 202:
            time.sleep(10)
            continue
        for p in body.get("problems", []):
            sys.stderr.write("ztp: %s: %s\n" % (p.get("kind"), p.get("fix")))
        sys.stderr.write("ztp: refused (HTTP %d): %s\n" % (code, body.get("error", "")))
        return 1
    progress(serial, "downloading", 0, "config")
    fetch(body["config_url"], "/mnt/flash/startup-config")
    if body.get("image_url"):
        progress(serial, "downloading", 40, "image")
        fetch(body["image_url"], "/mnt/flash/" + body["image_url"].rsplit("/", 1)[-1])
        with open("/mnt/flash/boot-config", "w") as f:
            f.write("SWI=flash:%s\n" % body["image_url"].rsplit("/", 1)[-1])
    if body.get("patch_url"):
        progress(serial, "downloading", 80, "patch")
        fetch(body["patch_url"], "/mnt/flash/" + body["patch_url"].rsplit("/", 1)[-1])
    progress(serial, "rebooting", 95, "EOS reloads after ZTP")
    return 0

sys.exit(main())
