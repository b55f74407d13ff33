"""Forecasting a user's series: future time axis, CSV columns, calibration, PIT, fine-tuning a copy."""
import numpy as np
import pytest
import torch

from nanotst import userforecast as U
from nanotst.config import ModelConfig
from nanotst.evaluate import pit_values
from nanotst.model import build_model
from nanotst.userdata import DataError, load_series_csv

P = 8
TINY = dict(context_length=64, patch_size=P, d_model=16, n_heads=2, n_layers=1, dropout=0.0)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(**TINY)).eval()


def test_pit_values_are_uniform_for_a_well_specified_forecast():
    rng = np.random.default_rng(0)
    H, M = 4000, 400
    mu = rng.normal(size=H)
    samples = mu + rng.normal(size=(M, H))
    y = mu + rng.normal(size=H)                      # truth from the forecast's own distribution
    pit = pit_values(samples, y)
    assert pit.shape == (H,) and pit.min() >= 0 and pit.max() <= 1
    counts, _ = np.histogram(pit, bins=10, range=(0, 1))
    assert np.all(np.abs(counts / H - 0.1) < 0.02)
    # overconfident (too narrow) forecast: PIT piles up at 0 and 1
    narrow = pit_values(mu + 0.3 * rng.normal(size=(M, H)), y)
    assert np.mean((narrow < 0.1) | (narrow > 0.9)) > 0.5
    # ties count half; a truth above every sample is 1
    assert pit_values(np.array([[1.0], [2.0], [3.0], [4.0]]), [2.0])[0] == pytest.approx(0.375)
    assert pit_values(np.zeros((5, 2)), [1.0, -1.0]).tolist() == [1.0, 0.0]


def test_calibration_coverage_per_band():
    rng = np.random.default_rng(1)
    H = 3000
    samples = rng.normal(size=(500, H))
    cal = U.calibration(samples, rng.normal(size=H))
    assert set(cal.coverage) == {0.5, 0.8, 0.95}
    for level, observed in cal.coverage.items():
        assert observed == pytest.approx(level, abs=0.03)
    assert [r["band"] for r in cal.rows()] == ["50%", "80%", "95%"]
    # a truth far away is never covered
    far = U.calibration(samples[:, :10], np.full(10, 50.0))
    assert all(v == 0.0 for v in far.coverage.values()) and np.all(far.pit == 1.0)


def test_future_times_continue_the_spacing():
    months = np.array(["2001-10-01", "2001-11-01", "2001-12-01"], dtype="datetime64[ns]")
    fut = U.future_times(months, 3)
    assert [str(t)[:10] for t in fut] == ["2002-01-01", "2002-02-01", "2002-03-01"]
    gappy = np.array(["2001-01-01", "2001-02-01", "2001-04-01", "2001-05-01"], dtype="datetime64[ns]")
    assert str(U.future_times(gappy, 1)[0])[:10] == "2001-06-01"
    years = U.future_times(np.array([1700, 1701, 1702]), 2)
    assert years.tolist() == [1703, 1704] and years.dtype.kind == "i"
    assert U.future_times(np.array([0.0, 0.5, 1.0]), 2).tolist() == [1.5, 2.0]
    assert U.future_times(np.array(["a", "b", "c"], dtype=object), 2) is None
    assert U.future_times(None, 2) is None


def test_forecast_frame_columns_match_the_cli(tiny_model):
    fc = U.future_forecast(tiny_model, np.sin(np.arange(40) / 3), horizon=11, n_samples=50)
    assert fc.horizon == 11
    frame = U.forecast_frame(fc)
    assert list(frame.columns) == ["step", "mean", "q5", "q10", "q25", "q50", "q75", "q90", "q95"]
    assert frame["step"].tolist() == list(range(1, 12))
    assert np.all(np.diff(frame[["q5", "q25", "q50", "q75", "q95"]].to_numpy(), axis=1) >= 0)
    timed = U.forecast_frame(fc, U.future_times(np.arange(1990, 2030), 11))
    assert list(timed.columns[:3]) == ["step", "time", "mean"] and timed["time"].iloc[0] == 2030
    assert U.quantile_name(0.975) == "q97.5"


def test_analyse_series_and_examples(tiny_model):
    series = load_series_csv(U.example_path("Sunspots (yearly)"), patch_size=P)
    r = U.analyse_series(tiny_model, series.values[-120:], holdout=12, horizon=10, n_samples=40)
    table = r.table()
    assert {"naive", "linear baseline"} <= set(table.index) and table.index[0] == "NanoTST"
    assert r.future.horizon == 10 and r.backtest.truth.shape == (12,)
    assert r.calibration.pit.shape == (12,)
    with pytest.raises(DataError, match="unknown example"):
        U.example_path("nope")
    with pytest.raises(DataError, match="holdout"):
        U.analyse_series(tiny_model, series.values, holdout=0, horizon=5)
    cols, head = U.table_columns(U.example_path("CO₂ at Mauna Loa (monthly)"))
    assert cols == ["month", "co2_ppm"] and len(head) == 8


def test_fine_tune_trains_a_copy_on_the_history_only(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    values = np.sin(np.arange(100) / 4) + 0.01 * np.arange(100)
    seen = []
    result = U.fine_tune(tiny_model, values, holdout=20, steps=5, lr=1e-3,
                         progress=lambda i, n, loss: seen.append((i, n)))
    assert seen[-1] == (5, 5) and len(result.losses) == 5
    assert result.n_values == 80 and result.window == 64 + 8     # input plus the next patch
    for k, v in tiny_model.state_dict().items():            # the original is untouched
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, before[k]) for k, v in result.model.state_dict().items())
    assert not result.model.training
    # the held-out part never enters: changing it changes nothing
    other = values.copy()
    other[-20:] = 1e6
    again = U.fine_tune(tiny_model, other, holdout=20, steps=5, lr=1e-3)
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    r = U.analyse_series(tiny_model, values, holdout=20, horizon=8, n_samples=20, tuned=result.model)
    assert list(r.table().index[:2]) == ["NanoTST", U.AFTER_FINE_TUNE]
    with pytest.raises(DataError, match="at least 16 values before the holdout"):
        U.fine_tune(tiny_model, values, holdout=90, steps=2)
