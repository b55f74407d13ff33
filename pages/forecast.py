"""Forecast: a synthetic signal, a shipped example or the user's own series. Fan chart, backtest
against the naive, seasonal naive and linear baselines, calibration (coverage per band, PIT),
an optional fine-tune of a copy of the model, and the forecast as CSV."""
import hashlib
import time

import pandas as pd
import streamlit as st

from nanotst.backtest import ERROR_COLUMNS, Backtest, Calibration
from nanotst.data import PROBE
from nanotst.metrics import negligible, seasonal_naive_scale
from nanotst.train import fine_tune
from nanotst.userdata import EXAMPLES, DataError, future_times, usable_times
from pages import _common as ui

active = ui.sidebar()
cfg = active.config
P = cfg.patch_size
SYNTHETIC, OWN = "Synthetic signal", "Your own series"
MAX_HORIZON = 8  # patches

st.title("Forecast")
st.markdown("The model forecasts whole patches autoregressively: it samples a next patch from its "
            "Gaussian, appends it and goes on. Many sampled paths give the fan chart. Hold out the "
            "end of a series to see how the forecast compares with the truth and with simple "
            "baselines, and whether its bands are calibrated.")
mirror = st.toggle("Mirror the forecast", value=cfg.mirror, key=f"fc_mirror:{active.key}",
                   help="Every other sample path forecasts the series upside down (-x) and is turned "
                        "back, with its partner's noise, so the model's leanings one way or the other "
                        "average out. The shipped model forecasts mirrored.")
model_key, model = ui.mirrored(active.key, active.model, mirror)
SOURCES = [SYNTHETIC, *EXAMPLES, OWN]
source = st.radio("Series", SOURCES, horizontal=True, **ui.shared("fc_series", SYNTHETIC, SOURCES),
                  help="The examples are real public-domain series shipped in examples/.")


def metrics_table(table: pd.DataFrame) -> None:
    """Scores per method (rows) with three decimals, missing ones as "–", and the lowest error
    of each error column highlighted: which method wins is seen at a glance. A static table: a
    few rows need no scrolling or sorting, and it redraws faster than the data grid."""
    table = table.apply(pd.to_numeric, errors="coerce")
    errors = [c for c in ERROR_COLUMNS if c in table and table[c].notna().any()]
    st.table(table.style.format("{:.3f}", na_rep="–")
             .highlight_min(subset=errors, props="background-color: #d7ecd9; font-weight: bold"))


def verdict(bt: Backtest) -> None:
    """Say it in words when a baseline beats the model (MAE on the held-out values)."""
    better = bt.best_baseline("mae")
    if better is not None:
        name, value = better
        ours = bt.scores[bt.model]["mae"]
        if negligible(value, bt.truth):  # a noise-free periodic signal repeated exactly
            st.warning(f"On these held-out values **{name}** beats {bt.model}: it repeats them "
                       f"exactly (MAE ≈ 0, only rounding) against {ours:.3g}.")
        else:
            st.warning(f"On these held-out values **{name}** beats {bt.model}: MAE {value:.3g} "
                       f"against {ours:.3g} ({ours / value:.1f}× its error).")


def mase_note(bt: Backtest) -> str:
    period = f"period {bt.period}{' (detected)' if bt.period_detected else ''}"
    if seasonal_naive_scale(bt.history, bt.period) == 0:
        return (f"MASE is – here: the history repeats exactly with {period}, so the in-sample "
                "seasonal naive error it is scaled by is zero.")
    return f"MASE is scaled by the in-sample seasonal naive error with {period}."


