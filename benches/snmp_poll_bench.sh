#!/bin/bash
# SNMP polling of N deployed devices (default 1,000) by one ztpd (issue 22:
# one round <= 5 s, and <= 5 % of one core at a 60 s interval).
#
#   benches/snmp_poll_bench.sh [N]
#   ROUNDS=3 INTERVAL=30s ZTPD=target/release/ztpd benches/snmp_poll_bench.sh 1000
#   SIM=snmpsim SIM_PROCS=2 benches/snmp_poll_bench.sh 1000   # the Python simulator
#
# 1. Records a real LLDP-MIB walk: three "switches" in network namespaces run
#    lldpd; one runs it as the AgentX subagent of net-snmp's snmpd, and
#    snmpwalk reads its LLDP-MIB.
# 2. benches/snmp/fleet.py turns that walk into each device's rows of a
#    generated fabric (spines and leaves, names, ports and chassis ids of the
#    plan), and the plan, each device at its own 127.x address.
# 3. In a namespace of its own, every device's agent answers on UDP 161 of
#    its address and ztpd polls them every INTERVAL, after every device said
#    hello and reported `deployed`. The agents (SIM):
#    - snmpd (default): one net-snmp snmpd per device, as each switch has an
#      agent of its own, serving its rows as `override` lines (C, ~0.1 ms a
#      request);
#    - snmpsim: SIM_PROCS snmpsim processes (Python) serve every agent from
#      .snmprec files. On 2 vCPUs they take both cores for most of a round
#      (~1 ms per value), so the round measures the simulator as much as ztpd.
# 4. Prints what ztpd says: each round's duration (the gauge
#    ztpd_topology_poll_round_milliseconds, read after each round), ztpd's CPU
#    (utime + stime from /proc) over ROUNDS rounds, the CPU per round, and
#    that CPU as a share of one core at a 60 s interval (CPU per round / 60 s:
#    the short interval only makes the rounds come faster); errors are
#    devices not read (snmp.reachable false) and devices with drift (the
#    simulated cabling is the plan's, so any drift is a misread).
#
# Needs root (namespaces), lldpd, snmpd, snmp (snmpwalk), curl, python3 (with
# venv for SIM=snmpsim). snmpsim goes in a venv of its own (SNMPSIM_VENV, default
# /tmp/ztpd-bench-snmpsim: the simulator runs as `nobody`, which must be able to
# read it). Pinned: snmpsim-lextudio 1.1.1 on pysnmp-lextudio 6.3.0; snmpsim
# 1.2.2 on pysnmp 7.1 does not work (its handlers use the names pysnmp 7
# renamed: requests get the default context, never the per-agent data).
# Not part of CI: numbers go in docs/benchmarks.md, never into assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
n="${1:-1000}"
rounds="${ROUNDS:-3}"
# 30 s: the caps on a read are at most the interval; from 30 s on they are the
# production ones (5 s per request, 30 s per device).
interval="${INTERVAL:-30s}"
procs="${SIM_PROCS:-2}"
sim="${SIM:-snmpd}"
case "$sim" in snmpd|snmpsim) ;; *) echo "SIM is snmpd or snmpsim, not $sim" >&2; exit 1;; esac
community=ztpbench
venv="${SNMPSIM_VENV:-/tmp/ztpd-bench-snmpsim}"

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for t in ip lldpd lldpcli snmpd snmpwalk curl /usr/bin/python3; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y lldpd snmpd snmp curl python3-venv)" >&2; exit 1; }
done
if [ "$sim" = snmpsim ] && [ ! -x "$venv/bin/snmpsim-command-responder-lite" ]; then
    echo "installing snmpsim into $venv"
    # The system Python: pyenv's lives under /root, which `nobody` cannot read.
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q snmpsim-lextudio==1.1.1 pysnmp-lextudio==6.3.0 pyasn1==0.6.0 pysmi-lextudio==1.4.3
fi
if [[ -z "${ZTPD:-}" ]]; then
    echo "building release ztpd"
    cargo build --release --quiet --bin ztpd
fi
ztpd="$(realpath "${ZTPD:-${CARGO_TARGET_DIR:-target}/release/ztpd}")"

