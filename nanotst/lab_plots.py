"""Plotly figure builders for the Inside page: plain arrays in, a `go.Figure` out (no torch, no
streamlit). Every axis is labelled. Side-by-side panels share one figure so a redraw sends one
chart. Figures are built from plain dicts in one go (a tenth of the time of add_trace and
make_subplots, which matters for a redraw within 300 ms); float arrays go out as float32."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .plots import PALETTE, dict_figure

ORIGINAL, EDITED = "#7f7f7f", "#E45756"
BAND = {95: 0.12, 80: 0.2, 50: 0.32}
FAN_RGB = {"original": "76,120,168", "edited": "228,87,86", "intact": "76,120,168", "ablated": "245,133,24"}
ZERO_GREY = "#d9d9d9"


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _i32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int32)


def _ax(i: int, kind: str = "x") -> str:
    """Trace reference of panel i (0-based): 'x', 'x2', ..."""
    return kind if i == 0 else f"{kind}{i + 1}"


def _panels(titles: Sequence[str], x_title, y_title: str, widths: Sequence[float] | None = None,
            gap: float = 0.06, share_y: bool = False, **y_kw) -> dict:
    """Layout entries for len(titles) panels side by side: axes with their domains and titles
    (x_title: one for all or one per panel), and the panel titles as annotations."""
    n = len(titles)
    widths = np.asarray(widths if widths is not None else [1.0] * n, dtype=float)
    widths = widths / widths.sum() * (1 - gap * (n - 1))
    layout, notes, left = {}, [], 0.0
    xt = [x_title] * n if isinstance(x_title, str) else list(x_title)
    for i in range(n):
        dom = [left, left + widths[i]]
        layout[_ax(i, "xaxis")] = dict(domain=dom, anchor=_ax(i, "y"), title=dict(text=xt[i]))
        y = dict(anchor=_ax(i, "x"), **y_kw)
        if i == 0 or not share_y:
            y["title"] = dict(text=y_title if isinstance(y_title, str) else y_title[i])
        if i > 0 and share_y:
            y.update(matches="y", showticklabels=False)
        layout[_ax(i, "yaxis")] = y
        if titles[i]:
            notes.append(dict(text=titles[i], x=sum(dom) / 2, y=1.0, xref="paper", yref="paper",
                              xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
        left = dom[1] + gap
    if notes:
        layout["annotations"] = notes
    return layout


def _figure(traces: list[dict], title: str, axes: dict, legend_below: bool = False, **kw) -> go.Figure:
    layout = {"title": dict(text=title), **axes, **kw}
    if legend_below:   # many legend entries: below the plot, clear of the title and panel titles
        layout.update(legend=dict(orientation="h", x=0, xanchor="left", y=-0.22, yanchor="top"),
                      margin=dict(l=60, r=20, t=70, b=120))
    return dict_figure(traces, layout)


def fan_bands(fc) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """A forecast's 95/80/50% bands {level: (lo, hi)} and its median, as the fan figures take them."""
    return {lv: fc.interval(lv / 100) for lv in (95, 80, 50)}, fc.median


def _band(x, lo, hi, rgb: str, alpha: float, name: str, panel: int = 0, show: bool = True,
          group: str | None = None) -> dict:
    x = _f32(x)
    return dict(type="scatter", x=np.concatenate([x, x[::-1]]), y=_f32(np.concatenate([hi, lo[::-1]])),
                fill="toself", fillcolor=f"rgba({rgb},{alpha})", line=dict(width=0), name=name,
                hoverinfo="skip", showlegend=show, legendgroup=group or name,
                xaxis=_ax(panel), yaxis=_ax(panel, "y"))


def _line(x, y, name: str, panel: int = 0, show: bool = True, group: str | None = None, **kw) -> dict:
    return dict(type="scatter", x=x, y=_f32(y), name=name, showlegend=show, legendgroup=group or name,
                xaxis=_ax(panel), yaxis=_ax(panel, "y"), **kw)


def _fan(t0: int, intervals: Mapping[int, tuple[np.ndarray, np.ndarray]], median: np.ndarray,
         rgb: str, label: str, panel: int = 0, show: bool = True) -> list[dict]:
    """Bands {50/80/95: (lo, hi)} and the median from t0 on."""
    x = np.arange(t0, t0 + len(median))
    out = [_band(x, lo, hi, rgb, BAND.get(level, 0.2), f"{label} {level}% band", panel, show,
                 group=f"{label}{level}") for level, (lo, hi) in sorted(intervals.items(), reverse=True)]
    out.append(_line(_i32(x), median, f"{label} median", panel, show, line=dict(color=f"rgb({rgb})", width=2)))
    return out


