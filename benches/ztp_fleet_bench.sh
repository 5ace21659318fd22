#!/usr/bin/env bash
# Benchmark the ZTP flow: N simulated switches (default 1,000) against one
# ztpd: DHCP (relayed), hello with planned neighbours, topology check, approval, download of
# config, image and patch, progress to deployed. Prints the simulator's
# summary, wall time and the daemon's peak RSS (VmHWM), and a line ready for
# docs/benchmarks.md. Target (issue 5): all deployed in <= 60 s, no errors.
#
#   benches/ztp_fleet_bench.sh [N]
#   CONCURRENCY=512 benches/ztp_fleet_bench.sh 1000
#   ZTPD=/path/to/ztpd benches/ztp_fleet_bench.sh
#
# Each switch first leases its planned address through a simulated relay
# agent on 127.0.0.2:67 (so the benchmark needs root).
# Not part of CI: numbers go in docs/benchmarks.md, never into assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
conc="${CONCURRENCY:-256}"

if [[ -z "${ZTPD:-}" ]]; then
    echo "building release ztpd"
    cargo build --release --quiet --bin ztpd
fi
ztpd="${ZTPD:-${CARGO_TARGET_DIR:-target}/release/ztpd}"

work="$(mktemp -d "${TMPDIR:-/tmp}/ztpd-fleet-bench.XXXXXX")"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Plan: ceil(N/48) spines (roots, 48 downlinks each), N leaves with one uplink.
python3 - "$work" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/plans"); os.makedirs(f"{root}/templates"); os.makedirs(f"{root}/files/images")
open(f"{root}/templates/leaf.j2", "w").write("hostname {{ device.name }}\n! uplink\n{% for l in links %}interface {{ l.local_port }}\n  description to {{ l.peer }}:{{ l.peer_port }}\n{% endfor %}")
open(f"{root}/files/images/leaf-1.0.bin", "wb").write(os.urandom(256 * 1024))
spines = (n + 47) // 48
out = ['[site]\nname = "bench"\nserver_ip = "127.0.0.1"\n',
       '[dhcp]\nsubnet = "10.99.0.0/16"\npool = "10.99.250.1-10.99.250.250"\nlease_time = "1h"\n',
       '[models.spine]\nvendor = "generic"\nmatch = "SIM-SPINE"\nports = ["swp1-48"]\n',
       '[models.leaf]\nvendor = "generic"\nmatch = "SIM-LEAF"\nports = ["swp1-4"]\ntemplate = "leaf.j2"\n'
       'software = { image = "images/leaf-1.0.bin", version = "1.0" }\n']
for s in range(spines):
    out.append(f'[[devices]]\nname = "spine{s}"\nmodel = "spine"\nserial = "SPN{s:05d}"\nrole = "root"\n')
for i in range(n):
    out.append(f'[[devices]]\nname = "leaf{i}"\nmodel = "leaf"\nserial = "LEAF{i:05d}"\n'
               f'mac = "02:99:00:00:{i >> 8:02x}:{i & 255:02x}"\nip = "10.99.{i // 200}.{i % 200 + 1}"\n')
    out.append(f'[[links]]\na = "spine{i // 48}:swp{i % 48 + 1}"\nb = "leaf{i}:swp1"\n')
open(f"{root}/plans/bench.toml", "w").write("\n".join(out))
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
udp() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dhcp_port=$(udp)
cat > "$work/ztpd.toml" <<EOT
[listen]
http = "127.0.0.1:$port"
tftp = "127.0.0.1:$(udp)"
dhcp = "127.0.0.1:$dhcp_port"
# Hellos come from 127.0.0.1, where no device holds a lease: trust any address.
[access]
hello = "any"
[broker]
enabled = false
EOT
"$ztpd" --config "$work/ztpd.toml" run --watch off >"$work/ztpd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/ztpd.log"; exit 1; }
    sleep 0.1
done

start=$(date +%s.%N)
set +e
"$ztpd" --config "$work/ztpd.toml" device simulate --switch all --fleet "$n" \
    --concurrency "$conc" --server "http://127.0.0.1:$port" \
    --dhcp "127.0.0.1:$dhcp_port" --relay 127.0.0.2 | tail -n 5
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
wall=$(python3 -c "print(f'{$end - $start:.2f}')")
deployed=$(curl -fsS -H "Authorization: Bearer $(cat "$work/state/operator.token")" \
    "http://127.0.0.1:$port/api/v1/devices" | python3 -c 'import json,sys; print(sum(d["state"]=="deployed" for d in json.load(sys.stdin)))')
echo "switches: $n, concurrency $conc, deployed per /api/v1/devices: $deployed, simulator exit $rc"
echo "wall: ${wall} s, ztpd peak RSS: $((rss / 1024)) MB"
echo "| $(date -u +%F) | $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) | \`benches/ztp_fleet_bench.sh $n\` | $deployed/$n deployed in ${wall} s (concurrency $conc), ztpd peak RSS $((rss / 1024)) MB |"
exit "$rc"
