#!/usr/bin/env python3
"""Stand-in for Junos ZTP's use of a DHCP offer, a closed runtime (Juniper,
"Zero Touch Provisioning" in the Junos OS Software Installation and Upgrade
Guide, section "Zero Touch Provisioning Using DHCP Options"): option 43 is
a list of vendor sub-options, each code(1) length(1) value:
  00 software image file name      01 configuration file name
  02 image file type ("symlink")   03 transfer mode: ftp, tftp or http
  04 alternate image file name     05 HTTP port
The file server is option 150 (an address), else option 66, else siaddr.
With transfer mode http, a file is fetched as http://<server>:<port>/<name>
(port 80 without sub-option 05). Refused as Junos would not proceed: a
truncated option 43, a transfer mode outside ftp/tftp/http, a non-numeric
port, neither an image nor a config named, a file that does not download.

usage: ztp.py OFFER_JSON (dhcp_relay.py's output) -> prints
{"server", "port", "config", "image"} with the fetched files written to
STANDIN_ROOT/config and STANDIN_ROOT/image.
"""
import json
import os
import socket
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402


def fail(msg):
    sys.stderr.write("Junos ZTP stand-in: %s\n" % msg)
    sys.exit(1)


offer = json.loads(open(sys.argv[1]).read())
opts = {int(k): bytes.fromhex(v) for k, v in offer["options"].items()}
if 43 not in opts:
    fail("no option 43")
sub, raw, i = {}, opts[43], 0
while i < len(raw):
    if i + 2 > len(raw) or i + 2 + raw[i + 1] > len(raw):
        fail("option 43 truncated at byte %d" % i)
    sub[raw[i]] = raw[i + 2:i + 2 + raw[i + 1]].decode("ascii")
    i += 2 + raw[i + 1]
mode = sub.get(3, "tftp")
if mode not in ("ftp", "tftp", "http"):
    fail("transfer mode %r is not ftp, tftp or http" % mode)
if 0 not in sub and 1 not in sub:
    fail("option 43 names neither an image (00) nor a config (01)")
port = sub.get(5, "80")
if not port.isdigit():
    fail("http port %r is not a number" % port)
if 150 in opts:
    server = socket.inet_ntoa(opts[150][:4])
elif 66 in opts:
    server = opts[66].decode()
else:
    fail("no file server (150, 66)")
if mode != "http":
    fail("this stand-in fetches over http only (mode %s)" % mode)
out = {"server": server, "port": int(port), "config": None, "image": None}
for code, key in ((1, "config"), (0, "image")):
    if code not in sub:
        continue
    url = "http://%s:%s/%s" % (server, port, sub[code])
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            data = r.read()
    except Exception as e:
        fail("cannot fetch %s: %s" % (url, e))
    dest = os.path.join(standin.root(), key)
    with open(dest, "wb") as f:
        f.write(data)
    out[key] = sub[code]
print(json.dumps(out))
