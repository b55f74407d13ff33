"""What a learner tries first: the shipped model continues a repeating pattern.

Each clean shape is forecast two patches (64 values) ahead from a full 512-value context; the
median must stay within 0.1 x the shape's amplitude (MAE) and the 80% band must hold at least
80% of the truth. These failed on the model shipped before issue 12 (square: MAE 1.58 x
amplitude, 5% in the band; sine 7: MAE 0.63, its mean).
"""
import numpy as np
import pytest

from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
from nanotst.data import SignalSpec, design_signal
from nanotst.forecast import forecast

CONTEXT, HORIZON = 512, 64


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(DEFAULT_CHECKPOINT).model


CASES = {
    # a square wave of period 64: its flips fall exactly on patch boundaries, so nothing inside
    # the last patch says that the next one flips; only the patch two back does
    "square wave, period 64": SignalSpec("square", CONTEXT + HORIZON, period=64, amplitude=1.0),
    "sawtooth, period 50": SignalSpec("sawtooth", CONTEXT + HORIZON, period=50, amplitude=1.0),
    "sine, period 7": SignalSpec("sine", CONTEXT + HORIZON, period=7, amplitude=1.0),
}


@pytest.mark.parametrize("name", CASES)
def test_the_shipped_model_continues_a_repeating_shape(shipped, name):
    spec = CASES[name]
    values, _ = design_signal(spec)
    values = values.astype(np.float64)
    context, truth = values[:CONTEXT], values[CONTEXT:]
    fc = forecast(shipped, context, HORIZON, n_samples=200, seed=0)
    mae = float(np.mean(np.abs(fc.median - truth)))
    lo, hi = fc.interval(0.8)
    inside = float(np.mean((truth >= lo) & (truth <= hi)))
    assert mae <= 0.1 * spec.amplitude, f"{name}: median MAE {mae:.3f} (amplitude {spec.amplitude})"
    assert inside >= 0.8, f"{name}: only {inside:.0%} of the truth inside the 80% band"
