"""Looking inside: attention maps, attention rollout, and where a prediction looks.

Everything here takes a model and a 1-D series (or the AttentionMaps they give) and returns
plain numpy arrays and small dataclasses, ready to plot. Weights are query x key.

One numbering everywhere: patches are numbered 0..N-1 by the values they read (patch 0 is the
oldest). The query row of patch n is where the prediction of the patch after it comes from, so
the last row (patch N-1) is what the forecast's first patch draws on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .evaluate import whole_patches
from .forecast import averaged_seasons, prepare_context, season_source
from .model import PatchForecaster, eval_mode


class InspectError(ValueError):
    """The model or series cannot be inspected this way; the message says why."""


@dataclass
class AttentionMaps:
    """Attention weights of one series, every layer and head."""
    weights: np.ndarray                  # (layers, heads, N, N) query x key, rows sum to 1
    patch_ranges: list[tuple[int, int]]  # patch n covers series[start:end] of the series given
    causal: bool                         # True: a patch never attends to later patches
    context: np.ndarray                  # (C,) the values the model saw (it pads them to N * P)
    start: int                           # where patch 0 starts in the series given (< 0: padding)

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]

    @property
    def n_patches(self) -> int:
        return self.weights.shape[2]

    def head_mean(self) -> np.ndarray:
        """(layers, N, N) weights averaged over heads."""
        return self.weights.mean(axis=1)


@torch.no_grad()
def attention_maps(model: PatchForecaster, series) -> AttentionMaps:
    """Run the model once on the most recent context_length values and keep its attention."""
    cfg = model.config
    if cfg.rung == "linear":
        raise InspectError("the linear rung has no attention: it maps each patch to the next "
                           "on its own; pick the attention rung or later")
    try:
        context, padded, truncated = prepare_context(series, cfg.patch_size, cfg.context_length)
    except ValueError as err:
        raise InspectError(str(err)) from None
    x = torch.as_tensor(context, dtype=torch.float32, device=next(model.parameters()).device)
    with eval_mode(model):
        pred = model(x[None], need_attention=True)
    if not pred.attention or any(a is None for a in pred.attention):
        raise InspectError(f"the {cfg.rung} model returned no attention weights")
    weights = torch.stack([a[0] for a in pred.attention]).double().cpu().numpy()  # (Lyr, H, N, N)
    offset = truncated - padded
    P = cfg.patch_size
    ranges = [(offset + n * P, offset + (n + 1) * P) for n in range(weights.shape[-1])]
    return AttentionMaps(weights, ranges, cfg.causal, context, offset)


def attention_rollout(maps: AttentionMaps) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): (N, N), how much each query draws on each input.

    Per layer: average the heads, add the identity for the residual path, renormalize rows;
    then multiply the layers through, first layer on the right. Rows sum to 1.
    """
    n = maps.n_patches
    rollout = np.eye(n)
    for layer in maps.head_mean():
        a = layer + np.eye(n)
        a = a / a.sum(axis=-1, keepdims=True)
        rollout = a @ rollout
    return rollout


def top_sources(maps: AttentionMaps, k: int = 3, layer: int = -1,
                head: int | None = None) -> list[list[tuple[int, float]]]:
    """Per query patch, its k most attended key patches as (key index, weight), strongest first.

    Averages the heads unless `head` is given. A causal map only lists keys up to the query, so
    early queries have fewer than k sources.
    """
    layer_maps = maps.weights[layer]
    w = layer_maps.mean(axis=0) if head is None else layer_maps[head]
    out = []
    for q, row in enumerate(w):
        keys = np.arange(q + 1) if maps.causal else np.arange(len(row))
        order = keys[np.argsort(-row[keys], kind="stable")][:k]
        out.append([(int(j), float(row[j])) for j in order])
    return out


def format_top_sources(maps: AttentionMaps, k: int = 3, layer: int = -1) -> list[str]:
    """The original's printout: one line per query patch with its top-k sources."""
    lines = []
    for q, sources in enumerate(top_sources(maps, k, layer)):
        listed = ", ".join(f"patch {j} ({w:.2f})" for j, w in sources)
        lines.append(f"patch {q} attends to {listed}")
    return lines


@dataclass
class LastPredictionSources:
    """Where the prediction after the last patch comes from: weight of every patch."""
    per_layer: np.ndarray                # (layers, N) last query's row, mean over heads
    rollout: np.ndarray                  # (N,) last row of the attention rollout
    patch_ranges: list[tuple[int, int]]


def last_prediction_sources(maps: AttentionMaps) -> LastPredictionSources:
    """The weight of every past patch for the last query, per layer and rolled out."""
    return LastPredictionSources(maps.head_mean()[:, -1, :], attention_rollout(maps)[-1],
                                 list(maps.patch_ranges))


# ---------------------------------------------------------------- what the Attention page shows

@dataclass
class AttentionAnalysis:
    maps: np.ndarray            # (L, H, N, N) query x key
    rollout: np.ndarray         # (N, N) attention flow through all layers (residual included)
    last_sources: np.ndarray    # (N,) what the last prediction draws on (rollout row)
    last_per_layer: np.ndarray  # (L, N) the last query's row per layer, heads averaged
    top: list                   # per query patch: [(key patch, weight), ...] (last layer, heads averaged)
    values: np.ndarray          # the series the model saw
    causal: bool


def attention_analysis(model: PatchForecaster, values: np.ndarray, k: int = 3) -> AttentionAnalysis | None:
    """Everything the Attention page shows; None for the linear rung."""
    try:
        maps = attention_maps(model, values)
    except InspectError:
        if model.config.rung == "linear":
            return None
        raise
    last = last_prediction_sources(maps)
    return AttentionAnalysis(maps=maps.weights, rollout=attention_rollout(maps),
                             last_sources=last.rollout, last_per_layer=last.per_layer,
                             top=top_sources(maps, k), values=maps.context, causal=maps.causal)


