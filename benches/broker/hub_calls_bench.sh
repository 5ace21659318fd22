#!/usr/bin/env bash
# Direct methods and desired-property patches through the API to DEVICES
# connected devices (SPEC §13): a fresh `ztpd run`, then
# `benches/hub_calls.rs` connects the devices (TLS), and makes CALLS method
# calls and CALLS twin PATCHes, CONCURRENCY at a time. Prints p50/p99/max of
# the method round trip, the PATCH's answer and the patch's delivery.
#
#   benches/broker/hub_calls_bench.sh [DEVICES] [CALLS] [CONCURRENCY]
# Env: ZTPD (default target/release/ztpd); REGISTER (the dps_register client,
# default cargo's); CLIENT (default: `cargo bench
# --bench hub_calls --no-run`'s); KEEP_WORK=1 keeps the work directory.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
devices="${1:-1000}"
calls="${2:-2000}"
concurrency="${3:-4}"
hub_bench_setup hub_calls

start_hub_ztpd "$work"
# The devices register first (DPS): the twin API serves devices the hub has
# an identity for.
"${REGISTER:-$(bench_binary dps_register)}" --bench --port "$tport" --ca "$root/state/hub-ca.pem" \
    --scope "$(cat "$root/state/id_scope")" --group-key "$(cat "$root/state/hub.key")" \
    --count "$devices" --prefix calls | sed 's/^/registrations: /'
"$CLIENT" --bench --port "$tport" --ca "$root/state/hub-ca.pem" --http "$hport" \
    --token "$(cat "$root/state/operator.token")" --group-key "$(cat "$root/state/hub.key")" \
    --devices "$devices" --calls "$calls" --concurrency "$concurrency"