def calibration_section(cal: Calibration | None, after: Calibration | None = None) -> None:
    st.subheader("Calibration on the held-out values")
    if cal is None:
        st.info(f"The {cfg.rung} rung predicts no σ: its forecast has no spread to calibrate.")
        return
    cov, pit = {"NanoTST": cal.coverage}, {"NanoTST": cal.pit}
    if after is not None:
        cov[ui.AFTER_FINE_TUNE], pit[ui.AFTER_FINE_TUNE] = after.coverage, after.pit
    ui.cached_chart("calibration_figure", cov, pit, bins=min(10, max(4, len(cal.pit) // 4)),
                    key="fc_calibration")
    st.caption(f"{len(cal.pit)} held-out values. A calibrated forecast's points sit on the diagonal "
               "and its PIT histogram is flat; below the diagonal / a U shape: bands too narrow. "
               "Neighbouring values are correlated, so a short holdout gives a rough picture.")


def synthetic() -> None:
    c = st.columns([3, 1, 1])
    horizon = c[1].slider("Horizon (patches)", 1, MAX_HORIZON,
                          **ui.shared("fc_horizon", 2, bounds=(1, MAX_HORIZON)))
    n_samples = c[2].select_slider("Sample paths", [10, 50, 100, 200, 500],
                                   **ui.shared("fc_samples", 100, [10, 50, 100, 200, 500]))
    with c[0]:
        # drawn at its longest and cut, so a longer horizon extends the same series (generated
        # signals are scaled to their length: drawn per horizon, the context would change too)
        signal = ui.signal_picker("fc", cfg.context_length + MAX_HORIZON * P,
                                  default_source=PROBE, default_name="sine_low")
    show_paths = st.slider("Sample paths to draw", 0, 20, 5, key="fc_show")
    values = signal.values[:cfg.context_length + horizon * P]
    # the signal's own season when it has one the history holds; detected otherwise
    period = signal.period if signal.period is not None and signal.period < cfg.context_length else None
    bt, error = ui.backtest(model_key, model, values, horizon * P, period, n_samples)
    if error is not None:
        ui.data_error(error)
        return
    for note in bt.notes:
        st.caption(note)
    fc = bt.forecast
    ui.cached_chart("fan_chart_figure", bt.history, bt.time_index, fc.median, fc.bands(),
                    samples=fc.samples[:show_paths], truth=bt.truth,
                    title=f"Forecast of {signal.name}: {n_samples} paths, "
                          f"{horizon} patch(es) = {bt.horizon} steps", key="fc_fan")
    st.caption("The chart opens on the end of the context and the forecast; double-click it for "
               "the whole series.")
    st.subheader("Against the baselines")
    verdict(bt)
    metrics_table(bt.table())
    st.caption(f"Lower is better for MAE, MSE, MASE and CRPS (the lowest is highlighted); a "
               f"calibrated model's coverage_80 is near 0.8. {mase_note(bt)} "
               "Baselines are point forecasts, so no coverage.")
    # the table's coverage columns already give the three bands: the figure is one click away
    if st.toggle("Show the calibration figure (coverage per band, PIT histogram)", False,
                 key="fc_calibration_on"):
        calibration_section(bt.calibration())
    st.download_button("Download forecast CSV", data=bt.frame().to_csv(index=False),
                       file_name="nanotst_forecast.csv", mime="text/csv", on_click="ignore",
                       key="fc_download")


def fine_tune_section(series, holdout: int, state_key: tuple):
    """Fine-tune a copy (never the cached, shared model) on the values before the holdout."""
    tuned = st.session_state.get("fc_tuned")
    tuned = tuned if tuned is not None and tuned[0] == state_key else None
    with st.expander("Fine-tune a copy of the model on this series", expanded=tuned is not None):
        st.caption(f"Trains a private copy on windows of the first {len(series) - holdout} values "
                   "only, never on the held-out part; the shared model is not changed.")
        c = st.columns([2, 2, 1, 1])
        steps = c[0].slider("Steps", 5, 200, 30, 5, key="fc_ft_steps")
        lr = c[1].select_slider("Learning rate", [3e-5, 1e-4, 3e-4, 1e-3], 1e-4, key="fc_ft_lr")
        if c[2].button("Fine-tune", key="fc_ft_run", type="primary"):
            bar = st.progress(0.0, text="Fine-tuning…")
            t0 = time.perf_counter()
            try:
                res = fine_tune(active.model, series.values, holdout, steps=steps, lr=lr,
                                  progress=lambda i, n, loss: bar.progress(
                                      i / n, text=f"step {i}/{n} · loss {loss:.3f}"))
                tuned = (state_key, f"{state_key}:{steps}:{lr}:{time.time_ns()}", res,
                         time.perf_counter() - t0)
                st.session_state["fc_tuned"] = tuned
            except DataError as err:
                ui.data_error(str(err))
            bar.empty()
        if tuned is not None and c[3].button("Discard", key="fc_ft_discard"):
            st.session_state.pop("fc_tuned", None)
            tuned = None
        if tuned is not None:
            res = tuned[2]
            st.caption(f"Fine-tuned {len(res.losses)} steps in {tuned[3]:.1f} s on {res.n_windows} "
                       f"windows of {res.window} values; loss {res.losses[0]:.3f} → {res.losses[-1]:.3f}.")
    return tuned


def own_series() -> None:
    series = ui.user_series_picker(source, P, key="fc_us")
    if series is None:
        return
    st.session_state[ui.FORECAST_SERIES] = (series.name, series.values)   # the Inside page offers it
    n = len(series)
    c = st.columns(4)
    holdout = int(c[0].number_input("Hold out the last values", 1, max(1, n - P),
                                    min(P, max(1, n - P)), key="fc_holdout_n"))
    horizon = int(c[1].number_input("Forecast ahead (values)", 1, 16 * P, P, key="fc_ahead"))
    known = EXAMPLES[source].period if source in EXAMPLES else None
    period = c[2].number_input("Season period", min_value=1, value=known, placeholder="detect",
                               key=f"fc_period_{known}",
                               help="The series' season in values (an example's is filled in). "
                                    "Empty: detected by autocorrelation on the values before the holdout.")
    n_samples = c[3].select_slider("Sample paths", [50, 100, 200, 500], 200, key="fc_us_samples")
    digest = hashlib.sha1(series.values.tobytes()).hexdigest()[:16]
    results = st.container()          # drawn above the fine-tune controls, filled after them
    tuned = fine_tune_section(series, holdout, (active.key, digest, holdout))
    with results:
        _results(series, holdout, horizon, period, n_samples, tuned)


def _results(series, holdout, horizon, period, n_samples, tuned) -> None:
    n = len(series)
    tuned_key, tuned_model = (None, None) if tuned is None else ui.mirrored(tuned[1], tuned[2].model, mirror)
    bt, error = ui.backtest(model_key, model, series.values, holdout,
                            None if period is None else int(period), n_samples, tuned_key, tuned_model)
    if error is not None:
        ui.data_error(error)
        return
    for note in bt.notes:
        st.caption(note)
    use_tuned = tuned is not None and st.toggle("Forecast ahead with the fine-tuned copy", True,
                                                key="fc_use_tuned")
    fc = ui.future_forecast(tuned_key, tuned_model, series.values, horizon, n_samples) \
        if use_tuned else ui.future_forecast(model_key, model, series.values, horizon, n_samples)
    times = series.times if usable_times(series.times) else None
    future_x = future_times(times, horizon)
    x_label = series.time_name if times is not None else "time step"
    shown = slice(None) if st.checkbox("Show the whole series", key="fc_whole") \
        else slice(-cfg.context_length, None)
    x = None if times is None else times[shown]
    t_ahead, t_back = st.tabs(["Forecast ahead", "Backtest on the held-out values"])
    with t_ahead:
        ui.cached_chart(
            "series_fan_chart_figure", series.values[shown], fc.median, fc.bands(), x, future_x,
            samples=fc.samples[:5],
            title=f"{series.name}: the next {horizon} values ({n_samples} paths"
                  f"{', fine-tuned copy' if use_tuned else ''})",
            x_label=x_label, y_label=series.name, history_name=series.name, key="fc_user_fan")
    with t_back:
        hx = None if times is None else times[:n - holdout][shown]
        ui.cached_chart(
            "series_fan_chart_figure", bt.history[shown], bt.forecast.median, bt.forecast.bands(), hx,
            None if times is None else times[n - holdout:], samples=bt.forecast.samples[:5],
            truth=bt.truth, title=f"Backtest: the last {holdout} values forecast from the rest",
            x_label=x_label, y_label=series.name, history_name=series.name, key="fc_user_backtest")
    st.subheader(f"Backtest on the last {holdout} values")
    verdict(bt)
    metrics_table(bt.table())
    st.caption(f"Lower is better for MAE, MSE, MASE and CRPS (the lowest is highlighted); coverage_80 "
               f"near 0.8 is calibrated. {mase_note(bt)} Baselines are point forecasts: no coverage.")
    calibration_section(bt.calibration(), bt.calibration(ui.AFTER_FINE_TUNE) if tuned is not None else None)
    c = st.columns(2)
    c[0].download_button("Download forecast CSV", key="fc_user_download", on_click="ignore",
                         data=fc.to_frame(future_x).to_csv(index=False),
                         file_name=f"{series.name}_forecast.csv", mime="text/csv")
    c[1].download_button("Download backtest CSV (with the truth)", key="fc_user_backtest_download",
                         on_click="ignore",
                         data=bt.frame(None if times is None else times[n - holdout:]).to_csv(index=False),
                         file_name=f"{series.name}_backtest.csv", mime="text/csv")


if source == SYNTHETIC:
    synthetic()
else:
    own_series()
