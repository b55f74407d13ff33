"""Probabilistic forecasting: batched autoregressive sampling of whole patches, then quantiles.

    fc = forecast(model, context, horizon=36)     # context in any units, horizon in values
    fc.median, fc.interval(0.8), fc.to_frame()    # the same units as the context

All sample paths run as one batch. The context is standardized in float64 first (any units work),
and each step feeds the most recent <= context_length values to the model (which pads them to
whole patches), samples the next patch from N(mu, sigma) in that step's normalized
space, maps it back with that step's loc/scale and appends it. Every path shares the first step,
so it runs once with batch 1 and the N paths branch from its prediction. In the second step the
paths share the context's tokens too (see sample_paths), so each path runs one token, not 16.

The bands are calibrated on the context itself: the model's one-step predictions of the context's
own recent patches (the same batch-1 pass as the first step) say how far its errors there exceed
its sigma, and every sampled step's sigma is widened by that factor (never narrowed, at most 3x).
A model that copies the last cycle's noise, or a series that is harder than the training data,
gets wider bands; one it predicts as well as it thinks keeps its own.

With mirror=True, every other path forecasts the context upside down (-x) and is turned back:
the model's leanings one way (learned from training shapes that are not symmetric) average out,
and the forecast of -x is exactly minus the forecast of x.

Randomness comes from one noise tensor (n_samples, H, P) drawn up front from `seed`: path i only
ever uses noise[i] (mirrored: paths 2k and 2k + 1 share noise[k]), so a path does not depend on
how many other paths run beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .metrics import BAND_LEVELS, band_quantiles
from .model import CHOICE_TOKENS, PatchForecaster, eval_mode, window_stats

QUANTILES = band_quantiles()    # (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975): the bands' edges
MAX_HORIZON = 10_000            # values ahead
MAX_SAMPLES = 10_000            # sample paths
MAX_SAMPLE_VALUES = 20_000_000  # paths x horizon: 160 MB of float64 samples
CALIBRATION_PATCHES = 8         # the most recent one-step predictions the bands are calibrated on
MAX_SIGMA_SCALE = 3.0
Z80 = 1.2815515655446004        # an 80% central band of N(0, 1) is +-Z80
# The default of forecast(shared_patches=): while a path has at most this many patches of its
# own, every path is normalized like the noise-free path (see sample_paths). With 1, the second
# patch runs one token per path instead of 16 (3-5x faster for two patches). Not more: a noise-free window is smoother than a sampled one, so its scale is a
# little small, and at 8 patches ahead the 80% band held 77.4% of the truth with per-path
# statistics, 77.2% sharing 1 patch, 76.8% sharing 2, 75.4% sharing 4 and 73.1% sharing all,
# the median's error within 0.5% throughout (120 series of the 'all' mix, the shipped model:
# benchmarks/rollout_sharing.py, benchmarks/README.md "Forecast latency").
SHARED_PATCHES = 1


class ForecastError(ValueError):
    """The context or the request cannot be forecast; the message says why."""


@dataclass
class Forecast:
    """A forecast of H values after the context, in the context's units."""
    samples: np.ndarray                 # (n_samples, H) sample paths
    mean: np.ndarray                    # (H,)
    median: np.ndarray                  # (H,)
    quantiles: dict[float, np.ndarray]  # level -> (H,)
    context: np.ndarray                 # (C,) the values the first step saw
    padded: int                         # padding the model put before them to make whole patches
    truncated: int                      # older values dropped beyond context_length
    patch_size: int
    probabilistic: bool                 # False: an MSE rung, every path is the mean (mirrored:
                                        # half of them the mean of the series upside down, turned back)
    sigma_scale: float = 1.0            # how much the context widened every step's sigma
    season_lag: int | None = None       # with config.seasonal_patch: the lag the model read
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

    def bands(self, levels=BAND_LEVELS) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{coverage %: (lower, upper)} of the central bands, as the fan charts draw them."""
        return {round(100 * lv): self.interval(lv) for lv in levels}

    def quantile(self, level: float) -> np.ndarray:
        level = round(float(level), 6)
        return self.quantiles[level] if level in self.quantiles else np.quantile(self.samples, level, axis=0)

    def to_frame(self, times=None, truth=None, quantiles=QUANTILES) -> pd.DataFrame:
        """The one download format: step (1 = right after the context), time (when given), mean,
        one column per quantile (q + level in percent: q2.5, q10, ..., q97.5), and truth (when
        the values were held out)."""
        cols: dict = {"step": np.arange(1, self.horizon + 1)}
        if times is not None:
            cols["time"] = np.asarray(times)[:self.horizon]
        cols["mean"] = self.mean
        for q in quantiles:
            cols[quantile_name(q)] = self.quantile(q)
        if truth is not None:
            cols["truth"] = np.asarray(truth, dtype=np.float64)[:self.horizon]
        return pd.DataFrame(cols)


def quantile_name(level: float) -> str:
    """0.05 -> 'q5', 0.975 -> 'q97.5'."""
    return f"q{round(100 * float(level), 6):g}"


def averaged_seasons(config) -> str:
    """How many seasons back a seasonal patch averages (config.season_cycles, choose_cycles), in a
    phrase to put in brackets; "" where it copies one."""
    if config.season_cycles == 1:
        return ""
    if config.choose_cycles:
        return (f"the mean of the last 1 to {config.season_cycles} seasons, as many as forecast the "
                f"last {CHOICE_TOKENS * config.patch_size} values best")
    return f"the mean of the last {config.season_cycles} seasons"


def season_source(lag: int, patch_size: int) -> str:
    """Where a seasonal patch's values come from, before the words "the patch" or "patch n"."""
    if lag < patch_size:
        return f"the last {lag} values (one season), repeated across"
    return f"the values {lag} back from"


