#!/usr/bin/env bash
# run_bench.sh - DHCP benchmark: ISC Kea 2.2 (memfile, single thread) and ztpd
# (state.durability = os and = fsync) side by side, same machine, same run, each server
# in its own network namespace, perfdhcp as a relay agent in a client namespace.
# FAMILY=4 (default): DHCPv4 DORA, kea-dhcp4. FAMILY=6: DHCPv6 SOLICIT/ADVERTISE/
# REQUEST/REPLY, kea-dhcp6 (an "exchange" below is then those four messages).
#
#   netns ztpb-cli (perfdhcp)  vk 10.99.0.2 <-> 10.99.0.1 ztpb-kea    kea-dhcp4
#                              vo 10.98.0.2 <-> 10.98.0.1 ztpb-os     ztpd, durability os
#                              vf 10.97.0.2 <-> 10.97.0.1 ztpb-fsync  ztpd, durability fsync
#   (FAMILY=6: fd00:99::2 <-> fd00:99::1 and so on, /64s)
#
# DHCPv4: perfdhcp binds port 67, puts its -l address in giaddr, unicasts to server:67
# and expects the reply at giaddr:67, so each server selects its subnet by giaddr.
# DHCPv6 (-A1): perfdhcp binds 547 and sends RELAY-FORW whose link-address is the first
# global address of its -l interface, so each server selects its subnet by link-address.
#
# Needs root, iproute2, kea-dhcp4-server (FAMILY=6: kea-dhcp6-server), kea-admin
# (perfdhcp), a release build of ztpd:
#   cargo build --release && sudo benches/dhcp/run_bench.sh
#   cargo build --release && sudo FAMILY=6 benches/dhcp/run_bench.sh
# Tunables: DURATION=10 RATES="2000 4000 ..." CLIENTS=50000 ZTPD_BIN=target/release/ztpd
#           SERVERS="kea ztpd-os ztpd-fsync" WORK=/tmp/ztpd-dhcp-bench FAMILY=4
# Prints one line per (server, rate), then the sustained rate (<1% drops in both phases)
# and server CPU microseconds per completed exchange for each server, and ztpd's ratios
# to Kea (rate and CPU per exchange).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}
RATES=${RATES:-"2000 4000 6000 8000 10000 12000 16000"}
CLIENTS=${CLIENTS:-50000}
ZTPD_BIN=${ZTPD_BIN:-$HERE/../../target/release/ztpd}
SERVERS=${SERVERS:-"kea ztpd-os ztpd-fsync"}
FAMILY=${FAMILY:-4}
WORK=${WORK:-/tmp/ztpd-dhcp-bench}
NS_CLI=ztpb-cli

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
case $FAMILY in
  4) KEA=kea-dhcp4 PHASE1=DISCOVER-OFFER PHASE2=REQUEST-ACK UNIT=DORA ;;
  6) KEA=kea-dhcp6 PHASE1=SOLICIT-ADVERTISE PHASE2=REQUEST-REPLY UNIT=exch ;;
  *) echo "FAMILY must be 4 or 6, not '$FAMILY'" >&2; exit 1 ;;
esac
for b in $KEA perfdhcp ip; do command -v $b >/dev/null || { echo "missing $b (apt-get install -y $KEA-server kea-admin iproute2)" >&2; exit 1; }; done
[ -x "$ZTPD_BIN" ] || { echo "no ztpd binary at $ZTPD_BIN (cargo build --release)" >&2; exit 1; }

declare -A NS=([kea]=ztpb-kea [ztpd-os]=ztpb-os [ztpd-fsync]=ztpb-fsync)
declare -A NET=([kea]=99 [ztpd-os]=98 [ztpd-fsync]=97)
declare -A VETH=([kea]=vk [ztpd-os]=vo [ztpd-fsync]=vf)
declare -A PID BEST BEST_AT CPU_AT_BEST CPU_AT

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
# Server-side and client-side address of network n.
srv_ip() { if [ "$FAMILY" = 6 ]; then echo "fd00:$1::1"; else echo "10.$1.0.1"; fi; }
cli_ip() { if [ "$FAMILY" = 6 ]; then echo "fd00:$1::2"; else echo "10.$1.0.2"; fi; }
# No duplicate address detection: addresses must be usable at once.
no_dad() { ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; }
PLEN=16; [ "$FAMILY" = 6 ] && PLEN=64
no_dad $NS_CLI 2>/dev/null
for s in $SERVERS; do
  ns=${NS[$s]}; n=${NET[$s]}; v=${VETH[$s]}
  ip netns add "$ns"; no_dad "$ns" 2>/dev/null
  ip link add "${v}s" netns "$ns" type veth peer name "${v}c" netns $NS_CLI
  ip -n "$ns" addr add "$(srv_ip "$n")/$PLEN" dev "${v}s" nodad
  ip -n $NS_CLI addr add "$(cli_ip "$n")/$PLEN" dev "${v}c" nodad
  ip -n "$ns" link set lo up; ip -n "$ns" link set "${v}s" up; ip -n $NS_CLI link set "${v}c" up
