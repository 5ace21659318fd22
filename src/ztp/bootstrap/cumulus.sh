#!/bin/sh
# CUMULUS-AUTOPROVISIONING
# ztpd bootstrap for Cumulus Linux (profile "cumulus"): runs the generic
# bootstrap with the switch's serial and model from its EEPROM and
# /etc/frr as the config destination unless told otherwise.
set -e
ZTP_SERIAL="${ZTP_SERIAL:-$(decode-syseeprom -e 2>/dev/null || true)}"
ZTP_MODEL="${ZTP_MODEL:-$(decode-syseeprom -p 2>/dev/null || true)}"
export ZTP_SERIAL ZTP_MODEL
export ZTP_CONFIG_PATH="${ZTP_CONFIG_PATH:-/etc/ztpd/startup-config}"
curl -fsS "{{ server.files }}/bootstrap/generic" -o /tmp/ztpd-generic.sh
sh /tmp/ztpd-generic.sh
