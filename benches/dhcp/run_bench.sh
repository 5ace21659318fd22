#!/usr/bin/env bash
# run_bench.sh - DHCPv4 DORA benchmark: ISC Kea 2.2 (memfile, single thread) and ztpd
# (state.durability = os and = fsync) side by side, same machine, same run, each server
# in its own network namespace, perfdhcp as a relay agent in a client namespace.
#
#   netns ztpb-cli (perfdhcp)  vk 10.99.0.2 <-> 10.99.0.1 ztpb-kea    kea-dhcp4
#                              vo 10.98.0.2 <-> 10.98.0.1 ztpb-os     ztpd, durability os
#                              vf 10.97.0.2 <-> 10.97.0.1 ztpb-fsync  ztpd, durability fsync
#
# perfdhcp binds port 67, puts its -l address in giaddr, unicasts to server:67 and expects
# the reply at giaddr:67, so each server selects its subnet by giaddr.
#
# Needs root, iproute2, kea-dhcp4-server, kea-admin (perfdhcp), a release build of ztpd:
#   cargo build --release && sudo benches/dhcp/run_bench.sh
# Tunables: DURATION=10 RATES="2000 4000 ..." CLIENTS=50000 ZTPD_BIN=target/release/ztpd
#           SERVERS="kea ztpd-os ztpd-fsync" WORK=/tmp/ztpd-dhcp-bench
# Prints one line per (server, rate), then the sustained rate (<1% drops in both phases)
# and server CPU microseconds per completed DORA for each server.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}
RATES=${RATES:-"2000 4000 6000 8000 10000 12000 16000"}
CLIENTS=${CLIENTS:-50000}
ZTPD_BIN=${ZTPD_BIN:-$HERE/../../target/release/ztpd}
SERVERS=${SERVERS:-"kea ztpd-os ztpd-fsync"}
WORK=${WORK:-/tmp/ztpd-dhcp-bench}
NS_CLI=ztpb-cli

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
for b in kea-dhcp4 perfdhcp ip; do command -v $b >/dev/null || { echo "missing $b (apt-get install -y kea-dhcp4-server kea-admin iproute2)" >&2; exit 1; }; done
[ -x "$ZTPD_BIN" ] || { echo "no ztpd binary at $ZTPD_BIN (cargo build --release)" >&2; exit 1; }

declare -A NS=([kea]=ztpb-kea [ztpd-os]=ztpb-os [ztpd-fsync]=ztpb-fsync)
declare -A NET=([kea]=99 [ztpd-os]=98 [ztpd-fsync]=97)
declare -A VETH=([kea]=vk [ztpd-os]=vo [ztpd-fsync]=vf)
declare -A PID BEST BEST_AT CPU_AT_BEST

cleanup() {
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null && wait "${PID[$s]}" 2>/dev/null; done
  for ns in $NS_CLI ztpb-kea ztpb-os ztpb-fsync; do ip netns del "$ns" 2>/dev/null; done
}
trap cleanup EXIT INT TERM
cleanup
rm -rf "$WORK"; mkdir -p "$WORK"
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
export KEA_PIDFILE_DIR="$WORK" KEA_LOCKFILE_DIR="$WORK"

ip netns add $NS_CLI; ip -n $NS_CLI link set lo up
for s in $SERVERS; do
  ns=${NS[$s]}; n=${NET[$s]}; v=${VETH[$s]}
  ip netns add "$ns"
  ip link add "${v}s" netns "$ns" type veth peer name "${v}c" netns $NS_CLI
  ip -n "$ns" addr add "10.$n.0.1/16" dev "${v}s"; ip -n $NS_CLI addr add "10.$n.0.2/16" dev "${v}c"
  ip -n "$ns" link set lo up; ip -n "$ns" link set "${v}s" up; ip -n $NS_CLI link set "${v}c" up
done

start_kea() {
  cat > "$WORK/kea-dhcp4.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "vks" ], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea-leases4.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": false },
  "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 3150,
  "option-def": [ { "name": "tftp-server-address", "code": 150, "type": "ipv4-address", "array": true, "space": "dhcp4" } ],
  "option-data": [
    { "name": "tftp-server-name", "data": "10.99.0.1", "always-send": true },
    { "name": "boot-file-name", "data": "http://10.99.0.1:8080/files/bootstrap/generic", "always-send": true },
    { "name": "tftp-server-address", "data": "10.99.0.1", "always-send": true } ],
  "subnet4": [ { "id": 1, "subnet": "10.99.0.0/16", "pools": [ { "pool": "10.99.1.1 - 10.99.255.254" } ],
      "option-data": [ { "name": "routers", "data": "10.99.0.1" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$WORK/kea.log" } ], "severity": "WARN" } ] } }
EOF
  ip netns exec ztpb-kea kea-dhcp4 -c "$WORK/kea-dhcp4.json" > "$WORK/kea.stdout" 2>&1 &
  PID[kea]=$!
}

start_ztpd() { # name durability net
  local d="$WORK/$1"; mkdir -p "$d/plans" "$d/templates" "$d/files"
  cat > "$d/ztpd.toml" <<EOF
[listen]
dhcp = "0.0.0.0:67"
http = "127.0.0.1:8080"
tftp = "127.0.0.1:6969"
[state]
durability = "$2"
[broker]
enabled = false
EOF
  # Same options as Kea's: router, 66, 67 (generic profile gives 67; the model adds 66/150).
  cat > "$d/plans/bench.toml" <<EOF
[site]
name = "bench"
server_ip = "10.$3.0.1"
[dhcp]
subnet = "10.$3.0.0/16"
pool = "10.$3.1.1-10.$3.255.254"
router = "10.$3.0.1"
lease_time = "1h"
EOF
  ZTPD_LOG=warn ip netns exec "ztpb-${1#ztpd-}" "$ZTPD_BIN" --config "$d/ztpd.toml" run > "$d/ztpd.log" 2>&1 &
  PID[$1]=$!
}

for s in $SERVERS; do
  case $s in kea) start_kea ;; ztpd-os) start_ztpd ztpd-os os 98 ;; ztpd-fsync) start_ztpd ztpd-fsync fsync 97 ;; esac