done

start_kea6() {
  # Kea's server DUID goes to its data directory unless told otherwise.
  cat > "$WORK/kea-dhcp6.json" <<EOF
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [ "vks/fd00:99::1" ] },
  "server-id": { "type": "LLT", "persist": false },
  "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea-leases6.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": false },
  "preferred-lifetime": 3000, "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 2880,
  "option-data": [
    { "name": "bootfile-url", "data": "http://[fd00:99::1]:8080/files/bootstrap/generic", "always-send": true } ],
  "subnet6": [ { "id": 1, "subnet": "fd00:99::/64", "pools": [ { "pool": "fd00:99::1:0 - fd00:99::ffff:ffff" } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "output_options": [ { "output": "$WORK/kea.log" } ], "severity": "WARN" } ] } }
EOF
  ip netns exec ztpb-kea kea-dhcp6 -c "$WORK/kea-dhcp6.json" > "$WORK/kea.stdout" 2>&1 &
  PID[kea]=$!
}

start_kea() {
  [ "$FAMILY" = 6 ] && { start_kea6; return; }
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
  if [ "$FAMILY" = 6 ]; then
    # The HTTP listener must be IPv6 when a plan serves DHCPv6. Same option as
    # Kea's: 59 (the generic profile's bootstrap URL).
    sed -i -e 's/^dhcp = .*/dhcp6 = "[::]:547"/' -e 's/127\.0\.0\.1/[::1]/' "$d/ztpd.toml"
    cat > "$d/plans/bench.toml" <<EOF
[site]
name = "bench"
server_ip6 = "fd00:$3::1"
[dhcp6]
subnet = "fd00:$3::/64"
pool = "fd00:$3::1:0-fd00:$3::ffff:ffff"
lease_time = "1h"
EOF
  else
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
  fi
  ZTPD_LOG=warn ip netns exec "ztpb-${1#ztpd-}" "$ZTPD_BIN" --config "$d/ztpd.toml" run > "$d/ztpd.log" 2>&1 &
  PID[$1]=$!
}

for s in $SERVERS; do
  case $s in kea) start_kea ;; ztpd-os) start_ztpd ztpd-os os 98 ;; ztpd-fsync) start_ztpd ztpd-fsync fsync 97 ;; esac
done

# perfdhcp's arguments for server s: family, relay options, local address or interface.
perf_args() {
  local n=${NET[$1]}
  if [ "$FAMILY" = 6 ]; then echo "-6 -A1 -l ${VETH[$1]}c"; else echo "-4 -l $(cli_ip "$n")"; fi
}
wait_ready() { # name
  local server; server=$(srv_ip "${NET[$1]}")
  for _ in $(seq 80); do
    # shellcheck disable=SC2046
    ip netns exec $NS_CLI perfdhcp $(perf_args "$1") -r 50 -n 5 -W 300000 "$server" 2>&1 \
      | awk -v p="$PHASE2" '$0 ~ p {s=1} s && /^received packets:/{ok=($3>0)} END{exit !ok}' && {
      # shellcheck disable=SC2046
      ip netns exec $NS_CLI perfdhcp $(perf_args "$1") -r 200 -n 200 -R 200 -W 300000 "$server" > /dev/null 2>&1; return 0; }
    sleep 0.25
  done
  echo "$1 at $server never answered a $UNIT" >&2; return 1
}
for s in $SERVERS; do
  wait_ready "$s" || { cat "$WORK"/*.stdout "$WORK"/*/ztpd.log 2>/dev/null; exit 1; }
done

