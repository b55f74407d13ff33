"""Model-level evaluation: next-patch predictions, the grammar test and its noise floor.

`next_patch_predictions` is one series' predictions at every position (what the Signals page
draws); `grammar_eval` the next-patch MSE on each grammar case, against `grammar_noise_floor`;
`evaluate_model` a model's next-patch quality on a fresh synthetic test set (the CLI's evaluate
command). Forecasts are scored in backtest.py, with metrics.py's scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import GRAMMAR_NOISE_STD, grammar_cases, make_dataset
from .model import NORM_EPS, PatchForecaster, eval_mode, gaussian_nll, next_patch_pairs


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


def grammar_noise_floor(context_length: int = 512, patch_size: int = 32,
                        cases: dict | None = None) -> dict[str, float]:
    """The best next-patch MSE a model can reach on each grammar case, in normalized units.

    Noise of std s in original units becomes s / scale after instance normalization (scale = the
    std of the input, all but the last patch), so a perfect predictor of the clean signal still
    has MSE (s / scale)^2 on every predicted patch.
    """
    cases = grammar_cases(context_length + patch_size) if cases is None else cases
    floors = {}
    for name, series in cases.items():
        scale = float(np.std(np.asarray(series, dtype=np.float64)[:-patch_size])) + NORM_EPS
        floors[name] = (GRAMMAR_NOISE_STD.get(name, 0.0) / scale) ** 2
    return floors


@dataclass
class NextPatchAnalysis:
    """next_patch_predictions of one series with what the Signals page draws beside them."""
    normalized: np.ndarray
    patches: np.ndarray
    target: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray | None
    loc: float
    scale: float
    rms_error: np.ndarray            # per predicted patch
    mean_sigma: np.ndarray | None    # per predicted patch
    true_noise: float | None         # in normalized units
    mse: float


def whole_patches(model: PatchForecaster, values) -> np.ndarray:
    """The most recent whole patches of values that fit the model's context."""
    cfg = model.config
    values = np.asarray(values, dtype=np.float32)[-cfg.context_length:]
    return values[len(values) % cfg.patch_size:]


def next_patch_analysis(model: PatchForecaster, values: np.ndarray,
                        noise_std: float | None = None) -> NextPatchAnalysis:
    values = whole_patches(model, values)
    p = next_patch_predictions(model, values)
    P = model.config.patch_size
    normalized = (values - p.loc) / p.scale
    err = np.sqrt(np.mean((p.mu - p.target) ** 2, axis=1))
    return NextPatchAnalysis(
        normalized=normalized, patches=normalized.reshape(-1, P), target=p.target, mu=p.mu,
        sigma=p.sigma, loc=p.loc, scale=p.scale, rms_error=err,
        mean_sigma=None if p.sigma is None else p.sigma.mean(axis=1),
        true_noise=None if noise_std is None else float(noise_std) / p.scale, mse=p.mse)


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
    nll, sq, ab = [], [], []
    with eval_mode(model):
        for start in range(0, n_series, batch_size):
            series = torch.as_tensor(data.values[start:start + batch_size], device=device)
            x, y = next_patch_pairs(series, cfg.patch_size)
            pred = model(x)
            target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
            sq.append(((pred.mu - target) ** 2).mean(dim=(1, 2)))
            ab.append((pred.mu - target).abs().mean(dim=(1, 2)))
            if pred.sigma is not None:
                nll.append(gaussian_nll(pred.mu, pred.sigma, target).mean(dim=(1, 2)))
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
