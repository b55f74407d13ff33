"""Server-side runs (nanotst.sessions): a reload finds its run, a copied link does not take a live
one, the store is bounded and forgets idle runs."""
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


def test_the_position_and_padding_experiments_differ_only_in_their_switch():
    from dataclasses import replace
    from nanotst.app_state import experiment_variants
    for kind, field in (("position", "position"), ("padding", "input_mask")):
        a, b = experiment_variants(kind, steps=20)
        assert getattr(a.model_config, field) != getattr(b.model_config, field)
        assert replace(a.model_config, **{field: getattr(b.model_config, field)}) == b.model_config
        assert a.train_config == b.train_config
