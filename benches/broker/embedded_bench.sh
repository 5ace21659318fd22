#!/usr/bin/env bash
# Telemetry ingest through the embedded broker vs Mosquitto, side by side in
# one run, both into the embedded SQLite store with the same bridge:
#   embedded   mosquitto_pub (SAS per device) -> rumqttd in `ztpd run` -> bridge -> state/telemetry.sqlite
#   mosquitto  mosquitto_pub -> Mosquitto 2.0 -> bridge in `ztpd run` (telemetry.broker) -> state/telemetry.sqlite
# Rounds alternate the two paths. Each path must store every message (zero
# loss) or the script fails. Time: first publish -> `stored` counter on
# /metrics reaching the total.
#
#   benches/broker/embedded_bench.sh [DEVICES] [PER_DEVICE] [ROUNDS]
# Env: ZTPD (binary, default target/release/ztpd); PATHS ("embedded mosquitto",
# default both); KEEP_WORK=1 keeps the work directory (ztpd logs) and prints it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
devices="${1:-10}"
per_device="${2:-2000}"
rounds="${3:-1}"
total=$((devices * per_device))
ZTPD="${ZTPD:-$repo/target/release/ztpd}"
[ -x "$ZTPD" ] || { echo "missing $ZTPD (cargo build --release)" >&2; exit 1; }
for b in mosquitto mosquitto_pub python3 curl; do
    command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 1; }
done

work="$(mktemp -d /tmp/ztpt-broker-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
now_ms() { date +%s%3N; }

# payload lines per device (prototype-shaped readings, distinct signal_dates)
python3 - "$work" "$devices" "$per_device" <<'PY'
import sys, datetime
work, devices, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = datetime.datetime(2024, 5, 1)
for d in range(devices):
    dev = f"bench-{d:04d}"
    with open(f"{work}/{dev}.txt", "w") as f:
        for n in range(per):
            t = (t0 + datetime.timedelta(microseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            f.write(f'{{"device_id":"{dev}","device_name":{1000001+d},"device_latitude":-35.{n%1000:06d},"device_longitude":-65.{n%700:06d},"device_battery_level":0.5,"signal_date":"{t}"}}\n')
PY

# SAS token for a device of the local hub (key = HMAC(enrollment key, id))
sas() {
    python3 - "$1" "$2" <<'PY'
import sys, hmac, hashlib, base64, urllib.parse, time
key = base64.b64decode(open(sys.argv[1]).read().strip())
dev = sys.argv[2]
dkey = hmac.new(key, dev.encode(), hashlib.sha256).digest()
sr = urllib.parse.quote(f"localhost/devices/{dev}", safe="")
se = int(time.time()) + 3600
sig = base64.b64encode(hmac.new(dkey, f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
print(f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}")
PY
}

mport=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root"
cat > "$work/mosquitto.conf" <<CONF
$user
listener $mport 127.0.0.1
allow_anonymous true
max_inflight_messages 10000
max_queued_messages 0
CONF
mosquitto -c "$work/mosquitto.conf" >/dev/null 2>&1 & pids+=($!)
wait_port "$mport"

# start `ztpd run` in a fresh root; $1 = extra settings
start_ztpd() {
    root="$work/root-$RANDOM"; mkdir -p "$root"
    cp -r "$repo/tests/fixtures/good/." "$root/"   # a small valid plan
    hport=$(free_port); bport=$(free_port)
    cat > "$root/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$hport"
tftp = "127.0.0.1:$(free_port)"
dhcp = "127.0.0.1:$(free_port)"
$1
TOML
    sed -i "s/@BPORT@/$bport/" "$root/ztpd.toml"
    ZTPD_LOG="${ZTPD_LOG:-info}" "$ZTPD" --config "$root/ztpd.toml" run >"$root/log" 2>&1 & zpid=$!
    pids+=($zpid)
    for _ in $(seq 400); do grep -q "bridge subscribed" "$root/log" && return 0; sleep 0.05; done
    echo "ztpd did not subscribe:" >&2; cat "$root/log" >&2; exit 1
}
stop_ztpd() { kill "$zpid" 2>/dev/null || true; wait "$zpid" 2>/dev/null || true; }
stored() { curl -s "http://127.0.0.1:$hport/metrics" | awk '/outcome="stored"/ {print $2}'; }

# $1 = port, $2 = "auth" for SAS logins
publish_all() {
    local pp=()
    for f in "$work"/bench-*.txt; do
        dev="$(basename "$f" .txt)"
        if [ "$2" = auth ]; then
            mosquitto_pub -p "$1" -q 1 -i "$dev" -u "localhost/$dev/?api-version=2021-04-12" \
                -P "$(cat "$work/$dev.sas")" -t "devices/$dev/messages/events/" -l < "$f" & pp+=($!)
        else
            mosquitto_pub -p "$1" -q 1 -i "$dev" -t "devices/$dev/messages/events/" -l < "$f" & pp+=($!)
        fi
    done
    for p in "${pp[@]}"; do wait "$p"; done
}

measure() { # $1 = label, $2 = port, $3 = auth|anon
    local t0 t1 n
    t0=$(now_ms)
    publish_all "$2" "$3"
    for _ in $(seq "${WAIT_TICKS:-6000}"); do
        n=$(stored); [ "${n:-0}" -ge "$total" ] && break; sleep 0.02
    done
    t1=$(now_ms)
    n=$(stored)
    [ "${n:-0}" -eq "$total" ] || { echo "$1: stored ${n:-0} of $total (loss)" >&2; exit 1; }
    echo "$1 $(( total * 1000 / (t1 - t0) )) msg/s ($total in $((t1 - t0)) ms)"
}

paths="${PATHS:-embedded mosquitto}"
for r in $(seq "$rounds"); do
    if [[ " $paths " == *" embedded "* ]]; then
        start_ztpd $'[broker]\nlisten = "127.0.0.1:@BPORT@"'
        for f in "$work"/bench-*.txt; do
            dev="$(basename "$f" .txt)"; sas "$root/state/hub.key" "$dev" > "$work/$dev.sas"
        done
        measure "round $r embedded " "$bport" auth
        stop_ztpd
    fi
    if [[ " $paths " == *" mosquitto "* ]]; then
        start_ztpd "[broker]
enabled = false
[telemetry]
broker = \"mqtt://127.0.0.1:$mport\""
        measure "round $r mosquitto" "$mport" anon
        stop_ztpd
    fi
done
