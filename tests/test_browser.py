"""The app as a person sees it: Playwright driving Debian's chromium against `streamlit run`.

Skips only on a machine without chromium or Playwright, and never in CI
(.ci/run sets NANOTST_REQUIRE_BROWSER there). Screenshots go to artifacts/browser/.
"""
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = bool(os.environ.get("NANOTST_REQUIRE_BROWSER"))

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if sync_playwright is None or not Path(CHROMIUM).exists():
    if REQUIRED:
        raise RuntimeError("browser tests are required here but chromium or playwright is missing")
    pytest.skip("chromium or playwright not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(checkpoint_dir: Path, log_path: Path):
    port = free_port()
    env = {**os.environ, "NANOTST_CHECKPOINT_DIR": str(checkpoint_dir)}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while True:
                try:
                    if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"streamlit did not answer /_stcore/health within 60 s; see {log_path}")
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("checkpoints"),
                         tmp_path_factory.mktemp("log") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.goto(server)
    wait_idle(pg)
    yield pg
    context.close()


def wait_idle(pg, timeout=60_000):
    """Wait until the script has finished running (as streamlit's own e2e tests do)."""
    pg.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def open_page(pg, label: str, idle: bool = True):
    """Click a page in the sidebar; wait for its script to finish unless a training run keeps
    its live fragment rerunning back to back (then there is no idle moment to wait for)."""
    pg.locator("[data-testid='stSidebarNavLink']", has_text=label).first.click()
    if idle:
        wait_idle(pg)
    else:
        expect(pg.locator("h1").first).to_have_text(label, timeout=60_000)
    expect(pg.locator("[data-testid='stException']")).to_have_count(0)


def shot(pg, name: str):
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


PAGES = ["Overview", "Signals", "Train", "Attention", "Inside", "Forecast", "Experiments"]

