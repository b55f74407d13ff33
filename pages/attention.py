"""Attention: what each patch looks at, per layer and head, over the signal and rolled out."""
import numpy as np
import pandas as pd
import streamlit as st

from nanotst.data import PROBE
from nanotst.forecast import averaged_seasons
from nanotst.model import CHOICE_TOKENS
from nanotst.interpret import attention_scores, query_sources, top_sources_rows
from pages import _common as ui

active = ui.sidebar()
cfg = active.config


@st.cache_data(show_spinner=False, max_entries=32)
def scores(model_key: str, _model, values: np.ndarray, layer: int, head: int) -> np.ndarray:
    return attention_scores(_model, values, layer, head)


st.title("Attention")
st.markdown("Patches are numbered **0–15 by the values they read** (patch 0 is the oldest), on "
            "every chart and table here. Each row of a heatmap is a **query patch**: it predicts "
            "the patch after it, so the last row (patch 15) is where the forecast's first patch "
            "comes from. Each column is a **key patch** it may attend to. A causal model cannot "
            "look at the future: those cells are grey.")
signal = ui.signal_picker("att", cfg.context_length, default_source=PROBE, default_name="sine_low")
a = ui.attention(active.key, active.model, signal.values)
if a is None:
    st.info(f"The {cfg.rung} rung has no attention: it maps each patch straight to the next one. "
            "Pick a model of another rung in the sidebar.")
    st.stop()
P = cfg.patch_size
L, H, N = a.maps.shape[:3]

c1, c2 = st.columns([3, 2])
with c1:
    views = ["rollout (all layers)"] + [f"layer {i} (heads averaged)" for i in range(L)]
    view = st.radio("Weights", views, horizontal=True, **ui.shared("att_view", views[0], views))
    c = st.columns([2, 1])
    query = c[0].slider("Query patch", 0, N - 1, **ui.shared("att_query", N - 1, bounds=(0, N - 1)),
                        help=f"The patch whose prediction you look at; {N - 1} predicts the forecast.")
    no_sink = c[1].toggle("Hide patch 0", **ui.shared("att_no_sink", False),
                          help="Leave out the weight parked on patch 0 and renormalize the rest.")
    layer = None if view == views[0] else views.index(view) - 1
    w = query_sources(a, query, layer, without_sink=no_sink)
    target = "the forecast" if query == N - 1 else f"patch {query + 1}"
    ui.cached_chart("attention_over_signal_figure", a.values, w, P,
                    title=f"What patch {query} draws on to predict {target} "
                          f"({'rollout' if layer is None else f'layer {layer}'})",
                    key="att_signal")
with c2:
    ui.cached_chart("attention_matrix_figure", a.rollout, P, a.causal, key="att_rollout")
sink = float(a.rollout[1:, 0].mean()) if N > 1 else 0.0
st.caption(f"**Why so much on patch 0?** Every query can see patch 0, and a softmax must put its "
           f"weight somewhere: heads with nothing useful to look at park it on the first patch (an "
           f"*attention sink*, also seen in language models). Rolled out, queries 1–{N - 1} give "
           f"patch 0 on average {sink:.0%} of their weight. “Hide patch 0” shows the rest.")

copy = ui.season(active.key, active.model, signal.values)
if copy is not None:
    st.subheader("Copying the season")
    moved = (f", moved up or down by how far the level moved in those {copy.lag} values (the model's "
             "config `seasonal_level`)" if active.config.seasonal_level else "")
    chooses = active.config.choose_cycles and active.config.season_cycles > 1     # said below
    averaged = f" ({averaged_seasons(active.config)})" if averaged_seasons(active.config) and not chooses else ""
    found = (f"This window repeats itself every **{copy.lag} values**, a season shorter than a patch, so "
             f"each patch also reads the last {copy.lag} values before the patch it predicts, repeated "
             f"across it{averaged}{moved}" if copy.lag < P else
             f"This window repeats itself best **{copy.lag} values back**, so each patch also reads "
             f"the {P} values {copy.lag} steps before the patch it predicts{averaged}{moved}"
             if copy.lag > P else
             "No season repeats twice in this window, so each patch's “seasonal patch” is simply its "
             f"own{moved}")
    st.markdown(f"{found}, and adds a share of them to its forecast: its **gate**, read from its own "
                f"state (0 ignores them, 1 adds all of them on top of its own guess). A clean "
                f"repeating shape opens the gates; noise, a trend or a broken pattern closes them.")
    if chooses:
        shown = ("The number on each bar: how many seasons back its copy averages." if copy.seasons.max() > 1
                 else "Here every patch copies the last season alone: no mean of older ones would have "
                      "forecast its recent patches better.")
        st.markdown(f"Each patch takes the mean of the last 1 to {active.config.season_cycles} seasons, "
                    f"whichever would have forecast its own last {CHOICE_TOKENS} patches best: a steady season "
                    f"is averaged over several noisy cycles, one that just changed is copied from the last. "
                    f"{shown}")
    ui.cached_chart("season_gates_figure", copy.gates, copy.lag, P, copy.seasons, key="att_season")

st.subheader(f"Every layer × head ({L} × {H})")
c = st.columns(2)
layers = c[0].multiselect("Layers", list(range(L)), list(range(L)), key="att_layers")
heads = c[1].multiselect("Heads", list(range(H)), list(range(H)), key="att_heads")
if layers and heads:
    layers, heads = sorted(layers), sorted(heads)
    ui.cached_chart("attention_heatmaps_figure", a.maps[layers][:, heads], P, a.causal,
                    title="Attention weights (rows sum to 1)", layer_ids=tuple(layers),
                    head_ids=tuple(heads), key="att_grid")

st.subheader("Where one head's weights come from")
c = st.columns([1, 1, 3])
s_layer = c[0].selectbox("Layer", list(range(L)), **ui.shared("att_s_layer", L - 1, list(range(L))))
s_head = c[1].selectbox("Head", list(range(H)), **ui.shared("att_s_head", 0, list(range(H))))
c[2].caption("Each weight is the softmax of a row of scores: the query patch's query vector times "
             "every key patch's key vector, divided by √(head size). A score a few units above "
             "the rest of its row takes nearly all the weight.")
ui.cached_chart("attention_matrix_figure", scores(active.key, active.model, signal.values, s_layer, s_head),
                P, a.causal, title=f"Layer {s_layer} · head {s_head}: query·key scores before the softmax",
                scores=True, key="att_scores")

st.subheader("Top-3 sources per query patch (last layer, heads averaged)")
# a static table: 16 short rows, and the page then loads no data-grid code (first render)
st.table(pd.DataFrame(top_sources_rows(a, P)).set_index("query patch")
         .style.format(na_rep="–"))  # the first patches have fewer than 3 sources
