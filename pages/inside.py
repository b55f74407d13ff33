"""Inside: edit the context, switch heads off, read what each layer knows (nanotst.lab)."""
import numpy as np
import pandas as pd
import streamlit as st

from nanotst import lab
from nanotst import lab_plots as LP
from nanotst.data import make_dataset
from pages import _common as ui

active = ui.sidebar()
model, cfg, KEY = active.model, active.config, active.key
P, C = cfg.patch_size, cfg.context_length
L, H = model.head_grid
VIEWS = ("What if", "Ablation", "Period copy", "Probes", "PCA map", "Across training")
AMOUNT = {"spike": ("Spike size (series stds)", -10.0, 10.0, 4.0), "level shift": ("Shift (series stds)", -5.0, 5.0, 2.0),
          "phase shift": ("Delay (values; negative: earlier)", -128.0, 128.0, 16.0),
          "scale patch": ("Scale the patch's shape by", 0.0, 4.0, 2.5), "blank patch": None}
SIGNAL, OWN = "a signal", "your own series (CSV or pasted values)"

st.title("Inside")
st.markdown("Ask the model *why* by experiment: change its input, switch parts of it off, and read "
            "what its layers know about the true factors behind synthetic series.")
if L == 0:
    st.info(f"The {cfg.rung} rung has no attention heads or layers to look inside; pick another model.")
    st.stop()
view = st.radio("View", VIEWS, horizontal=True, key="in_view")


@st.cache_data(show_spinner=False, max_entries=64)
def _context(model_key, _model, values, occlusion):
    return lab.context_view(_model, values, occlusion=occlusion)


@st.cache_data(show_spinner=False, max_entries=64)
def _masked(model_key, _model, values, off):
    return lab.masked_view(_model, values, lab.head_mask(_model.head_grid, heads_off=off) if off else None)


@st.cache_data(show_spinner="Switching every head off in turn…", max_entries=8)
def _copy_effects(model_key, _model):
    suite, periods = lab.periodic_suite(C, P)
    copy = lab.period_copy_scores(_model, suite, periods)
    return copy, lab.head_effects(_model, copy, suite, periods, lab.control_suite(C, P))


@st.cache_data(show_spinner=False, max_entries=8)
def _series(n, mix, length):
    return make_dataset(n, length, mix, seed=7)


@st.cache_data(show_spinner=False, max_entries=8)
def _features(model_key, _model, n, mix, position):
    return lab.layer_features(_model, _series(n, mix, C).values, position)


def look_for(text):
    st.caption(f"**What to look for:** {text}")


def context(key, **kw):
    """The chosen context as whole patches: a synthetic signal, the series last shown on the
    Forecast page, or the user's own series."""
    shared = st.session_state.get(ui.FORECAST_SERIES)    # (name, values), set by the Forecast page
    sources = [SIGNAL] + ([f"the Forecast page's series ({shared[0]})"] if shared else []) + [OWN]
    source = st.radio("Context", sources, horizontal=True, key=f"{key}_from")
    if source == SIGNAL:
        signal = ui.signal_picker(key, C, **kw)
        values = None if signal is None else signal.values
    elif source == OWN:
        series = ui.user_series_picker("own", P, key=f"{key}_us")
        values = None if series is None else series.values
    else:
        values = shared[1]
    if values is None:
        return None
    kept = lab.whole_patches(values, P, C)
    if len(kept) < len(values):
        # patch-level views (occlusion, attention, probes) need whole patches; the Forecast page pads
        st.caption(f"Showing the most recent {len(kept)} values ({len(kept) // P} whole patches of {P}); "
                   f"the {len(values) - len(kept)} older values are not part of this view.")
    return kept


def what_if():
    values = context("in", allow_design=True, default_source="probe signal", default_name="sine_low")
    if values is None:
        return
    orig = _context(KEY, model, values, True)
    edit_and_compare(orig)
    ui.chart(LP.occlusion_figure(orig.occlusion, P), key="in_occlusion")
    look_for("the tall bars on the right are the patches the forecast of the original context relies "
             "on: on a periodic signal they sit a period back, on a trend the latest patches dominate.")


