#!/usr/bin/env bash
# Benchmark a rollout (issue 12): N simulated switch agents (default 1,000;
# `ztpd device simulate --switch all --agent`) on the same machine, one
# software rollout of their group in batches of B (default 50), no pause.
# Prints the wall time from POST /api/v1/rollouts to `done`, ztpd's CPU time
# per upgraded device during the rollout, and the batch-to-batch overhead
# (next batch's started_at - previous batch's finished_at: the time from one
# batch finishing to the next batch's actions being queued), and a line for
# docs/benchmarks.md. Targets: whole rollout <= 60 s, overhead <= 50 ms.
#
#   benches/rollout_bench.sh [N] [B]
#   DURABILITY=os benches/rollout_bench.sh 10000
#   ZTPD=/path/to/ztpd benches/rollout_bench.sh
#
# Not part of CI: numbers go in docs/benchmarks.md, never into assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
batch="${2:-50}"
conc="${CONCURRENCY:-256}"
durability="${DURABILITY:-fsync}"

if [[ -z "${ZTPD:-}" ]]; then
    echo "building release ztpd"
    cargo build --release --quiet --bin ztpd
fi
ztpd="${ZTPD:-${CARGO_TARGET_DIR:-target}/release/ztpd}"

work="$(mktemp -d "${TMPDIR:-/tmp}/ztpd-rollout-bench.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Plan: ceil(N/48) spines (roots), N leaves with one uplink each, group `leaves`.
python3 - "$work" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/plans"); os.makedirs(f"{root}/templates"); os.makedirs(f"{root}/files/images")
open(f"{root}/templates/leaf.j2", "w").write("hostname {{ device.name }}\n")
open(f"{root}/files/images/leaf-1.0.bin", "wb").write(os.urandom(64 * 1024))
open(f"{root}/files/images/leaf-2.0.bin", "wb").write(os.urandom(64 * 1024))
spines = (n + 47) // 48
out = ['[site]\nname = "bench"\nserver_ip = "127.0.0.1"\n',
       '[models.spine]\nvendor = "generic"\nmatch = "SIM-SPINE"\nports = ["swp1-48"]\n',
       '[models.leaf]\nvendor = "generic"\nmatch = "SIM-LEAF"\nports = ["swp1-4"]\ntemplate = "leaf.j2"\n'
       'software = { image = "images/leaf-1.0.bin", version = "1.0" }\n']
for s in range(spines):
    out.append(f'[[devices]]\nname = "spine{s}"\nmodel = "spine"\nserial = "SPN{s:05d}"\nrole = "root"\n')
for i in range(n):
    out.append(f'[[devices]]\nname = "leaf{i}"\nmodel = "leaf"\nserial = "LEAF{i:05d}"\n')
    out.append(f'[[links]]\na = "spine{i // 48}:swp{i % 48 + 1}"\nb = "leaf{i}:swp1"\n')
out.append('[groups.leaves]\nselect = { model = "leaf" }\n')
open(f"{root}/plans/bench.toml", "w").write("\n".join(out))
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
udp() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$work/ztpd.toml" <<EOT
[listen]
http = "127.0.0.1:$port"
tftp = "127.0.0.1:$(udp)"
dhcp = "127.0.0.1:$(udp)"
[broker]
enabled = false
[state]
durability = "$durability"
EOT
"$ztpd" --config "$work/ztpd.toml" run --watch off >"$work/ztpd.log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/ztpd.log"; exit 1; }
    sleep 0.1
done
token=$(cat "$work/state/operator.token")

# Agents: ZTP flow first, then they long-poll their actions.
ulimit -n 65536 2>/dev/null || true
"$ztpd" --config "$work/ztpd.toml" device simulate --switch all --fleet "$n" --agent \
    --concurrency "$conc" --server "http://127.0.0.1:$port" >"$work/agents.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 1200); do
    grep -q "agents ready" "$work/agents.log" && break
    sleep 0.1
done
grep -q "agents ready" "$work/agents.log" || { echo "agents not ready"; tail "$work/agents.log"; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)
cpu0=$(cpu)
start=$(date +%s.%N)
id=$(curl -fsS -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/rollouts" \
    -d "{\"group\":\"leaves\",\"kind\":\"software\",\"software\":{\"image\":\"images/leaf-2.0.bin\",\"version\":\"2.0\"},\"policy\":{\"batch_size\":$batch,\"pause_between\":\"0s\",\"device_timeout\":\"5m\"}}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
while :; do
    curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/rollouts/$id" >"$work/r.json"
    state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$work/r.json")
    [[ "$state" == running ]] || break
    sleep 0.2
done
end=$(date +%s.%N)
cpu1=$(cpu)
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/devices" >"$work/devices.json"
python3 - "$work/r.json" "$start" "$end" "$cpu0" "$cpu1" "$tick" "$n" "$batch" "$durability" "$work/devices.json" "$work/ztpd.log" <<'PY'
import json, sys, datetime, statistics
r = json.load(open(sys.argv[1]))
start, end = float(sys.argv[2]), float(sys.argv[3])
cpu0, cpu1, tick, n, batch = (int(x) for x in sys.argv[4:9])
dur = sys.argv[9]
import re
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
b = r["batches"]
# When each device reported `deployed` (its record's last event), and when
# each batch's actions were committed (ztpd's log, one line per batch).
deployed = {d["name"]: t(d["last_event"]["at"]) for d in json.load(open(sys.argv[10]))
            if d["last_event"] and d["last_event"]["stage"] == "deployed"}
queued = [int(m.group(1)) / 1000 for m in re.finditer(r"action\(s\) queued at (\d+) ms", open(sys.argv[11]).read())]
gaps = []
for i in range(1, min(len(b), len(queued))):
    last = max(deployed.get(n, 0) for n in b[i - 1]["devices"])
    gaps.append((queued[i] - last) * 1000)
ok = r["counts"]["succeeded"]
cpu_ms = (cpu1 - cpu0) * 1000 / tick
print(f"state {r['state']}: {ok}/{n} succeeded, {r['counts']['failed']} failed, {len(b)} batches of {batch}")
print(f"wall {end - start:.2f} s; ztpd cpu {cpu_ms:.0f} ms = {cpu_ms / max(ok, 1) * 1000:.0f} us per upgraded device")
if gaps:
    print(f"batch-to-batch overhead (last `deployed` of a batch -> next batch's actions committed): "
          f"median {statistics.median(gaps):.1f} ms, max {max(gaps):.1f} ms ({len(gaps)} gaps)")
print(f"| {datetime.date.today()} | ... | `benches/rollout_bench.sh {n} {batch}` (durability {dur}) | wall {end - start:.2f} s, "
      f"{cpu_ms / max(ok, 1) * 1000:.0f} us ztpd CPU per device, overhead median "
      f"{statistics.median(gaps) if gaps else 0:.1f} ms / max {max(gaps) if gaps else 0:.1f} ms |")
PY
