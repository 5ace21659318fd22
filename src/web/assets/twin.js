// The local hub's side of a device (SPEC §13) in its details: the twin
// (desired and reported with their $version, and the plan's tags), a
// "Set desired property" form and a "Call method" form. Loaded before
// app.js, whose el() and api() it calls once the page has started.
"use strict";

const HUB = {
  ids: new Map(), // planned device name -> its entry in GET /api/v1/hub/devices
  unplanned: [],  // entries of identities no plan has (DPS registrations, `ztpd credentials create`)
  card: null,     // {id, node}: the open card, kept while its device stays in focus
};

/** Read the hub's identities again, and list those no plan has. */
async function loadHubDevices() {
  const r = await api("GET", "/api/v1/hub/devices");
  if (r.status !== 200 || !Array.isArray(r.data)) return;
  HUB.ids.clear();
  for (const x of r.data) if (x.planned) HUB.ids.set(x.planned, x);
  HUB.unplanned = r.data.filter((x) => !x.planned);
  showUnplannedIdentities();
}

// A fleet that registered itself can be thousands: the card is a pointer,
// not the inventory.
const IDENTITIES_SHOWN = 200;

// Devices that registered themselves (DPS, `allow = "any"`) or got a
// credential by hand have no row in the plan's list: they are listed in
// a card of their own, and open in the details like a planned device.
function showUnplannedIdentities() {
  const box = $("#hub-devices");
  box.closest(".card").hidden = false;
  const rows = HUB.unplanned.slice(0, IDENTITIES_SHOWN).map((x) => el("div", {
    class: "hub-device", data: { hubDevice: x.device_id }, on: { click: () => openIdentity(x.device_id) },
  }, el("span", { class: "name" }, x.device_id),
  el("span", { class: "badge " + (x.connected ? "tone-ok" : "tone-idle") }, x.connected ? "connected" : "not connected")));
  const more = HUB.unplanned.length - rows.length;
  if (more > 0) rows.push(el("p", { class: "muted" }, more + " more: `ztpd hub devices` lists them all."));
  box.replaceChildren(...(rows.length ? rows : [el("p", { class: "muted" }, "Every hub identity is planned.")]));
}

/** The details of an identity no plan has: what the hub knows, and its twin. */
function openIdentity(id) {
  const x = HUB.unplanned.find((e) => e.device_id === id);
  if (!x) return;
  S.focus = null;
  closeTwinCard();
  const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v == null ? "—" : typeof v === "string" ? v : JSON.stringify(v))];
  $("#details").replaceChildren(
    el("h2", {}, "Hub device"),
    el("dl", {}, fact("device id", x.device_id), fact("device name", x.device_name),
      fact("registered", x.registered_at), fact("assigned hub", x.assigned_hub),
      fact("registration payload", x.registration_payload), fact("plan", "none")),
    twinCardFor(x.device_id));
}

// The hub lists every planned device, switches too; only one it holds an
// identity for has a twin worth showing: a credential file (the plan gave
// it a device function, or `ztpd credentials create` made one), a DPS
// registration, or a connection seen. An operator opening a switch expects
// no empty twin, and opening a sensor expects its twin even before its
// first connection (the desired device function waits for it there).
function hubIdentity(name) {
  const x = HUB.ids.get(name);
  const held = x && (x.device_name != null || x.registered_at != null || x.last_seen != null || x.connected);
  return held ? x : null;
}

let twinTimer = null;

/** A `twin` event: the open card reads its twin again (not the hub's
 *  device list), once per burst (a device reporting often is one read per
 *  250 ms, not one per change). */
function twinChanged(id) {
  if (!HUB.card || HUB.card.id !== id || twinTimer) return;
  twinTimer = setTimeout(() => {
    twinTimer = null;
    if (HUB.card && HUB.card.id === id) readTwin(HUB.card.node, id);
  }, 250);
}

/** Forget the open card: the next focus reads the twin again. */
function closeTwinCard() { HUB.card = null; }

/** The twin card of planned device `name`, or null when the hub holds no
 *  identity for it. The same node while the device stays in focus, so a
 *  repaint of the details keeps what the operator typed. */
function twinCard(name) {
  const x = hubIdentity(name);
  if (!x) { HUB.card = null; return null; }
  return twinCardFor(x.device_id);
}

function twinCardFor(id) {
  if (HUB.card && HUB.card.id === id) return HUB.card.node;
  const node = buildTwinCard(id);
  HUB.card = { id, node };
  refreshTwin(node, id);
  return node;
}