def season_note(lag: int, config) -> str:
    """What a model with config.seasonal_patch read one season back, in a sentence."""
    moved = f", moved by how far the level moved in those {lag} values" if config.seasonal_level else ""
    if lag < config.patch_size:
        return (f"the context repeats itself every {lag} values: each patch's forecast also read the "
                f"last {lag} values before it, repeated across the patch{moved}")
    if lag > config.patch_size:
        averaged = f" ({averaged_seasons(config)})" if averaged_seasons(config) else ""
        return (f"the context repeats itself best {lag} values back: each patch's forecast also read "
                f"the values that far before it{averaged}{moved}")
    if config.seasonal_level:
        return ("no season repeats twice in the context: each patch's forecast also read the patch "
                "before it, moved by the level's latest change")
    return "no season repeats twice in the context: the model copied none"


def prepare_context(values, patch_size: int, context_length: int) -> tuple[np.ndarray, int, int]:
    """Keep the most recent values, at most context_length of them.

    Returns (context, padded, truncated): the model pads `padded` values before the context to
    make whole patches (a mask tells it they are not data), and `truncated` older values are
    beyond what it can see. Nothing is ever cut off the end: the forecast always continues from
    the last value given.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ForecastError("the context contains NaN or infinite values")
    n = len(values)
    if n < patch_size:
        raise ForecastError(f"the context needs at least one patch ({patch_size} values), got {n}")
    truncated = max(0, n - context_length)
    context = values[truncated:]
    return context, -len(context) % patch_size, truncated


def standardize(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(values - loc) / scale in float64, robust to any magnitude a float64 holds.

    The model computes in float32, where 1e37 overflows and 1e-300 is zero; its own instance
    normalization is shift- and scale-invariant, so handing it standardized values changes
    nothing but the rounding, and the samples go back to the user's units in float64.
    """
    big = float(np.max(np.abs(values)))
    if big == 0.0:
        return np.zeros_like(values), 0.0, 1.0
    unit = values / big                              # |unit| <= 1: squares cannot overflow
    loc, spread = float(unit.mean()), float(unit.std())
    spread = spread if spread > 0 else 1.0
    return (unit - loc) / spread, loc * big, spread * big


def context_sigma_scale(patches: torch.Tensor, observed: torch.Tensor, mu: torch.Tensor,
                        sigma: torch.Tensor | None) -> float:
    """The factor that makes the model's 80% band hold 80% of the context's own recent values:
    the 80th percentile of |truth - mu| / sigma over its one-step predictions of the last
    CALIBRATION_PATCHES patches (padding left out), over Z80. At least 1 and at most
    MAX_SIGMA_SCALE; 1 for an MSE rung or with fewer than a patch of values to judge by.
    patches, observed (1, N, P) the context cut by model.patchify; mu, sigma (1, N, P) the model's
    predictions over it (model.predict)."""
    if sigma is None or patches.size(1) < 2:
        return 1.0
    z = (patches[0, 1:] - mu[0, :-1]).abs() / sigma[0, :-1]                # patch n+1 from 0..n
    recent = slice(-CALIBRATION_PATCHES, None)
    z = z[recent][observed[0, 1:][recent] > 0]
    if z.numel() < patches.size(2):
        return 1.0
    return float(min(max(float(torch.quantile(z, 0.8)) / Z80, 1.0), MAX_SIGMA_SCALE))