def what_if_figure(original: np.ndarray, edited: np.ndarray, mu: tuple[np.ndarray, np.ndarray],
                   sigma: tuple[np.ndarray, np.ndarray] | None,
                   fans: tuple[Mapping, Mapping], medians: tuple[np.ndarray, np.ndarray],
                   start: int, patch_size: int, show_last: int = 256) -> go.Figure:
    """Original | edited, side by side: the context, the rolling next-patch mu with +-2 sigma
    (each patch predicted from the values before it alone) and the forecast fan after it.
    fans: per side {50/80/95: (lo, hi)}; mu, sigma: (N, P) per side; start: first edited value."""
    C = len(original)
    x0 = max(0, C - show_last)
    t = _i32(np.arange(x0, C))
    traces = [_line(t, original[x0:], "original values", 1, line=dict(color=ZERO_GREY, width=1))]
    for panel, (values, m) in enumerate(((original, mu[0]), (edited, mu[1]))):
        show = panel == 0
        traces.append(_line(t, values[x0:], "context", panel, show, line=dict(color="#333333", width=1.2)))
        pred = m[:-1].ravel()                          # rows 0..N-2 predict patches 1..N-1
        tp = np.arange(patch_size, patch_size + len(pred))
        keep = tp >= x0
        if sigma is not None:
            sd = sigma[panel][:-1].ravel()
            traces.append(_band(tp[keep], (pred - 2 * sd)[keep], (pred + 2 * sd)[keep], "228,87,86", 0.15,
                                "next-patch μ ± 2σ", panel, show, group="mu_band"))
        traces.append(_line(_i32(tp[keep]), pred[keep], "next-patch μ", panel, show,
                            line=dict(color=EDITED, width=1, dash="dot")))
        traces += _fan(C, fans[panel], medians[panel], FAN_RGB["original"], "forecast", panel, show)
    axes = _panels(("original context", "edited context"), "time step", "value", gap=0.04, share_y=True)
    axes["shapes"] = [dict(type="line", x0=start, x1=start, y0=0, y1=1, xref="x2", yref="y2 domain",
                           line=dict(color=EDITED, dash="dash", width=1))]
    return _figure(traces, "Next-patch μ and σ and the forecast fan: original | edited", axes,
                   legend_below=True, height=480)


def attention_change_figure(change: np.ndarray, patch_size: int) -> go.Figure:
    """What the forecast's query (the last patch) attends to, edited minus original, per layer
    (heads averaged): change (layers, N, N), its last rows drawn. Red = more, blue = less."""
    z = change[:, -1, :]                                                  # (layers, N)
    lim = float(np.abs(z).max()) or 1e-6
    trace = dict(type="heatmap", z=_f32(z), x=_i32(np.arange(z.shape[1])), y=[f"layer {i}" for i in range(len(z))],
                 zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True, colorbar=dict(title="Δ weight"),
                 hovertemplate="%{y}, key patch %{x}: %{z:.3f}<extra></extra>")
    axes = {"xaxis": dict(title=dict(text=f"key patch ({patch_size} values each)")),
            "yaxis": dict(title=dict(text="layer"), autorange="reversed")}
    return _figure([trace], "Change in what the forecast attends to (edited − original, heads averaged)",
                   axes, height=300)


def occlusion_figure(occlusion: np.ndarray, patch_size: int) -> go.Figure:
    """(N, N) occlusion map (query x blanked patch), and its last row: what moves the forecast."""
    N = occlusion.shape[0]
    z = np.where(np.triu(np.ones((N, N), dtype=bool), 1), np.nan, occlusion)
    traces = [dict(type="heatmap", z=_f32(z), colorscale="Viridis", colorbar=dict(title="heatmap:<br>move", x=1.02, thickness=12),
                   hovertemplate="query %{y}, blanked patch %{x}: %{z:.3f}<extra></extra>"),
              dict(type="bar", x=_i32(np.arange(N)), y=_f32(occlusion[-1]), marker=dict(color=PALETTE[0]),
                   name="forecast moves", showlegend=False, xaxis="x2", yaxis="y2",
                   hovertemplate="patch %{x}: %{y:.3f}<extra></extra>")]
    axes = _panels(("every query", "the forecast (last query)"),
                   ["blanked patch", f"blanked patch ({patch_size} values each)"],
                   ["query patch (predicting)", "RMS move (series stds)"], widths=[0.45, 0.55], gap=0.16)
    axes["yaxis"]["autorange"] = "reversed"
    return _figure(traces, "Occlusion: how far each prediction moves when one past patch is blanked",
                   axes, height=340)


