#!/usr/bin/env python3
"""Stand-in for Huawei VRP's DHCP-based ZTP with an intermediate file, a
closed runtime (Huawei NetEngine 8000 / VRP V8 "ZTP" feature description,
sections "Intermediate File in the INI Format" and DHCP options; CloudEngine
S switches, Configuration Guide - Basic Configuration, "ZTP
Configuration"):
- option 66 names the file server, option 67 the intermediate file, whose
  suffix (.ini, .cfg or .py) says its format; it is fetched over TFTP;
- an INI file starts with `#sha256sum="<hex>"`, the SHA-256 of the file
  without that first line (from ";BEGIN ROUTER" to ";END ROUTER"); then
  ";BEGIN ROUTER", "[GLOBAL CONFIG]" with FILESERVER (tftp://, ftp:// or
  sftp:// only), one "[DEVICEn DESCRIPTION]" section per device (ESN, MAC
  as xxxx-xxxx-xxxx, DEVICETYPE, SYSTEM-SOFTWARE, SYSTEM-VERSION,
  SYSTEM-CONFIG, SYSTEM-PAT), and ";END ROUTER";
- the device takes the section whose ESN (or MAC) is its own and downloads
  the files it names from FILESERVER.
A key outside that list is refused here (a typo such as SYSTEM-PATCH
would be ignored by the device and the file never fetched). The TFTP file
name is the URL path without its leading "/", as curl sends it.

usage: ztp.py OFFER_JSON TFTP_PORT  (the lab's TFTP port; the box uses 69)
Prints {"intermediate", "section", "fetched": {key: name}} and writes the
files under STANDIN_ROOT.
"""
import hashlib
import json
import os
import re
import sys
from urllib.parse import urlparse

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import standin  # noqa: E402
import tftp  # noqa: E402

KEYS = {"ESN", "MAC", "DEVICETYPE", "SYSTEM-SOFTWARE", "SYSTEM-VERSION", "SYSTEM-CONFIG", "SYSTEM-PAT"}


def fail(msg):
    sys.stderr.write("Huawei ZTP stand-in: %s\n" % msg)
    sys.exit(1)


offer = json.loads(open(sys.argv[1]).read())
port = int(sys.argv[2])
opts = {int(k): bytes.fromhex(v) for k, v in offer["options"].items()}
if 66 not in opts or 67 not in opts:
    fail("option 66 and 67 are needed for ZTP with an intermediate file")
server, name = opts[66].decode(), opts[67].decode()
if not name.endswith(".ini"):
    fail("intermediate file %r: this stand-in reads the .ini format only" % name)
try:
    text = tftp.get(server, port, name).decode("ascii")
except IOError as e:
    fail("cannot fetch the intermediate file: %s" % e)
first, _, rest = text.partition("\n")
m = re.fullmatch(r'#sha256sum="([0-9a-f]{64})"', first.strip())
if not m:
    fail("first line is not #sha256sum=\"<64 hex>\": %r" % first)
if hashlib.sha256(rest.encode()).hexdigest() != m.group(1):
    fail("SHA-256 mismatch")
lines = [l.strip() for l in rest.splitlines()]
body = [l for l in lines if l]
if body[0] != ";BEGIN ROUTER" or body[-1] != ";END ROUTER":
    fail("file must run from ;BEGIN ROUTER to ;END ROUTER")
sections, current = {}, None
for l in body[1:-1]:
    if l.startswith("["):
        if not re.fullmatch(r"\[(GLOBAL CONFIG|DEVICE\d+ DESCRIPTION)\]", l):
            fail("unknown section %s" % l)
        current = l[1:-1]
        if current in sections:
            fail("section %s twice" % l)
        sections[current] = {}
        continue
    if current is None or "=" not in l:
        fail("line outside a section or without '=': %r" % l)
    k, v = l.split("=", 1)
    if current == "GLOBAL CONFIG":
        if k != "FILESERVER":
            fail("unknown global key %s" % k)
    elif k not in KEYS:
        fail("unknown device key %s" % k)
    sections[current][k] = v
fs = sections.get("GLOBAL CONFIG", {}).get("FILESERVER")
if not fs:
    fail("no FILESERVER")
url = urlparse(fs)
if url.scheme not in ("tftp", "ftp", "sftp"):
    fail("FILESERVER %r: files come over tftp, ftp or sftp only" % fs)
if url.scheme != "tftp":
    fail("this stand-in fetches over tftp only")
mine = standin.mac().replace(":", "")
mine = "%s-%s-%s" % (mine[0:4], mine[4:8], mine[8:12])
chosen = None
for sec, kv in sections.items():
    if sec == "GLOBAL CONFIG":
        continue
    if "MAC" in kv and not re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}", kv["MAC"]):
        fail("%s: MAC %r is not xxxx-xxxx-xxxx" % (sec, kv["MAC"]))
    if kv.get("ESN") == standin.serial() or kv.get("MAC") == mine:
        chosen = sec
        break
if chosen is None:
    fail("no section for ESN %s / MAC %s" % (standin.serial(), mine))
fetched = {}
base = url.path.strip("/")
for key in ("SYSTEM-CONFIG", "SYSTEM-SOFTWARE", "SYSTEM-PAT"):
    f = sections[chosen].get(key)
    if not f:
        continue
    path = "%s/%s" % (base, f) if base else f
    try:
        data = tftp.get(url.hostname, port, path)
    except IOError as e:
        fail("cannot fetch %s: %s" % (f, e))
    with open(os.path.join(standin.root(), key), "wb") as out:
        out.write(data)
    fetched[key] = f
print(json.dumps({"intermediate": name, "section": chosen, "fetched": fetched}))
