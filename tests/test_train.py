"""Trainer: loss falls, chunking changes nothing, every rung trains, divergence is caught."""
import math

import numpy as np

import pytest
import torch

from nanotst.config import ConfigError, ModelConfig, TrainConfig
from nanotst.model import build_model
from nanotst.evaluate import grammar_noise_floor
from nanotst.train import Trainer, fine_tune, learning_order, learning_order_text
from nanotst.backtest import backtest
from nanotst.userdata import DataError

TINY = ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=1, dropout=0.1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny models on a shared 2-core machine: extra threads only add contention
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tc(**kw):
    base = dict(n_series=64, epochs=4, batch_size=16, lr=3e-3, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_loss_falls_and_history_is_recorded():
    t = Trainer(TINY, tc(epochs=8), device="cpu")
    ran = t.run(10_000)
    assert ran == t.total_steps == 32 and t.done and t.stop_reason == "finished"
    steps = [h["step"] for h in t.history]
    assert steps == [0, 4, 8, 12, 16, 20, 24, 28, 32]           # step 0, then once per epoch
    assert t.history[0]["train_loss"] is None
    assert t.history[-1]["train_loss"] < t.history[1]["train_loss"]
    assert t.history[-1]["val_loss"] < t.history[0]["val_loss"]
    assert set(t.history[-1]["grammar"]) == {"flat", "line", "sine", "noisy"}
    elapsed = [h["elapsed"] for h in t.history]
    assert elapsed == sorted(elapsed)
    assert t.run(5) == 0


def test_snapshots_are_plain_and_include_first_and_last():
    t = Trainer(TINY, tc(epochs=3), eval_every=5, snapshot_every=10, device="cpu")
    t.run(1000)
    assert [s["step"] for s in t.snapshots] == [0, 10, 12]
    case = t.snapshots[-1]["grammar"]["sine"]
    assert isinstance(case["mu"], list) and isinstance(case["mu"][0][0], float)
    assert len(case["target"]) == TINY.n_patches and len(case["sigma"][0]) == TINY.patch_size
    assert isinstance(case["loc"], float) and isinstance(case["scale"], float)
    assert [h["step"] for h in t.history] == [0, 5, 10, 12]


def test_chunked_run_equals_one_run():
    a = Trainer(TINY, tc(), device="cpu")
    a.run(1000)
    b = Trainer(TINY, tc(), device="cpu")
    torch.rand(5)                       # outside use of the global RNG must not matter
    while not b.done:
        b.run(3)
        torch.rand(3)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_about_half_the_steps_train_on_a_shorter_padded_input():
    t = Trainer(TINY, tc(epochs=50), eval_every=10_000, device="cpu")
    observed_counts = []

    def hook(module, args, kwargs):
        if module.training:
            observed = kwargs.get("observed")
            observed_counts.append(args[0].shape[1] if observed is None else int(observed[0].sum()))
            assert args[0].shape[1] % TINY.patch_size == 0 and (observed is None or observed.shape == args[0].shape)
    t.model.register_forward_pre_hook(hook, with_kwargs=True)
    t.run(200)
    full = TINY.context_length
    assert len(observed_counts) == 200 and all(8 <= n <= full for n in observed_counts)
    assert 0.35 < observed_counts.count(full) / 200 < 0.65
    partial = [n for n in observed_counts if n % TINY.patch_size]
    assert len(partial) > 50                 # most shorter inputs end in a padded partial patch
    assert len(set(observed_counts)) >= 20   # and their lengths vary


def test_flip_turns_that_share_of_each_batch_upside_down():
    upright = Trainer(TINY, tc(), device="cpu")._batch()
    assert torch.equal(Trainer(TINY, tc(flip=1.0), device="cpu")._batch(), -upright)
    half = Trainer(TINY, tc(flip=0.5), device="cpu")._batch()
    flipped = (half == -upright).all(dim=1) & (upright != 0).any(dim=1)
    kept = (half == upright).all(dim=1)
    assert bool((flipped | kept).all()) and 0 < int(flipped.sum()) < len(half)


def test_padded_pairs_pad_the_input_and_never_the_target():
    from nanotst.train import padded_pairs
    series = torch.arange(40.0).view(1, 40)
    x, y, observed = padded_pairs(series, 13, 8)            # 13 input values -> 2 patches, 3 padded
    assert x.shape == y.shape == observed.shape == (1, 16)
    assert observed[0, :3].sum() == 0 and observed[0, 3:].all()
    torch.testing.assert_close(x[0, 3:], series[0, -21:-8])    # the 13 values before the last patch
    torch.testing.assert_close(y[0, -8:], series[0, -8:])      # the target is the patch after them
    torch.testing.assert_close(y[0], torch.cat([x[0, 8:], series[0, -8:]]))  # shifted by one patch


def test_run_for_and_stop():
    t = Trainer(TINY, tc(epochs=50), device="cpu")
    assert t.run_for(0.2) > 0
    t.stop("stopped by user")
    assert t.done and t.stop_reason == "stopped by user"
    assert t.history[-1]["step"] == t.step and t.snapshots[-1]["step"] == t.step


@pytest.mark.parametrize("rung", ["linear", "attention", "transformer", "nanotst"])
def test_every_rung_trains(rung):
    cfg = ModelConfig(**{**TINY.to_dict(), "rung": rung})
    # the first wave's families: 40 steps on 64 series of the full mix (outliers, level shifts,
    # pulses) are too few for the MSE rungs to settle
    t = Trainer(cfg, tc(epochs=30, mix="first_wave"), device="cpu")
    t.run(1000)
    assert t.stop_reason == "finished"
    # an epoch here is 4 steps, and one hard short input can dominate its mean: compare the
    # median of the later epochs with the first
    later = sorted(h["train_loss"] for h in t.history[16:])
    assert later[len(later) // 2] < t.history[1]["train_loss"]
    sigma = t.history[-1]["grammar"]["sine"]["sigma"]
    assert (sigma is None) == (rung != "nanotst")


def _finite(model):
    return all(torch.isfinite(p).all() for p in model.parameters())


def test_huge_lr_diverges_with_reason_and_finite_weights():
    t = Trainer(TINY, tc(lr=1e6, epochs=20), device="cpu")
    t.run(1000)
    assert t.done and t.stop_reason.startswith("loss became") and "kept the weights from step" in t.stop_reason
    assert _finite(t.model)
    assert all(math.isfinite(h["val_loss"]) for h in t.history)


def test_injected_nan_restores_last_good_weights():
    t = Trainer(TINY, tc(epochs=10), device="cpu")
    t.run(8)                                     # records at 0, 4, 8
    good = weights(t.model)
    t.run(2)
    with torch.no_grad():
        next(t.model.parameters()).fill_(float("nan"))
    ran = t.run(100)
    assert ran == 0
    assert t.stop_reason == "loss became nan at step 10; kept the weights from step 8"
    assert t.step == 8 and t.done
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, good[k]), k
    assert t.history[-1]["step"] == 8 and t.snapshots[-1]["step"] == 8


def test_fine_tune_a_given_model_and_data_spec():
    model = build_model(TINY)
    t = Trainer(None, tc(epochs=1, mix="no_periodic"), model=model, device="cpu")
    assert t.model is model
    t.run(2)
    spec = t.data_spec()
    assert spec["n_series"] == 64 and spec["length"] == 64 + 8 and spec["mix_name"] == "no_periodic"
    assert abs(sum(spec["mix"].values()) - 1) < 1e-9 and "sine_low" not in spec["mix"]
    s = t.summary()
    assert s["rung"] == "nanotst" and s["step"] == 2 and s["total_steps"] == 4
    with pytest.raises(ConfigError):
        Trainer(ModelConfig(), tc(), model=model)
    with pytest.raises(ConfigError):
        Trainer(TINY, tc(), eval_every=0)


def test_noise_floor():
    floors = grammar_noise_floor()
    assert floors["flat"] == floors["line"] == floors["sine"] == 0
    assert 0.06 < floors["noisy"] < 0.09


def test_learning_order_reads_the_smoothed_error_and_needs_it_to_stay_learned():
    flat = [1, 0.01, 0.01, 0.01, 0.2, 0.01, 0.01, 0.01]        # one bad evaluation at step 40
    sine = [1, 0.5, 0.3, 0.04, 0.01, 0.01, 0.01, 0.01]
    line = [1, 0.01, 0.01, 0.3, 0.3, 0.3, 0.3, 0.3]             # learned, then lost for good
    noisy = [0.5, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    history = [{"step": 10 * i, "epoch": i, "elapsed": float(i),
                "grammar": {"flat": {"mse": f}, "line": {"mse": ln}, "sine": {"mse": s}, "noisy": {"mse": n}}}
               for i, (f, ln, s, n) in enumerate(zip(flat, line, sine, noisy))]
    order = learning_order(history, floors={"noisy": 0.073})
    # smoothed (geometric mean of 3): flat 1, 0.1, 0.046, ... stays under 0.05 from step 20, the
    # bad evaluation included; sine 0.18 at step 30, 0.049 at 40; noisy's bar is 1.5 x 0.073
    assert [(r["case"], r["step"]) for r in order] == [("flat", 20), ("sine", 40), ("noisy", 40)]
    assert order[2]["threshold"] == pytest.approx(0.1095)
    assert learning_order_text(history, floors={"noisy": 0.073}) == \
        "flat learned at step 20, sine at 40, noisy at 40, line not yet"
    assert learning_order(history[:1]) == []


def test_cosine_schedule_decays_to_a_tenth():
    t = Trainer(TINY, tc(epochs=2, lr=1e-3, lr_schedule="cosine"), device="cpu")
    assert t.lr_at(0) == pytest.approx(1e-3) and t.lr_at(t.total_steps) == pytest.approx(1e-4)
    t.run(4)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(t.lr_at(3))
    assert Trainer(TINY, tc(), device="cpu").lr_at(5) == 3e-3


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=1,
                                   dropout=0.0)).eval()


def test_fine_tune_trains_a_copy_on_the_history_only(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    values = np.sin(np.arange(100) / 4) + 0.01 * np.arange(100)
    seen = []
    result = fine_tune(tiny_model, values, holdout=20, steps=5, lr=1e-3,
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
    again = fine_tune(tiny_model, other, holdout=20, steps=5, lr=1e-3)
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    bt = backtest(tiny_model, values, 20, n_samples=20, others={"after fine-tune": result.model})
    assert list(bt.table().index[:2]) == ["NanoTST", "after fine-tune"]
    assert bt.calibration("after fine-tune").pit.shape == (20,)
    with pytest.raises(DataError, match="at least 16 values before the holdout"):
        fine_tune(tiny_model, values, holdout=90, steps=2)
