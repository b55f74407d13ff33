"""Train: configure a run, then Start / Pause / Step / Stop / Reset; it trains in short chunks
inside a fragment, so charts update live and clicks elsewhere never lose the run."""
import streamlit as st

from nanotst.checkpoints import checkpoint_dir
from nanotst.sessions import TrainSettings, TrainingSession
from nanotst import plots
from nanotst.evaluate import grammar_noise_floor
from nanotst.train import (LEARNED_FLOOR_FACTOR, LEARNED_MSE, SMOOTH_WINDOW, learning_order,
                           learning_order_text)
from nanotst.checkpoints import CheckpointExists
from nanotst.config import POSITIONS, RUNGS
from nanotst.data import FAMILIES, MIXES
from pages import _common as ui

ui.sidebar()
D = TrainSettings()
WEIGHT_MAX = max(8.0, *MIXES["all"].values())   # the custom mix sliders reach past every preset weight
session: TrainingSession = ui.attach_run().training   # kept on the server: a reload finds it again

st.title("Train")
st.markdown("Train your own NanoTST in this browser session. The defaults are small and fast: "
            "watch the grammar curves fall in order (flat, then line, then sine), then save the run "
            "and make it the active model.")


def settings() -> TrainSettings:
    s = st.session_state
    preset = s["tr_mix"]
    mix = preset if preset != "custom" else tuple((f, float(s[f"tr_w_{f}"])) for f in FAMILIES)
    return TrainSettings(rung=s["tr_rung"], n_layers=s["tr_layers"], d_model=s["tr_width"],
                           n_heads=s["tr_heads"], patch_size=s["tr_patch"], lr=s["tr_lr"],
                           batch_size=s["tr_batch"], epochs=s["tr_epochs"], n_series=s["tr_series"],
                           seed=s["tr_seed"], mix=mix, eval_every=s["tr_eval"],
                           position=s["tr_position"])


def on_start():
    if not session.started:
        session.reset(settings())
    session.start()


def on_step():
    if not session.started:
        session.reset(settings())
    session.step(session.settings.eval_every)


def on_reset():
    session.reset(settings())
    st.session_state["kept:tr_name"] = session.default_name   # a fresh run, a fresh unique name
    st.session_state.pop("tr_save_msg", None)


def on_save(overwrite: bool = False):
    st.session_state.pop("tr_overwrite", None)
    try:
        path = session.save(st.session_state["tr_name"], checkpoint_dir(), overwrite=overwrite)
    except CheckpointExists as err:
        st.session_state["tr_save_msg"] = ("warning", str(err))
        st.session_state["tr_overwrite"] = True
        return
    except Exception as err:  # noqa: BLE001 - CheckpointError: a bad name, an unwritable folder
        st.session_state["tr_save_msg"] = ("error", str(err))
        return
    st.session_state["tr_save_msg"] = ("ok", f"Saved as {path.name}; it is now the active model.")
    ui.select_model(f"file:{path.resolve()}")


locked = session.started
with st.expander("Model and training settings" + (" (Reset to change)" if locked else ""),
                 expanded=not locked):
    c = st.columns(5)
    c[0].selectbox("Rung", RUNGS, **ui.kept("tr_rung", D.rung), disabled=locked)
    c[1].select_slider("Layers", [1, 2, 3, 4, 6], **ui.kept("tr_layers", D.n_layers), disabled=locked)
    c[2].select_slider("Width (d_model)", [16, 32, 64, 128, 256], **ui.kept("tr_width", D.d_model),
                       disabled=locked)
    c[3].select_slider("Heads", [1, 2, 4, 8], **ui.kept("tr_heads", D.n_heads), disabled=locked)
    c[4].select_slider("Patch size", [8, 16, 32, 64, 128], **ui.kept("tr_patch", D.patch_size),
                       disabled=locked)
    c = st.columns(6)
    c[0].select_slider("Learning rate", [3e-4, 1e-3, 2e-3, 3e-3, 5e-3], **ui.kept("tr_lr", D.lr),
                       disabled=locked)
    c[1].select_slider("Batch", [8, 16, 32, 64, 128], **ui.kept("tr_batch", D.batch_size), disabled=locked)
    c[2].number_input("Epochs", 1, 500, **ui.kept("tr_epochs", D.epochs), disabled=locked)
    c[3].number_input("Series", 16, 20_000, step=64, **ui.kept("tr_series", D.n_series), disabled=locked)
    c[4].number_input("Seed", 0, 10_000, **ui.kept("tr_seed", D.seed), disabled=locked)
    c[5].number_input("Eval every (steps)", 1, 1000, **ui.kept("tr_eval", D.eval_every), disabled=locked)
    st.radio("Positions", POSITIONS, horizontal=True, **ui.kept("tr_position", D.position),
             disabled=locked, help="rope: attention sees how far apart two patches are; learned: a "
                                   "vector per position (the shipped model's)")
    preset = st.radio("Data mix", list(MIXES) + ["custom"], horizontal=True, **ui.kept("tr_mix", "all"),
                      disabled=locked)
    if preset == "custom":
        c = st.columns(5)
        for i, fam in enumerate(FAMILIES):
            c[i % 5].slider(fam, 0.0, WEIGHT_MAX, step=0.25, disabled=locked,
                            **ui.kept(f"tr_w_{fam}", float(MIXES["all"].get(fam, 1.0))))

