"""metrics.py against hand-computed values and known identities; baselines.py; evaluate_model."""
import numpy as np
import pytest
import torch

from nanotst.config import ModelConfig
from nanotst.baselines import (detect_period, fit_linear_baseline, linear_baseline_forecast, naive_forecast,
                               seasonal_naive_forecast)
from nanotst.evaluate import evaluate_model
from nanotst.metrics import (band_quantiles, central_interval, coverage, crps_gaussian, crps_samples,
                             crps_samples_per_step, gaussian_nll, interval_coverage, mae, mase, mse,
                             weighted_quantile_loss)
from nanotst.model import build_model

TINY = dict(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=2, dropout=0.0)


def test_point_metrics_by_hand():
    y, p = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 0.0])
    assert mse(y, p) == pytest.approx((0 + 4 + 9) / 3)
    assert mae(y, p) == pytest.approx((0 + 2 + 3) / 3)


def test_gaussian_nll_by_hand():
    # N(0, 1) at 0: 0.5 log(2 pi); N(1, 2) at 3: 0.5 log(2 pi) + log 2 + 0.5
    assert gaussian_nll(0.0, 0.0, 1.0) == pytest.approx(0.5 * np.log(2 * np.pi))
    assert gaussian_nll(3.0, 1.0, 2.0) == pytest.approx(0.5 * np.log(2 * np.pi) + np.log(2) + 0.5)


def test_mase_scaled_by_seasonal_naive():
    history = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    # period 1: in-sample naive MAE is 1; period 2: it is 0 -> undefined
    assert mase([2.0, 2.0], [1.0, 1.0], history, period=1) == pytest.approx(1.0)
    assert np.isnan(mase([2.0], [1.0], history, period=2))
    assert mase([3.0], [1.0], [0.0, 2.0, 4.0], period=1) == pytest.approx(1.0)


def test_mase_is_undefined_when_the_history_repeats_to_rounding():
    t = np.arange(600)
    history = 1.5 * np.sin(2 * np.pi * t / 256 + 0.3)      # seasonal naive's error: only rounding
    assert 0 < np.mean(np.abs(history[256:] - history[:-256])) < 1e-12
    assert np.isnan(mase([1.0], [0.9], history, period=256))
    # a real error on values of any size still scales
    assert mase([2e-200], [1e-200], np.array([0.0, 1e-200, 0.0, 1e-200]), period=1) == pytest.approx(1.0)


def test_crps_gaussian_known_values():
    # at the mean, CRPS = sigma * (2 phi(0) - 1/sqrt(pi)) = sigma * (sqrt(2) - 1) / sqrt(pi)
    assert crps_gaussian(0.0, 0.0, 1.0) == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi))
    assert crps_gaussian(5.0, 5.0, 3.0) == pytest.approx(3 * (np.sqrt(2) - 1) / np.sqrt(np.pi))
    # far from the mean it tends to |y - mu| - sigma / sqrt(pi)
    assert crps_gaussian(100.0, 0.0, 1.0) == pytest.approx(100 - 1 / np.sqrt(np.pi), rel=1e-9)


def test_crps_samples_by_hand_and_point_mass():
    # samples {0, 2} at y = 1: E|X-y| = 1, E|X-X'| = 1 -> 1 - 0.5 = 0.5
    assert crps_samples(1.0, np.array([0.0, 2.0])) == pytest.approx(0.5)
    # a point mass is the absolute error
    assert crps_samples([3.0, -1.0], np.zeros((5, 2))) == pytest.approx(2.0)


def test_crps_samples_matches_brute_force():
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=(50, 3)), rng.normal(size=3)
    brute = np.abs(s - y).mean(0) - 0.5 * np.abs(s[:, None] - s[None]).mean((0, 1))
    np.testing.assert_allclose(crps_samples_per_step(y, s), brute, rtol=1e-12)


def test_crps_samples_approaches_gaussian():
    rng = np.random.default_rng(1)
    y = np.array([0.3, -1.5, 2.0])
    samples = 1.0 + 2.0 * rng.normal(size=(40000, 3))
    assert crps_samples(y, samples) == pytest.approx(crps_gaussian(y, 1.0, 2.0), rel=0.02)


