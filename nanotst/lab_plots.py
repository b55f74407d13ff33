"""Plotly figure builders for the Inside page: plain arrays in, a `go.Figure` out (no torch, no
streamlit). Every axis is labelled. Side-by-side panels share one figure so a redraw sends one
chart; float arrays go out as float32."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import LAYOUT, PALETTE

ORIGINAL, EDITED = "#7f7f7f", "#E45756"
BAND = {95: 0.12, 80: 0.2, 50: 0.32}
FAN_RGB = {"original": "76,120,168", "edited": "228,87,86", "intact": "76,120,168", "ablated": "245,133,24"}
ZERO_GREY = "#d9d9d9"


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _layout(fig: go.Figure, title: str, legend_below: bool = False, **kw) -> go.Figure:
    if legend_below:   # many legend entries: below the plot, clear of the title and panel titles
        kw = {"legend": dict(orientation="h", x=0, xanchor="left", y=-0.22, yanchor="top"),
              "margin": dict(l=60, r=20, t=70, b=120), **kw}
    fig.update_layout(**{**LAYOUT, "title": dict(text=title), **kw})
    return fig


def fan_bands(fc) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """A forecast's 95/80/50% bands {level: (lo, hi)} and its median, as the fan figures take them."""
    return {lv: fc.interval(lv / 100) for lv in (95, 80, 50)}, fc.median


def _band(fig, x, lo, hi, rgb: str, alpha: float, name: str, row=None, col=None, show=True, group=None):
    x = _f32(x)
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=_f32(np.concatenate([hi, lo[::-1]])),
                             fill="toself", fillcolor=f"rgba({rgb},{alpha})", line=dict(width=0),
                             name=name, hoverinfo="skip", showlegend=show, legendgroup=group or name),
                  row=row, col=col)


def _fan(fig, t0: int, intervals: Mapping[int, tuple[np.ndarray, np.ndarray]], median: np.ndarray,
         rgb: str, label: str, row=None, col=None, show=True) -> None:
    """Bands {50/80/95: (lo, hi)} and the median from t0 on."""
    x = np.arange(t0, t0 + len(median))
    for level in sorted(intervals, reverse=True):
        lo, hi = intervals[level]
        _band(fig, x, lo, hi, rgb, BAND.get(level, 0.2), f"{label} {level}% band", row, col, show,
              group=f"{label}{level}")
    fig.add_trace(go.Scatter(x=x.astype(np.int32), y=_f32(median), name=f"{label} median",
                             line=dict(color=f"rgb({rgb})", width=2), legendgroup=f"{label}median",
                             showlegend=show), row=row, col=col)


def what_if_figure(original: np.ndarray, edited: np.ndarray, mu: tuple[np.ndarray, np.ndarray],
                   sigma: tuple[np.ndarray, np.ndarray] | None,
                   fans: tuple[Mapping, Mapping], medians: tuple[np.ndarray, np.ndarray],
                   start: int, patch_size: int, show_last: int = 256) -> go.Figure:
    """Original | edited, side by side: the context, the rolling next-patch mu with +-2 sigma
    (each patch predicted from the values before it alone) and the forecast fan after it.
    fans: per side {50/80/95: (lo, hi)}; mu, sigma: (N, P) per side; start: first edited value."""
    C = len(original)
    x0 = max(0, C - show_last)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("original context", "edited context"))
    for col, (values, m, key) in enumerate(((original, mu[0], "original"), (edited, mu[1], "edited")), 1):
        show = col == 1
        t = np.arange(x0, C)
        if col == 2:
            fig.add_trace(go.Scatter(x=t.astype(np.int32), y=_f32(original[x0:]), name="original values",
                                     line=dict(color=ZERO_GREY, width=1), showlegend=True), row=1, col=2)
        fig.add_trace(go.Scatter(x=t.astype(np.int32), y=_f32(values[x0:]), name="context",
                                 line=dict(color="#333333", width=1.2), showlegend=show,
                                 legendgroup="context"), row=1, col=col)
        pred = m[:-1].ravel()                          # rows 0..N-2 predict patches 1..N-1
        tp = np.arange(patch_size, patch_size + len(pred))
        keep = tp >= x0
        if sigma is not None:
            s = sigma[col - 1][:-1].ravel()
            _band(fig, tp[keep], (pred - 2 * s)[keep], (pred + 2 * s)[keep], "228,87,86", 0.15,
                  "next-patch μ ± 2σ", 1, col, show, group="mu_band")
        fig.add_trace(go.Scatter(x=tp[keep].astype(np.int32), y=_f32(pred[keep]), name="next-patch μ",
                                 line=dict(color=EDITED, width=1, dash="dot"), showlegend=show,
                                 legendgroup="mu"), row=1, col=col)
        _fan(fig, C, fans[col - 1], medians[col - 1], FAN_RGB["original"], "forecast", 1, col, show)
        if col == 2:
            fig.add_vline(x=start, line=dict(color=EDITED, dash="dash", width=1), row=1, col=2)
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text="value", col=1)
    return _layout(fig, "Next-patch μ and σ and the forecast fan: original | edited", legend_below=True,
                   height=480)


