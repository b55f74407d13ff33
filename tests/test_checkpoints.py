"""Checkpoints: round trip, atomic writes, safe names, and every refusal."""
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nanotst.checkpoints import (DEFAULT_CHECKPOINT, CheckpointError, average_checkpoints, list_checkpoints,
                                 load_checkpoint, safe_checkpoint_path, save_checkpoint)
from nanotst.config import ModelConfig, TrainConfig
from nanotst.model import build_model
from nanotst.train import Trainer

TINY = ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    t = Trainer(TINY, TrainConfig(n_series=32, epochs=2, batch_size=16, mix={"flat": 1, "sine_low": 2}),
                device="cpu")
    t.run(100)
    path = tmp_path_factory.mktemp("ck") / "tiny.pt"
    save_checkpoint(path, t.model, t.train_config, t.history, t.snapshots, t.data_spec(), t.metrics())
    return t, path


def test_average_of_checkpoints_is_the_mean_of_their_weights_with_its_own_metrics(trained, tmp_path):
    from nanotst.evaluate import grammar_eval
    t, path = trained
    other = build_model(TINY)                       # the same architecture, other weights
    save_checkpoint(tmp_path / "other.pt", other)
    out = average_checkpoints([path, tmp_path / "other.pt"], tmp_path / "soup.pt", name="soup")
    soup, a = load_checkpoint(out), load_checkpoint(path)
    for key, value in soup.model.state_dict().items():
        torch.testing.assert_close(value, (a.model.state_dict()[key] + other.state_dict()[key]) / 2)
    assert soup.name == "soup" and soup.history == a.history
    assert soup.data_spec["averaged_from"] == [str(path), str(tmp_path / "other.pt")]
    assert soup.data_spec["mix"] == a.data_spec["mix"]
    assert soup.metrics["grammar"] == grammar_eval(soup.model) != a.metrics["grammar"]
    assert soup.metrics["noise_floor"] == pytest.approx(a.metrics["noise_floor"])  # the Overview shows it


def test_a_model_without_the_seasonal_input_averages_with_zero_weights_for_it(trained, tmp_path):
    from dataclasses import replace
    t, path = trained
    torch.manual_seed(1)
    seasonal = build_model(replace(TINY, seasonal_patch=True))
    torch.nn.init.normal_(seasonal.season_gate.weight)
    save_checkpoint(tmp_path / "seasonal.pt", seasonal)
    out = average_checkpoints([path, tmp_path / "seasonal.pt"], tmp_path / "soup.pt")
    soup, plain = load_checkpoint(out).model, load_checkpoint(path).model
    assert soup.config == seasonal.config
    width = plain.embed_width
    torch.testing.assert_close(soup.embed.weight[:, :width], (plain.embed.weight + seasonal.embed.weight[:, :width]) / 2)
    torch.testing.assert_close(soup.embed.weight[:, width:], seasonal.embed.weight[:, width:] / 2)
    torch.testing.assert_close(soup.season_gate.weight, seasonal.season_gate.weight / 2)


