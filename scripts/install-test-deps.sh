#!/usr/bin/env bash
# The one place where the tests' system dependencies are installed, on a
# brand-new Debian 12 machine (as root). Later work adds packages here instead
# of installing them anywhere else.
#
#   scripts/install-test-deps.sh           apt packages + Python venvs (tools, Spark, Azure SDK) + cargo-deny + cargo-deb
#   scripts/install-test-deps.sh --fuzz    also cargo-fuzz (or ZTPD_FUZZ=1)
#
# Idempotent and quick when everything is present: apt-get runs (with one
# `apt-get update`) only when `dpkg -s` finds a package missing, and pip only
# when the pinned requirements changed.
#
# Services that the packages would start on install (tftpd-hpa, nginx,
# mosquitto, kea, lldpd) are kept from starting (policy-rc.d during apt-get) and,
# under systemd, stopped and disabled: the tests start their own copies on free
# ports and must not meet the packaged ones.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"

# Packages the tests use, and why.
packages=(
    udhcpc isc-dhcp-client iproute2        # DHCP clients in network namespaces (dhclient -6 too)
    dhcpcd-base                            # a second DHCPv6 client (tests/dhcp6_netns.rs)
    isc-dhcp-relay                         # dhcrelay -6: a real DHCPv6 relay agent
    busybox                                # sh and wget as ONIE runs its installer (tests/onie_agent.rs)
    atftp tftp-hpa tftpd-hpa               # TFTP clients; tftpd-hpa as a side-by-side peer
                                           # (not atftpd: it conflicts with tftpd-hpa)
    nginx-light                            # HTTP peer for side-by-side benchmarks
    mosquitto mosquitto-clients            # third-party MQTT broker and clients
    lldpd                                  # real LLDP neighbour tables for ZTP tests
    snmpd snmp                             # net-snmp master agent for lldpd -x (LLDP-MIB over SNMP, tests/topology_snmp.rs)
    kea-dhcp4-server kea-admin             # Kea + perfdhcp: DHCP peer and load tool
    curl                                   # HTTP and TFTP client
    openssl                                # s_client: a TLS client that never sends CONNECT (tests/hub_local.rs)
    time                                   # /usr/bin/time -v for peak RSS in benchmarks
    faketime libfaketime                   # clock jumps injected into the daemon alone (fault suite)
    python3 python3-venv                   # the venv for Python test tools
    chromium                               # real headless browser for the GUI test (Playwright drives it)
    build-essential pkg-config             # C compiler for bundled SQLite and libFuzzer
    openjdk-17-jre-headless                # Java for real Spark (pyspark, examples/spark)
    systemd                                # systemd-analyze verify for packaging/ztpd.service
)
# Packaged services that may auto-start; stopped after install.
services=(tftpd-hpa nginx mosquitto kea-dhcp4-server kea-dhcp6-server kea-dhcp-ddns-server kea-ctrl-agent lldpd snmpd)

# Python tools for telemetry tests, pinned with their dependencies.
requirements="$repo/scripts/test-requirements.txt"
venv="$repo/.venv-test"
# Spark (pyspark + pyarrow + pandas + pymongo) in a venv of its own: large, and
# with its own numpy/pandas pins.
spark_requirements="$repo/scripts/spark-requirements.txt"
spark_venv="$repo/.venv-spark"

cargo_fuzz_version="0.13.2"
# cargo deny check licenses bans sources (deny.toml), a step of scripts/test.sh.
# Building it takes ~6 minutes on 2 vCPU (measured 2026-12-02: 6m09s wall, 200 s CPU,
# with another build running), so it is installed only when missing.
cargo_deny_version="0.20.2"   # keep in step with scripts/test.sh
# tests/packaging.rs builds the .deb with it (--no-build: on the tests' binary)
cargo_deb_version="3.8.0"

want_fuzz="${ZTPD_FUZZ:-0}"
for arg in "$@"; do
    case "$arg" in
        --fuzz) want_fuzz=1 ;;
        -h | --help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install-test-deps: unknown argument '$arg' (expected --fuzz)" >&2
            exit 2
            ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: must run as root (apt-get, services); try: sudo $0" >&2
    exit 1
