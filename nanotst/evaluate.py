"""Evaluation: the grammar test, next-patch predictions, metrics and baselines.

Metrics are pure numpy functions (arrays in, a float out). Baselines give point forecasts from a
1-D history. `score_forecast` scores one forecast against the truth; `evaluate_model` summarizes
a model's next-patch quality on a synthetic test set (the CLI's evaluate command).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import ModelConfig
from .data import SeriesSet, grammar_cases, make_dataset
from .forecast import Forecast, ForecastError, forecast
from .model import NORM_EPS, LinearBaseline, PatchForecaster, build_model, eval_mode, next_patch_pairs


@dataclass
class NextPatchPredictions:
    """One series' next-patch predictions at every position, ready to plot or score.

    Row n of mu/sigma predicts patch n+1, so rows cover patches 1..N-1 of the series.
    """
    target: np.ndarray        # (N-1, P) true patches 1..N-1, normalized
    mu: np.ndarray            # (N-1, P) normalized
    sigma: np.ndarray | None  # (N-1, P) normalized, None for MSE rungs
    loc: float
    scale: float

    @property
    def mse(self) -> float:
        return float(np.mean((self.mu - self.target) ** 2))

    @property
    def mean_sigma(self) -> float | None:
        return None if self.sigma is None else float(np.mean(self.sigma))


@torch.no_grad()
def next_patch_predictions(model: PatchForecaster, series: np.ndarray) -> NextPatchPredictions:
    """Predict patches 1..N-1 of a series of N whole patches from the patches before each.

    One forward pass over the first N-1 patches (they set the normalization), as in training.
    """
    device = next(model.parameters()).device
    series = torch.as_tensor(np.asarray(series, dtype=np.float32), device=device).unsqueeze(0)
    x, y = next_patch_pairs(series, model.config.patch_size)
    with eval_mode(model):
        pred = model(x)
    target = ((y - pred.loc) / pred.scale).view_as(pred.mu)[0]
    sigma = None if pred.sigma is None else pred.sigma[0].cpu().numpy()
    return NextPatchPredictions(target.cpu().numpy(), pred.mu[0].cpu().numpy(), sigma,
                                float(pred.loc), float(pred.scale))


def grammar_eval(model: PatchForecaster, cases: dict[str, np.ndarray] | None = None) -> dict:
    """Normalized next-patch MSE and mean predicted sigma on each grammar case.

    Returns {"flat": {"mse": ..., "sigma": ...}, ...}; sigma is None for MSE rungs.
    """
    if cases is None:
        cases = grammar_cases(model.config.context_length + model.config.patch_size)
    results = {}
    for name, series in cases.items():
        p = next_patch_predictions(model, series)
        results[name] = {"mse": p.mse, "sigma": p.mean_sigma}
    return results


# ---------------------------------------------------------------------------------------------
# Metrics: plain numpy in, a float out. Arrays broadcast against each other; means over all.

def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def gaussian_nll(y, mu, sigma) -> float:
    """Mean negative log-likelihood of y under N(mu, sigma^2), with the constant."""
    y, mu, sigma = _arr(y), _arr(mu), _arr(sigma)
    return float(np.mean(0.5 * np.log(2 * np.pi) + np.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2))


def mse(y, pred) -> float:
    return float(np.mean((_arr(y) - _arr(pred)) ** 2))


def mae(y, pred) -> float:
    return float(np.mean(np.abs(_arr(y) - _arr(pred))))


def seasonal_naive_scale(history, period: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast: mean |h[t] - h[t - period]|. NaN if undefined."""
    history = _arr(history).ravel()
    if len(history) <= period:
        return float("nan")
    return float(np.mean(np.abs(history[period:] - history[:-period])))


