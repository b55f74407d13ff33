"""Attention capture, rollout and source listings."""
import numpy as np
import pytest
import torch

from nanotst.config import ModelConfig
from nanotst.interpret import (AttentionMaps, InspectError, attention_maps, attention_rollout,
                             format_top_sources, last_prediction_sources, top_sources)
from nanotst.model import build_model

TINY = dict(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=2, dropout=0.0)


def tiny(rung="nanotst", **kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(rung=rung, **{**TINY, **kw})).eval()


def series(n=64):
    return np.sin(np.arange(n) / 3.0) + 0.01 * np.arange(n)


def test_maps_shape_rows_and_causality():
    maps = attention_maps(tiny(), series())
    assert maps.weights.shape == (2, 2, 8, 8) and maps.causal
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-6)
    upper = np.triu(np.ones((8, 8), dtype=bool), k=1)
    assert np.all(maps.weights[..., upper] == 0)
    assert maps.patch_ranges[0] == (0, 8) and maps.patch_ranges[-1] == (56, 64)


def test_non_causal_model_looks_ahead():
    maps = attention_maps(tiny(causal=False), series())
    assert not maps.causal
    assert np.all(maps.weights[..., np.triu(np.ones((8, 8), dtype=bool), k=1)] > 0)


def test_attention_rung_and_linear_rung():
    maps = attention_maps(tiny("attention"), series())
    assert maps.weights.shape == (1, 1, 8, 8)
    with pytest.raises(InspectError, match="no attention"):
        attention_maps(tiny("linear"), series())


def test_patch_ranges_refer_to_the_series_given():
    maps = attention_maps(tiny(), series(75))  # 64 used, the 11 oldest not
    assert maps.start == 11 and maps.patch_ranges[0] == (11, 19) and maps.patch_ranges[-1] == (67, 75)
    np.testing.assert_allclose(maps.context, series(75)[11:])
    maps = attention_maps(tiny(), series(21))  # padded: patch 0 starts 3 values before the series
    assert maps.start == -3 and maps.patch_ranges[0] == (-3, 5) and maps.patch_ranges[-1] == (13, 21)
    with pytest.raises(InspectError, match="at least one patch"):
        attention_maps(tiny(), series(5))


def test_rollout_rows_sum_to_one_and_stay_causal():
    maps = attention_maps(tiny(), series())
    r = attention_rollout(maps)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-9)
    assert np.all(r[np.triu(np.ones((8, 8), dtype=bool), k=1)] == 0)


def hand_made(weights, causal=True):
    w = np.asarray(weights, dtype=float)[None, None]
    n = w.shape[-1]
    return AttentionMaps(w, [(i, i + 1) for i in range(n)], causal, np.zeros(n), 0)


def test_rollout_by_hand():
    # one layer: (A + I) row-normalized
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(attention_rollout(hand_made(a)), [[1.0, 0.0], [0.25, 0.75]])
    # two identical layers multiply
    two = AttentionMaps(np.stack([a[None], a[None]]), [(0, 1), (1, 2)], True, np.zeros(2), 0)
    step = np.array([[1.0, 0.0], [0.25, 0.75]])
    np.testing.assert_allclose(attention_rollout(two), step @ step)


def test_top_sources_on_a_hand_made_map():
    w = np.array([[1.0, 0.0, 0.0, 0.0],
                  [0.3, 0.7, 0.0, 0.0],
                  [0.5, 0.2, 0.3, 0.0],
                  [0.1, 0.4, 0.2, 0.3]])
    top = top_sources(hand_made(w), k=3)
    assert top[0] == [(0, 1.0)]
    assert top[1] == [(1, 0.7), (0, 0.3)]
    assert top[2] == [(0, 0.5), (2, 0.3), (1, 0.2)]
    assert top[3] == [(1, 0.4), (3, 0.3), (2, 0.2)]
    assert format_top_sources(hand_made(w), k=1)[3] == "patch 3 attends to patch 1 (0.40)"


def test_last_prediction_sources():
    maps = attention_maps(tiny(), series())
    src = last_prediction_sources(maps)
    assert src.per_layer.shape == (2, 8) and src.rollout.shape == (8,)
    np.testing.assert_allclose(src.per_layer.sum(-1), 1.0, atol=1e-6)
    assert src.rollout.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(src.per_layer, maps.weights[:, :, -1].mean(1))


def test_season_copy_gives_the_lag_and_one_gate_per_query_patch():
    from nanotst.interpret import season_copy
    torch.manual_seed(0)
    config = ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=1, seasonal_patch=True)
    model = build_model(config).eval()
    assert season_copy(build_model(ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2,
                                               n_layers=1)), np.zeros(64)) is None
    values = np.sin(2 * np.pi * np.arange(60) / 12)
    copy = season_copy(model, values)
    assert copy.lag == 12 and copy.start == -4 and copy.gates.shape == (8,)
    assert np.all(copy.gates == 0)                                    # the gates start shut
    with torch.no_grad():
        model.season_gate.bias.fill_(0.7)
    np.testing.assert_allclose(season_copy(model, values).gates, 0.7, rtol=1e-6)
    assert copy.seasons.tolist() == [1] * 8                           # one season copied


def test_season_copy_says_how_many_seasons_each_patch_averaged():
    """choose_cycles: a steady noisy season is averaged over several cycles, and right after the
    season doubled the patches copy the last one."""
    from nanotst.interpret import season_copy
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, seasonal_patch=True, season_cycles=4,
                                    choose_cycles=True)).eval()
    t = np.arange(512)
    noisy = np.sin(2 * np.pi * t / 40) + 0.3 * np.random.default_rng(0).normal(size=512)
    steady = season_copy(model, noisy)
    assert steady.lag == 40 and steady.seasons.shape == (16,) and steady.seasons[-1] > 1
    changed = season_copy(model, np.sin(2 * np.pi * t / 40) * np.where(t >= 320, 2.0, 1.0))
    assert changed.lag == 40 and changed.seasons[-1] == 1


def test_the_pipeline_shows_the_seasonal_patches_only_for_a_model_that_reads_them():
    from nanotst.interpret import pipeline_stages
    from nanotst.model import seasonal_patches
    torch.manual_seed(0)
    small = dict(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=1)
    values = np.sin(2 * np.pi * np.arange(64) / 12) + 0.05 * np.arange(64)
    plain = [s.name for s in pipeline_stages(build_model(ModelConfig(**small)).eval(), values)]
    assert "seasonal patches" not in plain
    for level in (False, True):
        model = build_model(ModelConfig(**small, seasonal_patch=True, seasonal_level=level)).eval()
        stages = pipeline_stages(model, values)
        names = [s.name for s in stages]
        assert names == plain[:3] + ["seasonal patches"] + plain[3:]
        season = stages[3]
        patches, mask, _, _ = model.patchify(torch.as_tensor(values, dtype=torch.float32)[None])
        want, _ = seasonal_patches(patches, mask, torch.tensor([12]), level=level)
        np.testing.assert_allclose(season.array, want[0].numpy(), atol=1e-6)
        assert "12 back" in season.note and ("level" in season.note) == level
