"""A minimal TFTP read (RFC 1350, octet mode, 512-byte blocks, no options),
for the stand-ins of devices that fetch their files over TFTP (Cisco
AutoInstall, Huawei). Not a vendor runtime: the plainest client a boot
loader has. `get(host, port, name)` returns the bytes or raises IOError
with the server's error message."""
import socket
import struct


def get(host, port, name, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(struct.pack("!H", 1) + name.encode() + b"\0octet\0", (host, port))
        out, expect, peer = b"", 1, None
        while True:
            data, addr = s.recvfrom(4 + 65536)
            if peer is None:
                peer = addr
            if addr != peer:
                continue
            op = struct.unpack("!H", data[:2])[0]
            if op == 5:
                code = struct.unpack("!H", data[2:4])[0]
                raise IOError("TFTP error %d for %s: %s" % (code, name, data[4:-1].decode(errors="replace")))
            if op != 3:
                raise IOError("unexpected TFTP opcode %d" % op)
            block = struct.unpack("!H", data[2:4])[0]
            s.sendto(struct.pack("!HH", 4, block), peer)
            if block == expect:
                out += data[4:]
                expect = (expect + 1) & 0xFFFF
                if len(data) - 4 < 512:
                    return out
    finally:
        s.close()
