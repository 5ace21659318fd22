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

# A `[listen]` section on free loopback ports (call it in this shell, not in
# `$(...)`: it sets hport, the HTTP port).
listen_toml() {
    hport=$(free_port)
    printf '[listen]\nhttp = "127.0.0.1:%s"\ntftp = "127.0.0.1:%s"\ndhcp = "127.0.0.1:%s"\n' \
        "$hport" "$(free_port)" "$(free_port)"
}

# Start `$ZTPD run` with the local hub (plain and TLS listeners) in a fresh
# root under $1 (a small valid plan); sets root, hport, bport, tport, zpid.
# Waits for the TLS listener and the id scope. DURABILITY=os|fsync sets
# `state.durability` (default: the daemon's, fsync).
start_hub_ztpd() {
    root="$1/root"; mkdir -p "$root"
    cp -r "$repo/tests/fixtures/good/." "$root/"
    bport=$(free_port); tport=$(free_port)
    { listen_toml; printf '[broker]\nlisten = "127.0.0.1:%s"\ntls_listen = "127.0.0.1:%s"\n' "$bport" "$tport"
      if [ -n "${DURABILITY:-}" ]; then printf '[state]\ndurability = "%s"\n' "$DURABILITY"; fi; } > "$root/ztpd.toml"
    ZTPD_LOG="${ZTPD_LOG:-warn}" "$ZTPD" --config "$root/ztpd.toml" run >"$root/log" 2>&1 & zpid=$!
    wait_port "$tport" || { echo "ztpd did not open its TLS listener:" >&2; cat "$root/log" >&2; return 1; }
    for _ in $(seq 200); do [ -s "$root/state/id_scope" ] && [ -s "$root/state/operator.token" ] && return 0; sleep 0.05; done
    echo "ztpd wrote no id scope or operator token:" >&2; cat "$root/log" >&2; return 1
}

# What both hub benchmarks do first: check $ZTPD and the bench client $1
# (CLIENT, else cargo's), raise the open-file limit, make a work directory
# (kept with KEEP_WORK=1) and stop the daemon on exit. Sets CLIENT, work.
hub_bench_setup() {
    ZTPD="${ZTPD:-$repo/target/release/ztpd}"
    [ -x "$ZTPD" ] || { echo "missing $ZTPD (cargo build --release)" >&2; exit 1; }
    CLIENT="${CLIENT:-$(bench_binary "$1")}"
    [ -x "$CLIENT" ] || { echo "no bench client (cargo bench --bench $1 --no-run)" >&2; exit 1; }
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    work="$(mktemp -d "/tmp/ztpd-$1.XXXXXX")"
    zpid=""
    trap hub_bench_cleanup EXIT
}
hub_bench_cleanup() {
    [ -n "$zpid" ] && { kill "$zpid" 2>/dev/null || true; wait "$zpid" 2>/dev/null || true; }
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

# Resident memory of process $1 in KiB.
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
