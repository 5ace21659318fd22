"""A fleet of simulated LLDP agents for benches/snmp_poll_bench.sh.

Reads one real walk of LLDP-MIB (net-snmp `snmpwalk -On -Oe -Ot -Ox` of an
snmpd with lldpd as its AgentX subagent) and writes, for N devices:
  - plans/bench.toml: spines (roots) and leaves, every leaf cabled swp49 and
    swp50 to a pair of spines (48 leaves per pair), each device at its own
    127.x address, the site's [snmp] community;
  - one snmpsim data file per device (`data/<community>/<transport id>.snmprec`,
    snmpsim's per-endpoint selection), built from the walk's rows: its
    scalars, one copy of a port row per local port and one copy of a
    neighbour row per planned neighbour, with names, ports and chassis ids
    of this fabric;
  - endpoints-<k>: the agent addresses served by simulator process k;
  - snmpd/<i>.conf: the same data as net-snmp `override` lines for one
    snmpd of its own per device (the bench's default simulator);
  - hellos.json: what each device's ZTP agent says (serial, model, neighbours).

    python3 fleet.py WALK OUT N COMMUNITY PROCESSES
"""

import json
import os
import re
import sys

LLDP = (1, 0, 8802, 1, 1, 2, 1)
# Tables indexed by a local port number (lldpStatsTxPort, lldpStatsRxPort,
# lldpLocPort, and lldpd's 802.3 and 802.1 extensions).
PORT_TABLES = [LLDP + t for t in [(2, 6, 1), (2, 7, 1), (3, 7, 1),
                                  (5, 4623, 1, 2, 1, 1), (5, 4623, 1, 2, 3, 1),
                                  (5, 32962, 1, 2, 1, 1)]]
# Tables indexed by TimeMark.LocalPortNum.Index (a neighbour).
REM_TABLES = [LLDP + t for t in [(4, 1, 1), (4, 2, 1), (5, 4623, 1, 3, 1, 1),
                                 (5, 4623, 1, 3, 3, 1), (5, 32962, 1, 3, 1, 1)]]
LOC_PORT = LLDP + (3, 7, 1)
REM = LLDP + (4, 1, 1)
LOC_CHASSIS, LOC_NAME = LLDP + (3, 2, 0), LLDP + (3, 3, 0)
TAGS = {"INTEGER": "2", "Hex-STRING": "4x", "STRING": "4", "Gauge32": "66",
        "Counter32": "65", "Timeticks": "67", "OID": "6", "IpAddress": "64"}


