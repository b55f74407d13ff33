"""Inside the model: experiments a learner runs on NanoTST to see why it predicts what it does.

    edited = apply_edit(values, Edit("spike", at=300, amount=3.0), patch_size=32)
    w = what_if(model, values, Edit("level shift", 400, 2.0))      # original vs edited, side by side
    occ = occlusion_map(model, values)                              # (N, N): blank patch j, move query n
    mask = head_mask(model.head_grid, heads_off=[(2, 0)])           # True = on
    ab = ablation(model, values, mask)                              # forecast, grammar, period copy
    pc = period_copy_scores(model, *periodic_suite(512, 32))        # (layers, heads) attention mass
    probes = run_probes(model, make_dataset(300, 512))              # held-out R2 / accuracy per layer
    curve = across_training(config, trainer.weight_snapshots)      # the skills at each snapshot

Everything takes a model and numpy arrays and returns numpy arrays and small dataclasses. The
model is never changed: ablations are forward passes with a head mask, snapshots are loaded
into fresh models. Patch n of a prediction is the prediction of patch n + 1, and "rolling"
predictions are made from the values up to the end of patch n alone (the instance
normalization included), so an edit can only move the predictions after it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .config import ModelConfig
from .data import SeriesSet, grammar_cases, wave
from .forecast import Forecast, forecast
from .model import PatchForecaster, build_model, eval_mode, next_patch_pairs

Progress = Callable[[int, int, str], None]   # (done, total, what) -> None


class LabError(ValueError):
    """The model or the input cannot be used for this experiment; the message says why."""


def _device(model: PatchForecaster) -> torch.device:
    return next(model.parameters()).device


def _tensor(model: PatchForecaster, values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=_device(model))


def _has_attention(model: PatchForecaster) -> bool:
    return model.head_grid[0] > 0


# ---------------------------------------------------------------- contexts and head masks

def whole_patches(values, patch_size: int, context_length: int) -> np.ndarray:
    """The most recent whole patches of `values` that fit the context: (N * P,) float32."""
    values = np.asarray(values, dtype=np.float32).ravel()[-context_length:]
    values = values[len(values) % patch_size:]
    if len(values) < patch_size:
        raise LabError(f"need at least one patch ({patch_size} values), got {len(values)}")
    if not np.all(np.isfinite(values)):
        raise LabError("the series contains NaN or infinite values")
    return values


def head_mask(grid: tuple[int, int], heads_off: Sequence[tuple[int, int]] = (),
              layers_off: Sequence[int] = ()) -> torch.Tensor:
    """(layers, heads) bool, True = on: every head on except `heads_off` and whole `layers_off`."""
    mask = torch.ones(grid, dtype=torch.bool)
    for layer, head in heads_off:
        mask[layer, head] = False
    for layer in layers_off:
        mask[layer] = False
    return mask


def heads_off(mask: torch.Tensor | None) -> list[tuple[int, int]]:
    """The (layer, head) pairs a mask switches off, in order."""
    if mask is None:
        return []
    return [(int(l), int(h)) for l, h in zip(*np.nonzero(~mask.cpu().numpy()))]


def sample_forecast(model: PatchForecaster, values: np.ndarray, horizon_patches: int = 2,
                    n_samples: int = 100, seed: int = 0, mask: torch.Tensor | None = None) -> Forecast:
    """forecast.forecast of `horizon_patches` patches, through a head mask if given."""
    return forecast(model, values, horizon_patches * model.config.patch_size, n_samples=n_samples,
                    seed=seed, head_mask=mask)


# ---------------------------------------------------------------- what-if edits

EDIT_KINDS = ("spike", "phase shift", "scale patch", "blank patch", "level shift")


@dataclass(frozen=True)
class Edit:
    """One change to a context. `at` is a value index (the patch edits use the patch holding it).

    spike: add `amount` series-stds at `at`; level shift: add `amount` series-stds from `at` on;
    phase shift: from `at` on, the series runs `amount` values late (early if negative);
    scale patch: the patch's deviations from its own mean times `amount`;
    blank patch: the patch flat at the mean of the other values (occlusion)."""
    kind: str
    at: int
    amount: float = 1.0


def edit_start(edit: Edit, patch_size: int) -> int:
    """The first value index an edit may change: nothing before it moves."""
    if edit.kind in ("scale patch", "blank patch"):
        return edit.at // patch_size * patch_size
    return edit.at


def apply_edit(values, edit: Edit, patch_size: int) -> np.ndarray:
    """A copy of values (L,) with the edit made; values before edit_start are never touched."""
    if edit.kind not in EDIT_KINDS:
        raise LabError(f"edit must be one of {', '.join(EDIT_KINDS)}, got {edit.kind!r}")
    v = np.array(values, dtype=np.float64).ravel()
    n = len(v)
    if not 0 <= edit.at < n:
        raise LabError(f"the edit's position must be in [0, {n}), got {edit.at}")
    spread = float(v.std()) or 1.0
    a, t = float(edit.amount), edit.at
    if edit.kind == "spike":
        v[t] += a * spread
    elif edit.kind == "level shift":
        v[t:] += a * spread
    elif edit.kind == "phase shift":
        src = np.clip(np.arange(t, n) - int(round(a)), 0, n - 1)       # (n - t,) source indices
        v[t:] = np.array(values, dtype=np.float64).ravel()[src]
    else:
        s = edit_start(edit, patch_size)
        e = min(s + patch_size, n)
        if edit.kind == "scale patch":
            m = v[s:e].mean()
            v[s:e] = m + a * (v[s:e] - m)
        else:
            rest = np.concatenate([v[:s], v[e:]])
            v[s:e] = rest.mean() if len(rest) else 0.0
    return v.astype(np.float32)


@torch.no_grad()
def _rolling(model: PatchForecaster, rows: np.ndarray, mask: torch.Tensor | None,
             triangular: bool = False, first: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Rolling predictions of several versions (R, C) of one context at once: mu (R, N, P) and
    sigma (R, N, P) or None in the series' units. One call per prefix length, all rows in it.
    triangular: row 1 + j is only needed from prefix j on (patch j blanked); earlier prefixes
    run rows 0..n + 1 only and copy row 0 to the rest (identical inputs). Prefixes before
    `first` are not run (left empty for the caller to fill)."""
    P, N = model.config.patch_size, rows.shape[1] // model.config.patch_size
    x = _tensor(model, rows)
    R = x.size(0)
    mu_out = torch.zeros(R, N, P, dtype=torch.float64)
    sig_out = torch.zeros(R, N, P, dtype=torch.float64)
    has_sigma = True
    with eval_mode(model):
        for n in range(first, N):
            r = min(R, n + 2) if triangular else R
            mu, sigma, loc, scale = model.predict_next(x[:r, :(n + 1) * P], head_mask=mask)  # (r, P)
            mu_out[:r, n] = (mu * scale + loc).double().cpu()
            mu_out[r:, n] = mu_out[0, n]
            if sigma is None:
                has_sigma = False
            else:
                sig_out[:r, n] = (sigma * scale).double().cpu()
                sig_out[r:, n] = sig_out[0, n]
    return mu_out.numpy(), sig_out.numpy() if has_sigma else None