tag=$$
work="$(mktemp -d "/tmp/ztpd-snmp-bench.XXXXXX")"
chmod 755 "$work"
rec_ns=(zsb$tag-a zsb$tag-b zsb$tag-c)
poll_ns=zsb$tag-poll
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$work"/snmpd-run/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "${rec_ns[@]}" "$poll_ns"; do ip netns del "$ns" 2>/dev/null || true; done
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- 1. a real walk: sw-a (snmpd + lldpd -x) cabled to sw-b and sw-c ---------
record_walk() {
    local a=${rec_ns[0]} b=${rec_ns[1]} c=${rec_ns[2]} run="$work/rec"
    mkdir -p "$run/persist"
    for ns in "${rec_ns[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add swp1 netns "$a" type veth peer name swp1 netns "$b"
    ip link add swp2 netns "$a" type veth peer name swp1 netns "$c"
    ip -n "$a" link set swp1 up; ip -n "$a" link set swp2 up
    ip -n "$b" link set swp1 up; ip -n "$c" link set swp1 up
    printf 'agentAddress udp:127.0.0.1:161\nrocommunity rec 127.0.0.1\nmaster agentx\nagentXSocket %s\nagentXPerms 0600 0700\n' \
        "$run/a.agentx" > "$run/snmpd.conf"
    SNMP_PERSISTENT_DIR="$run/persist" ip netns exec "$a" snmpd -f -C -c "$run/snmpd.conf" -m '' \
        -p "$run/snmpd.pid" -Lf "$run/snmpd.log" & pids+=($!)
    for _ in $(seq 100); do [ -S "$run/a.agentx" ] && break; sleep 0.1; done
    for x in a b c; do
        local ns=zsb$tag-$x sub=()
        [ $x = a ] && sub=(-x -X "$run/a.agentx")
        ip netns exec "$ns" lldpd -d -u "$run/$x.sock" -I 'swp*' "${sub[@]}" >"$run/lldpd-$x.log" 2>&1 & pids+=($!)
        for _ in $(seq 100); do lldpcli -u "$run/$x.sock" show configuration >/dev/null 2>&1 && break; sleep 0.1; done
        lldpcli -u "$run/$x.sock" configure system hostname "sw-$x" >/dev/null
        lldpcli -u "$run/$x.sock" configure lldp portidsubtype ifname >/dev/null
        lldpcli -u "$run/$x.sock" configure lldp tx-interval 1 >/dev/null
    done
    for _ in $(seq 150); do
        [ "$(ip netns exec "$a" snmpwalk -v2c -c rec -On 127.0.0.1 1.0.8802.1.1.2.1.4.1.1.9 2>/dev/null | grep -c '"sw-' || true)" -ge 2 ] && break
        sleep 0.2
    done
    ip netns exec "$a" snmpwalk -v2c -c rec -On -Oe -Ot -Ox 127.0.0.1 1.0.8802.1.1.2.1 > "$work/lldp.walk"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
    for ns in "${rec_ns[@]}"; do ip netns del "$ns"; done
}
SECONDS=0
record_walk
echo "recorded a real LLDP-MIB walk: $(wc -l < "$work/lldp.walk") lines in ${SECONDS} s"

# --- 2. the fleet: plan, data files, hellos ----------------------------------
mkdir -p "$work/root/templates" "$work/root/files"
python3 benches/snmp/fleet.py "$work/lldp.walk" "$work/root" "$n" "$community" "$procs"
mv "$work/root"/data-* "$work/root"/endpoints-* "$work/root/snmpd" "$work/root/hellos.json" "$work/"

# --- 3. simulator and ztpd in one namespace ----------------------------------
ip netns add "$poll_ns"
ip -n "$poll_ns" link set lo up
# wait_agent ADDR TRIES WHO LOG: until the agent at ADDR answers (a try
# takes up to ~1 s); else say WHO does not, with the end of LOG, and stop.
wait_agent() {
    local addr=$1 tries=$2 who=$3 log=$4
    for _ in $(seq "$tries"); do
        ip netns exec "$poll_ns" snmpget -v2c -c "$community" -t 1 -r 0 "$addr" 1.0.8802.1.1.2.1.3.3.0 >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "$who does not answer at $addr:" >&2; tail -5 "$log" >&2; exit 1
}
if [ "$sim" = snmpd ]; then
    # One net-snmp snmpd per device, as a switch has its own agent: each
    # serves its device's rows of the walk (`override` lines) on UDP 161 of
    # its address, with only the modules that needs.
    mkdir -p "$work/snmpd-run"
    started=0
    for conf in "$work/snmpd"/*.conf; do
        k=$(basename "$conf" .conf)
        mkdir -p "$work/snmpd-run/$k"
        SNMP_PERSISTENT_DIR="$work/snmpd-run/$k" ip netns exec "$poll_ns" snmpd -C -c "$conf" -m '' \
            -I override,vacm_conf -Lf "$work/snmpd-run/$k/log" -p "$work/snmpd-run/$k/pid" &
        started=$((started + 1))
        (( started % 50 == 0 )) && wait
    done
    wait
    for k in 0 $((n - 1)); do
        addr=$(sed -n 's/^agentAddress udp:\(.*\):161$/\1/p' "$work/snmpd/$k.conf")
        wait_agent "$addr" 100 "snmpd of device $k" "$work/snmpd-run/$k/log"
    done
    echo "snmpd: $n agents, one process each ($(ls "$work"/snmpd-run/*/pid | wc -l) running)"
else
# snmpsim drops to `nobody` before its asyncio loop binds: let it bind 161.
ip netns exec "$poll_ns" sysctl -qw net.ipv4.ip_unprivileged_port_start=0
sim_pids=()
for k in $(seq 0 $((procs - 1))); do
    mkdir -p "$work/cache-$k"; chown nobody:nogroup "$work/cache-$k"
    mapfile -t eps < "$work/endpoints-$k"
    args=(); for e in "${eps[@]}"; do args+=(--agent-udpv4-endpoint "$e"); done
    ip netns exec "$poll_ns" "$venv/bin/snmpsim-command-responder-lite" --data-dir "$work/data-$k" \
        --cache-dir "$work/cache-$k" --log-level error --process-user nobody --process-group nogroup \
        "${args[@]}" > "$work/snmpsim-$k.log" 2>&1 & pids+=($!); sim_pids+=($!)
