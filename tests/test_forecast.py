"""Batched autoregressive forecasting: shapes, seeds, quantiles, context handling, fast path."""
import warnings

import numpy as np
import pytest
import torch

from nanotst.config import ModelConfig
from nanotst.forecast import Forecast, ForecastError, forecast, prepare_context, sample_paths
from nanotst.model import build_model, with_settings

TINY = dict(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=2, dropout=0.0)


def tiny(rung="nanotst", **kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(rung=rung, **{**TINY, **kw})).eval()


def series(n=100):
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 20) + 0.02 * t


def test_shapes_and_summaries():
    fc = forecast(tiny(), series(), horizon=24, n_samples=40)
    assert isinstance(fc, Forecast)
    assert fc.samples.shape == (40, 24) and fc.horizon == 24 and fc.n_samples == 40
    assert fc.mean.shape == fc.median.shape == (24,)
    assert sorted(fc.quantiles) == [0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975]   # the bands' edges
    np.testing.assert_allclose(fc.quantiles[0.5], fc.median)
    assert fc.probabilistic and np.all(np.isfinite(fc.samples))
    lo, hi = fc.interval(0.8)
    np.testing.assert_array_equal(lo, fc.quantiles[0.1])
    np.testing.assert_array_equal(hi, fc.quantiles[0.9])


def test_quantiles_are_ordered_and_paths_differ():
    fc = forecast(tiny(), series(), 16, n_samples=50)
    qs = np.stack([fc.quantiles[q] for q in sorted(fc.quantiles)])
    assert np.all(np.diff(qs, axis=0) >= 0)
    assert np.all(fc.samples.std(axis=0) > 0)


def test_deterministic_by_seed():
    model = tiny()
    a = forecast(model, series(), 16, n_samples=20, seed=7)
    b = forecast(model, series(), 16, n_samples=20, seed=7)
    c = forecast(model, series(), 16, n_samples=20, seed=8)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.allclose(a.samples, c.samples)


