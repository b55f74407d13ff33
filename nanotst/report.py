"""A self-contained HTML report of how a training run progressed.

HTML assembly only: the figures come from plots.py (the same ones the app draws). `build_report`
puts them on one page with plotly.js inlined once, so the file works offline; `write_report`
writes it atomically.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from .data import probe_cases
from .evaluate import grammar_noise_floor
from .files import atomic_write
from .forecast import forecast
from .plots import fan_chart_figure, grammar_curves_figure, loss_figure, snapshots_slider_figure


def holdout_figures(model, k_patches: int = 4, n_samples: int = 100) -> list[go.Figure]:
    """The last k patches of each probe signal forecast from the rest: fan charts."""
    P = model.config.patch_size
    figs = []
    for name, (series, _) in probe_cases(model.config.context_length).items():
        series = np.asarray(series, dtype=float)
        history, truth = series[:-k_patches * P], series[-k_patches * P:]
        fc = forecast(model, history, k_patches * P, n_samples)
        figs.append(fan_chart_figure(history, np.arange(len(history), len(series)), fc.median,
                                     fc.bands(), truth=truth, title=f"Holdout forecast: {name}"))
    return figs


def _table(rows: list[tuple], header: tuple) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def build_report(history: list[dict], snapshots: list[dict], *, model=None, title: str = "NanoTST training report",
                 meta: dict | None = None, floors: dict | None = None) -> str:
    """The whole report as one HTML string (plotly.js inlined once; no network needed)."""
    if floors is None and model is not None:
        floors = grammar_noise_floor(model.config.context_length, model.config.patch_size)
    sections = [("Loss", loss_figure(history, "Loss (next-patch NLL, or MSE for the MSE rungs)")),
                ("Grammar", grammar_curves_figure(history, floors=floors)),
                ("Predictions over training", snapshots_slider_figure(snapshots))]
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
