#!/usr/bin/env bash
# Start `ztpd run` (local hub on free ports, embedded store) and run
# hub_latency_idle.py against it: PUBACK latency with one message in flight,
# and memory per idle device connection.
#   benches/broker/hub_latency_idle.sh [MESSAGES] [CONNECTIONS]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
ZTPD="${ZTPD:-$repo/target/release/ztpd}"
py="$repo/.venv-test/bin/python"
[ -x "$ZTPD" ] || { echo "missing $ZTPD (cargo build --release)" >&2; exit 1; }
[ -x "$py" ] || { echo "missing $py (scripts/install-test-deps.sh)" >&2; exit 1; }
# shellcheck source=../lib.sh
source "$repo/benches/lib.sh"
work="$(mktemp -d /tmp/ztpt-hub-idle.XXXXXX)"
trap 'kill $zpid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$repo/tests/fixtures/good/." "$work/"
bport=$(free_port)
cat > "$work/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$(free_port)"
tftp = "127.0.0.1:$(free_port)"
dhcp = "127.0.0.1:$(free_port)"
[broker]
listen = "127.0.0.1:$bport"
tls_listen = "127.0.0.1:$(free_port)"
[limits]
http_connections = 1024   # leave the descriptors to the hub's connections
TOML
ulimit -n "$(ulimit -Hn)"
"$ZTPD" --config "$work/ztpd.toml" run >"$work/log" 2>&1 & zpid=$!
for _ in $(seq 400); do grep -q "local hub listening" "$work/log" && break; sleep 0.05; done
"$py" "$repo/benches/broker/hub_latency_idle.py" "$work" "$bport" "$zpid" "${1:-300}" "${2:-10000}"
grep -i "warn\|error" "$work/log" | head -5 || true