done

wait_ready() { # name server local
  for _ in $(seq 80); do
    ip netns exec $NS_CLI perfdhcp -4 -l "$3" -r 50 -n 5 -W 300000 "$2" 2>&1 \
      | awk '/REQUEST-ACK/{s=1} s && /^received packets:/{ok=($3>0)} END{exit !ok}' && {
      ip netns exec $NS_CLI perfdhcp -4 -l "$3" -r 200 -n 200 -R 200 -W 300000 "$2" > /dev/null 2>&1; return 0; }
    sleep 0.25
  done
  echo "$1 at $2 never answered a DORA" >&2; return 1
}
for s in $SERVERS; do
  n=${NET[$s]}
  wait_ready "$s" "10.$n.0.1" "10.$n.0.2" || { cat "$WORK"/*.stdout "$WORK"/*/ztpd.log 2>/dev/null; exit 1; }
done

parse() { # achieved do_sent do_drop ra_sent ra_drop do_avg ra_avg
  awk -v dur="$DURATION" '
    /^received packets:/ {recv[s]=$3}
    /Statistics for: DISCOVER-OFFER/ {s="do"} /Statistics for: REQUEST-ACK/ {s="ra"}
    /^sent packets:/ {sent[s]=$3} /^drops:/ {drop[s]=$2} /^avg delay:/ {avg[s]=$3}
    END {printf "%.0f %s %s %s %s %s %s\n", recv["ra"]/dur, sent["do"], drop["do"], sent["ra"], drop["ra"], avg["do"], avg["ra"]}' "$1"
}
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
printf "%-11s %7s %9s %8s %8s %9s %9s %8s %12s\n" server offered DORA/s do_drop% ra_drop% do_avg_ms ra_avg_ms srv_cpu% cpu_us/DORA
run_one() { # server rate
  local s=$1 rate=$2 n=${NET[$1]} f="$WORK/perfdhcp-$1-r$2.txt" t0 t1 w0 w1
  t0=$(ticks "${PID[$s]}"); w0=$(date +%s.%N)
  ip netns exec $NS_CLI perfdhcp -4 -l "10.$n.0.2" -r "$rate" -p "$DURATION" -R "$CLIENTS" -W 1000000 "10.$n.0.1" > "$f" 2>&1
  t1=$(ticks "${PID[$s]}"); w1=$(date +%s.%N)
  read -r ach dos dod ras rad doa raa < <(parse "$f")
  local dop rap cpu usd
  dop=$(awk -v d="${dod:-0}" -v s="${dos:-0}" 'BEGIN{printf "%.2f", s? 100*d/s : 100}')
  rap=$(awk -v d="${rad:-0}" -v s="${ras:-0}" 'BEGIN{printf "%.2f", s? 100*d/s : 100}')
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v w0="$w0" -v w1="$w1" 'BEGIN{printf "%.0f", 100*(b-a)/hz/(w1-w0)}')
  usd=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="${ach:-0}" -v d="$DURATION" 'BEGIN{printf "%.1f", n? 1e6*(b-a)/hz/(n*d) : 0}')
  printf "%-11s %7s %9s %8s %8s %9s %9s %8s %12s\n" "$s" "$rate" "${ach:-NA}" "$dop" "$rap" "${doa:-NA}" "${raa:-NA}" "$cpu" "$usd"
  if awk -v a="$dop" -v b="$rap" 'BEGIN{exit !(a<1 && b<1)}' \
     && awk -v x="$ach" -v y="${BEST[$s]:-0}" 'BEGIN{exit !(x>y)}'; then
    BEST[$s]=$ach; BEST_AT[$s]=$rate; CPU_AT_BEST[$s]=$usd
  fi
}
# Alternate servers at each rate so that background load hits them alike.
for rate in $RATES; do
  for s in $SERVERS; do run_one "$s" "$rate"; done
done

echo
echo "SUMMARY $(date -u +%FT%TZ) cpus=$(nproc) loadavg_at_start=$LOAD0 dur=${DURATION}s clients=$CLIENTS kea-$(kea-dhcp4 -v 2>/dev/null)"
for s in $SERVERS; do
  printf "  %-11s sustained %6s DORA/s (offered %s, <1%% drops), %s us CPU per DORA there\n" \
    "$s" "${BEST[$s]:-0}" "${BEST_AT[$s]:-none}" "${CPU_AT_BEST[$s]:-NA}"
done
echo "raw output in $WORK"
