#!/usr/bin/env bash
# Soak (issue 15): one `ztpd run` with N switch agents (`device simulate
# --switch all --agent`, long-polling their actions) and N telemetry devices
# (`device simulate --credentials ... --fleet N`, 1 message/s each, over the
# local hub), for SECONDS. Every 30 s: ztpd's RSS and its counters. At the
# end: RSS after warm-up must stay within +-10 % of its median, the log must
# hold no ERROR line, every telemetry message the hub received must be
# stored, and the agents must have logged no failed poll (and still run).
# (Open HTTP connections are printed but not judged: each long-poll is a new
# connection, and 1,000 agents started together reconnect together every
# 20 s, so a sample can fall in that gap.)
#
#   benches/soak/run_soak.sh [N] [SECONDS]       (defaults 1000, 1800)
#   ZTPD=/path/to/ztpd benches/soak/run_soak.sh 100 120    (a short run)
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-1000}"
secs="${2:-1800}"
warmup="${WARMUP:-120}"
if [[ -z "${ZTPD:-}" ]]; then
    cargo build --release --quiet --bin ztpd
fi
ztpd="${ZTPD:-target/release/ztpd}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ztpd-soak.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [[ -n "${KEEP_WORK:-}" ]] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

# Plan: N leaves under ceil(N/48) spines, and N sensors with a device
# function whose battery lasts the whole run.
python3 - "$work" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in ("plans", "templates/device_function", "files/images"):
    os.makedirs(f"{root}/{d}")
open(f"{root}/templates/leaf.j2", "w").write("hostname {{ device.name }}\n")
open(f"{root}/files/images/leaf-1.0.bin", "wb").write(os.urandom(64 * 1024))
open(f"{root}/templates/device_function/default.toml", "w").write(
    'interval = "1s"\nfields = ["device_id", "device_name", "device_latitude", "device_longitude", '
    '"device_battery_level", "signal_date"]\n[location]\nlatitude = [-37.36, -32.04]\n'
    'longitude = [-68.22, -61.69]\nprecision = 6\n[battery]\ninitial = 1.0\ndrain_every = 10\ndrain_max = 0.0001\n')
spines = (n + 47) // 48
out = ['[site]\nname = "soak"\nserver_ip = "127.0.0.1"\n',
       '[models.spine]\nvendor = "generic"\nmatch = "SIM-SPINE"\nports = ["swp1-48"]\n',
       '[models.leaf]\nvendor = "generic"\nmatch = "SIM-LEAF"\nports = ["swp1-4"]\ntemplate = "leaf.j2"\n'
       'software = { image = "images/leaf-1.0.bin", version = "1.0" }\n',
       '[models.sensor]\nvendor = "generic"\nmatch = "esp32-gps"\n']
for s in range(spines):
    out.append(f'[[devices]]\nname = "spine{s}"\nmodel = "spine"\nserial = "SPN{s:05d}"\nrole = "root"\n')
for i in range(n):
    out.append(f'[[devices]]\nname = "leaf{i}"\nmodel = "leaf"\nserial = "LEAF{i:05d}"\n')
    out.append(f'[[links]]\na = "spine{i // 48}:swp{i % 48 + 1}"\nb = "leaf{i}:swp1"\n')
for i in range(n):
    out.append(f'[[devices]]\nname = "sensor{i}"\nmodel = "sensor"\nserial = "SENS{i:05d}"\ndevice_function = "default"\n')
open(f"{root}/plans/soak.toml", "w").write("\n".join(out))
PY

free() { python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"; }
port=$(free tcp); bport=$(free tcp)
cat > "$work/ztpd.toml" <<EOT
[listen]
http = "127.0.0.1:$port"
tftp = "127.0.0.1:$(free udp)"
dhcp = "127.0.0.1:$(free udp)"
[access]
hello = "any"   # agents say hello from 127.0.0.1, where no device holds a lease
[broker]
listen = "127.0.0.1:$bport"
tls_listen = "127.0.0.1:$(free tcp)"
EOT
ulimit -n "$(ulimit -Hn)"
"$ztpd" --config "$work/ztpd.toml" run --watch off >"$work/ztpd.log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/ztpd.log"; exit 1; }
    sleep 0.1
