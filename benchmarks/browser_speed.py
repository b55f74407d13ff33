"""How fast the app feels in a real browser: first render, page switch, widget redraw.

Starts `streamlit run streamlit_app.py` on a free localhost port, drives Debian's chromium with
Playwright, and times from the user's action until the script has finished rerunning and the
page's charts are drawn. Targets (issue 3): first render <= 3 s after the server is up, page
switch <= 1 s, a widget change on Signals, Attention or Forecast redraws in <= 300 ms.

    python benchmarks/browser_speed.py [--repeats 5]

First render is broken down (seconds since navigation start): app shell, first h1, the script's
first run finished, first Plotly chart drawn, every chart drawn. "new session" opens a fresh
browser context (empty cache: plotly.js is fetched and parsed again); "new tab" opens a page in a
context that has loaded the app before.

Writes benchmarks/results/browser_speed.json and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

# Resolves when the app has gone through a rerun and is idle again, with the time it took.
# Listening to the attribute changes avoids missing a short 'running' phase by polling.
WATCH_RERUN_JS = """() => { window.__nanotstRerun = new Promise(resolve => {
  const app = document.querySelector("[data-testid='stApp']");
  const t0 = performance.now(); let sawRunning = false;
  const done = () => { obs.disconnect(); requestAnimationFrame(() => resolve(performance.now() - t0)); };
  // a fast rerun can flip running -> notRunning within one task: read the records' old values
  const obs = new MutationObserver((records) => {
    if (records.some(r => r.oldValue === 'running')) sawRunning = true;
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') sawRunning = true;
    else if (sawRunning && state === 'notRunning') done();
  });
  obs.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
}); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, script: str = "streamlit_app.py", env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not come up")


# Installed before the app's own scripts: records, in ms since navigation start, when the app shell,
# the first h1, the end of the first script run, the first Plotly chart and the last of the page's
# Plotly charts are drawn. A chart counts as drawn when its .main-svg exists.
MILESTONES_JS = """(() => {
  const m = window.__nanotstMilestones = {};
  const mark = (k) => { if (m[k] === undefined) m[k] = performance.now(); };
  let sawRunning = false;
  const check = (records) => {
    if ((records || []).some(r => r.oldValue === 'running')) sawRunning = true;
    const app = document.querySelector("[data-testid='stApp']");
    if (!app) return;
    mark('shell');
    if (document.querySelector('h1')) mark('h1');
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') sawRunning = true;
    if (sawRunning && state === 'notRunning') mark('script_done');
    const charts = document.querySelectorAll("[data-testid='stPlotlyChart']");
    const drawn = document.querySelectorAll("[data-testid='stPlotlyChart'] .main-svg").length;
    if (drawn) mark('first_chart');
    if (m.script_done !== undefined && charts.length &&
        document.querySelectorAll("[data-testid='stPlotlyChart'] .js-plotly-plot").length === charts.length)
      mark('all_charts');
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeOldValue: true,
                                                 attributeFilter: ['data-test-script-state']});
})();"""
MILESTONES = ("shell", "h1", "script_done", "first_chart", "all_charts")


def first_render(browser, url: str, context=None) -> dict[str, float]:
    """Seconds from opening the app until each milestone of the Overview page (MILESTONES).

    Without `context`, in a fresh browser context (empty HTTP cache: every script is fetched and
    parsed, plotly.js included); with one, as a new tab of a browser that has seen the app before.
    """
    own = context is None
    context = context or browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(MILESTONES_JS)
    page.goto(url)
    page.wait_for_function("() => window.__nanotstMilestones && window.__nanotstMilestones.all_charts",
                           timeout=60_000)
    m = page.evaluate("() => window.__nanotstMilestones")
    page.close()
    if own:
        context.close()
    return {k: round(m[k] / 1000, 3) for k in MILESTONES if k in m}


def timed_rerun(page, action) -> float:
    """Milliseconds from an action to the end of the rerun it causes."""
    page.evaluate(WATCH_RERUN_JS)
    action()
    # now and then (old and new app alike) a page switch shows no 'running' state at all; count it
    # as missed instead of hanging: main() reports the misses and leaves them out of the medians
    return page.evaluate("""() => Promise.race([window.__nanotstRerun,
        new Promise(resolve => setTimeout(() => resolve(null), 15000))])""")


def page_switches(page, labels) -> dict[str, float]:
    out = {}
    for label in labels:
        link = page.locator("[data-testid='stSidebarNavLink']", has_text=label).first
        out[label] = timed_rerun(page, link.click)
    return out


def widget_redraws(page, repeats: int) -> dict[str, list[float]]:
    """Change one widget per page, `repeats` times each, alternating so every change is real."""
    out = {}

    def goto(label):
        page.locator("[data-testid='stSidebarNavLink']", has_text=label).first.click()
        page.wait_for_timeout(300)
        page.wait_for_selector(IDLE)

    goto("Signals")
    seed = page.get_by_label("Seed").first
    out["Signals: seed"] = [timed_rerun(page, lambda i=i: (seed.fill(str(i + 1)), seed.press("Enter")))
                            for i in range(repeats)]
    goto("Attention")
    radios = ["layer 0 (heads averaged)", "rollout (all layers)"]
    out["Attention: weights"] = [timed_rerun(page, lambda i=i: page.get_by_text(radios[i % 2]).first.click())
                                 for i in range(repeats)]
    goto("Forecast")
    slider = page.get_by_role("slider").first
    out["Forecast: horizon"] = [
        timed_rerun(page, lambda i=i: (slider.focus(), slider.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")))
        for i in range(repeats)]
    return out


def _medians(runs: list[dict]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in MILESTONES
            if all(k in r for r in runs)}


def _median_ms(values: list) -> int | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values)) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="browser_speed.json", help="file name in benchmarks/results/")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            cold = first_render(browser, url)       # the first session imports torch, loads the model
            warm = [first_render(browser, url) for _ in range(args.repeats)]
            seen = browser.new_context(viewport={"width": 1400, "height": 1000})
            first_render(browser, url, seen)        # fills this context's HTTP cache
            warm_tab = [first_render(browser, url, seen) for _ in range(args.repeats)]
            seen.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector(IDLE, timeout=60_000)
            labels = ["Signals", "Train", "Attention", "Forecast", "Experiments", "Overview"]
            page_switches(page, labels)             # first visit of each page warms its caches
            switches = [page_switches(page, labels) for _ in range(args.repeats)]
            redraws = widget_redraws(page, args.repeats)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "first_render_cold_s": cold,
        "first_render_new_session_s_median": _medians(warm),
        "first_render_new_tab_s_median": _medians(warm_tab),
        "page_switch_ms_median": {k: _median_ms([s[k] for s in switches]) for k in labels},
        "widget_redraw_ms_median": {k: _median_ms(v) for k, v in redraws.items()},
        "page_switch_ms_all": {k: [None if s[k] is None else round(s[k]) for s in switches] for k in labels},
        "widget_redraw_ms_all": {k: [None if v is None else round(v) for v in vs] for k, vs in redraws.items()},
        "missed_reruns": sum(v is None for s in switches for v in s.values())
                         + sum(v is None for r in redraws.values() for v in r),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / args.out
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