def attention_change_figure(change: np.ndarray, patch_size: int) -> go.Figure:
    """(layers, N, N) edited minus original attention (heads averaged), one tile per layer,
    blue = less, red = more; the masked future is left blank."""
    L, N, _ = change.shape
    fig = make_subplots(rows=1, cols=L, shared_yaxes=True, horizontal_spacing=0.02,
                        subplot_titles=[f"layer {i}" for i in range(L)])
    lim = float(np.abs(change).max()) or 1e-6
    future = np.triu(np.ones((N, N), dtype=bool), 1)
    for i in range(L):
        z = np.where(future, np.nan, change[i])
        fig.add_trace(go.Heatmap(z=_f32(z), zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True,
                                 showscale=i == L - 1, colorbar=dict(title="Δ weight"),
                                 hovertemplate="query %{y}, key %{x}: %{z:.3f}<extra></extra>"),
                      row=1, col=i + 1)
    fig.update_xaxes(title_text="key patch")
    fig.update_yaxes(title_text="query patch (predicting)", col=1, autorange="reversed")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Change in attention (edited − original, heads averaged)", height=320)


def occlusion_figure(occlusion: np.ndarray, patch_size: int) -> go.Figure:
    """(N, N) occlusion map (query x blanked patch), and its last row: what moves the forecast."""
    N = occlusion.shape[0]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.1,
                        subplot_titles=("every query", "the forecast (last query)"))
    z = np.where(np.triu(np.ones((N, N), dtype=bool), 1), np.nan, occlusion)
    fig.add_trace(go.Heatmap(z=_f32(z), colorscale="Viridis", colorbar=dict(title="move", x=0.42),
                             hovertemplate="query %{y}, blanked patch %{x}: %{z:.3f}<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=np.arange(N).astype(np.int32), y=_f32(occlusion[-1]), marker_color=PALETTE[0],
                         name="forecast moves", showlegend=False,
                         hovertemplate="patch %{x}: %{y:.3f}<extra></extra>"), row=1, col=2)
    fig.update_yaxes(title_text="query patch (predicting)", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="blanked patch", row=1, col=1)
    fig.update_xaxes(title_text=f"blanked patch ({patch_size} values each)", row=1, col=2)
    fig.update_yaxes(title_text="RMS move (series stds)", row=1, col=2)
    return _layout(fig, "Occlusion: how far each prediction moves when one past patch is blanked",
                   height=340)


