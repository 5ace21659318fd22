"""Time to a usable topology GUI in Debian's Chromium (Playwright), for
benches/gui/run_bench.sh: navigation (with the session cookie already set)
until the graph is drawn and the device list filled; the size of what the
page loads; frame times while panning the graph.

    measure.py URL TOKEN DEVICES ROUNDS
"""
import json
import statistics
import sys
import time

from playwright.sync_api import sync_playwright

url, token, devices, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    ctx = browser.new_context(viewport={"width": 1500, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.fill('input[name="token"]', token)
    page.press('input[name="token"]', "Enter")
    page.wait_for_selector("[data-device]", timeout=60000)
    sizes = {}
    def size(r):
        try:
            sizes[r.url.split("/", 3)[-1]] = len(r.body())
        except Exception:  # a response still streaming when the page moved on
            pass
    page.on("response", size)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        page.goto(url)
        # Usable: the list shows its first rows and the graph has its nodes.
        page.wait_for_function(
            "n => document.querySelectorAll('[data-device]').length >= Math.min(n, 300)"
            " && document.querySelector('#graph canvas')",
            arg=devices, timeout=60000, polling="raf")
        times.append(time.perf_counter() - t0)
    frames = page.evaluate("""() => new Promise(done => {
        const cy = window.__cy; const out = []; let last = performance.now(); let n = 0;
        function step(t) { out.push(t - last); last = t; cy.panBy({x: 7, y: 3});
          if (++n < 120) requestAnimationFrame(step); else done(out.slice(5)); }
        requestAnimationFrame(step);
    })""")
    browser.close()

print(json.dumps({
    "devices": devices,
    "usable_s": {"median": statistics.median(times), "max": max(times), "all": times},
    "bytes": sizes,
    "pan_frame_ms": {"median": statistics.median(frames), "p95": sorted(frames)[int(0.95 * len(frames))]},
}))
