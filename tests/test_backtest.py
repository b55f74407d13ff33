"""The one backtest: its rows, its period rule, calibration (coverage per band, PIT), the
download format, and the shipped examples."""
import numpy as np
import pytest
import torch

from nanotst.backtest import BacktestError, backtest, calibration, score_forecast
from nanotst.config import ModelConfig
from nanotst.metrics import crps_samples, pit_values
from nanotst.model import build_model
from nanotst.userdata import EXAMPLES, DataError, example_path, load_series_csv, table_columns

P = 8
TINY = dict(context_length=64, patch_size=P, d_model=16, n_heads=2, n_layers=1, dropout=0.0)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(**TINY)).eval()


def sine(n=120, period=12):
    return np.sin(2 * np.pi * np.arange(n) / period)


def test_rows_baselines_and_scores(tiny_model):
    bt = backtest(tiny_model, sine(), 12, n_samples=30)
    table = bt.table()
    assert list(table.index) == ["NanoTST", "naive", "seasonal naive", "linear baseline"]
    assert list(table.columns) == ["mae", "mse", "mase", "crps", "coverage_50", "coverage_80", "coverage_95"]
    assert bt.period == 12 and bt.period_detected and bt.forecast.samples.shape == (30, 12)
    assert len(bt.history) == 108 and np.array_equal(bt.truth, sine()[-12:])
    # the seasonal naive is exact on a pure sine of its period
    assert table.loc["seasonal naive", "mae"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["naive", "crps"] == table.loc["naive", "mae"]
    assert np.isnan(table.loc["naive", "coverage_80"])
    assert 0.0 <= table.loc["NanoTST", "coverage_95"] <= 1.0
    assert bt.best_baseline("mae")[0] == "seasonal naive"      # an untrained model loses to it


def test_the_period_is_the_one_given_and_detected_on_the_history_only_when_none_is(tiny_model):
    given = backtest(tiny_model, sine(), 12, period=6, n_samples=10)
    assert given.period == 6 and not given.period_detected
    assert given.scores["seasonal naive"]["mae"] > 0.1          # the wrong season, as asked
    # the holdout cannot change the detected period: it is read from the history
    spoiled = sine()
    spoiled[-12:] = np.random.default_rng(0).normal(size=12)
    assert backtest(tiny_model, spoiled, 12, n_samples=10).period == 12
    # period 1: seasonal naive would be naive again, so it is left out
    flat = backtest(tiny_model, np.random.default_rng(1).normal(size=100), 8, n_samples=10)
    assert flat.period == 1 and "seasonal naive" not in flat.scores


def test_score_forecast_point_and_samples():
    history = np.arange(20.0)
    y = np.array([20.0, 21.0])
    point = score_forecast(y, np.array([19.0, 19.0]), history, period=1)
    assert point["mae"] == pytest.approx(1.5) and point["crps"] == pytest.approx(1.5)
    assert point["mase"] == pytest.approx(1.5) and np.isnan(point["coverage_80"])
    samples = np.stack([y - 1, y, y + 1] * 10)
    prob = score_forecast(y, samples, history, period=1)
    assert prob["mae"] == pytest.approx(0.0) and prob["coverage_95"] == 1.0
    assert prob["crps"] == pytest.approx(crps_samples(y, samples))


@pytest.mark.parametrize("horizon,period,message", [
    (0, None, "positive number of values"), (True, None, "positive number of values"),
    (115, None, "needs at least 8"), (12, 0, "season period"), (12, 500, "season period"),
    (12, 2.5, "season period")])
def test_bad_requests_get_one_line_messages(tiny_model, horizon, period, message):
    with pytest.raises(BacktestError, match=message):
        backtest(tiny_model, sine(), horizon, period=period, n_samples=5)


def test_the_download_frame_has_the_truth_and_the_bands(tiny_model):
    bt = backtest(tiny_model, sine(), 12, n_samples=50)
    frame = bt.frame(np.arange(108, 120))
    assert list(frame.columns) == ["step", "time", "mean", "q2.5", "q10", "q25", "q50", "q75", "q90",
                                   "q97.5", "truth"]
    np.testing.assert_array_equal(frame["truth"], bt.truth)
    lo, hi = bt.forecast.bands()[80]
    np.testing.assert_array_equal(frame["q10"], lo)
    np.testing.assert_array_equal(frame["q90"], hi)


def test_the_examples_know_their_season(tiny_model):
    assert {e.period for e in EXAMPLES.values()} == {12, 11}
    series = load_series_csv(example_path("Sunspots (yearly)"), patch_size=P)
    bt = backtest(tiny_model, series.values[-120:], 12, period=EXAMPLES["Sunspots (yearly)"].period,
                  n_samples=40)
    assert bt.period == 11 and bt.calibration().pit.shape == (12,)
    with pytest.raises(DataError, match="unknown example"):
        example_path("nope")
    cols, head = table_columns(example_path("CO₂ at Mauna Loa (monthly)"))
    assert cols == ["month", "co2_ppm"] and len(head) == 8


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
    cal = calibration(samples, rng.normal(size=H))
    assert set(cal.coverage) == {0.5, 0.8, 0.95}
    for level, observed in cal.coverage.items():
        assert observed == pytest.approx(level, abs=0.03)
    assert [r["band"] for r in cal.rows()] == ["50%", "80%", "95%"]
    # a truth far away is never covered
    far = calibration(samples[:, :10], np.full(10, 50.0))
    assert all(v == 0.0 for v in far.coverage.values()) and np.all(far.pit == 1.0)


