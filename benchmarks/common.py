"""Shared helpers for the benchmarks: machine load, interleaved timing, the two step functions.

Timings on a shared 2-core machine are noisy, so every comparison runs the contenders
interleaved (A, B, A, B, ...) in one process and reports medians and the spread, with the
load average before and after.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def loadavg() -> tuple[float, float, float]:
    return tuple(round(v, 2) for v in os.getloadavg())


def machine() -> dict:
    return {"date": _dt.datetime.now().isoformat(timespec="seconds"), "loadavg": loadavg(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "python": platform.python_version()}


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # no inter-op parallelism to gain in a tiny eager model
    except RuntimeError:
        pass  # already set in this process


def interleaved(fns: dict, rounds: int, steps: int, warmup: int = 3) -> dict[str, list[float]]:
    """Run each fn `steps` times per round, alternating fns, `rounds` times; seconds per call."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]  # neither side always goes first
        for name in order:
            fn = fns[name]
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            out[name].append((time.perf_counter() - t) / steps)
    return out


def summary(times: list[float]) -> dict:
    s = sorted(times)
    return {"median": statistics.median(s), "min": s[0], "max": s[-1], "n": len(s)}


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# ---- the two contenders ------------------------------------------------------------------------

def make_optimizer(params, lr=3e-4, weight_decay=0.01, fused=True):
    """AdamW as the original job uses it; fused=True is one kernel per parameter on CPU."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def make_step(model, loss_fn, batches, clip=1.0, fused=True, precision="fp32"):
    """A lean training step over pre-cut batches (cycled): forward, loss, backward, clip, AdamW.

    precision="bf16" runs the forward and loss under torch.autocast("cpu", torch.bfloat16):
    matmuls in bfloat16 (weights, optimizer and gradients stay float32). Not the same maths.
    """
    opt = make_optimizer(model.parameters(), fused=fused)
    params = [p for p in model.parameters()]
    model.train()
    state = {"i": 0}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        opt.step()
        return loss

    return step


def nanotst_model(dropout: float = 0.1, position: str = "learned", **switches):
    """A fresh full-size NanoTST; switches: other ModelConfig fields (seasonal_patch, ...)."""
    from nanotst.config import ModelConfig
    from nanotst.model import build_model
    return build_model(ModelConfig(dropout=dropout, position=position, **switches))


def patchtst_model(dropout: float = 0.1, prediction_length: int = 32):
    """HF PatchTSTForPrediction at NanoTST's config; dropout mapped onto the same places
    (attention weights, the two residual branches, the embedding)."""
    from transformers import PatchTSTConfig, PatchTSTForPrediction
    cfg = PatchTSTConfig(context_length=512, patch_length=32, patch_stride=32, d_model=128,
                         num_hidden_layers=4, num_attention_heads=4, ffn_dim=512,
                         distribution_output="normal", loss="nll", num_input_channels=1,
                         prediction_length=prediction_length, attention_dropout=dropout,
                         path_dropout=dropout, positional_dropout=dropout, ff_dropout=0.0,
                         head_dropout=0.0)
    return PatchTSTForPrediction(cfg)


def series(n: int, length: int, seed: int = 0) -> torch.Tensor:
    from nanotst.data import make_dataset
    return torch.from_numpy(make_dataset(n, length, "all", seed).values)
