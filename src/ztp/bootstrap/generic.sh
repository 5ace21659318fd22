#!/bin/sh
# ztpd generic bootstrap (profile "generic"): zero-touch provisioning for
# Linux hosts running lldpd. Fetch it from the DHCP option 67 URL and run it:
#   curl -fsS http://SERVER/files/bootstrap/generic | sh
# Environment (all optional):
#   ZTP_SERIAL ZTP_MODEL ZTP_MAC   identity (default: DMI and the first interface)
#   ZTP_SERVER                     ztpd base URL (default: {{ server.http }})
#   ZTP_LLDP_WAIT                  seconds to wait for LLDP neighbours (30)
#   ZTP_APPROVAL_WAIT              seconds to wait for an operator approval (600)
#   ZTP_CONFIG_PATH                where the config goes (/etc/ztpd/startup-config)
#   ZTP_IMAGE_DIR                  where image and patch go (/var/lib/ztpd)
#   ZTP_LLDPCLI                    lldpcli command (e.g. "lldpcli -u /run/lldpd.sock")
#   ZTP_APPLY                      command run after the download (e.g. a reload hook)
#   ZTP_STEPS                      "all" (default), or "hello": stop once approved (exit 0),
#                                  for agents that install by themselves (SONiC's ZTP engine)
# Exit: 0 deployed (approved with ZTP_STEPS=hello); 1 refused (topology problems printed);
#       2 error; 3 still pending.
set -u
SERVER="${ZTP_SERVER:-{{ server.http }}}"
{% raw %}
LLDP_WAIT="${ZTP_LLDP_WAIT:-30}"
APPROVAL_WAIT="${ZTP_APPROVAL_WAIT:-600}"
CONFIG_PATH="${ZTP_CONFIG_PATH:-/etc/ztpd/startup-config}"
IMAGE_DIR="${ZTP_IMAGE_DIR:-/var/lib/ztpd}"
LLDPCLI="${ZTP_LLDPCLI:-lldpcli}"
TMP="$(mktemp -d 2>/dev/null || echo /tmp/ztpd.$$)"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

log() { echo "ztp: $*" >&2; }

first_mac() {
  for i in /sys/class/net/*; do
    n="${i##*/}"
    [ "$n" = lo ] && continue
    [ -r "$i/address" ] || continue
    cat "$i/address"
    return
  done
}

SERIAL="${ZTP_SERIAL:-$(cat /sys/class/dmi/id/product_serial 2>/dev/null)}"
MODEL="${ZTP_MODEL:-$(cat /sys/class/dmi/id/product_name 2>/dev/null)}"
MAC="${ZTP_MAC:-$(first_mac)}"
[ -n "$SERIAL" ] || { log "no serial number: set ZTP_SERIAL"; exit 2; }
[ -n "$MODEL" ] || { log "no model: set ZTP_MODEL"; exit 2; }

# JSON string escaping for values we send.
esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

# Value of a top-level string field in ztpd's compact JSON answers.
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$2" | head -n 1; }

# `lldpcli -f json show neighbors` -> one JSON object per neighbour, comma
# separated. lldp.interface is an object keyed by local port with one
# neighbour and a list of such objects with several: anonymous levels are
# dropped from the path so both read the same. The peer port is the port id
# when its type is ifname, else the port description; the peer name is the
# chassis name (its MAC when it has none).
neighbors() {
  $LLDPCLI -f json show neighbors 2>/dev/null | awk '
    function path(  i, s) { s = ""; for (i = 1; i <= d; i++) if (st[i] != "") s = s "/" st[i]; return s }
    function key(l,  k) { k = l; sub(/^"/, "", k); sub(/".*/, "", k); return k }
    {
      l = $0; gsub(/^[ \t]+/, "", l); gsub(/[ \t,]+$/, "", l)
      if (l ~ /^"[^"]*": *[{[]$/) { d++; st[d] = key(l); next }
      if (l ~ /^"[^"]*": *[{[][]}]$/) { next }
      if (l ~ /^[{[]$/) { d++; st[d] = ""; next }
      if (l ~ /^[]}]$/) { d--; next }
      if (l ~ /^"[^"]*": *"/) {
        k = key(l); v = l; sub(/^"[^"]*": *"/, "", v); sub(/"$/, "", v)
        print path() "/" k "\t" v
      }
    }' | awk '
    BEGIN { FS = "\t" }
    function jesc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    {
      n = split($1, p, "/")
      # p[2]=lldp p[3]=interface p[4]=local port p[5]=chassis|port ...
      if (p[2] != "lldp" || p[3] != "interface") next
      ifc = p[4]
      if (!(ifc in seen)) { seen[ifc] = 1; order[++cnt] = ifc }
      if (p[5] == "chassis" && n == 8 && p[6] != "id" && p[7] == "id") chassis[ifc] = p[6]
      if (p[5] == "chassis" && n == 7 && p[6] == "id" && p[7] == "value" && !(ifc in chassis)) cid[ifc] = $2
      if (p[5] == "chassis" && n == 8 && p[7] == "id" && p[8] == "value") cid[ifc] = $2
      if (p[5] == "port" && p[6] == "id" && p[7] == "type") ptype[ifc] = $2
      if (p[5] == "port" && p[6] == "id" && p[7] == "value") pid[ifc] = $2
      if (p[5] == "port" && p[6] == "descr" && n == 6) pdescr[ifc] = $2
    }
    END {
      sep = ""
      for (i = 1; i <= cnt; i++) {
        ifc = order[i]
        if (ifc in chassis) dev = chassis[ifc]; else dev = cid[ifc]
        if (ptype[ifc] == "ifname") port = pid[ifc]; else port = pdescr[ifc]
        if (port == "") port = pid[ifc]
        if (dev == "" || port == "") continue
        printf "%s{\"local_port\":\"%s\",\"remote_device\":\"%s\",\"remote_port\":\"%s\"}", sep, jesc(ifc), jesc(dev), jesc(port)
        sep = ","
      }
    }'
}

