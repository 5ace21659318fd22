"""Stand-in for NX-OS's `cisco.vrf` (Cisco Nexus 9000 Series NX-OS
Programmability Guide, "Python API"): `set_global_vrf(name)` puts the
sockets the script opens afterwards into VRF `name`. Checked: the name is
the VRF POAP runs in (POAP_VRF); anything else raises ValueError, since
the server would be out of reach there."""
import os

_vrf = None


def set_global_vrf(name):
    global _vrf
    want = os.environ.get("POAP_VRF", "management")
    if name != want:
        raise ValueError("vrf %r: POAP runs in vrf %r" % (name, want))
    _vrf = name


def get_global_vrf():
    return _vrf or "default"