c = st.columns(5)
c[0].button("Start" if not session.started else "Resume", on_click=on_start, type="primary",
            disabled=session.running or session.done, key="tr_start", width="stretch")
c[1].button("Pause", on_click=session.pause, disabled=not session.running, key="tr_pause", width="stretch")
c[2].button("Step", on_click=on_step, disabled=session.done, key="tr_step", width="stretch",
            help="Run one evaluation interval of steps, then pause.")
c[3].button("Stop", on_click=session.stop, disabled=not session.started or session.done,
            key="tr_stop", width="stretch")
c[4].button("Reset", on_click=on_reset, key="tr_reset", width="stretch")


floors = grammar_noise_floor(session.settings.configs()[0].context_length, session.settings.patch_size)


# the session's thread trains; the fragment only draws, every 2 s while it runs (drawing shares
# the GIL with training: at 1 s the page trained at 0.63 of the library's speed, at 2 s 0.70-0.79)
@st.fragment(run_every=2.0 if session.running else None)
def live():
    s = session.status()
    total = s["total_steps"] or 1
    st.progress(min(1.0, s["step"] / total),
                text=f"{s['state']} · step {s['step']} / {total} · epoch {s['epoch']:.2f} · "
                     f"{s['elapsed']:.1f} s training")
    m = st.columns(3)
    m[0].metric("Step", s["step"])
    m[1].metric("Train loss", "–" if s["train_loss"] is None else f"{s['train_loss']:.4f}")
    m[2].metric("Validation loss", "–" if s["val_loss"] is None else f"{s['val_loss']:.4f}")
    if session.started:
        c1, c2 = st.columns(2)
        with c1:
            ui.chart(plots.loss_figure(session.history, y_label="loss (NLL)" if
                                       session.settings.rung == "nanotst" else "loss (MSE)"), key="tr_loss")
        with c2:
            order = learning_order(session.history, floors)
            ui.chart(plots.grammar_curves_figure(session.history, learned=order, smooth=SMOOTH_WINDOW),
                     key="tr_grammar")
        st.markdown(f"**Learning order:** {learning_order_text(session.history, floors)}.")
        st.caption(f"A case counts as learned from the evaluation where its smoothed next-patch MSE "
                   f"(the geometric mean of the last {SMOOTH_WINDOW} evaluations, bold; raw values "
                   f"faint) falls below {LEARNED_MSE} (for noisy: {LEARNED_FLOOR_FACTOR} × its noise "
                   f"floor, {floors.get('noisy', 0) * LEARNED_FLOOR_FACTOR:.3f}) and stays there.")
        snaps = session.snapshots
        if snaps:
            follow = st.toggle("Follow the latest snapshot", True, key="tr_follow")
            i = len(snaps) - 1
            if not follow and len(snaps) > 1:
                i = st.slider("Scrub back through snapshots", 0, len(snaps) - 1, len(snaps) - 1,
                              key="tr_scrub", format="snapshot %d")
            snap = snaps[i]
            ui.chart(plots.grammar_predictions_figure(
                snap["grammar"], session.settings.patch_size,
                title=f"Grammar predictions at step {snap['step']} (epoch {snap['epoch']:.2f})"),
                key="tr_snap")
    if session.error:
        st.error(session.error)
    if st.session_state.get("tr_drawn_running") and not session.running:
        st.session_state["tr_drawn_running"] = False
        st.rerun()  # finished: a full rerun turns the timer off and re-enables the buttons
    st.session_state["tr_drawn_running"] = session.running


live()

st.subheader("Save this run")
c1, c2 = st.columns([3, 1])
c1.text_input("Checkpoint name", **ui.kept("tr_name", session.default_name), max_chars=100,
              help="Letters, digits, - _ . only; saved into the checkpoints folder. The shipped "
                   "model (“default”) cannot be overwritten from here.")
c2.button("Save and make active", on_click=on_save, disabled=not session.started or session.running,
          key="tr_save", width="stretch")
msg = st.session_state.get("tr_save_msg")
if msg:
    {"ok": st.success, "warning": st.warning}.get(msg[0], st.error)(msg[1])
if st.session_state.get("tr_overwrite"):
    st.button(f"Overwrite {st.session_state['tr_name']}.pt", on_click=on_save, kwargs={"overwrite": True},
              key="tr_overwrite_confirm", type="secondary")