post() { # path body -> HTTP code on stdout, body in $TMP/out
  curl -sS -o "$TMP/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "$2" "$SERVER$1" 2>"$TMP/err" || echo 000
}

progress() { # stage percent message
  code=$(post "/ztp/v1/devices/$SERIAL/progress" \
    "{\"stage\":\"$1\",\"percent\":$2,\"message\":\"$(esc "$3")\"}")
  [ "$code" = 200 ] || log "progress $1 not accepted (HTTP $code): $(cat "$TMP/out" 2>/dev/null)"
}

fetch() { # url destination
  mkdir -p "$(dirname "$2")" || return 1
  curl -fsS -o "$2.part" "$1" && mv "$2.part" "$2"
}

# Wait for neighbours: until at least one shows up and the table stops
# growing, or ZTP_LLDP_WAIT seconds.
waited=0
NEIGHBORS=""
while :; do
  now=$(neighbors)
  if [ -n "$now" ] && [ "$now" = "$NEIGHBORS" ]; then break; fi
  NEIGHBORS="$now"
  [ "$waited" -ge "$LLDP_WAIT" ] && break
  sleep 1
  waited=$((waited + 1))
done
[ -n "$NEIGHBORS" ] || log "no LLDP neighbours after ${LLDP_WAIT}s; saying hello without"

HELLO="{\"serial\":\"$(esc "$SERIAL")\",\"mac\":\"$(esc "$MAC")\",\"model\":\"$(esc "$MODEL")\",\"version\":\"generic-1\",\"neighbors\":[$NEIGHBORS]}"
log "hello as $SERIAL ($MODEL) to $SERVER"
asked=0
while :; do
  code=$(post /ztp/v1/hello "$HELLO")
  case "$code" in
    200) break ;;
    202)
      if [ "$asked" -ge "$APPROVAL_WAIT" ]; then
        log "still waiting for approval after ${APPROVAL_WAIT}s: run \`ztpd approve $(field device "$TMP/out")\`"
        exit 3
      fi
      [ "$asked" -eq 0 ] && log "pending approval: waiting for \`ztpd approve $(field device "$TMP/out")\`"
      sleep 5; asked=$((asked + 5)) ;;
    409)
      # A neighbour may have come up late: read LLDP again once in a while.
      if [ "$waited" -lt "$LLDP_WAIT" ]; then
        sleep 2; waited=$((waited + 2))
        NEIGHBORS=$(neighbors)
        HELLO="{\"serial\":\"$(esc "$SERIAL")\",\"mac\":\"$(esc "$MAC")\",\"model\":\"$(esc "$MODEL")\",\"version\":\"generic-1\",\"neighbors\":[$NEIGHBORS]}"
        continue
      fi
      echo "ztp: refused: topology does not match the plan" >&2
      sed -e 's/},{/}\n{/g' "$TMP/out" | sed -n 's/.*"fix":"\([^"]*\)".*/  fix: \1/p' >&2
      cat "$TMP/out" >&2; echo >&2
      exit 1 ;;
    *)
      echo "ztp: hello failed (HTTP $code): $(cat "$TMP/out" "$TMP/err" 2>/dev/null)" >&2
      exit 2 ;;
  esac
done

cp "$TMP/out" "$TMP/approved"
DEVICE=$(field device "$TMP/approved")
CONFIG_URL=$(field config_url "$TMP/approved")
IMAGE_URL=$(field image_url "$TMP/approved")
PATCH_URL=$(field patch_url "$TMP/approved")
log "approved as $DEVICE"
if [ "${ZTP_STEPS:-all}" = hello ]; then
  exit 0
fi

progress downloading 0 "config"
if [ -n "$CONFIG_URL" ]; then
  fetch "$CONFIG_URL" "$CONFIG_PATH" || { progress failed 0 "config download failed: $CONFIG_URL"; log "cannot fetch $CONFIG_URL"; exit 2; }
fi
if [ -n "$IMAGE_URL" ]; then
  progress downloading 30 "image"
  fetch "$IMAGE_URL" "$IMAGE_DIR/${IMAGE_URL##*/}" || { progress failed 30 "image download failed"; exit 2; }
fi
if [ -n "$PATCH_URL" ]; then
  progress downloading 70 "patch"
  fetch "$PATCH_URL" "$IMAGE_DIR/${PATCH_URL##*/}" || { progress failed 70 "patch download failed"; exit 2; }
fi
progress installing 80 "config written to $CONFIG_PATH"
if [ -n "${ZTP_APPLY:-}" ]; then
  sh -c "$ZTP_APPLY" || { progress failed 90 "ZTP_APPLY failed"; exit 2; }
fi
progress deployed 100 "generic bootstrap done"
log "deployed: config in $CONFIG_PATH"
exit 0
{% endraw %}
