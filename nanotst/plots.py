"""Plotly figure builders for the NanoTST Explorer.

Pure functions: plain arrays, dicts or small dataclasses in, a `plotly.graph_objects.Figure`
out. No streamlit, no torch. Every axis is labelled; every grammar case keeps its colour in
every figure.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .metrics import trailing_geomean

CASE_COLORS = {"flat": "#4C78A8", "line": "#F58518", "sine": "#54A24B", "noisy": "#B279A2"}
"""One colour per grammar case, used everywhere."""
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B",
           "#FF9DA6", "#9D755D", "#BAB0AC")
TRAIN_COLOR, VAL_COLOR = "#4C78A8", "#E45756"
TARGET_COLOR, MU_COLOR, BAND_COLOR = "#333333", "#E45756", "228,87,86"
MASK_COLOR = "#d9d9d9"
_AXIS = dict(gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8", zerolinewidth=2,
             ticks="", automargin=True, title=dict(standoff=15))
TEMPLATE = go.layout.Template(
    layout=dict(font=dict(color="#2a3f5f"), paper_bgcolor="white", plot_bgcolor="white",
                hovermode="closest", xaxis=_AXIS, yaxis=_AXIS, title=dict(x=0.05), colorway=PALETTE),
    data=dict(heatmap=[go.Heatmap(colorbar=dict(outlinewidth=0, ticks=""))]))
"""plotly_white's look for what these figures use. plotly_white itself carries defaults for ~25
trace types and takes ~8 ms to validate in every figure built; this one ~1 ms."""
LAYOUT = dict(template=TEMPLATE, margin=dict(l=60, r=20, t=50, b=50), height=360,
              legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))


def _f32(a) -> np.ndarray:
    """Float32 for the browser: half the bytes of float64 over the websocket, same picture."""
    return np.asarray(a, dtype=np.float32)


def _x32(x) -> np.ndarray:
    """Step numbers as int32 and float positions as float32; dates and labels unchanged."""
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return x.astype(np.int32)
    return x.astype(np.float32) if x.dtype.kind == "f" else x


def case_color(name: str, index: int = 0) -> str:
    return CASE_COLORS.get(name, PALETTE[index % len(PALETTE)])


def _fig(title: str, x: str, y: str, **layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(**{**LAYOUT, "title": dict(text=title), **layout})
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _band(fig, x, lo, hi, name, alpha, row=None, col=None, showlegend=True, group=None):
    """A filled band between lo and hi (one polygon trace)."""
    x = np.asarray(x)
    xs = _x32(np.concatenate([x, x[::-1]]))
    ys = _f32(np.concatenate([np.asarray(hi), np.asarray(lo)[::-1]]))
    trace = go.Scatter(x=xs, y=ys, fill="toself", mode="lines", line=dict(width=0),
                       fillcolor=f"rgba({BAND_COLOR},{alpha})", name=name, hoverinfo="skip",
                       showlegend=showlegend, legendgroup=group or name)
    if row is None:
        fig.add_trace(trace)
    else:
        fig.add_trace(trace, row=row, col=col)


# ---------------------------------------------------------------- signals and patches

def series_figure(values: Sequence[float], patch_size: int | None = None, title: str = "Series",
                  y_label: str = "value", name: str = "series", color: str = TARGET_COLOR,
                  height: int = 300) -> go.Figure:
    """A series over time, with alternating shaded patch spans when patch_size is given."""
    values = np.asarray(values, dtype=float)
    fig = _fig(title, "time step", y_label, height=height)
    fig.add_trace(go.Scatter(x=np.arange(len(values), dtype=np.int32), y=_f32(values), mode="lines",
                             name=name, line=dict(color=color, width=1.5)))
    if patch_size:
        fig.update_layout(shapes=[_vspan(k * patch_size - 0.5, (k + 1) * patch_size - 0.5, "#4C78A8", 0.07)
                                  for k in range(0, len(values) // patch_size, 2)])
    return fig


def _vspan(x0, x1, color, opacity) -> dict:
    """A full-height shaded span as a plain shape dict (much faster than add_vrect)."""
    return dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, line_width=0,
                fillcolor=color, opacity=opacity, layer="below")


def _vline(x, color="#cccccc", dash=None) -> dict:
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color=color, width=1, dash=dash))


def patch_grid_figure(patches: np.ndarray, title: str = "Patches (the model's tokens)",
                      x_label: str = "position within patch", colorbar: str = "normalized value",
                      patch_size: int | None = None, height: int = 340) -> go.Figure:
    """A (N, W) matrix as a heatmap: one row per patch token."""
    patches = np.asarray(patches, dtype=float)
    n, w = patches.shape
    fig = _fig(title, x_label, "patch index", height=height)
    step = patch_size or w
    # the time range of each row, as small ints (not a string per cell: 2048 of them for 16×128)
    rows = np.arange(n, dtype=np.int32)[:, None, None]
    custom = np.broadcast_to(np.concatenate([rows * step, (rows + 1) * step - 1], axis=-1),
                             (n, w, 2)).astype(np.int32)
    # a signed quantity diverges around 0; one that is never negative (σ) runs from 0 up
    scale = dict(colorscale="RdBu_r", zmid=0) if patches.min() < 0 else dict(colorscale="Blues", zmin=0)
    fig.add_trace(go.Heatmap(z=_f32(patches), x=np.arange(w, dtype=np.int32),
                             y=np.arange(n, dtype=np.int32), **scale,
                             colorbar=dict(title=dict(text=colorbar)), customdata=custom,
                             hovertemplate="patch %{y} (t %{customdata[0]}–%{customdata[1]})<br>"
                                           "col %{x}<br>value %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return fig


def pipeline_diagram_figure(stages: Sequence[tuple[str, str]], title: str = "The NanoTST pipeline",
                            parallel_tail: int | None = None) -> go.Figure:
    """Boxes and arrows: one box per stage, labelled with its name and tensor shape.

    The last `parallel_tail` stages are parallel outputs of one step (μ and σ of the Gaussian
    head): stacked in one column, each with its own arrow. Default: the stages whose names start
    with μ or σ."""
    if parallel_tail is None:
        parallel_tail = sum(1 for name, _ in stages if name[:1] in ("μ", "σ"))
    parallel_tail = max(1, parallel_tail)
    columns = list(stages[:len(stages) - parallel_tail]) + [list(stages[len(stages) - parallel_tail:])]
    fig = go.Figure()
    shapes, notes, hover = [], [], []
    for i, column in enumerate(columns):
        boxes = column if isinstance(column, list) else [column]
        x0, x1 = i * 1.3, i * 1.3 + 1.0
        height = 1.0 / len(boxes)
        for j, (name, shape) in enumerate(boxes):
            y1 = 1.0 - j * height
            y0 = y1 - height + (0.06 if len(boxes) > 1 else 0.0)
            shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color="#4C78A8"),
                               fillcolor="rgba(76,120,168,0.12)"))
            short = name.replace(" (next patch)", "")
            if len(short) > 10:         # a box is about 10 characters wide: two lines
                short = short.replace(" ", "<br>", 1)
            notes.append(dict(x=(x0 + x1) / 2, y=y0 + 0.62 * (y1 - y0), text=f"<b>{short}</b>",
                              showarrow=False, font=dict(size=12)))
            notes.append(dict(x=(x0 + x1) / 2, y=y0 + 0.3 * (y1 - y0), text=shape, showarrow=False,
                              font=dict(size=11, color="#E45756")))
            hover.append(((x0 + x1) / 2, (y0 + y1) / 2, f"{name}: {shape}"))
            if i > 0:   # an arrow from the previous column into this box
                notes.append(dict(x=x0 - 0.02, y=(y0 + y1) / 2, ax=x0 - 0.28, ay=0.5, xref="x",
                                  yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2, text=""))
    fig.update_layout(shapes=shapes, annotations=notes)
    # an invisible trace so the axes exist and hover shows the shapes
    fig.add_trace(go.Scatter(x=[h[0] for h in hover], y=[h[1] for h in hover], mode="markers",
                             marker=dict(opacity=0), hovertext=[h[2] for h in hover],
                             hoverinfo="text", showlegend=False))
    fig.update_layout(**{**LAYOUT, "height": 190, "title": dict(text=title),
                         "margin": dict(l=10, r=10, t=40, b=10)})
    fig.update_xaxes(visible=False, range=[-0.1, len(columns) * 1.3 - 0.2], title_text="stage")
    fig.update_yaxes(visible=False, range=[-0.05, 1.05], title_text="")
    return fig


def stage_figure(name: str, array: np.ndarray, shape: str = "", patch_size: int | None = None,
                 height: int = 280) -> go.Figure:
    """One pipeline stage: a line for a 1-D array, a heatmap for a 2-D one."""
    array = np.asarray(array, dtype=float)
    title = f"{name} {shape}".strip()
    if array.ndim == 1:
        return series_figure(array, patch_size, title=title, height=height,
                             y_label="normalized value" if "normal" in name.lower() else "value")
    x_label = "feature (embedding dim)" if array.shape[1] > (patch_size or array.shape[1]) or \
        "embed" in name.lower() or "block" in name.lower() else "position within patch"
    return patch_grid_figure(array, title=title, x_label=x_label, colorbar="value",
                             patch_size=patch_size, height=height)


# ---------------------------------------------------------------- predictions

def _flat(a):
    return None if a is None else np.asarray(a, dtype=float).reshape(-1)


def _flat32(a):
    return None if a is None else _f32(a).reshape(-1)


def next_patch_figure(target: np.ndarray, mu: np.ndarray, sigma: np.ndarray | None,
                      patch_size: int, context: np.ndarray | None = None,
                      title: str = "Next-patch predictions at every position",
                      y_label: str = "normalized value", height: int = 380) -> go.Figure:
    """Predicted mu with ±1σ / ±2σ bands vs the true next patches.

    target, mu, sigma: (N-1, P); row n predicts patch n+1, i.e. time steps (n+1)*P ... (n+2)*P-1.
    context: optionally the first patch (P values) the first prediction is made from.
    """
    target, mu, sig = _flat32(target), _flat32(mu), _flat32(sigma)
    t = np.arange(patch_size, patch_size + len(target), dtype=np.int32)
    fig = _fig(title, "time step", y_label, height=height)
    if sig is not None:
        _band(fig, t, mu - 2 * sig, mu + 2 * sig, "±2σ", 0.15)
        _band(fig, t, mu - sig, mu + sig, "±1σ", 0.3)
    if context is not None:
        fig.add_trace(go.Scatter(x=np.arange(patch_size, dtype=np.int32), y=_f32(context)[:patch_size],
                                 mode="lines", name="first patch (context only)",
                                 line=dict(color="#999999", width=1.5)))
    fig.add_trace(go.Scatter(x=t, y=target, mode="lines", name="target",
                             line=dict(color=TARGET_COLOR, width=1.5)))
    fig.add_trace(go.Scatter(x=t, y=mu, mode="lines", name="predicted μ",
                             line=dict(color=MU_COLOR, width=1.5, dash="dot")))
    n_patches = len(target) // patch_size + 1
    fig.update_layout(shapes=[_vline(k * patch_size - 0.5) for k in range(1, n_patches)])
    return fig


def sigma_vs_noise_figure(sigma_per_patch: np.ndarray | None, abs_error_per_patch: np.ndarray,
                          true_noise: float | None, title: str = "Predicted σ vs true noise",
                          y_label: str = "normalized units", height: int = 300) -> go.Figure:
    """Per predicted patch: mean predicted σ, mean |error|, and the signal's true noise std."""
    err = np.asarray(abs_error_per_patch, dtype=float)
    x = np.arange(1, len(err) + 1)
    fig = _fig(title, "predicted patch index", y_label, height=height)
    if sigma_per_patch is not None:
        fig.add_trace(go.Bar(x=x, y=np.asarray(sigma_per_patch, dtype=float), name="predicted σ",
                             marker_color=MU_COLOR, opacity=0.75))
    fig.add_trace(go.Scatter(x=x, y=err, mode="lines+markers", name="|error| (RMS)",
                             line=dict(color=TARGET_COLOR)))
    if true_noise is not None:
        fig.add_trace(go.Scatter(x=[x[0] - 0.5, x[-1] + 0.5], y=[true_noise, true_noise],
                                 mode="lines", name=f"true noise σ = {true_noise:.3f}",
                                 line=dict(color="#54A24B", dash="dash", width=2)))
    return fig


