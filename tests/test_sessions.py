"""Server-side runs (nanotst.sessions): a reload finds its run, a copied link does not take a live
one, the store is bounded and forgets idle runs."""
import numpy as np
import pytest

from nanotst.sessions import RunStore, RunStoreFull


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_released_run_is_found_again_by_its_id():
    store = RunStore()
    tab = object()
    run = store.attach(None, tab)
    store.release(tab)
    reloaded = object()
    assert store.attach(run.run_id, reloaded) is run
    assert run.holder is reloaded


def test_a_held_run_is_never_given_to_another_session():
    store = RunStore()
    owner, stranger = object(), object()
    run = store.attach(None, owner)
    other = store.attach(run.run_id, stranger)
    assert other is not run and other.run_id != run.run_id and run.holder is owner
    assert store.attach(run.run_id, owner) is run          # its own session asks again: the same


def test_unknown_or_odd_ids_get_a_new_run():
    store = RunStore()
    for wanted in ("nope", "", None, ["a list"], 5):
        assert store.attach(wanted, object()).run_id not in ("nope", "")
    ids = {store.attach(None, object()).run_id for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 16 for i in ids)  # unguessable


def test_idle_runs_expire_and_the_store_is_bounded():
    clock = Clock()
    store = RunStore(max_runs=3, idle_seconds=100, clock=clock)
    tabs = [object() for _ in range(3)]
    runs = [store.attach(None, t) for t in tabs]
    for r in runs:
        r.training.step(0)            # started: these have something to lose
    store.release(tabs[0])
    clock.now = 50
    fourth = store.attach(None, object())        # full: the released one makes room
    fourth.training.step(0)
    assert len(store) == 3 and runs[0].run_id not in {r.run_id for r in store._runs.values()}
    with pytest.raises(RunStoreFull):            # three live, started runs: no room
        store.attach(None, object())
    store.release(tabs[1])
    clock.now = 200                              # idle for longer than idle_seconds: forgotten
    store.attach(None, object())
    assert runs[1].run_id not in store._runs and fourth.run_id in store._runs


def test_a_never_started_run_makes_room_even_while_its_tab_is_open():
    store = RunStore(max_runs=2)
    idle_tab = store.attach(None, object())      # opened the app, never trained
    busy = store.attach(None, object())
    busy.training.step(0)
    newcomer = store.attach(None, object())
    assert newcomer.run_id in store._runs and busy.run_id in store._runs
    assert idle_tab.run_id not in store._runs


def test_release_pauses_the_run():
    store = RunStore()
    tab = object()
    run = store.attach(None, tab)
    run.training.running = True
    store.release(tab)
    assert not run.training.running and run.holder is None


def test_the_position_padding_previous_seasonal_level_and_loss_experiments_differ_only_in_their_switch():
    from dataclasses import replace
    from nanotst.sessions import experiment_variants
    for kind, field in (("position", "position"), ("padding", "input_mask"), ("previous", "previous_patch"),
                        ("seasonal", "seasonal_patch"), ("level", "seasonal_level"), ("short", "short_seasons")):
        a, *others = experiment_variants(kind, steps=20)
        for b in others:
            assert getattr(a.model_config, field) != getattr(b.model_config, field)
            assert replace(a.model_config, **{field: getattr(b.model_config, field)}) == b.model_config
            assert a.train_config == b.train_config
    assert [v.model_config.position for v in experiment_variants("position", steps=20)] == ["rope", "learned", "both"]
    last, four, chosen = experiment_variants("cycles", steps=20)
    assert replace(last.model_config, season_cycles=4) == four.model_config
    assert replace(four.model_config, choose_cycles=True) == chosen.model_config
    assert last.model_config.seasonal_level and last.train_config == chosen.train_config
    drawn, flipped, mirrored = experiment_variants("flip", steps=20)
    assert replace(drawn.train_config, flip=0.5) == flipped.train_config == mirrored.train_config
    assert drawn.model_config == flipped.model_config == replace(mirrored.model_config, mirror=False)
    assert mirrored.model_config.mirror
    plain, beta = experiment_variants("loss", steps=20)
    assert plain.model_config == beta.model_config
    assert (plain.train_config.nll_beta, beta.train_config.nll_beta) == (0.0, 0.5)
    assert replace(plain.train_config, nll_beta=0.5) == beta.train_config


def test_a_variant_that_only_forecasts_differently_reuses_the_training_of_its_twin():
    import torch
    from nanotst.sessions import ExperimentRun
    run = ExperimentRun("flip", steps=10, seeds=2)
    assert [v.name for v, _ in run.jobs] == ["as drawn", "half upside down"] * 2   # the mirror trains nothing
    run.run_all()
    flipped, mirrored = run.results["half upside down"], run.results["half upside down, forecast mirrored"]
    assert mirrored["val_mse"] == flipped["val_mse"] and mirrored["seeds"] == 2
    assert list(run.results) == ["as drawn", "half upside down", "half upside down, forecast mirrored"]
    a, b = run.models["half upside down"], run.models["half upside down, forecast mirrored"]
    assert b.config.mirror and not a.config.mirror
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