function buildTwinCard(id) {
  const base = "/api/v1/hub/devices/" + encodeURIComponent(id);
  const part = (key) => el("div", { class: "twin-part", data: { part: key } },
    el("h3", {}, key, " ", el("span", { class: "twin-version muted" })),
    el("pre", { class: "twin-doc" }, "…"));
  const message = el("p", { class: "twin-message", role: "status" });
  const result = el("div", { class: "method-result", role: "status" });
  const node = el("section", { class: "twin", data: { twin: id } },
    el("div", { class: "twin-head" },
      el("h2", {}, "Twin"), el("span", { class: "twin-presence muted" }),
      el("button", { type: "button", class: "twin-refresh", title: "read the twin again",
        on: { click: () => refreshTwin(node, id) } }, "Refresh")),
    part("desired"), part("reported"), part("tags"),
    el("form", { class: "twin-set", on: { submit: (ev) => setDesired(ev, node, base, message) } },
      el("input", { name: "desired-key", placeholder: "key", "aria-label": "desired property key", required: true }),
      el("input", { name: "desired-value", placeholder: "JSON: 5, \"on\", {\"hi\": 3}, null",
        "aria-label": "desired property value (JSON)", required: true }),
      el("button", { type: "submit" }, "Set desired property")),
    message,
    el("form", { class: "method-call", on: { submit: (ev) => callMethod(ev, base, result) } },
      el("input", { name: "method-name", placeholder: "method", "aria-label": "method name", required: true }),
      el("input", { name: "method-payload", placeholder: "JSON payload (empty: null)", "aria-label": "method payload (JSON)" }),
      el("input", { name: "method-timeout", value: "30s", "aria-label": "method timeout", title: "5s to 300s" }),
      el("button", { type: "submit" }, "Call method")),
    result);
  return node;
}

/** Read the twin and the device's presence again, and show them. */
async function refreshTwin(node, id) {
  await Promise.all([readTwin(node, id), loadHubDevices()]);
  const x = [...HUB.ids.values(), ...HUB.unplanned].find((e) => e.device_id === id);
  node.querySelector(".twin-presence").textContent = !x ? "" : x.connected
    ? "connected" : "not connected" + (x.last_seen ? ", last seen " + x.last_seen : "");
}

/** Read the twin alone again, and show it. */
async function readTwin(node, id) {
  const twin = await api("GET", "/api/v1/hub/devices/" + encodeURIComponent(id) + "/twin");
  if (twin.status === 200) showTwin(node, twin.data);
  else node.querySelector(".twin-message").textContent = reason(twin, "cannot read the twin");
}

function showTwin(node, doc) {
  for (const key of ["desired", "reported", "tags"]) {
    const box = node.querySelector(`[data-part="${key}"]`);
    box.hidden = doc[key] == null;
    const { $version, ...rest } = doc[key] || {};
    box.dataset.version = $version == null ? "" : String($version);
    box.querySelector(".twin-version").textContent = $version == null ? "" : "$version " + $version;
    box.querySelector(".twin-doc").textContent = JSON.stringify(rest, null, 2);
  }
}

/** The operator's JSON text as {value}, or {error} saying what was expected. */
function operatorJson(text, what) {
  try { return { value: JSON.parse(text) }; } catch (e) {
    return { error: what + " is not JSON (" + e.message + "): expected a number, true, false, null, "
      + "a \"quoted string\", [a, list] or {\"an\": \"object\"}." };
  }
}

/** The API's own message for a refusal, else its HTTP status. */
function reason(r, doing) {
  return doing + " (HTTP " + r.status + "): " + (r.data && r.data.error ? r.data.error : String(r.data || ""));
}

async function setDesired(ev, node, base, message) {
  ev.preventDefault();
  const f = ev.target;
  const key = f.elements["desired-key"].value.trim();
  const parsed = operatorJson(f.elements["desired-value"].value, "The value of " + key);
  if (parsed.error) { message.textContent = parsed.error; return; }
  message.textContent = "";
  const r = await api("PATCH", base + "/twin", { desired: { [key]: parsed.value } });
  if (r.status !== 200) { message.textContent = reason(r, "desired." + key + " not set"); return; }
  showTwin(node, r.data);
  message.textContent = "desired." + key + " set: $version " + r.data.desired.$version + ".";
}

async function callMethod(ev, base, result) {
  ev.preventDefault();
  const f = ev.target;
  const name = f.elements["method-name"].value.trim();
  const text = f.elements["method-payload"].value.trim();
  const parsed = text === "" ? { value: null } : operatorJson(text, "The payload");
  delete result.dataset.status;
  if (parsed.error) { result.replaceChildren(el("p", { class: "error" }, parsed.error)); return; }
  result.replaceChildren(el("p", { class: "muted" }, "Calling " + name + "…"));
  const body = { payload: parsed.value, timeout: f.elements["method-timeout"].value.trim() || undefined };
  const r = await api("POST", base + "/methods/" + encodeURIComponent(name), body);
  if (r.status === 200) {
    result.dataset.status = String(r.data.status);
    result.replaceChildren(el("p", { class: "method-status" }, name + " answered with status " + r.data.status),
      el("pre", { class: "method-payload" }, JSON.stringify(r.data.payload, null, 2)));
  } else {
    result.dataset.status = "http-" + r.status;
    result.replaceChildren(el("p", { class: "error" }, reason(r, name + " not answered")));
  }
}