# ---------------------------------------------------------------- training

def _log_tick_layout(values) -> dict:
    """A log axis labelled with full numbers: once per decade (0.001, 0.01, 0.1, 1), instead of
    plotly's bare minor digits ("5, 2, 0.1, 5, 2"); at 1, 2 and 5 of each decade, or at every
    digit, when the values span less than two decade lines (0.54 to 1.07 showed a lone "1")."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    axis = dict(type="log", tickformat="~g", minor=dict(showgrid=True))
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
        if sum(lo <= 10.0 ** k <= hi for k in decades) < 2:
            for mantissas in ((1, 2, 5), range(1, 10)):      # the fewest ticks that give two
                ticks = [round(m * 10.0 ** k, 12) for k in decades for m in mantissas
                         if lo <= m * 10.0 ** k <= hi]
                if len(ticks) >= 2:
                    return {**axis, "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}
    return {**axis, "dtick": 1}


def log_ticks(fig: go.Figure, axis: str = "y") -> go.Figure:
    """Make an axis of fig a log axis with readable ticks (see _log_tick_layout), from the
    values its traces draw on that axis."""
    values = []
    for trace in fig.data:
        data = getattr(trace, axis, None)
        try:
            values.extend(np.asarray(data, dtype=float).ravel().tolist())
        except (TypeError, ValueError):      # no values, or categories (a heatmap's labels)
            continue
    getattr(fig, f"update_{axis}axes")(**_log_tick_layout(values))
    return fig


def dict_figure(traces: list[dict], layout: dict) -> go.Figure:
    """One figure from plain trace and layout dicts in a single validation pass: a tenth of the
    time of add_trace / update_layout / make_subplots, which the live Train page redraws every
    two seconds while training shares the interpreter."""
    return go.Figure(data=traces, layout={**LAYOUT, **layout})


def _axis_title(text: str, **kw) -> dict:
    return dict(title=dict(text=text), **kw)


def _log_axis(title: str, values=()) -> dict:
    """log_ticks' axis as a layout dict."""
    return _axis_title(title, **_log_tick_layout(values))


