import math
import dataclasses

import pytest
import torch

from nanotst.config import RUNGS, ConfigError, ModelConfig
from nanotst.model import build_model, next_patch_pairs


def make(config, rung="nanotst", **changes):
    torch.manual_seed(0)
    return build_model(dataclasses.replace(config, rung=rung, **changes)).eval()


def test_default_model_shapes_and_size():
    model = build_model(ModelConfig()).eval()
    x = torch.randn(3, 512)
    pred = model(x, need_attention=True)
    assert pred.mu.shape == pred.sigma.shape == (3, 16, 32)
    assert pred.loc.shape == pred.scale.shape == (3, 1)
    assert len(pred.attention) == 4 and pred.attention[0].shape == (3, 4, 16, 16)
    assert 0.7e6 < model.num_params() < 0.9e6
    assert (pred.sigma > 0).all()


@pytest.mark.parametrize("rung", RUNGS)
def test_every_rung_shares_one_interface(tiny_config, rung):
    model = make(tiny_config, rung)
    x, y = next_patch_pairs(torch.randn(2, 72), 8)
    pred = model(x)
    assert pred.mu.shape == (2, 8, 8)
    assert (pred.sigma is not None) == (rung == "nanotst")
    assert pred.attention is None
    loss = model.loss(pred, y)
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("rung", RUNGS)
def test_every_position_is_trained_against_the_patch_after_it(tiny_config, rung):
    # the targets are the input shifted one patch, normalized with the input's statistics only:
    # so the last position (the one a forecast reads) gets a gradient, and the patch it predicts
    # never moves the normalization
    model = make(tiny_config, rung)
    series = torch.randn(3, 72)
    x, y = next_patch_pairs(series, 8)
    assert torch.equal(x, series[:, :64]) and torch.equal(y, series[:, 8:])
    pred = model(x)
    pred.mu.retain_grad()
    model.loss(pred, y).backward()
    assert pred.mu.grad[:, -1].abs().sum() > 0
    torch.testing.assert_close(pred.loc, x.mean(dim=1, keepdim=True))
    moved = series.clone()
    moved[:, -8:] += 100.0
    x2, y2 = next_patch_pairs(moved, 8)
    assert torch.equal(model(x2).loc, pred.loc)


@pytest.mark.parametrize("rung", ["attention", "transformer", "nanotst"])
def test_explicit_attention_path_matches_fast_path(tiny_config, rung):
    model = make(tiny_config, rung)
    x = torch.randn(4, 64)
    fast, explicit = model(x), model(x, need_attention=True)
    torch.testing.assert_close(fast.mu, explicit.mu, atol=1e-5, rtol=1e-5)
    if fast.sigma is not None:
        torch.testing.assert_close(fast.sigma, explicit.sigma, atol=1e-5, rtol=1e-5)
    for weights in explicit.attention:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        # causal: nothing above the diagonal
        assert weights.triu(diagonal=1).abs().max() == 0


@pytest.mark.parametrize("rung", RUNGS)
def test_changing_a_later_patch_never_changes_an_earlier_prediction(tiny_config, rung):
    # Normalization uses the whole window's mean/std, so compare in the original scale
    # after undoing it with each input's own stats would still leak; instead hold stats
    # fixed by changing a later patch in a way that keeps mean and std (a permutation).
    model = make(tiny_config, rung)
    x = torch.randn(1, 64)
    y = x.clone()
    y[0, 48:56] = x[0, 48:56].flip(0)  # patch 6 permuted: same mean and std overall
    a, b = model(x), model(y)
    torch.testing.assert_close(a.mu[:, :6], b.mu[:, :6])
    assert not torch.allclose(a.mu[:, 6:], b.mu[:, 6:])


def test_without_the_causal_mask_earlier_predictions_see_the_future(tiny_config):
    model = make(tiny_config, "nanotst", causal=False)
    x = torch.randn(1, 64)
    y = x.clone()
    y[0, 48:56] = x[0, 48:56].flip(0)
    assert not torch.allclose(model(x).mu[:, :6], model(y).mu[:, :6])
    assert model(x, need_attention=True).attention[0].triu(diagonal=1).abs().max() > 0


