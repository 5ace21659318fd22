"""Stand-in for NX-OS's `cisco` Python package (closed runtime): only
`cisco.vrf` is modelled, see vrf.py."""
