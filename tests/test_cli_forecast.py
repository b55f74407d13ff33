"""CLI: python -m nanotst forecast | backtest on a user's CSV, and every bad input's one-line error."""
import json

import numpy as np
import pandas as pd
import pytest

from nanotst.cli import main
from tests.test_cli import assert_one_line_error, nanotst

QUANTILE_COLUMNS = ["q2.5", "q10", "q25", "q50", "q75", "q90", "q97.5"]   # the bands' edges


@pytest.fixture
def seasonal_csv(tmp_path):
    t = np.arange(200)
    df = pd.DataFrame({"month": pd.date_range("2000-01", periods=200, freq="MS").strftime("%Y-%m"),
                       "sales": 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12)})
    path = tmp_path / "sales.csv"
    df.to_csv(path, index=False)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_writes_one_row_per_future_step(seasonal_csv, tmp_path, capsys):
    out = tmp_path / "fc.csv"
    code, _, err = run(capsys, "forecast", "--input", seasonal_csv, "--horizon", 40, "--samples", 50,
                       "--output", out)
    assert code == 0, err
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["step", "time", "mean"] + QUANTILE_COLUMNS   # the app's format
    assert fc["step"].tolist() == list(range(1, 41))
    assert fc["time"].iloc[0].startswith("2016-09-01")      # the month after the last one
    q = fc[QUANTILE_COLUMNS].to_numpy()
    assert (np.diff(q, axis=1) >= -1e-9).all()              # quantiles in order at every step
    assert 5 < fc["mean"].mean() < 40                         # original scale, not normalized
    assert "padded 24 values at the start" in err            # 200 is not a multiple of 32
    assert not list(tmp_path.glob("*.tmp"))


def test_the_shipped_model_forecasts_mirrored_unless_told_not_to(seasonal_csv, tmp_path, capsys):
    from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from nanotst.forecast import forecast
    model = load_checkpoint(DEFAULT_CHECKPOINT).model
    values = pd.read_csv(seasonal_csv)["sales"].to_numpy()
    for flag, mirror in (("--mirror", True), ("--no-mirror", False)):
        out = tmp_path / f"{mirror}.csv"
        code, _, err = run(capsys, "forecast", "--input", seasonal_csv, "--horizon", 16, "--samples", 20,
                           flag, "--output", out)
        assert code == 0, err
        assert ("upside down" in err) == mirror
        expected = forecast(model, values, 16, n_samples=20, mirror=mirror).median
        np.testing.assert_allclose(pd.read_csv(out)["q50"], expected, rtol=1e-6)
    code, _, err = run(capsys, "forecast", "--input", seasonal_csv, "--horizon", 16, "--samples", 20,
                       "--output", tmp_path / "default.csv")
    assert code == 0 and "upside down" in err
    assert pd.read_csv(tmp_path / "default.csv")["q50"].equals(pd.read_csv(tmp_path / "True.csv")["q50"])


def test_forecast_custom_quantiles(seasonal_csv, tmp_path, capsys):
    out = tmp_path / "fc.csv"
    code, _, err = run(capsys, "forecast", "--input", seasonal_csv, "--horizon", 3, "--samples", 20,
                       "--quantiles", "0.05,0.5,0.95", "--output", out)
    assert code == 0, err
    assert list(pd.read_csv(out).columns) == ["step", "time", "mean", "q5", "q50", "q95"]


def test_backtest_json_compares_with_the_baselines(seasonal_csv, capsys):
    code, out, err = run(capsys, "backtest", "--input", seasonal_csv, "--horizon", 24, "--json",
                         "--samples", 50)
    assert code == 0, err
    result = json.loads(out)
    assert result["period"] == 12 and result["period_detected"] and result["column"] == "sales"
    methods = {m["method"]: m for m in result["methods"]}
    assert set(methods) == {"NanoTST", "naive", "seasonal naive", "linear baseline"}
    for m in methods.values():
        assert {"mae", "mase", "crps", "coverage_50", "coverage_80", "coverage_95"} <= set(m)
    assert 0 <= methods["NanoTST"]["coverage_80"] <= 1
    assert methods["naive"]["coverage_80"] is None             # a point forecast has no bands
    # a clean seasonal series: seasonal naive beats naive
    assert methods["seasonal naive"]["mae"] < methods["naive"]["mae"]