def ablation_fan_figure(context: np.ndarray, fans: tuple[Mapping, Mapping],
                        medians: tuple[np.ndarray, np.ndarray], show_last: int = 256,
                        title: str = "Forecast: intact model vs heads switched off") -> go.Figure:
    """The context's end and two forecasts over it: the intact model's and the ablated one's."""
    C = len(context)
    x0 = max(0, C - show_last)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.arange(x0, C).astype(np.int32), y=_f32(context[x0:]), name="context",
                             line=dict(color="#333333", width=1.2)))
    for (label, rgb), bands, med in zip((("intact", FAN_RGB["intact"]), ("ablated", FAN_RGB["ablated"])),
                                        fans, medians):
        _fan(fig, C, {k: v for k, v in bands.items() if k == 80}, med, rgb, label)
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text="value")
    return _layout(fig, title, legend_below=True, height=420)


def grammar_errors_figure(intact: Mapping[str, float], ablated: Mapping[str, float],
                          periodic: tuple[float, float] | None = None) -> go.Figure:
    """Next-patch MSE per grammar case (and the periodic suite), intact vs ablated, log scale."""
    names = list(intact) + (["periodic suite"] if periodic else [])
    a = [intact[n] for n in intact] + ([periodic[0]] if periodic else [])
    b = [ablated[n] for n in intact] + ([periodic[1]] if periodic else [])
    fig = go.Figure([go.Bar(x=names, y=_f32(np.maximum(a, 1e-8)), name="intact", marker_color=PALETTE[0]),
                     go.Bar(x=names, y=_f32(np.maximum(b, 1e-8)), name="heads off", marker_color=PALETTE[1])])
    fig.update_yaxes(type="log", title_text="next-patch MSE (normalized)")
    fig.update_xaxes(title_text="signal")
    return _layout(fig, "Next-patch error on each grammar case", barmode="group")


