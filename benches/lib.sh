# Shell helpers shared by the benchmark scripts (source it; bash only).

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait (up to 10 s) until something accepts TCP connections on 127.0.0.1:$1.
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# The executable of `cargo bench --bench $1` (built if needed).
bench_binary() {
    (cd "$repo" && cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null) \
        | python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}

# Start `$ZTPD run` with the local hub (plain and TLS listeners) in a fresh
# root under $1 (a small valid plan); sets root, hport, bport, tport, zpid.
# Waits for the TLS listener and the id scope.
start_hub_ztpd() {
    root="$1/root"; mkdir -p "$root"
    cp -r "$repo/tests/fixtures/good/." "$root/"
    hport=$(free_port); bport=$(free_port); tport=$(free_port)
    cat > "$root/ztpd.toml" <<TOML
[listen]
http = "127.0.0.1:$hport"
tftp = "127.0.0.1:$(free_port)"
dhcp = "127.0.0.1:$(free_port)"
[broker]
listen = "127.0.0.1:$bport"
tls_listen = "127.0.0.1:$tport"
TOML
    ZTPD_LOG="${ZTPD_LOG:-warn}" "$ZTPD" --config "$root/ztpd.toml" run >"$root/log" 2>&1 & zpid=$!
    wait_port "$tport" || { echo "ztpd did not open its TLS listener:" >&2; cat "$root/log" >&2; return 1; }
    for _ in $(seq 200); do [ -s "$root/state/id_scope" ] && [ -s "$root/state/operator.token" ] && return 0; sleep 0.05; done
    echo "ztpd wrote no id scope or operator token:" >&2; cat "$root/log" >&2; return 1
}

# Resident memory of process $1 in KiB.
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
