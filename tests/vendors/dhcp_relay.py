#!/usr/bin/env python3
"""A DHCPDISCOVER sent as a relay agent would send it, for tests/vendors.rs.

Not a vendor runtime: this is the wire, so the vendor stand-ins can read the
options ztpd really sends. The request carries giaddr (the relay's address,
where ztpd answers, on port 67) and the identity options a device of the
profile sends (60, 61, 77, 124, 125 as given). The OFFER's options are
printed as JSON: {"yiaddr": ..., "file": ..., "options": {code: hex}}.

usage: dhcp_relay.py SERVER_HOST:PORT GIADDR MAC [CODE=HEX ...]
Binding GIADDR:67 needs root (or CAP_NET_BIND_SERVICE); exit 77 without it.
"""
import json
import os
import socket
import struct
import sys


def main():
    server, giaddr, mac = sys.argv[1], sys.argv[2], sys.argv[3]
    host, port = server.rsplit(":", 1)
    extra = []
    for a in sys.argv[4:]:
        code, hexval = a.split("=", 1)
        extra.append((int(code), bytes.fromhex(hexval)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((giaddr, 67))
    except PermissionError:
        print("cannot bind %s:67 (needs root)" % giaddr, file=sys.stderr)
        return 77
    sock.settimeout(5)
    xid = int.from_bytes(os.urandom(4), "big")
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0,
                      b"\0" * 4, b"\0" * 4, b"\0" * 4, socket.inet_aton(giaddr),
                      chaddr, b"", b"")
    pkt += b"\x63\x82\x53\x63" + bytes([53, 1, 1])
    # Parameter request list as a switch's boot loader sends it.
    prl = bytes([1, 3, 6, 12, 15, 28, 42, 43, 66, 67, 125, 150, 239, 148, 114])
    pkt += bytes([55, len(prl)]) + prl
    for code, val in extra:
        pkt += bytes([code, len(val)]) + val
    pkt += b"\xff"
    for _ in range(3):
        sock.sendto(pkt, (host, int(port)))
        try:
            while True:
                data, _ = sock.recvfrom(4096)
                if len(data) > 240 and struct.unpack("!I", data[4:8])[0] == xid:
                    break
            break
        except socket.timeout:
            continue
    else:
        print("no reply from %s" % server, file=sys.stderr)
        return 1
    yiaddr = socket.inet_ntoa(data[16:20])
    file_field = data[108:236].split(b"\0", 1)[0].decode("latin-1")
    opts = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, n = data[i], data[i + 1]
        opts.setdefault(str(code), "")
        opts[str(code)] += data[i + 2:i + 2 + n].hex()  # RFC 3396 concatenation
        i += 2 + n
    print(json.dumps({"yiaddr": yiaddr, "file": file_field, "options": opts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