def sample_paths(model: PatchForecaster, context: torch.Tensor, noise: torch.Tensor,
                 head_mask: torch.Tensor | None = None, first=None,
                 shared_patches: int = SHARED_PATCHES, lag=None) -> torch.Tensor:
    """Roll the model forward. context (1, C) any length, noise (N, H, P) standard normal (times
    the bands' calibration factor, see context_sigma_scale).

    Returns (N, H*P) sample paths in the context's units. For MSE rungs the noise is ignored.
    head_mask: heads switched off for every step (an ablation, see model.forward). first: the
    model's (mu, sigma, loc, scale) of the patch after the context, where the caller has it.
    lag: the season's lag every step reads (a model with config.seasonal_patch; default: the
    context's, see model.seasonal_lag).

    Every path shares the first step. After it, a path's window is the context's most recent
    values and then the path's own patches. While a path has at most shared_patches of its own,
    every path is normalized like a noise-free path (row 0, which appends mu at each step): the
    context's tokens are then the same in every path, so they run once and each path runs only
    its own patches (model.predict_next_shared). After that each window is normalized by its
    own statistics and runs whole.
    """
    L, P = model.config.context_length, model.config.patch_size
    n, horizon, _ = noise.shape
    if model.config.seasonal_patch and lag is None:
        patches, observed, _, _ = model.patchify(context[:, -L:])
        lag = model.season_lag(patches, observed)
    mu, sigma, loc, scale = first or model.predict_next(context[:, -L:], head_mask=head_mask, lag=lag)
    noise = torch.cat([noise.new_zeros(1, *noise.shape[1:]), noise])  # row 0: the noise-free path
    own = context.new_zeros(n + 1, 0)                                  # each row's sampled values
    for h in range(horizon):
        if h > 0:
            kept = context[:, max(0, context.size(1) - L + own.size(1)):]   # the context in each window
            if own.size(1) <= shared_patches * P and kept.size(1) > 0:
                loc, scale = window_stats(torch.cat([kept, own[:1]], dim=1))
                mu, sigma = model.predict_next_shared(kept, own, loc, scale, head_mask=head_mask, lag=lag)
            else:
                window = torch.cat([kept.expand(n + 1, -1), own], dim=1)[:, -L:]
                mu, sigma, loc, scale = model.predict_next(window, head_mask=head_mask, lag=lag)
        z = mu if sigma is None else mu + sigma * noise[:, h]            # (N + 1, P)
        own = torch.cat([own, (z * scale + loc).expand(n + 1, -1)], dim=1)
    return own[1:]