def query_sources(a: AttentionAnalysis, query: int, layer: int | None = None,
                  without_sink: bool = False) -> np.ndarray:
    """(N,) how much query patch `query` draws on each patch: one layer's weights averaged over
    heads, or the rollout through every layer (layer None). without_sink: patch 0's share set to
    0 and the rest renormalized (patch 0 is where heads with nothing to look for park weight)."""
    w = (a.rollout[query] if layer is None else a.maps[layer, :, query].mean(axis=0)).copy()
    if without_sink and query > 0:
        w[0] = 0.0
        w = w / max(w.sum(), 1e-12)
    return w


@torch.no_grad()
def attention_scores(model: PatchForecaster, values, layer: int, head: int) -> np.ndarray:
    """(N, N) query·key scores of one head before the softmax (NaN where a causal query may not
    look): where the attention weights come from."""
    context, _, _ = prepare_context(values, model.config.patch_size, model.config.context_length)
    x = torch.as_tensor(context, dtype=torch.float32, device=next(model.parameters()).device)[None]
    with eval_mode(model):
        scores = model.attention_scores(x, layer)[0, head].double().cpu().numpy()
    scores[~np.isfinite(scores)] = np.nan
    return scores


@dataclass
class SeasonCopy:
    """What a model with config.seasonal_patch copies: the lag (values back) every token's seasonal
    patch reads, and each query patch's gate (0: ignores it; 1: adds all of it to its mu)."""
    lag: int
    gates: np.ndarray        # (N,) one per query patch, patch 0 the oldest
    start: int               # where patch 0 starts in the values the model saw (< 0: padding)
    seasons: np.ndarray      # (N,) how many seasons back each query patch's seasonal patch averages


@torch.no_grad()
def season_copy(model: PatchForecaster, values) -> SeasonCopy | None:
    """The season a model copies on these values; None for a model without the seasonal patch."""
    if not model.config.seasonal_patch or model.config.rung == "linear":
        return None
    context, padded, _ = prepare_context(values, model.config.patch_size, model.config.context_length)
    x = torch.as_tensor(context, dtype=torch.float32, device=next(model.parameters()).device)[None]
    with eval_mode(model):
        patches, mask, _, _ = model.patchify(x)
        lag = model.season_lag(patches, mask)
        gates = model.season_gates(x)[0].double().cpu().numpy()
        seasons = model.seasons_averaged(patches, mask, lag)[0].cpu().numpy()
    return SeasonCopy(int(lag[0]), gates, -padded, seasons)


def top_sources_rows(a: AttentionAnalysis, patch_size: int) -> list[dict]:
    rows = []
    for q, sources in enumerate(a.top):
        row = {"query patch": q, "reads t": f"{q * patch_size}–{(q + 1) * patch_size - 1}",
               "predicts t": f"{(q + 1) * patch_size}–{(q + 2) * patch_size - 1}"}
        for i, (j, w) in enumerate(sources, 1):
            row[f"source {i}"] = f"patch {j} ({w:.2f})"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- the Overview's pipeline

@dataclass
class Stage:
    name: str
    shape: str
    array: np.ndarray       # 1-D or 2-D, batch dimension dropped
    note: str = ""


@torch.no_grad()
def pipeline_stages(model: PatchForecaster, values: np.ndarray) -> list[Stage]:
    """Every intermediate tensor of one forward pass, for the Overview's pipeline."""
    cfg = model.config
    x = torch.as_tensor(whole_patches(model, values)).unsqueeze(0)
    patches, mask, loc, scale = model.patchify(x)
    N, P = patches.shape[1:]
    fmt = lambda t: "×".join(str(s) for s in t.shape[1:])  # noqa: E731
    stages = [Stage("raw series", str(x.shape[1]), x[0].numpy(), "the values as given"),
              Stage("normalized", str(x.shape[1]), ((x - loc) / scale)[0].numpy(),
                    f"(x − {float(loc):.3g}) / {float(scale):.3g}: mean 0, std 1"),
              Stage("patches", f"{N}×{P}", patches[0].numpy(), f"{N} tokens of {P} values")]
    if cfg.seasonal_patch and cfg.rung != "linear":
        lag = model.season_lag(patches, mask)
        season, _ = model.season_inputs(patches, mask, lag=lag)
        moved = (f" ({averaged_seasons(cfg)})" if averaged_seasons(cfg) else "") \
            + (", moved to the token's level" if cfg.seasonal_level else "")
        stages.append(Stage("seasonal patches", f"{N}×{P}", season[0].numpy(),
                            f"row n: {season_source(int(lag), P)} patch n+1{moved}; the embedding "
                            f"reads them, and a gate copies a share into μ"))
    where = {"learned": ", plus a learned position", "rope": ", positions are rotary (in attention)",
             "both": ", plus a learned position; rotary positions in attention too"}
    notes = {"embeddings": f"each patch → {cfg.d_model} numbers"
                           + (where[cfg.position] if cfg.rung in ("transformer", "nanotst") else ""),
             "attention": "one causal attention head"}
    for name, h in model.hidden_states(x):
        stages.append(Stage(name, fmt(h), h[0].numpy(),
                            notes.get(name, "attention mixes earlier patches in, then a GELU FFN")))
    pred = model(x)
    stages.append(Stage("μ (next patch)", fmt(pred.mu), pred.mu[0].numpy(),
                        "row n is the predicted patch n+1"))
    if pred.sigma is not None:
        stages.append(Stage("σ (next patch)", fmt(pred.sigma), pred.sigma[0].numpy(),
                            "the model's uncertainty for each value"))
    return stages
