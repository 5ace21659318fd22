#!/bin/sh
# ztpd ONIE installer (profile "onie"). ONIE finds it through DHCP option 125
# (enterprise 42623, sub-option 1) or 114, downloads it and runs it as its NOS
# installer (`exec_installer`), as a child process: ONIE does not export
# machine.conf to installers, so the box's identity comes from `onie-sysinfo`,
# the interface ONIE documents for installers.
#
# It says hello; only an approved device whose plan names an image gets one,
# and that image is handed to `onie-nos-install`, which downloads and runs it
# (and reboots into the NOS). An unplanned box is refused at hello and
# installs nothing. ONIE has no LLDP agent: the hello carries no neighbours,
# so the topology check of an ONIE box rests on what its planned neighbours
# report (docs/vendors.md).
#
# Environment (all optional): ZTP_SERVER, ZTP_SERIAL, ZTP_MODEL, ZTP_MAC,
# ZTP_APPROVAL_WAIT (seconds, default 600).
# Exit: 1 refused or no image planned, 2 error, 3 no approval in time;
# on success onie-nos-install does not return.
set -u
SERVER="${ZTP_SERVER:-{{ server.http }}}"
{% raw -%}
APPROVAL_WAIT="${ZTP_APPROVAL_WAIT:-600}"
SERIAL="${ZTP_SERIAL:-$(onie-sysinfo -s 2>/dev/null)}"
# onie-sysinfo -p: <arch>-<vendor>_<machine>-r<rev>; a plan's `match` is the
# platform without -r<rev>, as ztpd reads option 60 (onie_vendor:<platform>).
PLATFORM="$(onie-sysinfo -p 2>/dev/null)"
MODEL="${ZTP_MODEL:-${PLATFORM%-r*}}"
MAC="${ZTP_MAC:-$(onie-sysinfo -e 2>/dev/null)}"
log() { echo "ztp: $*" >&2; }
case "$SERIAL" in "" | Unknown) log "onie-sysinfo -s gives no serial number"; exit 2 ;; esac
[ -n "$MODEL" ] || { log "onie-sysinfo -p gives no platform"; exit 2; }

out=/tmp/ztpd-hello.json
hello="{\"serial\":\"$SERIAL\",\"mac\":\"$MAC\",\"model\":\"$MODEL\",\"version\":\"onie-installer-1\",\"neighbors\":[]}"
log "hello as $SERIAL ($MODEL) to $SERVER"
asked=0
while :; do
  rm -f "$out"
  # busybox wget: -S prints the status line; an error status exits non-zero
  # and keeps no body, so the code is read from what it prints.
  code=$(wget -q -O "$out" -S --header 'Content-Type: application/json' \
    --post-data "$hello" "$SERVER/ztp/v1/hello" 2>&1 |
    sed -n 's/.*HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
  case "${code:-000}" in
    200) break ;;
    202)
      [ "$asked" -ge "$APPROVAL_WAIT" ] && { log "no approval after ${APPROVAL_WAIT}s"; exit 3; }
      [ "$asked" -eq 0 ] && log "pending approval: waiting for an operator (ztpd approve)"
      sleep 5; asked=$((asked + 5)) ;;
    404) log "refused: $SERIAL is not in ztpd's plan; nothing is installed"; exit 1 ;;
    409) log "refused: the cabling does not match the plan (ztpd's API names the fix)"; exit 1 ;;
    *) log "hello failed (HTTP ${code:-none})"; exit 2 ;;
  esac
done
image=$(sed -n 's/.*"image_url":"\([^"]*\)".*/\1/p' "$out")
[ -n "$image" ] || { log "approved, but the plan gives $SERIAL no image"; exit 1; }
wget -q -O /dev/null --header 'Content-Type: application/json' \
  --post-data "{\"stage\":\"installing\",\"percent\":50,\"message\":\"onie-nos-install $image\"}" \
  "$SERVER/ztp/v1/devices/$SERIAL/progress" 2>/dev/null || log "progress not accepted"
log "approved: onie-nos-install $image"
exec onie-nos-install "$image"
{%- endraw %}
