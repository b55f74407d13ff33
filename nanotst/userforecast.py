"""Forecasting a user's own series: what the Forecast page does with it, without streamlit.

    series = userdata.load_series_csv("examples/co2_mauna_loa_monthly.csv")
    result = analyse_series(model, series.values, holdout=36, horizon=36)
    table = result.table()                     # model vs naive, seasonal naive, linear
    frame = forecast_frame(result.future, future_times(series.times, 36))

The future forecast continues from the last value; the backtest holds out the last `holdout`
values and scores every method on them; calibration compares the held-out truth with the
model's sample paths (coverage per band, PIT values). `fine_tune` trains a copy of a model on
windows of the series before the holdout, never on the held-out part, never in place.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .evaluate import INTERVAL_LEVELS, fit_linear_baseline, interval_coverage, pit_values
from .forecast import DEFAULT_QUANTILES, Forecast, forecast
from .model import PatchForecaster, next_patch_pairs
from .userdata import DataError, BacktestResult, backtest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = {
    "CO₂ at Mauna Loa (monthly)": "co2_mauna_loa_monthly.csv",
    "El Niño sea temperature (monthly)": "elnino_sst_monthly.csv",
    "Sunspots (yearly)": "sunspots_yearly.csv",
}
BAND_LEVELS = (0.5, 0.8, 0.95)
AFTER_FINE_TUNE = "NanoTST after fine-tune"


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise DataError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    return EXAMPLES_DIR / EXAMPLES[name]


def table_columns(source, max_bytes: int = 10_000_000) -> tuple[list[str], pd.DataFrame]:
    """The column names and the first rows of a CSV (a path or a file-like object), as text.

    Raises userdata.DataError with the same one-line messages as load_series_csv.
    """
    from .userdata import _parse_table, _read_text
    frame = _parse_table(_read_text(source, max_bytes), [])
    return list(frame.columns), frame.head(8)


# ---------------------------------------------------------------- time axis

def future_times(times, n: int):
    """n time stamps after the last of `times`, continuing its spacing; None when there is no
    usable time axis (no times, or text that is neither dates nor numbers).

    Dates: a regular frequency (pd.infer_freq: monthly, yearly, daily, ...) is continued as such;
    month starts with gaps keep the usual month step; otherwise the median spacing. Numbers: the
    median spacing (integers stay integers).
    """
    if times is None or n < 1 or len(times) < 2:
        return None
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        idx = pd.DatetimeIndex(times)
        tail = idx[-min(len(idx), 60):]
        freq = None
        if len(tail) >= 3:
            try:
                with warnings.catch_warnings():   # pandas 3 warns that this becomes an offset
                    warnings.simplefilter("ignore")
                    freq = pd.infer_freq(tail)
            except (TypeError, ValueError):
                freq = None
        if freq is not None:
            return pd.date_range(idx[-1], periods=n + 1, freq=freq)[1:].to_numpy()
        if (tail.day == tail[0].day).all():     # monthly-like, with gaps
            months = np.diff(tail.year * 12 + tail.month)
            step = int(pd.Series(months).mode().iloc[0]) if len(months) else 0
            if step > 0:
                return np.array([idx[-1] + pd.DateOffset(months=step * k) for k in range(1, n + 1)],
                                dtype="datetime64[ns]")
        step = pd.Series(np.diff(idx.asi8)).median()
        return (idx[-1] + pd.to_timedelta(np.arange(1, n + 1) * step, unit="ns")).to_numpy()
    if np.issubdtype(times.dtype, np.number):
        step = float(np.median(np.diff(times.astype(float))))
        if step <= 0 or not np.isfinite(step):
            return None
        future = times[-1] + step * np.arange(1, n + 1)
        if np.issubdtype(times.dtype, np.integer) and float(step).is_integer():
            return future.astype(np.int64)
        return future
    return None


def usable_times(times) -> bool:
    """Dates or numbers: something an x axis and future_times can use."""
    if times is None:
        return False
    times = np.asarray(times)
    return np.issubdtype(times.dtype, np.datetime64) or np.issubdtype(times.dtype, np.number)


# ---------------------------------------------------------------- forecasts

def _cut(fc: Forecast, n: int) -> Forecast:
    return replace(fc, samples=fc.samples[:, :n], mean=fc.mean[:n], median=fc.median[:n],
                   quantiles={q: v[:n] for q, v in fc.quantiles.items()})


def future_forecast(model: PatchForecaster, values, horizon: int, n_samples: int = 200,
                    seed: int = 0) -> Forecast:
    """Sample `horizon` values after the last one (whole patches, cut to horizon)."""
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise DataError(f"horizon must be a positive number of values, got {horizon!r}")
    k = math.ceil(horizon / model.config.patch_size)
    fc = forecast(model, np.asarray(values, dtype=np.float64), k, n_samples=n_samples,
                  quantiles=DEFAULT_QUANTILES, seed=seed)
    return _cut(fc, horizon)


def bands(fc: Forecast, levels=BAND_LEVELS) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{coverage %: (lower, upper)} central intervals, as plots.fan_chart_figure wants them."""
    return {round(100 * lv): fc.interval(lv) for lv in levels}


def quantile_name(level: float) -> str:
    """0.05 -> 'q5', 0.975 -> 'q97.5'."""
    return f"q{round(100 * level, 6):g}"