def _line_note(x=None, y=None, color: str = "#999999", text: str = "", font_size: int = 10):
    """A dashed full-height (x) or dotted full-width (y) line and its label, as layout dicts."""
    if x is not None:
        shape = dict(type="line", x0=x, x1=x, y0=0, y1=1, xref="x", yref="paper",
                     line=dict(dash="dash", color=color, width=1))
        note = dict(text=text, x=x, y=0, xref="x", yref="paper", xanchor="left", yanchor="bottom",
                    showarrow=False, font=dict(size=font_size, color=color))
    else:
        shape = dict(type="line", x0=0, x1=1, y0=y, y1=y, xref="paper", yref="y",
                     line=dict(dash="dot", color=color))
        note = dict(text=text, x=1, y=y, xref="paper", yref="y", xanchor="right", yanchor="bottom",
                    showarrow=False, font=dict(size=font_size, color=color))
    return shape, note


def loss_figure(history: Sequence[Mapping], title: str = "Loss", y_label: str = "loss",
                height: int = 320) -> go.Figure:
    """Train and validation loss against the step. The y axis spans the bulk of the values (up to
    twice their 95th percentile): a one-batch spike stays readable on hover, and leaves the rest
    of the curve readable too. NLL can be negative, so the axis stays linear."""
    steps = [h["step"] for h in history]
    traces, shown = [], []
    for key, name, color in (("train_loss", "train", TRAIN_COLOR), ("val_loss", "validation", VAL_COLOR)):
        pts = [(s, h.get(key)) for s, h in zip(steps, history) if h.get(key) is not None]
        if pts:
            xs, ys = zip(*pts)
            shown += ys
            traces.append(dict(type="scatter", x=_x32(xs), y=_f32(ys), mode="lines+markers", name=name,
                               line=dict(color=color), marker=dict(size=4)))
    y_axis, notes = _axis_title(y_label), []
    if len(shown) >= 5:
        values = np.asarray(shown, dtype=float)
        lo, hi = float(values.min()), float(np.percentile(values, 95))
        top = hi + max(hi - lo, abs(hi) * 0.1, 1e-6)
        if values.max() > top:
            y_axis["range"] = [lo - 0.05 * (top - lo), top]
            notes.append(dict(text="spikes above the axis: hover the curve for their values",
                              xref="paper", yref="paper", x=1, y=1.02, showarrow=False,
                              xanchor="right", yanchor="bottom", font=dict(size=10, color="#777")))
    return dict_figure(traces, dict(title=dict(text=title), height=height, xaxis=_axis_title("step"),
                                yaxis=y_axis, annotations=notes))


