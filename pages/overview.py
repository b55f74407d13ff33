"""Overview: what NanoTST is, its pipeline with real tensor shapes, and the active model's card."""
import pandas as pd
import streamlit as st

from nanotst.checkpoints import model_card
from pages import _common as ui

active = ui.sidebar()
cfg = active.config

st.title("NanoTST Explorer")
st.markdown(
    "NanoTST is a tiny GPT-style **time-series transformer**. It reads a series of up to "
    f"{cfg.context_length} values, **instance-normalizes** it (mean 0, std 1), cuts it into "
    f"**{cfg.n_patches} patches of {cfg.patch_size}** (its tokens), embeds each patch into "
    f"{cfg.d_model} numbers, runs **{cfg.n_layers} causal transformer blocks** over them and, at "
    "every position, predicts the **next patch** as a Gaussian: a mean μ and an uncertainty σ. "
    "Watch it learn flat signals first, then trends, then sine waves (Train), see what it "
    "attends to (Attention) and how sure it is (Signals, Forecast).")

st.header("The pipeline, with real tensor shapes")
signal = ui.signal_picker("ov")
stages = ui.pipeline(active.key, active.model, signal.values)
ui.cached_chart("pipeline_diagram_figure", tuple((s.name, s.shape) for s in stages), key="ov_diagram")
show = st.multiselect("Stages to draw", [s.name for s in stages],
                      default=[s.name for s in stages if not s.name.startswith("block ")]
                      + [s.name for s in stages if s.name.startswith("block ")][-1:],
                      key="ov_stages")
cols = st.columns(2)
for i, s in enumerate(x for x in stages if x.name in show):
    with cols[i % 2]:
        ui.cached_chart("stage_figure", s.name, s.array, f"({s.shape})", cfg.patch_size,
                        key=f"ov_stage_{s.name}")
        st.caption(s.note)

st.header("The active model")
card = model_card(active)
c = st.columns(4)
c[0].metric("Rung", card["rung"])
c[1].metric("Parameters", f"{card['parameters']:,}")
c[2].metric("Source", card["source"])
c[3].metric("Training steps", (card.get("training") or {}).get("steps") or "–")
left, right = st.columns(2)
with left:
    st.subheader("Config")
    st.table(pd.DataFrame({"value": {k: str(v) for k, v in card["config"].items()}}))
    if card.get("training"):
        st.subheader("Training")
        st.table(pd.DataFrame({"value": {k: str(v) for k, v in card["training"].items()}}))
        if "continued from" in card["training"]:
            st.caption("This run started from the weights of an earlier one; the steps and "
                       "settings above are this run's only.")
        if "averaged from" in card["training"]:
            st.caption("These weights are the mean of several models' weights (a model soup); the "
                       "steps, settings and training data shown are the first model's run. The "
                       "grammar test is the averaged model's own.")
    if active.source == "default":
        st.caption("How the shipped model was trained, and every run tried: `checkpoints/README.md`.")
with right:
    st.subheader("Grammar test (next-patch MSE, normalized)")
    if card["grammar"]:
        rows = {case: {"MSE": g.get("mse"), "mean σ": g.get("sigma"),
                       "noise floor": (card.get("noise_floor") or {}).get(case)}
                for case, g in card["grammar"].items()}
        st.table(pd.DataFrame(rows).T.style.format("{:.4f}", na_rep="–"))
        st.caption("The noise floor is the best MSE any model can reach: noise cannot be predicted.")
    else:
        st.info("No grammar metrics stored with this model.")
    mix = (card.get("data") or {}).get("mix")
    if mix:
        st.subheader("Trained on")
        ui.cached_chart("mix_figure", mix, key="ov_mix")
        st.caption(f"{card['data'].get('n_series')} synthetic series of {card['data'].get('length')} "
                   f"values, seed {card['data'].get('seed')}.")
    elif active.source == "untrained":
        st.warning("This model is untrained: its predictions are noise.")
