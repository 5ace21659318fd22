#!/usr/bin/env bash
# End-to-end telemetry ingest, side by side in one run on the same Mosquitto
# and nx-27017 (MongoDB wire protocol):
#   ztpd      publish -> Mosquitto -> `ztpd bridge` (insert_many batches) -> nx-27017
#   prototype publish -> Mosquitto -> Python paho subscriber, insert_one per message -> nx-27017
#   ceiling   raw insert_many(ordered=False) from one pymongo client (no broker)
# Each path gets a fresh nx-27017 (in memory) and the same messages; every
# path must store all of them (zero loss) or the script fails.
#
# Two ways to time the two subscriber paths (MODES, default "live drain"):
#   live   the subscriber runs while the devices publish; time from the first
#          publish to the last document stored. The publishers (simulated
#          devices) share the machine's cores with the broker and the store.
#   drain  the subscriber's persistent session is made, the subscriber stops,
#          every message is published and queued by Mosquitto, then the
#          subscriber starts again; time from its start to the last document
#          stored. Broker -> subscriber -> store, without the devices' own
#          publishing CPU on the same cores (on a real network the devices are
#          other machines).
#
#   benches/telemetry/run_bench.sh [DEVICES] [PER_DEVICE] [ROUNDS]
# Env: ZTPD (binary, default target/release/ztpd), PY (venv python with
# pymongo + paho-mqtt), NX (nx-27017), MODES.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
devices="${1:-10}"
per_device="${2:-2000}"
rounds="${3:-1}"
modes="${MODES:-live drain}"
for m in $modes; do case "$m" in live | drain) ;; *) echo "MODES: unknown mode $m (expected live and/or drain)" >&2; exit 2 ;; esac; done
total=$((devices * per_device))
venv=""
for v in "$repo/.venv-test" "$repo/target/venv-telemetry"; do
    [ -x "$v/bin/nx-27017" ] && venv="$v" && break
done
PY="${PY:-$venv/bin/python}"
NX="${NX:-$venv/bin/nx-27017}"
ZTPD="${ZTPD:-$repo/target/release/ztpd}"
for b in "$PY" "$NX" "$ZTPD"; do
    [ -x "$b" ] || { echo "missing $b (scripts/install-test-deps.sh; cargo build --release)" >&2; exit 1; }
done
command -v mosquitto >/dev/null || { echo "missing mosquitto" >&2; exit 1; }
bench="$repo/benches/telemetry/bench.py"