@pytest.mark.parametrize("length", [16, 32, 48, 64])
def test_any_whole_number_of_patches_up_to_the_context_works(tiny_config, length):
    pred = make(tiny_config)(torch.randn(2, length))
    assert pred.mu.shape == (2, length // 8, 8)


@pytest.mark.parametrize("rung", ["transformer", "nanotst"])
def test_positions_count_back_from_the_newest_patch(tiny_config, rung):
    # a 2-patch input sits at the last two positions: the oldest position is unused, the last is
    # the one every forecast reads, whatever the input length
    model = make(tiny_config, rung, position="learned")
    x = torch.randn(1, 16)
    before = model(x).mu
    with torch.no_grad():
        model.pos.weight[0] += 1.0
    torch.testing.assert_close(model(x).mu, before)
    with torch.no_grad():   # a constant shift would vanish in the layer norms: a random one
        model.pos.weight[-1] += torch.randn(model.pos.weight.shape[1])
    assert not torch.allclose(model(x).mu[:, -1], before[:, -1])


def test_too_long_inputs_are_refused_with_a_clear_message(tiny_config):
    with pytest.raises(ValueError, match="context length"):
        make(tiny_config)(torch.randn(1, 72))


@pytest.mark.parametrize("rung", RUNGS)
@pytest.mark.parametrize("position", ["rope", "learned", "both"])
def test_a_partial_patch_is_padded_at_the_start_and_masked(tiny_config, rung, position):
    model = make(tiny_config, rung, position=position)
    x = torch.randn(2, 21)                            # 2 whole patches of 8 and 5 values
    pred = model(x)
    assert pred.mu.shape == (2, 3, 8)
    # the same as padding by hand with a mask, whatever the padded values are
    observed = torch.cat([torch.zeros(2, 3), torch.ones(2, 21)], dim=1)
    for fill in (0.0, 1e6):
        padded = torch.cat([torch.full((2, 3), fill), x], dim=1)
        again = model(padded, observed=observed)
        torch.testing.assert_close(again.mu, pred.mu)
        torch.testing.assert_close(again.loc, pred.loc)
    # padding never counts in the normalization
    torch.testing.assert_close(pred.loc[:, 0], x.mean(dim=1))
    torch.testing.assert_close(pred.scale[:, 0], x.std(dim=1, unbiased=False) + 1e-5)


def test_the_mask_tells_padding_from_a_zero_value(tiny_config):
    # with input_mask, a padded value and a real 0 (the mean) embed differently
    model = make(tiny_config, "nanotst")
    x = torch.randn(1, 21)
    x = x - x.mean()
    observed = torch.ones(1, 24)
    padded = torch.cat([torch.zeros(1, 3), x], dim=1)
    as_data = model(padded, observed=observed).mu
    as_padding = model(padded, observed=torch.cat([torch.zeros(1, 3), torch.ones(1, 21)], dim=1)).mu
    assert not torch.allclose(as_data, as_padding)


def test_rope_attention_sees_only_distances(tiny_config):
    # with rotary positions the first block's attention scores depend on patch offsets, not on
    # where the input starts: two inputs that share their last patches give the last query the
    # same scores for those patches (before normalization, so compare the raw attention layer)
    model = make(tiny_config, "nanotst", position="rope")
    attn = model.blocks[0].attn
    h = torch.randn(1, 6, tiny_config.d_model)
    long_q = attn.qkv(h).view(1, 6, 3, attn.n_heads, -1).permute(2, 0, 3, 1, 4)
    from nanotst.model import rotate
    q, k = (rotate(t, attn.cos[:6], attn.sin[:6]) for t in long_q[:2])
    q2, k2 = (rotate(t[:, :, 2:], attn.cos[:4], attn.sin[:4]) for t in long_q[:2])
    torch.testing.assert_close(q[:, :, -1:] @ k[:, :, 2:].transpose(-2, -1),
                               q2[:, :, -1:] @ k2.transpose(-2, -1), atol=1e-5, rtol=1e-5)


def test_both_positions_add_a_learned_vector_and_rotate_attention(tiny_config):
    # "both" is the learned model's state dict (no new weights) with rotary attention on top:
    # the same weights give a different forecast than learned positions alone or rotary alone
    torch.manual_seed(0)
    both = make(tiny_config, "nanotst", position="both")
    learned = make(tiny_config, "nanotst", position="learned")
    rope = make(tiny_config, "nanotst", position="rope")
    assert both.pos is not None and both.blocks[0].attn.rope
    learned.load_state_dict(both.state_dict())
    rope.load_state_dict({k: v for k, v in both.state_dict().items() if not k.startswith("pos.")})
    x = torch.randn(2, 48)
    outs = [m(x).mu for m in (both, learned, rope)]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_a_rotary_model_moved_to_both_positions_forecasts_exactly_as_before(tiny_config):
    from nanotst.model import with_position
    rope = make(tiny_config, "nanotst", position="rope")
    both = with_position(rope, "both")
    assert both.config.position == "both" and both.pos.weight.abs().sum() == 0
    x = torch.randn(2, 48)
    torch.testing.assert_close(both(x).mu, rope(x).mu)
    with pytest.raises(ValueError, match="pos.weight"):
        with_position(both, "rope")


@pytest.mark.parametrize("rung", ["attention", "transformer", "nanotst"])
def test_with_previous_patch_each_token_also_reads_the_patch_before_it(tiny_config, rung):
    model = make(tiny_config, rung, previous_patch=True)
    plain = make(tiny_config, rung)
    x = torch.randn(2, 64)
    patches, mask, _, _ = model.patchify(x)
    inputs = model.embed_input(patches, mask)                      # (B, N, 4P): patch, mask, previous two
    width = 2 * tiny_config.patch_size
    assert inputs.shape[-1] == model.embed_width == 2 * plain.embed_width
    torch.testing.assert_close(inputs[:, 1:, width:], inputs[:, :-1, :width])
    assert (inputs[:, 0, width:] == 0).all()                       # nothing before the first patch
    # a change to patch 2 reaches token 3's embedding at once only when it reads the patch before
    moved = x.clone()
    moved[:, 16:24] += 5.0
    for m, reaches in ((model, True), (plain, False)):
        before, after = (m.embed(m.embed_input(*m.patchify(v, stats=(0.0, 1.0))[:2])) for v in (x, moved))
        assert torch.allclose(before[:, 3], after[:, 3]) != reaches
        assert torch.allclose(before[:, :2], after[:, :2])


def test_a_model_given_the_previous_patch_forecasts_exactly_as_before(tiny_config):
    from nanotst.model import with_inputs
    plain = make(tiny_config, "nanotst", position="both")
    wide = with_inputs(plain, previous_patch=True)
    assert wide.config == dataclasses.replace(plain.config, previous_patch=True)
    assert wide.embed.weight.shape[1] == 2 * plain.embed.weight.shape[1]
    assert (wide.embed.weight[:, plain.embed_width:] == 0).all()
    x = torch.randn(2, 48)
    torch.testing.assert_close(wide(x).mu, plain(x).mu)
    assert with_inputs(wide, previous_patch=True) is wide
    linear = make(tiny_config, "linear")
    assert with_inputs(linear, previous_patch=True) is linear      # no embedding: nothing to add


def periodic(length, period, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float32)
    square = torch.sign(torch.sin(2 * math.pi * t / period + 0.3))
    return (square + 0.5 * torch.sin(2 * math.pi * t / period) + noise * torch.randn(length, generator=g))[None]


def lag_of(model, x):
    from nanotst.model import seasonal_lag
    patches, mask, _, _ = model.patchify(x)
    return int(seasonal_lag(patches, mask))


@pytest.mark.parametrize("period,lag", [(7, 35), (12, 36), (24, 48), (45, 45), (100, 100), (250, 250), (256, 256)])
def test_the_seasonal_lag_is_the_smallest_multiple_of_the_period_a_patch_or_longer(period, lag):
    model = build_model(ModelConfig(seasonal_patch=True))
    assert lag_of(model, periodic(512, period, noise=0.3)) == lag
    t = torch.arange(512.0)[None]
    assert lag_of(model, periodic(512, period, noise=0.3) + 0.02 * t) == lag   # a trend hides nothing


def test_without_a_season_the_lag_is_one_patch_and_never_reaches_past_half_the_data():
    from nanotst.model import seasonal_lag
    model = build_model(ModelConfig(seasonal_patch=True))
    assert lag_of(model, torch.zeros(1, 512)) == 32                 # flat
    assert lag_of(model, torch.arange(512.0)[None]) == 32           # a straight line
    walks = torch.randn(100, 512, generator=torch.Generator().manual_seed(0)).cumsum(1)
    patches, mask, _, _ = model.patchify(walks)
    assert (seasonal_lag(patches, mask) == 32).float().mean() > 0.7  # random walks: mostly the nearest past
    assert lag_of(model, periodic(100, 12)) == 36                   # 100 values (28 padding): 36 <= 50
    assert lag_of(model, periodic(100, 60)) == 32                   # a season too long to see twice
    assert lag_of(model, periodic(40, 12)) == 32                    # not two patches: nothing to compare
    assert lag_of(model, periodic(32, 12)) == 32                    # one patch
    assert lag_of(model, periodic(3, 2)) == 32                      # a few values


def test_a_slack_lets_a_shorter_season_win_over_a_longer_one_that_repeats_a_little_better():
    """A season of 40 under a slower swing of 160: the window repeats best 160 values back
    (r about 0.99) and nearly as well 40 back (0.86). season_slack 0.15 takes the shorter one."""
    from nanotst.model import seasonal_lag
    t = torch.arange(512.0)
    x = torch.sin(2 * math.pi * t / 40) + 0.4 * torch.sin(2 * math.pi * t / 160)
    x = x + 0.1 * torch.randn(512, generator=torch.Generator().manual_seed(0))
    patches, mask = x.view(1, 16, 32), torch.ones(1, 16, 32)
    assert seasonal_lag(patches, mask).item() == 160
    assert seasonal_lag(patches, mask, slack=0.15).item() == 40
    # the slack takes true peaks only: a season of 31 correlates nearly as well 32 values back (the
    # falling edge of its peak at 31, which is too short to copy) as 62 back
    square = torch.sign(torch.sin(2 * math.pi * t / 31 + 0.3)).view(1, 16, 32)
    assert seasonal_lag(square, mask, slack=0.15).item() == seasonal_lag(square, mask).item() == 62
    model = make(ModelConfig(n_layers=1, d_model=16, n_heads=2), seasonal_patch=True, season_slack=0.15)
    values, _ = model.season_inputs(patches, mask)          # the model reads the lag its config asks for
    assert values[0, 5].equal(x[6 * 32 - 40:7 * 32 - 40])


@pytest.mark.parametrize("period,lag", [(3, 3), (4, 4), (7, 7), (12, 12), (24, 24), (45, 45), (100, 100)])
def test_with_short_seasons_a_season_shorter_than_a_patch_is_its_own_lag(period, lag):
    """short_seasons: lags from 2 up (where they are true peaks that rise clearly above the dip
    before them); longer seasons and what has no season keep the old rule."""
    from nanotst.model import seasonal_lag
    model = build_model(ModelConfig(seasonal_patch=True, short_seasons=True))
    for noise in (0.0, 0.3):
        x = periodic(512, period, noise=noise) + 0.02 * torch.arange(512.0)[None]
        assert int(model.season_lag(*model.patchify(x)[:2])) == lag
    # the old rule on what has no short season: random walks, a smooth long season, a line
    t = torch.arange(512.0)
    walks = torch.randn(50, 512, generator=torch.Generator().manual_seed(0)).cumsum(1)
    noise = torch.randn(512, generator=torch.Generator().manual_seed(1))
    smooth = torch.sin(2 * math.pi * t / 256) + 0.1 * noise
    for x in (walks, smooth[None], t[None]):
        patches, mask, _, _ = model.patchify(x)
        assert seasonal_lag(patches, mask, short=True).equal(seasonal_lag(patches, mask))


def test_a_short_season_is_its_last_cycle_repeated_across_the_patch_and_moved_to_the_level():
    """Lag 7 < 32: value j of token n's seasonal patch is the value j // 7 + 1 seasons before it,
    all of them before the patch it predicts; with the level, a trending season continues
    exactly (each value moved by how far the level moved over its own distance)."""
    from nanotst.model import seasonal_patches
    t = torch.arange(512.0)
    x = torch.sin(2 * math.pi * t / 7) + 0.01 * t
    patches, mask, lag = x.view(1, 16, 32), torch.ones(1, 16, 32), torch.tensor([7])
    values, seen = seasonal_patches(patches, mask, lag)
    for n in (0, 5, 14):
        for j in range(32):
            source = (n + 1) * 32 + j - 7 * (j // 7 + 1)
            assert (n + 1) * 32 - 7 <= source < (n + 1) * 32                  # the last season before it
            assert values[0, n, j] == x[source] and seen[0, n, j] == 1
    assert (values[:, :-1] - patches[:, 1:]).abs().max() > 0.3             # a season behind the trend
    moved, _ = seasonal_patches(patches, mask, lag, level=True)
    assert (moved[:, 1:-1] - patches[:, 2:]).abs().max() < 1e-3
    chosen, _ = seasonal_patches(patches, mask, lag, level=True, cycles=4, choose=True)
    assert (chosen[:, 4:-1] - patches[:, 5:]).abs().max() < 1e-3


def test_a_trained_model_may_change_its_weightless_settings_only():
    from nanotst.model import with_settings
    model = make(ModelConfig(n_layers=1, d_model=16, n_heads=2), seasonal_patch=True)
    slack = with_settings(model, season_slack=0.2, dropout=0.0)
    assert slack.config == dataclasses.replace(model.config, season_slack=0.2, dropout=0.0)
    assert all(slack.state_dict()[k].equal(v) for k, v in model.state_dict().items())
    assert with_settings(model) is model
    with pytest.raises(ValueError, match="d_model"):
        with_settings(model, d_model=32)
    with pytest.raises(ConfigError, match="season_slack"):
        with_settings(model, season_slack=1.5)


def test_each_token_reads_the_values_one_lag_before_the_patch_it_predicts(tiny_config):
    from nanotst.model import seasonal_patches
    model = make(tiny_config, seasonal_patch=True)
    P = tiny_config.patch_size
    x = torch.arange(1.0, 61.0)[None]                               # 60 values: 4 of padding
    patches, mask, _, _ = model.patchify(x, stats=(0.0, 1.0))
    values, seen = seasonal_patches(patches, mask, torch.tensor([12]))
    series = torch.cat([torch.zeros(4), x[0]])                      # the padded window
    for n in range(patches.size(1)):
        for j in range(P):
            source = (n + 1) * P - 12 + j                           # before token n's target starts
            assert source < (n + 1) * P
            want = series[source] if source >= 4 else 0.0           # padding, or before the window
            assert values[0, n, j] == want and seen[0, n, j] == (source >= 4)
    inputs = model.embed_input(patches, mask, lag=torch.tensor([12]))
    assert inputs.shape[-1] == model.embed_width == 4 * P           # patch, mask, seasonal values, mask
    torch.testing.assert_close(inputs[..., 2 * P:3 * P], values)


def test_a_level_shifted_seasonal_patch_starts_where_the_series_is_now(tiny_config):
    """seasonal_level: the values one lag back, moved by the level's change over that lag (token
    n's own patch minus the values one lag before it), continue a season across a trend or a
    level shift exactly; unshifted, they sit where the series was a season ago."""
    from nanotst.model import seasonal_patches
    t = torch.arange(512.0)
    season = torch.sin(2 * math.pi * t / 40)
    patches, mask = (season + 0.1 * t).view(1, 16, 32), torch.ones(1, 16, 32)
    for level, fits in ((True, True), (False, False)):
        values, seen = seasonal_patches(patches, mask, torch.tensor([40]), level=level)
        assert torch.allclose(values[:, 2:-1], patches[:, 3:], atol=1e-4) == fits   # tokens 2-14
    # a level shift at value 200: exact again once the values a lag before the token's own patch
    # are past it too (token 8 on); unshifted, only once those a lag before its target are
    patches = (season + 5.0 * (t >= 200)).view(1, 16, 32)
    values, _ = seasonal_patches(patches, mask, torch.tensor([40]), level=True)
    assert torch.allclose(values[:, 8:-1], patches[:, 9:], atol=1e-4)
    assert torch.allclose(values[:, 2:5], patches[:, 3:6], atol=1e-4)
    # padding is never read as data: where the values one lag back are padding they stay zero
    x = torch.cat([torch.zeros(20), season[:44] + 3.0])[None]
    mask = (torch.arange(64) >= 20).float()[None]
    values, seen = seasonal_patches(x.view(1, 2, 32), mask.view(1, 2, 32), torch.tensor([32]), level=True)
    assert (values[seen == 0] == 0).all() and seen.sum() == 12 + 32
    assert values[0, 0, 20:].equal(x[0, 20:32])     # nothing a season before token 0: no shift


def test_a_seasonal_patch_over_several_cycles_is_the_mean_of_the_copies_it_can_see():
    """cycles=3: the mean of the values 1, 2 and 3 lags back, each where it is inside the window;
    on a noisy season it is closer to the clean one than one noisy cycle."""
    from nanotst.model import seasonal_patches
    t = torch.arange(256.0)
    clean = torch.sin(2 * math.pi * t / 40)
    x = clean + 0.3 * torch.randn(256, generator=torch.Generator().manual_seed(0))
    patches, mask = x.view(1, 8, 32), torch.ones(1, 8, 32)
    lag = torch.tensor([40])
    three, seen = seasonal_patches(patches, mask, lag, cycles=3)
    for n in range(8):
        for j in range(0, 32, 7):
            target = (n + 1) * 32 + j
            copies = [x[target - k * 40] for k in (1, 2, 3) if target - k * 40 >= 0]
            assert seen[0, n, j] == bool(copies)
            if copies:
                assert three[0, n, j] == pytest.approx(sum(copies).item() / len(copies), abs=1e-5)
    one, _ = seasonal_patches(patches, mask, lag)
    truth = clean.view(1, 8, 32)[:, 4:]
    assert (three[:, 3:-1] - truth).abs().mean() < 0.8 * (one[:, 3:-1] - truth).abs().mean()
    with pytest.raises(ConfigError, match="season_cycles"):
        ModelConfig(seasonal_patch=True, season_cycles=0)


def test_choosing_the_cycles_averages_a_steady_season_and_copies_one_that_just_changed():
    """choose_cycles: each token takes the mean of the 1 .. cycles seasons back that forecast its
    last patches best. On a noisy season that repeats, the mean of several (closer to the clean
    season than one noisy copy); right after the season doubled, the last season alone (the mean
    of older ones would be half of it); and a token's choice reads nothing after its own patch."""
    from nanotst.model import seasonal_patches
    t = torch.arange(512.0)
    clean = torch.sin(2 * math.pi * t / 40)
    noisy = clean + 0.3 * torch.randn(512, generator=torch.Generator().manual_seed(0))
    mask, lag = torch.ones(1, 16, 32), torch.tensor([40])
    patches = noisy.view(1, 16, 32)
    chosen, _ = seasonal_patches(patches, mask, lag, cycles=4, choose=True)
    four, _ = seasonal_patches(patches, mask, lag, cycles=4)
    one, _ = seasonal_patches(patches, mask, lag)
    torch.testing.assert_close(chosen[:, 8:], four[:, 8:])            # every copy inside the window
    truth = clean.view(1, 16, 32)[:, 9:]
    assert (chosen[:, 8:-1] - truth).abs().mean() < 0.8 * (one[:, 8:-1] - truth).abs().mean()
    doubled = (clean * torch.where(t >= 320, 2.0, 1.0)).view(1, 16, 32)     # from patch 10 on
    chosen, _ = seasonal_patches(doubled, mask, lag, cycles=4, choose=True)
    one, _ = seasonal_patches(doubled, mask, lag)
    torch.testing.assert_close(chosen[:, 13:], one[:, 13:])           # two seasons after the change
    assert (one[:, 13:-1] - doubled[:, 14:]).abs().max() < 1e-4
    four, _ = seasonal_patches(doubled, mask, lag, cycles=4)
    assert (four[:, 13:-1] - doubled[:, 14:]).abs().max() > 0.2      # older seasons were half as high
    # causal: changing patch 12 on changes no token's seasonal patch before token 12
    changed = doubled.clone()
    changed[:, 12:] = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(1))
    again, _ = seasonal_patches(changed, mask, lag, cycles=4, choose=True)
    torch.testing.assert_close(again[:, :12], chosen[:, :12])
    for last in (1, 3, 16):            # the last tokens only (a forecast path's): the same values
        for choose in (True, False):
            full = seasonal_patches(changed, mask, lag, level=True, cycles=4, choose=choose)
            part = seasonal_patches(changed, mask, lag, level=True, cycles=4, choose=choose, last=last)
            torch.testing.assert_close(part, tuple(a[:, -last:] for a in full))
    with pytest.raises(ConfigError, match="choose_cycles"):
        ModelConfig(seasonal_patch=True, season_cycles=3, choose_cycles=1)


def test_the_level_switch_needs_the_seasonal_patch_and_adds_no_weight(tiny_config):
    from nanotst.model import with_inputs
    with pytest.raises(ConfigError, match="seasonal_patch"):
        dataclasses.replace(tiny_config, seasonal_level=True)
    seasonal = make(tiny_config, seasonal_patch=True)
    with torch.no_grad():
        torch.nn.init.constant_(seasonal.season_gate.bias, 1.0)     # as if trained to copy
    level = with_inputs(seasonal, seasonal_level=True)
    assert level.config == dataclasses.replace(seasonal.config, seasonal_level=True)
    assert level.state_dict().keys() == seasonal.state_dict().keys()
    assert all(level.state_dict()[k].equal(v) for k, v in seasonal.state_dict().items())
    x = periodic(64, 16, noise=0.1) + torch.linspace(0, 4, 64)      # a trend: the shift matters
    assert not torch.allclose(level(x).mu, seasonal(x).mu)
    assert with_inputs(make(tiny_config), seasonal_level=True).config.seasonal_patch   # implies it


def test_a_change_reaches_the_token_a_season_later_and_no_token_before_it(tiny_config):
    """With a season of 16 values (two patches), token n reads patch n - 1, so a change to patch 2
    reaches token 3's embedding at once, and tokens 0-2 and the tokens of a plain model only
    through attention."""
    model = make(tiny_config, seasonal_patch=True)
    plain = make(tiny_config)
    x = periodic(64, 16, noise=0.1)
    moved = x.clone()
    moved[:, 16:24] += 3.0
    for m, reaches in ((model, True), (plain, False)):
        before, after = (m.embed(m.embed_input(*m.patchify(v, stats=(0.0, 1.0))[:2], lag=torch.tensor([16])))
                         for v in (x, moved))
        assert torch.allclose(before[:, 3], after[:, 3]) != reaches
        assert torch.allclose(before[:, :2], after[:, :2])


def test_a_model_given_both_new_inputs_keeps_every_weight_in_its_place(tiny_config):
    from nanotst.model import with_inputs
    plain = make(tiny_config, "nanotst", position="both")
    previous = with_inputs(plain, previous_patch=True)
    with torch.no_grad():
        previous.embed.weight[:, plain.embed_width:] = 1.0           # as if trained
    both = with_inputs(previous, seasonal_patch=True)
    assert both.config == dataclasses.replace(plain.config, previous_patch=True, seasonal_patch=True)
    torch.testing.assert_close(both.embed.weight[:, :2 * plain.embed_width], previous.embed.weight)
    assert (both.embed.weight[:, 2 * plain.embed_width:] == 0).all()
    x = periodic(64, 12, noise=0.1)
    torch.testing.assert_close(both(x).mu, previous(x).mu)
    seasonal = with_inputs(plain, seasonal_patch=True)               # the seasonal columns come last
    assert with_inputs(seasonal, previous_patch=True).embed.weight[:, 2 * plain.embed_width:].equal(
        seasonal.embed.weight[:, plain.embed_width:])
    assert with_inputs(both, previous_patch=True, seasonal_patch=True) is both


def test_constant_series_normalizes_to_zeros(tiny_config):
    pred = make(tiny_config)(torch.full((1, 64), 3.0))
    assert torch.isfinite(pred.mu).all()
    assert pred.loc.item() == pytest.approx(3.0)


def test_forward_stores_nothing_on_the_module(tiny_config):
    model = make(tiny_config)
    before = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    model(torch.randn(2, 64), need_attention=True)
    after = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    assert before.keys() == after.keys()
    for module in model.modules():
        assert not any(isinstance(v, torch.Tensor) for k, v in vars(module).items() if not k.startswith("_"))


# ---- fast paths (model.py internals; benchmarks/ measures what they buy) ---------------------

def test_fast_dropout_keeps_one_minus_p_and_rescales():
    from nanotst.model import dropout
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.1, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.003
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    assert dropout(x, 0.1, False) is x and dropout(x, 0.0, True) is x
    # masks come from torch's default generator: manual_seed fixes them, and they differ per call
    torch.manual_seed(1)
    a, b = dropout(x[:1000], 0.5, True), dropout(x[:1000], 0.5, True)
    torch.manual_seed(1)
    torch.testing.assert_close(dropout(x[:1000], 0.5, True), a)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_fast_dropout_other_dtypes_keep_one_minus_p(dtype):
    from nanotst.model import dropout
    torch.manual_seed(0)
    y = dropout(torch.ones(200_000, dtype=dtype), 0.1, True)
    assert y.dtype == dtype
    assert abs((y != 0).double().mean().item() - 0.9) < 0.003


def test_fast_dropout_backward_uses_the_same_mask():
    from nanotst.model import dropout
    x = torch.randn(64, 33, requires_grad=True)  # odd numel: the last 64-bit draw is half used
    y = dropout(x, 0.3, True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.7)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_training_mode_attention_paths_agree_without_dropout_masks(tiny_config, dropout):
    # in training with dropout > 0 the explicit path runs; with p = 0 the masks are all ones, so
    # the explicit path, SDPA and the eval model give one answer, and so do their gradients
    model = make(tiny_config, dropout=0.0).train()
    x, y = next_patch_pairs(torch.randn(4, 72), 8)
    fast = model(x)
    explicit = model(x, need_attention=True)
    torch.testing.assert_close(fast.mu, explicit.mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.sigma, explicit.sigma, atol=1e-5, rtol=1e-5)
    grads = []
    for need in (False, True):
        model.zero_grad()
        model.loss(model(x, need_attention=need), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # with dropout the training forward differs from eval, and a seed makes it repeatable
    model = make(tiny_config, dropout=dropout).train()
    torch.manual_seed(3)
    a = model(x).mu
    torch.manual_seed(3)
    torch.testing.assert_close(model(x).mu, a)
    assert dropout == 0.0 or not torch.allclose(a, model.eval()(x).mu)


def test_the_causal_mask_buffer_is_not_in_checkpoints():
    model = build_model(ModelConfig())
    assert not any("future" in k for k in model.state_dict())
    assert len(model.state_dict()) == len(list(model.parameters()))


@pytest.mark.parametrize("rung", ["attention", "transformer", "nanotst"])
def test_a_head_mask_of_all_ones_changes_nothing(tiny_config, rung):
    model = make(tiny_config, rung)
    x = torch.randn(2, 64)
    on = torch.ones(model.head_grid, dtype=torch.bool)
    torch.testing.assert_close(model(x, head_mask=on).mu, model(x).mu)


@pytest.mark.parametrize("position", ["learned", "rope", "both"])
def test_every_head_of_a_layer_off_equals_skipping_that_layers_attention(tiny_config, position):
    model = make(tiny_config, "nanotst", position=position)
    x = torch.randn(2, 64)
    mask = torch.ones(model.head_grid, dtype=torch.bool)
    mask[1] = False
    ablated = model(x, head_mask=mask)
    # the same forward pass by hand, with block 1's attention left out
    patches, pad, _, _ = model.patchify(x)
    h = model.embed_patches(patches, pad)
    h, _ = model.blocks[0](h)
    h = h + model.blocks[1].mlp(model.blocks[1].ln_2(h))
    mu, sigma = model.read_out(model.ln_f(h))
    torch.testing.assert_close(ablated.mu, mu)
    torch.testing.assert_close(ablated.sigma, sigma)
    # and the forecast path (the fast last step) agrees with the full pass
    fast_mu, fast_sigma, _, _ = model.predict_next(x, head_mask=mask)
    torch.testing.assert_close(fast_mu, ablated.mu[:, -1])


def test_switching_one_head_off_changes_the_prediction_and_leaves_the_weights(tiny_config):
    model = make(tiny_config, "nanotst")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 64)
    mask = torch.ones(model.head_grid, dtype=torch.bool)
    mask[0, 1] = False
    assert not torch.allclose(model(x, head_mask=mask).mu, model(x).mu)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_a_head_mask_of_the_wrong_shape_is_refused(tiny_config):
    model = make(tiny_config, "nanotst")
    with pytest.raises(ValueError, match="head_mask must have shape"):
        model(torch.randn(1, 64), head_mask=torch.ones(3, 2, dtype=torch.bool))


@pytest.mark.parametrize("rung", RUNGS)
def test_hidden_states_are_the_states_the_head_reads(tiny_config, rung):
    model = make(tiny_config, rung)
    x = torch.randn(2, 64)
    states = model.hidden_states(x)
    if rung == "linear":
        assert states == []
        return
    names = [name for name, _ in states]
    assert names[0] == "embeddings"
    last = states[-1][1]
    assert last.shape == (2, 8, tiny_config.d_model)
    if rung in ("transformer", "nanotst"):
        assert names[1:] == [f"block {i}" for i in range(tiny_config.n_layers)]
        mu, _ = model.read_out(model.ln_f(last))
    else:
        mu = model.head(last)
    torch.testing.assert_close(mu, model(x).mu)


@pytest.mark.parametrize("rung,position,causal", [("nanotst", "learned", True), ("nanotst", "rope", True),
                                                  ("transformer", "rope", False), ("attention", "learned", True)])
def test_the_softmax_of_the_scores_is_the_attention(tiny_config, rung, position, causal):
    model = make(tiny_config, rung, position=position, causal=causal)
    x = torch.randn(2, 64)
    weights = model(x, need_attention=True).attention
    for layer in range(model.head_grid[0]):
        scores = model.attention_scores(x, layer)
        torch.testing.assert_close(scores.softmax(dim=-1), weights[layer])
        assert torch.isinf(scores[0, 0, 0, 1:]).all() == causal        # the future, before the softmax


def test_beta_nll_gives_mu_the_mse_gradient_and_leaves_plain_nll_at_zero(tiny_config):
    model = make(tiny_config)
    x, y = next_patch_pairs(torch.randn(2, 72), 8)
    pred = model(x)
    assert torch.equal(model.loss(pred, y, nll_beta=0.0), model.loss(pred, y))

    def mu_grad(beta):
        mu = pred.mu.detach().requires_grad_(True)
        p = dataclasses.replace(pred, mu=mu, sigma=pred.sigma.detach())
        model.loss(p, y, nll_beta=beta).backward()
        return mu.grad

    target = ((y - pred.loc) / pred.scale).view_as(pred.mu)
    residual = (pred.mu.detach() - target) / pred.mu.numel()
    # plain NLL pulls mu by residual / sigma^2; beta 1 by the residual itself, as MSE/2 would
    assert torch.allclose(mu_grad(0.0), residual / pred.sigma.detach() ** 2, rtol=1e-4, atol=1e-7)
    assert torch.allclose(mu_grad(1.0), residual, rtol=1e-4, atol=1e-7)
