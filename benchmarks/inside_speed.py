"""How fast the Inside page answers, on the shipped model (issue 16).

Targets: a what-if change or an ablation redraws in <= 300 ms in a real browser; probes over a
few hundred series finish in <= 10 s (with a progress bar).

    python benchmarks/inside_speed.py [--repeats 7] [--threads 2]

In the browser (`streamlit run` + Debian's chromium through Playwright, as browser_speed.py):
from a widget change to the end of the rerun it causes. Every change is to a value not drawn
before (nothing comes from a cache): the what-if edit's size one step further, one more head
switched off. As a yardstick for the machine's load at the time, the Signals page's
seed (benchmarks/browser_speed.py: 125 ms median when that page was accepted) is timed in the
same browser session. The probes are timed from the click to the drawn result, series generation
included, first with a cold cache and then again after a settings change. The app sets its own
torch threads (half the cores: 1 of 2 here). In-process, with --threads: the library calls
behind each view (nanotst.lab) on the shipped model.

Writes benchmarks/results/inside_speed.json and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from benchmarks.browser_speed import CHROMIUM_ARGS, IDLE, free_port, start_server, timed_rerun  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values)) if values else None


def browser(repeats: int) -> dict:
    port = free_port()
    server = start_server(port)
    out: dict = {}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_selector(IDLE, timeout=60_000)

            def goto_inside():
                page.locator("[data-testid='stSidebarNavLink']", has_text="Inside").first.click()
                page.wait_for_timeout(300)
                page.wait_for_selector(IDLE, timeout=60_000)
                page.wait_for_selector("[data-testid='stPlotlyChart']", timeout=60_000)

            def view(label):
                page.locator("[data-testid='stRadio']").first.get_by_text(label, exact=True).click()
                page.wait_for_timeout(300)
                page.wait_for_selector(IDLE, timeout=120_000)

            t0 = time.perf_counter()
            goto_inside()
            out["first_open_s"] = round(time.perf_counter() - t0, 2)
            slider = page.get_by_role("slider").nth(1)           # the edit's size
            slider.focus()
            slider.press("ArrowRight")                           # warm the edit path once
            page.wait_for_selector(IDLE)
            page.wait_for_timeout(500)
            out["what_if_ms"] = [timed_rerun(page, lambda: (slider.focus(), slider.press("ArrowRight")))
                                 for _ in range(repeats)]

            view("Ablation")
            page.wait_for_selector("[data-testid='stPlotlyChart']", timeout=60_000)
            heads = [f"L{l}H{h}" for l in range(4) for h in range(4) if (l, h) != (2, 0)]
            box = page.locator("[data-testid='stMultiSelect']").first

            def type_head(name):
                box.locator("input").first.click()
                page.keyboard.type(name)

            out["ablation_ms"] = []
            for name in heads[:repeats]:
                type_head(name)          # the change is the Enter that picks it: timed from there
                page.wait_for_timeout(200)
                out["ablation_ms"].append(timed_rerun(page, lambda: page.keyboard.press("Enter")))
                page.keyboard.press("Escape")
                page.wait_for_timeout(200)

            view("Probes")
            run = page.get_by_role("button", name="Run the probes")
            probe = []
            for _ in range(2):
                t0 = time.perf_counter()
                run.click()
                page.wait_for_timeout(200)
                page.wait_for_selector(IDLE, timeout=120_000)
                page.wait_for_function("""() => Array.from(document.querySelectorAll(
                    '[data-testid="stPlotlyChart"] .js-plotly-plot')).some(e => (e._fullData || []).length)""",
                                       timeout=60_000)
                probe.append(round(time.perf_counter() - t0, 2))
                # next round: mean states instead of the last position's (new features, same series)
                page.get_by_text("mean", exact=True).first.click()
                page.wait_for_selector(IDLE, timeout=60_000)
            out["probes_300_series_s"] = {"cold (series generated)": probe[0], "warm series, new states": probe[1]}
            # the same machine, the same minute: an existing page's redraw as a yardstick
            page.locator("[data-testid='stSidebarNavLink']", has_text="Signals").first.click()
            page.wait_for_timeout(300)
            page.wait_for_selector(IDLE, timeout=60_000)
            seed = page.get_by_label("Seed").first
            out["reference_signals_seed_ms"] = [
                timed_rerun(page, lambda i=i: (seed.fill(str(i + 1)), seed.press("Enter"))) for i in range(repeats)]
            b.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    out["what_if_ms_median"] = _median(out["what_if_ms"])
    out["ablation_ms_median"] = _median(out["ablation_ms"])
    out["what_if_ms"] = [None if v is None else round(v) for v in out["what_if_ms"]]
    out["ablation_ms"] = [None if v is None else round(v) for v in out["ablation_ms"]]
    ref = out.pop("reference_signals_seed_ms")
    out["reference_signals_seed_ms_median"] = _median(ref)
    out["reference_signals_seed_ms"] = [None if v is None else round(v) for v in ref]
    return out


def library(threads: int) -> dict:
    import numpy as np
    import torch

    from nanotst import lab
    from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from nanotst.data import grammar_cases, make_dataset
    torch.set_num_threads(threads)
    model = load_checkpoint(DEFAULT_CHECKPOINT).model.eval()
    values = lab.whole_patches(grammar_cases(512)["sine"], 32, 512)

    def ms(fn, n=5):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return round(1e3 * float(np.median(times)), 1)

    edit = lab.Edit("spike", 400, 4.0)
    mask = lab.head_mask(model.head_grid, heads_off=[(2, 0)])
    out = {"threads": threads,
           "edited context view (rolling mu/sigma, attention, 100-path fan)_ms":
               ms(lambda: lab.context_view(model, lab.apply_edit(values, edit, 32), occlusion=False)),
           "original context view with the occlusion map_ms": ms(lambda: lab.context_view(model, values)),
           "masked view (grammar, periodic, copy scores, fan)_ms": ms(lambda: lab.masked_view(model, values, mask))}
    for n in (300, 500):
        t = time.perf_counter()
        series = make_dataset(n, 512, "first_wave", seed=7)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        lab.run_probes(model, series)
        lab.run_probes(model, series, shuffle=True)
        out[f"probes_{n}_series_s"] = {"generate series": round(gen, 2),
                                       "states + probes + shuffled probes": round(time.perf_counter() - t, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the in-process part")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "browser": browser(args.repeats), "library": library(args.threads)}
    result["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "inside_speed.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