work="$(mktemp -d /tmp/ztpt-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
wait_file_has() { for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

mport=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root"
cat > "$work/mosquitto.conf" <<CONF
$user
listener $mport 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/
max_inflight_messages 10000
max_queued_messages 0
CONF
mosquitto -c "$work/mosquitto.conf" >/dev/null 2>&1 & mpid=$!
pids+=($mpid)
wait_port "$mport"

"$PY" "$bench" payloads "$work" "$devices" "$per_device"

start_nx() {
    nport=$(free_port)
    "$NX" --db memory -p "$nport" --pid-file "$work/nx-$nport.pid" >/dev/null 2>&1 & nxpid=$!
    pids+=($nxpid)
    wait_port "$nport"
}
# CPU (utime + stime) of a process so far, in microseconds.
cpu_us() { local st; read -r -a st < <(cut -d')' -f2 "/proc/$1/stat"); echo $(( (st[11] + st[12]) * 1000000 / $(getconf CLK_TCK) )); }
stop_nx() { echo "  store (nx-27017) CPU: $(( $(cpu_us "$nxpid") / total )) us per message" >&2; kill "$nxpid" 2>/dev/null || true; wait "$nxpid" 2>/dev/null || true; }

publish_all() {
    local pp=()
    for f in "$work"/bench-*.txt; do
        dev="$(basename "$f" .txt)"
        mosquitto_pub -p "$mport" -q 1 -t "devices/$dev/messages/events/" -l < "$f" & pp+=($!)
    done
    for p in "${pp[@]}"; do wait "$p"; done
}

# Subscribers: start_X CLIENT_ID starts one (pid in $sub) with a persistent
# session under CLIENT_ID; X_ready waits until it has subscribed.
start_bridge() {
    ZTPD_LOG="${ZTPD_LOG:-info}" "$ZTPD" --config "$work/root/ztpd.toml" bridge --client-id "$1" --no-share 2>> "$work/bridge.log" & sub=$!
    pids+=($sub)
}
bridge_ready() { wait_file_has "$work/bridge.log" "bridge subscribed"; }
start_prototype() {
    rm -f "$work/proto.ready"
    "$PY" "$bench" prototype "$mport" "mongodb://127.0.0.1:$nport" db_elastacloud collection_elastacloud "$work/proto.ready" "$1" & sub=$!
    pids+=($sub)
}
prototype_ready() { for _ in $(seq 400); do [ -f "$work/proto.ready" ] && return 0; sleep 0.05; done; return 1; }

# timed MODE START READY CLIENT_ID TIMEOUT: one subscriber path, timed as
# MODE says (see the top); sets t0 and t1, leaves the subscriber in $sub.
timed() {
    "$2" "$4"; "$3"
    if [ "$1" = drain ]; then
        kill "$sub"; wait "$sub" 2>/dev/null || true
        publish_all
        t0=$("$PY" "$bench" now)
        "$2" "$4"
    else
        t0=$("$PY" "$bench" now)
        publish_all
    fi
    t1=$("$PY" "$bench" wait "mongodb://127.0.0.1:$nport" db_elastacloud collection_elastacloud "$total" "$5")
}

# run_ztpd MODE: prints msg/s.
run_ztpd() {
    local m0
    m0=$(cpu_us "$mpid")
    start_nx
    mkdir -p "$work/root"
    printf '[telemetry]\nbroker = "mqtt://127.0.0.1:%s"\nmongodb_uri = "mongodb://127.0.0.1:%s"\n' "$mport" "$nport" > "$work/root/ztpd.toml"
    : > "$work/bridge.log"
    timed "$1" start_bridge bridge_ready "bench-$1-$RANDOM" 600
    echo "  ztpd ($1): bridge CPU $(( $(cpu_us "$sub") / total )) us per message; Mosquitto (publishers' and bridge's sides) $(( ($(cpu_us "$mpid") - m0) / total ))" >&2
    kill "$sub"; wait "$sub" 2>/dev/null || true
    [ -n "${KEEP_LOG:-}" ] && cp "$work/bridge.log" "$KEEP_LOG"
    stop_nx
    "$PY" -c "print($total/($t1-$t0))"
}

# run_prototype MODE: prints msg/s.
run_prototype() {
    local m0
    m0=$(cpu_us "$mpid")
    start_nx
    timed "$1" start_prototype prototype_ready "proto-$1-$RANDOM" 1200
    echo "  prototype ($1): subscriber CPU $(( $(cpu_us "$sub") / total )) us per message; Mosquitto $(( ($(cpu_us "$mpid") - m0) / total ))" >&2
    kill "$sub"; wait "$sub" 2>/dev/null || true
    stop_nx
    "$PY" -c "print($total/($t1-$t0))"
}

run_ceiling() {
    echo "  ceiling:" >&2
    start_nx
    read -r t0 t1 < <("$PY" "$bench" ceiling "mongodb://127.0.0.1:$nport" db_elastacloud ceiling "$devices" "$per_device" 1000)
    stop_nx
    "$PY" -c "print($total/($t1-$t0))"
}

echo "telemetry ingest: $devices devices x $per_device messages = $total per path, $rounds round(s), modes: $modes"
for r in $(seq "$rounds"); do
    c=$(run_ceiling)
    for m in $modes; do
        z=$(run_ztpd "$m"); p=$(run_prototype "$m")
        "$PY" - "$z" "$p" "$c" "$r" "$m" <<'PYEOF'
import sys
z, p, c, r, m = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
print("round %s, %s" % (r, m))
print("| path | msg/s | vs prototype | vs ceiling |")
print("|---|---:|---:|---:|")
print("| ztpd bridge (insert_many batches) | %.0f | %.2fx | %.2fx |" % (z, z / p, z / c))
print("| prototype (paho + insert_one) | %.0f | 1.00x | %.2fx |" % (p, p / c))
print("| ceiling (raw insert_many) | %.0f | %.2fx | 1.00x |" % (c, c / p))
PYEOF
    done
done
