"""Periodic shapes at many periods: how NanoTST's median compares with repeating the last cycle.

    python benchmarks/shape_sweep.py checkpoints/default.pt [other.pt ...]
    python benchmarks/shape_sweep.py --peers checkpoints/default.pt    # AutoTheta and AutoETS too
    python benchmarks/shape_sweep.py --no-mirror checkpoints/default.pt  # forecast(mirror=False);
                                                                       # default: the checkpoint's

Five shapes (sine, square, sawtooth, triangle, pulse) at 14 periods from 3 to 256 values (most of
them neither divisors nor multiples of the 32-value patch), random phase, duty cycle and
amplitude, noise 0.1 x amplitude, two draws each (140 series, fixed seed 7, independent of the
forecast-quality suite's). The rules are forecast_quality.py's: hold out two seasons (8 to 64
values), 512 values of context, MAE relative to seasonal naive. Prints, per checkpoint, the
geometric mean per shape and over all, the share of series worse than 1.1x seasonal naive, and
the 80% band's coverage. With --peers, statsforecast's AutoTheta and AutoETS (season = the true
period) on the same series, in the same run (pip install -r requirements-bench.txt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanotst.baselines import seasonal_naive_forecast  # noqa: E402
from nanotst.checkpoints import load_checkpoint  # noqa: E402
from nanotst.data import WAVE_SHAPES, wave  # noqa: E402
from nanotst.forecast import forecast  # noqa: E402

PERIODS = (3, 5, 7, 10, 13, 20, 24, 30, 45, 50, 64, 100, 150, 256)
CONTEXT = 512


def sweep_series(seed: int = 7, draws: int = 2):
    """(shape, period, values, horizon) for every shape, period and draw."""
    rng = np.random.default_rng(seed)
    for shape in WAVE_SHAPES:
        for period in PERIODS:
            for _ in range(draws):
                horizon = int(min(64, max(8, 2 * period)))
                duty = {"square": rng.uniform(0.2, 0.8), "pulse": rng.uniform(0.05, 0.3)}.get(shape, 0.5)
                amp = rng.uniform(0.5, 2.0)
                t = np.arange(CONTEXT + horizon)
                values = amp * wave(shape, t / period + rng.uniform(), duty)
                values = values + 0.1 * amp * rng.normal(0, 1, len(t))
                yield shape, period, values, horizon


def nanotst(path: str, n_samples: int = 100, mirror: bool | None = None):
    """A forecaster (context, horizon, period) -> (median, lower, upper of the 80% band)."""
    model = load_checkpoint(path).model

    def run(context, horizon, period):
        fc = forecast(model, context, horizon, n_samples=n_samples, seed=0, mirror=mirror)
        return (fc.median, *fc.interval(0.8))
    return run


def peer(name: str):
    """statsforecast's `name` (forecast_quality's peers) as a forecaster, season = the true period."""
    import warnings
    from benchmarks.forecast_quality import _peer_model

    def run(context, horizon, period):
        warnings.filterwarnings("ignore")
        out = _peer_model(name, period).forecast(y=context, h=horizon, level=[80])
        return out["mean"], out["lo-80"], out["hi-80"]
    return run


def score(forecaster) -> list[dict]:
    rows = []
    for shape, period, values, horizon in sweep_series():
        context, truth = values[:-horizon], values[-horizon:]
        median, lo, hi = forecaster(context, horizon, period)
        snaive = np.mean(np.abs(seasonal_naive_forecast(context, horizon, period) - truth))
        rows.append({"shape": shape, "period": period,
                     "rel_mae": float(np.mean(np.abs(median - truth)) / snaive),
                     "coverage": float(np.mean((truth >= lo) & (truth <= hi)))})
    return rows


def gmean(values) -> float:
    return float(np.exp(np.mean(np.log(values))))


def parse_args(argv, description: str, peers: str):
    """The command line this sweep and random_walks.py share: checkpoints, --peers, --mirror.
    Also runs torch on one thread, as every score here is timed alike."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoints", nargs="*", default=["checkpoints/default.pt"])
    parser.add_argument("--peers", action="store_true", help=f"{peers} on the same series")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="NanoTST's forecast(mirror=) (default: the checkpoint's setting)")
    torch.set_num_threads(1)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv, __doc__.splitlines()[0], "AutoTheta and AutoETS")
    methods = [(path, nanotst(path, mirror=args.mirror)) for path in args.checkpoints]
    if args.peers:
        methods += [(name, peer(name)) for name in ("AutoTheta", "AutoETS")]
    for path, forecaster in methods:
        rows = score(forecaster)
        rel = np.array([r["rel_mae"] for r in rows])
        per_shape = "  ".join(f"{s} {gmean([r['rel_mae'] for r in rows if r['shape'] == s]):.3f}"
                              for s in WAVE_SHAPES)
        print(f"{path}: gmean {gmean(rel):.3f}  worse than 1.1x: {np.mean(rel > 1.1):.0%}  "
              f"worst {rel.max():.2f}  coverage {np.mean([r['coverage'] for r in rows]):.2f}\n    {per_shape}")
        by_period = "  ".join(f"{p}:{gmean([r['rel_mae'] for r in rows if r['period'] == p]):.2f}"
                              for p in PERIODS)
        print(f"    by period {by_period}")


if __name__ == "__main__":
    main()
