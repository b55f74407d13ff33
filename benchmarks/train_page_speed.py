"""Live training in the browser against the library, side by side in one run (issue 15).

1. The library: a Trainer with the Train page's default settings (TrainSettings()), driven the
   way the page drives it, in this process with the app's torch threads (half the CPUs).
2. The browser: `streamlit run` on a free port, Debian's chromium through Playwright, the Train
   page's Start button; wall time from the click until the progress bar says "finished".
   A third of the way in, it switches to the Attention page (timed to its first control, and to
   the end of its script) and back to Train (timed to the progress bar); target <= 1 s.

Throughput is steps per second of wall time; the target is the page at >= 80% of the library.

    python benchmarks/train_page_speed.py [--repeats 2]

Writes benchmarks/results/train_page_speed.json and prints it.
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

import torch
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.browser_speed import CHROMIUM_ARGS, IDLE, free_port, start_server  # noqa: E402
from nanotst.sessions import TrainSettings  # noqa: E402
from nanotst.train import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PROGRESS = "[data-testid='stProgress']"


def library_run() -> dict:
    """The Train page's default run through the library alone: Trainer.run in chunks."""
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    settings = TrainSettings()
    mc, tc = settings.configs()
    t0 = time.perf_counter()
    trainer = Trainer(mc, tc, eval_every=settings.eval_every, snapshot_every=settings.eval_every,
                      device="cpu")
    while not trainer.done:
        trainer.run(settings.eval_every)
    wall = time.perf_counter() - t0
    return {"steps": trainer.step, "wall_s": round(wall, 2), "train_s": round(trainer.elapsed, 2),
            "steps_per_s": round(trainer.step / wall, 1)}


def _progress_text(page) -> str:
    bar = page.locator(PROGRESS).first
    return bar.inner_text() if bar.count() else ""


def _switch(page, label: str, wait_for: str) -> float:
    t0 = time.perf_counter()
    page.locator("[data-testid='stSidebarNavLink']", has_text=label).first.click()
    page.wait_for_selector(wait_for, timeout=30_000)
    return time.perf_counter() - t0


def browser_run(url: str) -> dict:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/train")
        page.wait_for_selector(IDLE, timeout=60_000)
        page.get_by_role("button", name="Start").wait_for(timeout=30_000)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Start").click()
        switches = {}
        while True:
            text = _progress_text(page)
            if "finished" in text:
                break
            if not switches and "step" in text:
                step = int(text.split("step ")[1].split(" /")[0])
                if step >= 300:       # a third of the way: away and back while it trains
                    t_switch = time.perf_counter()
                    switches["to Attention"] = round(_switch(page, "Attention", "text=Query patch"), 2)
                    page.wait_for_selector(IDLE, timeout=30_000)   # its script done, every chart sent
                    switches["Attention complete"] = round(time.perf_counter() - t_switch, 2)
                    switches["back to Train"] = round(_switch(page, "Train", PROGRESS), 2)
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"the run did not finish in 10 minutes: {text!r}")
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        steps = int(text.split("step ")[1].split(" /")[0])
        browser.close()
    return {"steps": steps, "wall_s": round(wall, 2), "steps_per_s": round(steps / wall, 1),
            "page_switch_s": switches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        runs = []
        for _ in range(args.repeats):     # alternate, so both see the same machine load
            lib = library_run()
            page = browser_run(f"http://127.0.0.1:{port}")
            runs.append({"library": lib, "page": page,
                         "ratio": round(page["steps_per_s"] / lib["steps_per_s"], 2)})
    finally:
        server.kill()
    report = {"runs": runs, "median_ratio": statistics.median(r["ratio"] for r in runs),
              "target_ratio": 0.8, "cpus": os.cpu_count(), "python": platform.python_version(),
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_page_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
