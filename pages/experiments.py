"""Experiments: the build ladder side by side, depth/width/patch sweeps, generalization, and the
causal mask switched off. Each runs in chunks inside a fragment; results stay in the session."""
import pandas as pd
import streamlit as st

from nanotst.data import grammar_cases
from nanotst.sessions import DEFAULT_SEEDS, EXPERIMENTS, ExperimentRun
from nanotst import plots
from pages import _common as ui

cfg = ui.sidebar().config
runs: dict = st.session_state.setdefault("exp_runs", {})

EXPLAIN = {
    "ladder": "Each rung adds one idea: a linear map from one patch to the next; embeddings and one "
              "attention head; multi-head blocks with FFN and residuals; a Gaussian head. The "
              "first three are trained with MSE and the last with NLL, so compare their grammar "
              "MSE rather than their losses.",
    "depth": "More blocks: more capacity, but slower per step. Which depth learns the sine fastest "
             "for the same number of steps?",
    "width": "Wider embeddings: more parameters per block.",
    "patch": "Smaller patches give more tokens and finer predictions; larger patches give fewer "
             "tokens that each carry more of the signal.",
    "generalization": "One model sees every family; the other never sees a periodic signal. Both "
                      "are tested on the sine grammar cases: can it forecast what it never saw?",
    "causal": "With causal=False every patch can attend to the future, including the patch it is "
              "asked to predict. The loss falls much lower, but the model is cheating: it cannot "
              "work when the future is not there.",
    "position": "Rotary positions rotate each head's queries and keys by the patch index, so "
                "attention sees only how far apart two patches are (\"one period back\" is the same "
                "offset everywhere); learned positions give each of the 16 slots its own vector; "
                "\"both\" adds the learned vector and rotates attention too. The shipped model uses "
                "both: learned positions did better on real series, rotary ones on synthetic "
                "shapes, and both together, after rounds of fresh series, on each (measured in "
                "checkpoints/README.md).",
    "padding": "A series that is not a whole number of patches is padded at the start. With the "
               "mask, the patch embedding reads which values are padding; without it, padding "
               "looks like values at the series' mean.",
    "loss": "Plain Gaussian NLL pulls μ towards the truth by error / σ²: where a shape is hard, the "
            "model can lower its loss by widening σ instead of fitting μ. beta-NLL weights each "
            "value's NLL by σ^(2β), held constant, so a wide σ no longer excuses a poor μ; the best σ "
            "for a given μ stays the same. Both are judged on the same next-patch MSE. The shipped "
            "model's last stage used β 0.5: 4% better on real series, 6% on synthetic shapes "
            "(checkpoints/README.md).",
    "previous": "A token normally reads only its own 32 values, so a square wave that flips exactly "
                "on a patch boundary gives it no cue about where in the cycle it is. With the previous "
                "patch, each token also reads the 32 values before its own: the flip is inside "
                "one token's view. It adds 64 × d_model weights to the embedding and nothing else. "
                "Measured on the full model (checkpoints/README.md, stage 12): trained from scratch on "
                "periodic shapes, it lowered the validation loss a little and did not make the forecasts "
                "of sharp shapes any better; the shipped model reads its own patch only.",
    "seasonal": "Copying a repeating shape means finding the values one season before the patch to "
                "predict, among 16 tokens of 32 values each, which attention over whole patches does "
                "poorly when the season is not a whole number of patches. With the seasonal patch, the "
                "model first finds the lag at which the window repeats itself best (autocorrelation, "
                "after taking out a straight line; a season shorter than a patch gives its smallest "
                "multiple of at least 32 values) and each token also reads the 32 values one lag before "
                "its target: seasonal naive's guess. A gate, one number each token reads from its own "
                "state, adds that share of them to its forecast, so the model learns when to copy. It "
                "adds 64 × d_model + d_model + 1 weights. Measured on the full model (checkpoints/README.md, "
                "stage 13): one training round from the shipped model with the switch, against the same "
                "round without it, forecast the held-out real series 4% better (relative MAE 0.792 "
                "against 0.825), the synthetic shapes 7% better (0.743 against 0.803) and 140 sharp "
                "periodic shapes 19% better (0.924 against 1.141). The shipped model is such a round. "
                "Where it costs: it copies quasi-cycles that do not repeat exactly (on the Forecast "
                "page's examples, the sunspots' cycle 89 years back; El Niño's 11 years too, until the "
                "shipped model's slack for shorter seasons chose its 12 months, stage 14).",
    "level": "The seasonal patch is the values one season back: where the series was a season ago. "
             "Across a trend or after a level shift, a copied season then sits too low or too high, and "
             "the model has to learn the difference on top. At today's level, the patch is moved by how "
             "far the series moved in that season (the mean of the token's own patch minus the mean of "
             "the values one season before it): a seasonal difference, as ARIMA takes one. It adds no "
             "weight. Measured on the full model (checkpoints/README.md, stage 14): one training round "
             "from stage 11's model with the level, against the same round (same seed, same series) "
             "without it, forecast the held-out real series 2% better (relative MAE 0.744 against "
             "0.760) and the synthetic shapes 5% better (0.707 against 0.741): the random walk 1.55 → "
             "0.73 of seasonal naive, the level shift 1.87 → 1.38, the goog200 stock price 1.82 → "
             "1.35; sharp periodic shapes alike (0.926 against 0.925).",
    "cycles": "One season back is one noisy copy; a classical forecaster averages a season over many "
              "cycles. The mean of the last 4 seasons (each moved to the level) averages the noise out "
              "but blurs a season that just changed (a level shift, a growing swing). Chosen: each token "
              "takes the mean of the last 1, 2, 3 or 4 seasons, whichever forecast its own last 4 "
              "patches best, so a steady season is averaged and a changed one copied from the last "
              "cycle. It adds no weight. Measured on the full model (checkpoints/README.md, stage 16): one "
              "training round from stage 11's model choosing among 1 to 4 seasons, against the same round "
              "(same seed, same series) copying the last one, forecast 140 sharp periodic shapes 6% "
              "better (relative MAE 0.866 against 0.926; worse than 1.1× seasonal naive: 11% of them "
              "against 20%), the synthetic shapes 4% better (0.691 against 0.717) and the held-out real "
              "series alike (0.740 against 0.743). The shipped model continues from that round "
              "(stages 17 and 18). Where it cost: the level shift of 30 (1.38 → 1.99× seasonal naive; 1.48× "
              "after stage 17). The mean of 3 seasons without the choice "
              "(stage 15) made the same sweep 0.890 but the level shift 2.30×.",
    "flip": "A shape upside down is a shape too, but the training families lean one way (growth, "
            "multiplicative seasons, pulses that rise), and so does a model trained on them. With "
            "half of each batch turned upside down (x -> -x) it sees both ways; forecast mirrored, "
            "every other sample path forecasts the series upside down and is turned back, with "
            "the same noise as its partner, so the two leanings average out (the forecast of -x is "
            "then exactly minus the forecast of x). The mirror adds no weight and changes no "
            "training: the last two variants train alike and differ in the forecast below. Measured "
            "on the full model (checkpoints/README.md, stage 18): the mirror took 2-3% off every "
            "model's error over 125 held-out real series, the flip in training about 1% more; stage "
            "18 was the mean of two such rounds, forecast mirrored (0.764 against stage 17's "
            "0.785), for 15 ms instead of 11 per 100 paths of 64 values, and the shipped model "
            "(stage 19) starts from it and still trains and forecasts this way.",
    "short": "A patch is 32 values, so the copy one season back must start before the patch it "
             "predicts: a season of 7 was read 35 values back, five cycles ago. With short seasons the "
             "model looks for seasons from 2 values up (true peaks of the autocorrelation that rise "
             "clearly above the dip before them) and repeats the last cycle across the patch, as "
             "seasonal naive does: monthly data reads 12 months back, not 36, quarterly 4 quarters, "
             "daily 7 days. It adds no weight. Measured on the full model (checkpoints/README.md, stage 16), "
             "one training round with short seasons against the same round without them (both choosing "
             "among 1 to 4 seasons): better on short sharp shapes (sawtooth of 13: 1.06 → 0.92× seasonal "
             "naive, square of 24: 1.03 → 0.89) and UK gas (0.60 → 0.42), worse on US accidental deaths "
             "(1.14 → 1.33), the lynx cycle (0.14 → 0.22) and daily hyndsight (0.80 → 0.93): real "
             "series 0.757 against 0.740, synthetic 0.678 against 0.691. Not shipped.",
}

