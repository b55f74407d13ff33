"""Train: configure a run, then Start / Pause / Step / Stop / Reset; it trains in short chunks
inside a fragment, so charts update live and clicks elsewhere never lose the run."""
import streamlit as st

from nanotst import app_state as A
from nanotst import plots
from nanotst.config import RUNGS
from nanotst.data import FAMILIES, MIXES
from pages import _common as ui

ui.sidebar()
D = A.TrainSettings()
session: A.TrainingSession = st.session_state.setdefault("train_session", A.TrainingSession(D))

st.title("Train")
st.markdown("Train your own NanoTST in this browser session. The defaults are small and fast: "
            "watch the grammar curves fall in order (flat, then line, then sine), then save the run "
            "and make it the active model.")


def settings() -> A.TrainSettings:
    s = st.session_state
    preset = s.get("tr_mix", "all")
    mix = tuple(MIXES[preset].items()) if preset != "custom" else tuple(
        (f, float(s.get(f"tr_w_{f}", 1.0))) for f in FAMILIES)
    return A.TrainSettings(rung=s.get("tr_rung", D.rung), n_layers=s.get("tr_layers", D.n_layers),
                           d_model=s.get("tr_width", D.d_model), n_heads=s.get("tr_heads", D.n_heads),
                           patch_size=s.get("tr_patch", D.patch_size), lr=s.get("tr_lr", D.lr),
                           batch_size=s.get("tr_batch", D.batch_size), epochs=s.get("tr_epochs", D.epochs),
                           n_series=s.get("tr_series", D.n_series), seed=s.get("tr_seed", D.seed),
                           mix=mix, eval_every=s.get("tr_eval", D.eval_every))


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


def on_save():
    try:
        path = session.save(st.session_state.get("tr_name", "my-run"), A.checkpoint_dir())
    except Exception as err:  # noqa: BLE001 - CheckpointError: a bad name, an unwritable folder
        st.session_state["tr_save_msg"] = ("error", str(err))
        return
    st.session_state["tr_save_msg"] = ("ok", f"Saved as {path.name}; it is now the active model.")
    ui.select_model(f"file:{path.resolve()}")


locked = session.started
with st.expander("Model and training settings" + (" (Reset to change)" if locked else ""),
                 expanded=not locked):
    c = st.columns(5)
    c[0].selectbox("Rung", RUNGS, index=RUNGS.index(D.rung), key="tr_rung", disabled=locked)
    c[1].select_slider("Layers", [1, 2, 3, 4, 6], D.n_layers, key="tr_layers", disabled=locked)
    c[2].select_slider("Width (d_model)", [16, 32, 64, 128, 256], D.d_model, key="tr_width", disabled=locked)
    c[3].select_slider("Heads", [1, 2, 4, 8], D.n_heads, key="tr_heads", disabled=locked)
    c[4].select_slider("Patch size", [8, 16, 32, 64, 128], D.patch_size, key="tr_patch", disabled=locked)
    c = st.columns(6)
    c[0].select_slider("Learning rate", [3e-4, 1e-3, 2e-3, 3e-3, 5e-3], D.lr, key="tr_lr", disabled=locked)
    c[1].select_slider("Batch", [8, 16, 32, 64, 128], D.batch_size, key="tr_batch", disabled=locked)
    c[2].number_input("Epochs", 1, 500, D.epochs, key="tr_epochs", disabled=locked)
    c[3].number_input("Series", 16, 20_000, D.n_series, step=64, key="tr_series", disabled=locked)
    c[4].number_input("Seed", 0, 10_000, D.seed, key="tr_seed", disabled=locked)
    c[5].number_input("Eval every (steps)", 1, 1000, D.eval_every, key="tr_eval", disabled=locked)
    preset = st.radio("Data mix", list(MIXES) + ["custom"], horizontal=True, key="tr_mix", disabled=locked)
    if preset == "custom":
        c = st.columns(5)
        for i, fam in enumerate(FAMILIES):
            c[i % 5].slider(fam, 0.0, 3.0, float(MIXES["all"].get(fam, 1.0)), 0.25,
                            key=f"tr_w_{fam}", disabled=locked)

c = st.columns(5)
c[0].button("Start" if not session.started else "Resume", on_click=on_start, type="primary",
            disabled=session.running or session.done, key="tr_start", width="stretch")
c[1].button("Pause", on_click=session.pause, disabled=not session.running, key="tr_pause", width="stretch")
c[2].button("Step", on_click=on_step, disabled=session.done, key="tr_step", width="stretch",
            help="Run one evaluation interval of steps, then pause.")
c[3].button("Stop", on_click=session.stop, disabled=not session.started or session.done,
            key="tr_stop", width="stretch")
c[4].button("Reset", on_click=on_reset, key="tr_reset", width="stretch")
if session.error:
    st.error(session.error)


@st.fragment(run_every=0.5 if session.running else None)
def live():
    was_running = session.running
    session.tick(0.7)
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
            ui.chart(plots.grammar_curves_figure(session.history), key="tr_grammar")
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
    if was_running and not session.running:
        st.rerun()  # finished: a full rerun turns the timer off and re-enables the buttons


live()

st.subheader("Save this run")
c1, c2 = st.columns([3, 1])
c1.text_input("Checkpoint name", "my-run", key="tr_name", max_chars=100,
              help="Letters, digits, - _ . only; saved into the checkpoints folder.")
c2.button("Save and make active", on_click=on_save, disabled=not session.started or session.running,
          key="tr_save", width="stretch")
msg = st.session_state.get("tr_save_msg")
if msg:
    (st.success if msg[0] == "ok" else st.error)(msg[1])