def ablation_fan_figure(context: np.ndarray, fans: tuple[Mapping, Mapping],
                        medians: tuple[np.ndarray, np.ndarray], show_last: int = 256,
                        title: str = "Forecast: intact model vs heads switched off") -> go.Figure:
    """The context's end and two forecasts after it (80% band and median): intact and ablated."""
    C = len(context)
    x0 = max(0, C - show_last)
    traces = [_line(_i32(np.arange(x0, C)), context[x0:], "context", line=dict(color="#333333", width=1.2))]
    for label, bands, med in zip(("intact", "ablated"), fans, medians):
        traces += _fan(C, {k: v for k, v in bands.items() if k == 80}, med, FAN_RGB[label], label)
    axes = {"xaxis": dict(title=dict(text="time step")), "yaxis": dict(title=dict(text="value"))}
    return _figure(traces, title, axes, legend_below=True, height=420)


def grammar_errors_figure(intact: Mapping[str, float], ablated: Mapping[str, float],
                          periodic: tuple[float, float] | None = None) -> go.Figure:
    """Next-patch MSE per grammar case (and the periodic suite), intact vs ablated, log scale."""
    names = list(intact) + (["periodic suite"] if periodic else [])
    a = [intact[n] for n in intact] + ([periodic[0]] if periodic else [])
    b = [ablated[n] for n in intact] + ([periodic[1]] if periodic else [])
    traces = [dict(type="bar", x=names, y=_f32(np.maximum(v, 1e-8)), name=name, marker=dict(color=c))
              for v, name, c in ((a, "intact", PALETTE[0]), (b, "heads off", PALETTE[1]))]
    axes = {"xaxis": dict(title=dict(text="signal")),
            "yaxis": dict(type="log", title=dict(text="next-patch MSE (normalized)"))}
    return _figure(traces, "Next-patch error on each grammar case", axes, barmode="group")


