#!/bin/sh
# Benchmark: `ztpd credentials regenerate` over N existing devices (default
# 100,000; target <= 5 s, issue 6). The prototype re-read its whole CSV per
# device. Seeds N credential files in the prototype format with python3,
# then times RUNS regenerations of the release binary.
#
#   benches/credentials_bench.sh [N] [RUNS]
#   BENCH_DIR=/dev/shm benches/credentials_bench.sh     # where the files go
#
# Note: on an ext4 mounted with `discard` (this lab VM), every rename over an
# existing file frees a block and the kernel issues a synchronous discard
# (~1 ms each here), so the filesystem, not ztpd, bounds the result there.
# The script prints the filesystem and its mount options with the numbers.
set -eu
N=${1:-100000}
RUNS=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --manifest-path "$here/Cargo.toml" --bin ztpd >&2
bin="$here/target/release/ztpd"
root=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/ztpd-credbench.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM
: >"$root/ztpd.toml"
python3 - "$root/device_credentials" "$N" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, mode=0o700, exist_ok=True)
fn = {"name": "default", "interval": "1s"}
with open(os.path.join(d, "historical_credentials.csv"), "w") as h:
    h.write("device_id,device_name,credential_creation_date\n")
    for i in range(n):
        dev = "%040x" % (i * 2654435761)
        name = 1000001 + i
        date = "2024-01-01 00:00:00.000000"
        rec = {"device_id": dev, "device_name": name, "credential_creation_date": date,
               "device_function": fn,
               "CONNECTION_STR_PUB": "HostName=localhost;DeviceId=%s;SharedAccessKey=x" % dev}
        fd = os.open(os.path.join(d, "device_%s.json" % dev), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, json.dumps(rec).encode())
        os.close(fd)
        h.write("%s,%d,%s\n" % (dev, name, date))
PY
echo "seeded $N devices in $root" >&2
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  machine: $(nproc) cpu, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
fs=$(df -P "$root" | awk 'NR == 2 { print $6 }')
echo "filesystem: $(awk -v m="$fs" '$2 == m { print $3 " " $4 }' /proc/mounts | tail -1) at $fs"
i=1
while [ "$i" -le "$RUNS" ]; do
    # Wall time, and CPU time (user + sys) when GNU time is installed: the
    # machine is shared, so CPU time is the load-independent number.
    start=$(date +%s.%N)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%U %S" -o "$root/cpu" "$bin" --config "$root/ztpd.toml" credentials regenerate >/dev/null
        cpu=$(awk '{ printf "%.2f s (user %.2f, sys %.2f)", $1 + $2, $1, $2 }' "$root/cpu")
    else
        "$bin" --config "$root/ztpd.toml" credentials regenerate >/dev/null
        cpu="n/a (install GNU time)"
    fi
    end=$(date +%s.%N)
    echo "run $i: regenerate $N devices: wall $(awk "BEGIN { printf \"%.2f\", $end - $start }") s, cpu $cpu"
    i=$((i + 1))
done
rows=$(($(wc -l <"$root/device_credentials/historical_credentials.csv") - 1))
echo "history rows: $rows (expected $((N * (RUNS + 1))))"