done
for k in $(seq 0 $((procs - 1))); do
    last=$(tail -1 "$work/endpoints-$k"); last=${last%:161}
    wait_agent "$last" 300 "simulator $k" "$work/snmpsim-$k.log"
done
echo "snmpsim: $n agents in $procs processes"
fi

http=8080
cat > "$work/root/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$http"
tftp = "127.0.0.1:6969"
dhcp = "127.0.0.1:6767"
[access]
hello = "any"
[broker]
enabled = false
[topology]
poll_interval = "$interval"
TOML
ip netns exec "$poll_ns" env ZTPD_LOG="${ZTPD_LOG:-warn}" "$ztpd" --config "$work/root/ztpd.toml" run --watch off \
    > "$work/ztpd.log" 2>&1 & pids+=($!); zpid=$!
for _ in $(seq 600); do ip netns exec "$poll_ns" curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
ip netns exec "$poll_ns" curl -sf "http://127.0.0.1:$http/healthz" >/dev/null || { tail -20 "$work/ztpd.log"; exit 1; }

# --- 4. deploy every device, then measure ROUNDS rounds ----------------------
ip netns exec "$poll_ns" python3 - "$work" "$http" "$zpid" "$rounds" "$interval" "$n" <<'PY'
import http.client, json, sys, time
work, port, zpid, rounds, interval, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
c = http.client.HTTPConnection("127.0.0.1", port)
token = open(f"{work}/root/state/operator.token").read().strip()

def call(method, path, body=None, auth=False):
    h = {"content-type": "application/json"}
    if auth:
        h["authorization"] = f"Bearer {token}"
    c.request(method, path, body, h)
    r = c.getresponse()
    return r.status, r.read()

def metric(name):
    for line in call("GET", "/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise SystemExit(f"/metrics has no {name}")

def cpu_seconds():
    f = open(f"/proc/{zpid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100  # utime + stime, in clock ticks of 10 ms

bad = 0
for h in json.load(open(f"{work}/hellos.json")):
    s1, b1 = call("POST", "/ztp/v1/hello", json.dumps(h))
    s2, b2 = call("POST", f"/ztp/v1/devices/{h['serial']}/progress", '{"stage":"deployed"}')
    if s1 != 200 or s2 != 200:
        bad += 1
        if bad < 4:
            print(f"{h['serial']}: hello {s1} {b1[:200]!r}, progress {s2} {b2[:200]!r}")
print(f"deployed {n - bad} of {n} devices through hello + progress")

def wait_round(after, limit=120):
    end = time.time() + limit
    while time.time() < end:
        if metric("ztpd_topology_poll_rounds_total") > after:
            return
        time.sleep(0.05)
    raise SystemExit(f"no poll round finished in {limit} s")

# Two rounds over the whole fleet first: the first may have started while
# devices were still being deployed.
r = metric("ztpd_topology_poll_rounds_total")
wait_round(r); wait_round(r + 1)
r0, cpu0, t0 = metric("ztpd_topology_poll_rounds_total"), cpu_seconds(), time.time()
times = []
for i in range(rounds):
    wait_round(r0 + i)
    times.append(metric("ztpd_topology_poll_round_milliseconds"))
cpu, wall = cpu_seconds() - cpu0, time.time() - t0
devices = json.loads(call("GET", "/api/v1/devices", auth=True)[1])
unread = [d["name"] for d in devices if (d.get("snmp") or {}).get("reachable") is not True]
drift = metric("ztpd_topology_drift_devices")
times.sort()
per_round = cpu / rounds
print(f"{rounds} rounds over {len(devices)} deployed devices (poll_interval {interval}): "
      f"round time (ztpd_topology_poll_round_milliseconds) min {times[0]} ms, "
      f"median {times[len(times) // 2]} ms, max {times[-1]} ms")
print(f"ztpd CPU: {cpu:.2f} s over {wall:.1f} s ({100 * cpu / wall:.1f} % of a core at this interval); "
      f"{per_round:.3f} s per round -> {100 * per_round / 60:.2f} % of one core at a 60 s interval")
print(f"errors: {len(unread)} devices not read over SNMP{(' ' + str(unread[:5])) if unread else ''}, "
      f"{drift} devices with drift, {bad} not deployed")
PY
[ "$sim" = snmpsim ] && for k in $(seq 0 $((procs - 1))); do
    errs=$(grep -c ERROR "$work/snmpsim-$k.log" || true)
    echo "snmpsim $k: $(grep -v 'Variation module' "$work/snmpsim-$k.log" | grep -c ERROR || true) errors logged (of $errs ERROR lines, the rest unused variation modules)"
done
echo "ztpd peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$zpid/status")"
