"""The Inside page with streamlit's AppTest: every view renders its charts and its "what to look
for" sentence, a what-if edit moves only the edited side after the edit, an ablation greys out
the heads it switches off, probe results stay in the session, and the across-training view reads
a run made on the Train page. A tiny model keeps it fast; checkpoints go to a temporary folder."""
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from nanotst.checkpoints import save_checkpoint
from nanotst.config import ModelConfig
from nanotst.model import build_model

from tests.test_app import APP, specs  # noqa: E402  (the same app file and chart reader)

PAGE = "pages/inside.py"
VIEWS = ("What if", "Ablation", "Period copy", "Probes", "PCA map", "Across training")


@pytest.fixture(scope="module")
def tiny_default(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=16, n_heads=2, dropout=0.0)).eval()
    path = tmp_path_factory.mktemp("default") / "tiny-default.pt"
    save_checkpoint(path, model, name="tiny-default")
    return path


@pytest.fixture
def app(tmp_path, monkeypatch, tiny_default):
    monkeypatch.setenv("NANOTST_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("NANOTST_DEFAULT_CHECKPOINT", str(tiny_default))
    from pages._common import run_store
    run_store.clear()            # AppTest sessions never disconnect: start with no runs
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def show(at, view: str):
    at.radio(key="in_view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def looks_for(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("**What to look for:**")]


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_with_its_charts_and_what_to_look_for(app, view):
    at = show(app, view)
    assert at.title[0].value == "Inside"
    if view == "Probes":
        assert not specs(at)                                     # nothing runs until asked
        at.button(key="in_pr_run").click().run()
        assert not at.exception
    if view == "Across training":                                # no run on the Train page yet
        assert "Train" in at.info[0].value and not specs(at)
        return
    charts = specs(at)
    assert charts and all(spec["data"] for spec in charts)
    assert len(looks_for(at)) >= 1


def test_a_what_if_edit_moves_only_the_edited_side_after_the_edit(app):
    at = app
    at.selectbox(key="in_edit").set_value("level shift").run()
    at.slider(key="in_at").set_value(300).run()
    at.slider(key="in_amount_level shift").set_value(3.0).run()
    assert not at.exception
    fig = specs(at)[0]
    side = {t["xaxis"]: t for t in fig["data"] if t.get("name") == "context"}
    left, right = np.array(_decoded(side["x"]["y"])), np.array(_decoded(side["x2"]["y"]))
    t = np.array(_decoded(side["x2"]["x"]))
    assert len(left) == len(t) == 256
    np.testing.assert_allclose(right[t < 300], left[t < 300])
    assert np.all(right[t >= 300] > left[t >= 300])              # the level shift is there
    assert float(at.metric[0].value.split()[0]) > 0              # and the next patch moved
    titles = [s["layout"]["title"]["text"] for s in specs(at)]
    assert any(t.startswith("Change in what the forecast attends to") for t in titles)
    assert any(t.startswith("Occlusion") for t in titles)


def test_an_ablation_greys_out_the_heads_it_switches_off(app):
    at = show(app, "Ablation")
    at.multiselect(key="in_heads_off").set_value([]).run()
    at.multiselect(key="in_layers_off").set_value([0]).run()
    assert not at.exception
    copy = next(s for s in specs(at) if s["layout"]["title"]["text"].startswith("Period-copy score with"))
    assert copy["data"][0]["text"][0] == ["off", "off"]          # layer 0: both heads off
    assert "off" not in copy["data"][0]["text"][1]
    bars = {t["name"]: t["y"] for t in next(s for s in specs(at) if "grammar" in s["layout"]["title"]["text"])["data"]}
    assert _decoded(bars["intact"]) != _decoded(bars["heads off"])


def test_probe_results_stay_in_the_session(app):
    at = show(app, "Probes")
    at.button(key="in_pr_run").click().run()
    probe = specs(at)[0]
    assert {"family", "noise std", "chance (majority family)"} <= {t["name"] for t in probe["data"]}
    show(at, "PCA map")
    show(at, "Probes")                                           # back: no click, still there
    assert specs(at) and specs(at)[0]["layout"]["title"]["text"].startswith("What each layer knows")
    assert "in_probes" in at.session_state


def test_across_training_reads_the_snapshots_of_a_train_page_run(app):
    at = app
    at.switch_page("pages/train.py").run()
    at.button(key="tr_step").click().run()
    assert not at.exception
    at.switch_page(PAGE).run()
    show(at, "Across training")
    at.button(key="in_tr_run").click().run()
    assert not at.exception
    curve = specs(at)[0]
    steps = next(t["x"] for t in curve["data"] if t["name"].startswith("period-copy"))
    trainer = at.session_state["run"].training.trainer
    expected = [s for s, _ in trainer.weight_snapshots]
    assert len(expected) >= 2 and _decoded(steps) == expected


def _decoded(x) -> list[int]:
    """Plotly may send arrays as {"dtype", "bdata"} (base64); plain lists stay as they are."""
    if isinstance(x, dict):
        import base64
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).tolist()
    return list(x)


def test_the_series_shown_on_the_forecast_page_is_a_context_on_the_inside_page(app):
    at = app
    assert at.radio(key="in_from").options == ["a signal", "your own series (CSV or pasted values)"]
    at.switch_page("pages/forecast.py").run()
    at.radio(key="fc_series").set_value("Sunspots (yearly)").run()
    assert not at.exception
    at.switch_page(PAGE).run()
    shared = "the Forecast page's series (sunspot_activity)"
    assert shared in at.radio(key="in_from").options
    at.radio(key="in_from").set_value(shared).run()
    assert not at.exception
    fig = specs(at)[0]
    context = next(t for t in fig["data"] if t.get("name") == "context" and t["xaxis"] == "x")
    sunspots = at.session_state["forecast_series"][1]
    n = len(_decoded(context["y"]))
    assert n % 32 == 0 and np.allclose(_decoded(context["y"]), sunspots[-n:], rtol=1e-5, atol=1e-5)


def test_a_context_cut_to_whole_patches_says_how_many_values_it_leaves_out(app):
    at = app
    at.switch_page("pages/forecast.py").run()
    at.radio(key="fc_series").set_value("Sunspots (yearly)").run()
    at.switch_page(PAGE).run()
    at.radio(key="in_from").set_value("the Forecast page's series (sunspot_activity)").run()
    assert not at.exception
    n = len(at.session_state["forecast_series"][1])
    kept = min(n, 512) // 32 * 32
    assert n != kept, "the Sunspots series should not be a whole number of patches"
    notes = [c.value for c in at.caption if "older values are not part of this view" in c.value]
    assert notes == [f"Showing the most recent {kept} values ({kept // 32} whole patches of 32); "
                     f"the {n - kept} older values are not part of this view."]