def forecast(model: PatchForecaster, context, horizon: int, n_samples: int = 100,
             quantiles=QUANTILES, seed: int = 0, head_mask: torch.Tensor | None = None,
             calibrate: bool = True, shared_patches: int = SHARED_PATCHES,
             mirror: bool | None = None) -> Forecast:
    """Sample n_samples paths of `horizon` values after `context` (1-D values, any length up to
    the context length used; older values are dropped, a short context is padded). The model
    samples whole patches; the forecast keeps the first `horizon` values. head_mask (layers,
    heads) bool switches heads off for the whole forecast, the weights untouched. calibrate=False
    keeps the model's own sigma (see context_sigma_scale). shared_patches: see sample_paths (0
    runs every path's window whole, normalized by its own statistics, at every step).
    mirror: half the paths forecast the context upside down (-x) and are turned back, each with
    the same noise as its partner: the model's leanings one way or the other average out, and a
    context upside down gets the same forecast upside down (default: the model's config.mirror)."""
    cfg = model.config
    mirror = cfg.mirror if mirror is None else bool(mirror)
    P = cfg.patch_size
    if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
        raise ForecastError(f"the horizon must be a positive number of values, got {horizon!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ForecastError(f"n_samples must be a positive integer, got {n_samples!r}")
    if horizon > MAX_HORIZON:
        raise ForecastError(f"the horizon is at most {MAX_HORIZON:,} values, got {horizon:,}")
    horizon_patches = math.ceil(horizon / P)
    if n_samples > MAX_SAMPLES or n_samples * horizon_patches * P > MAX_SAMPLE_VALUES:
        raise ForecastError(f"{n_samples:,} sample paths of {horizon:,} values are too many; "
                            f"at most {MAX_SAMPLES:,} paths and {MAX_SAMPLE_VALUES:,} values in all")
    if not isinstance(shared_patches, (int, np.integer)) or isinstance(shared_patches, bool) \
            or shared_patches < 0:
        raise ForecastError(f"shared_patches must be a whole number >= 0, got {shared_patches!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ForecastError(f"seed must be a non-negative integer, got {seed!r}")
    levels = tuple(round(float(q), 6) for q in quantiles)
    if any(not 0.0 <= q <= 1.0 for q in levels):
        raise ForecastError(f"quantile levels must be in [0, 1], got {levels}")
    values, padded, truncated = prepare_context(context, P, cfg.context_length)
    unit, loc, scale = standardize(values)

    device = next(model.parameters()).device
    # numpy fills the stream in order, so path i (mirrored: pair i // 2) gets the same noise
    # whatever n_samples is
    n_noise = math.ceil(n_samples / 2) if mirror else n_samples
    rng = np.random.default_rng(int(seed))
    noise = torch.from_numpy(rng.standard_normal((n_noise, horizon_patches, P),
                                                 dtype=np.float32)).to(device)
    x = torch.from_numpy(unit.astype(np.float32)).to(device).unsqueeze(0)
    views = torch.cat([x, -x]) if mirror else x          # the series (and upside down)
    with eval_mode(model), torch.inference_mode():
        model.check_head_mask(head_mask)
        # one pass over the context, every view at once: the first patch's forecast, and the
        # one-step errors the bands are calibrated on
        patches, observed, unit_locs, unit_scales = model.patchify(views)
        lag = model.season_lag(patches[:1], observed[:1]) if cfg.seasonal_patch else None  # sign-blind
        mu, sigma, _ = model.predict(patches, observed, False, head_mask, lag)
        paths, sigma_scales = [], []
        for view in range(len(views)):
            one = slice(view, view + 1)
            view_sigma = None if sigma is None else sigma[one]
            sigma_scale = context_sigma_scale(patches[one], observed[one], mu[one], view_sigma) \
                if calibrate else 1.0
            first = (mu[one, -1], None if view_sigma is None else view_sigma[:, -1],
                     unit_locs[one], unit_scales[one])
            paths.append(sample_paths(model, views[one], noise * sigma_scale, head_mask, first,
                                      shared_patches, lag))
            sigma_scales.append(sigma_scale)
        # mirrored: pairs of paths, the series' and its mirror image's turned back, with the same noise
        samples = torch.stack([paths[0], -paths[1]], dim=1).flatten(0, 1)[:n_samples] if mirror \
            else paths[0]
        sigma_scale = sum(sigma_scales) / len(sigma_scales)
        samples = samples[:, :horizon].double().cpu().numpy() * scale + loc

    notes = []
    if truncated:
        notes.append(f"used the most recent {cfg.context_length} values; "
                     f"{truncated} older values were not used")
    if padded:
        notes.append(f"padded {padded} values at the start to make whole patches of {P} "
                     f"(masked: the model knows they are not data)")
    if lag is not None:
        notes.append(season_note(int(lag), cfg))
    if mirror:
        notes.append("every other path forecast the series upside down and was turned back (the "
                     "model's mirror setting): its leanings one way or the other average out")
    if sigma_scale > 1.05:
        notes.append(f"bands widened {sigma_scale:.2f}x: the model's own one-step errors on the "
                     f"latest patches of this context were larger than its sigma")
    qs = np.quantile(samples, levels, axis=0) if levels else []
    return Forecast(
        samples=samples, mean=samples.mean(axis=0), median=np.median(samples, axis=0),
        quantiles={q: qs[i] for i, q in enumerate(levels)}, context=values,
        padded=padded, truncated=truncated, patch_size=P,
        probabilistic=cfg.probabilistic, sigma_scale=sigma_scale,
        season_lag=None if lag is None else int(lag), notes=notes)


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
        forecast(net, series, 64, n_samples=100)
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        forecast(net, series, 64, n_samples=100)
        times.append(time.perf_counter() - t0)
    print(f"100 paths x 64 steps: median {1e3 * np.median(times):.1f} ms, "
          f"min {1e3 * np.min(times):.1f} ms over {len(times)} runs, "
          f"{torch.get_num_threads()} threads")