def head_heatmap_figure(scores: np.ndarray, title: str, colorbar: str = "attention mass",
                        off: Sequence[tuple[int, int]] = (), zmax: float | None = None) -> go.Figure:
    """A layer x head grid of one number per head, written in each cell; heads that are off
    are blank and read "off"."""
    L, H = scores.shape
    z = np.array(scores, dtype=float)
    for l, h in off:
        z[l, h] = np.nan
    text = [["off" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    trace = dict(type="heatmap", z=_f32(z), x=[f"head {h}" for h in range(H)], y=[f"layer {l}" for l in range(L)],
                 text=text, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=zmax,
                 colorbar=dict(title=colorbar), hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>")
    axes = {"xaxis": dict(title=dict(text="head")),
            "yaxis": dict(title=dict(text="layer"), autorange="reversed")}
    return _figure([trace], title, axes, height=320)


def copy_vs_damage_figure(copy_one: np.ndarray, periodic: np.ndarray, control: np.ndarray) -> go.Figure:
    """One point per head: its period-copy score against how much switching it off alone raises
    the next-patch error on periodic signals (and, as a control, on non-periodic ones)."""
    L, H = copy_one.shape
    labels = [f"L{l}H{h}" for l in range(L) for h in range(H)]
    traces = [dict(type="scatter", x=_f32(copy_one.ravel()), y=_f32(y.ravel()), mode=mode, text=text,
                   textposition="top center", name=name, marker=dict(color=color, size=9))
              for y, name, color, mode, text in
              ((periodic, "periodic signals", PALETTE[0], "markers+text", labels),
               (control, "non-periodic (control)", PALETTE[5], "markers", None))]
    axes = {"xaxis": dict(title=dict(text="period-copy score (attention mass one period back)")),
            "yaxis": dict(title=dict(text="error increase with this head off"))}
    return _figure(traces, "Do the period-copy heads carry the periodic forecasts?", axes)


def probe_figure(features: Sequence[str], factors: Sequence[str], score: np.ndarray,
                 chance: np.ndarray, shuffled: np.ndarray | None = None) -> go.Figure:
    """Held-out probe scores per layer: R² of each regressed factor (left) and the family
    accuracy against its chance level (right); 'input patches' is the raw-input baseline."""
    x = list(features)
    traces = []
    for j, name in enumerate(factors):
        panel = 1 if name == "family" else 0
        color = PALETTE[j % len(PALETTE)]
        traces.append(_line(x, score[:, j], name, panel, mode="lines+markers", line=dict(color=color)))
        if shuffled is not None:
            traces.append(_line(x, shuffled[:, j], f"{name}, shuffled labels", panel, panel == 1,
                                group="shuffled", mode="lines", line=dict(color=color, dash="dot", width=1)))
        if name == "family":
            traces.append(_line(x, np.full(len(x), chance[j]), "chance (majority family)", 1,
                                mode="lines", line=dict(color="#999999", dash="dash")))
    axes = _panels(("factors (held-out R²)", "family (held-out accuracy)"), "what the probe reads",
                   ["R² on held-out series", "accuracy"], widths=[0.62, 0.38], gap=0.1)
    axes["yaxis2"]["range"] = [0, 1]
    axes["yaxis"]["range"] = [-0.5, 1]          # below -0.5 (far worse than the mean) is clipped
    return _figure(traces, "What each layer knows: linear probes", axes, legend_below=True, height=480)


FAMILY_COLORS = PALETTE + ("#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2",
                           "#7F7F7F", "#BCBD22", "#17BECF", "#393B79", "#637939", "#8C6D31")


def pca_figure(coords: np.ndarray, explained: np.ndarray, color_by: str, labels: np.ndarray | None = None,
               values: np.ndarray | None = None, layer: str = "") -> go.Figure:
    """The series on the first two principal components, one colour per family (labels) or a
    colour scale of a factor (values; NaN: the series has no such factor, drawn grey)."""
    c = _f32(coords)
    if labels is not None:
        traces = [dict(type="scatter", x=c[labels == name, 0], y=c[labels == name, 1], mode="markers",
                       name=str(name), marker=dict(size=6, color=FAMILY_COLORS[i % len(FAMILY_COLORS)]))
                  for i, name in enumerate(sorted(set(labels)))]
    else:
        has = np.isfinite(values)
        traces = [dict(type="scatter", x=c[~has, 0], y=c[~has, 1], mode="markers", name=f"no {color_by}",
                       marker=dict(size=5, color=ZERO_GREY)),
                  dict(type="scatter", x=c[has, 0], y=c[has, 1], mode="markers", name=color_by,
                       marker=dict(size=6, color=_f32(values[has]), colorscale="Viridis", showscale=True,
                                   colorbar=dict(title=color_by)))]
    axes = {"xaxis": dict(title=dict(text=f"PC 1 ({100 * explained[0]:.0f}% of the variance)")),
            "yaxis": dict(title=dict(text=f"PC 2 ({100 * explained[1]:.0f}%)"))}
    return _figure(traces, f"{layer}: the series' last-position states, PCA, coloured by {color_by}", axes,
                   height=480, legend=dict(orientation="v", x=1.02, y=1))


def training_curve_figure(steps: Sequence[int], copy_score: Sequence[float],
                          family_accuracy: Sequence[float], period_r2: Sequence[float],
                          chance: float) -> go.Figure:
    """Skills at each weight snapshot of a run: the best head's period-copy score, the last
    layer's family accuracy (with its chance level) and period R², against the training step."""
    x = _i32(steps)
    traces = [_line(x, y, name, mode=mode, line=line) for y, name, mode, line in (
        (copy_score, "period-copy score (best head)", "lines+markers", dict(color=PALETTE[0])),
        (family_accuracy, "family probe accuracy", "lines+markers", dict(color=PALETTE[1])),
        (period_r2, "period probe R²", "lines+markers", dict(color=PALETTE[2])),
        (np.full(len(x), chance), "family chance", "lines", dict(color="#999999", dash="dash")))]
    axes = {"xaxis": dict(title=dict(text="training step")), "yaxis": dict(title=dict(text="score"))}
    return _figure(traces, "When the skills appear during training", axes)
