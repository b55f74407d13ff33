"""Baselines: simple forecasts a model has to beat, and the season period they use.

naive (repeat the last value), seasonal naive (repeat the last season), the linear rung fitted
in closed form, and `detect_period`, the one rule for a period a series does not give.
Point forecasts of `horizon` values from a 1-D history.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import ModelConfig
from .data import SeriesSet
from .forecast import forecast
from .model import NORM_EPS, LinearBaseline, build_model


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def naive_forecast(history, horizon: int) -> np.ndarray:
    """Repeat the last value."""
    history = _arr(history).ravel()
    if len(history) == 0:
        raise ValueError("naive forecast needs a non-empty history")
    return np.full(horizon, history[-1])


def seasonal_naive_forecast(history, horizon: int, period: int) -> np.ndarray:
    """Repeat the last full season: y[T + h] = y[T + h - period * k], the last one observed."""
    history = _arr(history).ravel()
    if period < 1 or len(history) < period:
        raise ValueError(f"seasonal naive needs period >= 1 and at least one season of history, "
                         f"got period {period} and {len(history)} values")
    return history[-period:][np.arange(horizon) % period]


def detect_period(history, max_period: int | None = None, min_acf: float = 0.3) -> int:
    """The dominant seasonal period by autocorrelation, or 1 when there is no clear one.

    The series is detrended (least-squares line) first, so a trend does not look seasonal. The
    period is the autocorrelation peak (a local maximum above min_acf) with the highest value
    among lags 2..max_period (default: half the history).
    """
    x = _arr(history).ravel()
    n = len(x)
    if n < 8:
        return 1
    t = np.arange(n)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    if np.std(x) < 1e-12:
        return 1
    max_period = n // 2 if max_period is None else min(max_period, n - 2)
    spectrum = np.fft.rfft(x - x.mean(), 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    acf = acf / acf[0]
    best, best_value = 1, min_acf
    for lag in range(2, max_period + 1):
        if acf[lag] > acf[lag - 1] and acf[lag] >= acf[lag + 1] and acf[lag] > best_value:
            best, best_value = lag, acf[lag]
    return best


def fit_linear_baseline(data, config: ModelConfig | None = None, ridge: float = 1.0) -> LinearBaseline:
    """Fit the linear rung (next patch = W @ patch + b) by ridge least squares, in closed form.

    data: a 1-D series, a 2-D array of series, or a data.SeriesSet. Every window of the most
    recent <= context_length + 1 whole patches (stride one patch) is normalized as the model
    normalizes its input (statistics of all but the last patch), and gives (patch n, patch n+1)
    pairs. The ridge pulls W towards the
    identity (the untrained model's "repeat the last patch"), so a short series stays sensible.
    """
    config = config or ModelConfig(rung="linear")
    if config.rung != "linear":
        config = ModelConfig.from_dict({**config.to_dict(), "rung": "linear"})
    P, L = config.patch_size, config.context_length
    rows = data.values if isinstance(data, SeriesSet) else _arr(data)
    rows = rows[None] if rows.ndim == 1 else rows
    inputs, targets = [], []
    for series in rows:
        series = _arr(series)
        series = series[len(series) % P:]
        width = min(len(series), L + P)
        if width < 2 * P:
            continue
        for end in range(len(series), width - 1, -P):
            w = series[end - width:end]
            w = (w - w[:-P].mean()) / (w[:-P].std() + NORM_EPS)
            patches = w.reshape(-1, P)
            inputs.append(patches[:-1])
            targets.append(patches[1:])
    if not inputs:
        raise ValueError(f"fitting the linear baseline needs a series of at least 2 patches ({2 * P} values)")
    X = np.concatenate(inputs)
    Y = np.concatenate(targets)
    X1 = np.hstack([X, np.ones((len(X), 1))])                # bias column
    reg = ridge * np.eye(P + 1)
    reg[-1, -1] = 0.0                                         # no penalty on the bias
    prior = np.vstack([np.eye(P), np.zeros((1, P))])          # W^T = I, b = 0
    coef = np.linalg.solve(X1.T @ X1 + reg, X1.T @ Y + reg @ prior)   # (P+1, P)
    model = build_model(config)
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(coef[:-1].T, dtype=torch.float32))
        model.linear.bias.copy_(torch.as_tensor(coef[-1], dtype=torch.float32))
    return model.eval()


def linear_baseline_forecast(model: LinearBaseline, history, horizon: int) -> np.ndarray:
    """Point forecast of `horizon` values from a (fitted or trained) linear rung, rolled forward
    patch by patch on the most recent context like any other rung."""
    return forecast(model, history, horizon, n_samples=1).mean
