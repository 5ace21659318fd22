#!/bin/sh
# ztpd ONIE installer (profile "onie"): ONIE runs this as its NOS installer.
# It says hello with the ONIE serial and machine, then installs the approved
# image with onie-nos-install (which reboots into the NOS).
set -u
SERVER="${ZTP_SERVER:-{{ server.http }}}"
SERIAL="${ZTP_SERIAL:-${onie_serial_num:-$(onie-syseeprom -g 0x23 2>/dev/null)}}"
MODEL="${ZTP_MODEL:-${onie_machine:-unknown}}"
out=/tmp/ztpd-hello.json
while :; do
  code=$(wget -q -O "$out" --header 'Content-Type: application/json' \
    --post-data "{\"serial\":\"$SERIAL\",\"model\":\"$MODEL\",\"neighbors\":[]}" \
    -S "$SERVER/ztp/v1/hello" 2>&1 | sed -n 's/.*HTTP\/1.1 \([0-9]*\).*/\1/p' | tail -n 1)
  [ -s "$out" ] && [ "${code:-200}" = 200 ] && break
  [ "${code:-}" = 202 ] && { sleep 10; continue; }
  echo "ztp: refused (HTTP ${code:-?}): $(cat "$out" 2>/dev/null)" >&2
  exit 1
done
image=$(sed -n 's/.*"image_url":"\([^"]*\)".*/\1/p' "$out")
[ -n "$image" ] || { echo "ztp: the plan gives no image for $SERIAL" >&2; exit 1; }
exec onie-nos-install "$image"
