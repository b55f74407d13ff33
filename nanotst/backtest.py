"""The one backtest: hold out the end of a series, forecast it, score the model and the baselines.

    bt = backtest(model, values, horizon=36, period=12)
    bt.table()           # one row per method: mae, mse, mase, crps, coverage_50/80/95
    bt.calibration()     # coverage per band and PIT values of the held-out truth
    bt.frame(times)      # the download format: step, time, mean, quantiles, truth

One set of rules for synthetic signals, the shipped examples and a user's own series (the app,
the CLI and the tests): the holdout is counted in values; the season period is the one the caller
gives (the user, or what the series knows about itself), detected on the history by
baselines.detect_period only when none is given; the bands are metrics.BAND_LEVELS; the baselines
are naive, seasonal naive (when the period is above 1) and the linear rung fitted on the history.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .baselines import detect_period, fit_linear_baseline, naive_forecast, seasonal_naive_forecast
from .forecast import Forecast, forecast
from .metrics import BAND_LEVELS, crps_samples, interval_coverage, mae, mase, mse, pit_values
from .model import PatchForecaster

METRIC_COLUMNS = ("mae", "mse", "mase", "crps", "coverage_50", "coverage_80", "coverage_95")
ERROR_COLUMNS = ("mae", "mse", "mase", "crps")   # lower is better
NAIVE, SEASONAL_NAIVE, LINEAR = "naive", "seasonal naive", "linear baseline"


class BacktestError(ValueError):
    """The series is too short for the holdout, or a setting is out of range."""


def score_forecast(y, forecast, history, period: int, levels=BAND_LEVELS) -> dict[str, float]:
    """Every metric of a forecast against the truth y (H,).

    forecast: sample paths (M, H) for a probabilistic forecast, or a point forecast (H,).
    Samples: MAE/MASE use the median, MSE the mean, CRPS the samples, coverage the central
    bands. A point forecast has CRPS = MAE and coverage NaN. MASE is scaled by the in-sample
    seasonal naive MAE on the history with `period`.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    forecast = np.asarray(forecast, dtype=np.float64)
    probabilistic = forecast.ndim == 2
    median = np.median(forecast, axis=0) if probabilistic else forecast
    mean = forecast.mean(axis=0) if probabilistic else forecast
    scores = {"mae": mae(y, median), "mse": mse(y, mean), "mase": mase(y, median, history, period),
              "crps": crps_samples(y, forecast) if probabilistic else mae(y, forecast)}
    cover = interval_coverage(y, forecast, levels) if probabilistic else {}
    for level in levels:
        scores[f"coverage_{round(100 * level)}"] = cover.get(level, float("nan"))
    return scores


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


def model_name(model: PatchForecaster) -> str:
    return "NanoTST" if model.config.rung == "nanotst" else f"{model.config.rung} rung"


@dataclass
class Backtest:
    """A model (or several) and the baselines, on the last `horizon` values of a series."""
    history: np.ndarray                 # (T - H,) everything before the holdout
    truth: np.ndarray                   # (H,) the held-out values
    period: int                         # the season period of seasonal naive and MASE
    period_detected: bool               # True when no period was given
    forecasts: dict[str, Forecast]      # model name -> its forecast of the holdout
    baselines: dict[str, np.ndarray]    # baseline name -> (H,) point forecast
    scores: dict[str, dict]             # every method (models first) -> score_forecast(...)
    notes: list[str] = field(default_factory=list)

    @property
    def horizon(self) -> int:
        return len(self.truth)

    @property
    def model(self) -> str:
        """The name of the first (main) model."""
        return next(iter(self.forecasts))

    @property
    def forecast(self) -> Forecast:
        return self.forecasts[self.model]

    @property
    def time_index(self) -> np.ndarray:
        """Positions of the held-out values in the series."""
        return np.arange(len(self.history), len(self.history) + self.horizon)

    def rows(self) -> list[dict]:
        return [{"method": m, **{k: s[k] for k in METRIC_COLUMNS}} for m, s in self.scores.items()]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows()).set_index("method")

    def calibration(self, name: str | None = None) -> Calibration | None:
        """The bands' coverage and PIT values of a model (the main one by default); None for a
        model without spread (an MSE rung)."""
        fc = self.forecasts[name or self.model]
        return calibration(fc.samples, self.truth) if fc.probabilistic else None

    def best_baseline(self, metric: str = "mae") -> tuple[str, float] | None:
        """The baseline with the lowest `metric`, when it beats the main model; else None."""
        ours = self.scores[self.model][metric]
        scored = [(m, self.scores[m][metric]) for m in self.baselines if np.isfinite(self.scores[m][metric])]
        if not scored or not np.isfinite(ours):
            return None
        name, value = min(scored, key=lambda mv: mv[1])
        return (name, value) if value < ours else None

    def frame(self, times=None) -> pd.DataFrame:
        """The main model's forecast of the holdout in the one download format, truth included."""
        return self.forecast.to_frame(times, truth=self.truth)


def _checked_period(period, history: np.ndarray) -> tuple[int, bool]:
    if period is None:
        return detect_period(history), True
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) \
            or not 1 <= period <= len(history):
        raise BacktestError(f"the season period must be a whole number from 1 to {len(history)} "
                            f"(the values before the holdout), got {period!r}")
    return int(period), False


def backtest(model: PatchForecaster, values, horizon: int, period: int | None = None,
             n_samples: int = 200, seed: int = 0, linear: bool = True,
             others: dict[str, PatchForecaster] | None = None) -> Backtest:
    """Hold out the last `horizon` values of `values`, forecast them from the rest with `model`
    (and each of `others`, such as a fine-tuned copy), and score them with the baselines."""
    values = np.asarray(values, dtype=np.float64).ravel()
    P = model.config.patch_size
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise BacktestError(f"the holdout must be a positive number of values, got {horizon!r}")
    if len(values) - horizon < P:
        raise BacktestError(f"holding out {horizon} values leaves {max(len(values) - horizon, 0)}; "
                            f"the model needs at least {P} (one patch) before them")
    history, truth = values[:-horizon], values[-horizon:]
    period, detected = _checked_period(period, history)
    models = {model_name(model): model, **(others or {})}
    forecasts = {name: forecast(m, history, int(horizon), n_samples=n_samples, seed=seed)
                 for name, m in models.items()}
    baselines = {NAIVE: naive_forecast(history, horizon)}
    if period > 1:
        baselines[SEASONAL_NAIVE] = seasonal_naive_forecast(history, horizon, period)
    if linear:
        try:
            fitted = fit_linear_baseline(history, replace(model.config, rung="linear"))
            baselines[LINEAR] = forecast(fitted, history, int(horizon), n_samples=1).mean
        except ValueError:    # under two patches of history: nothing to fit
            pass
    scores = {name: score_forecast(truth, fc.samples if fc.probabilistic else fc.mean, history, period)
              for name, fc in forecasts.items()}
    scores.update({name: score_forecast(truth, point, history, period) for name, point in baselines.items()})
    notes = list(forecasts[model_name(model)].notes)
    return Backtest(history, truth, period, detected, forecasts, baselines, scores, notes)
