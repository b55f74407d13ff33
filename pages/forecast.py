"""Forecast: sample future paths, draw the fan chart against the held-out truth, compare with
the naive, seasonal naive and linear baselines, download the numbers."""
import pandas as pd
import streamlit as st

from nanotst import app_state as A
from nanotst import plots
from pages import _common as ui

active = ui.sidebar()
cfg = active.config

st.title("Forecast")
st.markdown("The model forecasts whole patches autoregressively: it samples a next patch from its "
            "Gaussian, appends it and goes on. Many sampled paths give the fan chart. The last "
            "patches of the signal are held out, so you can see how the forecast compares with the "
            "truth and with simple baselines.")

c = st.columns([3, 1, 1])
with c[1]:
    horizon = st.slider("Horizon (patches)", 1, 8, 2, key="fc_horizon")
with c[2]:
    n_samples = st.select_slider("Sample paths", [10, 50, 100, 200, 500], 100, key="fc_samples")
with c[0]:
    # Where a user's own series will come from: an uploaded CSV becomes one more signal source
    # here (see pages/_common.signal_picker); the rest of the page works on any 1-D array.
    signal = ui.signal_picker("fc", cfg.context_length + horizon * cfg.patch_size,
                              default_source=A.PROBE, default_name="sine_low")
show_paths = st.slider("Sample paths to draw", 0, 20, 5, key="fc_show")

r = ui.forecast(active.key, active.model, signal.values, horizon, n_samples, 0)
for note in r.notes:
    st.caption(note)
if not r.probabilistic:
    st.info(f"The {cfg.rung} rung predicts no σ: every path is the same point forecast.")
ui.chart(plots.fan_chart_figure(r.context, r.horizon_t, r.median, r.bands,
                                samples=r.samples[:show_paths], truth=r.truth,
                                title=f"Forecast of {signal.name}: {n_samples} paths, "
                                      f"{horizon} patch(es) = {len(r.truth)} steps"), key="fc_fan")

st.subheader("Against the baselines")
table = pd.DataFrame(r.table()).set_index("method")
c1, c2 = st.columns([3, 2])
with c1:
    st.dataframe(table.style.format("{:.3f}", na_rep="–"), width="stretch")
    st.caption(f"Lower is better for MAE, MSE, MASE and CRPS; a calibrated model's coverage_80 is "
               f"near 0.8. MASE is scaled by the seasonal naive error with period {r.period} "
               "(detected from the context). Baselines are point forecasts, so no coverage.")
with c2:
    metric = st.radio("Metric", ["mae", "mse", "mase", "crps"], horizontal=True, key="fc_metric")
    ui.chart(plots.metrics_bar_figure(table.to_dict("index"), metric), key="fc_bars")

st.download_button("Download forecast CSV", data=r.csv(), file_name="nanotst_forecast.csv",
                   mime="text/csv", on_click="ignore", key="fc_download")