def test_a_path_does_not_depend_on_how_many_run_beside_it():
    model = tiny()
    few = forecast(model, series(), 16, n_samples=5, seed=3)
    many = forecast(model, series(), 16, n_samples=50, seed=3)
    np.testing.assert_allclose(few.samples, many.samples[:5], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rung", ["nanotst", "transformer"])
def test_a_mirrored_forecast_of_the_series_upside_down_is_the_forecast_upside_down(rung):
    model = tiny(rung, seasonal_patch=True, seasonal_level=True) if rung == "nanotst" else tiny(rung)
    up = forecast(model, series(), 20, n_samples=30, seed=4, mirror=True)
    down = forecast(model, -series(), 20, n_samples=30, seed=4, mirror=True)
    for q in up.quantiles:
        np.testing.assert_allclose(down.quantile(q), -up.quantile(1 - q), rtol=1e-5, atol=1e-5)
    plain_up = forecast(model, series(), 20, n_samples=30, seed=4)
    plain_down = forecast(model, -series(), 20, n_samples=30, seed=4)
    assert not np.allclose(plain_down.median, -plain_up.median, atol=1e-3)   # the model leans


def test_the_model_s_config_says_whether_it_mirrors_unless_the_call_does():
    model = tiny()
    mirrored = with_settings(model, mirror=True)
    np.testing.assert_array_equal(forecast(mirrored, series(), 16, n_samples=6).samples,
                                  forecast(model, series(), 16, n_samples=6, mirror=True).samples)
    np.testing.assert_array_equal(forecast(mirrored, series(), 16, n_samples=6, mirror=False).samples,
                                  forecast(model, series(), 16, n_samples=6).samples)
    assert any("upside down" in note for note in forecast(mirrored, series(), 16, n_samples=6).notes)
    assert not any("upside down" in note for note in forecast(model, series(), 16, n_samples=6).notes)


def test_mirrored_paths_pair_each_path_with_its_mirror_image():
    model = tiny()
    fc = forecast(model, series(), 16, n_samples=7, seed=3, mirror=True)
    assert fc.samples.shape == (7, 16)
    up = forecast(model, series(), 16, n_samples=4, seed=3)       # noise rows 0..3, as upright
    down = forecast(model, -series(), 16, n_samples=4, seed=3)    # the same rows, upside down
    np.testing.assert_allclose(fc.samples[0::2], up.samples, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fc.samples[1::2], -down.samples[:3], rtol=1e-5, atol=1e-5)
    many = forecast(model, series(), 16, n_samples=40, seed=3, mirror=True)
    np.testing.assert_allclose(fc.samples, many.samples[:7], rtol=1e-5, atol=1e-5)
    assert forecast(model, series(), 16, n_samples=1, seed=3, mirror=True).samples.shape == (1, 16)


# ---- the second patch: the paths share the context's tokens

@pytest.mark.parametrize("rung,causal,position,previous,seasonal", [
    ("nanotst", True, "rope", False, False), ("transformer", True, "learned", False, False),
    ("nanotst", True, "both", False, False), ("nanotst", False, "both", False, False),
    ("attention", True, "learned", False, False), ("linear", True, "learned", False, False),
    ("nanotst", True, "both", True, False), ("transformer", True, "rope", True, False),
    ("nanotst", True, "both", False, True), ("nanotst", False, "learned", True, True),
    ("attention", True, "learned", False, True), ("nanotst", True, "both", False, "level"),
    ("attention", True, "learned", True, "level"), ("nanotst", True, "both", False, "chosen")])
@pytest.mark.parametrize("kept,own", [(56, 8), (43, 16), (5, 8), (8, 56)])
def test_shared_windows_give_what_each_whole_window_gives(rung, causal, position, previous, seasonal,
                                                          kept, own):
    """...each whole window normalized like the first (noise-free) one, and reading its season."""
    from nanotst.model import PatchForecaster, seasonal_lag, window_stats
    chosen = {"season_cycles": 3, "choose_cycles": True} if seasonal == "chosen" else {}
    model = tiny(rung, causal=causal, position=position, previous_patch=previous, seasonal_patch=bool(seasonal),
                 seasonal_level=seasonal in ("level", "chosen"), **chosen)
    if seasonal:                                     # gates that copy some of the season
        torch.nn.init.normal_(model.season_gate.weight, std=0.5)
        torch.nn.init.constant_(model.season_gate.bias, 0.5)
    t = torch.arange(kept + own, dtype=torch.float32)
    prefix = torch.sin(t[:kept] * 2.1)[None] + 0.3 * torch.randn(1, kept)
    mine = torch.sin(t[kept:] * 2.1) + torch.randn(4, own)                  # each path its own lag
    loc, scale = window_stats(torch.cat([prefix, mine[:1]], dim=1))
    with torch.inference_mode():
        mu, sigma = model.predict_next_shared(prefix, mine, loc, scale)
        whole = torch.cat([prefix.expand(4, -1), mine], dim=1)
        patches, mask, _, _ = model.patchify(whole, stats=(loc, scale))
        lag = seasonal_lag(patches[:1], mask[:1])
        want_mu, want_sigma, _ = model.predict(patches, mask, False, lag=lag)
    torch.testing.assert_close(mu, want_mu[:, -1], atol=1e-5, rtol=1e-5)
    if want_sigma is None:
        assert sigma is None
    else:
        torch.testing.assert_close(sigma, want_sigma[:, -1], atol=1e-5, rtol=1e-5)
    # the transformers' own version agrees with the plain one it replaces
    plain_mu, _ = PatchForecaster.predict_next_shared(model, prefix, mine, loc, scale)
    torch.testing.assert_close(mu, plain_mu, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="context length"):
        model.predict_next_shared(torch.randn(1, 64), mine, loc, scale)


def test_the_second_patch_is_normalized_like_the_noise_free_path():
    """Path i's second patch: the model on [the context's last 7 patches, path i's first patch],
    normalized by the statistics of the context's last 7 patches and the noise-free first patch."""
    from nanotst.model import window_stats
    model = tiny(position="both")
    ctx = torch.as_tensor(series(64), dtype=torch.float32)[None]
    noise = torch.randn(3, 2, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        paths = sample_paths(model, ctx, noise)
        mu, sigma, loc, scale = model.predict_next(ctx)
        first = (mu + sigma * noise[:, 0]) * scale + loc                  # (3, 8)
        torch.testing.assert_close(paths[:, :8], first)
        loc2, scale2 = window_stats(torch.cat([ctx[:, 8:], mu * scale + loc], dim=1))
        window = torch.cat([ctx[:, 8:].expand(3, -1), first], dim=1)
        pred = model(window)                                               # (its own statistics)
        patches, mask, _, _ = model.patchify(window, stats=(loc2, scale2))
        mu2, sigma2, _ = model.predict(patches, mask, False)
    second = (mu2[:, -1] + sigma2[:, -1] * noise[:, 1]) * scale2 + loc2
    torch.testing.assert_close(paths[:, 8:], second, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pred.loc, loc2.expand(3, 1))                 # not each path's own


def test_a_two_patch_forecast_runs_the_context_once_and_one_token_per_path():
    model = tiny(position="both")
    seen = []
    hook = model.embed.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape[:2])))
    try:
        forecast(model, series(), 16, n_samples=100)
    finally:
        hook.remove()
    # the context pass (8 patches), the context's last 7 once, then one token for each of the
    # 100 paths and the noise-free path: never a whole window per path
    assert seen == [(1, 8), (1, 7), (101, 1)]