# ---------------------------------------------------------------- the per-session objects

from nanotst.checkpoints import CheckpointError, CheckpointExists, load_checkpoint  # noqa: E402
from nanotst.sessions import ExperimentRun, TrainingSession, TrainSettings  # noqa: E402
from dataclasses import replace  # noqa: E402

TINY_RUN = TrainSettings(n_layers=1, d_model=16, n_heads=2, patch_size=32, epochs=2, n_series=64,
                         batch_size=16, eval_every=4)


def test_a_training_session_steps_pauses_stops_and_saves_its_preset_name(tmp_path):
    s = TrainingSession(TINY_RUN)
    assert s.status()["state"] == "not started" and s.status()["total_steps"] == 8
    assert s.step(3) == 3 and not s.running and s.status()["step"] == 3
    s.start()
    s.pause()
    s.wait(5)
    paused_at = s.status()["step"]
    assert not s.running and paused_at >= 3
    import time
    time.sleep(0.2)
    assert s.status()["step"] == paused_at               # paused: the thread has stopped
    s.stop()
    assert s.done and s.status()["state"] == "stopped by user"
    path = s.save("mine", tmp_path)
    saved = load_checkpoint(path)
    assert saved.data_spec["mix_name"] == "all"          # the preset's name, not only its weights
    assert saved.history[-1]["step"] == paused_at
    with pytest.raises(CheckpointError, match="nothing to save"):
        TrainingSession(TINY_RUN).save("other", tmp_path)
    other = TrainingSession(TINY_RUN)
    other.step(1)
    with pytest.raises(CheckpointExists):
        other.save("mine", tmp_path)                     # another run's file is not overwritten
    other.save("mine", tmp_path, overwrite=True)
    with pytest.raises(CheckpointError, match="shipped model"):
        other.save("default", tmp_path)


def test_training_waits_while_a_page_is_drawn_and_goes_on_after():
    import time
    s = TrainingSession(replace(TINY_RUN, epochs=500))
    s.start()
    deadline = time.monotonic() + 10
    while s.status()["step"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with s.page_first():
        time.sleep(0.1)
        with s._lock:                                    # the chunk under way has finished
            at = s.status()["step"]
        time.sleep(0.3)
        assert s.status()["step"] == at and s.running    # waits, still running
    deadline = time.monotonic() + 10
    while s.status()["step"] == at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.status()["step"] > at                       # the page is done: it trains on
    s.stop()
    s.wait(5)


def test_a_custom_mix_is_saved_as_weights_without_a_name(tmp_path):
    s = TrainingSession(TrainSettings(**{**TINY_RUN.__dict__, "mix": (("flat", 1.0), ("sine_low", 2.0))}))
    s.step(1)
    spec = load_checkpoint(s.save("custom", tmp_path)).data_spec
    assert spec["mix_name"] is None and spec["mix"] == pytest.approx({"flat": 1 / 3, "sine_low": 2 / 3})


def test_bad_settings_are_an_error_message_not_an_exception():
    s = TrainingSession(TrainSettings(**{**TINY_RUN.__dict__, "d_model": 15}))   # not divisible by heads
    s.start()
    assert not s.running and s.error and "d_model" in s.error


def test_an_experiment_trains_every_variant_and_tabulates_them():
    run = ExperimentRun("depth", steps=4, settings=TINY_RUN).run_all(seconds_per_call=1.0)
    assert run.done and run.error is None and run.progress == 1.0
    rows = run.table()
    assert [r["variant"] for r in rows] == ["1 layers", "2 layers", "4 layers"]
    assert all(r["steps"] == 4 for r in rows)
    assert run.headline() is not None


def test_the_headline_names_the_variant_the_chart_shows_lowest():
    run = ExperimentRun("width", steps=4, settings=TINY_RUN).run_all(seconds_per_call=1.0)
    charted = {r["variant"]: r["final val MSE"] for r in run.table()}
    best = min(charted, key=charted.get)
    assert f"“{best}” ({charted[best]:.3f}, mean of 3 seeds" in run.headline()
    for name, result in run.results.items():      # the chart's last point is the table's number
        last = [h[-1]["val_mse"] for h in result["histories"]]
        assert len(last) == 3 and np.mean(last) == pytest.approx(charted[name])
        assert min(last) == result["val_mse_spread"][0] and max(last) == result["val_mse_spread"][1]


def test_seeds_differ_and_every_variant_forecasts_the_same_test_signal():
    run = ExperimentRun("causal", steps=4, settings=TINY_RUN, seeds=2).run_all(seconds_per_call=1.0)
    histories = run.results["causal (honest)"]["histories"]
    assert len(histories) == 2 and histories[0][-1]["val_mse"] != histories[1][-1]["val_mse"]
    values = np.sin(np.arange(544) / 8)
    forecasts = run.forecasts(values, 32)
    assert list(forecasts) == ["causal (honest)", "causal=False (cheats)"]
    truths = [bt.truth for bt in forecasts.values()]
    np.testing.assert_array_equal(truths[0], truths[1])
    assert all(bt.forecast.horizon == 32 for bt in forecasts.values())