def rolling_predictions(model: PatchForecaster, values, mask: torch.Tensor | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """Row n: the prediction of patch n + 1 from the values up to the end of patch n alone, in
    the series' units. Returns mu (N, P) and sigma (N, P) or None; row N - 1 is the forecast."""
    cfg = model.config
    mu, sigma = _rolling(model, whole_patches(values, cfg.patch_size, cfg.context_length)[None], mask)
    return mu[0], None if sigma is None else sigma[0]


def _blanked(values: np.ndarray, patch_size: int) -> np.ndarray:
    """(N, C): the context with patch j blanked in row j."""
    return np.stack([apply_edit(values, Edit("blank patch", j * patch_size), patch_size)
                     for j in range(len(values) // patch_size)])


def _occlusion(values: np.ndarray, base: np.ndarray, blanked_mu: np.ndarray) -> np.ndarray:
    """(N, N) occlusion map from the rolling mu of the context (N, P) and of each blanked
    version (N blanked, N, P): RMS move in series stds, 0 where the blank is after the query."""
    moved = np.sqrt(np.mean((blanked_mu - base[None]) ** 2, axis=-1)).T       # (query n, blank j)
    return np.tril(moved) / (float(values.std()) or 1.0)


def occlusion_map(model: PatchForecaster, values, mask: torch.Tensor | None = None) -> np.ndarray:
    """(N, N): entry [n, j] is how far the prediction of patch n + 1 (made from patches 0..n)
    moves when patch j is blanked, RMS over the patch in series stds. Zero for j > n (a later
    patch is not in that prediction's input); the last row is the forecast's."""
    return context_view(model, values, mask, n_samples=0).occlusion


@torch.no_grad()
def attention_weights(model: PatchForecaster, values, mask: torch.Tensor | None = None) -> np.ndarray:
    """(layers, heads, N, N) attention of one context (C,), or (B, layers, heads, N, N) of a
    batch (B, C) of them; query x key."""
    if not _has_attention(model):
        raise LabError(f"the {model.config.rung} rung has no attention")
    cfg = model.config
    rows = np.atleast_2d(values)
    x = _tensor(model, np.stack([whole_patches(v, cfg.patch_size, cfg.context_length) for v in rows]))
    with eval_mode(model):
        pred = model(x, need_attention=True, head_mask=mask)
    att = torch.stack(pred.attention, dim=1).double().cpu().numpy()           # (B, L, H, N, N)
    return att if np.ndim(values) == 2 else att[0]


@dataclass
class ContextView:
    """Everything the what-if view shows about one context."""
    values: np.ndarray                   # (C,) whole patches
    mu: np.ndarray                       # (N, P) rolling next-patch mu (row N - 1: the forecast)
    sigma: np.ndarray | None             # (N, P)
    occlusion: np.ndarray | None         # (N, N) see occlusion_map
    attention: np.ndarray | None         # (layers, N, N) heads averaged
    fan: Forecast | None


def context_view(model: PatchForecaster, values, mask: torch.Tensor | None = None,
                 horizon_patches: int = 2, n_samples: int = 100, seed: int = 0,
                 occlusion: bool = True, same_until: tuple[ContextView, int] | None = None) -> ContextView:
    """Rolling predictions, attention, forecast fan (n_samples > 0) and, with `occlusion`, the
    occlusion map of one context. The context and its N blanked versions run together, one
    forward pass per prefix length. same_until=(view, n): this context equals view's up to
    patch n, so its rolling predictions 0..n-1 are view's (causality) and are not recomputed."""
    cfg = model.config
    values = whole_patches(values, cfg.patch_size, cfg.context_length)
    rows = np.concatenate([values[None], _blanked(values, cfg.patch_size)]) if occlusion else values[None]
    first = 0 if same_until is None or occlusion else same_until[1]
    mu, sigma = _rolling(model, rows, mask, triangular=True, first=first)     # (R, N, P)
    if first:
        mu[0, :first] = same_until[0].mu[:first]
        if sigma is not None:
            sigma[0, :first] = same_until[0].sigma[:first]
    att = attention_weights(model, values, mask).mean(axis=1) if _has_attention(model) else None
    fan = sample_forecast(model, values, horizon_patches, n_samples, seed, mask) if n_samples else None
    occ = _occlusion(values, mu[0], mu[1:]) if occlusion else None
    return ContextView(values, mu[0], None if sigma is None else sigma[0], occ, att, fan)


@dataclass
class WhatIf:
    """The original and the edited context side by side."""
    original: ContextView
    edited: ContextView
    edit: Edit
    start: int                           # the first value the edit may change

    @property
    def attention_change(self) -> np.ndarray | None:
        """(layers, N, N) edited minus original attention, heads averaged."""
        if self.original.attention is None:
            return None
        return self.edited.attention - self.original.attention

    def next_patch_change(self) -> float:
        """RMS move of the forecast's next-patch mu, in series stds of the original."""
        d = self.edited.mu[-1] - self.original.mu[-1]
        return float(np.sqrt(np.mean(d ** 2)) / (self.original.values.std() or 1.0))


def what_if(model: PatchForecaster, values, edit: Edit, horizon_patches: int = 2,
            n_samples: int = 100, seed: int = 0, mask: torch.Tensor | None = None,
            original: ContextView | None = None) -> WhatIf:
    """Edit a context and compare everything the model says about it with the original (the
    occlusion map is the original's; pass `original` when it is already computed: only the
    edited context then runs)."""
    cfg = model.config
    values = whole_patches(values, cfg.patch_size, cfg.context_length)
    edited = apply_edit(values, edit, cfg.patch_size)
    args = (mask, horizon_patches, n_samples, seed)
    original = original or context_view(model, values, *args)
    start = edit_start(edit, cfg.patch_size)
    new = context_view(model, edited, *args, occlusion=False, same_until=(original, start // cfg.patch_size))
    return WhatIf(original, new, edit, start)


# ---------------------------------------------------------------- next-patch errors

@torch.no_grad()
def next_patch_mse(model: PatchForecaster, series: np.ndarray, mask: torch.Tensor | None = None,
                   first: np.ndarray | None = None) -> np.ndarray:
    """Per series (B,): normalized next-patch MSE of series (B, C + P), one forward pass as in
    training. first (B,): count only the predictions of patch >= first (say, a period in)."""
    cfg = model.config
    s = _tensor(model, np.atleast_2d(series))
    x, y = next_patch_pairs(s, cfg.patch_size)
    with eval_mode(model):
        pred = model(x, head_mask=mask)
    target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
    err = ((pred.mu - target) ** 2).mean(dim=-1).double().cpu().numpy()   # (B, N)
    if first is None:
        return err.mean(axis=1)
    predicted = np.arange(1, err.shape[1] + 1)                            # row n predicts patch n+1
    keep = predicted[None, :] >= np.asarray(first)[:, None]
    return (err * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)


def grammar_errors(model: PatchForecaster, mask: torch.Tensor | None = None) -> dict[str, float]:
    """The normalized next-patch MSE of each grammar case (as evaluate.grammar_eval measures it),
    through a head mask if given."""
    cfg = model.config
    cases = grammar_cases(cfg.context_length + cfg.patch_size)
    errors = next_patch_mse(model, np.stack(list(cases.values())), mask)
    return dict(zip(cases, errors.tolist()))


# ---------------------------------------------------------------- period-copy scores

def copy_source_weights(n_patches: int, patch_size: int, lag: float) -> np.ndarray:
    """(N, N) query x key: row q spreads 1 over the key patches that hold the values `lag` before
    the patch q + 1 that query q predicts (by overlap, so a lag that is not whole patches splits
    between two keys). A row is 0 where that window is not wholly in keys 0..q."""
    P, N = patch_size, n_patches
    out = np.zeros((N, N))
    for q in range(N):
        start = (q + 1) * P - lag                          # the source window [start, start + P)
        if start < 0 or start + P > (q + 1) * P:
            continue
        for j in range(N):
            overlap = min(start + P, (j + 1) * P) - max(start, j * P)
            if overlap > 0:
                out[q, j] = overlap / P
    return out


def lag_scores(attention: np.ndarray, patch_size: int, lag: float, queries: np.ndarray) -> np.ndarray:
    """(layers, heads): mean over `queries` of the attention mass on the copy source `lag` back.
    attention (layers, heads, N, N); queries whose source is outside the context are skipped."""
    w = copy_source_weights(attention.shape[-1], patch_size, lag)[queries]    # (Q, N)
    ok = w.sum(axis=1) > 0
    if not ok.any():
        return np.full(attention.shape[:2], np.nan)
    mass = np.einsum("lhqk,qk->lhq", attention[:, :, queries][:, :, ok], w[ok])
    return mass.mean(axis=-1)


@dataclass
class PeriodCopy:
    """Attention mass each head puts on the copy source one and two periods back."""
    one: np.ndarray           # (layers, heads)
    two: np.ndarray           # (layers, heads)
    chance: np.ndarray        # (layers, heads): what uniform attention over the past would give
    periods: np.ndarray       # (B,) the periods (values) it was measured on

    def ranked(self) -> list[dict]:
        """Every head, highest one-period score first."""
        L, H = self.one.shape
        rows = [{"layer": l, "head": h, "one period back": float(self.one[l, h]),
                 "two periods back": float(self.two[l, h]), "uniform": float(self.chance[l, h])}
                for l in range(L) for h in range(H)]
        return sorted(rows, key=lambda r: -np.nan_to_num(r["one period back"], nan=-1.0))

    def top_heads(self, k: int) -> list[tuple[int, int]]:
        return [(r["layer"], r["head"]) for r in self.ranked()[:k]]


def period_copy_scores(model: PatchForecaster, series: np.ndarray, periods: Sequence[float],
                       mask: torch.Tensor | None = None) -> PeriodCopy:
    """Period-copy score per head over series (B, >= C) of known periods (B,) in values.

    For each series, only the queries that have a whole copy source two periods back count, so
    the one- and two-period scores are measured on the same queries. Averaged over the series."""
    if not _has_attention(model):
        raise LabError(f"the {model.config.rung} rung has no attention")
    cfg = model.config
    P, C = cfg.patch_size, cfg.context_length
    one, two, chance = [], [], []
    series = np.atleast_2d(series)
    atts = attention_weights(model, series[:, :C], mask)                      # (B, L, H, N, N)
    for att, period in zip(atts, periods):
        N = att.shape[-1]
        queries = np.array([q for q in range(N) if (q + 1) * P - 2 * period >= 0])
        if len(queries) == 0:
            continue
        one.append(lag_scores(att, P, period, queries))
        two.append(lag_scores(att, P, 2 * period, queries))
        chance.append(np.full(att.shape[:2], np.mean(1.0 / (queries + 1))))
    if not one:
        raise LabError("no series is long enough to hold two periods before a predicted patch")
    return PeriodCopy(np.mean(one, axis=0), np.mean(two, axis=0), np.mean(chance, axis=0),
                      np.asarray(periods, dtype=float))


def periodic_suite(context_length: int, patch_size: int, seed: int = 0,
                   shapes: Sequence[str] = ("sine", "square", "sawtooth", "triangle")
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Clean periodic signals whose period is whole patches (2 to 5, as the context allows), one
    per shape and period, random phase, no noise: (B, C + P) values and (B,) periods in values.
    The extra patch at the end is the truth of the last prediction."""
    N = context_length // patch_size
    ks = [k for k in (2, 3, 4, 5) if 2 * k <= N] or [1]
    rng = np.random.default_rng(seed)
    t = np.arange(context_length + patch_size)
    rows, periods = [], []
    for k in ks:
        for shape in shapes:
            period = k * patch_size
            rows.append(wave(shape, t / period + rng.uniform(0, 1)))
            periods.append(float(period))
    return np.asarray(rows, dtype=np.float32), np.asarray(periods)


def control_suite(context_length: int, patch_size: int, seed: int = 0) -> np.ndarray:
    """Non-periodic signals (lines, steps, random walks): (B, C + P), the ablation's control."""
    rng = np.random.default_rng(seed)
    n = context_length + patch_size
    t = np.arange(n) / n
    rows = [a * t + b for a, b in rng.uniform(-3, 3, (4, 2))]
    rows += [np.where(np.arange(n) >= rng.integers(n // 4, 3 * n // 4), 1.0, 0.0) for _ in range(4)]
    rows += [np.cumsum(rng.normal(0, 0.1, n)) for _ in range(4)]
    return np.asarray(rows, dtype=np.float32)


@dataclass
class HeadEffects:
    """What switching each head off alone does: the periodic and the control error increase."""
    periodic: np.ndarray          # (layers, heads) next-patch MSE increase on periodic signals
    control: np.ndarray           # (layers, heads) the same on non-periodic signals
    base_periodic: float
    base_control: float
    top_vs_rest: dict[str, float]   # increase with the top-k copy heads off, and with k others off
    rank_correlation: float         # Spearman: copy score vs periodic damage, over heads


def _first_with_period(periods: np.ndarray, patch_size: int) -> np.ndarray:
    """Per series: the first predicted patch whose values one period back are in the input."""
    return np.ceil(periods / patch_size).astype(int)


def head_effects(model: PatchForecaster, copy: PeriodCopy, periodic: np.ndarray,
                 periods: np.ndarray, control: np.ndarray, k: int = 2) -> HeadEffects:
    """Ablate every head alone, then the top-k period-copy heads together against the k lowest,
    and measure the next-patch error on periodic series (B, C + P) and control series."""
    L, H = model.head_grid
    P = model.config.patch_size
    first = _first_with_period(periods, P)

    def errs(mask):
        return (float(next_patch_mse(model, periodic, mask, first).mean()),
                float(next_patch_mse(model, control, mask).mean()))

    base_p, base_c = errs(None)
    per, ctl = np.zeros((L, H)), np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            p, c = errs(head_mask((L, H), heads_off=[(l, h)]))
            per[l, h], ctl[l, h] = p - base_p, c - base_c
    ranked = [(r["layer"], r["head"]) for r in copy.ranked()]
    k = max(1, min(k, len(ranked) // 2))
    top = errs(head_mask((L, H), heads_off=ranked[:k]))[0] - base_p
    low = errs(head_mask((L, H), heads_off=ranked[-k:]))[0] - base_p
    return HeadEffects(per, ctl, base_p, base_c,
                       {f"top {k} copy heads off": top, f"lowest {k} copy heads off": low},
                       _spearman(copy.one.ravel(), per.ravel()))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


# ---------------------------------------------------------------- ablation

@dataclass
class MaskedView:
    """What the model does with some heads off (none: the intact model)."""
    off: list[tuple[int, int]]
    grammar: dict[str, float]       # grammar case -> normalized next-patch MSE
    periodic_mse: float             # on periodic_suite, predictions a period in
    copy: PeriodCopy | None         # None for a rung without attention
    fan: Forecast


def masked_view(model: PatchForecaster, values, mask: torch.Tensor | None = None,
                horizon_patches: int = 2, n_samples: int = 100, seed: int = 0) -> MaskedView:
    """Forecast, grammar-case errors, periodic error and period-copy scores through a mask."""
    cfg = model.config
    context = whole_patches(values, cfg.patch_size, cfg.context_length)
    suite, periods = periodic_suite(cfg.context_length, cfg.patch_size)
    first = _first_with_period(periods, cfg.patch_size)
    return MaskedView(
        heads_off(mask), grammar_errors(model, mask),
        float(next_patch_mse(model, suite, mask, first).mean()),
        period_copy_scores(model, suite, periods, mask) if _has_attention(model) else None,
        sample_forecast(model, context, horizon_patches, n_samples, seed, mask))


def ablation(model: PatchForecaster, values, mask: torch.Tensor, horizon_patches: int = 2,
             n_samples: int = 100, seed: int = 0) -> tuple[MaskedView, MaskedView]:
    """The intact model and the model through `mask`, side by side."""
    return (masked_view(model, values, None, horizon_patches, n_samples, seed),
            masked_view(model, values, mask, horizon_patches, n_samples, seed))


# ---------------------------------------------------------------- probes

FACTORS = ("family", "log2 period", "trend", "noise std", "amplitude")
"""What probes read. All but the family are in units of the series' own std (the model only ever
sees instance-normalized values), and the period only where the series has one."""
INPUT = "input patches"


def factor_targets(series: SeriesSet, context_length: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """factor -> (target (B,), which series carry it (B,) bool). family is an int class label."""
    scale = series.values[:, :context_length].std(axis=1).astype(np.float64) + 1e-9   # (B,)
    f = series.factors
    fam = series.families()
    names = sorted(set(fam))
    freq = np.array([x.freq for x in f])
    length = series.values.shape[1]
    period = np.where(freq > 0, length / np.maximum(freq, 1e-9), 1.0)
    amp = np.array([x.amplitude for x in f])
    everyone = np.ones(len(f), dtype=bool)
    return {
        "family": (np.array([names.index(x) for x in fam], dtype=float), everyone),
        "log2 period": (np.log2(period), freq > 0),
        "trend": (np.array([x.trend for x in f]) / scale, everyone),
        "noise std": (np.array([x.noise_std for x in f]) / scale, everyone),
        "amplitude": (amp / scale, amp > 0),
    }


@torch.no_grad()
def layer_features(model: PatchForecaster, values: np.ndarray, position: str = "last",
                   batch: int = 128) -> dict[str, np.ndarray]:
    """name -> (B, D) features per series: the input patches (normalized, flattened) and every
    hidden state (embeddings, block 0, ...) at the last position, or averaged over positions."""
    if position not in ("last", "mean"):
        raise LabError(f"position must be 'last' or 'mean', got {position!r}")
    cfg = model.config
    vals = np.stack([whole_patches(v, cfg.patch_size, cfg.context_length) for v in values])
    chunks: dict[str, list[np.ndarray]] = {}
    with eval_mode(model):
        for i in range(0, len(vals), batch):
            x = _tensor(model, vals[i:i + batch])                          # (b, C)
            patches = model.patchify(x)[0]                                 # (b, N, P)
            chunks.setdefault(INPUT, []).append(patches.flatten(1).double().cpu().numpy())
            for name, h in model.hidden_states(x):                         # (b, N, D)
                h = h[:, -1] if position == "last" else h.mean(dim=1)
                chunks.setdefault(name, []).append(h.double().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-8
    return (train - mu) / sd, (test - mu) / sd


def _ridge_path(X: np.ndarray, Y: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Ridge weights (D, T) for every alpha from one SVD of X (n, D) (centred Y (n, T))."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    UtY = U.T @ Y
    return [Vt.T @ ((s / (s * s + a))[:, None] * UtY) for a in alphas]


ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def ridge_probe(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray,
                alphas: Sequence[float] = ALPHAS) -> np.ndarray:
    """Ridge regression X -> Y (n, T) with alpha chosen on a quarter of the training rows;
    returns the predictions for X_test (m, T). Features are standardized on the training rows."""
    Xtr, Xte = _standardize(X_train, X_test)
    n = len(Xtr)
    cut = max(1, n // 4)
    ym = Y_train[cut:].mean(axis=0)
    paths = _ridge_path(Xtr[cut:], Y_train[cut:] - ym, alphas)
    val = [np.mean((Xtr[:cut] @ w + ym - Y_train[:cut]) ** 2) for w in paths]
    alpha = alphas[int(np.argmin(val))]
    ym = Y_train.mean(axis=0)
    w = _ridge_path(Xtr, Y_train - ym, [alpha])[0]
    return Xte @ w + ym


@dataclass
class ProbeScore:
    score: float       # held-out R2 (regression) or accuracy (family)
    chance: float      # 0 for R2, the majority class share for accuracy
    n_train: int
    n_test: int


def probe(X: np.ndarray, target: np.ndarray, classify: bool, test_fraction: float = 0.3,
          seed: int = 0, shuffle: bool = False) -> ProbeScore:
    """Fit a linear probe X (n, D) -> target (n,) on a random split and score it on the rest.
    shuffle=True permutes the labels first: a probe that still scores is reading noise."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(target) if shuffle else np.asarray(target, dtype=float)
    order = rng.permutation(len(y))
    n_test = max(2, int(round(test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    if classify:
        classes = np.unique(y[train])
        onehot = (y[train][:, None] == classes[None, :]).astype(float)
        pred = classes[np.argmax(ridge_probe(X[train], onehot, X[test]), axis=1)]
        counts = np.array([np.mean(y[test] == c) for c in np.unique(y)])
        return ProbeScore(float(np.mean(pred == y[test])), float(counts.max()), len(train), n_test)
    pred = ridge_probe(X[train], y[train, None], X[test])[:, 0]
    resid = np.sum((y[test] - pred) ** 2)
    total = np.sum((y[test] - y[test].mean()) ** 2) or 1.0
    return ProbeScore(float(1 - resid / total), 0.0, len(train), n_test)


@dataclass
class ProbeResults:
    """Held-out probe scores: features (input patches, embeddings, block 0, ...) x FACTORS."""
    features: list[str]
    factors: list[str]
    score: np.ndarray          # (features, factors): R2, or accuracy for the family
    chance: np.ndarray         # (factors,)
    n_series: int
    position: str
    shuffled: bool = False
    seconds: float = 0.0

    def table(self) -> list[dict]:
        return [{"features": f, **{k: float(self.score[i, j]) for j, k in enumerate(self.factors)}}
                for i, f in enumerate(self.features)]


def run_probes(model: PatchForecaster, series: SeriesSet, position: str = "last", seed: int = 0,
               shuffle: bool = False, progress: Progress | None = None,
               features: dict[str, np.ndarray] | None = None) -> ProbeResults:
    """A probe per (layer, factor) over the series' hidden states, with a raw-input baseline."""
    import time
    t0 = time.perf_counter()
    cfg = model.config
    if features is None:
        if progress:
            progress(0, 1, f"running {len(series)} series through the model")
        features = layer_features(model, series.values[:, :cfg.context_length], position)
    targets = factor_targets(series, cfg.context_length)
    names = list(features)
    score = np.full((len(names), len(FACTORS)), np.nan)
    chance = np.zeros(len(FACTORS))
    for i, name in enumerate(names):
        if progress:
            progress(i, len(names), f"probing {name}")
        for j, factor in enumerate(FACTORS):
            y, ok = targets[factor]
            if ok.sum() < 20 or np.ptp(y[ok]) == 0:
                continue
            r = probe(features[name][ok], y[ok], factor == "family", seed=seed, shuffle=shuffle)
            score[i, j], chance[j] = r.score, r.chance
    if progress:
        progress(len(names), len(names), "done")
    return ProbeResults(names, list(FACTORS), score, chance, len(series), position, shuffle,
                        time.perf_counter() - t0)


# ---------------------------------------------------------------- a map of the representations

@dataclass
class PCAMap:
    coords: np.ndarray          # (B, 2)
    explained: np.ndarray       # (2,) share of the variance
    families: np.ndarray        # (B,) str
    factors: dict[str, np.ndarray]   # factor -> (B,) in the units of factor_targets (NaN: none)
    layer: str


def pca(states: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(B, D) -> coordinates (B, k) on the top principal components and their variance shares."""
    X = states - states.mean(axis=0)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    var = s ** 2
    return U[:, :k] * s[:k], var[:k] / (var.sum() or 1.0)


def representation_map(model: PatchForecaster, series: SeriesSet, layer: str | None = None,
                       features: dict[str, np.ndarray] | None = None) -> PCAMap:
    """PCA of one layer's last-position states (default: the last block) over the series."""
    cfg = model.config
    features = features or layer_features(model, series.values[:, :cfg.context_length])
    layer = layer or [n for n in features if n != INPUT][-1]
    coords, explained = pca(features[layer])
    targets = factor_targets(series, cfg.context_length)
    factors = {k: np.where(ok, y, np.nan) for k, (y, ok) in targets.items() if k != "family"}
    return PCAMap(coords, explained, series.families(), factors, layer)


def family_separation(coords: np.ndarray, families: np.ndarray) -> dict[tuple[str, str], float]:
    """Per pair of families: accuracy of telling them apart in the map by the nearer centroid
    (0.5 = mixed up, 1.0 = apart)."""
    names = sorted(set(families))
    cent = {f: coords[families == f].mean(axis=0) for f in names}
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pts = coords[(families == a) | (families == b)]
            lab = families[(families == a) | (families == b)]
            near_a = np.linalg.norm(pts - cent[a], axis=1) < np.linalg.norm(pts - cent[b], axis=1)
            out[(a, b)] = float(np.mean(near_a == (lab == a)))
    return out


# ---------------------------------------------------------------- across training

@dataclass
class TrainingCurve:
    """The skills at each weight snapshot of a run."""
    steps: list[int]
    copy_score: list[float]        # the best head's one-period-back score
    family_accuracy: list[float]   # last layer's family probe, held out
    period_r2: list[float]         # last layer's period probe, held out
    chance: float                  # the family probe's chance level
    extra: dict = field(default_factory=dict)


def snapshot_model(config: ModelConfig, state_dict: dict) -> PatchForecaster:
    """A fresh eval-mode model with a snapshot's weights (the run's own model is not touched)."""
    model = build_model(config)
    model.load_state_dict(state_dict)
    return model.eval()


def across_training(config: ModelConfig, snapshots: Sequence[tuple[int, dict]], series: SeriesSet,
                    progress: Progress | None = None) -> TrainingCurve:
    """Period-copy score and probe accuracy at each (step, state_dict) snapshot of a run."""
    if not snapshots:
        raise LabError("the run has no weight snapshots yet: train it for a few steps first")
    suite, periods = periodic_suite(config.context_length, config.patch_size)
    targets = factor_targets(series, config.context_length)
    steps, copy, acc, r2 = [], [], [], []
    chance = 0.0
    for i, (step, state) in enumerate(snapshots):
        if progress:
            progress(i, len(snapshots), f"snapshot at step {step}")
        model = snapshot_model(config, state)
        feats = layer_features(model, series.values[:, :config.context_length])
        last = feats[[n for n in feats if n != INPUT][-1]]
        steps.append(int(step))
        copy.append(float(np.nanmax(period_copy_scores(model, suite, periods).one))
                    if _has_attention(model) else math.nan)
        fam = probe(last, targets["family"][0], classify=True)
        acc.append(fam.score)
        chance = fam.chance
        y, ok = targets["log2 period"]
        r2.append(probe(last[ok], y[ok], classify=False).score if ok.sum() >= 20 else math.nan)
    if progress:
        progress(len(snapshots), len(snapshots), "done")
    return TrainingCurve(steps, copy, acc, r2, chance)


def run_snapshots(trainer) -> list[tuple[int, dict]]:
    """A Trainer's weight snapshots as (step, state_dict), oldest first ([] when it keeps none)."""
    return list(getattr(trainer, "weight_snapshots", None) or [])
