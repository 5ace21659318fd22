// ztpd topology GUI. Everything a device reports is shown with textContent,
// never parsed as HTML. Data comes from /api/v1 with the session cookie;
// live updates come from the /api/v1/events stream (no polling).
"use strict";

const $ = (sel) => document.querySelector(sel);

/** A DOM element; children are nodes or text (always set as text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(body === undefined ? {} : body);
  }
  const r = await fetch(path, opts);
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  return { status: r.status, data };
}

function alertMsg(text) { $("#alert").textContent = text || ""; }

// ---------------------------------------------------------------- state
const S = {
  devices: new Map(),   // name -> device
  order: [],            // names in plan order
  links: [],
  problems: [],
  observed: new Map(),  // name -> reported model
  selected: new Set(),
  focus: null,
  cy: null,
  rollouts: new Map(),
  stages: [],           // [{name, tone}] from /api/v1/stages, in the state machine's order
  tones: new Map(),     // stage name -> tone
  shown: [],            // names matching the filters
  rendered: 0,
};
const LIST_CHUNK = 300;

// ---------------------------------------------------------------- login
async function boot() {
  const probe = await api("GET", "/api/v1/status");
  if (probe.status === 200) return start();
  $("#login").hidden = false;
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = ev.target.elements.token.value.trim();
    const r = await fetch("/api/v1/session", {
      method: "POST", credentials: "same-origin",
      headers: { Authorization: "Bearer " + token },
    });
    if (r.status === 204) {
      ev.target.elements.token.value = "";
      $("#login").hidden = true;
      start();
    } else {
      $("#login-error").textContent = "That is not the operator token (HTTP " + r.status + ").";
    }
  });
}

async function logout() {
  await api("DELETE", "/api/v1/session");
  location.reload();
}

// ---------------------------------------------------------------- load
async function start() {
  $("#app").hidden = false;
  performance.mark("ztpd:start");
  const [topo, stages, status] = await Promise.all(
    [api("GET", "/api/v1/topology"), api("GET", "/api/v1/stages"), api("GET", "/api/v1/status")]);
  performance.mark("ztpd:topology");
  if (stages.status === 200) {
    S.stages = stages.data;
    for (const st of S.stages) S.tones.set(st.name, st.tone);
  }
  if (topo.status !== 200) {
    alertMsg("Cannot read the topology (HTTP " + topo.status + ").");
    return;
  }
  for (const d of topo.data.planned.devices) {
    S.devices.set(d.name, { ...d, problems: [] });
    S.order.push(d.name);
  }
  S.links = topo.data.planned.links;
  S.problems = topo.data.problems;
  for (const o of topo.data.observed) S.observed.set(o.device, o.model);
  fillFilters();
  performance.mark("ztpd:model");
  drawGraph();
  performance.mark("ztpd:graph");
  applyFilters();
  performance.mark("ztpd:list");
  wire();
  listen();
  // Details the graph and list do not need come after the first paint.
  loadDetails();
  loadRollouts();
  loadUnplanned();
  // Twins only where the hub runs: elsewhere its API is 404.
  if (status.status === 200 && status.data.hub_running) {
    loadHubDevices().then(() => S.focus && focusDevice(S.focus));
  }
}

async function loadDetails() {
  const devs = await api("GET", "/api/v1/devices");
  if (devs.status !== 200) return;
  for (const x of devs.data) {
    const d = S.devices.get(x.name);
    if (!d) continue;
    Object.assign(d, { problems: x.problems || [], last_event: x.last_event, progress: x.progress, ip: x.ip, version: x.version,
      pending_address: x.pending_address, pending_claims: x.pending_claims || [],
      serial: x.serial, bound: x.bound, replacement: x.replacement });
  }
  if (S.focus) focusDevice(S.focus);
}

function fillFilters() {
  const models = [...new Set(S.order.map((n) => S.devices.get(n).model))].sort();
  for (const m of models) $("#filter-model").append(el("option", { value: m }, m));
  // The stages the API can report, from the API itself (one list in ztpd).
  for (const st of S.stages) $("#filter-state").append(el("option", { value: st.name }, st.name));
}

// ---------------------------------------------------------------- list
function matches(d) {
  const q = $("#search").value.trim().toLowerCase();
  const m = $("#filter-model").value;
  const s = $("#filter-state").value;
  if (q && !d.name.toLowerCase().includes(q) && !String(d.serial).toLowerCase().includes(q)) return false;
  if (m && d.model !== m) return false;
  if (s && d.state !== s) return false;
  return true;
}

function applyFilters() {
  S.shown = S.order.filter((n) => matches(S.devices.get(n)));
  S.rendered = 0;
  $("#devices").replaceChildren();
  renderMore();
  if (S.cy) {
    const shown = new Set(S.shown);
    const filtering = shown.size !== S.order.length;
    S.cy.batch(() => S.cy.nodes().forEach((n) => {
      const dim = !shown.has(n.id());
      if (n.hasClass("dim") !== dim) n.toggleClass("dim", dim);
      const hit = filtering && !dim;
      if (n.hasClass("hit") !== hit) n.toggleClass("hit", hit);
    }));
  }
  updateSummary();
}

// Rows are rendered on demand: the first chunk, then more as the list scrolls.
function renderMore() {
  const box = $("#devices");
  box.querySelector(".more")?.remove();
  const next = S.shown.slice(S.rendered, S.rendered + LIST_CHUNK);
  for (const name of next) box.append(row(S.devices.get(name)));
  S.rendered += next.length;
  if (S.rendered < S.shown.length) {
    const more = el("div", { class: "more" }, (S.shown.length - S.rendered) + " more…");
    box.append(more);
    new IntersectionObserver((es, obs) => {
      if (es.some((e) => e.isIntersecting)) { obs.disconnect(); renderMore(); }
    }, { root: box }).observe(more);
  }
}

function row(d) {
  const box = el("input", { type: "checkbox", name: "select", "aria-label": "select " + d.name });
  box.checked = S.selected.has(d.name);
  box.addEventListener("click", (ev) => { ev.stopPropagation(); setSelected(d.name, box.checked); });
  return el("div", {
    class: "row" + (S.selected.has(d.name) ? " sel" : ""), role: "listitem",
    data: { device: d.name, model: d.model, state: d.state },
    on: { click: () => openDevice(d.name) },
  }, box, el("span", { class: "name" }, d.name, " ", el("span", { class: "model" }, d.model)),
  el("span", { class: "badge " + toneClass(d.state) }, d.state));
}

function rowOf(name) { return document.querySelector(`[data-device="${CSS.escape(name)}"]`); }

function refreshRow(name) {
  const old = rowOf(name);
  if (old) old.replaceWith(row(S.devices.get(name)));
}

function updateSummary() {
  const counts = {};
  for (const d of S.devices.values()) counts[d.state] = (counts[d.state] || 0) + 1;
  const parts = Object.entries(counts).sort().map(([k, v]) => v + " " + k);
  $("#summary").textContent = S.devices.size + " devices: " + parts.join(", ");
  $("#selected-count").textContent = S.selected.size + " selected";
}

// ---------------------------------------------------------------- selection
function setSelected(name, on) {
  if (on) S.selected.add(name); else S.selected.delete(name);
  const r = rowOf(name);
  if (r) { r.classList.toggle("sel", on); r.querySelector('input[name="select"]').checked = on; }
  const n = S.cy && S.cy.getElementById(name);
  if (n && n.length && n.selected() !== on) { S.syncing = true; on ? n.select() : n.unselect(); S.syncing = false; }
  updateSummary();
}

// ---------------------------------------------------------------- graph
// Colours by tone; each stage's tone comes from /api/v1/stages.
const TONE_COLOR = { idle: "#78909c", wait: "#ffb74d", busy: "#4fc3f7", ok: "#66bb6a", bad: "#ef5350" };
function toneOf(s) { return S.tones.get(s) || "idle"; }
function toneClass(s) { return "tone-" + toneOf(s); }
function stateColor(s) { return TONE_COLOR[toneOf(s)]; }
const LINK_COLOR = {
  ok: "#66bb6a", unchecked: "#3d4f63", wrong_port: "#ffb74d", wrong_peer: "#ef5350",
  swapped: "#ba68c8", missing_link: "#ef5350", unplanned_link: "#ff7043",
};

// Up to this many devices a link within one row arcs over the devices
// between its ends and labels get a backing (see drawGraph).
const DETAILED = 500;

// Node size and the room a link keeps from a device it does not connect.
const NODE_SIZE = 22;
const CLEARANCE = 1.5 * NODE_SIZE;

// A link between two devices of one row would run straight through the
// devices between them: it arcs above the row instead (a quadratic curve),
// high enough to clear the device nearest either end by CLEARANCE. Returns
// the control point's distance from the straight line, or null to draw it
// straight. The curve's offset at a fraction s of the way is 2s(1-s)D.
function rowArcs() {
  const rows = new Map();
  for (const name of S.order) {
    const p = S.devices.get(name).position;
    if (!p) continue;
    if (!rows.has(p.y)) rows.set(p.y, []);
    rows.get(p.y).push(p.x);
  }
  return (a, b) => {
    const pa = S.devices.get(a).position, pb = S.devices.get(b).position;
    if (!pa || !pb || pa.y !== pb.y) return null;
    const lo = Math.min(pa.x, pb.x), hi = Math.max(pa.x, pb.x), len = hi - lo;
    let near = Infinity;
    for (const x of rows.get(pa.y)) {
      if (x > lo && x < hi) near = Math.min(near, x - lo, hi - x);
    }
    if (near === Infinity) return null;
    const s = near / len;
    const d = CLEARANCE / (2 * s * (1 - s));
    // cytoscape measures the distance to the right of source -> target:
    // above the row is to the left when going right.
    return pb.x > pa.x ? -d : d;
  };
}

function drawGraph() {
  const big = S.order.length > 2000;
  const nodes = S.order.map((name) => {
    const d = S.devices.get(name);
    return { group: "nodes", data: { id: name, label: name, state: d.state, color: stateColor(d.state) }, position: d.position };
  });
  // Past DETAILED devices every link stays a straight haystack line and
  // labels have no backing: both cost frames while panning (1,000 generated
  // devices: pan p95 33 -> 100 ms with them, benches/gui).
  const detailed = S.order.length <= DETAILED;
  const arc = detailed ? rowArcs() : () => null;
  const edges = S.links.map((l, i) => ({
    group: "edges",
    data: { id: "l" + i, source: l.a.split(":")[0], target: l.b.split(":")[0], status: l.status, color: LINK_COLOR[l.status] || "#3d4f63" },
  })).filter((e) => S.devices.has(e.data.source) && S.devices.has(e.data.target));
  for (const e of edges) {
    const d = arc(e.data.source, e.data.target);
    if (d !== null) e.data.arc = d;
  }
  for (const [i, p] of S.problems.entries()) {
    if (p.kind !== "unplanned_link" || !p.observed) continue;
    if (!S.devices.has(p.device) || !S.devices.has(p.observed.device)) continue;
    edges.push({ group: "edges", data: { id: "u" + i, source: p.device, target: p.observed.device, status: "unplanned_link", color: LINK_COLOR.unplanned_link } });
  }
  S.cy = cytoscape({
    container: $("#graph"),
    elements: [...nodes, ...edges],
    layout: { name: "preset" },
    boxSelectionEnabled: true,
    selectionType: "additive",
    textureOnViewport: big,
    hideEdgesOnViewport: true,
    hideLabelsOnViewport: true,
    pixelRatio: big ? 1 : "auto",
    minZoom: 0.02, maxZoom: 4, wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: {
        // Colours come with each element's data: one mapper instead of a
        // selector per state, which is most of a large fabric's styling time.
        "background-color": "data(color)",
        // A large fabric labels only what is selected or searched for:
        // measuring 10,000 labels is most of its first draw.
        label: big ? "" : "data(label)", color: "#dbe6f1", "font-size": 14, "text-valign": "bottom",
        "text-margin-y": 4, width: NODE_SIZE, height: NODE_SIZE, "min-zoomed-font-size": 8,
        // Labels sit on a backing of the page's colour, so the links
        // running under a device's name never hide it.
        ...(detailed ? {
          "text-background-color": "#0f1620", "text-background-opacity": 0.85,
          "text-background-padding": 2, "text-background-shape": "roundrectangle",
        } : {}),
      } },

      { selector: "node:selected", style: { "border-width": 3, "border-color": "#ffffff", label: "data(label)" } },
      { selector: "node.hit", style: { label: "data(label)" } },
      { selector: "node.dim", style: { opacity: 0.15 } },
      { selector: "edge", style: { width: 2, "line-color": "data(color)", "curve-style": "haystack" } },
      { selector: "edge[arc]", style: {
        "curve-style": "unbundled-bezier", "control-point-distances": "data(arc)", "control-point-weights": 0.5,
      } },
      { selector: 'edge[status = "unplanned_link"]', style: { "line-style": "dashed" } },
    ],
  });
  window.__cy = S.cy; // for benches/gui (frame times while panning)
  S.cy.on("select", "node", (ev) => { if (!S.syncing) setSelected(ev.target.id(), true); });
  S.cy.on("unselect", "node", (ev) => { if (!S.syncing) setSelected(ev.target.id(), false); });
  S.cy.on("tap", "node", (ev) => openDevice(ev.target.id()));
  S.cy.fit(undefined, 30);
}

function paintNode(name) {
  const n = S.cy && S.cy.getElementById(name);
  if (n && n.length) {
    const s = S.devices.get(name).state;
    n.data({ state: s, color: stateColor(s) });
  }
}

// ---------------------------------------------------------------- details
// Opened by the operator (a click in the list or the graph): what is read
// on demand, such as the twin, is read again.
function openDevice(name) {
  closeTwinCard();
  focusDevice(name);
}

function focusDevice(name) {
  S.focus = name;
  const d = S.devices.get(name);
  if (!d) return;
  const reported = S.observed.get(name);
  const probs = (d.problems && d.problems.length ? d.problems : S.problems.filter((p) => p.device === name));
  $("#details").replaceChildren(
    el("h2", {}, "Device"),
    el("dl", {},
      el("dt", {}, "name"), el("dd", {}, d.name),
      el("dt", {}, "serial"), el("dd", { class: "serial" }, d.serial || "— (known by position)", d.bound ? " (bound by " + d.bound + ")" : ""),
      el("dt", {}, "model"), el("dd", {}, d.model),
      el("dt", {}, "reported model"), el("dd", { class: "reported-model" }, reported == null ? "—" : reported),
      el("dt", {}, "state"), el("dd", { class: toneClass(d.state) }, d.state + (d.progress != null ? " " + d.progress + "%" : "")),
      el("dt", {}, "version"), el("dd", {}, d.version || "—"),
      el("dt", {}, "ip"), el("dd", {}, d.ip || "—"),
      el("dt", {}, "tier"), el("dd", {}, d.tier == null ? "no path to a root" : String(d.tier)),
      ...(d.pending_address ? [el("dt", {}, "pending hello from"), el("dd", { class: "pending-address" }, d.pending_address)] : []),
    ),
    ...(d.pending_claims && d.pending_claims.length > 1
      ? [el("p", { class: "problem pending-claims" }, d.pending_claims.length + " addresses said hello as this device while it waited: "
        + d.pending_claims.join(", ") + ". Approve only the one that is the device.")]
      : []),
    ...(d.state === "pending_approval"
      ? [el("button", { type: "button", class: "approve", on: { click: () => approveDevice(d) } }, "Approve")]
      : []),
    ...[replacementCard(d)].filter(Boolean),
    el("h2", {}, "Last events"),
    ...(d.events && d.events.length ? d.events : d.last_event ? [d.last_event] : [])
      .map((e) => el("div", { class: "event" }, el("span", { class: "muted" }, e.at.slice(11, 19)), " ",
        el("b", { class: toneClass(e.stage) }, e.stage), " ", e.message || "")),
    probs.length ? el("h2", {}, "Problems") : el("p", { class: "muted" }, "No topology problem."),
    ...probs.map((p) => el("div", { class: "problem" }, el("b", {}, p.kind), " ", p.fix || "")),
    ...[twinCard(name)].filter(Boolean),
  );
}

// Approves the address shown (the pending hello's), never whoever spoke last:
// the daemon refuses it (409) if another hello came in since.
async function approveDevice(d) {
  alertMsg("");
  const body = d.pending_address ? { address: d.pending_address } : {};
  const r = await api("POST", "/api/v1/devices/" + encodeURIComponent(d.name) + "/approve", body);
  if (r.status !== 200) alertMsg((r.data && r.data.error) || ("approve failed: HTTP " + r.status));
  await loadDetails();
}

// ---------------------------------------------------------------- groups and rollouts
function selectionModel() {
  const names = [...S.selected];
  if (!names.length) return { error: "Select devices first (click, shift-click or drag a box in the graph, or tick the list)." };
  const first = S.devices.get(names[0]);
  const other = names.map((n) => S.devices.get(n)).find((d) => d.model !== first.model);
  if (other) {
    return { error: "A group holds devices of one model: " + first.name + " is " + first.model + " but " + other.name + " is " + other.model + "." };
  }
  return { model: first.model, names };
}

async function createGroup(ev) {
  ev.preventDefault();
  alertMsg("");
  const sel = selectionModel();
  if (sel.error) return alertMsg(sel.error);
  const name = ev.target.elements["group-name"].value.trim();
  const r = await api("POST", "/api/v1/groups", { name, devices: sel.names });
  if (r.status === 201) {
    S.group = name;
    $("#group-status").textContent = "Group " + name + ": " + sel.names.length + " × " + sel.model + ".";
  } else {
    alertMsg("Group not created (HTTP " + r.status + "): " + (r.data && r.data.error ? r.data.error : r.data));
  }
}

function policyFromForm(f) {
  const p = {};
  const num = (k) => { const v = f.elements[k].value.trim(); if (v !== "") p[k] = Number(v); };
  num("batch_size"); num("canary");
  const mf = f.elements.max_failures.value.trim();
  if (mf !== "") p.max_failures = /%$/.test(mf) ? mf : Number(mf);
  for (const k of ["pause_between", "window", "device_timeout", "order"]) {
    const v = f.elements[k].value.trim();
    if (v !== "") p[k] = v;
  }
  return p;
}

async function startRollout(ev) {
  ev.preventDefault();
  alertMsg("");
  const f = ev.target;
  if (!S.group) {
    const sel = selectionModel();
    if (sel.error) return alertMsg(sel.error);
    return alertMsg("Create a group from the selection first.");
  }
  const body = { group: S.group, kind: f.elements.kind.value, policy: policyFromForm(f) };
  const version = f.elements.version.value.trim(), image = f.elements.image.value.trim();
  if (body.kind === "software" && (version || image)) body.software = { version, image };
  const r = await api("POST", "/api/v1/rollouts", body);
  if (r.status === 201) { showRollout(r.data); $("#group-status").textContent = "Rollout " + r.data.id + " started."; }
  else alertMsg("Rollout not started (HTTP " + r.status + "): " + (r.data && r.data.error ? r.data.error : r.data));
}

async function loadRollouts() {
  const r = await api("GET", "/api/v1/rollouts");
  if (r.status === 200 && Array.isArray(r.data)) r.data.forEach(showRollout);
}

function showRollout(ro) {
  if (!ro || ro.id === undefined) return;
  S.rollouts.set(String(ro.id), ro);
  const act = (what) => async () => {
    const r = await api("POST", "/api/v1/rollouts/" + encodeURIComponent(ro.id) + "/" + what);
    if (r.status === 200) showRollout(r.data);
    else alertMsg(what + " refused (HTTP " + r.status + "): " + (r.data && r.data.error ? r.data.error : r.data));
  };
  // SPEC §10: batches name their devices; each device's progress is in `devices`.
  const byName = new Map((ro.devices || []).map((d) => [d.name, d]));
  // A device that succeeded runs the target version now.
  for (const rd of ro.devices || []) {
    const d = S.devices.get(rd.name);
    const v = rd.version || (rd.state === "succeeded" && ro.target && ro.target.version);
    if (d && v && d.version !== v) {
      d.version = v;
      if (S.focus === rd.name) focusDevice(rd.name);
    }
  }
  const batches = (ro.batches || []).map((b, i) => el("div", { class: "batch", data: { batch: String(i), state: b.state || "" } },
    (b.canary ? "canary" : "batch " + (i + 1)) + " (" + (b.state || "") + "): ",
    (b.devices || []).map((name) => {
      const d = byName.get(name) || {};
      const what = d.state === "in_progress" && d.stage ? d.stage : d.state;
      // A method rollout's step: the status the device answered (or 404/504).
      const status = d.response ? " (" + d.response.status + ")" : "";
      return el("span", { class: "rd st-" + (d.state || ""), data: { rolloutDevice: name, state: d.state || "" }, title: d.message || "" },
        name + (what ? " " + what : "") + status);
    })));
  const c = ro.counts || {};
  const counts = el("div", { class: "muted" },
    (c.succeeded || 0) + " succeeded, " + (c.failed || 0) + " failed, " + (c.in_progress || 0) + " in progress, " + (c.pending || 0) + " pending");
  // A finished rollout takes no more orders: no buttons.
  const finished = ro.state === "done" || ro.state === "aborted";
  const node = el("div", { class: "rollout", data: { rollout: String(ro.id), state: ro.state || "" } },
    el("div", { class: "head" },
      el("b", {}, String(ro.id)), el("span", {}, ro.group || ""),
      ro.method ? el("span", { class: "muted" }, "method " + ro.method.name) : null,
      el("span", { class: "badge" }, ro.state || ""),
      finished ? null : el("button", { type: "button", on: { click: act("pause") } }, "Pause"),
      finished ? null : el("button", { type: "button", on: { click: act("resume") } }, "Resume"),
      finished ? null : el("button", { type: "button", on: { click: act("abort") } }, "Abort")),
    ro.reason ? el("div", { class: "muted" }, ro.reason) : null,
    counts,
    batches);
  const old = document.querySelector(`[data-rollout="${CSS.escape(String(ro.id))}"]`);
  if (old) old.replaceWith(node); else $("#rollouts").prepend(node);
}

// ---------------------------------------------------------------- replacement
// A new box at a device's place waits for the operator (SPEC §12).
function replacementCard(d) {
  if (d.state !== "replacement_pending" || !d.replacement) return null;
  const accept = async () => {
    alertMsg("");
    const r = await api("POST", "/api/v1/devices/" + encodeURIComponent(d.name) + "/replace", { serial: d.replacement.serial });
    if (r.status === 200) {
      d.serial = r.data.serial; d.bound = r.data.bound; d.replacement = null;
      if (S.focus === d.name) focusDevice(d.name);
    } else alertMsg("Replacement not accepted (HTTP " + r.status + "): " + (r.data && r.data.error ? r.data.error : r.data));
  };
  return el("div", { class: "replacement", data: { replacement: d.name } },
    el("h2", {}, "Replacement"),
    el("dl", {},
      el("dt", {}, "old serial"), el("dd", { class: "old-serial" }, d.replacement.replaces || "—"),
      el("dt", {}, "new serial"), el("dd", { class: "new-serial" }, d.replacement.serial)),
    el("button", { type: "button", on: { click: accept } }, "Accept replacement"));
}

// ---------------------------------------------------------------- unplanned
// Devices seen that no plan has (DHCP clients and hellos), each with the
// [[devices]] entry that would plan it.
async function loadUnplanned() {
  const r = await api("GET", "/api/v1/unplanned");
  if (r.status !== 200 || !Array.isArray(r.data)) return;
  const rows = r.data.map((x) => {
    const facts = [x.vendor, x.model, x.serial && "serial " + x.serial, x.mac && "MAC " + x.mac,
      (x.address || x.ip) && "at " + (x.address || x.ip), "via " + x.source].filter(Boolean).join(" · ");
    const ns = (x.neighbors || []).map((n) => n.local_port + " → " + n.remote_device + ":" + n.remote_port).join(", ");
    return el("div", { class: "unplanned", data: { unplanned: x.serial || x.mac || "", source: x.source || "" } },
      el("div", {}, facts),
      ns ? el("div", { class: "muted" }, "neighbours: " + ns) : null,
      el("pre", { class: "entry" }, x.entry || ""));
  });
  $("#unplanned").replaceChildren(...(rows.length ? rows : [el("p", { class: "muted" }, "Every device seen is planned.")]));
}

// ---------------------------------------------------------------- approval
// Approve the selected devices that wait for it; the event stream repaints them.
async function approveSelected() {
  alertMsg("");
  const names = [...S.selected].filter((n) => S.devices.get(n).state === "pending_approval");
  if (!names.length) return alertMsg("Select devices in pending_approval to approve them.");
  const refused = [];
  for (const name of names) {
    const d = S.devices.get(name);
    // Two addresses said hello as this device: the operator must choose
    // in its details, where the claims are shown, never in a batch.
    if (d.pending_claims && d.pending_claims.length > 1) {
      refused.push(name + " (" + d.pending_claims.length + " addresses claimed it: approve it from its details)");
      continue;
    }
    const body = d.pending_address ? { address: d.pending_address } : {};
    const r = await api("POST", "/api/v1/devices/" + encodeURIComponent(name) + "/approve", body);
    if (r.status !== 200) refused.push(name + " (HTTP " + r.status + (r.data && r.data.error ? ": " + r.data.error : "") + ")");
  }
  if (refused.length) alertMsg("Not approved: " + refused.join("; "));
}

// ---------------------------------------------------------------- live
function listen() {
  const es = new EventSource("/api/v1/events");
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  es.addEventListener("device", (m) => {
    let e; try { e = JSON.parse(m.data); } catch (_) { return; }
    const d = S.devices.get(e.device);
    if (!d) return;
    d.state = e.stage;
    if (e.percent != null) d.progress = e.percent;
    if (e.version) d.version = e.version;
    d.last_event = { at: e.at, stage: e.stage, message: e.message };
    // The newest few, as they arrive on the stream.
    d.events = [d.last_event, ...(d.events || [])].slice(0, 6);
    refreshRow(e.device);
    paintNode(e.device);
    updateSummary();
    // The stream names the stage only: the new box's serial comes from the API.
    if (e.stage === "replacement_pending" || (e.from === "replacement_pending" && e.stage === "planned")) loadDetails();
    else if (S.focus === e.device) focusDevice(e.device);
  });
  es.addEventListener("rollout", (m) => {
    try { showRollout(JSON.parse(m.data)); } catch (_) { /* not JSON: ignored */ }
  });
  // Drift on a deployed device (SPEC §12): links and problems are read again.
  es.addEventListener("topology", () => refreshTopology());
  // A twin changed on the local hub: the open twin card reads it again.
  es.addEventListener("twin", (m) => {
    try { twinChanged(JSON.parse(m.data).device_id); } catch (_) { /* not JSON: ignored */ }
  });
  es.addEventListener("reload", () => alertMsg("The plans were reloaded: reload the page to see the new plan."));
}

