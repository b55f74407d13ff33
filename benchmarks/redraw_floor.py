"""What one rerun costs in this browser, piece by piece (issue 16's 300 ms redraw target).

    python benchmarks/redraw_floor.py [--repeats 9]

Serves itself as a tiny Streamlit app (one slider) and times, from a slider step to the end of
the rerun it causes (the timing of benchmarks/browser_speed.py, chromium through Playwright):
- "nothing": the rerun draws one metric and no chart (the floor of a Streamlit round trip);
- "what-if chart": it also draws the Inside page's what-if figure, a new one each step;
- "both charts": the what-if figure and the attention-change heatmap, both new each step;
- "both charts + model": the same, and the edited context computed by nanotst.lab.what_if on
  the shipped model each step, at the app's torch threads (half the cores).
The figures are the Inside page's own, built once from the shipped model for two edits and
alternated, so every step draws a figure the browser has not just drawn.

Writes benchmarks/results/redraw_floor.json and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = {"nothing": 0, "what-if chart": 1, "both charts": 2, "both charts + model": 3}
FIGURES_ENV = "NANOTST_REDRAW_FIGURES"


def _shipped_context():
    from nanotst import lab
    from nanotst.checkpoints import load_checkpoint
    from nanotst.data import get_signal
    model = load_checkpoint(ROOT / "checkpoints" / "default.pt").model
    P = model.config.patch_size
    values = lab.whole_patches(get_signal("probe signal", "sine_low", 512).values, P, 512)
    return model, lab.context_view(model, values, occlusion=True)


def build_figures(model, orig) -> list:
    """The Inside page's two what-if figures for two spike sizes: [(what-if, attention change)] x 2."""
    from nanotst import lab
    from nanotst import lab_plots as LP
    P = model.config.patch_size
    out = []
    for amount in (2.0, 3.0):
        w = lab.what_if(model, orig.values, lab.Edit("spike", 400, amount), original=orig)
        (f0, m0), (f1, m1) = LP.fan_bands(orig.fan), LP.fan_bands(w.edited.fan)
        out.append((LP.what_if_figure(orig.values, w.edited.values, (orig.mu, w.edited.mu),
                                      (orig.sigma, w.edited.sigma), (f0, f1), (m0, m1), w.start, P),
                    LP.attention_change_figure(w.attention_change, P)))
    return out


def app() -> None:
    """The Streamlit side: ?mode=0..3 (see MODES)."""
    import streamlit as st
    import torch
    mode = int(st.query_params.get("mode", "0"))
    step = st.slider("step", 0.0, 10.0, 1.0, 0.1, key="step")
    st.metric("step", f"{step:.1f}")
    if mode == 0:
        return
    figures = pickle.loads(Path(os.environ[FIGURES_ENV]).read_bytes())[int(round(step * 10)) % 2]
    for fig in figures[:1 if mode == 1 else 2]:
        st.plotly_chart(fig, width="stretch")      # as pages/_common.chart
    if mode == 3:
        from nanotst import lab
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))     # as the app does
        model, orig = st.cache_resource(_shipped_context)()
        lab.what_if(model, orig.values, lab.Edit("spike", 400, 2.0 + step), original=orig)


def measure(repeats: int) -> dict:
    from playwright.sync_api import sync_playwright
    from benchmarks.browser_speed import CHROMIUM_ARGS, IDLE, WATCH_RERUN_JS, free_port, start_server
    figures = Path(tempfile.mkdtemp()) / "figures.pkl"
    figures.write_bytes(pickle.dumps(build_figures(*_shipped_context())))
    port = free_port()
    server = start_server(port, __file__, dict(os.environ, **{FIGURES_ENV: str(figures)}))
    wait = "() => Promise.race([window.__nanotstRerun, new Promise(r => setTimeout(() => r(-1), 10000))])"
    out = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("NANOTST_CHROMIUM", "/usr/bin/chromium"),
                                        args=CHROMIUM_ARGS)
            for name, mode in MODES.items():
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/?mode={mode}")
                page.wait_for_selector(IDLE, timeout=120_000)
                page.wait_for_timeout(1500)
                slider = page.get_by_role("slider")
                times = []
                for _ in range(repeats + 1):                   # the first step warms the caches
                    slider.focus()
                    page.evaluate(WATCH_RERUN_JS)
                    slider.press("ArrowRight")
                    times.append(page.evaluate(wait))
                    page.wait_for_timeout(400)
                times = [round(t) for t in times[1:] if t >= 0]
                out[name] = {"ms_median": statistics.median(times) if times else None, "ms": times}
                page.close()
            browser.close()
    finally:
        server.kill()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "reruns": measure(args.repeats), "load_average_1min_before_after": [round(load, 2),
                                                                                 round(os.getloadavg()[0], 2)]}
    out = ROOT / "benchmarks" / "results" / "redraw_floor.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        from streamlit import runtime
        under_streamlit = runtime.exists()
    except ImportError:
        under_streamlit = False
    app() if under_streamlit else main()