def parse_walk(text):
    """[(arcs, tag, value)] from `snmpwalk -On -Oe -Ot -Ox` output."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\.?([\d.]+) = (?:(\S+): ?)?(.*)$", line)
        if not m:
            if rows and rows[-1][1] == "4x":  # a long hex string goes on
                rows[-1] = (rows[-1][0], "4x", rows[-1][2] + line.replace(" ", ""))
            continue
        arcs = tuple(int(a) for a in m.group(1).split("."))
        # `-Ot` prints TimeTicks as a bare number, without a type.
        kind, value = m.group(2) or "Timeticks", m.group(3).strip()
        if kind not in TAGS:
            raise SystemExit(f"walk line {line!r}: type {kind} not known")
        tag = TAGS[kind]
        if tag == "4x":
            value = value.replace(" ", "")
        elif tag == "4":  # a printable string: keep it as text
            value = value.strip('"')
        elif tag == "6":
            value = value.lstrip(".")
        rows.append((arcs, tag, value))
    return rows


def under(arcs, tables):
    for t in tables:
        if arcs[:len(t)] == t:
            return t
    return None


# snmprec tags as net-snmp's `override` types (Gauge32 is its "unsigned").
OVERRIDE = {"2": "integer", "4": "octet_str", "4x": "octet_str", "6": "object_id",
            "64": "ipaddress", "65": "counter", "66": "unsigned", "67": "timeticks"}


def override(arcs, tag, value):
    """One snmpd.conf `override` line serving this value at this OID."""
    if tag == "4":
        value = "0x" + hexs(value) if value else '""'
    elif tag == "4x":
        value = "0x" + value if value else '""'
    elif tag == "6":
        value = "." + value
    return f"override .{'.'.join(map(str, arcs))} {OVERRIDE[tag]} {value}"


def hexs(s):
    return s.encode().hex()


def mac(i):
    return f"02005e{i >> 16 & 255:02x}{i >> 8 & 255:02x}{i & 255:02x}"


def fabric(n):
    """(devices, links): 2 spines per 48 leaves; names, serials, ports."""
    spines = 2 * -(-n // 50)
    leaves = n - spines
    devices = []
    for s in range(spines):
        devices.append(dict(name=f"spine{s}", model="spine", serial=f"SN-SPINE{s}",
                            ports=48, root=True))
    for i in range(leaves):
        devices.append(dict(name=f"leaf{i}", model="leaf", serial=f"SN-LEAF{i}",
                            ports=52, root=False))
    links = []
    for i in range(leaves):
        p, k = i // 48, i % 48 + 1
        links.append((f"spine{2 * p}", f"swp{k}", f"leaf{i}", "swp49"))
        links.append((f"spine{2 * p + 1}", f"swp{k}", f"leaf{i}", "swp50"))
    return devices, links


def main():
    walk, out, n, community, procs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    rows = parse_walk(open(walk).read())
    ports = sorted({a[-1] for a, _, _ in rows if a[:len(LOC_PORT) + 1] == LOC_PORT + (3,)})
    rems = sorted({a[len(REM) + 1:len(REM) + 4] for a, _, _ in rows if a[:len(REM) + 1] == REM + (9,)})
    if not ports or not rems:
        raise SystemExit(f"{walk}: no lldpLocPortTable or lldpRemTable rows (did lldpd see its neighbour?)")
    port0, rem0 = ports[0], rems[0]
    scalars = [r for r in rows if not under(r[0], PORT_TABLES + REM_TABLES)]
    port_rows = [r for r in rows if (t := under(r[0], PORT_TABLES)) and r[0][len(t) + 1:] == (port0,)]
    rem_rows = [r for r in rows if (t := under(r[0], REM_TABLES)) and r[0][len(t) + 1:len(t) + 4] == rem0]

    devices, links = fabric(n)
    index = {d["name"]: i for i, d in enumerate(devices)}
    peers = {d["name"]: [] for d in devices}
    for a, ap, b, bp in links:
        peers[a].append((ap, b, bp))
        peers[b].append((bp, a, ap))

    os.makedirs(f"{out}/plans", exist_ok=True)
    plan = ['[site]\nname = "bench"\nserver_ip = "127.0.0.1"\n',
            f'[snmp]\nversion = "2c"\ncommunity = "{community}"\n',
            '[models.spine]\nvendor = "generic"\nmatch = "SIM-SPINE"\nports = ["swp1-48"]\n',
            '[models.leaf]\nvendor = "generic"\nmatch = "SIM-LEAF"\nports = ["swp1-52"]\n']
    endpoints = [[] for _ in range(procs)]
    hellos = []
    for i, d in enumerate(devices):
        ip = f"127.10.{i // 200}.{i % 200 + 1}"
        role = 'role = "root"\n' if d["root"] else ""
        plan.append(f'[[devices]]\nname = "{d["name"]}"\nmodel = "{d["model"]}"\n'
                    f'serial = "{d["serial"]}"\nip = "{ip}"\n{role}')
        k = i % procs
        transport = f"1.3.6.1.6.1.1.{len(endpoints[k])}"
        endpoints[k].append(f"{ip}:161")
        lines = []
        for arcs, tag, value in scalars:
            if arcs == LOC_CHASSIS:
                tag, value = "4x", mac(i)
            elif arcs == LOC_NAME:
                tag, value = "4x", hexs(d["name"])
            lines.append((arcs, tag, value))
        for p in range(1, d["ports"] + 1):
            for arcs, tag, value in port_rows:
                t = under(arcs, PORT_TABLES)
                col = arcs[len(t)]
                if t == LOC_PORT and col in (3, 4):
                    tag, value = "4x", hexs(f"swp{p}")
                lines.append((t + (col, p), tag, value))
        for j, (local, peer, peer_port) in enumerate(sorted(peers[d["name"]], key=lambda x: int(x[0][3:]))):
            p = int(local[3:])
            for arcs, tag, value in rem_rows:
                t = under(arcs, REM_TABLES)
                col = arcs[len(t)]
                if t == REM and col == 5:
                    tag, value = "4x", mac(index[peer])
                elif t == REM and col in (7, 8):
                    tag, value = "4x", hexs(peer_port)
                elif t == REM and col == 9:
                    tag, value = "4x", hexs(peer)
                lines.append((t + (col, rem0[0], p, j + 1) + arcs[len(t) + 4:], tag, value))
        lines.sort(key=lambda r: r[0])
        os.makedirs(f"{out}/snmpd", exist_ok=True)
        with open(f"{out}/snmpd/{i}.conf", "w") as f:
            f.write(f"agentAddress udp:{ip}:161\nrocommunity {community} 127.0.0.0/8\n"
                    "dontLogTCPWrappersConnects yes\n")
            f.write("\n".join(override(*r) for r in lines) + "\n")
        os.makedirs(f"{out}/data-{k}/{community}", exist_ok=True)
        with open(f"{out}/data-{k}/{community}/{transport}.snmprec", "w") as f:
            for arcs, tag, value in lines:
                f.write(f"{'.'.join(map(str, arcs))}|{tag}|{value}\n")
        hellos.append({"serial": d["serial"], "model": "SIM-" + d["model"].upper(),
                       "neighbors": [{"local_port": l, "remote_device": p, "remote_port": pp}
                                     for l, p, pp in peers[d["name"]]]})
    for a, ap, b, bp in links:
        plan.append(f'[[links]]\na = "{a}:{ap}"\nb = "{b}:{bp}"\n')
    open(f"{out}/plans/bench.toml", "w").write("\n".join(plan))
    for k, eps in enumerate(endpoints):
        open(f"{out}/endpoints-{k}", "w").write("\n".join(eps) + "\n")
    json.dump(hellos, open(f"{out}/hellos.json", "w"))
    print(f"{len(devices)} devices ({sum(d['root'] for d in devices)} spines), {len(links)} links; "
          f"template: {len(scalars)} scalar, {len(port_rows)} port and {len(rem_rows)} neighbour rows "
          f"from the walk")


main()