def forecast_frame(fc: Forecast, times=None, quantiles=DEFAULT_QUANTILES) -> pd.DataFrame:
    """The forecast as a table: step (1 = right after the last input value), time (when given),
    mean, and one column per quantile named q + level in percent (q5, q10, ..., q95)."""
    cols: dict = {"step": np.arange(1, fc.horizon + 1)}
    if times is not None:
        cols["time"] = np.asarray(times)[:fc.horizon]
    cols["mean"] = fc.mean
    for q in quantiles:
        q = float(q)
        cols[quantile_name(q)] = fc.quantiles[q] if q in fc.quantiles else \
            np.quantile(fc.samples, q, axis=0)
    return pd.DataFrame(cols)


# ---------------------------------------------------------------- calibration

@dataclass
class Calibration:
    coverage: dict[float, float]   # nominal level -> observed share of the truth inside the band
    pit: np.ndarray                # (H,) PIT values of the truth under the samples

    def rows(self) -> list[dict]:
        return [{"band": f"{round(100 * lv)}%", "nominal": lv, "observed": c}
                for lv, c in self.coverage.items()]


def calibration(samples, truth, levels=BAND_LEVELS) -> Calibration:
    """Coverage of each central band and the PIT values of the truth (H,) under samples (M, H)."""
    return Calibration(interval_coverage(truth, samples, levels), pit_values(samples, truth))


# ---------------------------------------------------------------- the whole analysis

@dataclass
class SeriesAnalysis:
    values: np.ndarray
    future: Forecast                  # after the last value
    backtest: BacktestResult          # the last `holdout` values held out
    calibration: Calibration | None   # None for MSE rungs (no spread)
    holdout: int
    notes: list[str] = field(default_factory=list)
    after: BacktestResult | None = None          # the fine-tuned copy's backtest
    after_calibration: Calibration | None = None

    def table(self) -> pd.DataFrame:
        """Backtest rows: the model, the baselines, and the fine-tuned model when there is one."""
        rows = [dict(r) for r in self.backtest.rows]
        if self.after is not None:
            rows.insert(1, {**self.after.rows[0], "method": AFTER_FINE_TUNE})
        return pd.DataFrame(rows).set_index("method")


def linear_for(model: PatchForecaster, history) -> PatchForecaster | None:
    """The linear rung fitted in closed form on the history (None when too short)."""
    try:
        return fit_linear_baseline(np.asarray(history, dtype=np.float64),
                                   replace(model.config, rung="linear"))
    except ValueError:
        return None


def analyse_series(model: PatchForecaster, values, holdout: int, horizon: int,
                   period: int | None = None, n_samples: int = 200, seed: int = 0,
                   tuned: PatchForecaster | None = None) -> SeriesAnalysis:
    """Future forecast from every value, and a backtest on the last `holdout` values against the
    naive, seasonal naive and linear baselines (and the fine-tuned model `tuned`, if given)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not isinstance(holdout, (int, np.integer)) or holdout < 1:
        raise DataError(f"the holdout must be a positive number of values, got {holdout!r}")
    linear = linear_for(model, values[:-holdout])
    bt = backtest(model, values, holdout, period=period, n_samples=n_samples,
                  linear_model=linear, seed=seed)
    fut = future_forecast(model, values, horizon, n_samples, seed)
    cal = calibration(bt.forecast.samples, bt.truth) if bt.forecast.probabilistic else None
    result = SeriesAnalysis(values, fut, bt, cal, int(holdout), notes=list(fut.notes))
    if tuned is not None:
        result.after = backtest(tuned, values, holdout, period=bt.period, n_samples=n_samples,
                                seed=seed)
        if result.after.forecast.probabilistic:
            result.after_calibration = calibration(result.after.forecast.samples, result.after.truth)
    return result


# ---------------------------------------------------------------- fine-tuning

@dataclass
class FineTuneResult:
    model: PatchForecaster     # a trained COPY, in eval mode
    losses: list[float]        # training loss per step
    window: int                # values per training window
    n_windows: int             # distinct windows it drew from
    n_values: int              # values it trained on (everything before the holdout)


def fine_tune(model: PatchForecaster, values, holdout: int, steps: int = 50, lr: float = 1e-4,
              batch_size: int = 16, seed: int = 0, progress=None) -> FineTuneResult:
    """Train a copy of `model` for `steps` steps on windows of values[:-holdout].

    The held-out values are never seen. Windows are the most recent whole-patch length that fits
    the context (at most context_length), every start position, drawn at random each step; the
    loss is the model's own next-patch loss. `model` itself is never changed. progress(done,
    total, loss) is called after every step.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    cfg = model.config
    P, L = cfg.patch_size, cfg.context_length
    if not isinstance(holdout, (int, np.integer)) or holdout < 0:
        raise DataError(f"the holdout must be zero or a positive number of values, got {holdout!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DataError(f"fine-tuning needs at least 1 step, got {steps!r}")
    history = values[:len(values) - holdout]
    width = min(L + P, (len(history) // P) * P)           # input plus the patch after it
    if width < 2 * P:
        raise DataError(f"fine-tuning needs at least {2 * P} values before the holdout, "
                        f"got {len(history)}")
    windows = torch.from_numpy(np.lib.stride_tricks.sliding_window_view(history, width)
                               .astype(np.float32))      # (n_windows, width)
    rng = np.random.default_rng(seed)
    tuned = copy.deepcopy(model)
    for p in tuned.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)                          # dropout masks
        tuned.train()
        for step in range(steps):
            idx = rng.integers(0, len(windows), size=min(batch_size, len(windows)))
            x, y = next_patch_pairs(windows[idx], P)
            loss = tuned.loss(tuned(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tuned.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, steps, losses[-1])
    tuned.eval()
    return FineTuneResult(tuned, losses, width, len(windows), len(history))