st.title("Experiments")
kind = st.radio("Experiment", list(EXPERIMENTS), format_func=EXPERIMENTS.get, key="exp_kind")
st.caption(EXPLAIN[kind])
steps = st.select_slider(f"Training steps per variant and seed ({DEFAULT_SEEDS} seeds; same data, same "
                         "budget for every variant)",
                         [20, 100, 200, 300, 400, 600, 1000], 300, key="exp_steps")


def on_run():
    runs[kind] = ExperimentRun(kind, steps)
    st.session_state["exp_running"] = kind


def on_cancel():
    st.session_state["exp_running"] = None


running = st.session_state.get("exp_running")
c = st.columns([1, 1, 4])
c[0].button("Run experiment", on_click=on_run, type="primary", key="exp_run",
            disabled=running is not None, width="stretch")
c[1].button("Cancel", on_click=on_cancel, disabled=running is None, key="exp_cancel", width="stretch")
if running and running != kind:
    c[2].info(f"“{EXPERIMENTS[running]}” is running; its results appear on its tab.")


@st.fragment(run_every=0.5 if running else None)
def progress():
    active = st.session_state.get("exp_running")
    run = runs.get(active) if active else None
    if run is not None:
        run.advance(0.8)
        st.progress(run.progress, text=f"{EXPERIMENTS[active]}: training {run.current or 'done'} "
                                       f"({run.wall:.0f} s)")
        if run.done:
            st.session_state["exp_running"] = None
            st.rerun()


