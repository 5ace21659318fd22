#!/bin/sh
# CUMULUS-AUTOPROVISIONING
# ztpd bootstrap for Cumulus Linux (profile "cumulus"): Cumulus ZTP runs
# this file from the option 239 URL (it must hold the marker above and
# start with #!). It reads the switch's serial and model from the ONIE
# EEPROM (decode-syseeprom's table: Serial Number 0x23, Product Name 0x21)
# and runs ztpd's generic bootstrap, which reads LLDP with lldpcli, says
# hello and writes the config to ZTP_CONFIG_PATH (/etc/ztpd/startup-config
# unless set; applying it, e.g. with NVUE, is ZTP_APPLY's job).
# Exit: the generic bootstrap's (0 deployed; Cumulus ZTP then stops).
set -e
tlv() { decode-syseeprom 2>/dev/null | sed -n "s/^.* $1 *[0-9][0-9]* //p" | head -n 1; }
ZTP_SERIAL="${ZTP_SERIAL:-$(tlv 0x23)}"
ZTP_MODEL="${ZTP_MODEL:-$(tlv 0x21)}"
export ZTP_SERIAL ZTP_MODEL
export ZTP_CONFIG_PATH="${ZTP_CONFIG_PATH:-/etc/ztpd/startup-config}"
generic="$(mktemp /tmp/ztpd-generic.XXXXXX)"
trap 'rm -f "$generic"' EXIT
curl -fsS "{{ server.files }}/bootstrap/generic" -o "$generic"
sh "$generic"