def test_average_may_give_the_mean_or_one_checkpoint_weightless_settings_and_nothing_else(trained, tmp_path):
    from dataclasses import replace
    from nanotst.cli import main
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "level.pt", build_model(replace(TINY, seasonal_patch=True, seasonal_level=True)))
    soup = tmp_path / "soup.pt"
    assert main(["average", str(tmp_path / "level.pt"), "--out", str(soup), "--season-slack", "0.15"]) == 0
    mean, one = load_checkpoint(soup).model, load_checkpoint(tmp_path / "level.pt").model
    assert mean.config == replace(one.config, season_slack=0.15)
    torch.testing.assert_close(mean.state_dict(), one.state_dict())
    assert main(["average", str(soup), str(soup), "--out", str(tmp_path / "x.pt"), "--season-slack", "1.5"]) == 2
    assert not (tmp_path / "x.pt").exists()
    chosen = tmp_path / "chosen.pt"
    assert main(["average", str(soup), "--out", str(chosen), "--season-cycles", "4", "--choose-cycles",
                 "--short-seasons", "--mirror"]) == 0
    assert load_checkpoint(chosen).model_config == replace(mean.config, season_cycles=4, choose_cycles=True,
                                                           short_seasons=True, mirror=True)
    torch.testing.assert_close(load_checkpoint(chosen).model.state_dict(), one.state_dict())
    assert main(["average", str(soup), "--out", str(tmp_path / "x.pt"), "--season-cycles", "0"]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_average_refuses_one_checkpoint_or_two_architectures(trained, tmp_path):
    from nanotst.cli import main
    t, path = trained
    with pytest.raises(CheckpointError, match="at least two"):
        average_checkpoints([path], tmp_path / "soup.pt")
    save_checkpoint(tmp_path / "wide.pt", build_model(ModelConfig(context_length=64, patch_size=8, d_model=32,
                                                                   n_heads=2, n_layers=1)))
    with pytest.raises(CheckpointError, match="model config differs"):
        average_checkpoints([path, tmp_path / "wide.pt"], tmp_path / "soup.pt")
    assert not (tmp_path / "soup.pt").exists()
    assert main(["average", str(path), str(tmp_path / "wide.pt"), "--out", str(tmp_path / "soup.pt")]) == 2
    assert main(["average", str(path), str(path), "--out", str(tmp_path / "soup.pt")]) == 0
    torch.testing.assert_close(load_checkpoint(tmp_path / "soup.pt").model.state_dict(),
                               load_checkpoint(path).model.state_dict())


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 300
    return msg


def test_round_trip_same_predictions(trained):
    t, path = trained
    ck = load_checkpoint(path)
    assert ck.model_config == TINY and ck.train_config == t.train_config
    assert not ck.model.training
    assert ck.history == t.history and ck.snapshots == t.snapshots
    assert ck.data_spec["mix"] == t.data_spec()["mix"] and ck.metrics["grammar"]
    x = torch.randn(3, 64)
    t.model.eval()
    with torch.no_grad():
        a, b = t.model(x), ck.model(x)
    assert torch.equal(a.mu, b.mu) and torch.equal(a.sigma, b.sigma)
    with open(path, "rb") as f:                       # a file object (an upload) works too
        assert load_checkpoint(f).model_config == TINY
    assert load_checkpoint(io.BytesIO(path.read_bytes())).path is None


def test_atomic_write_leaves_no_temp_and_failed_save_keeps_old_file(trained, tmp_path):
    t, _ = trained
    path = tmp_path / "model.pt"
    save_checkpoint(path, t.model, metrics={"grammar": {}})
    before = path.read_bytes()
    assert os.listdir(tmp_path) == ["model.pt"]
    with pytest.raises(CheckpointError):
        save_checkpoint(path, t.model, history=[{"bad": object()}], metrics={})
    with pytest.raises(CheckpointError):
        save_checkpoint(path, t.model, metrics={"f": lambda: 1})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "nanotst-checkpoint", "payload": _Evil(str(marker))}, bad)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert not marker.exists()
    assert "not a readable NanoTST checkpoint" in _one_line(err)
    plain = tmp_path / "evil.pkl"                  # a bare pickle, not a torch zip
    plain.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not marker.exists()


def test_refuses_missing_truncated_random_and_oversized(trained, tmp_path):
    _, path = trained
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "nope.pt")
    assert "no such checkpoint" in _one_line(err)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(cut)
    _one_line(err)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(junk)
    _one_line(err)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, max_bytes=1000)
    assert "limit" in _one_line(err)
    with pytest.raises(CheckpointError):
        load_checkpoint(io.BytesIO(path.read_bytes()), max_bytes=1000)


def _tamper(path, tmp_path, edit):
    ck = torch.load(path, weights_only=True)
    edit(ck)
    out = tmp_path / "tampered.pt"
    torch.save(ck, out)
    return out