progress()

run = runs.get(kind)
if run is None:
    st.info("Press **Run experiment** to train every variant. Results stay here while you explore "
            "other pages.")
    st.stop()
if run.error:
    st.error(run.error)
if not run.results:
    st.stop()
state = "finished" if run.done else f"{run.index} of {len(run.jobs)} runs done"
st.subheader(f"Results ({state}: {len(run.variants)} variants × {run.seeds} seeds, {run.steps} steps "
             f"each, {run.wall:.0f} s)")
if run.headline():
    st.success(run.headline())
histories = {name: r["history"] for name, r in run.results.items()}
c1, c2 = st.columns(2)
with c1:
    key = "train_loss" if kind == "causal" else "val_mse"
    ui.chart(plots.compare_runs_figure({n: r["histories"] for n, r in run.results.items()}, key,
                                       "Training loss by variant" if kind == "causal"
                                       else "Validation next-patch MSE by variant"), key="exp_loss")
    st.caption("The mean over the seeds, the band from the lowest to the highest seed. "
               + ("The cheating model's training loss falls far lower: it reads the patch it is "
                  "asked to predict." if kind == "causal" else
                  "Next-patch MSE of μ on the same validation series for every variant: the one "
                  "metric every rung shares (each variant's own loss, NLL or MSE, is in the table)."))
with c2:
    ui.chart(plots.compare_grammar_figure({n: r["grammar"] for n, r in run.results.items()},
                                          spread={n: r["grammar_spread"] for n, r in run.results.items()}),
             key="exp_grammar")
if kind in ("generalization", "causal") and run.done and not run.error:
    st.subheader("The same test signal for every variant: the sine case, two patches ahead")
    values = grammar_cases(cfg.context_length + 2 * cfg.patch_size)["sine"]
    cols = st.columns(len(run.models))
    for col, (name, bt) in zip(cols, ui.experiment_forecasts(run, values, 2 * cfg.patch_size).items()):
        with col:
            ui.chart(plots.fan_chart_figure(bt.history, bt.time_index, bt.forecast.median, bt.forecast.bands(),
                                            truth=bt.truth, title=f"{name}: MAE {bt.scores[bt.model]['mae']:.3f}",
                                            height=340), key=f"exp_fc_{name}")
    st.caption("Each variant's first-seed model forecasts the held-out end of the sine from the "
               "rest. " + ("A model that cheated in training has no future to read here."
                           if kind == "causal" else "Can a model that never saw a periodic "
                           "signal continue one?"))
ui.chart(plots.grammar_curves_figure(histories[list(histories)[-1]],
                                     title=f"Learning order of “{list(histories)[-1]}” (first seed)"),
         key="exp_order")
st.dataframe(pd.DataFrame(run.table()).set_index("variant"), width="stretch", placeholder="–")