def head_heatmap_figure(scores: np.ndarray, title: str, colorbar: str = "attention mass",
                        off: Sequence[tuple[int, int]] = (), zmax: float | None = None) -> go.Figure:
    """A layer x head grid of one number per head, written in each cell; heads that are off
    are blank."""
    L, H = scores.shape
    z = np.array(scores, dtype=float)
    for l, h in off:
        z[l, h] = np.nan
    text = [["off" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=_f32(z), x=[f"head {h}" for h in range(H)], y=[f"layer {l}" for l in range(L)],
                               text=text, texttemplate="%{text}", colorscale="Blues", zmin=0,
                               zmax=zmax, colorbar=dict(title=colorbar),
                               hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(title_text="layer", autorange="reversed")
    fig.update_xaxes(title_text="head")
    return _layout(fig, title, height=320)


def copy_vs_damage_figure(copy_one: np.ndarray, periodic: np.ndarray, control: np.ndarray) -> go.Figure:
    """One point per head: its period-copy score against how much switching it off alone raises
    the next-patch error on periodic signals (and, as a control, on non-periodic ones)."""
    L, H = copy_one.shape
    labels = [f"L{l}H{h}" for l in range(L) for h in range(H)]
    fig = go.Figure()
    for y, name, color in ((periodic, "periodic signals", PALETTE[0]), (control, "non-periodic (control)", PALETTE[5])):
        fig.add_trace(go.Scatter(x=_f32(copy_one.ravel()), y=_f32(y.ravel()), mode="markers+text",
                                 text=labels if name.startswith("periodic") else None,
                                 textposition="top center", name=name, marker=dict(color=color, size=9)))
    fig.update_xaxes(title_text="period-copy score (attention mass one period back)")
    fig.update_yaxes(title_text="error increase with this head off")
    return _layout(fig, "Do the period-copy heads carry the periodic forecasts?")


def probe_figure(features: Sequence[str], factors: Sequence[str], score: np.ndarray,
                 chance: np.ndarray, shuffled: np.ndarray | None = None) -> go.Figure:
    """Held-out probe scores per layer: R² of each regressed factor (left) and the family
    accuracy against its chance level (right); 'input patches' is the raw-input baseline."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=("factors (held-out R²)", "family (held-out accuracy)"))
    x = list(features)
    for j, name in enumerate(factors):
        col = 2 if name == "family" else 1
        color = PALETTE[j % len(PALETTE)]
        fig.add_trace(go.Scatter(x=x, y=_f32(score[:, j]), mode="lines+markers", name=name,
                                 line=dict(color=color)), row=1, col=col)
        if shuffled is not None:
            fig.add_trace(go.Scatter(x=x, y=_f32(shuffled[:, j]), mode="lines", name=f"{name}, shuffled labels",
                                     line=dict(color=color, dash="dot", width=1), showlegend=col == 2),
                          row=1, col=col)
        if name == "family":
            fig.add_trace(go.Scatter(x=x, y=_f32(np.full(len(x), chance[j])), mode="lines",
                                     name="chance (majority family)", line=dict(color="#999999", dash="dash")),
                          row=1, col=2)
    fig.update_yaxes(title_text="R² on held-out series", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1], row=1, col=2)
    fig.update_xaxes(title_text="what the probe reads")
    return _layout(fig, "What each layer knows: linear probes", height=420)


def pca_figure(coords: np.ndarray, explained: np.ndarray, color_by: str, labels: np.ndarray | None = None,
               values: np.ndarray | None = None, layer: str = "") -> go.Figure:
    """The series on the first two principal components, one colour per family (labels) or a
    colour scale of a factor (values; NaN: the series has no such factor, drawn grey)."""
    fig = go.Figure()
    c = _f32(coords)
    if labels is not None:
        palette = PALETTE + ("#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2",
                             "#7F7F7F", "#BCBD22", "#17BECF", "#393B79", "#637939", "#8C6D31")
        for i, name in enumerate(sorted(set(labels))):
            sel = labels == name
            fig.add_trace(go.Scatter(x=c[sel, 0], y=c[sel, 1], mode="markers", name=str(name),
                                     marker=dict(size=6, color=palette[i % len(palette)])))
    else:
        has = np.isfinite(values)
        fig.add_trace(go.Scatter(x=c[~has, 0], y=c[~has, 1], mode="markers", name=f"no {color_by}",
                                 marker=dict(size=5, color=ZERO_GREY)))
        fig.add_trace(go.Scatter(x=c[has, 0], y=c[has, 1], mode="markers", name=color_by,
                                 marker=dict(size=6, color=_f32(values[has]), colorscale="Viridis",
                                             showscale=True, colorbar=dict(title=color_by))))
    fig.update_xaxes(title_text=f"PC 1 ({100 * explained[0]:.0f}% of the variance)")
    fig.update_yaxes(title_text=f"PC 2 ({100 * explained[1]:.0f}%)")
    return _layout(fig, f"{layer}: the series' last-position states, PCA, coloured by {color_by}",
                   height=480, legend=dict(orientation="v", x=1.02, y=1))


def training_curve_figure(steps: Sequence[int], copy_score: Sequence[float],
                          family_accuracy: Sequence[float], period_r2: Sequence[float],
                          chance: float) -> go.Figure:
    """Skills at each weight snapshot of a run: the best head's period-copy score, the last
    layer's family accuracy (with its chance level) and period R², against the training step."""
    x = np.asarray(steps, dtype=np.int32)
    fig = go.Figure([
        go.Scatter(x=x, y=_f32(copy_score), mode="lines+markers", name="period-copy score (best head)",
                   line=dict(color=PALETTE[0])),
        go.Scatter(x=x, y=_f32(family_accuracy), mode="lines+markers", name="family probe accuracy",
                   line=dict(color=PALETTE[1])),
        go.Scatter(x=x, y=_f32(period_r2), mode="lines+markers", name="period probe R²",
                   line=dict(color=PALETTE[2])),
        go.Scatter(x=x, y=_f32(np.full(len(x), chance)), mode="lines", name="family chance",
                   line=dict(color="#999999", dash="dash"))])
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="score")
    return _layout(fig, "When the skills appear during training")