done
for _ in $(seq 1 600); do
    [[ $(ls "$work/device_credentials" 2>/dev/null | grep -c '^device_') -ge "$n" ]] && break
    sleep 0.1
done

"$ztpd" --config "$work/ztpd.toml" device simulate --switch all --fleet "$n" --agent \
    --server "http://127.0.0.1:$port" >"$work/agents.log" 2>&1 &
agents=$!; pids+=("$agents")
for _ in $(seq 1 1800); do grep -q "agents ready" "$work/agents.log" && break; sleep 0.1; done
grep -q "agents ready" "$work/agents.log" || { echo "agents not ready"; tail "$work/agents.log"; exit 1; }
"$ztpd" --config "$work/ztpd.toml" device simulate --credentials "$work/device_credentials" --fleet "$n" \
    >"$work/sensors.log" 2>&1 &
sensors=$!; pids+=("$sensors")

metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "t_s rss_kib http_conns hub_devices hub_msgs stored" | tee "$work/samples"
start=$SECONDS
while (( SECONDS - start < secs )); do
    sleep 30
    echo "$((SECONDS - start)) $(rss) $(metric ztpd_http_connections) $(metric ztpd_hub_devices_connected) $(metric ztpd_hub_messages_total) $(metric 'ztpd_bridge_messages_total{outcome="stored"}')" | tee -a "$work/samples"
done
kill "$sensors" 2>/dev/null || true; wait "$sensors" 2>/dev/null || true
sleep 3
received=$(metric ztpd_hub_messages_total)
stored=$(metric 'ztpd_bridge_messages_total{outcome="stored"}')
rejected=$(metric 'ztpd_bridge_messages_total{outcome="rejected"}')
errors=$(sed "s/\x1b\[[0-9;]*m//g" "$work/ztpd.log" | grep -c " ERROR " || true)
agent_failures=$(sed "s/\x1b\[[0-9;]*m//g" "$work/agents.log" | grep -cE " (WARN|ERROR) " || true)
kill -0 "$agents" 2>/dev/null && agents_alive=1 || agents_alive=0
python3 - "$work/samples" "$warmup" "$received" "$stored" "$rejected" "$errors" "$n" "$agent_failures" "$agents_alive" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
warm = int(sys.argv[2])
received, stored, rejected, errors, n, agent_failures, agents_alive = (int(x or 0) for x in sys.argv[3:10])
rss = [int(r[1]) for r in rows if int(r[0]) >= warm]
med = statistics.median(rss)
lo, hi = min(rss), max(rss)
flat = lo >= 0.9 * med and hi <= 1.1 * med
agents = [int(r[2] or 0) for r in rows if int(r[0]) >= warm]
print(f"RSS after {warm} s: median {med/1024:.1f} MiB, min {lo/1024:.1f}, max {hi/1024:.1f} "
      f"({(lo/med-1)*100:+.1f} % / {(hi/med-1)*100:+.1f} %): {'flat' if flat else 'NOT FLAT'}")
print(f"telemetry: {received} received by the hub, {stored} stored, {rejected} rejected; "
      f"{'all stored' if stored + rejected == received else 'MISSING ' + str(received - stored - rejected)}")
print(f"HTTP connections (agents' long-polls) min {min(agents)}, median {statistics.median(agents):.0f} (agents: {n}; not judged)")
print(f"agents: {'running' if agents_alive else 'GONE'}, {agent_failures} failed polls logged")
print(f"ERROR lines in the ztpd log: {errors}")
ok = (flat and stored + rejected == received and rejected == 0 and errors == 0
      and agent_failures == 0 and agents_alive == 1)
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
