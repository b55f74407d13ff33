"""Probabilistic forecasting: batched autoregressive sampling of whole patches, then quantiles.

All sample paths run as one batch. Each step feeds the most recent <= context_length values
(whole patches) to the model, samples the next patch from N(mu, sigma) in that step's normalized
space, maps it back with that step's loc/scale and appends it. Every path shares the first step,
so it runs once with batch 1 and the N paths branch from its prediction.

Randomness comes from one noise tensor (n_samples, H, P) drawn up front from `seed`: path i only
ever uses noise[i], so a path does not depend on how many other paths run beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .model import NanoTST, PatchForecaster, Transformer, positions

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


class ForecastError(ValueError):
    """The context or the request cannot be forecast; the message says why."""


@dataclass
class Forecast:
    """A forecast of horizon H = horizon_patches * patch_size values, in original units."""
    samples: np.ndarray                 # (n_samples, H) sample paths
    mean: np.ndarray                    # (H,)
    median: np.ndarray                  # (H,)
    quantiles: dict[float, np.ndarray]  # level -> (H,)
    context: np.ndarray                 # (C,) the values the first step saw
    trimmed: int                        # oldest values dropped so the context is whole patches
    truncated: int                      # older values dropped beyond context_length
    patch_size: int
    probabilistic: bool                 # False: an MSE rung, every path is the mean
    notes: list[str] = field(default_factory=list)

    @property
    def horizon(self) -> int:
        return self.samples.shape[1]

    @property
    def n_samples(self) -> int:
        return self.samples.shape[0]

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The central interval holding `level` of the mass, e.g. 0.8 -> (q0.1, q0.9)."""
        lo, hi = round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)
        if lo in self.quantiles and hi in self.quantiles:
            return self.quantiles[lo], self.quantiles[hi]
        return np.quantile(self.samples, lo, axis=0), np.quantile(self.samples, hi, axis=0)


def prepare_context(values, patch_size: int, context_length: int) -> tuple[np.ndarray, int, int]:
    """Keep the most recent whole patches, at most context_length values.

    Returns (context, trimmed, truncated): trimmed values make the length a multiple of the
    patch size, truncated ones are older than the model can see. Both come off the start, never
    the end: the forecast always continues from the last value given.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ForecastError("the context contains NaN or infinite values")
    n = len(values)
    truncated = max(0, n - context_length)
    usable = n - truncated
    trimmed = usable % patch_size
    context = values[truncated + trimmed:]
    if len(context) < 2 * patch_size:
        raise ForecastError(f"the context needs at least 2 patches ({2 * patch_size} values), "
                            f"got {n}")
    return context, trimmed, truncated


def _last_step(model: PatchForecaster, x: torch.Tensor):
    """Prediction of the patch after x (B, L): mu, sigma (or None) (B, P), loc, scale (B, 1)."""
    if type(model) in (Transformer, NanoTST) and _has_known_layout(model):
        return _last_step_fast(model, x)
    pred = model(x)
    sigma = None if pred.sigma is None else pred.sigma[:, -1]
    return pred.mu[:, -1], sigma, pred.loc, pred.scale


def _has_known_layout(model) -> bool:
    block = model.blocks[-1] if len(getattr(model, "blocks", ())) else None
    return (block is not None and hasattr(block, "attn") and hasattr(block.attn, "qkv")
            and hasattr(block, "mlp") and hasattr(model, "pos") and hasattr(model, "ln_f"))


def _last_step_fast(model, x: torch.Tensor):
    """The same numbers as model(x) for the last row only, about a quarter cheaper.

    Forecasting reads only the last token's output, so the last block needs keys and values for
    every token but the query, attention output, FFN, final norm and head for the last token
    only. Every earlier block still runs in full. tests/test_forecast.py checks it against
    model(x) on the same weights.
    """
    cfg = model.config
    patches, loc, scale = model.patchify(x)                      # (B, N, P)
    h = model.drop(model.embed(patches) + positions(model.pos, patches.size(1)))  # (B, N, D)
    for block in model.blocks[:-1]:
        h, _ = block(h)
    last = model.blocks[-1]
    a = last.ln_1(h)
    B, T, D = a.shape
    H = last.attn.n_heads
    W, b = last.attn.qkv.weight, last.attn.qkv.bias
    q = F.linear(a[:, -1:], W[:D], b[:D]).view(B, 1, H, D // H).transpose(1, 2)   # (B, H, 1, hs)
    k, v = F.linear(a, W[D:], b[D:]).view(B, T, 2 * H, D // H).transpose(1, 2).split(H, dim=1)
    # the last query sees every key, causal or not: no mask needed
    y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, 1, D)
    h = h[:, -1:] + last.attn.proj(y)                            # (B, 1, D)
    h = h + last.mlp(last.ln_2(h))
    out = model.head(model.ln_f(h))[:, 0]                        # (B, P) or (B, 2P)
    if type(model) is Transformer:
        return out, None, loc, scale
    mu, raw_sigma = out.chunk(2, dim=-1)
    return mu, F.softplus(raw_sigma) + cfg.min_sigma, loc, scale


def sample_paths(model: PatchForecaster, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Roll the model forward. context (1, C) whole patches, noise (N, H, P) standard normal.

    Returns (N, H*P) sample paths in original units. For MSE rungs the noise is ignored.
    """
    L = model.config.context_length
    n, horizon, _ = noise.shape
    paths = context                                  # (1, C) until the paths branch
    for h in range(horizon):
        mu, sigma, loc, scale = _last_step(model, paths[:, -L:])
        z = mu.expand(n, -1) if sigma is None else mu + sigma * noise[:, h]  # (N, P)
        new = z * scale + loc
        paths = torch.cat([paths.expand(n, -1), new], dim=1)
    return paths[:, context.size(1):]


