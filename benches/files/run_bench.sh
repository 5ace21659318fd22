#!/usr/bin/env bash
# run_bench.sh - deployment-file throughput, ztpd side by side with the usual peers:
#   TFTP: ztpd vs tftpd-hpa (in.tftpd), clients curl --tftp-blksize 1468 and
#         atftp with blksize 1468 + windowsize 8 (tftpd-hpa has no windowsize: lockstep)
#   HTTP: ztpd /files/ vs nginx (sendfile), sequential curl downloads
# One 64 MiB image, every peer started here on free 127.0.0.1 ports, runs alternated
# so machine noise hits both sides alike. Prints MB/s and the ztpd/peer ratio.
#   apt-get install -y curl atftp tftpd-hpa nginx-light
# Usage: benches/files/run_bench.sh [RUNS]   (ZTPD_BIN to skip the release build)
set -euo pipefail
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${ZTPD_BIN:-}" ]; then
  (cd "$HERE" && cargo build --release --quiet)
  ZTPD_BIN="$HERE/target/release/ztpd"
fi
for t in curl atftp in.tftpd nginx python3; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y curl atftp tftpd-hpa nginx-light)"; exit 2; }
done
W=$(mktemp -d /tmp/ztpd-files-bench.XXXXXX)
chmod 755 "$W"   # nginx workers run as an unprivileged user when started as root
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

free_port() { # udp|tcp
  python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}

SIZE=$((64 * 1024 * 1024))
mkdir -p "$W/root/files/images" "$W/root/plans" "$W/tftproot/images" "$W/nginx/files/images" "$W/out"
head -c $SIZE /dev/urandom > "$W/root/files/images/bench.bin"
cp "$W/root/files/images/bench.bin" "$W/tftproot/images/bench.bin"
cp "$W/root/files/images/bench.bin" "$W/nginx/files/images/bench.bin"
IMG=images/bench.bin

Z_TFTP=$(free_port udp); Z_HTTP=$(free_port tcp); Z_DHCP=$(free_port udp)
H_TFTP=$(free_port udp); N_HTTP=$(free_port tcp)
cat > "$W/root/ztpd.toml" <<EOT
[listen]
dhcp = "127.0.0.1:$Z_DHCP"
tftp = "127.0.0.1:$Z_TFTP"
http = "127.0.0.1:$Z_HTTP"
[access]
configs = "open"
# Hellos come from 127.0.0.1, where no device holds a lease: trust any address.
hello = "any"
[broker]
enabled = false
EOT
cat > "$W/root/plans/bench.toml" <<EOT
[site]
name = "bench"
server_ip = "127.0.0.1"
[models.host]
vendor = "generic"
match = "bench"
[[devices]]
name = "host1"
model = "host"
serial = "BENCH1"
EOT
ZTPD_LOG=warn "$ZTPD_BIN" --config "$W/root/ztpd.toml" run > "$W/ztpd.log" 2>&1 &
PIDS+=($!)
in.tftpd -L -s -a "127.0.0.1:$H_TFTP" -u "$(id -un)" "$W/tftproot" > "$W/tftpd.log" 2>&1 &
PIDS+=($!)
cat > "$W/nginx.conf" <<EOT
daemon off;
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $W/nb; proxy_temp_path $W/np; fastcgi_temp_path $W/nf;
  uwsgi_temp_path $W/nu; scgi_temp_path $W/ns;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$N_HTTP; root $W/nginx; }
}
EOT
nginx -c "$W/nginx.conf" > "$W/nginx.log" 2>&1 &
PIDS+=($!)

ready=""
for i in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$Z_HTTP/healthz" >/dev/null \
    && curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$N_HTTP/files/$IMG"; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "servers did not start:"; tail -n 5 "$W"/*.log "$W/nginx.err" 2>/dev/null; exit 1; }

# time_cmd OUTFILE cmd... -> seconds on stdout; fails if the copy differs
time_cmd() {
  local out=$1; shift
  rm -f "$out"
  local t0=$EPOCHREALTIME
  timeout 120 "$@" > /dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  if [ "$out" != /dev/null ]; then cmp -s "$out" "$W/root/files/$IMG" || { echo "BAD COPY from: $*" >&2; exit 1; }; fi
  python3 -c "print($t1 - $t0)"
}

declare -A TOTAL
bench() { # label-a label-b  cmd-a  cmd-b  (commands use OUT)
  local a=$1 b=$2 ca=$3 cb=$4
  TOTAL[$a]=0; TOTAL[$b]=0
  for r in $(seq 1 "$RUNS"); do
    for side in a b; do
      local label cmd; if [ $side = a ]; then label=$a cmd=$ca; else label=$b cmd=$cb; fi
      local s; s=$(OUT="$W/out/$label" eval "time_cmd \"$W/out/$label\" $cmd")
      TOTAL[$label]=$(python3 -c "print(${TOTAL[$label]} + $s)")
    done
  done
  python3 - "$a" "${TOTAL[$a]}" "$b" "${TOTAL[$b]}" "$RUNS" "$SIZE" <<'PY'
import sys
a, ta, b, tb, runs, size = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ma, mb = size * runs / ta / 1e6, size * runs / tb / 1e6
print(f"{a:28s} {ma:9.1f} MB/s   {b:28s} {mb:9.1f} MB/s   ratio {ma / mb:5.2f}x")
PY
}

echo "64 MiB image, $RUNS runs each, alternated; $(nproc) CPUs; $(date -u +%FT%TZ)"
bench ztpd-curl-tftp-1468 tftpd-hpa-curl-tftp-1468 \
  "curl -s --tftp-blksize 1468 -o \$OUT tftp://127.0.0.1:$Z_TFTP/$IMG" \
  "curl -s --tftp-blksize 1468 -o \$OUT tftp://127.0.0.1:$H_TFTP/$IMG"
bench ztpd-atftp-w8 tftpd-hpa-atftp-w8 \
  "atftp --option 'blksize 1468' --option 'windowsize 8' -g -r $IMG -l \$OUT 127.0.0.1 $Z_TFTP" \
  "atftp --option 'blksize 1468' --option 'windowsize 8' -g -r $IMG -l \$OUT 127.0.0.1 $H_TFTP"
bench ztpd-http-curl nginx-http-curl \
  "curl -s -o \$OUT http://127.0.0.1:$Z_HTTP/files/$IMG" \
  "curl -s -o \$OUT http://127.0.0.1:$N_HTTP/files/$IMG"
echo "targets: curl tftp >= 1.0x, atftp windowsize 8 >= 3x, http >= 0.8x"
