"""nanotst.lab: what-if edits, occlusion, ablation, period-copy scores, probes, PCA and the
across-training view. Tiny random models where any model shows the property; the shipped
checkpoints/default.pt where only a trained one does."""
import numpy as np
import pytest
import torch

from nanotst import lab
from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
from nanotst.config import TrainConfig
from nanotst.data import SignalSpec, design_signal, make_dataset
from nanotst.model import build_model
from nanotst.train import MAX_WEIGHT_SNAPSHOTS, Trainer

torch.set_num_threads(1)


@pytest.fixture
def tiny(tiny_config):
    torch.manual_seed(0)
    return build_model(tiny_config).eval()


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(DEFAULT_CHECKPOINT).model.eval()


def wiggly(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (np.sin(np.arange(n) / 3.0) + 0.3 * rng.normal(size=n)).astype(np.float32)


# ---------------------------------------------------------------- ablation

def test_ablating_every_head_of_a_layer_equals_skipping_that_layers_attention(tiny):
    x = torch.from_numpy(np.stack([wiggly(seed=s) for s in range(3)]))
    mask = lab.head_mask(tiny.head_grid, heads_off=[(0, h) for h in range(tiny.head_grid[1])])
    assert torch.equal(mask, lab.head_mask(tiny.head_grid, layers_off=[0]))
    with torch.no_grad():
        patches, obs, _, _ = tiny.patchify(x)
        h = tiny.embed_patches(patches, obs)
        for i, block in enumerate(tiny.blocks):
            if i == 0:                                   # attention skipped, FFN kept
                h = h + block.mlp(block.ln_2(h))
            else:
                h, _ = block(h)
        skipped, _ = tiny.read_out(tiny.ln_f(h))
        ablated = tiny(x, head_mask=mask).mu
    torch.testing.assert_close(ablated, skipped)
    assert not torch.allclose(ablated, tiny(x).mu)       # and it is not the intact model
    # the library's views go through the same mask: the grammar errors move
    assert lab.grammar_errors(tiny, mask) != lab.grammar_errors(tiny)


def test_a_forecast_through_a_mask_with_every_head_on_is_the_plain_forecast(tiny):
    on = lab.head_mask(tiny.head_grid)
    a = lab.sample_forecast(tiny, wiggly(), 2, 20, seed=3)
    b = lab.sample_forecast(tiny, wiggly(), 2, 20, seed=3, mask=on)
    c = lab.sample_forecast(tiny, wiggly(), 2, 20, seed=3, mask=lab.head_mask(tiny.head_grid, layers_off=[1]))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.shape == (20, 16) and not np.allclose(a.samples, c.samples)
    assert lab.heads_off(lab.head_mask((2, 2), heads_off=[(1, 0)])) == [(1, 0)]


def test_masked_view_reports_the_heads_that_are_off_and_leaves_the_model_alone(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    mask = lab.head_mask(tiny.head_grid, heads_off=[(1, 1)])
    intact, ablated = lab.ablation(tiny, wiggly(), mask)
    assert intact.off == [] and ablated.off == [(1, 1)]
    assert set(intact.grammar) == {"flat", "line", "sine", "noisy"}
    assert intact.copy.one.shape == (2, 2)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())


# ---------------------------------------------------------------- what-if edits

EDITS = [lab.Edit("spike", 43, 5.0), lab.Edit("level shift", 40, 2.0), lab.Edit("phase shift", 40, 5.0),
         lab.Edit("scale patch", 42, 3.0), lab.Edit("blank patch", 44)]


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.kind)
def test_an_edit_in_a_later_patch_never_changes_an_earlier_prediction(tiny, edit):
    values = wiggly()
    j = lab.edit_start(edit, 8) // 8                          # patch 5 in every case
    edited = lab.apply_edit(values, edit, 8)
    assert j == 5 and np.array_equal(edited[:40], values[:40]) and not np.array_equal(edited, values)
    mu0, s0 = lab.rolling_predictions(tiny, values)
    mu1, s1 = lab.rolling_predictions(tiny, edited)
    assert mu0.shape == (8, 8)
    np.testing.assert_array_equal(mu1[:j], mu0[:j])            # predictions of patches 1..j
    np.testing.assert_array_equal(s1[:j], s0[:j])
    assert not np.allclose(mu1[j:], mu0[j:])                   # the edit's patch on is seen
    w = lab.what_if(tiny, values, edit, n_samples=10)
    np.testing.assert_allclose(w.edited.mu[:j], w.original.mu[:j], atol=1e-5)
    np.testing.assert_allclose(w.edited.mu, mu1, atol=1e-5)     # reusing rows 0..j-1 is exact
    assert w.start == lab.edit_start(edit, 8) and w.edited.occlusion is None and w.next_patch_change() > 0
    assert w.attention_change.shape == (2, 8, 8)


