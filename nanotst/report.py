"""A self-contained HTML report of how a training run progressed.

The figure builders are pure (history / snapshots / arrays in, go.Figure out). `build_report`
puts them on one page with plotly.js inlined once, so the file works offline; `write_report`
writes it atomically.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .files import atomic_write
from .plots import CASE_COLORS, TEMPLATE


def _r(a, digits: int = 4) -> list:
    """Rounded plain list: keeps the HTML small."""
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def loss_figure(history: list[dict]) -> go.Figure:
    """Train and validation loss against step."""
    fig = go.Figure()
    for key, name, dash in (("train_loss", "train", "solid"), ("val_loss", "validation", "dash")):
        pts = [(h["step"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            x, y = zip(*pts)
            fig.add_scatter(x=list(x), y=list(y), mode="lines+markers", name=name, line={"dash": dash})
    fig.update_layout(title="Loss (next-patch NLL, or MSE for the MSE rungs)", xaxis_title="step",
                      yaxis_title="loss", template=TEMPLATE)
    return fig


def grammar_mse_figure(history: list[dict], floors: dict[str, float] | None = None) -> go.Figure:
    """Per-grammar-case normalized next-patch MSE against step (log y); noise floors dotted."""
    fig = go.Figure()
    cases = list((history[0].get("grammar") or {}) if history else {})
    for case in cases:
        pts = [(h["step"], h["grammar"][case]["mse"]) for h in history if h.get("grammar")]
        x, y = zip(*pts)
        color = CASE_COLORS.get(case)
        fig.add_scatter(x=list(x), y=list(y), mode="lines", name=case, line={"color": color})
        if floors and floors.get(case):
            fig.add_hline(y=floors[case], line={"dash": "dot", "color": color},
                          annotation_text=f"{case} noise floor")
    fig.update_layout(title="Grammar: next-patch MSE per case (normalized)", xaxis_title="step",
                      yaxis_title="MSE", yaxis_type="log", template=TEMPLATE)
    return fig


def _case_traces(case: str, pred: dict) -> list[go.Scatter]:
    """Target, mu and a ±sigma band over the predicted patches, flattened to one axis."""
    target = np.asarray(pred["target"], dtype=float).ravel()
    mu = np.asarray(pred["mu"], dtype=float).ravel()
    t = list(range(len(mu)))
    color = CASE_COLORS.get(case, "#444")
    traces = []
    if pred.get("sigma") is not None:
        sigma = np.asarray(pred["sigma"], dtype=float).ravel()
        traces.append(go.Scatter(x=t + t[::-1], y=_r(np.concatenate([mu + sigma, (mu - sigma)[::-1]])),
                                 fill="toself", fillcolor="rgba(255,127,14,0.25)", line={"width": 0},
                                 name="±sigma", showlegend=case == "flat", legendgroup="band",
                                 hoverinfo="skip"))
    else:
        traces.append(go.Scatter(x=[], y=[], name="±sigma", showlegend=False))
    traces.append(go.Scatter(x=t, y=_r(target), mode="lines", line={"color": color}, name=f"{case} target",
                             showlegend=False))
    traces.append(go.Scatter(x=t, y=_r(mu), mode="lines", line={"color": "#ff7f0e", "width": 1.5},
                             name="mu", showlegend=case == "flat", legendgroup="mu"))
    return traces


def snapshot_figure(snapshots: list[dict]) -> go.Figure:
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


def forecast_figure(name: str, history: np.ndarray, truth: np.ndarray, fc) -> go.Figure:
    """A holdout forecast: context, held-out truth, median and 10-90% / 5-95% bands."""
    n = len(history)
    t_hist = list(range(n))
    t_fut = list(range(n, n + len(truth)))
    fig = go.Figure()
    for level, alpha in ((0.9, 0.15), (0.8, 0.3)):
        lo, hi = fc.interval(level)
        fig.add_scatter(x=t_fut + t_fut[::-1], y=_r(np.concatenate([hi, lo[::-1]])), fill="toself",
                        fillcolor=f"rgba(255,127,14,{alpha})", line={"width": 0}, name=f"{level:.0%} interval")
    fig.add_scatter(x=t_hist, y=_r(history), mode="lines", name="context", line={"color": "#444"})
    fig.add_scatter(x=t_fut, y=_r(truth), mode="lines", name="held out", line={"color": "#2ca02c"})
    fig.add_scatter(x=t_fut, y=_r(fc.median), mode="lines", name="median", line={"color": "#ff7f0e"})
    fig.update_layout(title=f"Holdout forecast: {name}", xaxis_title="t", template=TEMPLATE)
    return fig


def holdout_figures(model, k_patches: int = 4, n_samples: int = 100) -> list[go.Figure]:
    """Forecast the last k patches of each probe signal; [] when forecast.py is not available."""
    try:
        from .forecast import forecast
    except ImportError:
        return []
    from .data import probe_cases
    P = model.config.patch_size
    figs = []
    for name, (series, _) in probe_cases(model.config.context_length).items():
        series = np.asarray(series, dtype=float)
        hist, truth = series[:-k_patches * P], series[-k_patches * P:]
        fc = forecast(model, hist, k_patches, n_samples, (0.05, 0.1, 0.5, 0.9, 0.95))
        figs.append(forecast_figure(name, hist, truth, fc))
    return figs


def _table(rows: list[tuple], header: tuple) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def build_report(history: list[dict], snapshots: list[dict], *, model=None, title: str = "NanoTST training report",
                 meta: dict | None = None, floors: dict | None = None) -> str:
    """The whole report as one HTML string (plotly.js inlined once; no network needed)."""
    if floors is None and model is not None:
        from .train import grammar_noise_floor
        floors = grammar_noise_floor(model.config.context_length, model.config.patch_size)
    sections = [("Loss", loss_figure(history)), ("Grammar", grammar_mse_figure(history, floors)),
                ("Predictions over training", snapshot_figure(snapshots))]
    notes = []
    if model is not None:
        try:
            sections += [("Holdout forecasts", f) for f in holdout_figures(model)]
        except Exception as err:   # the report still matters more than one section
            notes.append(f"holdout forecasts skipped: {type(err).__name__}: {err}")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if meta:
        parts.append(_table([(k, v) for k, v in meta.items() if not isinstance(v, (dict, list))], ("", "")))
    if history and history[-1].get("grammar"):
        g = history[-1]["grammar"]
        parts.append("<h2>Final grammar eval</h2>" + _table(
            [(c, f"{r['mse']:.5f}", "-" if r.get("sigma") is None else f"{r['sigma']:.4f}",
              "-" if not floors else f"{floors.get(c, 0):.4f}") for c, r in g.items()],
            ("case", "mse", "mean sigma", "noise floor")))
    parts += [f"<p><i>{html.escape(n)}</i></p>" for n in notes]
    first = True
    last_heading = None
    for heading, fig in sections:
        if heading != last_heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            last_heading = heading
        parts.append(fig.to_html(include_plotlyjs="inline" if first else False, full_html=False,
                                 auto_play=False))
        first = False
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_report(path, history: list[dict], snapshots: list[dict], **kwargs) -> Path:
    """Build the report and write it atomically (temp file in the same folder, then rename)."""
    text = build_report(history, snapshots, **kwargs)
    return atomic_write(path, lambda f: f.write(text), binary=False)
