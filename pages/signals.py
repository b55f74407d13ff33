"""Signals: pick or design a signal, see it as the model does, and its next-patch predictions."""
import streamlit as st

from pages import _common as ui

active = ui.sidebar()
cfg = active.config

st.title("Signals")
st.markdown("Pick a signal family or design your own. The model sees it normalized and cut into "
            "patches; at every patch it predicts the next one with a mean μ and an uncertainty σ.")
signal = ui.signal_picker("sig", cfg.context_length, allow_design=True, default_source=ui.DESIGN)
if signal is None:
    st.stop()

a = ui.next_patch(active.key, active.model, signal.values, signal.noise_std)
P = cfg.patch_size

c1, c2 = st.columns(2)
with c1:
    ui.cached_chart("series_figure", signal.values, P, title=f"Raw series: {signal.name}", key="sig_raw")
with c2:
    ui.cached_chart("series_figure", a.normalized, P, y_label="normalized value",
                    title=f"Normalized: (x − {a.loc:.3g}) / {a.scale:.3g}", key="sig_norm")

units = st.radio("Units", ["normalized", "original"], horizontal=True, key="sig_units")
scale, loc = (1.0, 0.0) if units == "normalized" else (a.scale, a.loc)
sigma = None if a.sigma is None else a.sigma * scale
ui.cached_chart("next_patch_figure", a.target * scale + loc, a.mu * scale + loc, sigma, P,
                context=a.normalized[:P] * scale + loc, y_label=f"{units} value", key="sig_pred")

c1, c2 = st.columns([2, 1])
with c1:
    ui.cached_chart("sigma_vs_noise_figure", a.mean_sigma, a.rms_error, a.true_noise, key="sig_sigma")
with c2:
    st.metric("Next-patch MSE (normalized)", f"{a.mse:.4f}")
    if a.mean_sigma is not None:
        st.metric("Mean predicted σ", f"{a.mean_sigma.mean():.3f}")
    else:
        st.info(f"The {cfg.rung} rung predicts no σ (it is trained with MSE).")
    if a.true_noise is not None:
        st.metric("True noise σ (normalized)", f"{a.true_noise:.3f}",
                  help="The noise std the signal was generated with, divided by the series' std.")
    st.caption("Where the signal is predictable, a calibrated model's σ tracks the true noise. "
               "It cannot see a jump coming: at a jump the error spikes while σ stays where it "
               "was, and σ rises only in the patches after it, once the jump is in the context.")

with st.expander("Patch grid: the tokens the model reads"):
    ui.cached_chart("patch_grid_figure", a.patches, patch_size=P, key="sig_grid")