fi

log() { printf 'install-test-deps: %s\n' "$*"; }

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# --- apt packages -----------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep maintainer scripts from starting services during this install
    # (Debian's policy-rc.d protocol: exit 101 = action forbidden). An
    # existing policy file (containers often ship one) is left alone.
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    cleanup_policy() { if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup_policy EXIT
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    cleanup_policy
    trap - EXIT
else
    log "apt packages: all ${#packages[@]} present"
fi

# --- keep packaged services out of the way ---------------------------------------
# Only through systemd, which stops exactly the units it started. Without systemd
# (containers) nothing is stopped: policy-rc.d above kept the packages from
# starting anything, and the init scripts find their daemon by its default pid
# file, which a test's own kea or lldpd may have written: stopping "the service"
# there could kill a test's process.
systemd_state="$(systemctl is-system-running 2>/dev/null || true)"
if command -v systemctl >/dev/null && [[ "$systemd_state" =~ ^(running|degraded|starting)$ ]]; then
    for s in "${services[@]}"; do
        if systemctl is-active --quiet "$s" 2>/dev/null || systemctl is-enabled --quiet "$s" 2>/dev/null; then
            log "stopping and disabling $s"
            systemctl disable --now "$s" >/dev/null 2>&1 || true
        fi
    done
fi

# --- Python venvs -----------------------------------------------------------------
# make_venv DIR REQUIREMENTS IMPORTS: (re)create DIR with the pinned REQUIREMENTS
# unless it has them already and `import IMPORTS` works in it.
make_venv() {
    local dir="$1" reqs="$2" imports="$3"
    local stamp="$dir/.requirements"
    if [[ -x "$dir/bin/python" ]] && cmp -s "$reqs" "$stamp" && "$dir/bin/python" -c "import $imports" 2>/dev/null; then
        log "python venv: $dir up to date"
        return
    fi
    log "creating python venv $dir"
    rm -rf "$dir"
    if ! python3 -m venv "$dir" 2>/dev/null; then
        # A system python3 without ensurepip: Debian's own has it via python3-venv.
        rm -rf "$dir"
        /usr/bin/python3 -m venv "$dir"
    fi
    "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$reqs"
    cp "$reqs" "$stamp"
}
make_venv "$venv" "$requirements" "pymongo, paho.mqtt, playwright"
"$venv/bin/nx-27017" --help >/dev/null
make_venv "$spark_venv" "$spark_requirements" "pyspark, pyarrow, pandas, pymongo"
# The Azure IoT device SDK pins paho-mqtt < 2: a venv of its own.
make_venv "$repo/.venv-azure" "$repo/scripts/azure-requirements.txt" "azure.iot.device"
java -version >/dev/null 2>&1 || { log "java not found after installing openjdk-17-jre-headless"; exit 1; }

# --- cargo-deny -------------------------------------------------------------------
if cargo deny --version 2>/dev/null | grep -qF "$cargo_deny_version"; then
    log "cargo-deny $cargo_deny_version present"
else
    log "installing cargo-deny $cargo_deny_version (a few minutes)"
    cargo install --quiet --locked --version "$cargo_deny_version" cargo-deny
fi

# --- cargo-deb --------------------------------------------------------------------
if cargo deb --version 2>/dev/null | grep -qF "$cargo_deb_version"; then
    log "cargo-deb $cargo_deb_version present"
else
    log "installing cargo-deb $cargo_deb_version (a few minutes)"
    cargo install --quiet --locked --version "$cargo_deb_version" cargo-deb
fi

# --- cargo-fuzz (only when asked) ---------------------------------------------
if [[ "$want_fuzz" == 1 ]]; then
    if cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
        log "cargo-fuzz $cargo_fuzz_version present"
    else
        log "installing cargo-fuzz $cargo_fuzz_version"
        cargo install --quiet --locked --version "$cargo_fuzz_version" cargo-fuzz
    fi
fi

log "done"
