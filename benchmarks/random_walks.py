"""Series with no season: how NanoTST's median compares with the naive forecast (the last value).

    python benchmarks/random_walks.py checkpoints/default.pt [other.pt ...]
    python benchmarks/random_walks.py --peers checkpoints/default.pt   # AutoETS, AutoARIMA, AutoTheta too
    python benchmarks/random_walks.py --no-mirror checkpoints/default.pt  # forecast(mirror=False);
                                                                       # default: the checkpoint's

The forecast-quality suite has one random walk, so its "worst synthetic shape" is one draw. Here
three kinds, 40 draws each (120 series, fixed seed 11, independent of the other suites'): a
Gaussian random walk, one with a drift (0.05 to 0.3 of a step, either sign), and a random walk
seen through noise (a local level: observation noise 0.5 to 2 steps). For a random walk the naive
forecast is the best median there is, so 1.0 is the floor on average and a forecaster that reads
a trend or a pull into the noise lands above it. The rules are forecast_quality.py's for a series
without a season: the last 8 values held out, 512 values of context, MAE relative to the naive
forecast's. Prints, per method, the geometric mean and median per kind and over all, the share of
series worse than 1.1x naive, the worst, and the 80% band's coverage. With --peers, statsforecast's
AutoETS, AutoARIMA and AutoTheta (season 1) on the same series, in the same run
(pip install -r requirements-bench.txt).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.shape_sweep import gmean, nanotst, parse_args, peer  # noqa: E402

KINDS = ("walk", "drift", "noisy walk")
CONTEXT, HORIZON = 512, 8
PEERS = ("AutoETS", "AutoARIMA", "AutoTheta")


def walk_series(seed: int = 11, draws: int = 40):
    """(kind, values) for every kind and draw: CONTEXT + HORIZON values each."""
    rng = np.random.default_rng(seed)
    n = CONTEXT + HORIZON
    for kind in KINDS:
        for _ in range(draws):
            steps = rng.normal(0, 1, n)
            if kind == "drift":
                steps += rng.choice([-1, 1]) * rng.uniform(0.05, 0.3)
            values = np.cumsum(steps)
            if kind == "noisy walk":
                values += rng.uniform(0.5, 2.0) * rng.normal(0, 1, n)
            yield kind, values


def score(forecaster) -> list[dict]:
    rows = []
    for kind, values in walk_series():
        context, truth = values[:-HORIZON], values[-HORIZON:]
        median, lo, hi = forecaster(context, HORIZON, 1)        # no season: the peers' season is 1
        naive = np.mean(np.abs(context[-1] - truth))
        rows.append({"kind": kind, "rel_mae": float(np.mean(np.abs(median - truth)) / naive),
                     "coverage": float(np.mean((truth >= lo) & (truth <= hi)))})
    return rows


def summary(rows: list[dict]) -> str:
    rel = np.array([r["rel_mae"] for r in rows])
    per_kind = "  ".join(f"{k} {gmean([r['rel_mae'] for r in rows if r['kind'] == k]):.3f}" for k in KINDS)
    return (f"gmean {gmean(rel):.3f}  median {np.median(rel):.3f}  worse than 1.1x: {np.mean(rel > 1.1):.0%}  "
            f"worst {rel.max():.2f}  coverage {np.mean([r['coverage'] for r in rows]):.2f}\n    {per_kind}")


def main(argv=None) -> None:
    args = parse_args(argv, __doc__.splitlines()[0], "AutoETS, AutoARIMA and AutoTheta")
    methods = [(path, nanotst(path, n_samples=200, mirror=args.mirror)) for path in args.checkpoints]
    if args.peers:
        methods += [(name, peer(name)) for name in PEERS]
    for name, forecaster in methods:
        print(f"{name}: {summary(score(forecaster))}", flush=True)


if __name__ == "__main__":
    main()
