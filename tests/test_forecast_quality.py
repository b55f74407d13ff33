"""The forecast-quality benchmark runs end to end (on two series, so CI keeps it working)."""
import numpy as np
import pytest
import torch

from benchmarks import forecast_quality as fq
from nanotst.config import ModelConfig
from nanotst.model import build_model


def tiny_checkpoint(tmp_path) -> str:
    """A one-layer model saved as a checkpoint: what the sweeps load, in a second."""
    from nanotst.checkpoints import save_checkpoint
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, dropout=0.0)).eval(),
                    name="tiny")
    return str(path)


def test_the_benchmark_runs_on_a_real_and_a_synthetic_series():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, dropout=0.0)).eval()
    series = [fq.real_series("AirPassengers"), fq.synthetic_suite()[0]]
    report = fq.run(series, model, n_samples=20, time_limit=60)
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"AirPassengers", "square_p64"}
    air = rows["AirPassengers"]
    assert (air["season"], air["horizon"], air["context"]) == (12, 24, 120)
    for row in rows.values():
        assert set(row["scores"]) == set(fq.METHODS)
        snaive = row["scores"]["seasonal_naive"]
        assert snaive["rel_mae"] == pytest.approx(1.0)
        for method, s in row["scores"].items():
            if "error" in s:          # a peer that timed out or failed is reported, not hidden
                assert method in fq.PEERS and s["error"]
                continue
            assert np.isfinite(s["rel_mae"]) and np.isfinite(s["wql"]) and 0 <= s["coverage_80"] <= 1
            assert s["seconds"] >= 0
    assert set(report["aggregate"]) == {"real", "synthetic"}
    assert report["aggregate"]["real"]["seasonal_naive"]["rel_mae_gmean"] == pytest.approx(1.0)
    fq.print_report(report)


def test_scores_follow_the_rules():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    # a perfect median and a band that holds everything
    q = {0.1: y - 1, 0.5: y, 0.9: y + 1}
    assert fq.weighted_quantile_loss(y, q) == pytest.approx(2 * (0.1 * 4 + 0.1 * 4) / 10 / 3)
    result = fq.Result(y, q, 0.0)
    s = fq.score(y, result, snaive_mae=2.0, mase_scale=0.5)
    assert s["rel_mae"] == 0 and s["coverage_80"] == 1 and s["mase"] == 0
    # two seasons, clipped to 8..64
    assert [fq.Series("x", y, m, "real", "").horizon for m in (1, 4, 12, 52, 48)] == [8, 8, 24, 64, 64]


def test_the_shape_sweep_scores_every_shape_and_period(tmp_path):
    from benchmarks import shape_sweep as sweep
    from nanotst.baselines import seasonal_naive_forecast
    from nanotst.data import WAVE_SHAPES

    series = list(sweep.sweep_series())
    assert len(series) == len(WAVE_SHAPES) * len(sweep.PERIODS) * 2
    for _, period, values, horizon in series:
        assert horizon == min(64, max(8, 2 * period)) and len(values) == sweep.CONTEXT + horizon

    def repeat_last_cycle(context, horizon, period):
        point = seasonal_naive_forecast(context, horizon, period)
        return point, point - 1, point + 1
    rows = sweep.score(repeat_last_cycle)
    assert {(r["shape"], r["period"]) for r in rows} == {(s, p) for s in WAVE_SHAPES for p in sweep.PERIODS}
    assert all(r["rel_mae"] == pytest.approx(1.0) for r in rows)      # seasonal naive is the unit

    rows = sweep.score(sweep.nanotst(tiny_checkpoint(tmp_path), n_samples=10))
    assert len(rows) == len(series)
    assert all(np.isfinite(r["rel_mae"]) and 0 <= r["coverage"] <= 1 for r in rows)


def test_the_random_walk_suite_scores_against_the_naive_forecast(tmp_path):
    from benchmarks import random_walks as walks

    series = list(walks.walk_series())
    assert [kind for kind, _ in series] == [k for k in walks.KINDS for _ in range(40)]
    assert all(len(values) == walks.CONTEXT + walks.HORIZON for _, values in series)
    drifts = [np.mean(np.diff(v)) for k, v in series if k == "drift"]
    assert np.median(np.abs(drifts)) > 0.05                  # the drift is there, either sign
    assert min(drifts) < 0 < max(drifts)

    def naive(context, horizon, period):
        point = np.full(horizon, context[-1])
        return point, point - 1, point + 1
    rows = walks.score(naive)
    assert all(r["rel_mae"] == pytest.approx(1.0) for r in rows)     # the naive forecast is the unit
    assert "worse than 1.1x: 0%" in walks.summary(rows)

    def far_off(context, horizon, period):
        point = np.full(horizon, context[-1] + 100.0)
        return point, point - 1, point + 1
    assert "worse than 1.1x: 100%" in walks.summary(walks.score(far_off))

    rows = walks.score(walks.nanotst(tiny_checkpoint(tmp_path), n_samples=10))
    assert len(rows) == len(series)
    assert all(np.isfinite(r["rel_mae"]) and 0 <= r["coverage"] <= 1 for r in rows)


def test_every_real_set_loads_whole_with_a_context_before_the_holdout():
    names = [name for table in fq.REAL_SETS.values() for name in table]
    assert len(names) == len(set(names)) and len(fq.REAL_2) >= 20 and len(fq.REAL_3) >= 60
    for kind, table in fq.REAL_SETS.items():
        for name in table:
            s = fq.real_series(name)
            assert s.kind == kind
            assert np.all(np.isfinite(s.values)), name            # gaps interpolated, not dropped
            assert len(s.values) - s.horizon >= 32, name          # at least a patch of context


def test_a_series_starts_at_its_first_value_and_a_gap_inside_is_interpolated():
    presidents = fq.real_series("presidents")          # 1945 Q1 is missing, and 5 quarters later
    assert len(presidents.values) == 119 and presidents.values[0] == 87
    textiles = fq.real_series("us_employment.CEU3231300001")   # the table's rows before 1990 are empty
    assert len(textiles.values) == 357


def test_an_unknown_series_name_is_refused_with_the_known_names(capsys, tmp_path):
    with pytest.raises(SystemExit):
        fq.main(["--only", "AirPassengers,nosuch", "--methods", "NanoTST", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert "no series named nosuch" in err and "sunspot.month" in err
