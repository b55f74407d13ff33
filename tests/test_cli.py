"""CLI: python -m nanotst train | evaluate, exit codes and one-line errors, run as a user would."""
import json
import signal
import time
from dataclasses import replace
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nanotst.checkpoints import load_checkpoint
from nanotst.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY_FLAGS = ["--context-length", "64", "--patch-size", "8", "--d-model", "16", "--n-heads", "2",
              "--n-layers", "1", "--n-series", "32", "--epochs", "2", "--batch-size", "16", "--threads", "1"]


def nanotst(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nanotst", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny.pt"
    r = nanotst("train", *TINY_FLAGS, "--mix", "flat=1,sine_low=2", "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.exists() and out.with_suffix(".html").exists()
    assert "finished" in r.stderr and f"saved {out}" in r.stderr
    return out


def test_train_writes_checkpoint_and_offline_report(tiny_checkpoint):
    html = tiny_checkpoint.with_suffix(".html").read_text()
    assert "<script src=" not in html and "<link " not in html      # plotly.js is inlined: works offline
    assert "Grammar" in html and "sliders" in html


def test_evaluate_json(tiny_checkpoint):
    r = nanotst("evaluate", tiny_checkpoint, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert set(result["grammar"]) == {"flat", "line", "sine", "noisy"}
    for case in result["grammar"].values():
        assert set(case) >= {"mse", "sigma"}
    assert result["rung"] == "nanotst" and result["params"] > 0
    assert result["train_config"]["mix"] == {"flat": 1.0, "sine_low": 2.0}


def test_evaluate_table(tiny_checkpoint):
    r = nanotst("evaluate", tiny_checkpoint)
    assert r.returncode == 0 and "noisy" in r.stdout and "sigma" in r.stdout


def test_bad_checkpoint_exits_2(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04junk" * 50)
    line = assert_one_line_error(nanotst("evaluate", junk))
    assert "junk.pt" in line and "not a readable" in line
    line = assert_one_line_error(nanotst("evaluate", tmp_path / "missing.pt"))
    assert "no such checkpoint" in line


@pytest.mark.parametrize("args, expect", [
    (["train", "--bogus"], "unrecognized"),
    (["train", "--epochs", "zero"], "invalid int"),
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--d-model", "15"], "d_model"),
    (["train", "--rung", "gpt5"], "rung"),
    (["train", "--mix", "nope"], "mix"),
    (["train", "--mix", "flat=x"], "bad mix weight"),
    (["train", "--mix", "flat=1,wobble=2"], "wobble"),
    (["train", "--max-seconds", "-1"], "positive"),
    (["train", "--out", "run.txt"], ".pt"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_exit_2(args, expect, capsys):
    # in-process (a subprocess per case costs a torch import each); test_bad_flag_subprocess covers the real thing
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert expect in err.strip().splitlines()[-1]


def test_bad_flag_subprocess():
    line = assert_one_line_error(nanotst("train", "--epochs", "0"))
    assert line == "error: epochs: must be a positive integer, got 0"


def test_max_seconds_stops_and_saves(tmp_path, capsys):
    out = tmp_path / "short.pt"
    code = main(["train", *TINY_FLAGS[:-6], "--n-series", "64", "--epochs", "100000", "--threads", "1",
                 "--max-seconds", "0.3", "--no-report", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "time limit" in err and out.exists() and not out.with_suffix(".html").exists()
    ck = load_checkpoint(out)
    assert ck.history[-1]["step"] > 0 and ck.train_config.epochs == 100000


def test_max_steps_stops_exactly_and_equals_an_interrupted_run(tmp_path, capsys):
    # the reproducible form of a run that was stopped early: the same weights as the first
    # 27 steps of the full schedule
    import torch
    from nanotst.config import TrainConfig
    from nanotst.train import Trainer
    out = tmp_path / "27.pt"
    code = main(["train", *TINY_FLAGS[:-6], "--n-series", "64", "--epochs", "50", "--threads", "1",
                 "--max-steps", "27", "--no-report", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "step limit of 27" in err
    ck = load_checkpoint(out)
    assert ck.history[-1]["step"] == 27 and ck.train_config.epochs == 50
    t = Trainer(ck.model_config, ck.train_config, device="cpu")
    t.run(27)
    for k, v in t.model.state_dict().items():
        torch.testing.assert_close(ck.model.state_dict()[k], v)


def test_ctrl_c_saves_what_was_trained(tmp_path):
    out = tmp_path / "interrupted.pt"
    proc = subprocess.Popen([sys.executable, "-m", "nanotst", "train", *TINY_FLAGS[:-6], "--n-series", "64",
                             "--epochs", "100000", "--threads", "1", "--no-report", "--out", str(out)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()               # the handler is installed once this is printed
        assert line.startswith("training"), line
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "interrupted (Ctrl-C)" in err and out.exists()
    assert load_checkpoint(out).history[-1]["step"] > 0


def test_report_figures_are_pure_and_complete(tmp_path):
    from nanotst.plots import grammar_curves_figure, loss_figure, snapshots_slider_figure
    from nanotst.report import write_report
    case = {"target": [[0.0, 1.0], [1.0, 0.0]], "mu": [[0.1, 0.9], [0.8, 0.1]], "sigma": [[0.2, 0.2], [0.3, 0.3]],
            "loc": 0.0, "scale": 1.0}
    snaps = [{"step": s, "epoch": s / 10, "grammar": {"flat": case, "sine": case}} for s in (0, 10, 20)]
    g = {"flat": {"mse": 0.5, "sigma": 0.3}, "sine": {"mse": 0.2, "sigma": 0.3}}
    history = [{"step": 0, "epoch": 0, "train_loss": None, "val_loss": 1.0, "elapsed": 0, "grammar": g},
               {"step": 10, "epoch": 1, "train_loss": 0.8, "val_loss": 0.7, "elapsed": 1, "grammar": g}]
    fig = snapshots_slider_figure(snaps)
    assert len(fig.frames) == 3 and len(fig.layout.sliders[0].steps) == 3
    assert grammar_curves_figure(history).layout.yaxis.type == "log"
    assert len(loss_figure(history).data) == 2
    out = write_report(tmp_path / "r.html", history, snaps, title="t")
    assert out.read_text().count("<script src=") == 0 and os.listdir(tmp_path) == ["r.html"]


def test_train_init_continues_from_a_checkpoint(tiny_checkpoint, tmp_path):
    start = load_checkpoint(tiny_checkpoint)
    out = tmp_path / "continued.pt"
    r = nanotst("train", "--init", tiny_checkpoint, "--n-series", "32", "--epochs", "1",
                "--batch-size", "16", "--lr", "1e-9", "--threads", "1", "--no-report", "--out", out)
    assert r.returncode == 0, r.stderr
    cont = load_checkpoint(out)
    assert cont.model_config == start.model_config             # the checkpoint's config, no flags needed
    assert cont.data_spec["init_from"] == str(tiny_checkpoint)
    for name, w in start.model.state_dict().items():           # a near-zero lr: the start weights survive
        assert (cont.model.state_dict()[name] - w).abs().max() < 1e-5, name

    fresh = tmp_path / "fresh.pt"
    r = nanotst("train", *TINY_FLAGS, "--lr", "1e-9", "--seed", "5", "--no-report", "--out", fresh)
    assert r.returncode == 0, r.stderr
    other = load_checkpoint(fresh).model.state_dict()
    assert any((other[n] - w).abs().max() > 1e-3 for n, w in start.model.state_dict().items())


def test_train_init_may_change_dropout_and_nothing_else(tiny_checkpoint, tmp_path):
    start = load_checkpoint(tiny_checkpoint)
    assert start.model_config.dropout == 0.1
    out = tmp_path / "less-dropout.pt"
    r = nanotst("train", "--init", tiny_checkpoint, "--dropout", "0.03", "--n-series", "32", "--epochs", "1",
                "--batch-size", "16", "--lr", "1e-9", "--threads", "1", "--no-report", "--out", out)
    assert r.returncode == 0, r.stderr
    cont = load_checkpoint(out)
    assert cont.model_config.dropout == 0.03
    assert cont.model_config == replace(start.model_config, dropout=0.03)   # and nothing else changed
    for name, w in start.model.state_dict().items():           # the same weights went on training
        assert (cont.model.state_dict()[name] - w).abs().max() < 1e-5, name

    r = nanotst("train", "--init", tiny_checkpoint, "--dropout", "1.5", "--out", tmp_path / "x.pt")
    assert "dropout" in assert_one_line_error(r)
    r = nanotst("train", "--init", tiny_checkpoint, "--dropout", "0", "--n-layers", "2", "--out", tmp_path / "x.pt")
    assert "leave out the model flags" in assert_one_line_error(r)


def test_train_init_may_add_rotary_positions_to_a_learned_model(tiny_checkpoint, tmp_path):
    start = load_checkpoint(tiny_checkpoint)
    assert start.model_config.position == "learned"
    out = tmp_path / "both.pt"
    r = nanotst("train", "--init", tiny_checkpoint, "--position", "both", "--n-series", "32", "--epochs", "1",
                "--batch-size", "16", "--lr", "1e-9", "--threads", "1", "--no-report", "--out", out)
    assert r.returncode == 0, r.stderr
    cont = load_checkpoint(out)
    assert cont.model_config == replace(start.model_config, position="both")
    for name, w in start.model.state_dict().items():           # every weight carried over
        assert (cont.model.state_dict()[name] - w).abs().max() < 1e-5, name
    # going to rotary alone would throw the learned table away
    r = nanotst("train", "--init", tiny_checkpoint, "--position", "rope", "--out", tmp_path / "x.pt")
    assert "pos.weight" in assert_one_line_error(r)


@pytest.mark.parametrize("switch", ["previous_patch", "seasonal_patch", "seasonal_level"])
def test_train_init_may_give_the_embedding_a_new_input(switch, tiny_checkpoint, tmp_path):
    start = load_checkpoint(tiny_checkpoint)
    out = tmp_path / f"{switch}.pt"
    r = nanotst("train", "--init", tiny_checkpoint, "--" + switch.replace("_", "-"), "--n-series", "32",
                "--epochs", "1", "--batch-size", "16", "--lr", "1e-9", "--threads", "1", "--no-report",
                "--out", out)
    assert r.returncode == 0, r.stderr
    cont = load_checkpoint(out)
    implied = {"seasonal_patch": True} if switch == "seasonal_level" else {}
    assert cont.model_config == replace(start.model_config, **{switch: True}, **implied)
    width = start.model.embed_width
    torch.testing.assert_close(cont.model.embed.weight[:, :width], start.model.embed.weight, atol=1e-5, rtol=0)
    assert cont.model.embed.weight[:, width:].abs().max() < 1e-5     # the new inputs start at zero
    if switch != "previous_patch":                                  # the lag it read, in the notes
        csv = tmp_path / "weekly.csv"
        pd.DataFrame({"value": np.sin(2 * np.pi * np.arange(200) / 7)}).to_csv(csv, index=False)
        r = nanotst("forecast", "--checkpoint", out, "--input", csv, "--horizon", "16",
                    "--output", tmp_path / "fc.csv")
        assert r.returncode == 0, r.stderr
        assert "values back" in r.stderr or "no season repeats" in r.stderr


def test_train_init_may_change_the_weightless_season_settings_and_keeps_them_otherwise(tiny_checkpoint, tmp_path):
    args = ("--n-series", "32", "--epochs", "1", "--batch-size", "16", "--lr", "1e-9", "--threads", "1",
            "--no-report")
    slack = tmp_path / "slack.pt"
    r = nanotst("train", "--init", tiny_checkpoint, "--seasonal-level", "--season-slack", "0.15",
                "--season-cycles", "3", "--choose-cycles", "--short-seasons", "--mirror", *args, "--out", slack)
    assert r.returncode == 0, r.stderr
    config = load_checkpoint(slack).model_config
    assert config.season_slack == 0.15 and config.season_cycles == 3 and config.choose_cycles
    assert config.short_seasons and config.mirror
    assert config.seasonal_level and config.seasonal_patch
    kept = tmp_path / "kept.pt"
    assert nanotst("train", "--init", slack, *args, "--out", kept).returncode == 0
    assert load_checkpoint(kept).model_config == config
    r = nanotst("train", "--init", slack, "--season-slack", "2", *args, "--out", tmp_path / "x.pt")
    assert "season_slack" in assert_one_line_error(r)


def test_train_init_refuses_model_flags_that_disagree(tiny_checkpoint, tmp_path):
    r = nanotst("train", "--init", tiny_checkpoint, "--d-model", "32", "--out", tmp_path / "x.pt")
    assert "leave out the model flags" in assert_one_line_error(r)
    r = nanotst("train", "--init", tmp_path / "missing.pt", "--out", tmp_path / "x.pt")
    assert "missing.pt" in assert_one_line_error(r)
