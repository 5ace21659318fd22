"""The topology GUI's drawing of a fabric, checked geometrically in real
headless Chromium (Debian's), driven by Playwright.

Run by tests/gui.rs against a running ztpd:
    layout_check.py URL TOKEN EXPECTED.json SCREENSHOT.png

EXPECTED.json: {"rows": [[name, ...], ...]}: the devices of each row, top row
first; each row's devices share one height, and each row is below the last.

Checks, on the positions and edge paths Cytoscape rendered (curves sampled):
- no link passes within a node's radius of a node it does not connect;
- the rows are as expected (roots on top, one model per row where links allow);
- labels are at least MIN_LABEL_PX tall at the default zoom.
Exits non-zero, printing what failed.
"""
import json
import sys

from playwright.sync_api import sync_playwright

url, token, expected_path, shot = sys.argv[1:5]
expected = json.load(open(expected_path))
MIN_LABEL_PX = 11

# Every edge as points along what Cytoscape draws: a straight line between
# the node centres (haystack), or the quadratic curve from the source
# endpoint through the control point to the target endpoint (bezier).
GEOMETRY = """() => {
  const cy = window.__cy;
  const nodes = cy.nodes().map(n => ({
    id: n.id(), x: n.position('x'), y: n.position('y'), r: n.width() / 2,
    font: parseFloat(n.style('font-size')), label: n.style('label'),
  }));
  const edges = cy.edges().map(e => {
    const s = e.source(), t = e.target();
    const cps = e.style('curve-style') === 'haystack' ? [] : (e.controlPoints() || []);
    let a = s.position(), b = t.position();
    if (cps.length) { a = e.sourceEndpoint(); b = e.targetEndpoint(); }
    const pts = [];
    for (let i = 0; i <= 400; i++) {
      const u = i / 400;
      if (cps.length === 0) {
        pts.push([a.x + u * (b.x - a.x), a.y + u * (b.y - a.y)]);
      } else {
        const c = cps[0];
        pts.push([(1 - u) * (1 - u) * a.x + 2 * u * (1 - u) * c.x + u * u * b.x,
                  (1 - u) * (1 - u) * a.y + 2 * u * (1 - u) * c.y + u * u * b.y]);
      }
    }
    return { id: e.id(), source: s.id(), target: t.id(), curved: cps.length, controls: cps.length, pts };
  });
  return { nodes, edges, zoom: cy.zoom() };
}"""

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    page.goto(url)
    page.fill('input[name="token"]', token)
    page.press('input[name="token"]', "Enter")
    page.wait_for_selector("#graph canvas")
    page.wait_for_function("window.__cy && window.__cy.nodes().length > 0")
    g = page.evaluate(GEOMETRY)
    page.screenshot(path=shot, full_page=True)
    browser.close()

nodes = {n["id"]: n for n in g["nodes"]}
problems = []
for e in g["edges"]:
    assert e["controls"] <= 1, f"{e['id']}: {e['controls']} control points: sample them too"
    for n in g["nodes"]:
        if n["id"] in (e["source"], e["target"]):
            continue
        near = min(((x - n["x"]) ** 2 + (y - n["y"]) ** 2) ** 0.5 for x, y in e["pts"])
        if near < n["r"]:
            problems.append(f"link {e['source']}-{e['target']} passes {near:.1f} px from {n['id']} "
                            f"(radius {n['r']})")

tops = []
for row in expected["rows"]:
    ys = {nodes[name]["y"] for name in row}
    assert len(ys) == 1, f"row {row} is not one row: {[(n, nodes[n]['y']) for n in row]}"
    tops.append(ys.pop())
assert tops == sorted(tops) and len(set(tops)) == len(tops), f"rows out of order: {tops}"
assert min(n["y"] for n in g["nodes"]) == tops[0], "a device above the top row"

for n in g["nodes"]:
    if n["label"]:
        px = n["font"] * g["zoom"]
        assert px >= MIN_LABEL_PX, f"{n['id']}: label {px:.1f} px at the default zoom"

curved = sum(1 for e in g["edges"] if e["curved"])
assert not problems, "\n".join(problems)
print(f"layout ok: {len(g['nodes'])} devices, {len(g['edges'])} links ({curved} arcs), "
      f"zoom {g['zoom']:.2f}, screenshot {shot}")
