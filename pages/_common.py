"""Streamlit helpers shared by the entry script and the pages (not a page itself).

The sidebar model picker, the cached model loaders and cached model calls, the signal picker.
Everything computational lives in the nanotst library; figures in nanotst.plots.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import streamlit as st
import torch

from nanotst import plots
from nanotst.backtest import backtest as run_backtest
from nanotst.checkpoints import (ActiveModel, checkpoint_dir, default_checkpoint_path, load_path, load_upload,
                                 saved_runs, untrained_model)
from nanotst.data import (GRAMMAR, SIGNAL_SOURCES, SPEC_KINDS, Signal, SignalError, SignalSpec,
                          designed_signal, get_signal, signal_names)
from nanotst.evaluate import next_patch_analysis
from nanotst.forecast import forecast
from nanotst.interpret import attention_analysis, pipeline_stages, season_copy
from nanotst.model import with_settings
from nanotst.sessions import Run, RunStore, RunStoreFull
from nanotst.userdata import (EXAMPLES, DataError, example_path, load_series_csv, parse_pasted_values,
                              table_columns, usable_times)

UPLOAD = "upload"
NAVIGATED = "_navigated"  # set by streamlit_app.py once st.navigation has run
DEFAULT = "default"
AFTER_FINE_TUNE = "NanoTST after fine-tune"   # the fine-tuned copy's row in a backtest
FORECAST_SERIES = "forecast_series"  # (name, values) of the series last shown on the Forecast page


def plural(n: int, word: str) -> str:
    """1 layer, 2 layers."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def setup_torch() -> None:
    # 2 shared cores: leave one for the server and the other sessions
    n = max(1, (os.cpu_count() or 2) // 2)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, width="stretch", key=key)


@st.cache_resource(show_spinner=False, max_entries=128)
def _figure(builder: str, *args, **kwargs):
    return getattr(plots, builder)(*args, **kwargs)


def cached_chart(builder: str, *args, key: str, **kwargs) -> None:
    """chart(plots.<builder>(*args, **kwargs)), the figure built once per distinct input.

    Building a Plotly figure (validation, the template) is most of a redraw: ~40 ms per figure
    here. The figure object is shared, never mutated (st.plotly_chart copies it with to_dict).
    """
    chart(_figure(builder, *args, **kwargs), key=key)


# ---------------------------------------------------------------- models

@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _load_file(path: str, mtime_ns: int) -> ActiveModel:
    """Shared by every session, read-only: never trained in place."""
    return load_path(path)


@st.cache_resource(show_spinner=False)
def _untrained() -> ActiveModel:
    return untrained_model()


@st.cache_data(show_spinner=False, ttl=30)
def _list_runs(folder: str, signature: tuple) -> list[tuple[str, str, str | None]]:
    return [(i.name, str(Path(i.path).resolve()), i.error) for i in saved_runs()]


def _runs() -> list[tuple[str, str, str | None]]:
    folder = checkpoint_dir()
    files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _list_runs(str(folder), signature)


def _from_path(path: str) -> ActiveModel:
    p = Path(path)
    return _load_file(str(p.resolve()), p.stat().st_mtime_ns)


def default_model() -> ActiveModel:
    path = default_checkpoint_path()
    if path.is_file():
        try:
            return _from_path(str(path))
        except Exception as err:  # noqa: BLE001 - shown to the user, never a traceback
            st.sidebar.error(f"Could not load the shipped model: {err}")
    return _untrained()


def select_model(choice: str) -> None:
    """Make a saved file (or "default") the active model (from a callback or before the sidebar)."""
    st.session_state["active_choice"] = choice
    run = st.session_state.get("run")
    if run is not None:
        run.active_choice = choice


def _on_choice() -> None:
    select_model(st.session_state["model_choice"])


# ---------------------------------------------------------------- runs that survive a reload

@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    """Shared by every browser session: the server-side training runs (nanotst.sessions)."""
    return RunStore()


class _Holder:
    """One per browser session (kept in its session_state): the identity that holds a run."""

    def __init__(self, store: RunStore):
        self.store = store


def _release_all(holders: list) -> None:
    for holder in holders:
        holder.store.release(holder)


@st.cache_resource(scope="session", on_release=_release_all, show_spinner=False)
def _session_holders() -> list:
    """Released when the browser session disconnects (a reload, a closed tab): its run then
    waits on the server for the reload to claim it."""
    return []


def _holder() -> _Holder:
    holder = st.session_state.get("_run_holder")
    if holder is None:
        holder = st.session_state["_run_holder"] = _Holder(run_store())
        _session_holders().append(holder)
    return holder


def training_waits():
    """A context in which this session's training thread waits between chunks (see
    TrainingSession.page_first); nothing when the session has no run yet."""
    run = st.session_state.get("run")
    return run.training.page_first() if run is not None else contextlib.nullcontext()


def attach_run() -> Run:
    """This browser session's run: the one named by ?run= in the URL when this session may have
    it (after a reload), else a new one whose id goes into the URL."""
    run = st.session_state.get("run")
    if run is not None:
        run_store().touch(run)
        if st.query_params.get("run") != run.run_id:   # a page switch clears the URL's parameters
            st.query_params["run"] = run.run_id
        return run
    wanted = st.query_params.get("run")
    try:
        run = run_store().attach(wanted, _holder())
    except RunStoreFull as err:
        st.error(str(err))
        st.stop()
    st.session_state["run"] = run
    st.session_state["train_session"] = run.training
    if run.active_choice:
        st.session_state["active_choice"] = run.active_choice
    for key, value in run.widgets.items():
        st.session_state[f"kept:{key}"] = value
    if wanted and wanted != run.run_id:
        st.toast("That link's training run is open in another tab (or has expired): "
                 "this tab has a run of its own.")
    st.query_params["run"] = run.run_id
    return run


def _leave_legacy_navigation() -> None:
    """If a deep link (say /forecast) is a fresh server's first request, Streamlit's legacy
    pages/ discovery runs the page file directly and our st.navigation never runs: the sidebar
    lists every file in pages/ and the page config is lost. Switch the legacy mode off and rerun
    through streamlit_app.py, which keeps the requested page. (AppTest takes the legacy path on
    every page switch; a session that has been through streamlit_app.py is left alone.)"""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory and not st.session_state.get(NAVIGATED):
        PagesManager.uses_pages_directory = False
        st.rerun()


def kept(key: str, default) -> dict:
    """Widget arguments (key, on_change, args) that keep the widget's value while the user visits
    other pages.

    Streamlit forgets a widget's value when a run does not draw it (a run of another page), so
    the value lives under a plain session key, is copied into the widget before it is drawn and
    copied back when the user changes it. Pass no default value to the widget itself.
    """
    store = f"kept:{key}"
    st.session_state.setdefault(store, default)
    st.session_state[key] = st.session_state[store]
    return {"key": key, "on_change": _store_kept, "args": (key,)}


def _store_kept(key: str) -> None:
    st.session_state[f"kept:{key}"] = st.session_state[key]
    run = st.session_state.get("run")
    if run is not None and key.startswith("tr_"):   # the Train page's settings survive a reload
        run.widgets[key] = st.session_state[key]


# ---------------------------------------------------------------- views kept in the URL

RUN_PARAM = "run"


def _parse(text: str, default, options=None, bounds=None):
    """A URL parameter as the type of `default`, or None when it is not a valid value."""
    try:
        if isinstance(default, bool):
            value = {"true": True, "false": False}[text.lower()]
        elif isinstance(default, int):
            value = int(text)
        elif isinstance(default, float):
            value = float(text)
            if not np.isfinite(value):
                return None
        else:
            value = text
    except (KeyError, ValueError):
        return None
    if options is not None and value not in options:
        return None
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return None
    return value


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def shared(key: str, default, options=None, bounds=None, param: str | None = None) -> dict:
    """Widget arguments (key=...) for a view setting that lives in the URL as ?param=value, so a
    link or a reload opens the same view. The first time this session draws the widget, a valid
    value in the URL wins over `default` (an invalid one is ignored); after that the widget's
    value is written back to the URL. Pass no default value to the widget itself."""
    param = param or key
    if key not in st.session_state:
        given = st.query_params.get(param)
        value = None if given is None else _parse(given, default, options, bounds)
        st.session_state[key] = default if value is None else value
    elif options is not None and st.session_state[key] not in options:
        st.session_state[key] = default
    text = _text(st.session_state[key])
    if st.query_params.get(param) != text:
        st.query_params[param] = text
        share_box()
    return {"key": key}


def view_link() -> str:
    """This page's address with its view settings and never the private run id."""
    base = (st.context.url or "").split("?")[0]
    params = {k: v for k, v in st.query_params.to_dict().items() if k != RUN_PARAM}
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"{base}?{query}" if query else base


def share_box() -> None:
    """A link that opens this view (signal, seed, layer, horizon, model) in another browser,
    drawn into the sidebar's slot again whenever a setting changes the URL during this run."""
    slot = st.session_state.get("_share_slot")
    if slot is None:
        return
    with slot.container():
        with st.popover("Share this view", width="stretch"):
            st.caption("Opens this page with the same settings; your training run stays private.")
            st.code(view_link(), language=None)


def _model_from_url(runs) -> None:
    """?model=<saved run name> picks that saved file, the first time this session draws the sidebar."""
    if "active_choice" in st.session_state:
        return
    name = st.query_params.get("model")
    paths = {n: path for n, path, err in runs if not err}
    if name in paths:
        st.session_state["active_choice"] = f"file:{paths[name]}"


def sidebar() -> ActiveModel:
    """The model picker: every page calls this first. Sets and returns the active model."""
    _leave_legacy_navigation()
    setup_torch()
    attach_run()
    runs = _runs()
    _model_from_url(runs)
    options = [DEFAULT] + [f"file:{path}" for _, path, _ in runs] + [UPLOAD]
    labels = {DEFAULT: "Shipped default model", UPLOAD: "Upload a checkpoint…"}
    labels.update({f"file:{path}": f"Saved run: {name}" + (" (unreadable)" if err else "")
                   for name, path, err in runs})
    # the choice lives outside the widget so it survives page switches (each page draws the picker)
    choice = st.session_state.get("active_choice", DEFAULT)
    st.session_state["model_choice"] = choice if choice in options else DEFAULT
    with st.sidebar:
        st.markdown("### Active model")
        choice = st.selectbox("Model", options, key="model_choice", format_func=labels.get,
                              on_change=_on_choice,
                              help="Every page analyses this model. Train a run and save it to add one.")
        active = None
        if choice.startswith("file:"):
            try:
                active = _from_path(choice[5:])
            except Exception as err:  # noqa: BLE001
                st.error(str(err))
        elif choice == UPLOAD:
            up = st.file_uploader("NanoTST checkpoint (.pt)", type=["pt"], key="model_upload",
                                  max_upload_size=200)
            if up is not None:
                data = up.getvalue()
                cached = st.session_state.get("uploaded_model")
                if cached is not None and cached[0] == (up.name, len(data), hash(data)):
                    active = cached[1]
                else:
                    try:
                        active = load_upload(data, up.name)
                        st.session_state["uploaded_model"] = ((up.name, len(data), hash(data)), active)
                    except Exception as err:  # noqa: BLE001 - e.g. CheckpointError: a bad file
                        st.error(f"Could not load {up.name}: {err}")
            else:
                st.caption("Until a file is uploaded, the shipped default is used.")
        if active is None:
            active = default_model()
        cfg = active.config
        if active.source == "untrained":
            st.warning("No trained checkpoint found: using an untrained model. "
                       "Train one on the Train page and save it.")
        st.caption(f"**{active.label}** · {cfg.rung} · {active.model.num_params():,} parameters · "
                   f"{plural(cfg.n_layers, 'layer')} × {plural(cfg.n_heads, 'head')}, d_model {cfg.d_model}, "
                   f"patch {cfg.patch_size}")
        names = {f"file:{path}": n for n, path, _ in runs}
        if choice in names:
            if st.query_params.get("model") != names[choice]:
                st.query_params["model"] = names[choice]
        elif "model" in st.query_params:
            del st.query_params["model"]
    st.session_state["_share_slot"] = st.sidebar.empty()
    share_box()
    st.session_state["active_model"] = active
    return active


# ---------------------------------------------------------------- cached model calls

@st.cache_data(show_spinner=False, max_entries=64)
def pipeline(model_key: str, _model, values: np.ndarray):
    return pipeline_stages(_model, values)


@st.cache_data(show_spinner=False, max_entries=64)
def next_patch(model_key: str, _model, values: np.ndarray, noise_std: float | None):
    return next_patch_analysis(_model, values, noise_std)


# ---------------------------------------------------------------- signals

@st.cache_data(show_spinner=False, max_entries=256)
def _named_signal(source: str, name: str, length: int, seed: int) -> Signal:
    return get_signal(source, name, length, seed)


@st.cache_data(show_spinner=False, max_entries=256)
def _designed(spec: SignalSpec) -> Signal:
    return designed_signal(spec)


DESIGN = "design your own"


def signal_picker(key: str, length: int = 512, allow_design: bool = False,
                  default_source: str = GRAMMAR, default_name: str = "sine") -> Signal | None:
    """Source + name (+ seed) selectors, or a full designer. Returns None on an invalid design."""
    sources = list(SIGNAL_SOURCES) + ([DESIGN] if allow_design else [])
    c1, c2, c3 = st.columns([1.2, 1.2, 0.6])
    source = c1.selectbox("Signal source", sources, **shared(f"{key}_source", default_source, sources))
    if source == DESIGN:
        return _designer(key, length)
    names = signal_names(source)
    name = c2.selectbox("Signal", names, **shared(f"{key}_name_{source}",
                                                  default_name if default_name in names else names[0],
                                                  names, param=f"{key}_signal"))
    seed = c3.number_input("Seed", 0, 10_000, **shared(f"{key}_seed", 0, bounds=(0, 10_000)))
    return _named_signal(source, name, length, int(seed))


def _designer(key: str, length: int) -> Signal | None:
    c = st.columns(5)
    kind = c[0].selectbox("Kind", SPEC_KINDS, key=f"{key}_kind")
    period = c[1].slider("Period (samples)", 4.0, 512.0, 64.0, 0.5, key=f"{key}_period")
    amplitude = c[2].slider("Amplitude", 0.0, 5.0, 1.0, 0.1, key=f"{key}_amp")
    slope = c[3].slider("Slope (rise over series)", -10.0, 10.0, 0.0, 0.5, key=f"{key}_slope")
    offset = c[4].slider("Offset", -10.0, 10.0, 0.0, 0.5, key=f"{key}_offset")
    c = st.columns(4)
    noise = c[0].slider("Noise std", 0.0, 2.0, 0.0, 0.05, key=f"{key}_noise")
    jump_pos = c[1].slider("Jump at (0 = none)", 0, length - 1, 0, key=f"{key}_jpos")
    jump_size = c[2].slider("Jump size", -5.0, 5.0, 0.0, 0.25, key=f"{key}_jsize")
    seed = c[3].number_input("Seed", 0, 10_000, 0, key=f"{key}_dseed")
    spec = SignalSpec(kind=kind, length=length, period=period, amplitude=amplitude, slope=slope,
                      offset=offset, noise=noise, jump_pos=jump_pos, jump_size=jump_size, seed=int(seed))
    try:
        return _designed(spec)
    except SignalError as err:
        st.error(str(err))
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def _with_mirror(model_key: str, _model, mirror: bool):
    return with_settings(_model, mirror=mirror)


def mirrored(model_key: str, model, mirror: bool):
    """(key, model): the same weights forecasting mirrored or upright (the model itself where it
    already does), with a key of their own for the caches."""
    if model.config.mirror == mirror:
        return model_key, model
    return f"{model_key}:mirror={mirror}", _with_mirror(model_key, model, mirror)


@st.cache_data(show_spinner="Backtesting and sampling forecast paths…", max_entries=64)
def backtest(model_key: str, _model, values: np.ndarray, holdout: int, period: int | None,
             n_samples: int, tuned_key: str | None = None, _tuned=None):
    """(backtest.Backtest, None) or (None, a one-line message): the one backtest, for synthetic
    signals, the examples and a user's own series (with the fine-tuned copy's row when given)."""
    try:
        others = None if _tuned is None else {AFTER_FINE_TUNE: _tuned}
        return run_backtest(_model, values, holdout, period=period, n_samples=n_samples,
                            others=others), None
    except (DataError, ValueError) as err:
        return None, str(err)


@st.cache_data(show_spinner=False, max_entries=32)
def future_forecast(model_key: str, _model, values: np.ndarray, horizon: int, n_samples: int):
    return forecast(_model, values, horizon, n_samples=n_samples)


@st.cache_data(show_spinner=False, max_entries=64)
def attention(model_key: str, _model, values: np.ndarray):
    return attention_analysis(_model, values)


@st.cache_data(show_spinner=False, max_entries=64)
def season(model_key: str, _model, values: np.ndarray):
    return season_copy(_model, values)


# ---------------------------------------------------------------- a user's own series

AUTO, NO_TIME = "(automatic)", "(none: step numbers)"
UPLOAD_CSV, PASTE = "Upload a CSV", "Paste values"
MAX_CSV_MB = 10
# the library's messages name the CLI's flags; the page says where the same switch is here
_APP_HINTS = {"--fill interpolate": "Tick “Fill missing values by interpolation” above.",
              "--column": "Pick the value column above."}


@st.cache_data(show_spinner=False, max_entries=32)
def _csv_columns(data: bytes):
    try:
        columns, head = table_columns(io.BytesIO(data), MAX_CSV_MB * 1_000_000)
        return columns, head, None
    except DataError as err:
        return None, None, str(err)


@st.cache_data(show_spinner=False, max_entries=32)
def _load_csv(data: bytes | None, path: str | None, column, time_column, fill, patch_size: int):
    """(UserSeries, None) or (None, the library's one-line message)."""
    try:
        source = path if path is not None else io.BytesIO(data)
        return load_series_csv(source, column=column, time_column=time_column, fill=fill,
                               max_bytes=MAX_CSV_MB * 1_000_000, patch_size=patch_size), None
    except DataError as err:
        return None, str(err)


@st.cache_data(show_spinner=False, max_entries=32)
def _parse_pasted(text: str, fill, patch_size: int):
    try:
        return parse_pasted_values(text, fill=fill, patch_size=patch_size), None
    except DataError as err:
        return None, str(err)


def data_error(message: str) -> None:
    """A DataError as the library words it, plus where to change it in the app."""
    st.error(message)
    for flag, hint in _APP_HINTS.items():
        if flag in message:
            st.caption(hint)


def user_series_picker(source: str, patch_size: int, key: str = "us"):
    """An example file (source is one of userforecast.EXAMPLES) or the user's CSV / pasted values.

    Shows the validation result (errors, notes) and a preview. Returns a userdata.UserSeries or
    None (nothing given yet, or an error shown).
    """
    fill = "interpolate" if st.checkbox("Fill missing values by interpolation", key=f"{key}_fill",
                                        help="Trims missing values at the ends and interpolates "
                                             "the ones inside; otherwise they are an error.") else None
    drop_times = False
    if source in EXAMPLES:
        series, error = _load_csv(None, str(example_path(source)), None, None, fill, patch_size)
    elif st.radio("Input", [UPLOAD_CSV, PASTE], horizontal=True, key=f"{key}_input") == UPLOAD_CSV:
        up = st.file_uploader("CSV file (one value column, optionally a time column)",
                              type=["csv", "txt", "tsv"], key=f"{key}_csv", max_upload_size=MAX_CSV_MB)
        if up is None:
            st.caption(f"Comma, semicolon or tab separated; up to {MAX_CSV_MB} MB.")
            return None
        data = up.getvalue()
        columns, _, error = _csv_columns(data)
        if error is not None:
            data_error(error)
            return None
        c1, c2 = st.columns(2)
        column = c1.selectbox("Value column", [AUTO] + columns, key=f"{key}_col")
        time_column = c2.selectbox("Time column (x axis)", [AUTO, NO_TIME] + columns,
                                   key=f"{key}_tcol")
        drop_times = time_column == NO_TIME
        series, error = _load_csv(data, None, None if column == AUTO else column,
                                  None if time_column in (AUTO, NO_TIME) else time_column,
                                  fill, patch_size)
    else:
        text = st.text_area("Values, separated by commas, spaces or new lines", key=f"{key}_paste",
                            height=110, placeholder="12.1, 13.4, 12.9, 14.2, …")
        if not text.strip():
            st.caption(f"Paste at least {patch_size} numbers (decimals with a point).")
            return None
        series, error = _parse_pasted(text, fill, patch_size)
    if error is not None:
        data_error(error)
        return None
    if drop_times:
        series = replace(series, times=None, time_name=None)
    for note in series.notes:
        st.info(note)
    _preview(series, key)
    return series


def _preview(series, key: str) -> None:
    x = series.times if usable_times(series.times) else None
    c1, c2 = st.columns([1, 2])
    with c1:
        times = series.times[:6] if series.times is not None else None
        if times is not None and np.issubdtype(times.dtype, np.datetime64):
            times = pd.DatetimeIndex(times).strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "")
        cols = {series.time_name: times} if times is not None else {}
        cols[series.name] = series.values[:6]
        st.dataframe(pd.DataFrame(cols), hide_index=True, width="stretch")
        st.caption(f"{len(series)} values · min {series.values.min():.4g} · "
                   f"max {series.values.max():.4g}")
    with c2:
        cached_chart("series_preview_figure", series.values, x,
                     title=f"{series.name}: {len(series)} values",
                     x_label=series.time_name if x is not None else "time step",
                     y_label=series.name, key=f"{key}_preview")


def experiment_forecasts(run, values: np.ndarray, horizon: int) -> dict:
    """An experiment's variants forecasting one test signal, computed once per finished run."""
    cache = st.session_state.setdefault("exp_forecasts", {})
    key = (id(run), horizon, hash(values.tobytes()))
    if key not in cache:
        cache.clear()
        cache[key] = run.forecasts(values, horizon)
    return cache[key]