parse() { # achieved do_sent do_drop ra_sent ra_drop do_avg ra_avg
  awk -v dur="$DURATION" -v p1="Statistics for: $PHASE1" -v p2="Statistics for: $PHASE2" '
    /^received packets:/ {recv[s]=$3}
    index($0, p1) {s="do"} index($0, p2) {s="ra"}
    /^sent packets:/ {sent[s]=$3} /^drops:/ {drop[s]=$2} /^avg delay:/ {avg[s]=$3}
    END {printf "%.0f %s %s %s %s %s %s\n", recv["ra"]/dur, sent["do"], drop["do"], sent["ra"], drop["ra"], avg["do"], avg["ra"]}' "$1"
}
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Columns: phase 1 (DISCOVER-OFFER or SOLICIT-ADVERTISE), phase 2 (REQUEST-ACK or -REPLY).
printf "%-11s %7s %9s %8s %8s %9s %9s %8s %12s\n" server offered $UNIT/s p1_drop% p2_drop% p1_avg_ms p2_avg_ms srv_cpu% cpu_us/$UNIT
run_one() { # server rate
  local s=$1 rate=$2 f="$WORK/perfdhcp-$1-r$2.txt" t0 t1 w0 w1
  t0=$(ticks "${PID[$s]}"); w0=$(date +%s.%N)
  # shellcheck disable=SC2046
  ip netns exec $NS_CLI perfdhcp $(perf_args "$s") -r "$rate" -p "$DURATION" -R "$CLIENTS" -W 1000000 "$(srv_ip "${NET[$s]}")" > "$f" 2>&1
  t1=$(ticks "${PID[$s]}"); w1=$(date +%s.%N)
  read -r ach dos dod ras rad doa raa < <(parse "$f")
  local dop rap cpu usd
  dop=$(awk -v d="${dod:-0}" -v s="${dos:-0}" 'BEGIN{printf "%.2f", s? 100*d/s : 100}')
  rap=$(awk -v d="${rad:-0}" -v s="${ras:-0}" 'BEGIN{printf "%.2f", s? 100*d/s : 100}')
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v w0="$w0" -v w1="$w1" 'BEGIN{printf "%.0f", 100*(b-a)/hz/(w1-w0)}')
  usd=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="${ach:-0}" -v d="$DURATION" 'BEGIN{printf "%.1f", n? 1e6*(b-a)/hz/(n*d) : 0}')
  printf "%-11s %7s %9s %8s %8s %9s %9s %8s %12s\n" "$s" "$rate" "${ach:-NA}" "$dop" "$rap" "${doa:-NA}" "${raa:-NA}" "$cpu" "$usd"
  CPU_AT[$s,$rate]=$usd
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
echo "SUMMARY $(date -u +%FT%TZ) DHCPv$FAMILY cpus=$(nproc) loadavg_at_start=$LOAD0 loadavg_at_end=$(cut -d' ' -f1 /proc/loadavg) dur=${DURATION}s clients=$CLIENTS $KEA-$($KEA -v 2>/dev/null)"
for s in $SERVERS; do
  printf "  %-11s sustained %6s $UNIT/s (offered %s, <1%% drops), %s us CPU per $UNIT there\n" \
    "$s" "${BEST[$s]:-0}" "${BEST_AT[$s]:-none}" "${CPU_AT_BEST[$s]:-NA}"
done
# CPU per exchange against Kea's at the same offered rate.
for s in $SERVERS; do
  [ "$s" = kea ] && continue
  for rate in $RATES; do
    awk -v s="$s" -v rate="$rate" -v c="${CPU_AT[$s,$rate]:-0}" -v kc="${CPU_AT[kea,$rate]:-0}" \
      'BEGIN{ if (c > 0 && kc > 0) printf "  cpu ratio %-11s at %6s offered: %.2f\n", s, rate, c/kc }'
  done
done
# ztpd against Kea, each at its own best sustained rate (targets: rate >= 1.5x, CPU <= 0.5x).
for s in $SERVERS; do
  [ "$s" = kea ] && continue
  awk -v s="$s" -v r="${BEST[$s]:-0}" -v kr="${BEST[kea]:-0}" -v c="${CPU_AT_BEST[$s]:-0}" -v kc="${CPU_AT_BEST[kea]:-0}" \
    'BEGIN{ if (kr > 0 && kc > 0) printf "  ratio %-11s rate %.2fx Kea, CPU per exchange %.2fx Kea\n", s, r/kr, c/kc;
            else print "  ratio " s ": Kea sustained no rate here" }'
done
echo "raw output in $WORK"
