"""Evaluation: the grammar test, next-patch predictions, metrics and baselines."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import grammar_cases
from .model import PatchForecaster


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
    """Run the model once over a series (length a multiple of the patch size)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(series, dtype=np.float32), device=device).unsqueeze(0)
    pred = model(x)
    model.train(was_training)
    target = ((x - pred.loc) / pred.scale).view_as(pred.mu)[0, 1:]
    sigma = None if pred.sigma is None else pred.sigma[0, :-1].cpu().numpy()
    return NextPatchPredictions(target.cpu().numpy(), pred.mu[0, :-1].cpu().numpy(), sigma,
                                float(pred.loc), float(pred.scale))


def grammar_eval(model: PatchForecaster, cases: dict[str, np.ndarray] | None = None) -> dict:
    """Normalized next-patch MSE and mean predicted sigma on each grammar case.

    Returns {"flat": {"mse": ..., "sigma": ...}, ...}; sigma is None for MSE rungs.
    """
    if cases is None:
        cases = grammar_cases(model.config.context_length)
    results = {}
    for name, series in cases.items():
        p = next_patch_predictions(model, series)
        results[name] = {"mse": p.mse, "sigma": p.mean_sigma}
    return results
