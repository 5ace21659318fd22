#!/usr/bin/env bash
# THE test command (README, `.ci/run`):
#
#   sudo scripts/test.sh
#
# 1. as root: installs the tests' system dependencies (scripts/install-test-deps.sh);
#    otherwise says which tests will skip;
# 2. `cargo deny check licenses bans sources` (deny.toml; advisories need the network
#    and are not checked here);
# 3. `cargo test --all-targets --no-fail-fast`, then a summary of its result lines;
# 4. when fuzz/ exists: each fuzz target for FUZZ_SECONDS (default 20) seconds.
#
# Exits non-zero on any failure. Benchmarks (benches/) are not run here.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

fuzz_seconds="${FUZZ_SECONDS:-20}"
cargo_fuzz_version="0.13.2"   # keep in step with scripts/install-test-deps.sh
cargo_deny_version="0.20.2"   # keep in step with scripts/install-test-deps.sh
is_root=0
[[ $(id -u) -eq 0 ]] && is_root=1

# One build per run: incremental caches would only take disk (a CI disk once filled up).
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }
elapsed() { printf '%ds' $((SECONDS - $1)); }

# --- 1. dependencies -----------------------------------------------------------
if ((is_root)); then
    step "installing test dependencies"
    deps_args=()
    [[ -d fuzz ]] && deps_args+=(--fuzz)
    scripts/install-test-deps.sh "${deps_args[@]}"
else
    step "not root: skipping scripts/install-test-deps.sh"
    echo "Tests that need root (network namespaces, real DHCP/TFTP clients, privileged"
    echo "ports) will print a skip message and pass without running their checks."
    echo "Run 'sudo scripts/test.sh' to run everything."
fi

step "disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where target/ goes"

# --- 2. cargo deny -----------------------------------------------------------------
# Its own step: a license, ban or source problem fails the run, and the tests still run.
deny_status=0
step "cargo deny check licenses bans sources"
if ! cargo deny --version >/dev/null 2>&1 && ((!is_root)); then
    echo "installing cargo-deny $cargo_deny_version for this user (a few minutes)"
    cargo install --quiet --locked --version "$cargo_deny_version" cargo-deny || true
fi
if cargo deny --version >/dev/null 2>&1; then
    deny_log="$(mktemp "${TMPDIR:-/tmp}/ztpd-deny.XXXXXX")"
    if cargo deny check --hide-inclusion-graph licenses bans sources >"$deny_log" 2>&1; then
        echo "cargo deny: $(tail -1 "$deny_log") ($(grep -c '^warning\[duplicate\]' "$deny_log" || true) crates in two or more versions: warnings)"
    else
        cat "$deny_log"
        echo "cargo deny: FAILED"
        deny_status=1
    fi
    rm -f "$deny_log"
else
    echo "cargo deny: cargo-deny $cargo_deny_version is not installed and could not be installed" >&2
    deny_status=1
fi

# --- 3. cargo test ---------------------------------------------------------------
step "cargo test --all-targets --no-fail-fast"
log="$(mktemp "${TMPDIR:-/tmp}/ztpd-test.XXXXXX")"
trap 'rm -f "$log"' EXIT
start=$SECONDS
set +e
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log"
test_status=${PIPESTATUS[0]}
set -e

# Add up every "test result:" line (one per test binary).
read -r passed failed ignored binaries < <(
    awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                v = $(i - 1) + 0
                if ($i ~ /^passed/) p += v
                if ($i ~ /^failed/) f += v
                if ($i ~ /^ignored/) g += v
            }
            n++
        }
        END { print p + 0, f + 0, g + 0, n + 0 }' "$log"
)
step "cargo test summary ($(elapsed $start), $binaries test binaries)"
grep -E '^(test result:|failures:|    [A-Za-z_:]+$)' "$log" || true
if ((test_status != 0)); then
    echo "cargo test failed (exit $test_status)"
fi

# --- 4. fuzz -----------------------------------------------------------------------
fuzz_status=0
if [[ -d fuzz ]]; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        if ((is_root)); then
            echo "cargo-fuzz missing after install-test-deps.sh --fuzz" >&2
            fuzz_status=1
        else
            step "installing cargo-fuzz $cargo_fuzz_version for this user"
            cargo install --quiet --locked --version "$cargo_fuzz_version" cargo-fuzz ||
                echo "cargo-fuzz is not installable here: skipping the fuzz step"
        fi
    fi
    if cargo fuzz --version >/dev/null 2>&1; then
        # This stable toolchain has no nightly features; cargo fuzz needs
        # -Zsanitizer and friends, which RUSTC_BOOTSTRAP=1 unlocks.
        export RUSTC_BOOTSTRAP=1
        mapfile -t targets < <(cargo fuzz list)
        step "fuzz: building ${#targets[@]} targets (${targets[*]})"
        start=$SECONDS
        if cargo fuzz build; then
            echo "built in $(elapsed $start)"
        else
            echo "cargo fuzz build failed"
            fuzz_status=1
            targets=()
        fi
        for t in "${targets[@]}"; do
            step "fuzz $t for ${fuzz_seconds}s"
            start=$SECONDS
            corpus=("fuzz/corpus/$t")
            mkdir -p "fuzz/corpus/$t"
            # Committed seeds (fuzz/seeds/<target>) are read, never written.
            [[ -d "fuzz/seeds/$t" ]] && corpus+=("fuzz/seeds/$t")
            if cargo fuzz run "$t" "${corpus[@]}" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 \
                >"$log.fuzz" 2>&1; then
                echo "fuzz $t: ok, $(grep -Eo 'Done [0-9]+ runs' "$log.fuzz" | tail -1 || true) ($(elapsed $start))"
            else
                tail -60 "$log.fuzz"
                echo "fuzz $t: FAILED ($(elapsed $start))"
                fuzz_status=1
            fi
            rm -f "$log.fuzz"
        done
    fi
fi

step "disk after: target/ $(du -sh target 2>/dev/null | cut -f1), fuzz/target $(du -sh fuzz/target 2>/dev/null | cut -f1), $(df -h --output=avail . | tail -1 | tr -d ' ') free"

# --- result --------------------------------------------------------------------------
echo
if ((test_status != 0 || fuzz_status != 0 || deny_status != 0)); then
    echo "scripts/test.sh: FAILED (cargo deny $( ((deny_status)) && echo failed || echo ok), cargo test exit $test_status, fuzz $( ((fuzz_status)) && echo failed || echo ok))"
    echo "tests: $passed passed, $failed failed, $ignored skipped"
    exit 1
fi
echo "tests: $passed passed, $failed failed, $ignored skipped"
