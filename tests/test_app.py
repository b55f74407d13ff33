"""The app, page by page, with streamlit's AppTest: every page renders, the Train controls train,
a saved run becomes selectable, a bad upload is an error message. A tiny model keeps it fast;
checkpoints go to a temporary folder (NANOTST_CHECKPOINT_DIR), never to checkpoints/."""
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from streamlit.testing.v1 import AppTest

from nanotst.checkpoints import CHECKPOINT_DIR_ENV, DEFAULT_CHECKPOINT_ENV
from nanotst.checkpoints import save_checkpoint
from nanotst.config import ModelConfig, TrainConfig
from nanotst.model import build_model

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = {"pages/overview.py": "NanoTST Explorer", "pages/signals.py": "Signals",
         "pages/train.py": "Train", "pages/attention.py": "Attention",
         "pages/forecast.py": "Forecast", "pages/experiments.py": "Experiments"}


@pytest.fixture(scope="module")
def tiny_default(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, dropout=0.0)).eval()
    path = tmp_path_factory.mktemp("default") / "tiny-default.pt"
    save_checkpoint(path, model, name="tiny-default")
    return path


@pytest.fixture
def ckpt_dir(tmp_path, monkeypatch, tiny_default):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(folder))
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(tiny_default))
    from pages._common import run_store
    run_store.clear()      # AppTest sessions never disconnect: start every test with no runs
    return folder


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def axis_titles(spec) -> list[str]:
    layout = spec["layout"]
    return [v.get("title", {}).get("text") for k, v in layout.items()
            if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders(ckpt_dir, page):
    at = open_page(page)
    assert at.title[0].value == PAGES[page]
    # the active-model picker is on every page and shows the (tiny) default
    assert at.selectbox(key="model_choice").value == "default"
    assert "tiny-default" in at.sidebar.caption[0].value
    if page not in ("pages/train.py", "pages/experiments.py"):
        charts = specs(at)
        assert charts, "expected at least one chart"
        for spec in charts:
            assert spec["data"], "empty figure"


def test_overview_draws_the_pipeline_with_real_shapes(ckpt_dir):
    at = open_page("pages/overview.py")
    diagram = specs(at)[0]
    texts = [a["text"] for a in diagram["layout"]["annotations"]]
    assert "512" in texts and "16×32" in texts and "16×16" in texts  # tiny model: d_model 16
    assert any(m.label == "Parameters" for m in at.metric)


def test_signals_designer_redraws_predictions(ckpt_dir):
    at = open_page("pages/signals.py")
    names = [t["name"] for t in specs(at)[2]["data"]]
    assert {"±1σ", "±2σ", "target", "predicted μ"} <= set(names)
    at.slider(key="sig_noise").set_value(0.5).run()
    assert not at.exception
    noise = [m for m in at.metric if m.label.startswith("True noise")]
    assert noise and float(noise[0].value) > 0


def test_attention_heatmaps_are_labelled(ckpt_dir):
    at = open_page("pages/attention.py")
    grid = next(s for s in specs(at) if s["layout"]["title"]["text"].startswith("Attention weights"))
    assert grid["data"][0]["type"] == "heatmap"
    assert len(grid["layout"]["annotations"]) == 2  # tiny model: 1 layer × 2 heads, a title per tile
    titles = axis_titles(grid)
    assert "query patch (predicting)" in titles and "key patch (attended to)" in titles
    top = at.table[0]
    assert top.value.loc[0].isna().sum() == 2           # patch 0 has one source, not three
    shown = pa.ipc.open_stream(top.proto.arrow_data.styler.display_values).read_all().to_pandas()
    assert list(shown.loc[0, ["source 2", "source 3"]]) == ["–", "–"]   # not "None"


def test_attention_uses_one_patch_numbering_and_ties_a_query_to_the_signal(ckpt_dir):
    at = open_page("pages/attention.py")
    title = lambda: next(s for s in specs(at) if s["layout"]["title"]["text"].startswith("What patch"))
    assert title()["layout"]["title"]["text"] == "What patch 15 draws on to predict the forecast (rollout)"
    at.slider(key="att_query").set_value(3).run()
    spec = title()
    assert spec["layout"]["title"]["text"] == "What patch 3 draws on to predict patch 4 (rollout)"
    weights = [float(t) for t in spec["data"][1]["text"]]
    assert all(w == 0 for w in weights[4:]) and sum(weights) == pytest.approx(1, abs=0.02)  # causal
    at.toggle(key="att_no_sink").set_value(True).run()
    assert float(title()["data"][1]["text"][0]) == 0.0            # the sink left out
    rows = at.table[0].value
    assert list(rows.columns[:2]) == ["reads t", "predicts t"] and rows.index[0] == 0
    scores = next(s for s in specs(at) if "before the softmax" in s["layout"]["title"]["text"])
    assert scores["data"][0]["colorscale"][0][1] != "#440154"     # a diverging scale, not Viridis
    assert not at.exception


def test_forecast_fan_chart_and_download(ckpt_dir):
    at = open_page("pages/forecast.py")
    names = [t.get("name") for t in specs(at)[0]["data"]]
    assert {"50% band", "80% band", "95% band", "median", "held-out truth"} <= set(names)
    assert at.get("download_button")
    methods = list(at.table[0].value.index)
    assert {"naive", "linear baseline"} <= set(methods)
    at.slider(key="fc_horizon").set_value(1).run()
    assert not at.exception


def test_forecast_calibration_figure_on_request(ckpt_dir):
    at = open_page("pages/forecast.py")
    assert not any(_is_calibration(s) for s in specs(at))
    at.toggle(key="fc_calibration_on").set_value(True).run()
    assert not at.exception
    calibration = _calibration_spec(at)
    assert [t["name"] for t in calibration["data"]] == ["calibrated", "NanoTST", "NanoTST", "calibrated"]


def test_forecast_horizon_extends_the_same_series(ckpt_dir):
    def traces(at):
        fan = specs(at)[0]["data"]
        return {t["name"]: _array(t["y"]) for t in fan if t.get("name") in ("context", "held-out truth")}
    at = open_page("pages/forecast.py")
    short = traces(at)
    at.slider(key="fc_horizon").set_value(4).run()
    long = traces(at)
    assert long["context"] == short["context"]                    # the series did not change
    assert len(long["held-out truth"]) == 2 * len(short["held-out truth"]) == 128
    assert np.allclose(long["held-out truth"][:64], short["held-out truth"], atol=1e-6)


def _highlighted_cells(dataframe) -> set[tuple[int, int]]:
    """(row, column) of the cells a Styler highlighted, read from the CSS it sent."""
    css = dataframe.proto.arrow_data.styler.styles
    return {(int(r), int(c)) for rule in css.split("}") if "background-color" in rule
            for r, c in re.findall(r"_row(\d+)_col(\d+)", rule)}


def test_forecast_table_highlights_the_lowest_error(ckpt_dir):
    at = open_page("pages/forecast.py")
    table = at.table[0].value
    errors = [c for c in ("mae", "mse", "mase", "crps") if table[c].notna().any()]
    expected = {(int(table[c].reset_index(drop=True).idxmin()), list(table.columns).index(c)) for c in errors}
    assert _highlighted_cells(at.table[0]) == expected
    assert "crps" in errors                  # the model's row has one


def test_forecast_of_a_signal_seasonal_naive_repeats_exactly_has_no_absurd_ratio(ckpt_dir):
    # the default series (the noise-free sine_low probe, period 256) repeats to float rounding:
    # its in-sample seasonal naive error is ~1e-16, which made MASE 10^15 and the verdict
    # "2796556157303225.5x its error"
    at = open_page("pages/forecast.py")
    table = at.table[0].value
    assert table["mase"].isna().all(), table["mase"]
    assert at.warning and "repeats them exactly" in at.warning[0].value, [w.value for w in at.warning]
    assert "its error" not in at.warning[0].value
    assert any("MASE is – here" in c.value for c in at.caption)


def _tiny_training(at):
    at.select_slider(key="tr_layers").set_value(1)
    at.select_slider(key="tr_width").set_value(16)
    at.number_input(key="tr_epochs").set_value(4)
    at.number_input(key="tr_series").set_value(64)
    at.number_input(key="tr_eval").set_value(2)
    return at.run()


def test_train_controls_advance_and_save(ckpt_dir):
    at = _tiny_training(open_page("pages/train.py"))
    at.button(key="tr_step").click().run()
    assert not at.exception, [e.value for e in at.exception]
    session = at.session_state["train_session"]
    assert session.trainer.step == 2 and not session.running
    first_loss = session.history[-1]["train_loss"]
    assert first_loss is not None

    at.button(key="tr_start").click().run()
    session.wait(60)                       # the session's thread trains; the page only draws
    at.run()
    assert session.trainer.done and not session.running and session.trainer.step > 2
    assert len(session.history) >= 2 and session.history[-1]["train_loss"] is not None
    assert specs(at), "live charts"

    at.text_input(key="tr_name").set_value("../bad name").run()
    at.button(key="tr_save").click().run()
    assert at.error and "invalid checkpoint name" in at.error[0].value
    assert not list(ckpt_dir.glob("*.pt"))

    at.text_input(key="tr_name").set_value("tiny run").run()
    at.button(key="tr_save").click().run()
    assert (ckpt_dir / "tiny-run.pt").is_file()
    choice = at.selectbox(key="model_choice")
    assert choice.value == f"file:{(ckpt_dir / 'tiny-run.pt').resolve()}"
    assert "tiny-run" in at.sidebar.caption[0].value

    # the saved run stays the active model on other pages
    at.switch_page("pages/signals.py").run()
    assert not at.exception
    assert "tiny-run" in at.sidebar.caption[0].value

    at.switch_page("pages/train.py").run()
    at.button(key="tr_reset").click().run()
    assert not at.session_state["train_session"].started


def test_two_sessions_never_share_a_run(ckpt_dir):
    a = _tiny_training(open_page("pages/train.py"))
    b = open_page("pages/train.py")
    a.button(key="tr_step").click().run()
    assert a.session_state["train_session"].started
    assert not b.session_state["train_session"].started


def _step_and_save(at, name, overwrite=False):
    at.button(key="tr_step").click().run()
    at.text_input(key="tr_name").set_value(name).run()
    at.button(key="tr_save").click().run()
    return at


def test_the_shipped_model_cannot_be_overwritten_from_the_app(ckpt_dir, tiny_default):
    before = tiny_default.read_bytes()
    at = _step_and_save(_tiny_training(open_page("pages/train.py")), "default")
    assert at.error and "shipped model" in at.error[0].value
    assert not (ckpt_dir / "default.pt").exists() and tiny_default.read_bytes() == before


def test_every_run_gets_its_own_default_name(ckpt_dir):
    a = open_page("pages/train.py")
    b = open_page("pages/train.py")
    name_a, name_b = a.text_input(key="tr_name").value, b.text_input(key="tr_name").value
    assert name_a.startswith("run-") and name_a != name_b
    a.button(key="tr_reset").click().run()
    assert a.text_input(key="tr_name").value not in (name_a, name_b)


def test_two_sessions_saving_one_name_never_overwrite_silently(ckpt_dir):
    a = _step_and_save(_tiny_training(open_page("pages/train.py")), "shared")
    saved = (ckpt_dir / "shared.pt").read_bytes()
    b = _tiny_training(open_page("pages/train.py"))
    b.number_input(key="tr_seed").set_value(7).run()
    b = _step_and_save(b, "shared")
    assert b.warning and "already exists" in b.warning[0].value
    assert (ckpt_dir / "shared.pt").read_bytes() == saved        # a's run is untouched
    assert a.session_state["active_choice"].endswith("shared.pt")
    assert not b.session_state.get("active_choice", "").endswith("shared.pt")
    # an explicit confirmation overwrites
    b.button(key="tr_overwrite_confirm").click().run()
    assert not b.exception and b.success
    assert (ckpt_dir / "shared.pt").read_bytes() != saved


def test_a_reload_finds_the_run_its_settings_and_the_active_model(ckpt_dir):
    at = _tiny_training(open_page("pages/train.py"))
    at.button(key="tr_step").click().run()
    session = at.session_state["train_session"]
    run_id = at.query_params["run"]
    at.text_input(key="tr_name").set_value("kept").run()
    at.button(key="tr_save").click().run()
    # the old tab goes away (its session is released), a new session opens the same URL
    from pages._common import run_store
    run_store().release(at.session_state["run"].holder)
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["run"] = run_id
    again.run()
    again.switch_page("pages/train.py").run()
    assert not again.exception
    assert again.session_state["train_session"] is session and session.trainer.step == 2
    assert again.number_input(key="tr_epochs").value == 4          # the settings came back
    assert "kept" in again.sidebar.caption[0].value                # and the active model


def test_a_copied_link_never_attaches_to_a_live_run(ckpt_dir):
    owner = _tiny_training(open_page("pages/train.py"))
    owner.button(key="tr_step").click().run()
    other = AppTest.from_file(APP, default_timeout=60)
    other.query_params["run"] = owner.query_params["run"]
    other.run()
    other.switch_page("pages/train.py").run()
    assert not other.exception
    assert other.session_state["train_session"] is not owner.session_state["train_session"]
    assert not other.session_state["train_session"].started
    assert other.query_params["run"] != owner.query_params["run"]


def test_bad_upload_is_an_error_not_a_traceback(ckpt_dir):
    at = open_page("pages/overview.py")
    at.selectbox(key="model_choice").set_value("upload").run()
    at.file_uploader(key="model_upload").set_value(("evil.pt", b"not a checkpoint", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert at.error and "evil.pt" in at.error[0].value
    assert "tiny-default" in at.sidebar.caption[0].value  # falls back to the default


def _hostile_uploads(tiny_default):
    import io
    import zipfile
    ck = torch.load(tiny_default, weights_only=True)
    uploads = {}
    for name, edit in {"huge.pt": lambda c: c["model_config"].update(d_model=10**9, n_heads=1),
                       "history.pt": lambda c: c.update(history=[1, 2, 3])}.items():
        c = {**ck, "model_config": dict(ck["model_config"])}
        edit(c)
        buf = io.BytesIO()
        torch.save(c, buf)
        uploads[name] = buf.getvalue()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (400 * 2**20))
    uploads["bomb.pt"] = bomb.getvalue()
    return uploads


def test_hostile_uploads_are_messages_and_the_default_stays(ckpt_dir, tiny_default):
    for name, data in _hostile_uploads(tiny_default).items():
        at = open_page("pages/overview.py")
        at.selectbox(key="model_choice").set_value("upload").run()
        at.file_uploader(key="model_upload").set_value((name, data, "application/octet-stream"))
        at.run()
        assert not at.exception, name
        assert at.error and name in at.error[0].value, name
        assert "tiny-default" in at.sidebar.caption[0].value


def test_good_upload_becomes_active(ckpt_dir, tiny_default):
    at = open_page("pages/overview.py")
    at.selectbox(key="model_choice").set_value("upload").run()
    at.file_uploader(key="model_upload").set_value(("mine.pt", tiny_default.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error
    assert "mine.pt (uploaded)" in at.sidebar.caption[0].value


def run_experiment(kind: str, steps: int = 20):
    """The Experiments page after running one experiment to the end: (page, its run)."""
    at = open_page("pages/experiments.py")
    at.radio(key="exp_kind").set_value(kind).run()
    at.select_slider(key="exp_steps").set_value(steps).run()
    at.button(key="exp_run").click().run()
    for _ in range(60):
        if not at.session_state["exp_running"]:
            break
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, at.session_state["exp_runs"][kind]


def test_experiment_runs_with_progress(ckpt_dir):
    at, run = run_experiment("causal")
    assert run.done and set(run.results) == {"causal (honest)", "causal=False (cheats)"}
    assert all(r["seeds"] == 3 for r in run.results.values())
    titles = [s["layout"]["title"]["text"] for s in specs(at)]
    assert titles[0].startswith("Training loss by variant")     # the cheat shows in its training loss
    fans = [t for t in titles if ": MAE " in t]                 # and in its forecast of the same sine
    assert [t.split(":")[0] for t in fans] == ["causal (honest)", "causal=False (cheats)"]
    assert at.success and "reads the answer" in at.success[0].value


@pytest.mark.parametrize("kind,base,variant,switch,caption", [
    ("previous", "own patch only", "own and previous patch", "previous_patch", "patch boundary"),
    ("seasonal", "own patch only", "own and seasonal patch", "seasonal_patch", "one season"),
    ("level", "seasonal patch as it was", "seasonal patch at today's level", "seasonal_level", "a season ago"),
    ("short", "a multiple of 32 values or longer", "the season itself, repeated", "short_seasons", "35 values back")])
def test_the_input_experiments_run_both_inputs(kind, base, variant, switch, caption, ckpt_dir):
    at, run = run_experiment(kind)
    assert any(caption in c.value for c in at.caption)
    assert run.done and set(run.results) == {base, variant}
    assert getattr(run.models[variant].config, switch) and not getattr(run.models[base].config, switch)
    new_weights = switch not in ("seasonal_level", "short_seasons")    # these move the patch, add no weight
    assert (run.results[variant]["params"] > run.results[base]["params"]) == new_weights


def test_the_cycles_experiment_runs_its_three_ways_of_averaging_seasons(ckpt_dir):
    at, run = run_experiment("cycles")
    assert any("whichever forecast its own last 4" in c.value for c in at.caption)
    assert run.done and list(run.results) == ["the last season", "the mean of the last 4", "1 to 4, chosen"]
    configs = [run.models[name].config for name in run.results]
    assert [(c.season_cycles, c.choose_cycles) for c in configs] == [(1, False), (4, False), (4, True)]
    assert len({run.results[name]["params"] for name in run.results}) == 1     # no new weight


def test_the_flip_experiment_trains_upside_down_and_forecasts_mirrored(ckpt_dir):
    at, run = run_experiment("flip")
    assert any("upside down" in c.value for c in at.caption)
    assert run.done and list(run.results) == ["as drawn", "half upside down",
                                              "half upside down, forecast mirrored"]
    assert [run.models[name].config.mirror for name in run.results] == [False, False, True]


def app_with_default(config: ModelConfig, name: str, tmp_path, monkeypatch) -> AppTest:
    """The app, run once, with a fresh model of this config as the shipped default."""
    torch.manual_seed(0)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, build_model(config).eval(), name=name)
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(path))
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("switch", ["previous_patch", "seasonal_patch", "seasonal_level", "short_seasons",
                                    "choose_cycles"])
def test_every_page_works_for_a_model_with_more_inputs(switch, tmp_path, monkeypatch):
    implied = {"seasonal_patch": True} if switch in ("seasonal_level", "short_seasons", "choose_cycles") else {}
    implied.update({"season_cycles": 4} if switch == "choose_cycles" else {})
    at = app_with_default(ModelConfig(n_layers=1, d_model=16, n_heads=2, **{switch: True}, **implied), switch,
                          tmp_path, monkeypatch)
    for page in ("pages/signals.py", "pages/attention.py", "pages/inside.py", "pages/forecast.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert switch in at.sidebar.caption[0].value
        if page == "pages/attention.py":     # the season it copies, only where it reads one
            shown = [h.value for h in at.subheader]
            assert ("Copying the season" in shown) == (switch != "previous_patch")
            if switch != "previous_patch":
                gates = next(s for s in specs(at) if "copies the values" in s["layout"]["title"]["text"])
                assert len(_array(gates["data"][0]["y"])) == 16
            told = any("whichever would have forecast its own last" in m.value for m in at.markdown)
            assert told == (switch == "choose_cycles")


@pytest.mark.parametrize("rung", ["linear", "attention"])
def test_analysis_pages_work_for_other_rungs(rung, tmp_path, monkeypatch):
    at = app_with_default(ModelConfig(rung=rung, n_layers=1, d_model=16, n_heads=2, patch_size=64), rung,
                          tmp_path, monkeypatch)
    for page in ("pages/signals.py", "pages/attention.py", "pages/forecast.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert rung in at.sidebar.caption[0].value
        if page == "pages/attention.py" and rung == "linear":
            assert any("has no attention" in i.value for i in at.info)


# ---------------------------------------------------------------- Forecast: a user's own series

def _array(v):
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        import numpy as np
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _titles(at) -> list[str]:
    return [s["layout"].get("title", {}).get("text", "") for s in specs(at)]


def _is_calibration(spec) -> bool:
    return "PIT histogram" in [a.get("text") for a in spec["layout"].get("annotations", [])]


def _calibration_spec(at) -> dict:
    """The one figure with the coverage and PIT panels (it has no title of its own)."""
    return next(s for s in specs(at) if _is_calibration(s))


def _own_series(at, how: str) -> AppTest:
    at.radio(key="fc_series").set_value("Your own series").run()
    at.radio(key="fc_us_input").set_value(how).run()
    return at


def test_forecast_example_series_full_analysis(ckpt_dir):
    import time
    at = open_page("pages/forecast.py")
    at.radio(key="fc_series").set_value("Sunspots (yearly)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert any("'year' as the time column" in i.value for i in at.info)
    by_title = dict(zip(_titles(at), specs(at)))
    fan = next(s for t, s in by_title.items() if "the next" in t)
    names = {t.get("name") for t in fan["data"]}
    assert {"50% band", "80% band", "95% band", "median", "sample paths"} <= names
    median = next(t for t in fan["data"] if t.get("name") == "median")
    assert _array(median["x"])[0] == 2009                      # the years go on after 2008
    assert axis_titles(fan) == ["year", "sunspot_activity"]
    backtest = next(s for t, s in by_title.items() if t.startswith("Backtest"))
    assert "held-out truth" in {t.get("name") for t in backtest["data"]}
    calibration = _calibration_spec(at)
    assert [(t["name"], t["type"]) for t in calibration["data"]] == [
        ("calibrated", "scatter"), ("NanoTST", "scatter"), ("NanoTST", "bar"), ("calibrated", "scatter")]
    table = at.table[-1].value
    assert table.index[0] == "NanoTST" and "naive" in table.index and "linear baseline" in table.index
    assert any(m.startswith("seasonal naive") for m in table.index)
    assert at.get("download_button")
    # a widget change redraws from the cache
    at.checkbox(key="fc_whole").check().run()
    t0 = time.perf_counter()
    at.checkbox(key="fc_whole").uncheck().run()
    redraw = time.perf_counter() - t0
    print(f"forecast page redraw after a widget change: {1e3 * redraw:.0f} ms")
    assert not at.exception and redraw < 2.0           # ~0.2-0.3 s here; slack for shared CPUs


def test_forecast_uploaded_csv_column_choice(ckpt_dir):
    at = _own_series(open_page("pages/forecast.py"), "Upload a CSV")
    rows = "\n".join(f"2000-{1 + i % 12:02d}-{1 + i // 12:02d},{i % 7},{(i * 37) % 11}"
                     for i in range(96))
    at.file_uploader(key="fc_us_csv").set_value(("mine.csv", f"date,a,b\n{rows}\n".encode(), "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and "several numeric columns (a, b)" in at.error[0].value
    at.selectbox(key="fc_us_col").set_value("b").run()
    assert not at.exception and not at.error
    assert any("'date' as the time column" in i.value for i in at.info)
    assert any("the next" in t for t in _titles(at))
    assert _calibration_spec(at)


@pytest.mark.parametrize("text, message", [
    ("1 2 x 4", "'x' (value 3) is not a number"),
    ("1 2 3", "only 3 values; the model needs at least 32 (one patch)"),
])
def test_forecast_bad_paste_is_an_error(ckpt_dir, text, message):
    at = _own_series(open_page("pages/forecast.py"), "Paste values")
    at.text_area(key="fc_us_paste").set_value(text).run()
    assert not at.exception
    assert at.error and message in at.error[0].value
    assert not any("the next" in t for t in _titles(at))


def test_forecast_bad_csv_same_message_as_library(ckpt_dir):
    import io
    from nanotst.userdata import DataError, load_series_csv
    values = [str(i % 9) for i in range(80)]
    values[6] = "oops"
    data = ("value\n" + "\n".join(values) + "\n").encode()
    with pytest.raises(DataError) as err:
        load_series_csv(io.BytesIO(data))
    at = _own_series(open_page("pages/forecast.py"), "Upload a CSV")
    at.file_uploader(key="fc_us_csv").set_value(("bad.csv", data, "text/csv"))
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [str(err.value)]


def test_forecast_missing_values_need_the_fill_checkbox(ckpt_dir):
    at = _own_series(open_page("pages/forecast.py"), "Paste values")
    at.text_area(key="fc_us_paste").set_value(" ".join(["1", "nan", "3"] + ["4", "5"] * 40)).run()
    assert at.error and "missing or infinite" in at.error[0].value
    assert any("Fill missing values" in c.value for c in at.caption)
    at.checkbox(key="fc_us_fill").check().run()
    assert not at.exception and not at.error
    assert any("filled 1 missing values by interpolation" in i.value for i in at.info)


def test_forecast_fine_tune_adds_a_row_and_leaves_the_shared_model(ckpt_dir, tiny_default):
    at = open_page("pages/forecast.py")
    at.radio(key="fc_series").set_value("Sunspots (yearly)").run()
    shared = at.session_state["active_model"].model
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    at.slider(key="fc_ft_steps").set_value(5).run()
    at.button(key="fc_ft_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.table[-1].value
    assert list(table.index[:2]) == ["NanoTST", "NanoTST after fine-tune"]
    assert any("Fine-tuned 5 steps" in c.value for c in at.caption)
    cov = _calibration_spec(at)
    assert "NanoTST after fine-tune" in [t["name"] for t in cov["data"]]
    # the cached model every session shares was not trained
    assert at.session_state["active_model"].model is shared
    on_disk = torch.load(tiny_default, map_location="cpu", weights_only=True)["state_dict"]
    for k, v in shared.state_dict().items():
        assert torch.equal(v, before[k]) and torch.equal(v, on_disk[k]), k
    # a second session does not see this session's fine-tuned copy
    other = open_page("pages/forecast.py")
    other.radio(key="fc_series").set_value("Sunspots (yearly)").run()
    assert "NanoTST after fine-tune" not in other.dataframe[-1].value.index


def test_forecast_own_series_with_an_mse_rung(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(rung="linear", patch_size=64)).eval()
    save_checkpoint(tmp_path / "linear.pt", model, name="linear")
    monkeypatch.setenv(DEFAULT_CHECKPOINT_ENV, str(tmp_path / "linear.pt"))
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path))
    at = open_page("pages/forecast.py")
    at.radio(key="fc_series").set_value("El Niño sea temperature (monthly)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("predicts no σ" in i.value for i in at.info)
    assert "linear rung" in at.table[-1].value.index[0]
    at.slider(key="fc_ft_steps").set_value(5).run()
    at.button(key="fc_ft_run").click().run()
    assert not at.exception and "NanoTST after fine-tune" in at.table[-1].value.index


def test_the_forecast_page_mirrors_when_asked_and_says_so(ckpt_dir):
    def nanotst_mae(at):
        table = next(t.value for t in at.table if "NanoTST" in t.value.index)
        return float(table.loc["NanoTST", "mae"])

    at = open_page("pages/forecast.py")
    toggle = next(t for t in at.toggle if t.label == "Mirror the forecast")
    assert toggle.value is False                        # the tiny default forecasts upright
    assert not any("upside down" in c.value for c in at.caption)
    upright = nanotst_mae(at)
    toggle.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("upside down" in c.value for c in at.caption)
    assert nanotst_mae(at) != upright


def test_overview_says_when_a_model_continued_from_another(ckpt_dir):
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, dropout=0.0)).eval()
    save_checkpoint(ckpt_dir / "more.pt", model, TrainConfig(n_series=8, epochs=1, flip=0.5),
                    history=[{"step": 5}], name="more",
                    data_spec={"init_from": "checkpoints/stage1.pt", "mix": {"flat": 1, "sine_low": 3}})
    at = open_page("pages/overview.py")
    assert not any("earlier one" in c.value for c in at.caption)
    at.selectbox(key="model_choice").set_value(f"file:{(ckpt_dir / 'more.pt').resolve()}").run()
    assert not at.exception, [e.value for e in at.exception]
    training = next(t.value for t in at.table if "continued from" in t.value.index)
    assert training.loc["continued from", "value"] == "checkpoints/stage1.pt"
    assert training.loc["upside down", "value"] == "50% of each batch"
    assert any("earlier one" in c.value for c in at.caption)
    mix = next(s for s in specs(at) if s["layout"]["title"]["text"].startswith("Share of the training"))
    assert dict(zip(mix["data"][0]["y"], _array(mix["data"][0]["x"]))) == {"flat": 0.25, "sine_low": 0.75}


def test_overview_says_when_a_model_is_the_mean_of_others(ckpt_dir):
    from nanotst.checkpoints import average_checkpoints
    torch.manual_seed(0)
    for name in ("a", "b"):
        model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, dropout=0.0)).eval()
        save_checkpoint(ckpt_dir / f"{name}.pt", model, TrainConfig(n_series=8, epochs=1),
                        history=[{"step": 5}], name=name, data_spec={"mix": {"flat": 1}})
    average_checkpoints([ckpt_dir / "a.pt", ckpt_dir / "b.pt"], ckpt_dir / "soup.pt")
    at = open_page("pages/overview.py")
    at.selectbox(key="model_choice").set_value(f"file:{(ckpt_dir / 'soup.pt').resolve()}").run()
    assert not at.exception, [e.value for e in at.exception]
    training = next(t.value for t in at.table if "averaged from" in t.value.index)
    assert training.loc["averaged from", "value"] == "2 models: a, b"
    assert any("mean of several models" in c.value for c in at.caption)


def test_train_settings_survive_a_visit_to_another_page(ckpt_dir):
    at = _tiny_training(open_page("pages/train.py"))
    at.radio(key="tr_mix").set_value("custom").run()
    at.slider(key="tr_w_flat").set_value(2.5)
    at.text_input(key="tr_name").input("sines-only").run()
    at.switch_page("pages/attention.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.number_input(key="tr_epochs").value == 4
    assert at.select_slider(key="tr_width").value == 16
    assert at.radio(key="tr_mix").value == "custom" and at.slider(key="tr_w_flat").value == 2.5
    assert at.text_input(key="tr_name").value == "sines-only"
    at.button(key="tr_step").click().run()
    settings = at.session_state["train_session"].settings
    assert settings.epochs == 4 and settings.d_model == 16 and dict(settings.mix)["flat"] == 2.5


def _open_with(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_views_settings_round_trip_through_the_url(ckpt_dir):
    at = _open_with("pages/attention.py", att_source="grammar case", att_signal="noisy", att_seed="7",
                    att_query="3", att_no_sink="true")
    assert at.selectbox(key="att_source").value == "grammar case"
    assert at.selectbox(key="att_name_grammar case").value == "noisy"
    assert at.number_input(key="att_seed").value == 7 and at.slider(key="att_query").value == 3
    assert at.toggle(key="att_no_sink").value is True
    at.slider(key="att_query").set_value(5).run()
    assert at.query_params["att_query"] == "5"                # the URL follows the widget
    assert "run" in at.query_params                             # the session's own run id ...
    link = next(c.value for c in at.code)
    assert "att_query=5" in link and "run=" not in link         # ... never goes into a shared link


def test_odd_url_values_fall_back_to_the_defaults(ckpt_dir):
    at = _open_with("pages/attention.py", att_query="99", att_seed="-3", att_view="<script>",
                    fc_horizon="x")
    assert at.slider(key="att_query").value == 15 and at.number_input(key="att_seed").value == 0
    assert at.query_params["att_query"] == "15"


def test_a_forecast_link_opens_the_same_horizon(ckpt_dir):
    at = _open_with("pages/forecast.py", fc_horizon="3", fc_samples="50")
    assert at.slider(key="fc_horizon").value == 3 and at.select_slider(key="fc_samples").value == 50
    assert "3 patch(es)" in specs(at)[0]["layout"]["title"]["text"]
