#!/usr/bin/env bash
# DPS registrations through the local hub's provisioning service over TLS
# (SPEC §13): a fresh `ztpd run`, then `benches/dps_register.rs` registers
# DEVICES devices, CONCURRENCY at a time, each with its own TLS connection.
# Prints the client's JSON line (registrations/s, latency percentiles, how
# many `assigning` answers were polled through), the identities written, and
# the daemon's RSS before and after (the memory of DEVICES identities).
#
#   benches/broker/dps_bench.sh [DEVICES] [CONCURRENCY]
# Env: ZTPD (binary, default target/release/ztpd); CLIENT (the bench binary,
# default: `cargo bench --bench dps_register --no-run`'s); KEEP_WORK=1 keeps
# the work directory (ztpd log).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
devices="${1:-10000}"
concurrency="${2:-256}"
hub_bench_setup dps_register

start_hub_ztpd "$work"
rss0=$(rss_kib "$zpid")
/usr/bin/time -f "client CPU: user %U s, sys %S s" "$CLIENT" --bench --port "$tport" --ca "$root/state/hub-ca.pem" --scope "$(cat "$root/state/id_scope")" \
    --group-key "$(cat "$root/state/hub.key")" --count "$devices" --concurrency "$concurrency"
rss1=$(rss_kib "$zpid")
cpu=$(awk -v t="$(getconf CLK_TCK)" '{printf "%.1f s (user %.1f, sys %.1f)", ($14+$15)/t, $14/t, $15/t}' "/proc/$zpid/stat")
echo "ztpd CPU since start: $cpu"
files=$(find "$root/device_credentials" -name 'device_bench-*.json' | wc -l)
rows=$(grep -c '^bench-' "$root/device_credentials/historical_credentials.csv" || true)
echo "identities: $files credential files, $rows history rows"
echo "ztpd RSS: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB after ($(( (rss1 - rss0) * 1024 / devices )) bytes per identity)"
[ "$files" -eq "$devices" ] && [ "$rows" -eq "$devices" ] || { echo "expected $devices of each" >&2; exit 1; }
