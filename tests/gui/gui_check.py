"""The topology GUI in real headless Chromium (Debian's), driven by Playwright.

Run by tests/gui.rs against a running ztpd:
    gui_check.py URL TOKEN EXPECTED.json SCREENSHOT.png

EXPECTED.json: {"devices": {name: model}, "markup_device": name, "markup": text,
                "mixed": [name, name], "approve": {device, address, claims},
                "approve_selected": name, "stages": [...], "states": {name: stage},
                "twin": {device, device_id, desired, desired_version, reported,
                         reported_version, set: {key, value}, method: {name, payload,
                         answer}, other_origin, outside: device_id}, ...}
Exits non-zero, printing what failed, on the first check that fails.
"""
import json
import sys
import urllib.request
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

url, token, expected_path, shot = sys.argv[1:5]
expected = json.load(open(expected_path))
origin = urlsplit(url).netloc

errors, requests, failed = [], [], []
# The refusals this page is expected to meet: the login probe and the wrong
# token (401). Anything else failing is a finding.
EXPECTED_FAILURES = {(401, "/api/v1/status"), (401, "/api/v1/session")}
twin = expected.get("twin")


def hub_path(twin):
    return f"/api/v1/hub/devices/{twin['device_id']}"


if twin:
    # The plan's key refused (409); a method on a device not connected (404).
    EXPECTED_FAILURES |= {(409, f"{hub_path(twin)}/twin"),
                          (404, f"/api/v1/hub/devices/{twin['outside']}/methods/echo")}
changes = []

def doc_of(page, part):
    """A twin part as shown: its document and its $version."""
    box = f'#details [data-part="{part}"]'
    return json.loads(page.text_content(f"{box} .twin-doc")), page.get_attribute(box, "data-version")


def check_outside(page, twin):
    """A hub identity no plan has is listed apart and opens with its twin;
    planned devices are not listed there."""
    assert page.locator(f'[data-hub-device="{twin["device_id"]}"]').count() == 0, "a planned one listed"
    page.click(f'[data-hub-device="{twin["outside"]}"]')
    card = f'#details [data-twin="{twin["outside"]}"]'
    page.wait_for_selector(f'{card} [data-part="desired"][data-version]:not([data-version=""])')
    assert page.locator(f'{card} [data-part="tags"]').is_hidden(), "tags shown for an unplanned device"
    assert "not connected" in page.text_content(f"{card} .twin-presence")
    # A method call says why there is no answer: the API's 404.
    page.fill('input[name="method-name"]', "echo")
    page.click('button:text-is("Call method")')
    page.wait_for_selector(f'{card} .method-result[data-status="http-404"]')
    assert "is not connected" in page.text_content(f"{card} .method-result")