def test_coverage_of_true_quantiles_is_nominal():
    rng = np.random.default_rng(2)
    y = rng.normal(size=20000)
    assert coverage([0, 1, 2, 3], [0, 0, 0, 0], [1, 1, 1, 1]) == pytest.approx(0.5)
    for level, (lo, hi) in {0.5: (-0.6745, 0.6745), 0.8: (-1.2816, 1.2816),
                            0.95: (-1.96, 1.96)}.items():
        assert coverage(y, lo, hi) == pytest.approx(level, abs=0.015)
    # the same from a large sample of the same distribution, via central intervals
    cover = interval_coverage(y, rng.normal(size=(20000, 1)))
    for level, value in cover.items():
        assert value == pytest.approx(level, abs=0.02)
    quantiles = {0.025: -1.96, 0.1: -1.2816, 0.25: -0.6745, 0.75: 0.6745, 0.9: 1.2816, 0.975: 1.96}
    for level, value in interval_coverage(y, quantiles).items():
        assert value == pytest.approx(level, abs=0.015)
    with pytest.raises(ValueError, match="lack level"):
        interval_coverage(y, {0.1: -1.0, 0.9: 1.0})
    lo, hi = central_interval(rng.normal(size=(20000, 1)), 0.95)
    assert lo[0] == pytest.approx(-1.96, abs=0.06) and hi[0] == pytest.approx(1.96, abs=0.06)


def test_naive_and_seasonal_naive():
    h = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(naive_forecast(h, 3), [5, 5, 5])
    np.testing.assert_array_equal(seasonal_naive_forecast(h, 5, period=2), [4, 5, 4, 5, 4])
    with pytest.raises(ValueError):
        seasonal_naive_forecast(h, 3, period=9)


def test_detect_period():
    t = np.arange(400)
    assert detect_period(np.sin(2 * np.pi * t / 25)) == 25
    assert detect_period(np.sin(2 * np.pi * t / 40) + 0.01 * t) == 40  # the trend is removed
    assert detect_period(np.random.default_rng(0).normal(size=400)) == 1
    assert detect_period(np.full(100, 3.0)) == 1
    assert detect_period(t * 2.0) == 1


def test_weighted_quantile_loss_and_band_quantiles():
    y = np.array([1.0, -1.0])
    # the median at the truth loses nothing; a median off by 1 everywhere: 2 * 0.5 * 2 / 2 = 1
    assert weighted_quantile_loss(y, {0.5: y}) == 0.0
    assert weighted_quantile_loss(y, {0.5: y + 1}) == pytest.approx(1.0)
    # a 0.9 quantile below the truth costs 0.9 per unit, above it 0.1
    assert weighted_quantile_loss(np.array([2.0]), {0.9: np.array([1.0])}) == pytest.approx(0.9)
    assert weighted_quantile_loss(np.array([2.0]), {0.9: np.array([3.0])}) == pytest.approx(0.1)
    assert np.isnan(weighted_quantile_loss(np.zeros(3), {0.5: np.ones(3)}))
    assert band_quantiles((0.5, 0.8, 0.95)) == (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)


def test_fit_linear_baseline_learns_a_persistent_sine():
    t = np.arange(640)
    cfg = ModelConfig(rung="linear", **TINY)
    model = fit_linear_baseline(np.sin(2 * np.pi * t / 16), cfg, ridge=1e-3)
    # period = 2 patches: the next patch is minus this one, a linear map
    x = torch.as_tensor(np.sin(2 * np.pi * t[:64] / 16), dtype=torch.float32)[None]
    pred = model(x)
    target = ((x - pred.loc) / pred.scale).view_as(pred.mu)[:, 1:]
    assert torch.allclose(pred.mu[:, :-1], target, atol=1e-3)
    future = linear_baseline_forecast(model, np.sin(2 * np.pi * t / 16), horizon=20)
    np.testing.assert_allclose(future, np.sin(2 * np.pi * np.arange(640, 660) / 16), atol=1e-2)
    with pytest.raises(ValueError, match="at least 2 patches"):
        fit_linear_baseline(np.zeros(10), cfg)


@pytest.mark.parametrize("rung", ["linear", "nanotst"])
def test_evaluate_model_summary(rung):
    torch.manual_seed(0)
    model = build_model(ModelConfig(rung=rung, **TINY))
    out = evaluate_model(model, n_series=20, seed=3)
    assert out["n_series"] == 20 and out["mse"] > 0 and out["mae"] > 0
    assert (out["nll"] is None) == (rung == "linear")
    assert sum(f["n"] for f in out["per_family"].values()) == 20
    assert evaluate_model(model, n_series=20, seed=3)["mse"] == out["mse"]