def test_edits_reject_what_they_cannot_do():
    with pytest.raises(lab.LabError, match="edit must be one of"):
        lab.apply_edit(np.zeros(64), lab.Edit("smudge", 3), 8)
    with pytest.raises(lab.LabError, match="position"):
        lab.apply_edit(np.zeros(64), lab.Edit("spike", 64), 8)
    blanked = lab.apply_edit(np.arange(64.0), lab.Edit("blank patch", 10), 8)
    assert np.all(blanked[8:16] == pytest.approx(np.r_[0:8, 16:64].mean()))


# ---------------------------------------------------------------- occlusion

def test_the_occlusion_map_is_zero_for_patches_after_the_query(tiny):
    values = wiggly()
    occ = lab.occlusion_map(tiny, values)
    assert occ.shape == (8, 8)
    assert np.all(occ[np.triu_indices(8, 1)] == 0)
    assert np.all(occ[np.tril_indices(8)] > 0)                 # every past patch moves it a little
    # entry [n, j] by hand: blank patch j, predict patch n + 1 from the values up to patch n
    n, j = 6, 2
    mu, _ = lab.rolling_predictions(tiny, values)
    mu_b, _ = lab.rolling_predictions(tiny, lab.apply_edit(values, lab.Edit("blank patch", j * 8), 8))
    by_hand = np.sqrt(np.mean((mu_b[n] - mu[n]) ** 2)) / values.std()
    assert occ[n, j] == pytest.approx(by_hand, rel=1e-4)


# ---------------------------------------------------------------- period-copy scores

def test_copy_source_weights_and_lag_scores_on_a_made_up_attention_map():
    N, P, period = 8, 8, 16                                    # two patches per period
    w = lab.copy_source_weights(N, P, period)
    assert w[3, 2] == 1 and w[3].sum() == 1 and w[0].sum() == 0  # query 3 predicts patch 4 <- patch 2
    half = lab.copy_source_weights(N, P, 12)                   # 1.5 patches: split between two keys
    assert half[3, 2] == pytest.approx(0.5) and half[3, 3] == pytest.approx(0.5)
    att = np.zeros((1, 1, N, N))
    for q in range(N):
        att[0, 0, q, max(0, q + 1 - 2)] = 1.0                  # all mass one period back
    queries = np.arange(3, N)
    assert lab.lag_scores(att, P, period, queries)[0, 0] == 1.0
    assert lab.lag_scores(att, P, 2 * period, queries)[0, 0] == 0.0


@pytest.mark.parametrize("k", [3, 4])
def test_the_period_copy_score_is_highest_one_period_back_on_a_clean_periodic_signal(shipped, k):
    P = shipped.config.patch_size
    values, _ = design_signal(SignalSpec("sine", 512, period=k * P))
    copy = lab.period_copy_scores(shipped, values[None], [k * P])
    (l, h), = copy.top_heads(1)
    assert copy.one[l, h] > copy.two[l, h] and copy.one[l, h] > 2.5 * copy.chance[l, h]
    att = lab.attention_weights(shipped, values)
    queries = np.array([q for q in range(16) if (q + 1) * P - 2 * k * P >= 0])
    by_lag = {m: lab.lag_scores(att, P, m * P, queries)[l, h] for m in range(1, 2 * k + 1)}
    assert max(by_lag, key=by_lag.get) == k                    # one period back, not any other lag


def test_head_effects_rank_every_head_and_compare_top_with_bottom(tiny):
    cfg = tiny.config
    suite, periods = lab.periodic_suite(cfg.context_length, cfg.patch_size)
    copy = lab.period_copy_scores(tiny, suite, periods)
    fx = lab.head_effects(tiny, copy, suite, periods, lab.control_suite(cfg.context_length, cfg.patch_size), k=1)
    assert fx.periodic.shape == (2, 2) and len(copy.ranked()) == 4
    assert copy.ranked()[0]["one period back"] == copy.one.max()
    assert set(fx.top_vs_rest) == {"top 1 copy heads off", "lowest 1 copy heads off"}
    assert -1 <= fx.rank_correlation <= 1


