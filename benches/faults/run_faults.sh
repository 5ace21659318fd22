#!/usr/bin/env bash
# run_faults.sh - the fault suite of issue #15 (tests/fault_*.rs), timed, and
# its longer variants, which stay out of CI.
#
#   sudo benches/faults/run_faults.sh          the CI variant of each test, timed
#   sudo LONG=1 benches/faults/run_faults.sh   then a longer kill -9 run and reload storm
#
# Each test binary runs under flock /tmp/ztpd-netns.lock (they create network
# namespaces and mounts). Tunables of the long variant (the tests read them):
#   KILLS=20 ACKS_PER_RUN=1000 RATE=1000 CLIENTS=60000   kill -9 under perfdhcp load
#   SAVES=1000 STORM_MS=2000                             reload storm
#   PROFILE=--release                                    build profile (default: debug, as CI)
# Prints one line per run (wall seconds) and the FAULT lines the tests print.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $(id -u) -eq 0 ]] || { echo "run_faults.sh: needs root (netns, tmpfs)" >&2; exit 1; }
profile=${PROFILE:-}
tests=(fault_kill9_dhcp fault_disk_full fault_reload_storm fault_clock)
log=$(mktemp "${TMPDIR:-/tmp}/ztpd-faults.XXXXXX")
trap 'rm -f "$log"' EXIT

echo "fault suite $(date -u +%FT%TZ) on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
cargo test $profile --no-run "${tests[@]/#/--test=}" >/dev/null 2>&1 || cargo test $profile --no-run "${tests[@]/#/--test=}"

run() { # name env...
    local name=$1; shift
    local t0=$SECONDS status=0
    env "$@" flock /tmp/ztpd-netns.lock cargo test $profile -q --test "$name" -- --nocapture >"$log" 2>&1 || status=$?
    printf '%-22s %4ds  %s\n' "$name" $((SECONDS - t0)) "$( ((status)) && echo FAILED || echo ok)"
    grep -E '^FAULT ' "$log" | sed 's/^/    /' || true
    if ((status)); then tail -40 "$log"; return 1; fi
}

total=$SECONDS
failed=0
for t in "${tests[@]}"; do run "$t" || failed=1; done
echo "CI variant: $((SECONDS - total)) s in all"

if [[ ${LONG:-0} == 1 ]]; then
    run fault_kill9_dhcp ZTPD_FAULT_KILLS="${KILLS:-20}" ZTPD_FAULT_ACKS_PER_RUN="${ACKS_PER_RUN:-1000}" \
        ZTPD_FAULT_RATE="${RATE:-1000}" ZTPD_FAULT_CLIENTS="${CLIENTS:-60000}" || failed=1
    run fault_reload_storm ZTPD_FAULT_SAVES="${SAVES:-1000}" ZTPD_FAULT_STORM_MS="${STORM_MS:-2000}" || failed=1
fi
exit $failed
