import numpy as np
import pytest

from nanotst.data import (ADDED_LATER, FAMILIES, MIXES, SignalError, SignalSpec, design_signal, generate,
                          grammar_cases, make_dataset, probe_cases, resolve_mix)


def test_dataset_is_deterministic_by_seed():
    a, b, c = make_dataset(50, seed=3), make_dataset(50, seed=3), make_dataset(50, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.factors == b.factors
    assert not np.array_equal(a.values, c.values)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_draws_finite_series_with_its_factors(family):
    values, factors = generate(family, 512, np.random.default_rng(0))
    assert values.shape == (512,) and np.isfinite(values).all()
    assert factors.family == family


def test_original_generator_follows_its_formula():
    values, f = generate("sine_trend", 512, np.random.default_rng(1))
    t = np.arange(512) / 512
    clean = f.offset + f.trend * t + f.amplitude * np.sin(2 * np.pi * f.freq * t)
    residual = values - clean
    assert 2 <= f.freq <= 19 and 0.5 <= f.amplitude <= 2.5 and abs(f.trend) <= 0.5
    assert residual.std() == pytest.approx(0.1, rel=0.15)


def test_mixture_weights_shape_the_dataset():
    data = make_dataset(600, mix={"flat": 3, "sine_low": 1}, seed=0)
    fams = data.families()
    assert set(fams) == {"flat", "sine_low"}
    assert 0.65 < np.mean(fams == "flat") < 0.85
    assert set(make_dataset(400, mix="all").families()) == set(FAMILIES) - set(ADDED_LATER)
    assert set(make_dataset(50, mix="original").families()) == {"sine_trend"}
    assert not {"sine_low", "sine_high", "sine_trend", "noisy_sine", "multi_sine"} & set(MIXES["no_periodic"])


@pytest.mark.parametrize("mix, message", [
    ({"flat": -1}, "finite number"), ({"nope": 1}, "unknown signal family"), ("zzz", "unknown mix"),
    ({"flat": 0.0}, "positive weight"),
])
def test_bad_mixes_say_what_is_wrong(mix, message):
    with pytest.raises(SignalError, match=message):
        resolve_mix(mix)


def test_grammar_cases_are_the_original_ones():
    g = grammar_cases()
    assert set(g) == {"flat", "line", "sine", "noisy"}
    assert (g["flat"] == 3.0).all()
    assert g["line"][0] == 0 and g["line"][-1] == pytest.approx(5)
    np.testing.assert_allclose(g["sine"], np.sin(np.linspace(0, 8 * np.pi, 512)), atol=1e-6)
    assert (g["noisy"] - g["sine"]).std() == pytest.approx(0.2, rel=0.1)


def test_designed_signal_has_its_period_and_jump():
    values, f = design_signal(SignalSpec("sine", period=64, amplitude=2, jump_pos=300, jump_size=5))
    assert f.freq == pytest.approx(8)
    assert values[:64] == pytest.approx(values[64:128], abs=1e-5)
    assert values[300:364].mean() - values[236:300].mean() == pytest.approx(5, abs=0.5)


@pytest.mark.parametrize("spec, message", [
    (SignalSpec("sine", period=0.5), "period"), (SignalSpec("blob"), "kind"),
    (SignalSpec(noise=-1), "noise"), (SignalSpec(jump_pos=900), "jump"),
])
def test_bad_signal_parameters_are_refused(spec, message):
    with pytest.raises(SignalError, match=message):
        design_signal(spec)


def test_probe_cases_cover_the_canonical_behaviours():
    probes = probe_cases()
    assert set(probes) == {"trend_up", "trend_down", "sine_low", "sine_high", "jump", "noisy_sine"}
    up, _ = probes["trend_up"]
    down, _ = probes["trend_down"]
    assert up[-1] > up[0] and down[-1] < down[0]
    assert probes["jump"][1].jump_size == 2.0


def test_seasonal_family_has_short_seasons_under_trends():
    """Real monthly data has seasons shorter than a patch: the family must draw them, and its
    factors must name the season that is really in the series."""
    rng = np.random.default_rng(0)
    draws = [generate("seasonal", 512, rng) for _ in range(100)]
    periods = np.array([512 / f.freq for _, f in draws])
    assert periods.min() >= 4 and periods.max() <= 96
    assert 0.3 < np.mean(periods < 32) < 0.9           # shorter and longer than a patch
    assert sum(abs(f.trend) > 5 * f.amplitude for _, f in draws) >= 10   # trend dwarfs the season
    found = 0
    for values, f in draws:
        step = np.diff(values)                          # differencing removes the trend
        peak = np.argmax(np.abs(np.fft.rfft(step - step.mean()))[1:]) + 1
        ratio = peak * 512 / len(step) / f.freq         # 1 at the season, k at its k-th harmonic
        found += abs(ratio - round(ratio)) < 0.15 and round(ratio) >= 1
    assert found >= 85


# ---- repetition at every scale (issue 12) ----------------------------------------------------

from nanotst.data import ALIGNED_PERIODS, PATCH_GRID, REPETITION_FAMILIES, WAVE_SHAPES, _draw_period  # noqa: E402


def _dominant_period(values):
    x = values - values.mean()
    spectrum = np.abs(np.fft.rfft(x, 8 * len(x)))
    freq = np.fft.rfftfreq(8 * len(x))
    return 1.0 / freq[1 + np.argmax(spectrum[1:])]


def test_periodic_family_covers_periods_2_to_256_with_any_phase():
    rng = np.random.default_rng(0)
    draws = [_draw_period(rng) for _ in range(4000)]
    periods = np.array([p for p, _ in draws])
    assert periods.min() >= 2 and periods.max() <= 256
    assert (periods < 8).mean() > 0.1 and (periods > 128).mean() > 0.05   # short and long ones
    assert (periods % 1 != 0).mean() > 0.2                                 # not only whole periods
    # about a fifth are aligned: a cycle starts exactly on a patch boundary
    aligned = [(p, ph) for p, ph in draws if p in ALIGNED_PERIODS and
               min(abs((ph * p) % PATCH_GRID), PATCH_GRID - abs((ph * p) % PATCH_GRID)) < 1e-6]
    assert 0.15 < len(aligned) / len(draws) < 0.35


def test_a_periodic_series_repeats_at_its_factor_period():
    rng = np.random.default_rng(5)
    for _ in range(20):
        values, f = generate("periodic", 1024, rng)
        if f.noise_std == 0 and f.trend == 0 and f.freq > 8:
            period = 1024 / f.freq
            if period == int(period):        # whole periods: the series repeats exactly
                p = int(period)
                np.testing.assert_allclose(values[p:], values[:-p], atol=1e-9)
            else:
                assert abs(_dominant_period(values) - period) / period < 0.1


def test_every_wave_shape_is_unit_amplitude():
    from nanotst.data import wave as make_wave
    phase = np.arange(1000) / 100
    for shape in WAVE_SHAPES:
        wave = make_wave(shape, phase, 0.3)
        assert wave.max() == pytest.approx(1, abs=0.02) and wave.min() == pytest.approx(-1, abs=0.02)


def test_repetition_families_are_in_the_default_mix_and_deterministic():
    weights = resolve_mix("all")
    assert set(REPETITION_FAMILIES) <= set(weights)
    # the repetition families carry about half the weight, so the model sees them often
    assert 0.4 < sum(weights[f] for f in REPETITION_FAMILIES) < 0.8
    for family in REPETITION_FAMILIES:
        a, fa = generate(family, 544, np.random.default_rng(9))
        b, fb = generate(family, 544, np.random.default_rng(9))
        np.testing.assert_array_equal(a, b)
        assert fa == fb and a.std() > 0


def test_multiplicative_seasonality_grows_with_the_level():
    rng = np.random.default_rng(3)
    for _ in range(30):
        values, f = generate("multiplicative_seasonal", 544, rng)
        if f.trend > 2 * f.offset:          # the level more than doubles
            first, last = values[:100], values[-100:]
            assert last.std() / last.mean() == pytest.approx(first.std() / first.mean(), rel=0.8)
            assert last.std() > first.std()
            return
    pytest.fail("no strongly growing series drawn")


def test_kernel_synth_draws_vary_and_can_be_periodic():
    rng = np.random.default_rng(1)
    draws = [generate("kernel_synth", 544, rng)[0] for _ in range(40)]
    assert len({round(float(d.std()), 6) for d in draws}) > 1
    # some draws repeat (a periodic kernel): a high autocorrelation at some lag > 1
    def best_acf(x):
        x = x - x.mean()
        acf = np.correlate(x, x, "full")[len(x) - 1:] / (x @ x)
        return acf[2:200].max()
    assert max(best_acf(d) for d in draws) > 0.9


def test_a_structural_season_drifts_so_the_last_cycle_predicts_the_next_best():
    # an exponential-smoothing world: the season's shape wanders from cycle to cycle, so the
    # cycle just before is a better guess of the next than a cycle long ago
    rng = np.random.default_rng(4)
    recent, old = [], []
    for _ in range(60):
        values, f = generate("structural", 544, rng)
        period = round(544 / f.freq)
        d = np.diff(values, period)                   # each value minus the one a season before
        x = values - np.convolve(values, np.ones(period) / period, "same")   # the season, roughly
        last, prev, first = x[-2 * period:-period], x[-3 * period:-2 * period], x[period:2 * period]
        recent.append(np.abs(last - prev).mean()), old.append(np.abs(last - first).mean())
        assert np.isfinite(d).all()
    assert np.median(np.array(recent) / np.array(old)) < 0.8


def test_a_drift_walk_drifts_the_way_its_factors_say():
    rng = np.random.default_rng(6)
    rises, trends = [], []
    for _ in range(200):
        values, f = generate("drift_walk", 544, rng)
        assert f.family == "drift_walk" and np.isfinite(values).all() and f.noise_std > 0
        rises.append(values[-50:].mean() - values[:50].mean()), trends.append(f.trend)
    rises, trends = np.array(rises), np.array(trends)
    assert (trends > 0).mean() > 0.3 and (trends < 0).mean() > 0.3          # either way
    assert np.corrcoef(rises, trends)[0, 1] > 0.5       # the walk goes where the drift points
    assert np.mean(np.sign(rises) == np.sign(trends)) > 0.8


def test_growth_shows_within_a_short_input():
    # the point of the family: the last 96 values alone (a short input) already grow or decay
    rng = np.random.default_rng(8)
    ratios = []
    for _ in range(200):
        values, f = generate("growth", 544, rng)
        assert f.family == "growth" and np.isfinite(values).all() and (values > 0).all()
        tail = values[-96:]
        ratios.append(tail[-24:].mean() / tail[:24].mean())
    ratios = np.array(ratios)
    assert np.median(np.abs(np.log(ratios))) > 0.2          # typically 1.2x or more within 96 values
    assert (ratios > 1).mean() > 0.6 and (ratios < 1).mean() > 0.05        # mostly growth, some decay


def test_a_family_added_later_leaves_the_default_mix_as_it_was(monkeypatch):
    # the shipped model's recipe names the "all" mix; mixup draws from the other families, so a
    # family added to FAMILIES (structural, drift_walk: not in "all") must not change what mixup draws
    from nanotst import data
    assert not set(data.ADDED_LATER) & set(resolve_mix("all"))
    with_it = make_dataset(300, 544, "all", seed=5).values
    monkeypatch.setattr(data, "FAMILIES", tuple(f for f in data.FAMILIES if f not in data.ADDED_LATER))
    np.testing.assert_array_equal(make_dataset(300, 544, "all", seed=5).values, with_it)
