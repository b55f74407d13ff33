"""How many patches of a roll-out may share the noise-free path's normalization?

    python benchmarks/rollout_sharing.py                      # shared_patches 0, 1, 2, 4, 16; 8 patches ahead
    python benchmarks/rollout_sharing.py --shared 0 1 --horizon 64

While a sample path has at most forecast(shared_patches=) patches of its own, every path is
normalized like the noise-free path, so the context's tokens run once for all paths (0: every
window runs whole with its own statistics, the roll-out before sharing). This scores the
forecasts of each setting on the same series: held-out series of the training mix ("all"),
the context the first 512 values, the horizon the rest. MAE is scaled by the context's mean
absolute step (so series of any size weigh alike); coverage is the share of the truth inside
the 80% band; seconds are per forecast (100 paths, one thread). Writes
benchmarks/results/rollout_sharing.json.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import ROOT, write_result


def score(model, data: np.ndarray, horizon: int, shared: int) -> dict:
    from nanotst.forecast import forecast
    maes, covers, seconds = [], [], []
    for values in data:
        context, truth = values[:-horizon], values[-horizon:]
        t0 = time.perf_counter()
        fc = forecast(model, context, horizon, n_samples=100, seed=1, shared_patches=shared)
        seconds.append(time.perf_counter() - t0)
        step = np.mean(np.abs(np.diff(context))) + 1e-9
        maes.append(np.mean(np.abs(fc.median - truth)) / step)
        lo, hi = fc.interval(0.8)
        covers.append(np.mean((truth >= lo) & (truth <= hi)))
    return {"shared_patches": shared, "scaled_mae_gmean": float(np.exp(np.mean(np.log(np.array(maes) + 1e-9)))),
            "scaled_mae_mean": float(np.mean(maes)), "coverage_80": float(np.mean(covers)),
            "seconds_median": float(np.median(seconds)), "per_series_mae": [float(m) for m in maes]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "default.pt"))
    ap.add_argument("--shared", type=int, nargs="+", default=[0, 1, 2, 4, 16])
    ap.add_argument("--horizon", type=int, default=256, help="values ahead (8 patches)")
    ap.add_argument("--series", type=int, default=120)
    ap.add_argument("--seed", type=int, default=4242, help="the held-out series' seed")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from nanotst.checkpoints import load_checkpoint
    from nanotst.data import make_dataset

    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint).model
    data = make_dataset(args.series, 512 + args.horizon, "all", seed=args.seed).values.astype(np.float64)
    rows = []
    for shared in args.shared:
        rows.append(score(model, data, args.horizon, shared))
        r = rows[-1]
        print(f"shared_patches={shared:<3} scaled MAE gmean {r['scaled_mae_gmean']:.4f} "
              f"mean {r['scaled_mae_mean']:.3f}  80% coverage {r['coverage_80']:.3f}  "
              f"{1e3 * r['seconds_median']:.0f} ms a forecast")
    path = write_result("rollout_sharing", {"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M"),
                                            "rows": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
