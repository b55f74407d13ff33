"""The Inside page as a person sees it: Playwright driving Debian's chromium against
`streamlit run` (the fixtures and helpers of tests/test_browser.py). Each view draws its charts
with data in them; a what-if change and an ablation redraw them. Screenshots go to
artifacts/browser/."""
import pytest

from tests.test_browser import (CHART_TRACES_JS, browser, chart_traces, open_page, page,  # noqa: F401
                                server, shot, wait_idle)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def choose_view(pg, label: str) -> None:
    pg.locator("[data-testid='stRadio']").first.get_by_text(label, exact=True).click()
    wait_idle(pg)
    expect(pg.locator("[data-testid='stException']")).to_have_count(0)


def wait_for_charts(pg, n: int, timeout: int = 60_000) -> list:
    """Wait until at least n Plotly charts are drawn, each with a trace holding data."""
    pg.wait_for_function(f"""(n) => {{ const c = ({CHART_TRACES_JS})();
        return c.length >= n && c.every(traces => traces.some(t => t.n > 0)); }}""", arg=n, timeout=timeout)
    return chart_traces(pg)


def test_every_inside_view_draws_its_charts(page):  # noqa: F811
    open_page(page, "Inside")
    expect(page.locator("h1").first).to_have_text("Inside")
    charts = wait_for_charts(page, 3)
    # the what-if figure holds both sides: the forecast bands (filled) on each
    assert sum(t["fill"] == "toself" for t in charts[0]) >= 6
    assert any(t["type"] == "heatmap" for t in charts[1])        # the change in attention
    shot(page, "inside-what-if")

    choose_view(page, "Ablation")
    charts = wait_for_charts(page, 3)
    assert any(t["type"] == "bar" for chart in charts for t in chart)
    shot(page, "inside-ablation")

    choose_view(page, "Period copy")
    # the ablation's charts stay until the new view draws: wait for the heatmaps themselves
    page.wait_for_function(f"""() => ({CHART_TRACES_JS})().flat()
        .filter(t => t.type === 'heatmap' && t.n > 0).length >= 2""", timeout=60_000)
    charts = wait_for_charts(page, 3)
    assert sum(t["type"] == "heatmap" and t["n"] > 0 for chart in charts for t in chart) >= 2
    shot(page, "inside-period-copy")

    choose_view(page, "Probes")
    page.get_by_role("button", name="Run the probes").click()
    wait_idle(page, timeout=120_000)
    charts = wait_for_charts(page, 1)
    names = {t["name"] for t in charts[0]}
    assert {"family", "noise std", "chance (majority family)"} <= names
    shot(page, "inside-probes")

    choose_view(page, "PCA map")
    charts = wait_for_charts(page, 1)
    assert len(charts[0]) >= 2                                  # one trace per family
    shot(page, "inside-pca")


def test_a_what_if_change_redraws_the_edited_side(page):  # noqa: F811
    open_page(page, "Inside")
    wait_for_charts(page, 3)
    before = page.evaluate("""() => document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot')
                                ._fullData.find(t => t.name === 'context' && t.xaxis === 'x2').y.slice(-200)""")
    slider = page.get_by_role("slider").nth(1)          # the edit's size
    slider.focus()
    for _ in range(5):
        slider.press("ArrowRight")
    wait_idle(page)
    page.wait_for_timeout(300)
    after = page.evaluate("""() => document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot')
                               ._fullData.find(t => t.name === 'context' && t.xaxis === 'x2').y.slice(-200)""")
    assert list(before) != list(after)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_across_training_reads_a_run_made_on_the_train_page(page):  # noqa: F811
    open_page(page, "Train")
    page.get_by_role("button", name="Step").click()
    wait_idle(page)
    open_page(page, "Inside")
    choose_view(page, "Across training")
    page.get_by_role("button", name="Measure the").click()
    wait_idle(page, timeout=120_000)
    charts = wait_for_charts(page, 1)
    assert any(t["name"].startswith("period-copy") and t["n"] >= 2 for t in charts[0])
    shot(page, "inside-across-training")
