"""The grammar targets of a checkpoint, in one run: the four original cases, noisy's MSE over 40
noise draws against its floor, and mean sigma on noisy against sine.

    python benchmarks/grammar_check.py [checkpoint]        # default: checkpoints/default.pt
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nanotst.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from nanotst.evaluate import grammar_eval  # noqa: E402
from nanotst.evaluate import grammar_noise_floor  # noqa: E402


def noisy_draws(model, n: int = 40, seed: int = 123) -> np.ndarray:
    """noisy's next-patch MSE over n noise draws, each divided by its own noise floor."""
    rng = np.random.default_rng(seed)
    length = model.config.context_length + model.config.patch_size
    sine = np.sin(np.linspace(0, 8 * np.pi, length))
    ratios = []
    for _ in range(n):
        case = {"noisy": (sine + rng.normal(0, 0.2, length)).astype(np.float32)}
        mse = grammar_eval(model, case)["noisy"]["mse"]
        ratios.append(mse / grammar_noise_floor(model.config.context_length, model.config.patch_size, case)["noisy"])
    return np.array(ratios)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CHECKPOINT
    model = load_checkpoint(path).model
    grammar = grammar_eval(model)
    floor = grammar_noise_floor(model.config.context_length, model.config.patch_size)
    for case, r in grammar.items():
        print(f"{case:6} mse {r['mse']:.5f}  mean sigma {r['sigma']:.4f}  floor {floor[case]:.4f}")
    ratios = noisy_draws(model)
    print(f"noisy over 40 draws: median {np.median(ratios):.3f} x floor (bar 1.25), "
          f"{np.mean(ratios <= 1.25):.0%} of draws meet the bar")
    print(f"sigma noisy / sigma sine: {grammar['noisy']['sigma'] / grammar['sine']['sigma']:.1f}")


if __name__ == "__main__":
    main()