def test_shared_patches_zero_runs_every_window_whole_with_its_own_statistics():
    model = tiny(position="both")
    ctx = torch.as_tensor(series(64), dtype=torch.float32)[None]
    noise = torch.randn(3, 2, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        paths = sample_paths(model, ctx, noise, shared_patches=0)
        window = torch.cat([ctx[:, 8:].expand(3, -1), paths[:, :8]], dim=1)
        mu, sigma, loc, scale = model.predict_next(window)                 # each its own statistics
    torch.testing.assert_close(paths[:, 8:], (mu + sigma * noise[:, 1]) * scale + loc, atol=1e-5, rtol=1e-5)
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ForecastError, match="shared_patches"):
            forecast(model, series(), 16, shared_patches=bad)


def test_batch_equals_per_path_with_the_same_noise():
    model = tiny()
    ctx = torch.as_tensor(series(64), dtype=torch.float32)[None]
    noise = torch.randn(6, 3, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        batch = sample_paths(model, ctx, noise)
        single = torch.cat([sample_paths(model, ctx, noise[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rung", ["linear", "attention", "transformer"])
def test_mse_rungs_give_one_deterministic_path(rung):
    model = tiny(rung)
    fc = forecast(model, series(), 16, n_samples=10)
    assert not fc.probabilistic
    np.testing.assert_allclose(fc.samples, np.broadcast_to(fc.samples[0], fc.samples.shape), rtol=1e-6)
    # the first patch is the model's own denormalized prediction
    x = torch.as_tensor(fc.context, dtype=torch.float32)[None]
    pred = model(x)
    np.testing.assert_allclose(fc.mean[:8], pred.denormalize(pred.mu[:, -1])[0].detach().numpy(),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rung,causal,position", [("nanotst", True, "rope"), ("transformer", True, "rope"),
                                                  ("nanotst", False, "rope"), ("nanotst", True, "learned"),
                                                  ("transformer", True, "learned"), ("nanotst", True, "both")])
@pytest.mark.parametrize("length", [48, 43])
def test_fast_last_step_matches_the_full_forward(rung, causal, position, length):
    model = tiny(rung, causal=causal, position=position)
    x = torch.randn(5, length)
    with torch.inference_mode():
        pred = model(x)
        mu, sigma, loc, scale = model.predict_next(x)
    torch.testing.assert_close(mu, pred.mu[:, -1], atol=1e-5, rtol=1e-5)
    if pred.sigma is None:
        assert sigma is None
    else:
        torch.testing.assert_close(sigma, pred.sigma[:, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loc, pred.loc)


def test_short_contexts_are_padded_not_trimmed():
    ctx, padded, truncated = prepare_context(np.arange(50.0), patch_size=8, context_length=64)
    assert (padded, truncated, len(ctx)) == (6, 0, 50) and ctx[0] == 0 and ctx[-1] == 49
    ctx, padded, truncated = prepare_context(np.arange(100.0), patch_size=8, context_length=64)
    assert (padded, truncated, len(ctx)) == (0, 36, 64) and ctx[-1] == 99
    model = tiny()
    fc = forecast(model, np.arange(50.0), 8, n_samples=3)
    assert fc.padded == 6 and any("padded 6 values" in n for n in fc.notes)
    np.testing.assert_array_equal(fc.context, np.arange(50.0))
    # every value counts: changing the oldest one changes the forecast (it used to be trimmed)
    older = np.arange(50.0)
    older[0] = 30.0
    assert not np.allclose(forecast(model, older, 8, n_samples=3).samples, fc.samples)


@pytest.mark.parametrize("scale", [1e300, 1e37, 1e-300, 1e-30])
def test_forecasts_are_right_in_any_units(scale):
    # standardized in float64 before the model's float32: the same forecast, in the given units
    model = tiny()
    base = forecast(model, series(), 16, n_samples=16)
    scaled = forecast(model, series() * scale, 16, n_samples=16)
    assert np.all(np.isfinite(scaled.samples))
    np.testing.assert_allclose(scaled.samples / scale, base.samples, rtol=1e-4, atol=1e-4)
    shifted = forecast(model, series() + 1e9, 16, n_samples=16)
    np.testing.assert_allclose(shifted.samples - 1e9, base.samples, rtol=1e-4, atol=1e-3)


def test_only_the_most_recent_context_matters():
    model = tiny()
    x = series(100)
    y = x.copy()
    y[:36] = 99.0   # older than the context window: must not change the forecast
    np.testing.assert_array_equal(forecast(model, x, 16, 8).samples, forecast(model, y, 16, 8).samples)
    np.testing.assert_array_equal(forecast(model, x, 16, 8).samples,
                                  forecast(model, x[-64:], 16, 8).samples)


def test_too_short_or_bad_requests():
    model = tiny()
    with pytest.raises(ForecastError, match="at least one patch"):
        forecast(model, np.arange(7.0), 8)
    with pytest.raises(ValueError):  # ForecastError is a ValueError
        forecast(model, series(), 0)
    with pytest.raises(ForecastError, match="NaN"):
        forecast(model, np.r_[series(), np.nan], 8)


def test_training_mode_is_restored():
    model = tiny().train()
    forecast(model, series(), 8, n_samples=4)
    assert model.training


def test_the_horizon_is_counted_in_values():
    model = tiny()
    short = forecast(model, series(), 5, n_samples=6, seed=1)       # not a whole patch
    whole = forecast(model, series(), 8, n_samples=6, seed=1)       # the patch it was cut from
    assert short.samples.shape == (6, 5) and forecast(model, series(), 21, n_samples=6).horizon == 21
    np.testing.assert_array_equal(short.samples, whole.samples[:, :5])
    with pytest.raises(ForecastError, match="positive number of values"):
        forecast(model, series(), 2.5)


def test_to_frame_is_the_one_download_format():
    fc = forecast(tiny(), series(), 11, n_samples=50)
    frame = fc.to_frame()
    assert list(frame.columns) == ["step", "mean", "q2.5", "q10", "q25", "q50", "q75", "q90", "q97.5"]
    assert frame["step"].tolist() == list(range(1, 12))
    np.testing.assert_allclose(frame["q50"], fc.median)
    held = fc.to_frame(np.arange(2000, 2011), truth=np.arange(11.0))
    assert list(held.columns)[:2] == ["step", "time"] and list(held.columns)[-1] == "truth"
    assert held["time"].tolist() == list(range(2000, 2011))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_read_only_context_is_forecast_without_a_warning(dtype):
    # pandas hands out read-only column arrays; torch warns on those unless we copy
    values = series().astype(dtype)
    frozen = values.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc = forecast(tiny(), frozen, 16, n_samples=8)
    np.testing.assert_array_equal(fc.samples, forecast(tiny(), values, 16, n_samples=8).samples)


def test_a_head_mask_switches_heads_off_for_the_whole_forecast():
    model = tiny()
    on = torch.ones(model.head_grid, dtype=torch.bool)
    off = on.clone()
    off[1] = False
    plain = forecast(model, series(), 16, n_samples=4)
    np.testing.assert_array_equal(forecast(model, series(), 16, n_samples=4, head_mask=on).samples, plain.samples)
    assert not np.allclose(forecast(model, series(), 16, n_samples=4, head_mask=off).samples, plain.samples)
    with pytest.raises(ValueError, match="head_mask must have shape"):
        forecast(model, series(), 8, head_mask=torch.ones(3, 3, dtype=torch.bool))


# ---- bands calibrated on the context itself

def with_sigma_bias(model, bias: float):
    """The model with every sigma output's bias set: softplus(bias) + min_sigma, whatever it sees."""
    P = model.config.patch_size
    with torch.no_grad():
        model.head.weight[P:] = 0.0
        model.head.bias[P:] = bias
    return model


def test_an_overconfident_model_gets_its_bands_widened_by_its_own_errors_on_the_context():
    from nanotst.forecast import Z80, context_sigma_scale, standardize
    model = with_sigma_bias(tiny(), -3.0)             # sigma ~0.05: far below its errors here
    values = series()
    plain = forecast(model, values, 8, n_samples=400, calibrate=False)
    wide = forecast(model, values, 8, n_samples=400)
    assert plain.sigma_scale == 1.0 and 1.5 < wide.sigma_scale <= 3.0
    # the first patch is one Gaussian step, mu + sigma * noise: the band scales exactly with sigma
    np.testing.assert_allclose(wide.quantiles[0.9] - wide.quantiles[0.1],
                               wide.sigma_scale * (plain.quantiles[0.9] - plain.quantiles[0.1]), rtol=1e-4)
    assert any("bands widened" in note for note in wide.notes)
    # the factor is the 80th percentile of |error| / sigma over the last 8 one-step predictions
    unit, _, _ = standardize(values[-64:])
    x = torch.tensor(unit, dtype=torch.float32)[None]
    patches, observed, _, _ = model.patchify(x)
    with torch.no_grad():
        pred = model(x)
    z = ((patches[0, 1:] - pred.mu[0, :-1]).abs() / pred.sigma[0, :-1])[observed[0, 1:] > 0]
    expected = float(torch.quantile(z, 0.8)) / Z80
    with torch.no_grad():
        assert context_sigma_scale(patches, observed, pred.mu, pred.sigma) == pytest.approx(
            min(expected, 3.0), rel=1e-5)


def test_calibration_never_narrows_the_bands_and_is_capped():
    values = series()
    humble = with_sigma_bias(tiny(), 5.0)              # sigma ~5 against errors of about 1
    a = forecast(humble, values, 16, n_samples=50)
    b = forecast(humble, values, 16, n_samples=50, calibrate=False)
    assert a.sigma_scale == 1.0 and not any("widened" in note for note in a.notes)
    np.testing.assert_array_equal(a.samples, b.samples)
    sure = with_sigma_bias(tiny(), -30.0)              # sigma = min_sigma: errors 1000 sigmas away
    assert forecast(sure, values, 16, n_samples=50).sigma_scale == 3.0


def test_a_single_patch_of_context_has_nothing_to_calibrate_on():
    model = with_sigma_bias(tiny(), -3.0)
    assert forecast(model, series(8), 8, n_samples=20).sigma_scale == 1.0      # one patch
    assert forecast(model, series(13), 8, n_samples=20).sigma_scale > 1.0      # 5 values + a patch


# ---- the seasonal patch: one season's lag for the whole forecast

def test_a_seasonal_forecast_reads_the_context_s_lag_at_every_step():
    model = tiny(seasonal_patch=True, position="both")
    t = np.arange(64)
    values = np.sign(np.sin(2 * np.pi * t / 12 + 0.3)) + 0.1 * np.random.default_rng(0).standard_normal(64)
    fc = forecast(model, values, 24, n_samples=4)
    assert fc.season_lag == 12 and any("12 values back" in n for n in fc.notes)
    assert forecast(tiny(), values, 24, n_samples=4).season_lag is None       # a model without it
    assert forecast(model, values[:8], 16, n_samples=2).season_lag == 8    # one patch: no season
    flat = forecast(model, np.ones(64), 8, n_samples=2)
    assert flat.season_lag == 8 and any("no season repeats" in n for n in flat.notes)
    x = torch.as_tensor(values, dtype=torch.float32)[None]
    noise = torch.randn(3, 3, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        found = sample_paths(model, x, noise, shared_patches=1)
        given = sample_paths(model, x, noise, shared_patches=1, lag=torch.tensor([12]))
        other = sample_paths(model, x, noise, shared_patches=1, lag=torch.tensor([20]))
    torch.testing.assert_close(found, given)
    for step in range(3):                                   # every patch, shared or whole windows
        assert not torch.allclose(found[:, 8 * step:8 * step + 8], other[:, 8 * step:8 * step + 8])


def test_a_gate_of_one_with_a_silent_head_forecasts_exactly_the_values_one_season_back():
    model = tiny(seasonal_patch=True, position="both")
    P = 8
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias[:P] = 0.0                          # mu from the head: the mean
        model.head.bias[P:] = -20.0                        # sigma: its floor
        torch.nn.init.constant_(model.season_gate.bias, 1.0)
    t = np.arange(64 + 24)
    values = np.sin(2 * np.pi * t / 12) + 0.5 * np.sign(np.sin(2 * np.pi * t / 12 + 1.0)) + 3.0
    fc = forecast(model, values[:64], 24, n_samples=8, calibrate=False)
    assert fc.season_lag == 12
    np.testing.assert_allclose(fc.median, values[64 - 12:64 - 12 + 24], atol=0.01)   # three patches
    assert tiny(seasonal_patch=True).season_gate.weight.abs().sum() == 0              # gates start shut


@pytest.mark.parametrize("level", [True, False])
def test_a_level_shifted_copy_continues_a_trending_season_and_a_plain_one_falls_behind(level):
    """With seasonal_level, a gate of one and a silent head, the forecast is the season one lag
    back moved up by the trend's rise over that lag: a trending season continued exactly, every
    step of the roll-out. Without the switch it falls behind by the rise over a season, each season."""
    model = tiny(seasonal_patch=True, seasonal_level=level, position="both")
    P = 8
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias[:P] = 0.0
        model.head.bias[P:] = -20.0
        torch.nn.init.constant_(model.season_gate.bias, 1.0)
    t = np.arange(64 + 24)
    values = np.sin(2 * np.pi * t / 12) + 0.5 * np.sign(np.sin(2 * np.pi * t / 12 + 1.0)) + 0.1 * t
    fc = forecast(model, values[:64], 24, n_samples=8, calibrate=False)
    assert fc.season_lag == 12
    behind = 0.0 if level else 0.1 * 12 * (1 + np.arange(24) // 12)   # a season's rise, every season
    np.testing.assert_allclose(fc.median, values[64:] - behind, atol=0.01)
    assert any("12 values back" in n and ("moved by how far" in n) == level for n in fc.notes)
    three = forecast(tiny(seasonal_patch=True, season_cycles=3), values[:64], 8, n_samples=2).notes
    assert any("the mean of the last 3 seasons)" in n for n in three)
    chosen = forecast(tiny(seasonal_patch=True, season_cycles=3, choose_cycles=True), values[:64], 8,
                      n_samples=2).notes
    assert any("the mean of the last 1 to 3 seasons, as many as forecast the last" in n for n in chosen)
    four = np.sin(2 * np.pi * np.arange(64) / 4 + 0.3) + 0.05 * np.arange(64)    # shorter than a patch of 8
    short = forecast(tiny(seasonal_patch=True, short_seasons=True), four, 8, n_samples=2)
    assert short.season_lag == 4 and any("repeats itself every 4 values: each patch's forecast also read the "
                                         "last 4 values before it, repeated" in n for n in short.notes)
    flat = forecast(model, np.ones(64), 8, n_samples=2).notes          # no season: what it read then
    assert any(("the patch before it, moved" in n) == level and "no season repeats" in n for n in flat)
