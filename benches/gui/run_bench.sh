#!/usr/bin/env bash
# The topology GUI in Chromium: time from navigation to a usable page (graph
# drawn, list filled), bytes loaded, and frame times while panning, for
# generated plans of N devices.
#
#   benches/gui/run_bench.sh [SIZES="1000 10000"] [ROUNDS=5]
#
# Needs scripts/install-test-deps.sh (Debian chromium, Playwright in .venv-test).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
sizes="${1:-1000 10000}"
rounds="${2:-5}"
cd "$repo"
source benches/lib.sh
cargo build --release --quiet --bin ztpd --example gen_plan
bin="$repo/target/release/ztpd"
for n in $sizes; do
    work="$(mktemp -d /tmp/ztpd-gui-bench.XXXXXX)"
    target/release/examples/gen_plan "$work" --devices "$n" --links $((n * 2)) >/dev/null
    port=$(free_port)
    cat >"$work/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$port"
tftp = "127.0.0.1:0"
dhcp = "127.0.0.1:0"
[broker]
enabled = false
TOML
    "$bin" --config "$work/ztpd.toml" run >"$work/ztpd.log" 2>&1 &
    pid=$!
    wait_port "$port" || { echo "ztpd did not start; see $work/ztpd.log"; exit 1; }
    for _ in $(seq 100); do [[ -s "$work/state/operator.token" ]] && break; sleep 0.05; done
    .venv-test/bin/python benches/gui/measure.py "http://127.0.0.1:$port/" \
        "$(cat "$work/state/operator.token")" "$n" "$rounds"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