def forecast(model: PatchForecaster, context, horizon_patches: int, n_samples: int = 100,
             quantiles=DEFAULT_QUANTILES, seed: int = 0) -> Forecast:
    """Sample n_samples future paths of horizon_patches patches after `context` (1-D values)."""
    cfg = model.config
    P = cfg.patch_size
    if not isinstance(horizon_patches, (int, np.integer)) or horizon_patches < 1:
        raise ForecastError(f"horizon_patches must be a positive integer, got {horizon_patches!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ForecastError(f"n_samples must be a positive integer, got {n_samples!r}")
    levels = tuple(float(q) for q in quantiles)
    if any(not 0.0 <= q <= 1.0 for q in levels):
        raise ForecastError(f"quantile levels must be in [0, 1], got {levels}")
    values, trimmed, truncated = prepare_context(context, P, cfg.context_length)

    device = next(model.parameters()).device
    # numpy fills the stream in order, so path i gets the same noise whatever n_samples is
    rng = np.random.default_rng(int(seed))
    noise = torch.from_numpy(rng.standard_normal((n_samples, horizon_patches, P),
                                                 dtype=np.float32)).to(device)
    # a copy: the caller's array may be read-only (a pandas column), which torch warns about
    x = torch.from_numpy(np.array(values, dtype=np.float32)).to(device).unsqueeze(0)
    was_training = model.training
    if was_training:  # a shared eval-mode model is never touched
        model.eval()
    try:
        with torch.inference_mode():
            samples = sample_paths(model, x, noise).double().cpu().numpy()
    finally:
        if was_training:
            model.train()

    notes = []
    if truncated:
        notes.append(f"used the most recent {cfg.context_length} values; "
                     f"{truncated} older values were not used")
    if trimmed:
        notes.append(f"trimmed {trimmed} values at the start to make whole patches of {P}")
    qs = np.quantile(samples, levels, axis=0) if levels else []
    return Forecast(
        samples=samples, mean=samples.mean(axis=0), median=np.median(samples, axis=0),
        quantiles={q: qs[i] for i, q in enumerate(levels)}, context=values,
        trimmed=trimmed, truncated=truncated, patch_size=P,
        probabilistic=cfg.probabilistic, notes=notes)


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
    from .evaluate import score_forecast
    series = np.asarray(series, dtype=np.float64).ravel()
    P = model.config.patch_size
    if not isinstance(k_patches, (int, np.integer)) or k_patches < 1:
        raise ForecastError(f"k_patches must be a positive integer, got {k_patches!r}")
    H = k_patches * P
    if len(series) - H < 2 * P:
        raise ForecastError(f"holding out {H} values leaves {max(len(series) - H, 0)}; "
                            f"the context needs at least 2 patches ({2 * P} values)")
    history, truth = series[:-H], series[-H:]
    fc = forecast(model, history, k_patches, n_samples=n_samples, seed=seed)
    scores = score_forecast(truth, fc.samples if fc.probabilistic else fc.mean, history,
                            period=period)
    return Holdout(fc, truth, history, scores)


if __name__ == "__main__":
    # latency check: python -m nanotst.forecast [threads]  (default 0.8M model, 100 paths x 64)
    import sys
    import time

    from .config import ModelConfig
    from .model import build_model
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    net = build_model(ModelConfig()).eval()
    series = np.sin(np.arange(512) / 10.0)
    for _ in range(5):
        forecast(net, series, 2, n_samples=100)
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        forecast(net, series, 2, n_samples=100)
        times.append(time.perf_counter() - t0)
    print(f"100 paths x 64 steps: median {1e3 * np.median(times):.1f} ms, "
          f"min {1e3 * np.min(times):.1f} ms over {len(times)} runs, "
          f"{torch.get_num_threads()} threads")
