#!/usr/bin/env bash
# Benchmark `ztpd validate` on a large generated plan (issue 2's target:
# <= 300 ms and <= 200 MB peak RSS for 10,000 devices, 20,000 links, 50 models
# on a 2-vCPU machine). Prints every run, then best/median wall time and peak RSS,
# and a line ready for docs/benchmarks.md.
#
#   benches/validate_bench.sh [--devices N] [--links N] [--models N]
#   RUNS=10 benches/validate_bench.sh          # number of timed runs (default 7)
#   ZTPD=/path/to/ztpd benches/validate_bench.sh   # benchmark another build
#
# Not part of CI: the machine is shared and noisy, so numbers go in
# docs/benchmarks.md, never into assertions.
set -euo pipefail

cd "$(dirname "$0")/.."
runs="${RUNS:-7}"

if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        echo "installing GNU time (for peak RSS)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
    else
        echo "error: /usr/bin/time is missing; install it with: sudo apt-get install time" >&2
        exit 1
    fi
fi

echo "building release binaries"
cargo build --release --quiet --bin ztpd --example gen_plan
target_dir="${CARGO_TARGET_DIR:-target}"
ztpd="${ZTPD:-$target_dir/release/ztpd}"   # ZTPD=path benchmarks another build
gen="$target_dir/release/examples/gen_plan"

work="$(mktemp -d "${TMPDIR:-/tmp}/ztpd-validate-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$gen" "$work" "$@"
plan="$work/plans/big.toml"

# One untimed run: fails early with the diagnostics when the plan is not valid
# (or `validate` does not exist yet), and warms the page cache.
if ! "$ztpd" validate "$plan" >"$work/first.out" 2>&1; then
    echo "error: ztpd validate failed on the generated plan:" >&2
    head -40 "$work/first.out" >&2
    exit 1
fi

walls=()
rss=()
cpus=()
for i in $(seq 1 "$runs"); do
    start=$(date +%s%N)
    /usr/bin/time -v -o "$work/time.$i" "$ztpd" validate "$plan" >/dev/null 2>&1
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$i")
    # CPU time (user + sys) moves less than wall time when the machine is busy.
    cpu_ms=$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%d", t * 1000}' "$work/time.$i")
    walls+=("$ms")
    rss+=("$kb")
    cpus+=("$cpu_ms")
    printf 'run %2d: %5d ms wall  %5d ms cpu  %7.1f MB peak RSS\n' "$i" "$ms" "$cpu_ms" "$(awk -v k="$kb" 'BEGIN {print k / 1024}')"
done

mapfile -t sorted_walls < <(printf '%s\n' "${walls[@]}" | sort -n)
mapfile -t sorted_rss < <(printf '%s\n' "${rss[@]}" | sort -n)
mapfile -t sorted_cpus < <(printf '%s\n' "${cpus[@]}" | sort -n)
best=${sorted_walls[0]}
median=${sorted_walls[$(( runs / 2 ))]}
cpu_best=${sorted_cpus[0]}
cpu_median=${sorted_cpus[$(( runs / 2 ))]}
peak_mb=$(awk -v k="${sorted_rss[$(( runs - 1 ))]}" 'BEGIN {print k / 1024}')

cpu="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo
echo "validate: wall best ${best} ms, median ${median} ms; cpu best ${cpu_best} ms, median ${cpu_median} ms; peak RSS $(printf '%.1f' "$peak_mb") MB over ${runs} runs"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"
echo "machine:  $(nproc) vCPU, ${cpu}, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"
echo
echo "for docs/benchmarks.md:"
printf '| %s | %s vCPU %s, load %s | `benches/validate_bench.sh%s` | wall best %s ms, median %s ms; cpu best %s ms; peak RSS %.1f MB |\n' \
    "$(date -u +%Y-%m-%d)" "$(nproc)" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" "${*:+ $*}" "$best" "$median" "$cpu_best" "$peak_mb"
