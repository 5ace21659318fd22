#!/usr/bin/env bash
# Reload latency: time from an editor-style save (temp file + rename) of a plan
# to the new config being served over HTTP, over N saves; prints p50/p99.
#
#   benches/reload/run_bench.sh [SAVES=100] [PLAN_DEVICES=0]
#
# PLAN_DEVICES=0 uses plans/lab.toml; N > 0 adds a generated N-device plan
# (examples/gen_plan.rs) beside it, to see reload cost on a large site.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
saves="${1:-100}"
big="${2:-0}"
cd "$repo"
cargo build --release --quiet
bin="${ZTPD_BIN:-$repo/target/release/ztpd}"
work="$(mktemp -d /tmp/ztpd-reload-bench.XXXXXX)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r plans templates files azure_mqtt_credentials "$work"/
if ((big > 0)); then
    cargo run --release --quiet --example gen_plan -- "$work/big" --devices "$big" --links $((big * 2)) >/dev/null
    cp "$work/big/plans/big.toml" "$work/plans/"
    cp -rn "$work/big/templates/." "$work/templates/"
    cp -rn "$work/big/files/." "$work/files/" 2>/dev/null || true
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$port"
tftp = "127.0.0.1:0"
dhcp = "127.0.0.1:0"
[access]
configs = "open"
# Hellos come from 127.0.0.1, where no device holds a lease: trust any address.
hello = "any"
[broker]
enabled = false
TOML
"$bin" --config "$work/ztpd.toml" run >"$work/ztpd.log" 2>&1 &
pid=$!
python3 - "$work" "$port" "$saves" <<'PY'
import os, sys, time, urllib.request, re
work, port, saves = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
plan = os.path.join(work, "plans/lab.toml")
url = f"http://127.0.0.1:{port}/files/configs/leaf1.cfg"
def get():
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except Exception:
        return ""
deadline = time.time() + 30
while "hostname" not in get():
    if time.time() > deadline: sys.exit("ztpd did not start; see " + work + "/ztpd.log")
    time.sleep(0.05)
text = open(plan).read()
m = re.search(r'(name = "leaf1"[\s\S]*?asn = )(\d+)', text)
if not m: sys.exit("leaf1 has no vars.asn in plans/lab.toml")
lat = []
for i in range(saves):
    asn = 64600 + i
    new = text[:m.start(2)] + str(asn) + text[m.end(2):]
    tmp = plan + ".tmp"
    with open(tmp, "w") as f: f.write(new)
    t0 = time.perf_counter()
    os.rename(tmp, plan)
    want = f"bgp {asn}"
    while want not in get():
        if time.perf_counter() - t0 > 10: sys.exit(f"save {i}: not served within 10 s")
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"reload latency over {saves} saves: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {lat[-1]:.0f} ms")
PY
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