# ---------------------------------------------------------------- probes

def test_a_ridge_probe_reads_a_linear_factor_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20))
    y = X @ rng.normal(size=20) + 0.1 * rng.normal(size=300)
    assert lab.probe(X, y, classify=False).score > 0.95
    assert lab.probe(X, y, classify=False, shuffle=True).score < 0.1
    labels = np.argmax(X[:, :3], axis=1).astype(float)          # three linearly separable classes
    r = lab.probe(X, labels, classify=True)
    assert r.score > 0.8 and r.chance < 0.6


@pytest.fixture(scope="module")
def probe_runs(shipped):
    series = make_dataset(300, 512, "first_wave", seed=3)
    feats = lab.layer_features(shipped, series.values)
    return (lab.run_probes(shipped, series, features=feats),
            lab.run_probes(shipped, series, shuffle=True, features=feats), series, feats)


def test_probes_score_above_chance_on_the_factors_the_data_carries(probe_runs):
    res, _, _, _ = probe_runs
    assert res.features == ["input patches", "embeddings", "block 0", "block 1", "block 2", "block 3"]
    last = dict(zip(res.factors, res.score[-1]))
    chance = dict(zip(res.factors, res.chance))
    assert last["family"] > chance["family"] + 0.2
    for factor in ("log2 period", "trend", "noise std", "amplitude"):
        assert last[factor] > 0.3, factor
    # the noise level is computed by the model: the raw input patches cannot read it linearly
    assert last["noise std"] > res.score[0, res.factors.index("noise std")] + 0.3


def test_probes_are_at_chance_on_shuffled_labels(probe_runs):
    _, shuffled, _, _ = probe_runs
    family = shuffled.factors.index("family")
    assert np.all(shuffled.score[:, family] < shuffled.chance[family] + 0.1)
    others = [j for j, f in enumerate(shuffled.factors) if f != "family"]
    assert np.all(shuffled.score[:, others] < 0.1)


# ---------------------------------------------------------------- the PCA map

def test_the_pca_map_separates_at_least_two_families(shipped, probe_runs):
    _, _, series, feats = probe_runs
    pm = lab.representation_map(shipped, series, features=feats)
    assert pm.layer == "block 3" and pm.coords.shape == (300, 2)
    assert 0 < pm.explained[1] <= pm.explained[0] < 1
    separation = lab.family_separation(pm.coords, pm.families)
    apart = [pair for pair, acc in separation.items() if acc >= 0.95]
    assert apart, max(separation.values())
    # and the measure can fail: shuffled family labels mix up every pair
    mixed = lab.family_separation(pm.coords, np.random.default_rng(0).permutation(pm.families))
    assert max(mixed.values()) < 0.9


# ---------------------------------------------------------------- across training

def test_the_across_training_view_reads_the_snapshots_of_a_run(tiny_config):
    t = Trainer(tiny_config, TrainConfig(n_series=64, epochs=10, batch_size=16, lr=3e-3),
                eval_every=10, device="cpu")
    t.run(30)
    snaps = lab.run_snapshots(t)
    assert [s for s, _ in snaps] == [s["step"] for s in t.snapshots] == [0, 10, 20, 30]
    assert not torch.equal(snaps[0][1]["head.weight"], snaps[-1][1]["head.weight"])  # copies, not views
    series = make_dataset(120, 64, "first_wave", seed=1)
    curve = lab.across_training(tiny_config, snaps, series)
    assert curve.steps == [0, 10, 20, 30] and len(curve.copy_score) == 4
    suite, periods = lab.periodic_suite(64, 8)
    now = lab.period_copy_scores(t.model.eval(), suite, periods).one.max()
    assert curve.copy_score[-1] == pytest.approx(now)          # the last snapshot is the run's weights
    assert curve.copy_score[0] != pytest.approx(now)
    with pytest.raises(lab.LabError, match="no weight snapshots"):
        lab.across_training(tiny_config, [], series)


def test_a_long_run_keeps_a_bounded_spread_of_weight_snapshots(tiny_config):
    t = Trainer(tiny_config, TrainConfig(n_series=32, epochs=50, batch_size=16), eval_every=1, device="cpu")
    t.run(60)
    steps = [s for s, _ in t.weight_snapshots]
    assert len(steps) <= MAX_WEIGHT_SNAPSHOTS and steps[0] == 0 and steps[-1] == 60
    assert steps == sorted(steps) and len(steps) >= MAX_WEIGHT_SNAPSHOTS // 2