def grammar_curves_figure(history: Sequence[Mapping], metric: str = "mse",
                          title: str = "Grammar: error per case (what it learns first)",
                          log_y: bool = True, height: int = 320,
                          floors: Mapping[str, float] | None = None,
                          learned: Sequence[Mapping] | None = None, smooth: int = 1) -> go.Figure:
    """Per grammar case, the next-patch error against the step: the learning order.

    smooth > 1 draws the trailing geometric mean of that many evaluations bold and the raw values
    faint beside it; `learned` (train.learning_order's records) puts a marker where each case was
    learned; each case's noise floor (the best a model can do) is dotted, when given."""
    label = {"mse": "next-patch MSE (normalized)", "sigma": "mean predicted σ"}.get(metric, metric)
    cases: list[str] = []
    for h in history:
        for c in (h.get("grammar") or {}):
            if c not in cases:
                cases.append(c)
    traces, shapes, notes = [], [], []
    for i, case in enumerate(cases):
        pts = [(h["step"], h["grammar"][case].get(metric)) for h in history
               if case in (h.get("grammar") or {}) and h["grammar"][case].get(metric) is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        xs, color = _x32(xs), case_color(case, i)
        if smooth > 1:
            traces.append(dict(type="scatter", x=xs, y=_f32(ys), mode="lines", name=f"{case} (raw)",
                               legendgroup=case, showlegend=False, opacity=0.3,
                               line=dict(color=color, width=1)))
            ys = trailing_geomean(ys, smooth)
        traces.append(dict(type="scatter", x=xs, y=_f32(ys), mode="lines+markers", name=case,
                           legendgroup=case, line=dict(color=color, width=2 if smooth > 1 else 1.5),
                           marker=dict(size=4)))
        if floors and floors.get(case):
            shape, note = _line_note(y=floors[case], color=color, text=f"{case} noise floor", font_size=12)
            shapes.append(shape)
            notes.append(note)
    for record in learned or ():
        color = case_color(record["case"], cases.index(record["case"]) if record["case"] in cases else 0)
        shape, note = _line_note(x=record["step"], color=color, text=f"{record['case']} learned")
        shapes.append(shape)
        notes.append(note)
    y_axis = _log_axis(label, [y for t in traces for y in t["y"]]) if log_y else _axis_title(label)
    if log_y:   # a log axis takes its note positions as log10 of the value
        for note in notes:
            if note["yref"] == "y":
                note["y"] = float(np.log10(note["y"]))
    # the legend goes below the axis: above it, it ran into the title in a half-width column
    return dict_figure(traces, dict(title=dict(text=title), height=height + 40, xaxis=_axis_title("step"),
                                yaxis=y_axis, shapes=shapes, annotations=notes,
                                legend=dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top"),
                                margin=dict(l=60, r=20, t=50, b=90)))


def _grid_axes(n: int, cols: int, x_title: str, y_title: str, gap_x: float = 0.08,
               gap_y: float = 0.12, titles: Sequence[str] = ()) -> dict:
    """Layout axes (and panel-title annotations) for n panels on a grid, rows from the top, x
    axes shared down each column; what make_subplots builds, as plain dicts."""
    rows = -(-n // cols)
    width, height = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    layout, notes = {}, []
    for i in range(n):
        r, c = divmod(i, cols)
        x_dom = [c * (width + gap_x), min(1.0, c * (width + gap_x) + width)]
        y_top = 1 - r * (height + gap_y)
        x_name, y_name = ("xaxis", "yaxis") if i == 0 else (f"xaxis{i + 1}", f"yaxis{i + 1}")
        x_axis = dict(domain=x_dom, anchor="y" if i == 0 else f"y{i + 1}")
        if r < rows - 1 and i + cols < n:
            x_axis.update(matches=f"x{i + cols + 1}", showticklabels=False)
        else:
            x_axis["title"] = dict(text=x_title)
        layout[x_name] = x_axis
        layout[y_name] = dict(domain=[max(0.0, y_top - height), min(1.0, y_top)], anchor="x" if i == 0 else f"x{i + 1}",
                              title=dict(text=y_title))
        if i < len(titles):
            notes.append(dict(text=titles[i], x=sum(x_dom) / 2, y=y_top, xref="paper", yref="paper",
                              xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))
    layout["annotations"] = notes
    return layout


def grammar_predictions_figure(grammar: Mapping[str, Mapping], patch_size: int,
                               title: str = "Grammar cases: prediction vs target",
                               height: int = 460) -> go.Figure:
    """A panel per grammar case: target next patches, predicted μ and its ±2σ band."""
    cases = list(grammar)
    cols = 2 if len(cases) > 1 else 1
    traces = []
    for i, case in enumerate(cases):
        axes = dict(xaxis="x" if i == 0 else f"x{i + 1}", yaxis="y" if i == 0 else f"y{i + 1}")
        g = grammar[case]
        target, mu, sig = _flat(g["target"]), _flat(g["mu"]), _flat(g.get("sigma"))
        t = np.arange(patch_size, patch_size + len(target))
        first = i == 0
        if sig is not None:
            xs = _x32(np.concatenate([t, t[::-1]]))
            ys = _f32(np.concatenate([mu + 2 * sig, (mu - 2 * sig)[::-1]]))
            traces.append(dict(type="scatter", x=xs, y=ys, fill="toself", mode="lines", line=dict(width=0),
                               fillcolor=f"rgba({BAND_COLOR},0.2)", name="±2σ", hoverinfo="skip",
                               showlegend=first, legendgroup="±2σ", **axes))
        traces.append(dict(type="scatter", x=_x32(t), y=_f32(target), mode="lines", name="target",
                           legendgroup="target", showlegend=first,
                           line=dict(color=TARGET_COLOR, width=1.2), **axes))
        traces.append(dict(type="scatter", x=_x32(t), y=_f32(mu), mode="lines", name="predicted μ",
                           legendgroup="mu", showlegend=first,
                           line=dict(color=case_color(case, i), width=1.5), **axes))
    layout = _grid_axes(len(cases), cols, "time step", "normalized value", titles=cases)
    return dict_figure(traces, {**layout, "height": height, "title": dict(text=title),
                            "legend": dict(orientation="h", x=0, xanchor="left", y=-0.12, yanchor="top"),
                            "margin": dict(l=60, r=20, t=60, b=70)})


def _rounded(a, digits: int = 4) -> list:
    """A rounded plain list: keeps a figure with many frames small."""
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def _case_traces(case: str, pred: Mapping) -> list[go.Scatter]:
    """Target, mu and a ±sigma band over the predicted patches, flattened to one axis."""
    target = np.asarray(pred["target"], dtype=float).ravel()
    mu = np.asarray(pred["mu"], dtype=float).ravel()
    t = list(range(len(mu)))
    color = CASE_COLORS.get(case, "#444")
    traces = []
    if pred.get("sigma") is not None:
        sigma = np.asarray(pred["sigma"], dtype=float).ravel()
        traces.append(go.Scatter(x=t + t[::-1], y=_rounded(np.concatenate([mu + sigma, (mu - sigma)[::-1]])),
                                 fill="toself", fillcolor="rgba(255,127,14,0.25)", line={"width": 0},
                                 name="±sigma", showlegend=case == "flat", legendgroup="band",
                                 hoverinfo="skip"))
    else:
        traces.append(go.Scatter(x=[], y=[], name="±sigma", showlegend=False))
    traces.append(go.Scatter(x=t, y=_rounded(target), mode="lines", line={"color": color}, name=f"{case} target",
                             showlegend=False))
    traces.append(go.Scatter(x=t, y=_rounded(mu), mode="lines", line={"color": "#ff7f0e", "width": 1.5},
                             name="mu", showlegend=case == "flat", legendgroup="mu"))
    return traces


def snapshots_slider_figure(snapshots: Sequence[Mapping]) -> go.Figure:
    """The grammar cases' next-patch predictions at every snapshot, with a slider over them."""
    if not snapshots:
        return go.Figure(layout={"title": "No snapshots recorded"})
    cases = list(snapshots[0]["grammar"])
    cols = 2
    rows = -(-len(cases) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=cases)
    for k, case in enumerate(cases):
        for tr in _case_traces(case, snapshots[-1]["grammar"][case]):
            fig.add_trace(tr, row=k // cols + 1, col=k % cols + 1)
    frames, steps = [], []
    for snap in snapshots:
        name = f"step {snap['step']}"
        data = [tr for case in cases for tr in _case_traces(case, snap["grammar"][case])]
        frames.append(go.Frame(data=data, name=name))
        steps.append({"label": f"{snap['step']} (ep {snap['epoch']:g})", "method": "animate",
                      "args": [[name], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                        "transition": {"duration": 0}}]})
    fig.frames = frames
    fig.update_layout(
        title="Next-patch predictions on the grammar cases (normalized; drag the slider to scrub training)",
        template=TEMPLATE, height=300 * rows + 150,
        sliders=[{"active": len(steps) - 1, "steps": steps, "currentvalue": {"prefix": "step "},
                  "pad": {"t": 40}}])
    return fig


# ---------------------------------------------------------------- attention

def _patch_span(k: int, patch_size: int) -> str:
    return f"t {k * patch_size}–{(k + 1) * patch_size - 1}"


def attention_heatmaps_figure(maps: np.ndarray, patch_size: int, causal: bool = True,
                              title: str = "Attention per layer × head",
                              height_per_row: int = 230, layer_ids: Sequence[int] | None = None,
                              head_ids: Sequence[int] | None = None, scores: bool = False) -> go.Figure:
    """maps: (L, H, N, N) attention weights, query x key. One heatmap per layer and head.

    scores=True: the maps are query·key scores before the softmax (any sign, a diverging scale).

    Rows are query patches (the position predicting its next patch), columns key patches
    (attended to). Future keys a causal model cannot see are drawn grey.

    The L x H heatmaps are tiles of one heatmap trace on one pair of axes (layer down, head
    across), not L x H subplots: one axis pair and one heatmap image instead of 2·L·H axes and
    L·H images, several times faster in the browser. Cells between tiles are NaN with white
    shapes under them; masked cells are NaN over the grey plot background.
    customdata per cell: query and key time ranges (t0, t1, t0, t1), query patch, key patch,
    layer, head.
    """
    maps = np.asarray(maps, dtype=float)
    if maps.ndim == 3:
        maps = maps[None]
    L, H, N, _ = maps.shape
    layer_ids = list(layer_ids) if layer_ids is not None else list(range(L))
    head_ids = list(head_ids) if head_ids is not None else list(range(H))
    gap = max(1, N // 8)
    pitch = N + gap                       # tile size plus the white gap between tiles
    fig = _fig(title, "key patch (attended to)", "query patch (predicting)",
               height=max(320, height_per_row * L + 80))
    q, k = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    finite = maps[np.isfinite(maps)]
    zmax = float(finite.max()) if finite.size else 1.0
    if scores:
        reach = float(np.abs(finite).max()) if finite.size else 1.0
        colors = dict(zmin=-reach, zmax=reach, colorscale="RdBu_r", colorbar=dict(title=dict(text="score")))
    else:
        colors = dict(zmin=0, zmax=zmax, colorscale="Viridis", colorbar=dict(title=dict(text="weight")))
    R, C = L * pitch - gap, H * pitch - gap
    z = np.full((R, C), np.nan, dtype=np.float32)
    custom = np.zeros((R, C, 8), dtype=np.int16)
    notes = []
    for layer in range(L):
        for h in range(H):
            tile = maps[layer, h].copy()
            if causal:
                tile[k > q] = np.nan
            rows, cols = slice(layer * pitch, layer * pitch + N), slice(h * pitch, h * pitch + N)
            z[rows, cols] = tile
            custom[rows, cols] = np.stack(
                [q * patch_size, (q + 1) * patch_size - 1, k * patch_size, (k + 1) * patch_size - 1,
                 q, k, np.full_like(q, layer_ids[layer]), np.full_like(q, head_ids[h])], axis=-1)
            if L * H > 1:
                notes.append(dict(text=f"layer {layer_ids[layer]} · head {head_ids[h]}",
                                  x=h * pitch + (N - 1) / 2, y=layer * pitch - 0.5, xref="x", yref="y",
                                  yanchor="bottom", showarrow=False, font=dict(size=12)))
    fig.add_trace(go.Heatmap(
        z=z, x=np.arange(C, dtype=np.int32), y=np.arange(R, dtype=np.int32), customdata=custom,
        **colors, hoverongaps=False, name="attention",
        hovertemplate=("layer %{customdata[6]} · head %{customdata[7]}<br>"
                       "query patch %{customdata[4]} (t %{customdata[0]}–%{customdata[1]}, predicting)<br>"
                       "key patch %{customdata[5]} (t %{customdata[2]}–%{customdata[3]}, attended to)<br>"
                       + ("score" if scores else "weight") + " %{z:.3f}<extra></extra>")))
    gaps = []
    # white gaps between tiles (the grey plot background marks only the masked cells)
    for i in range(1, H):
        gaps.append(dict(type="rect", xref="x", yref="paper", x0=i * pitch - gap - 0.5,
                         x1=i * pitch - 0.5, y0=0, y1=1, fillcolor="white", line_width=0, layer="below"))
    for i in range(1, L):
        gaps.append(dict(type="rect", xref="paper", yref="y", x0=0, x1=1, y0=i * pitch - gap - 0.5,
                         y1=i * pitch - 0.5, fillcolor="white", line_width=0, layer="below"))
    step = max(1, N // 8)
    ticks = lambda n: dict(tickmode="array", tickvals=[t * pitch + j for t in range(n) for j in range(0, N, step)],  # noqa: E731
                           ticktext=[str(j) for _ in range(n) for j in range(0, N, step)],
                           range=[-0.5, n * pitch - gap - 0.5], showgrid=False, zeroline=False)
    fig.update_xaxes(**ticks(H))
    fig.update_yaxes(autorange=False, **{**ticks(L), "range": [L * pitch - gap - 0.5, -0.5]})
    fig.update_layout(annotations=notes, shapes=gaps,
                      title=dict(text=title + (" · grey: future patches, masked (causal)"
                                               if causal else " · not causal: sees the future")),
                      margin=dict(l=60, r=20, t=70 if L * H > 1 else 50, b=50))
    if causal:  # masked cells are NaN: the grey plot background shows through
        fig.update_layout(plot_bgcolor=MASK_COLOR)
    return fig


def attention_matrix_figure(matrix: np.ndarray, patch_size: int, causal: bool = True,
                            title: str = "Attention rollout (all layers combined)",
                            height: int = 420, scores: bool = False) -> go.Figure:
    """A single (N, N) query x key matrix, e.g. the attention rollout or one head's scores."""
    fig = attention_heatmaps_figure(np.asarray(matrix)[None, None], patch_size, causal, title,
                                    height_per_row=height - 80, scores=scores)
    fig.layout.annotations = ()
    return fig


def attention_over_signal_figure(series: np.ndarray, weights: np.ndarray, patch_size: int,
                                 title: str = "What the last prediction draws on",
                                 y_label: str = "value", height: int = 320) -> go.Figure:
    """The series with each past patch shaded by how much the last prediction attends to it."""
    series = np.asarray(series, dtype=float)
    weights = np.asarray(weights, dtype=float)
    fig = _fig(title, "time step", y_label, height=height)
    wmax = float(weights.max()) if weights.size and weights.max() > 0 else 1.0
    fig.update_layout(shapes=[_vspan(k * patch_size - 0.5, (k + 1) * patch_size - 0.5, "#F58518",
                                     0.05 + 0.6 * w / wmax) for k, w in enumerate(weights)])
    centers = (np.arange(len(weights)) + 0.5) * patch_size
    fig.add_trace(go.Scatter(x=np.arange(len(series), dtype=np.int32), y=_f32(series), mode="lines", name="series",
                             line=dict(color=TARGET_COLOR, width=1.5)))
    fig.add_trace(go.Scatter(
        x=centers, y=np.full(len(weights), np.nanmax(series) if series.size else 0), mode="text",
        text=[f"{w:.2f}" for w in weights], textposition="top center", name="attention weight",
        hovertext=[f"patch {k} ({_patch_span(k, patch_size)}): weight {w:.3f}"
                   for k, w in enumerate(weights)], hoverinfo="text"))
    fig.update_layout(showlegend=False)   # the shading and the numbers say it; a legend hid the title
    return fig


def season_gates_figure(gates: np.ndarray, lag: int, patch_size: int, seasons: np.ndarray | None = None,
                        title: str | None = None, height: int = 300) -> go.Figure:
    """One bar per query patch: its seasonal gate, how much of the values `lag` steps before its
    target it adds to its forecast (0: none; 1: all of it, on top of its own guess). seasons (N,):
    how many seasons back each patch's copy averages; where any averages more than one, each bar
    is labelled with its number."""
    gates = np.asarray(gates, dtype=float)
    seasons = np.ones(len(gates), dtype=int) if seasons is None else np.asarray(seasons, dtype=int)
    averaged = lambda k: "" if k == 1 else f" (the mean of the last {k} seasons)"
    copied = f"the last {lag} values, repeated" if lag < patch_size else f"the values {lag} steps back"
    title = title or f"How much each patch's forecast copies {copied}"
    fig = _fig(title, "query patch (predicts the patch after it)", "gate", height=height)
    fig.add_trace(go.Bar(
        x=np.arange(len(gates), dtype=np.int32), y=_f32(gates), marker_color="#F58518", name="gate",
        hovertext=[f"patch {k} ({_patch_span(k, patch_size)}) predicts {_patch_span(k + 1, patch_size)} "
                   f"and copies {g:.2f} of the values {_patch_span_shifted(k + 1, patch_size, lag)}"
                   f"{averaged(seasons[k])}" for k, g in enumerate(gates)], hoverinfo="text",
        text=[str(k) for k in seasons] if seasons.max() > 1 else None, textposition="outside"))
    fig.update_layout(showlegend=False, yaxis=dict(zeroline=True))
    return fig


def _patch_span_shifted(k: int, patch_size: int, lag: int) -> str:
    """t of the values patch k's seasonal patch copies: `lag` steps earlier, or for a season shorter
    than a patch the last `lag` values before it, repeated."""
    if lag < patch_size:
        return f"t {k * patch_size - lag}–{k * patch_size - 1}, repeated"
    return f"t {k * patch_size - lag}–{(k + 1) * patch_size - 1 - lag}"


# ---------------------------------------------------------------- forecasting

def _add_forecast(fig, x, median, bands, samples=None, truth=None) -> None:
    """The forecast part of a fan chart at x: bands {coverage%: (lo, hi)}, sample paths, median, truth."""
    alphas = {50: 0.4, 80: 0.25, 95: 0.13}
    for cov in sorted(bands, reverse=True):
        lo, hi = bands[cov]
        _band(fig, x, lo, hi, f"{cov}% band", alphas.get(cov, 0.2))
    if samples is not None:
        for i, path in enumerate(np.asarray(samples, dtype=float)):
            fig.add_trace(go.Scatter(x=_x32(np.asarray(x)), y=_f32(path), mode="lines", name="sample paths",
                                     legendgroup="samples", showlegend=i == 0, opacity=0.5,
                                     line=dict(color="#72B7B2", width=0.8)))
    fig.add_trace(go.Scatter(x=x, y=np.asarray(median, dtype=float), mode="lines", name="median",
                             line=dict(color=MU_COLOR, width=2)))
    if truth is not None:
        fig.add_trace(go.Scatter(x=x, y=np.asarray(truth, dtype=float), mode="lines",
                                 name="held-out truth", line=dict(color="#54A24B", width=2, dash="dash")))


def fan_chart_figure(context: np.ndarray, horizon_t: np.ndarray, median: np.ndarray,
                     bands: Mapping[int, tuple[np.ndarray, np.ndarray]],
                     samples: np.ndarray | None = None, truth: np.ndarray | None = None,
                     title: str = "Forecast", y_label: str = "value", height: int = 420,
                     zoom: bool = True) -> go.Figure:
    """Context, then the forecast: bands {coverage%: (lo, hi)}, median, sample paths, truth.

    zoom: the x axis opens on the end of the context and the forecast (the last three horizons
    of context, at least 64 values); a double-click on the chart shows the whole series."""
    context = np.asarray(context, dtype=float)
    horizon_t = np.asarray(horizon_t)
    fig = _fig(title, "time step", y_label, height=height)
    fig.add_trace(go.Scatter(x=np.arange(len(context), dtype=np.int32), y=_f32(context), mode="lines", name="context",
                             line=dict(color=TARGET_COLOR, width=1.3)))
    _add_forecast(fig, horizon_t, median, bands, samples, truth)
    fig.update_layout(shapes=[_vline(len(context) - 0.5, "#999999", "dot")])
    if zoom and len(horizon_t):
        start = max(0, len(context) - max(3 * len(horizon_t), 64))
        if start > 0:
            fig.update_xaxes(range=[start - 0.5, float(horizon_t[-1]) + 0.5])
    return _legend_below(fig, height)


# ---------------------------------------------------------------- a user's own series

def _axis_x(x, n: int) -> np.ndarray:
    return np.arange(n) if x is None else np.asarray(x)


def _x_value(v):
    """A plotly-friendly scalar for shapes: dates as ISO text, numbers as float."""
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v, unit="s"))
    return float(v) if isinstance(v, (np.integer, np.floating)) else v


def _legend_below(fig: go.Figure, height: int) -> go.Figure:
    """Legend under the plot: a long title and a legend would overlap at the top."""
    fig.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top"),
                      margin=dict(l=60, r=20, t=50, b=100), height=height + 50)
    return fig


def series_preview_figure(values: Sequence[float], x=None, title: str = "Preview",
                          x_label: str = "time step", y_label: str = "value",
                          height: int = 220) -> go.Figure:
    """A small line chart of a series against its time column (or the step number)."""
    values = np.asarray(values, dtype=float)
    fig = _fig(title, x_label, y_label, height=height, margin=dict(l=50, r=10, t=40, b=40))
    fig.add_trace(go.Scattergl(x=_axis_x(x, len(values)), y=values, mode="lines", name=y_label,
                               line=dict(color=TARGET_COLOR, width=1.2)))
    return fig


def series_fan_chart_figure(history: Sequence[float], future_median: Sequence[float],
                            bands: Mapping[int, tuple[np.ndarray, np.ndarray]],
                            history_x=None, future_x=None, samples: np.ndarray | None = None,
                            truth: Sequence[float] | None = None, title: str = "Forecast",
                            x_label: str = "time step", y_label: str = "value",
                            history_name: str = "series", height: int = 420) -> go.Figure:
    """A series and its forecast on any x axis (steps, years or dates).

    history (T,) at history_x (default 0..T-1); the forecast (median, bands {coverage%: (lo, hi)},
    sample paths (n, H), optional truth (H,)) at future_x (default T..T+H-1). A dotted line marks
    where the forecast starts.
    """
    history = np.asarray(history, dtype=float)
    median = np.asarray(future_median, dtype=float)
    hx = _axis_x(history_x, len(history))
    fx = np.arange(len(history), len(history) + len(median)) if future_x is None else \
        np.asarray(future_x)
    fig = _fig(title, x_label, y_label, height=height)
    fig.add_trace(go.Scatter(x=hx, y=history, mode="lines", name=history_name,
                             line=dict(color=TARGET_COLOR, width=1.3)))
    _add_forecast(fig, fx, median, bands, samples, truth)
    if len(hx):
        fig.update_layout(shapes=[_vline(_x_value(hx[-1]), "#999999", "dot")])
    return _legend_below(fig, height)


def calibration_figure(coverages: Mapping[str, Mapping[float, float]],
                       pits: Mapping[str, Sequence[float]], bins: int = 10,
                       title: str | None = None, height: int = 340) -> go.Figure:
    """Two panels, one model per colour ({name: ...}, the same names in both).

    Left: observed coverage of each central band against its nominal level ({level: observed});
    on the diagonal is calibrated, below it too narrow. Right: the PIT values ((H,) in [0, 1])
    as a density histogram beside the flat line of a calibrated forecast; a U shape means
    overconfident, a hump too wide. One figure, not two: the page redraws it on every change.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Band coverage vs nominal level", "PIT histogram"))
    calibrated = dict(color="#999999", dash="dash", width=1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                             legendgroup="calibrated", line=calibrated), row=1, col=1)
    for i, (name, cov) in enumerate(coverages.items()):
        levels = sorted(cov)
        fig.add_trace(go.Scatter(
            x=levels, y=[cov[lv] for lv in levels], mode="markers+lines", name=name,
            legendgroup=name, marker=dict(size=11, color=PALETTE[i % len(PALETTE)]),
            line=dict(width=1), text=[f"{round(100 * lv)}% band" for lv in levels],
            hovertemplate="%{text}: %{y:.0%} inside<extra>" + name + "</extra>"), row=1, col=1)
    edges = np.linspace(0, 1, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    for i, (name, pit) in enumerate(pits.items()):
        pit = np.asarray(pit, dtype=float)
        counts, _ = np.histogram(np.clip(pit, 0, 1), bins=edges)
        density = counts / max(len(pit), 1) * bins
        fig.add_trace(go.Bar(x=centers, y=density, width=1 / bins / max(len(pits), 1), name=name,
                             legendgroup=name, showlegend=name not in coverages,
                             marker_color=PALETTE[i % len(PALETTE)], opacity=0.8,
                             customdata=counts,
                             hovertemplate="PIT %{x:.2f}: %{customdata} values<extra>" + name
                                           + "</extra>"), row=1, col=2)
    fig.add_trace(go.Scatter(x=[0, 1], y=[1, 1], mode="lines", name="calibrated",
                             legendgroup="calibrated", showlegend=False, line=calibrated),
                  row=1, col=2)
    fig.update_layout(**{**LAYOUT, "title": dict(text=title), "barmode": "group"})
    fig.update_xaxes(title_text="nominal coverage of the band", range=[0, 1.02], tickformat=".0%",
                     row=1, col=1)
    fig.update_yaxes(title_text="observed coverage (held-out values)", range=[0, 1.02],
                     tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="PIT (share of sample paths below the truth)", range=[0, 1],
                     row=1, col=2)
    fig.update_yaxes(title_text="density", row=1, col=2)
    return _legend_below(fig, height)


# ---------------------------------------------------------------- experiments

def compare_losses_figure(runs: Mapping[str, Sequence[Mapping]], key: str = "val_loss",
                          title: str = "Validation loss by variant", log_y: bool = False,
                          height: int = 340) -> go.Figure:
    """One curve per variant (name -> history), against the step."""
    fig = _fig(title, "step", key.replace("_", " "), height=height)
    for i, (name, history) in enumerate(runs.items()):
        pts = [(h["step"], h.get(key)) for h in history if h.get(key) is not None]
        if pts:
            xs, ys = zip(*pts)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=str(name),
                                     line=dict(color=PALETTE[i % len(PALETTE)]), marker=dict(size=4)))
    if log_y:
        log_ticks(fig)
    return _legend_below(fig, height)     # variant names are long: at the top they ran into the title


def compare_runs_figure(runs: Mapping[str, Sequence[Sequence[Mapping]]], key: str = "val_mse",
                        title: str = "Validation next-patch MSE by variant", log_y: bool = True,
                        height: int = 340) -> go.Figure:
    """Per variant (name -> one history per seed): the mean over seeds against the step, and a
    band from the lowest to the highest seed."""
    fig = _fig(title, "step", key.replace("_", " "), height=height)
    for i, (name, histories) in enumerate(runs.items()):
        by_step: dict[int, list[float]] = {}
        for history in histories:
            for h in history:
                if h.get(key) is not None:
                    by_step.setdefault(h["step"], []).append(h[key])
        if not by_step:
            continue
        steps = sorted(by_step)
        values = [np.asarray(by_step[x], dtype=float) for x in steps]
        color = PALETTE[i % len(PALETTE)]
        if max(len(v) for v in values) > 1:
            _band(fig, steps, [v.min() for v in values], [v.max() for v in values], f"{name}: seeds",
                  0.18, showlegend=False, group=str(name))
            fig.data[-1].fillcolor = _rgba(color, 0.18)
        fig.add_trace(go.Scatter(x=steps, y=[float(v.mean()) for v in values], mode="lines+markers",
                                 name=str(name), legendgroup=str(name), line=dict(color=color),
                                 marker=dict(size=4)))
    if log_y:
        log_ticks(fig)
    return _legend_below(fig, height)     # variant names are long: at the top they ran into the title


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def compare_grammar_figure(results: Mapping[str, Mapping[str, float]],
                           title: str = "Final grammar MSE by variant", log_y: bool = True,
                           height: int = 340,
                           spread: Mapping[str, Mapping[str, tuple]] | None = None) -> go.Figure:
    """Grouped bars: variants on x, one bar per grammar case (name -> {case: mse}); with
    `spread` (name -> {case: (min, max)}), error bars from the lowest to the highest seed."""
    fig = _fig(title, "variant", "next-patch MSE (normalized)", height=height, barmode="group")
    names = list(results)
    cases: list[str] = []
    for r in results.values():
        cases += [c for c in r if c not in cases]
    for i, case in enumerate(cases):
        y = [results[n].get(case) for n in names]
        error = None
        if spread:
            lo = [y[j] - spread[n][case][0] for j, n in enumerate(names)]
            hi = [spread[n][case][1] - y[j] for j, n in enumerate(names)]
            error = dict(type="data", symmetric=False, array=hi, arrayminus=lo, thickness=1)
        fig.add_trace(go.Bar(x=names, y=y, name=case, marker_color=case_color(case, i), error_y=error))
    if log_y:
        log_ticks(fig)
    return _legend_below(fig, height)     # beside the variant charts, at the same height


def mix_figure(mix: Mapping[str, float], title: str = "Share of the training series per signal family",
               height: int = 360) -> go.Figure:
    """Horizontal bars: each family's share of the training series ({family: weight}, any scale)."""
    total = sum(mix.values()) or 1.0
    names = list(mix)[::-1]                         # the first family at the top
    shares = [mix[n] / total for n in names]
    fig = _fig(title, "share of the training series", "signal family", height=height)
    fig.add_trace(go.Bar(x=shares, y=names, orientation="h", name="share",
                         marker_color=PALETTE[0], hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_xaxes(tickformat=".0%")
    return fig