def mase(y, pred, history, period: int = 1) -> float:
    """MAE scaled by the in-sample seasonal naive MAE (Hyndman & Koehler 2006).

    Below 1 beats the seasonal naive forecast on the history. NaN when the scale is 0 or
    undefined (a flat history, or one no longer than the period).
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


INTERVAL_LEVELS = (0.5, 0.8, 0.95)


def central_interval(samples, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` interval of samples (M, H): quantiles (1-level)/2 and (1+level)/2."""
    lo, hi = np.quantile(_arr(samples), [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def interval_coverage(y, samples, levels=INTERVAL_LEVELS) -> dict[float, float]:
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


# ---------------------------------------------------------------------------------------------
# Baselines: point forecasts of horizon H from a 1-D history.

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
    k = -(-horizon // model.config.patch_size)
    return forecast(model, history, k, n_samples=1).mean[:horizon]


# ---------------------------------------------------------------------------------------------
# Scoring a forecast, and a whole model.

def score_forecast(y, forecast, history, period: int | None = None,
                   levels=INTERVAL_LEVELS) -> dict[str, float]:
    """All metrics of a forecast against the truth y (H,).

    forecast: sample paths (M, H) for a probabilistic forecast, or a point forecast (H,).
    Samples: MAE/MASE use the median, MSE the mean, CRPS the samples, coverage the central
    intervals. A point forecast has CRPS = MAE and coverage NaN. MASE is scaled by the
    seasonal naive MAE on the history with `period` (detected when None).
    """
    y = _arr(y).ravel()
    forecast = _arr(forecast)
    if period is None:
        period = detect_period(history)
    probabilistic = forecast.ndim == 2
    median = np.median(forecast, axis=0) if probabilistic else forecast
    mean = forecast.mean(axis=0) if probabilistic else forecast
    scores = {"mae": mae(y, median), "mse": mse(y, mean), "mase": mase(y, median, history, period),
              "crps": crps_samples(y, forecast) if probabilistic else mae(y, forecast),
              "period": int(period)}
    cover = interval_coverage(y, forecast, levels) if probabilistic else {}
    for level in levels:
        scores[f"coverage_{round(100 * level)}"] = cover.get(level, float("nan"))
    return scores


@dataclass
class Holdout:
    """A forecast of the last k patches of a series from everything before them."""
    forecast: Forecast
    truth: np.ndarray      # (k*P,) the held-out values
    history: np.ndarray    # (T - k*P,) everything before them
    scores: dict           # evaluate.score_forecast(...) of the forecast against the truth


def holdout_forecast(model: PatchForecaster, series, k_patches: int, n_samples: int = 100,
                     seed: int = 0, period: int | None = None) -> Holdout:
    """Cut off the last k_patches patches, forecast them from the rest and score the result."""
    series = np.asarray(series, dtype=np.float64).ravel()
    P = model.config.patch_size
    if not isinstance(k_patches, (int, np.integer)) or k_patches < 1:
        raise ForecastError(f"k_patches must be a positive integer, got {k_patches!r}")
    H = k_patches * P
    if len(series) - H < P:
        raise ForecastError(f"holding out {H} values leaves {max(len(series) - H, 0)}; "
                            f"the context needs at least one patch ({P} values)")
    history, truth = series[:-H], series[-H:]
    fc = forecast(model, history, k_patches, n_samples=n_samples, seed=seed)
    scores = score_forecast(truth, fc.samples if fc.probabilistic else fc.mean, history,
                            period=period)
    return Holdout(fc, truth, history, scores)


@torch.no_grad()
def evaluate_model(model: PatchForecaster, n_series: int = 200, mix="all", seed: int = 12345,
                   batch_size: int = 64) -> dict:
    """Next-patch quality on a fresh synthetic test set, in normalized space.

    Returns {"nll": mean Gaussian NLL (None for MSE rungs), "mse", "mae", "n_series", "mix",
    "seed", "per_family": {family: {"nll", "mse", "mae", "n"}}}. The default seed is far from
    the training seeds so the test series are new.
    """
    cfg = model.config
    data = make_dataset(n_series, cfg.context_length + cfg.patch_size, mix=mix, seed=seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll, sq, ab = [], [], []
    try:
        for start in range(0, n_series, batch_size):
            series = torch.as_tensor(data.values[start:start + batch_size], device=device)
            x, y = next_patch_pairs(series, cfg.patch_size)
            pred = model(x)
            target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
            mu = pred.mu
            sq.append(((mu - target) ** 2).mean(dim=(1, 2)))
            ab.append((mu - target).abs().mean(dim=(1, 2)))
            if pred.sigma is not None:
                sigma = pred.sigma
                z = (target - mu) / sigma
                nll.append((0.5 * np.log(2 * np.pi) + sigma.log() + 0.5 * z ** 2).mean(dim=(1, 2)))
    finally:
        model.train(was_training)
    per = {"mse": torch.cat(sq).cpu().numpy(), "mae": torch.cat(ab).cpu().numpy()}
    per["nll"] = torch.cat(nll).cpu().numpy() if nll else None
    families = data.families()

    def summary(mask) -> dict:
        return {k: (None if v is None else float(v[mask].mean())) for k, v in per.items()}

    result = summary(np.ones(n_series, dtype=bool))
    result.update(n_series=n_series, mix=mix, seed=seed, per_family={
        fam: {**summary(families == fam), "n": int((families == fam).sum())}
        for fam in sorted(set(families))})
    return result
