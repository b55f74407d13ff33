"""Attention: what each patch looks at, per layer and head, over the signal and rolled out."""
import pandas as pd
import streamlit as st

from nanotst.data import PROBE
from nanotst.interpret import top_sources_rows
from pages import _common as ui

active = ui.sidebar()
cfg = active.config

st.title("Attention")
st.markdown("Each row of a heatmap is a **query patch**: the position that is predicting its next "
            "patch. Each column is a **key patch** it may attend to. A causal model cannot look at "
            "the future: those cells are grey.")
signal = ui.signal_picker("att", cfg.context_length, default_source=PROBE, default_name="sine_low")
a = ui.attention(active.key, active.model, signal.values)
if a is None:
    st.info(f"The {cfg.rung} rung has no attention: it maps each patch straight to the next one. "
            "Pick a model of another rung in the sidebar.")
    st.stop()
P = cfg.patch_size
L, H = a.maps.shape[:2]

c1, c2 = st.columns([3, 2])
with c1:
    views = ["rollout (all layers)"] + [f"layer {i} (heads averaged)" for i in range(L)]
    view = st.radio("Weights", views, horizontal=True, key="att_view")
    w = a.last_sources if view == views[0] else a.last_per_layer[views.index(view) - 1]
    ui.cached_chart("attention_over_signal_figure", a.values, w, P,
                    title=f"What the prediction of patch {len(w)} draws on ({view})", key="att_signal")
with c2:
    ui.cached_chart("attention_matrix_figure", a.rollout, P, a.causal, key="att_rollout")

st.subheader(f"Every layer × head ({L} × {H})")
c = st.columns(2)
layers = c[0].multiselect("Layers", list(range(L)), list(range(L)), key="att_layers")
heads = c[1].multiselect("Heads", list(range(H)), list(range(H)), key="att_heads")
if layers and heads:
    layers, heads = sorted(layers), sorted(heads)
    ui.cached_chart("attention_heatmaps_figure", a.maps[layers][:, heads], P, a.causal,
                    title="Attention weights (rows sum to 1)", layer_ids=tuple(layers),
                    head_ids=tuple(heads), key="att_grid")

st.subheader("Top-3 sources per patch (last layer, heads averaged)")
# a static table: 16 short rows, and the page then loads no data-grid code (first render)
st.table(pd.DataFrame(top_sources_rows(a, P)).set_index("query patch")
         .style.format(na_rep="–"))  # the first patches have fewer than 3 sources
