"""Hostile inputs to the CLI and the library, by class (issue 13): each gets exit code 2 and one
line, or a right answer; never a traceback, a hang, a memory blow-up or a silent wrong answer."""
import os
import resource
import time

import numpy as np
import pandas as pd
import pytest

from nanotst.cli import main
from nanotst.files import remove_stale_temps


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = [line for line in err.strip().splitlines() if not line.startswith("note:")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "s.csv"
    t = np.arange(120)
    pd.DataFrame({"y": 5 + np.sin(2 * np.pi * t / 12)}).to_csv(path, index=False)
    return path


# ---- class 2: parameters have upper bounds; every failure is exit 2 and one line ----------

@pytest.mark.parametrize("args, expect", [
    (["forecast", "--horizon", "100000000000"], "horizon"),
    (["forecast", "--horizon", "64", "--samples", "1000000000"], "too many"),
    (["forecast", "--horizon", "8", "--seed", "-1"], "seed"),
    (["backtest", "--horizon", "8", "--samples", "0"], "samples"),
])
def test_forecast_flags_out_of_range(capsys, tmp_path, csv_file, args, expect):
    extra = ["--output", tmp_path / "o.csv"] if args[0] == "forecast" else []
    start = time.perf_counter()
    code, _, err = run(capsys, *args, "--input", csv_file, *extra)
    assert expect in one_line_error(code, err)
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "o.csv").exists()


def test_a_folder_as_output_is_named_as_such(capsys, tmp_path, csv_file):
    code, _, err = run(capsys, "forecast", "--input", csv_file, "--horizon", 8, "--output", tmp_path)
    assert "is a folder" in one_line_error(code, err)


@pytest.mark.parametrize("args, expect", [
    (["--lr", "inf"], "lr"),
    (["--grad-clip", "inf"], "grad_clip"),
    (["--threads", "10000"], "threads"),
    (["--threads", "0"], "threads"),
    (["--seed", "-1"], "seed"),
    (["--d-model", "1000000000", "--n-heads", "1"], "d_model"),
    (["--n-layers", "1000000"], "n_layers"),
    (["--context-length", "1000000000"], "context_length"),
    (["--n-series", "1000000000"], "n_series"),
    (["--epochs", "1000000000000"], "epochs"),
    (["--batch-size", "100000000"], "batch_size"),
])
def test_train_flags_out_of_range(capsys, tmp_path, args, expect):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = run(capsys, "train", *args, "--out", tmp_path / "x.pt", "--no-report")
    assert expect in one_line_error(code, err)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000   # KiB
    assert not list(tmp_path.iterdir())


def test_an_unexpected_failure_is_one_line_too(capsys, monkeypatch, csv_file, tmp_path):
    import nanotst.cli as cli
    def boom(*a, **k):
        raise RuntimeError("something deep broke\nwith a second line")
    monkeypatch.setattr(cli, "_load_series", boom)
    monkeypatch.delenv("NANOTST_DEBUG", raising=False)
    code, _, err = run(capsys, "backtest", "--input", csv_file, "--horizon", "8")
    line = one_line_error(code, err)
    assert "RuntimeError" in line and "something deep broke" in line


# ---- class 3: numbers out of float32's range are forecast in their own units -----------------

@pytest.mark.parametrize("scale", [1e300, 1e37, 1e-300])
def test_forecasts_of_extreme_magnitudes_are_right_and_finite(capsys, tmp_path, scale):
    t = np.arange(200)
    base = 5 + np.sin(2 * np.pi * t / 12)
    outs = {}
    for name, factor in (("base", 1.0), ("scaled", scale)):
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"y": base * factor}).to_csv(path, index=False, float_format="%.17g")
        out = tmp_path / f"{name}_fc.csv"
        code, _, err = run(capsys, "forecast", "--input", path, "--horizon", 32, "--samples", 50,
                           "--output", out)
        assert code == 0, err
        outs[name] = pd.read_csv(out)
    assert np.isfinite(outs["scaled"]["mean"]).all()
    np.testing.assert_allclose(outs["scaled"]["mean"] / scale, outs["base"]["mean"], rtol=1e-3)


# ---- class 4: odd CSVs --------------------------------------------------------------------

def test_a_very_long_field_is_a_clear_message(capsys, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("value\n" + "1" * 300_000 + "\n2\n")
    code, _, err = run(capsys, "backtest", "--input", path, "--horizon", 8)
    assert "characters long" in one_line_error(code, err)


def test_a_folder_or_a_fifo_is_not_reported_as_missing(capsys, tmp_path):
    code, _, err = run(capsys, "backtest", "--input", tmp_path, "--horizon", 8)
    assert "folder" in one_line_error(code, err)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    start = time.perf_counter()
    code, _, err = run(capsys, "backtest", "--input", fifo, "--horizon", 8)
    assert "not a regular file" in one_line_error(code, err)
    assert time.perf_counter() - start < 10          # never blocks reading the pipe


def test_utf16_files_are_read_with_their_column_names(capsys, tmp_path):
    t = np.arange(150)
    text = "month,sales\n" + "\n".join(f"{i},{10 + np.sin(i / 2):.4f}" for i in t) + "\n"
    path = tmp_path / "u16.csv"
    path.write_bytes(text.encode("utf-16"))
    code, out, err = run(capsys, "backtest", "--input", path, "--horizon", 8, "--column", "sales")
    assert code == 0, err
    assert "'sales'" in out
    no_bom = tmp_path / "u16le.csv"
    no_bom.write_bytes(text.encode("utf-16-le"))
    code, _, err = run(capsys, "backtest", "--input", no_bom, "--horizon", 8)
    assert "UTF-16" in one_line_error(code, err)


# ---- class 7: leftovers of killed writes ----------------------------------------------------

def test_stale_temp_files_are_cleaned_and_never_listed(tmp_path):
    from nanotst.checkpoints import list_checkpoints
    old = tmp_path / ".run.pt.abc123.tmp"
    fresh = tmp_path / ".other.pt.def456.tmp"
    old.write_bytes(b"half a checkpoint")
    fresh.write_bytes(b"a write in progress")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert list_checkpoints(tmp_path) == []
    assert not old.exists() and fresh.exists()     # a live write is left alone
    assert remove_stale_temps(tmp_path) == []