// Link check results and problems, read again (after drift or its end).
async function refreshTopology() {
  const topo = await api("GET", "/api/v1/topology");
  if (topo.status !== 200) return;
  S.problems = topo.data.problems;
  const status = new Map(topo.data.planned.links.map((l) => [l.a + " " + l.b, l.status]));
  S.links.forEach((l, i) => {
    l.status = status.get(l.a + " " + l.b) || l.status;
    const e = S.cy && S.cy.getElementById("l" + i);
    if (e && e.length) e.data({ status: l.status, color: LINK_COLOR[l.status] || "#3d4f63" });
  });
  await loadDetails();
}

// ---------------------------------------------------------------- wiring
function wire() {
  let t;
  $("#search").addEventListener("input", () => { clearTimeout(t); t = setTimeout(applyFilters, 120); });
  $("#filter-model").addEventListener("change", applyFilters);
  $("#filter-state").addEventListener("change", applyFilters);
  $("#select-shown").addEventListener("change", (ev) => S.shown.forEach((n) => setSelected(n, ev.target.checked)));
  $("#group-form").addEventListener("submit", createGroup);
  $("#approve").addEventListener("click", approveSelected);
  $("#unplanned-refresh").addEventListener("click", loadUnplanned);
  $("#hub-refresh").addEventListener("click", loadHubDevices);
  $("#policy-form").addEventListener("submit", startRollout);
  $("#logout").addEventListener("click", logout);
  $("#fit").addEventListener("click", () => S.cy && S.cy.fit(undefined, 30));
}

boot();
