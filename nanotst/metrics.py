"""Scores of a forecast: plain numpy arrays in, a float (or an array per step) out.

Arrays broadcast against each other; means run over all of them. Point scores (MSE, MAE, MASE),
scores of a distribution (Gaussian NLL, CRPS from a Gaussian or from samples, weighted quantile
loss) and calibration (coverage of central bands, PIT values). BAND_LEVELS are the central bands
the app, the CLI and the benchmark report; forecast.QUANTILES are their edges.
"""
from __future__ import annotations

import numpy as np
import torch

from .model import gaussian_nll as model_gaussian_nll

BAND_LEVELS = (0.5, 0.8, 0.95)   # central bands: coverage is reported for each


def band_quantiles(levels=BAND_LEVELS) -> tuple[float, ...]:
    """The quantile levels that bound the central bands, and the median: (0.025, ..., 0.975)."""
    edges = {0.5} | {round((1 - lv) / 2, 6) for lv in levels} | {round((1 + lv) / 2, 6) for lv in levels}
    return tuple(sorted(edges))


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def gaussian_nll(y, mu, sigma) -> float:
    """Mean negative log-likelihood of y under N(mu, sigma^2), with the constant: the training
    loss's formula (model.gaussian_nll), in float64."""
    y, mu, sigma = np.broadcast_arrays(_arr(y), _arr(mu), _arr(sigma))
    return float(model_gaussian_nll(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (mu, sigma, y))).mean())


def mse(y, pred) -> float:
    return float(np.mean((_arr(y) - _arr(pred)) ** 2))


def mae(y, pred) -> float:
    return float(np.mean(np.abs(_arr(y) - _arr(pred))))


def seasonal_naive_scale(history, period: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast: mean |h[t] - h[t - period]|; NaN if undefined
    (a history no longer than the period). 0 when the history repeats to float rounding (a
    noise-free periodic signal), where scaling by the rounding would give a meaningless 10^15."""
    history = _arr(history).ravel()
    if len(history) <= period:
        return float("nan")
    scale = float(np.mean(np.abs(history[period:] - history[:-period])))
    return 0.0 if negligible(scale, history) else scale


def negligible(error: float, values) -> bool:
    """Whether an error is only float rounding on these values (at most 1e-9 of their largest
    magnitude)."""
    values = _arr(values).ravel()
    return bool(error <= 1e-9 * (np.max(np.abs(values)) if values.size else 0.0))


def mase(y, pred, history, period: int = 1) -> float:
    """MAE scaled by the in-sample seasonal naive MAE (Hyndman & Koehler 2006).

    Below 1 beats the seasonal naive forecast on the history. NaN when the scale is 0 or
    undefined (a flat history, one no longer than the period, or one that repeats exactly).
    """
    scale = seasonal_naive_scale(history, period)
    if not np.isfinite(scale) or scale <= 0:
        return float("nan")
    return mae(y, pred) / scale


def _std_normal_cdf(z: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.from_numpy(z)).numpy()


def crps_gaussian(y, mu, sigma) -> float:
    """Mean CRPS of N(mu, sigma^2) at y, closed form (Gneiting & Raftery 2007)."""
    y, mu, sigma = np.broadcast_arrays(_arr(y), _arr(mu), _arr(sigma))
    z = (y - mu) / sigma
    pdf = np.exp(-0.5 * z ** 2) / np.sqrt(2 * np.pi)
    cdf = _std_normal_cdf(np.ascontiguousarray(z))
    return float(np.mean(sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))))


def crps_samples_per_step(y, samples) -> np.ndarray:
    """CRPS of the empirical distribution of samples (M, H) at y (H,), per step: (H,).

    Energy form E|X - y| - 0.5 E|X - X'|; the second term from sorted samples in O(M log M):
    E|X - X'| = 2 / M^2 * sum_i (2i - M - 1) x_(i), with i = 1..M.
    """
    samples = _arr(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    y = np.broadcast_to(_arr(y), samples.shape[1:])
    m = samples.shape[0]
    term1 = np.mean(np.abs(samples - y), axis=0)
    x = np.sort(samples, axis=0)
    weights = (2 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (x.ndim - 1))
    term2 = np.sum(weights * x, axis=0) / (m * m)  # = 0.5 E|X - X'|
    return term1 - term2


def crps_samples(y, samples) -> float:
    """Mean CRPS over the horizon of a sample forecast (M, H) at y (H,)."""
    return float(np.mean(crps_samples_per_step(y, samples)))


def coverage(y, lower, upper) -> float:
    """Fraction of y inside [lower, upper]."""
    y = _arr(y)
    return float(np.mean((y >= _arr(lower)) & (y <= _arr(upper))))


def central_interval(samples, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` interval of samples (M, H): quantiles (1-level)/2 and (1+level)/2."""
    lo, hi = np.quantile(_arr(samples), [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def interval_coverage(y, samples, levels=BAND_LEVELS) -> dict[float, float]:
    """Coverage of y by central intervals: level -> fraction inside.

    samples: sample paths (M, H), or a quantile dict level -> (H,) such as Forecast.quantiles,
    which must hold (1 - level) / 2 and (1 + level) / 2 for every level asked for.
    """
    if isinstance(samples, dict):
        q = {round(float(k), 6): v for k, v in samples.items()}
        try:
            return {level: coverage(y, q[round((1 - level) / 2, 6)], q[round((1 + level) / 2, 6)])
                    for level in levels}
        except KeyError as err:
            raise ValueError(f"the quantiles lack level {err.args[0]} for a central interval") from None
    return {level: coverage(y, *central_interval(samples, level)) for level in levels}


def pit_values(samples, y) -> np.ndarray:
    """Probability integral transform of y (H,) under a sample forecast (M, H): per step, the
    share of samples below y (ties count half). (H,) values in [0, 1].

    For a calibrated forecast they are uniform on [0, 1]: a U-shaped histogram means intervals
    too narrow (overconfident), a hump too wide, a slope a biased forecast.
    """
    samples = _arr(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    y = np.broadcast_to(_arr(y), samples.shape[1:])
    below = np.mean(samples < y, axis=0)
    ties = np.mean(samples == y, axis=0)
    return below + 0.5 * ties


def weighted_quantile_loss(y, quantiles: dict) -> float:
    """Mean over the levels of 2 * summed pinball loss / summed |y| (the WQL of GluonTS and
    Chronos); quantiles maps a level to its (H,) forecast. NaN when y is all zero."""
    y = _arr(y)
    denom = np.sum(np.abs(y))
    if denom == 0:
        return float("nan")
    losses = []
    for q, pred in quantiles.items():
        diff = y - _arr(pred)
        losses.append(2 * np.sum(np.maximum(q * diff, (q - 1) * diff)) / denom)
    return float(np.mean(losses))


def trailing_geomean(values, window: int = 3) -> np.ndarray:
    """Each value replaced by the geometric mean of it and the window - 1 before it: a smoothing
    for errors that span decades (one noisy evaluation moves it by a factor, not a decade)."""
    logs = np.log(np.maximum(_arr(values), 1e-30))
    sums = np.cumsum(np.concatenate([[0.0], logs]))
    n = np.arange(1, len(logs) + 1)
    start = np.maximum(n - window, 0)
    return np.exp((sums[n] - sums[start]) / (n - start))