@st.fragment
def edit_and_compare(orig):
    """Reruns alone when an edit control changes: only the edited context is computed."""
    c = st.columns(3)
    kind = c[0].selectbox("Edit", lab.EDIT_KINDS, key="in_edit")
    C_ = len(orig.values)
    at = c[1].slider("At time step (patch edits: its patch)", 0, C_ - 1, C_ * 3 // 4, key="in_at")
    spec = AMOUNT[kind]
    edit = lab.Edit(kind, int(at), float(c[2].slider(spec[0], *spec[1:], key=f"in_amount_{kind}") if spec else 0))
    w = lab.what_if(model, orig.values, edit, original=orig)
    new = w.edited
    m = st.columns(3)
    m[0].metric("Next patch moved", f"{w.next_patch_change():.3f} stds")
    if orig.sigma is not None:
        m[1].metric("Next-patch σ, original → edited", f"{orig.sigma[-1].mean():.3g} → {new.sigma[-1].mean():.3g}")
    (f0, m0), (f1, m1) = LP.fan_bands(orig.fan), LP.fan_bands(new.fan)
    ui.chart(LP.what_if_figure(orig.values, new.values, (orig.mu, new.mu), None if orig.sigma is None
                               else (orig.sigma, new.sigma), (f0, f1), (m0, m1), w.start, P), key="in_whatif")
    look_for("the dotted μ before the dashed line never moves (each patch is predicted from the past "
             "alone); after it, does the model follow the edit, ignore it, or widen its σ?")
    ui.chart(LP.attention_change_figure(w.attention_change, P), key="in_attchange")
    look_for("red cells are patches the forecast attends to more after the edit: a spike or a shifted "
             "patch often grabs the heads that copy a period back.")


def ablation():
    values = context("in_ab", default_source="grammar case", default_name="sine")
    if values is not None:
        switch_heads_off(values)


@st.fragment
def switch_heads_off(values):
    """Reruns alone when the heads or layers switched off change."""
    copy, _ = _copy_effects(KEY, model)
    names = {f"L{l}H{h}": (l, h) for l in range(L) for h in range(H)}
    top = "L{}H{}".format(*copy.top_heads(1)[0])
    c = st.columns([2, 1])
    heads = c[0].multiselect("Heads switched off", list(names), [top], key="in_heads_off",
                             help=f"{top} is the head with the highest period-copy score.")
    layers = c[1].multiselect("Whole layers switched off", list(range(L)), key="in_layers_off")
    off = tuple(sorted({names[n] for n in heads} | {(l, h) for l in layers for h in range(H)}))
    intact, ablated = _masked(KEY, model, values, ()), _masked(KEY, model, values, off)
    (f0, m0), (f1, m1) = LP.fan_bands(intact.fan), LP.fan_bands(ablated.fan)
    ui.chart(LP.ablation_fan_figure(values, (f0, f1), (m0, m1)), key="in_ab_fan")
    c = st.columns(2)
    with c[0]:
        ui.chart(LP.grammar_errors_figure(intact.grammar, ablated.grammar,
                                          (intact.periodic_mse, ablated.periodic_mse)), key="in_ab_grammar")
    with c[1]:
        ui.chart(LP.head_heatmap_figure(ablated.copy.one, "Period-copy score with these heads off", off=off,
                                        zmax=float(np.nanmax(intact.copy.one))), key="in_ab_copy")
    look_for("which skill disappears: a head the sine and the periodic suite need raises their error far "
             "more than flat's or line's; the heads left on may copy more to stand in.")


def period_copy():
    copy, fx = _copy_effects(KEY, model)
    c = st.columns(2)
    with c[0]:
        ui.chart(LP.head_heatmap_figure(copy.one, "Attention on the copy source one period back"), key="in_pc_one")
    with c[1]:
        ui.chart(LP.head_heatmap_figure(copy.two, "… and two periods back"), key="in_pc_two")
    look_for(f"bright cells are induction-like heads that look exactly one period before the patch they "
             f"predict (uniform attention would give {copy.chance.mean():.2f}).")
    ranked = pd.DataFrame(copy.ranked())
    ranked["error increase when off"] = fx.periodic[ranked["layer"], ranked["head"]]
    st.dataframe(ranked, hide_index=True, width="stretch")
    ui.chart(LP.copy_vs_damage_figure(copy.one, fx.periodic, fx.control), key="in_pc_damage")
    k = st.columns(3)
    for col, (name, v) in zip(k, fx.top_vs_rest.items()):
        col.metric(f"Periodic error increase, {name}", f"{v:+.4f}")
    k[2].metric("Rank correlation, copy score vs damage", f"{fx.rank_correlation:+.2f}")
    look_for("if the high-copy heads sit top right they carry the periodic forecasts; a weak or negative "
             "correlation means the skill is spread over several heads that stand in for each other.")


def sample_controls(c):
    n = c[0].slider("Series", 100, 600, step=50, **ui.kept("in_pr_n", 300))
    return n, c[1].selectbox("Families", ["first_wave", "all"], **ui.kept("in_pr_mix", "first_wave"))


def probes():
    c = st.columns(4)
    n, mix = sample_controls(c)
    position = c[2].radio("States", ["last", "mean"], horizontal=True, key="in_pr_pos",
                          help="The last position's residual stream, or its mean over every position.")
    shuffled = c[3].checkbox("Also shuffled labels", True, key="in_pr_shuffle")
    sig = (KEY, n, mix, position, shuffled)
    if st.button("Run the probes", key="in_pr_run", type="primary"):
        bar = st.progress(0.0, text="Generating series and running them through the model…")
        series, feats = _series(n, mix, C), _features(KEY, model, n, mix, position)
        runs = [lab.run_probes(model, series, position, shuffle=s, features=feats, progress=lambda i, t, what, s=s:
                               bar.progress((i / t + s) / (1 + shuffled), text=what)) for s in (False, True)[:1 + shuffled]]
        bar.empty()
        st.session_state["in_probes"] = (sig, runs)
    kept = st.session_state.get("in_probes")
    if kept is None or kept[0] != sig:
        st.info("Press **Run the probes**: a ridge probe per layer and factor, scored on held-out series.")
        return
    res, *shuf = kept[1]
    ui.chart(LP.probe_figure(res.features, res.factors, res.score, res.chance, shuf[0].score if shuf else None),
             key="in_probe_chart")
    st.caption(f"{res.n_series} series, 30% held out; {res.seconds:.1f} s. Factors are in units of each series' "
               "own std (the model only sees normalized values); the period only where there is one.")
    look_for("a factor the input patches cannot read linearly (noise, period) but later blocks can was "
             "computed by the model; the shuffled-label lines must stay near 0 R² and chance.")


def pca_map():
    c = st.columns(3)
    n, mix = sample_controls(c)
    color = c[2].selectbox("Colour by", ["family", *lab.FACTORS[1:]], key="in_pca_col")
    feats = _features(KEY, model, n, mix, "last")
    layer = st.select_slider("Layer", [k for k in feats if k != lab.INPUT], f"block {L - 1}", key="in_pca_layer")
    pm = lab.representation_map(model, _series(n, mix, C), layer, features=feats)
    ui.chart(LP.pca_figure(pm.coords, pm.explained, color, pm.families if color == "family" else None,
                           pm.factors.get(color), pm.layer), key="in_pca")
    look_for("families that form their own islands are told apart by this layer; colouring by a factor "
             "shows whether it runs along a direction of the map.")


def across_training():
    trainer = ui.attach_run().training.trainer
    snaps = lab.run_snapshots(trainer)
    if not snaps:
        st.info("No run yet: start one on the **Train** page; its weight snapshots (up to 16, spread over "
                "the run) are measured here.")
        return
    n = st.slider("Series for the probes", 100, 400, 200, 50, key="in_tr_n")
    if st.button(f"Measure the {len(snaps)} snapshots (steps {snaps[0][0]}–{snaps[-1][0]})", key="in_tr_run"):
        bar = st.progress(0.0, text="…")
        mc = trainer.model_config
        curve = lab.across_training(mc, snaps, _series(n, "first_wave", mc.context_length),
                                    progress=lambda i, t, what: bar.progress(i / t, text=what))
        bar.empty()
        st.session_state["in_curve"] = (id(trainer), curve)
    kept = st.session_state.get("in_curve")
    if kept is not None and kept[0] == id(trainer):
        cv = kept[1]
        ui.chart(LP.training_curve_figure(cv.steps, cv.copy_score, cv.family_accuracy, cv.period_r2, cv.chance),
                 key="in_curve_chart")
        look_for("the step where the period-copy score jumps is usually where the sine's grammar curve drops "
                 "on the Train page: the skill appears as the head forms.")


{"What if": what_if, "Ablation": ablation, "Period copy": period_copy, "Probes": probes,
 "PCA map": pca_map, "Across training": across_training}[view]()
