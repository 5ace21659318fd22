#!/usr/bin/env bash
# Hellos of N boxes known only by position (default 10,000) against one ztpd,
# end to end over HTTP: each hello carries a new serial and its two uplinks,
# ztpd finds its place, binds the serial (a state write and a new snapshot)
# and answers as for a planned device. One client, one connection, one hello
# at a time, so each latency is ztpd's own. Prints p50/p99/max and a line for
# docs/benchmarks.md. Issue 22 target: hello p99 <= 2 ms.
#
#   benches/position_hello_bench.sh [N]
#   DURABILITY=fsync benches/position_hello_bench.sh 10000
#   ZTPD=/path/to/ztpd benches/position_hello_bench.sh
#   HELLOS=500 benches/position_hello_bench.sh 10000   # the first 500 boxes of a 10,000 plan
#
# Not part of CI: numbers go in docs/benchmarks.md, never into assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
n="${1:-10000}"
durability="${DURABILITY:-os}"

if [[ -z "${ZTPD:-}" ]]; then
    echo "building release ztpd"
    cargo build --release --quiet --bin ztpd
fi
ztpd="${ZTPD:-${CARGO_TARGET_DIR:-target}/release/ztpd}"

work="$(mktemp -d "${TMPDIR:-/tmp}/ztpd-position-bench.XXXXXX")"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/plans" "$work/templates" "$work/files"
python3 - "$n" > "$work/plans/bench.toml" <<'PY'
import sys
n = int(sys.argv[1])
pairs = (n + 47) // 48
print('[site]\nname = "bench"\nserver_ip = "10.0.0.1"\n')
print('[models.spine]\nvendor = "generic"\nmatch = "spine-model"\nports = ["swp1-48"]\n')
print('[models.leaf]\nvendor = "generic"\nmatch = "leaf-model"\nports = ["swp1-52"]\n')
for s in range(pairs * 2):
    print(f'[[devices]]\nname = "spine{s}"\nmodel = "spine"\nserial = "SN-SPINE{s}"\nrole = "root"\n')
for i in range(n):
    print(f'[[devices]]\nname = "leaf{i}"\nmodel = "leaf"\n')
for i in range(n):
    p, k = i // 48, i % 48 + 1
    print(f'[[links]]\na = "spine{2*p}:swp{k}"\nb = "leaf{i}:swp49"\n')
    print(f'[[links]]\na = "spine{2*p+1}:swp{k}"\nb = "leaf{i}:swp50"\n')
PY
http="$(free_port)"
cat > "$work/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$http"
tftp = "127.0.0.1:$(free_port)"
dhcp = "127.0.0.1:$(free_port)"
[access]
hello = "any"
[state]
durability = "$durability"
[broker]
enabled = false
[topology]
poll_interval = "0s"
TOML
"$ztpd" --config "$work/ztpd.toml" run --watch off > "$work/ztpd.log" 2>&1 &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$http/healthz" >/dev/null || { tail -20 "$work/ztpd.log"; exit 1; }

python3 - "${HELLOS:-$n}" "$http" <<'PY'
import http.client, json, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
lat, bad = [], 0
t0 = time.perf_counter()
for i in range(n):
    p, k = i // 48, i % 48 + 1
    body = json.dumps({"serial": f"NEW-{i}", "model": "leaf-model", "neighbors": [
        {"local_port": "swp49", "remote_device": f"spine{2*p}", "remote_port": f"swp{k}"},
        {"local_port": "swp50", "remote_device": f"spine{2*p+1}", "remote_port": f"swp{k}"}]})
    t = time.perf_counter()
    c.request("POST", "/ztp/v1/hello", body, {"content-type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    lat.append(time.perf_counter() - t)
    if r.status != 200 or data.get("device") != f"leaf{i}":
        bad += 1
wall = time.perf_counter() - t0
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))] * 1000
print(f"{n} position hellos (each binding its serial): p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, "
      f"max {lat[-1]*1000:.2f} ms, {wall:.1f} s in all, {bad} not bound as expected")
PY
echo "ztpd peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