@pytest.mark.parametrize("edit, expect", [
    (lambda c: c.update(format="something-else"), "format"),
    (lambda c: c.pop("state_dict"), "missing state_dict"),
    (lambda c: c.update(version=99), "version"),
    (lambda c: c["model_config"].update(d_model=15), "invalid config"),
    (lambda c: c["model_config"].update(bogus=1), "invalid config"),
    (lambda c: c["train_config"].update(mix="nope"), "invalid config"),
    (lambda c: c["model_config"].update(d_model=32), "do not fit"),
    (lambda c: c["state_dict"].pop("head.weight"), "missing"),
    (lambda c: c["state_dict"].update(extra=torch.zeros(2)), "unexpected"),
    (lambda c: c["state_dict"]["head.weight"].fill_(float("nan")), "not finite"),
    # sizes are bounded before anything is built: these used to hang or fill memory
    (lambda c: c["model_config"].update(d_model=10**9, n_heads=1), "at most"),
    (lambda c: c["model_config"].update(n_layers=10**6), "at most"),
    (lambda c: c["model_config"].update(context_length=2**30), "at most"),
    (lambda c: c["model_config"].update(d_model=1024, n_heads=8, n_layers=32), "parameters"),
    # metadata is type-checked: these used to be TypeError tracebacks in evaluate and forecast
    (lambda c: c.update(history=5), "history"),
    (lambda c: c.update(history=[1, 2, 3]), "history"),
    (lambda c: c.update(history=[{"step": 1, "train_loss": "x"}]), "train_loss"),
    (lambda c: c.update(history=[{"step": 1, "grammar": {"flat": 3}}]), "grammar"),
    (lambda c: c.update(snapshots={"a": 1}), "snapshots"),
    (lambda c: c.update(metrics=[1]), "metrics"),
    (lambda c: c.update(metrics={"grammar": {"flat": {"mse": "low"}}}), "grammar"),
    (lambda c: c.update(data_spec="all"), "data_spec"),
    (lambda c: c.update(name=7), "name"),
])
def test_refuses_bad_contents(trained, tmp_path, edit, expect):
    _, path = trained
    bad = _tamper(path, tmp_path, edit)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert expect in _one_line(err)
    torch.save([1, 2, 3], bad)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_a_config_of_absurd_size_is_refused_without_building_it(trained, tmp_path):
    # the weights are checked against the config on the meta device: a wrong-but-plausible
    # config costs no memory either
    import resource
    _, path = trained
    bad = _tamper(path, tmp_path, lambda c: c["model_config"].update(d_model=512, n_heads=8, n_layers=16))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(bad)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000   # KiB


def test_a_zip_that_inflates_past_the_limit_is_refused_before_it_inflates(tmp_path):
    import resource
    import zipfile
    from nanotst import checkpoints
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (checkpoints.MAX_INFLATED_BYTES + 2**20))
    assert bomb.stat().st_size < 2 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="inflate"):
        load_checkpoint(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000   # KiB


def test_list_checkpoints_flags_bad_files(trained, tmp_path):
    t, path = trained
    save_checkpoint(tmp_path / "good.pt", t.model, metrics=t.metrics())
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "notes.txt").write_text("ignored")
    infos = list_checkpoints(tmp_path)
    assert [i.name for i in infos] == ["bad", "good"]
    bad, good = infos
    assert not bad.ok and bad.error and bad.rung is None
    assert good.ok and good.rung == "nanotst" and good.params == t.model.num_params()
    assert good.grammar and good.created and good.size > 0
    assert list_checkpoints(tmp_path / "missing") == []


def test_safe_checkpoint_path(tmp_path):
    assert safe_checkpoint_path(tmp_path, "my-run_1") == (tmp_path / "my-run_1.pt").resolve()
    assert safe_checkpoint_path(tmp_path, "v1.2.pt") == (tmp_path / "v1.2.pt").resolve()
    assert safe_checkpoint_path(tmp_path, " my run ").name == "my-run.pt"
    for bad in ["", "   ", ".pt", "../evil", "a/b", "a\\b", "..", "x..y", "/etc/passwd", ".hidden",
                "-flag", "na\x00me", "é", "a" * 200, "C:evil"]:
        with pytest.raises(CheckpointError):
            safe_checkpoint_path(tmp_path, bad)


def test_default_checkpoint_path_is_package_relative():
    assert DEFAULT_CHECKPOINT.is_absolute()
    assert DEFAULT_CHECKPOINT.parent.name == "checkpoints"
    assert (DEFAULT_CHECKPOINT.parent.parent / "nanotst" / "checkpoints.py").exists()


def _default_eval():
    from nanotst.evaluate import grammar_eval
    from nanotst.evaluate import grammar_noise_floor
    ck = load_checkpoint(DEFAULT_CHECKPOINT)
    cfg = ck.model_config
    floor = grammar_noise_floor(cfg.context_length, cfg.patch_size)["noisy"]   # computed, about 0.073
    return ck, grammar_eval(ck.model), floor


