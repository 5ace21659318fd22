#!/usr/bin/env bash
# Telemetry ingest, device -> store, through ztpd's local hub vs Mosquitto +
# bridge, side by side in one run, both into the embedded SQLite store:
#   embedded   mosquitto_pub (SAS per device) -> local hub of `ztpd run` -> store (in-process)
#   tls        the same over the hub's TLS listener (mosquitto_pub --cafile state/hub-ca.pem)
#   mosquitto  mosquitto_pub -> Mosquitto 2.0 -> bridge in `ztpd run` (telemetry.broker) -> store
# Rounds alternate the paths. Each path must store every message (zero loss)
# or the script fails. Time: first publish -> `stored` counter on /metrics
# reaching the total. The last lines give the ratios (embedded / mosquitto,
# and the TLS cost per message).
#
#   benches/broker/embedded_bench.sh [DEVICES] [PER_DEVICE] [ROUNDS]
# Env: ZTPD (binary, default target/release/ztpd); PATHS ("embedded tls
# mosquitto", default all); KEEP_WORK=1 keeps the work directory (ztpd logs).
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
    bport=$(free_port); tport=$(free_port)
    { listen_toml; echo "$1"; } > "$root/ztpd.toml"
    sed -i "s/@BPORT@/$bport/; s/@TPORT@/$tport/" "$root/ztpd.toml"
    ZTPD_LOG="${ZTPD_LOG:-info}" "$ZTPD" --config "$root/ztpd.toml" run >"$root/log" 2>&1 & zpid=$!
    pids+=($zpid)
    for _ in $(seq 400); do
        grep -Eq "bridge subscribed|local hub listening" "$root/log" && return 0; sleep 0.05
    done
    echo "ztpd did not start its hub or bridge:" >&2; cat "$root/log" >&2; exit 1
}
stop_ztpd() { kill "$zpid" 2>/dev/null || true; wait "$zpid" 2>/dev/null || true; }
stored() { curl -s "http://127.0.0.1:$hport/metrics" | awk '/outcome="stored"/ {print $2}'; }

# $1 = port, $2 = "auth" for SAS logins, "tls" for SAS over TLS
publish_all() {
    local pp=()
    for f in "$work"/bench-*.txt; do
        dev="$(basename "$f" .txt)"
        if [ "$2" = auth ] || [ "$2" = tls ]; then
            tls=(); [ "$2" = tls ] && tls=(--cafile "$root/state/hub-ca.pem" -h localhost)
            mosquitto_pub "${tls[@]}" -p "$1" -q 1 -i "$dev" -u "localhost/$dev/?api-version=2021-04-12" \
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
    echo "$1 $((t1 - t0))" >> "$work/times"
}

paths="${PATHS:-embedded tls mosquitto}"
hub_settings=$'[broker]\nlisten = "127.0.0.1:@BPORT@"\ntls_listen = "127.0.0.1:@TPORT@"'
sas_all() {
    for f in "$work"/bench-*.txt; do
        dev="$(basename "$f" .txt)"; sas "$root/state/hub.key" "$dev" > "$work/$dev.sas"
    done
}
for r in $(seq "$rounds"); do
    if [[ " $paths " == *" embedded "* ]]; then
        start_ztpd "$hub_settings"
        sas_all
        measure "embedded" "$bport" auth
        stop_ztpd
    fi
    if [[ " $paths " == *" tls "* ]]; then
        start_ztpd "$hub_settings"
        sas_all
        measure "tls" "$tport" tls
        stop_ztpd
    fi
    if [[ " $paths " == *" mosquitto "* ]]; then
        start_ztpd "[broker]
enabled = false
[telemetry]
broker = \"mqtt://127.0.0.1:$mport\""
        measure "mosquitto" "$mport" anon
        stop_ztpd
    fi
done
# Medians over the rounds, and the ratios.
python3 - "$work/times" "$total" <<'PY'
import sys, statistics
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v))
total = int(sys.argv[2])
med = {k: statistics.median(v) for k, v in times.items()}
for k, v in med.items():
    print(f"median {k}: {total * 1000 / v:.0f} msg/s ({v:.0f} ms)")
if "embedded" in med and "mosquitto" in med:
    print(f"ratio local hub / (Mosquitto + bridge): {med['mosquitto'] / med['embedded']:.2f}x (higher is better)")
if "embedded" in med and "tls" in med:
    print(f"TLS cost: {(med['tls'] - med['embedded']) * 1000 / total:.1f} us per message ({med['embedded'] / med['tls']:.2f}x of plain)")
PY
