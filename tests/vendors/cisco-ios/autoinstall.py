#!/usr/bin/env python3
"""Stand-in for Cisco IOS AutoInstall over DHCP and TFTP, a closed runtime
(Cisco IOS Configuration Fundamentals Configuration Guide, "Using
AutoInstall to Remotely Configure Cisco Networking Devices"): the TFTP
server is option 150 (else 66); the network-wide file is `network-confg`
(option 67 may name it); it is applied as configuration, and the device
learns its host name from the option 12 of the offer or, failing that,
from the `ip host <name> <address>` line carrying its own address; it then
fetches `<hostname>-confg`. Checked: network-confg parses as IOS
configuration lines this flow uses (`ip host NAME A.B.C.D`, `!` comments,
`end`); a host name is found; the host file downloads.

usage: autoinstall.py OFFER_JSON TFTP_PORT (the lab's port; the box uses
69). Prints {"hostname", "network_confg", "host_file"} and writes the host
file to STANDIN_ROOT/startup-config.
"""
import json
import os
import re
import socket
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
import standin  # noqa: E402
import tftp  # noqa: E402


def fail(msg):
    sys.stderr.write("AutoInstall stand-in: %s\n" % msg)
    sys.exit(1)


offer = json.loads(open(sys.argv[1]).read())
port = int(sys.argv[2])
opts = {int(k): bytes.fromhex(v) for k, v in offer["options"].items()}
if 150 in opts:
    server = socket.inet_ntoa(opts[150][:4])
elif 66 in opts:
    server = opts[66].decode()
else:
    fail("no TFTP server (150, 66)")
network_file = opts.get(67, b"network-confg").decode() or "network-confg"
try:
    net = tftp.get(server, port, network_file).decode("ascii")
except IOError as e:
    fail("cannot fetch %s: %s" % (network_file, e))
hosts = {}
for line in net.splitlines():
    line = line.strip()
    if not line or line.startswith("!") or line == "end":
        continue
    m = re.fullmatch(r"ip host (\S+) (\d+\.\d+\.\d+\.\d+)", line)
    if not m:
        fail("network-confg line IOS would not take here: %r" % line)
    hosts[m.group(2)] = m.group(1)
hostname = opts[12].decode() if 12 in opts else hosts.get(offer["yiaddr"])
if not hostname:
    fail("no host name: no option 12 and no ip host line for %s" % offer["yiaddr"])
if 12 in opts and hosts.get(offer["yiaddr"], hostname) != hostname:
    fail("option 12 says %s, network-confg says %s" % (hostname, hosts[offer["yiaddr"]]))
host_file = "%s-confg" % hostname
try:
    cfg = tftp.get(server, port, host_file)
except IOError as e:
    fail("cannot fetch %s: %s" % (host_file, e))
with open(os.path.join(standin.root(), "startup-config"), "wb") as f:
    f.write(cfg)
print(json.dumps({"hostname": hostname, "network_confg": network_file, "host_file": host_file}))