def test_backtest_table_and_given_period(seasonal_csv, capsys):
    code, out, _ = run(capsys, "backtest", "--input", seasonal_csv, "--horizon", 24, "--period", 6,
                       "--samples", 20)
    assert code == 0
    assert "season period 6\n" in out and "seasonal naive" in out


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def numbers(n, start=0):
    return "\n".join(str(float(np.sin(i / 5))) for i in range(start, start + n))


BAD_INPUTS = {
    "missing": (None, "file not found"),
    "empty": ("", "empty"),
    "no_numeric": ("name,colour\n" + "\n".join(f"a{i},red" for i in range(80)), "no numeric column"),
    "text_in_column": ("value\n" + numbers(40) + "\nabc\n" + numbers(40), "has text 'abc' at line 42"),
    "nan": ("value\n" + numbers(40) + "\nnan\n" + numbers(40), "missing"),
    "short": ("value\n" + numbers(20), "at least 32"),
    "several": ("a,b\n" + "\n".join(f"{np.sin(i)},{np.cos(i)}" for i in range(80)), "choose one with --column"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    text, expected = BAD_INPUTS[case]
    path = tmp_path / "missing.csv" if text is None else write(tmp_path, f"{case}.csv", text)
    code, _, err = run(capsys, "backtest", "--input", path, "--horizon", 8)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert expected.lower() in lines[0].lower()


@pytest.mark.parametrize("text, expected", [
    ("a,b\n" + "\n".join(f"{i};{2 * i}" for i in range(80)), "different delimiters"),
    ("a b\n" + "\n".join(f"{i}.5 {i}.7" for i in range(80)), "' '-separated"),
])
def test_wrong_delimiter_is_named(tmp_path, capsys, text, expected):
    code, _, err = run(capsys, "backtest", "--input", write(tmp_path, "d.csv", text), "--horizon", 8)
    assert code == 2 and expected in err


def test_other_delimiters_are_read(tmp_path, capsys):
    path = write(tmp_path, "semi.csv", "value;other\n" + "\n".join(f"{np.sin(i):.3f};x" for i in range(80)))
    code, _, err = run(capsys, "backtest", "--input", path, "--horizon", 8, "--samples", 10)
    assert code == 0 and "';'-separated" in err


def test_missing_values_are_filled_only_when_asked(tmp_path, capsys):
    path = write(tmp_path, "gaps.csv", "value\n" + numbers(40) + "\n\n" + "nan\n" + numbers(40, 41))
    assert run(capsys, "backtest", "--input", path, "--horizon", 8)[0] == 2
    code, _, err = run(capsys, "backtest", "--input", path, "--horizon", 8, "--fill", "interpolate",
                       "--samples", 20)
    assert code == 0, err
    assert "filled 1 missing values by interpolation" in err


@pytest.mark.parametrize("args, expected", [
    (["--horizon", "0"], "--horizon must be a positive"),
    (["--horizon", "-3"], "--horizon must be a positive"),
    (["--horizon", "8", "--samples", "0"], "--samples must be positive"),
    (["--horizon", "8", "--column", "nope"], "unknown column 'nope'"),
])
def test_bad_parameters_exit_2(seasonal_csv, args, expected, capsys):
    code, _, err = run(capsys, "backtest", "--input", seasonal_csv, *args)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_too_large_file_is_refused(tmp_path, capsys, monkeypatch):
    import nanotst.cli as cli
    monkeypatch.setattr(cli, "MAX_INPUT_BYTES", 1000)
    path = write(tmp_path, "big.csv", "value\n" + numbers(400))
    code, _, err = run(capsys, "forecast", "--input", path, "--horizon", 8, "--output", tmp_path / "o.csv")
    assert code == 2 and "limit" in err.lower()
    assert not (tmp_path / "o.csv").exists()


def test_forecast_as_a_user_runs_it(seasonal_csv, tmp_path):
    out = tmp_path / "fc.csv"
    r = nanotst("forecast", "--input", seasonal_csv, "--horizon", 5, "--samples", 10, "--output", out)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out)) == 5
    r = nanotst("forecast", "--input", tmp_path / "nope.csv", "--horizon", 5, "--output", out)
    assert "nope.csv" in assert_one_line_error(r)