def test_shipped_default_meets_the_grammar_bar():
    assert DEFAULT_CHECKPOINT.exists(), "checkpoints/default.pt is missing"
    assert DEFAULT_CHECKPOINT.stat().st_size < 5 * 2**20
    ck, g, _ = _default_eval()
    assert ck.model_config.rung == "nanotst" and ck.train_config.mix == {"all": 1.0, "structural": 0.12,
                                                                         "drift_walk": 0.06}
    for case in ("flat", "line", "sine"):
        assert g[case]["mse"] <= 0.01, (case, g[case])
    assert g["noisy"]["sigma"] > g["sine"]["sigma"]
    assert ck.history and ck.snapshots and ck.snapshots[0]["step"] == 0
    assert ck.snapshots[-1]["step"] == ck.history[-1]["step"]


def test_shipped_default_noisy_is_near_the_noise_floor_on_the_fixed_draw():
    _, g, floor = _default_eval()
    assert g["noisy"]["mse"] <= 1.25 * floor, (g["noisy"], floor)


def test_shipped_default_noisy_median_over_40_draws_meets_the_bar():
    # the model shipped before the beta-NLL stage missed it: 1.27x (see checkpoints/README.md)
    from benchmarks.grammar_check import noisy_draws
    ck = load_checkpoint(DEFAULT_CHECKPOINT)
    assert float(np.median(noisy_draws(ck.model))) <= 1.25


# The quality target on real series: the README's backtest (hold out the last 32 values,
# seasonal period 12 for the monthly series, 11 for sunspots), averaged over the three examples.


@pytest.fixture(scope="module")
def example_backtests():
    """(NanoTST row, seasonal naive row) per example; computed once for both target tests."""
    from nanotst.backtest import backtest
    from nanotst.userdata import EXAMPLES, example_path, load_series_csv
    model = load_checkpoint(DEFAULT_CHECKPOINT).model
    results = {}
    for name, example in EXAMPLES.items():
        series = load_series_csv(example_path(name))
        scores = backtest(model, series.values, 32, period=example.period).scores
        results[name] = (scores["NanoTST"], scores["seasonal naive"])
    return results


def test_shipped_default_beats_seasonal_naive_on_the_examples(example_backtests):
    relative_mae = [ours["mae"] / seasonal["mae"] for ours, seasonal in example_backtests.values()]
    assert sum(relative_mae) / len(relative_mae) <= 0.85, relative_mae


@pytest.fixture(scope="module")
def benchmark_scores():
    """The shipped model on the forecast-quality benchmark's series (NanoTST and seasonal naive
    only: the statsforecast peers take minutes and are in benchmarks/README.md)."""
    from benchmarks import forecast_quality as fq
    model = load_checkpoint(DEFAULT_CHECKPOINT).model
    return fq.run(fq.all_series(), model, n_samples=200, methods=("seasonal_naive", "NanoTST"))


def test_shipped_default_beats_seasonal_naive_on_the_benchmarks_real_series(benchmark_scores):
    # the first set, and the second and third (added after the first had guided sixteen stages
    # of choices)
    for kind in ("real", "real-2", "real-3"):
        real = benchmark_scores["aggregate"][kind]["NanoTST"]
        assert real["n"] >= 25 and real["rel_mae_gmean"] <= 0.90, (kind, real)


def test_shipped_default_80_percent_band_is_calibrated_on_the_benchmark(benchmark_scores):
    # the calibration target: 75-85% on average, real and synthetic apart; the real series
    # are three sets of the benchmark's making, so the target holds for all 125 together, and each
    # set stays within 5 points of it (one value of an 8-value holdout moves a set of 25 by 0.005)
    coverage = lambda kinds: np.mean([row["scores"]["NanoTST"]["coverage_80"]
                                      for row in benchmark_scores["rows"] if row["kind"] in kinds])
    assert 0.75 <= coverage({"real", "real-2", "real-3"}) <= 0.85
    assert 0.75 <= coverage({"synthetic"}) <= 0.85
    for kind in ("real", "real-2", "real-3"):
        assert 0.70 <= coverage({kind}) <= 0.90, kind


@pytest.mark.xfail(strict=True, reason="open: the band misses breaks right at the holdout: a10 holds "
                   "5 of 24 values (a jump up), presidents 1 of 8, 16 real series in all (every peer: 26-44)")
def test_no_series_falls_below_half_in_the_shipped_80_percent_band(benchmark_scores):
    for kind in ("real", "real-2", "real-3", "synthetic"):
        agg = benchmark_scores["aggregate"][kind]["NanoTST"]
        assert agg["coverage_80_min"] >= 0.5, (kind, agg)