def check_twin(page, twin):
    page.click(f'[data-device="{twin["device"]}"] .name')
    card = f'#details [data-twin="{twin["device_id"]}"]'
    page.wait_for_selector(f'{card} [data-part="desired"][data-version]:not([data-version=""])')
    desired, version = doc_of(page, "desired")
    for k, v in twin["desired"].items():
        assert desired.get(k) == v, f"desired shown as {desired}"
    assert version == str(twin["desired_version"]), f"desired $version shown as {version}"
    assert "$version" not in desired, desired
    reported, version = doc_of(page, "reported")
    for k, v in twin["reported"].items():
        assert reported.get(k) == v, f"reported shown as {reported}"
    assert version == str(twin["reported_version"]), f"reported $version shown as {version}"
    tags, _ = doc_of(page, "tags")
    assert tags.get("name") == twin["device"], f"tags shown as {tags}"
    assert "connected" == page.text_content(f"{card} .twin-presence"), "not shown connected"

    # Bad JSON is refused in the page, and no request goes out.
    sent = len(changes)
    page.fill('input[name="desired-key"]', twin["set"]["key"])
    page.fill('input[name="desired-value"]', "{oops")
    page.click('button:text-is("Set desired property")')
    page.wait_for_selector(f"{card} .twin-message:has-text('is not JSON')")
    page.fill('input[name="method-name"]', twin["method"]["name"])
    page.fill('input[name="method-payload"]', "n: 7")
    page.click('button:text-is("Call method")')
    page.wait_for_selector(f"{card} .method-result:has-text('is not JSON')")
    assert len(changes) == sent, f"bad JSON was sent: {changes[sent:]}"

    # The plan's key: the API's 409, naming the plan file.
    page.fill('input[name="desired-key"]', "device_function")
    page.fill('input[name="desired-value"]', "{}")
    page.click('button:text-is("Set desired property")')
    page.wait_for_selector(f"{card} .twin-message:has-text('HTTP 409')")
    assert ".toml" in page.text_content(f"{card} .twin-message")

    # A desired property set here (the device's side is checked by gui.rs).
    key, value = twin["set"]["key"], twin["set"]["value"]
    page.fill('input[name="desired-key"]', key)
    page.fill('input[name="desired-value"]', json.dumps(value))
    page.click('button:text-is("Set desired property")')
    page.wait_for_selector(f"{card} .twin-message:has-text('set: $version')")
    desired, version = doc_of(page, "desired")
    assert desired.get(key) == value, f"desired after set: {desired}"
    assert int(version) > twin["desired_version"], f"$version {version} after set"

    # A method call shows the device's status and payload ...
    m = twin["method"]
    page.fill('input[name="method-payload"]', json.dumps(m["payload"]))
    page.fill('input[name="method-timeout"]', "10s")
    page.click('button:text-is("Call method")')
    page.wait_for_selector(f"{card} .method-result[data-status]")
    assert page.get_attribute(f"{card} .method-result", "data-status") == "201"
    answer = json.loads(page.text_content(f"{card} .method-payload"))
    assert answer == m["answer"], f"method answer shown as {answer}"

    # Live: a desired property set elsewhere (the API, with the token)
    # shows in the open card with no click (the event stream's `twin` event).
    base = f"{urlsplit(url).scheme}://{origin}"
    req = urllib.request.Request(
        base + hub_path(twin) + "/twin", method="PATCH",
        data=json.dumps({"desired": {"live": {"from": "elsewhere"}}}).encode(),
        headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    assert urllib.request.urlopen(req, timeout=10).status == 200
    page.wait_for_function(
        "() => (JSON.parse(document.querySelector('#details [data-part=desired] .twin-doc')"
        ".textContent).live || {}).from === 'elsewhere'", timeout=10000)

    # Refresh reads the twin again; it still holds what was set.
    page.click(f"{card} .twin-refresh")
    page.wait_for_function(
        "k => JSON.parse(document.querySelector('#details [data-part=desired] .twin-doc').textContent)[k] !== undefined",
        arg=key)

    # Another origin, in the same browser that holds the session, can
    # neither call a method nor read the twin (gui.rs checks the device
    # never saw `from_elsewhere`).
    other = page.context.new_page()
    other.goto(twin["other_origin"])
    target = page.evaluate("() => location.origin") + hub_path(twin)
    got = other.evaluate("""async (base) => {
      const out = {};
      const body = JSON.stringify({payload: 1, timeout: "5s"});
      try {
        const r = await fetch(base + "/methods/from_elsewhere", {method: "POST", credentials: "include",
          headers: {"content-type": "application/json"}, body});
        out.json = r.status;
      } catch (e) { out.json = "blocked"; }
      try {
        await fetch(base + "/methods/from_elsewhere", {method: "POST", mode: "no-cors",
          credentials: "include", headers: {"content-type": "text/plain"}, body});
        out.simple = "sent";
      } catch (e) { out.simple = "blocked"; }
      try { out.read = (await fetch(base + "/twin", {credentials: "include"})).status; }
      catch (e) { out.read = "blocked"; }
      return out;
    }""", target)
    assert got["json"] == "blocked" and got["read"] == "blocked", f"another origin: {got}"
    other.close()


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    # A context of its own: a second page in it (another origin) shares its cookies.
    page = browser.new_context(viewport={"width": 1500, "height": 900}).new_page()
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    # A refused request is also a console error ("Failed to load resource");
    # those are checked by status and path below, every other one counts.
    page.on("console", lambda m: m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and errors.append(f"console: {m.text}"))
    page.on("response", lambda r: r.status >= 400
            and failed.append((r.status, urlsplit(r.url).path)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("request", lambda r: r.method != "GET" and changes.append((r.method, urlsplit(r.url).path)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))

    page.goto(url)
    # The token is asked for once, submitted with Enter.
    page.fill('input[name="token"]', "wrong")
    page.press('input[name="token"]', "Enter")
    page.wait_for_selector("#login-error:has-text('not the operator token')")
    page.fill('input[name="token"]', token)
    page.press('input[name="token"]', "Enter")
    page.wait_for_selector("[data-device]")

    # Every planned device is listed once, with its model and a state.
    rows = page.eval_on_selector_all(
        "[data-device]",
        "els => els.map(e => [e.dataset.device, e.dataset.model, e.dataset.state])")
    names = [r[0] for r in rows]
    assert sorted(names) == sorted(expected["devices"]), f"listed {names}"
    for name, model, state in rows:
        assert model == expected["devices"][name], f"{name}: data-model {model}"
        assert state, f"{name}: no data-state"
    assert page.locator('input[name="select"]').first.is_visible()
    assert page.locator('input[name="select"]').count() == len(expected["devices"])
    # The graph is drawn (a canvas inside the graph pane).
    page.wait_for_selector("#graph canvas")

    # The cookie, not the token, carries the session: it is HttpOnly.
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "ztpd_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", cookies
    assert page.evaluate("document.cookie") == "", "the session cookie is readable by scripts"

    # A device-reported string with markup shows as text and never runs.
    if "markup_device" in expected:
        page.click(f'[data-device="{expected["markup_device"]}"] .name')
        shown = page.text_content("#details .reported-model")
        assert shown == expected["markup"], f"reported model shown as {shown!r}"
        assert page.evaluate("window.__xss === undefined"), "the markup ran"
        assert page.locator("#details img").count() == 0, "the markup became an element"
        # Its problem is listed with the fix sentence.
        problem = page.text_content("#details .problem")
        assert problem.startswith("wrong_model") and "replace" in problem.lower(), problem

    # A hub device's twin: what the API set and what the device reported,
    # with their versions; set a desired property and call a method here.
    if twin:
        check_twin(page, twin)
        check_outside(page, twin)

    # A device pending approval shows the address of its pending hello and
    # the other addresses that claimed it; "Approve" approves that address.
    approve = expected.get("approve")
    if approve:
        name = approve["device"]
        page.click(f'[data-device="{name}"] .name')
        page.wait_for_selector(f'#details .pending-address:text-is("{approve["address"]}")')
        claims = page.text_content("#details .pending-claims")
        assert all(a in claims for a in approve["claims"]), f"claims shown as {claims!r}"
        page.click('#details button:has-text("Approve")')
        page.wait_for_selector(f'[data-device="{name}"][data-state="approved"]')

    # A selection that mixes models is refused with a message.
    if expected.get("mixed"):
        for name in expected["mixed"]:
            page.check(f'[data-device="{name}"] input[name="select"]')
        page.fill('input[name="group-name"]', "mixed")
        page.click('button:has-text("Create group")')
        page.wait_for_selector('[role="alert"]:has-text("one model")')

    # The state filter offers exactly the stages the API reports, and each
    # one selects the devices in it.
    if "stages" in expected:
        offered = page.eval_on_selector_all(
            "#filter-state option", "els => els.map(e => e.value).filter(v => v)")
        assert offered == expected["stages"], f"filter offers {offered}"
        for stage in expected["stages"]:
            page.select_option("#filter-state", stage)
            want = sorted(n for n, s in expected["states"].items() if s == stage)
            page.wait_for_function(
                "n => document.querySelectorAll('[data-device]').length === n", arg=len(want))
            shown = page.eval_on_selector_all(
                "[data-device]", "els => els.map(e => [e.dataset.device, e.dataset.state])")
            assert sorted(n for n, _ in shown) == want, f"{stage}: shown {shown}"
            assert all(s == stage for _, s in shown), f"{stage}: shown {shown}"
        page.select_option("#filter-state", "")
        # A device waiting for approval has the waiting colour, not the fallback.
        waiting = [n for n, s in expected["states"].items() if s == "pending_approval"]
        for name in waiting:
            assert page.locator(f'[data-device="{name}"] .badge.tone-wait').count() == 1

    # Approve from the list: select the waiting device, press Approve.
    if "approve_selected" in expected:
        name = expected["approve_selected"]
        page.click("#approve")
        page.wait_for_selector('[role="alert"]:has-text("pending_approval")')
        page.check(f'[data-device="{name}"] input[name="select"]')
        page.click("#approve")
        page.wait_for_selector(f'[data-device="{name}"][data-state="approved"]')

    # A drifted link is shown on the graph, and on its device with the fix.
    if "drift" in expected:
        dr = expected["drift"]
        n = page.evaluate("k => window.__cy.edges().filter(e => e.data('status') === k).length", dr["kind"])
        assert n >= 1, f"no {dr['kind']} link on the graph"
        page.click(f'[data-device="{dr["device"]}"] .name')
        page.wait_for_selector(f'#details .problem:has-text("{dr["kind"]}")')
        assert "Ethernet50" in page.text_content("#details .problem")

    # The Unplanned panel lists a stranger's hello with the entry to add.
    if "unplanned" in expected:
        un = expected["unplanned"]
        row = f'[data-unplanned="{un["serial"]}"][data-source="hello"]'
        page.wait_for_selector(row)
        shown = page.text_content(f"{row} pre.entry")
        assert shown == un["entry"], f"entry shown as {shown!r}"
        assert "Ethernet1 → spine1:Ethernet40" in page.text_content(row)

    # Accept a replacement from the page: old and new serial are shown.
    if "replace" in expected:
        rep = expected["replace"]
        page.click(f'[data-device="{rep["device"]}"] .name')
        page.wait_for_selector("#details .new-serial")
        assert page.text_content("#details .old-serial") == rep["old"]
        assert page.text_content("#details .new-serial") == rep["new"]
        page.click('button:text-is("Accept replacement")')
        page.wait_for_selector(f'[data-device="{rep["device"]}"][data-state="planned"]')
        page.wait_for_selector(f'#details .serial:has-text("{rep["new"]}")')

    # Two devices of one model become a group, and its rollout is followed
    # live (from the event stream) to done.
    rollout = expected.get("rollout")
    if rollout:
        for name in expected["mixed"]:
            page.uncheck(f'[data-device="{name}"] input[name="select"]')
        for name in rollout["devices"]:
            page.check(f'[data-device="{name}"] input[name="select"]')
        page.fill('input[name="group-name"]', rollout["group"])
        page.click('button:has-text("Create group")')
        page.wait_for_selector(f'#group-status:has-text("Group {rollout["group"]}")')
        page.fill('input[name="batch_size"]', "1")
        page.click('button:has-text("Start rollout")')
        page.wait_for_selector("[data-rollout]")
        page.wait_for_selector('[data-rollout][data-state="done"]', timeout=60000)
        done = page.eval_on_selector_all(
            "[data-rollout-device]", "els => els.map(e => [e.dataset.rolloutDevice, e.dataset.state])")
        assert sorted(n for n, _ in done) == sorted(rollout["devices"]), done
        assert all(s == "succeeded" for _, s in done), done
        assert page.locator("[data-rollout] [data-batch]").count() == len(rollout["devices"])
        # A finished rollout offers no Pause, Resume or Abort.
        assert page.locator('[data-rollout][data-state="done"] button').count() == 0
        # The upgraded device shows its new version (live, from its events).
        page.click(f'[data-device="{rollout["devices"][0]}"] .name')
        page.wait_for_selector(f'#details dd:text-is("{rollout["version"]}")')
        # ... and its last events, as they came in: the upgrade ended deployed.
        assert page.locator("#details .event").count() >= 2
        assert "deployed" in page.text_content("#details .event")

    # Clicking a node in the graph selects it in the list too.
    if "graph_click" in expected:
        name = expected["graph_click"]
        box = page.locator("#graph").bounding_box()
        at = page.evaluate("n => window.__cy.getElementById(n).renderedPosition()", name)
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        page.wait_for_function(
            "n => document.querySelector(`[data-device=\"${n}\"] input[name=select]`).checked", arg=name)

    # Search narrows the graph and the list alike.
    if "search" in expected:
        page.fill("#search", expected["search"])
        page.wait_for_function(
            "n => document.querySelectorAll('[data-device]').length === n", arg=1)

    page.screenshot(path=shot, full_page=True)
    browser.close()

foreign = [r for r in requests if urlsplit(r).netloc != origin]
assert not foreign, f"requests left the daemon: {foreign}"
assert not errors, "\n".join(errors)
unexpected = [f for f in failed if f not in EXPECTED_FAILURES]
assert not unexpected, f"requests refused: {unexpected}"
print(f"gui ok: {len(names)} devices, {len(requests)} requests, screenshot {shot}")