# The traces of every Plotly chart on the page: type, number of points (rows of z for heatmaps),
# fill and name. _fullData holds the arrays plotly.js decoded (data may hold base64 "bdata").
CHART_TRACES_JS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot'))
  .map(el => (el._fullData || []).map(t => ({type: t.type,
     n: t.z ? t.z.length : (t.y ? t.y.length : 0), fill: t.fill || null, name: t.name || ''})))"""


def chart_traces(pg):
    return pg.evaluate(CHART_TRACES_JS)


def metric_value(pg, label: str) -> str:
    metric = pg.locator("[data-testid='stMetric']", has_text=label).first
    return metric.locator("[data-testid='stMetricValue']").inner_text()


def start_long_run(pg, epochs: int, until_step: int) -> None:
    """On the Train page: set the epochs, Start, and wait until the step counter reaches until_step."""
    open_page(pg, "Train")
    field = pg.get_by_label("Epochs")
    field.fill(str(epochs))
    field.press("Enter")
    wait_idle(pg)
    pg.get_by_role("button", name="Start").click()
    pg.wait_for_function(
        """(n) => { const m = Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
                     .find(e => e.innerText.startsWith('Step'));
                   return m && parseInt(m.querySelector('[data-testid="stMetricValue"]').innerText) >= n; }""",
        arg=until_step, timeout=90_000)


def test_every_page_opens_without_an_error(page):
    for label in PAGES:
        open_page(page, label)
        expect(page.locator("h1").first).to_be_visible()
        page.wait_for_selector("[data-testid='stButton']" if label in ("Train", "Experiments")
                               else "[data-testid='stPlotlyChart']", timeout=30_000)
        shot(page, f"page-{label.lower()}")
    # the sidebar's model picker is on every page
    expect(page.get_by_text("Active model")).to_be_visible()


def test_training_updates_the_loss_chart_and_survives_a_page_switch(page):
    # a long run, so that it is still going after the page switch below (the default run can
    # finish in about ten seconds); the step counter advances while the page stays responsive
    start_long_run(page, epochs=500, until_step=60)
    # the live loss chart is drawn with the train curve's points
    page.wait_for_function(f"() => ({CHART_TRACES_JS})().flat().some(t => t.name === 'train' && t.n >= 2)",
                           timeout=30_000)
    loss_points = max(t["n"] for chart in chart_traces(page) for t in chart if t["name"] == "train")
    assert loss_points >= 2
    shot(page, "train-running")
    step_before = int(metric_value(page, "Step"))

    open_page(page, "Attention")
    open_page(page, "Train", idle=False)    # the run goes on: the page is never idle meanwhile
    # the run is still there (and goes on): same session, nothing lost
    page.wait_for_selector("[data-testid='stMetric']")
    assert int(metric_value(page, "Step")) >= step_before
    expect(page.get_by_label("Epochs")).to_have_value("500")
    page.get_by_role("button", name="Pause").click()
    # the page between two redraws is idle already: wait for the rerun the click causes
    expect(page.get_by_role("button", name="Pause")).to_be_disabled(timeout=30_000)
    wait_idle(page)
    paused_at = int(metric_value(page, "Step"))
    page.wait_for_timeout(3000)                 # longer than the live view's 2 s redraw
    assert int(metric_value(page, "Step")) == paused_at
    assert metric_value(page, "Train loss") != "–"
    shot(page, "train-paused")


def test_a_reload_mid_run_brings_the_run_back(page):
    start_long_run(page, epochs=400, until_step=40)
    assert "run=" in page.url
    step_before = int(metric_value(page, "Step"))
    page.reload()
    wait_idle(page)
    expect(page.locator("h1").first).to_have_text("Train", timeout=60_000)
    page.wait_for_selector("[data-testid='stMetric']")
    # the same run, paused while nobody watched, with its settings; Resume goes on from there
    assert int(metric_value(page, "Step")) >= step_before
    expect(page.get_by_label("Epochs")).to_have_value("400")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    shot(page, "train-after-reload")


def test_attention_heatmap_and_forecast_band_are_drawn(page):
    open_page(page, "Attention")
    page.wait_for_function(f"() => ({CHART_TRACES_JS})().flat().some(t => t.type === 'heatmap')",
                           timeout=30_000)
    heatmaps = [t for chart in chart_traces(page) for t in chart if t["type"] == "heatmap"]
    assert heatmaps and all(t["n"] > 0 for t in heatmaps)
    shot(page, "attention")

    open_page(page, "Forecast")
    # charts draw after the script finishes: wait for the fan chart's 50/80/95% bands
    page.wait_for_function(f"() => ({CHART_TRACES_JS})().flat().filter(t => t.fill === 'toself').length >= 3",
                           timeout=30_000)
    bands = [t for chart in chart_traces(page) for t in chart if t["fill"] == "toself"]
    assert len(bands) >= 3 and all(t["n"] > 0 for t in bands)
    shot(page, "forecast")


def test_a_deep_link_as_a_fresh_servers_first_request_gets_the_app_navigation(browser, tmp_path):
    # Streamlit's legacy pages/ discovery would run pages/forecast.py on its own here
    with streamlit_server(tmp_path, tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.goto(url + "/forecast")
        wait_idle(pg)
        expect(pg.locator("h1").first).to_have_text("Forecast")
        links = pg.locator("[data-testid='stSidebarNavLink']")
        expect(links).to_have_count(len(PAGES))
        assert [t.split("\n")[-1] for t in links.all_inner_texts()] == PAGES
        context.close()


def test_a_run_finishes_while_the_page_answers_clicks(page):
    open_page(page, "Train")
    field = page.get_by_label("Epochs")
    field.fill("20")
    field.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    # while it trains (in the session's thread), a widget on the page still answers
    page.wait_for_function("() => document.body.innerText.includes('running · step')", timeout=30_000)
    toggle = page.get_by_text("Follow the latest snapshot")
    toggle.wait_for(timeout=30_000)
    toggle.click()
    expect(page.get_by_text("Scrub back through snapshots")).to_be_visible(timeout=10_000)
    page.wait_for_function("() => document.body.innerText.includes('finished · step 320')", timeout=120_000)
    expect(page.get_by_text("Learning order:")).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    shot(page, "train-finished")


def test_a_shared_link_opens_the_same_view_in_a_new_browser(browser, server, page):
    page.goto(f"{server}/attention?att_source=grammar%20case&att_signal=noisy&att_query=4")
    wait_idle(page)
    expect(page.locator("h1").first).to_have_text("Attention")
    page.get_by_role("button", name="Share this view").click()
    link = page.locator("[data-testid='stCode']").first.inner_text().strip()
    assert "att_query=4" in link and "att_signal=noisy" in link and "run=" not in link
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = other.new_page()
        pg.goto(link)
        wait_idle(pg)
        expect(pg.get_by_text("What patch 4 draws on to predict patch 5").first).to_be_visible(timeout=30_000)
        shown = pg.evaluate("""() => Array.from(document.querySelectorAll("[data-testid='stSelectbox']"))
            .map(e => e.innerText + ' ' + Array.from(e.querySelectorAll('input')).map(i => i.value).join(' '))""")
        assert any("noisy" in text for text in shown), shown
        shot(pg, "attention-shared-link")
    finally:
        other.close()
