#!/usr/bin/env bash
# Direct methods and desired-property patches through the API to DEVICES
# connected devices (SPEC §13): a fresh `ztpd run`, then
# `benches/hub_calls.rs` connects the devices (TLS), and makes CALLS method
# calls and CALLS twin PATCHes, CONCURRENCY at a time. Prints p50/p99/max of
# the method round trip, the PATCH's answer and the patch's delivery.
#
#   benches/broker/hub_calls_bench.sh [DEVICES] [CALLS] [CONCURRENCY]
# Env: ZTPD (default target/release/ztpd); CLIENT (default: `cargo bench
# --bench hub_calls --no-run`'s); KEEP_WORK=1 keeps the work directory.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
devices="${1:-1000}"
calls="${2:-2000}"
concurrency="${3:-4}"
ZTPD="${ZTPD:-$repo/target/release/ztpd}"
[ -x "$ZTPD" ] || { echo "missing $ZTPD (cargo build --release)" >&2; exit 1; }
CLIENT="${CLIENT:-$(bench_binary hub_calls)}"
[ -x "$CLIENT" ] || { echo "no bench client (cargo bench --bench hub_calls --no-run)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d /tmp/ztpd-calls-bench.XXXXXX)"
zpid=""
cleanup() {
    [ -n "$zpid" ] && { kill "$zpid" 2>/dev/null || true; wait "$zpid" 2>/dev/null || true; }
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

start_hub_ztpd "$work"
"$CLIENT" --port "$tport" --ca "$root/state/hub-ca.pem" --http "$hport" \
    --token "$(cat "$root/state/operator.token")" --group-key "$(cat "$root/state/hub.key")" \
    --devices "$devices" --calls "$calls" --concurrency "$concurrency"
