"""torch.compile against eager for one NanoTST training step (batch 32, the original job's step).

    python benchmarks/compile_step.py                                   # mode "default"
    python benchmarks/compile_step.py --mode max-autotune-no-cudagraphs

Compiles the forward + loss (the optimizer step stays eager), reports the cold compile time and
then the steady-state ms per step of eager and compiled, interleaved in one process.
"""
from __future__ import annotations

import argparse
import time

import torch

from common import interleaved, loadavg, machine, make_step, nanotst_model, series, set_threads, summary, write_result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="default", help="torch.compile mode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="steps per round")
    args = ap.parse_args()
    set_threads(args.threads)
    load_before = loadavg()

    torch.manual_seed(0)
    data = series(640, 512 + 32, seed=0)
    batches = [data[i:i + 32].contiguous() for i in range(0, len(data), 32)]
    model = nanotst_model()
    eager = lambda b: model.loss(model(b[:, :512]), b[:, 32:])  # noqa: E731
    compiled = torch.compile(eager, mode=None if args.mode == "default" else args.mode, dynamic=False)
    fns = {"eager": make_step(model, eager, batches), "compiled": make_step(model, compiled, batches)}

    t = time.perf_counter()
    fns["compiled"]()
    compile_s = time.perf_counter() - t
    times = interleaved(fns, args.rounds, args.steps)
    rows = {name: summary(ts) for name, ts in times.items()}
    for name, row in rows.items():
        print(f"{name:9s} {1000 * row['median']:6.1f} ms/step (min {1000 * row['min']:.1f}, max {1000 * row['max']:.1f})")
    print(f"cold compile + first step: {compile_s:.1f} s; compiled/eager: "
          f"{rows['compiled']['median'] / rows['eager']['median']:.3f}; load {load_before} -> {loadavg()}")
    write_result(f"compile_step_{args.mode}", {"machine": machine(), "args": vars(args), "compile_s": compile_s,
                                               "load_before": load_before, "load_after": loadavg(),
                                               "ms_per_step": {k: [1000 * v for v in ts] for k, ts in times.items()}})


if __name__ == "__main__":
    main()
