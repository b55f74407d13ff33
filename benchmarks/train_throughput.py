"""Training throughput: NanoTST vs Hugging Face PatchTSTForPrediction, same data, same loop.

    pip install -r requirements-bench.txt
    python benchmarks/train_throughput.py                      # batch 32 and 256, 2 threads
    python benchmarks/train_throughput.py --reference 920a9d9  # also the model.py of that commit

Both models get the same 544-value series (NanoTST trains next-patch NLL on the first 512,
PatchTST predicts the last 32 from the first 512 with a normal head and NLL loss), the same
AdamW (lr 3e-4, weight decay 0.01, fused), the same clip (1.0) and the same step function.
The contenders run interleaved; medians of the rounds are reported.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import subprocess
import sys
import tempfile

import torch

from common import (ROOT, interleaved, loadavg, machine, make_step, nanotst_model, patchtst_model,
                    series, set_threads, summary, write_result)


def reference_model(rev: str, dropout: float):
    """NanoTST as model.py was at git revision `rev` (to measure what the changes bought)."""
    src = subprocess.run(["git", "show", f"{rev}:nanotst/model.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    src = src.replace("from .config import", "from nanotst.config import")
    path = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
    path.write(src)
    path.close()
    spec = importlib.util.spec_from_file_location(f"nanotst_model_{rev}", path.name)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    from nanotst.config import ModelConfig
    return mod.build_model(ModelConfig(dropout=dropout))


def ref_loss(model, batch):
    """A reference commit's loss: before the input/target split its loss took the input only."""
    if inspect.signature(model.loss).parameters.get("y") is None:
        return model.loss(model(batch[:, :512]), batch[:, :512])
    return model.loss(model(batch[:, :512]), batch[:, 32:])


def contenders(batch: int, args) -> dict:
    torch.manual_seed(0)
    data = series(args.n_series, 512 + 32, seed=0)
    data = data[torch.randperm(len(data))]
    batches = [data[i:i + batch] for i in range(0, len(data) - batch + 1, batch)]
    nano_batches = [b.contiguous() for b in batches]          # input 512 + the next patch
    past = [b[:, :512, None].contiguous() for b in batches]
    future = [b[:, 512:, None].contiguous() for b in batches]
    pairs = list(zip(past, future))

    nano = nanotst_model(args.dropout)
    peer = patchtst_model(args.dropout)
    fns = {
        "nanotst": make_step(nano, lambda b: nano.loss(nano(b[:, :512]), b[:, 32:]), nano_batches,
                             precision=args.precision),
        "patchtst": make_step(peer, lambda b: peer(past_values=b[0], future_values=b[1]).loss, pairs,
                              precision=args.peer_precision or args.precision),
    }
    if args.reference:
        ref = reference_model(args.reference, args.dropout)
        fns[f"nanotst@{args.reference}"] = make_step(ref, lambda b: ref_loss(ref, b), nano_batches,
                                                         precision=args.precision)
    return fns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--series-per-round", type=int, default=640, help="series each contender trains per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.1, help="NanoTST's default; mapped onto PatchTST")
    ap.add_argument("--n-series", type=int, default=2048)
    ap.add_argument("--reference", default=None, help="a git revision whose model.py to time as well")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: both models under torch.autocast(cpu, bfloat16); not the same maths")
    ap.add_argument("--peer-precision", choices=["fp32", "bf16"], default=None,
                    help="PatchTST's precision when it should differ from --precision")
    ap.add_argument("--tag", default="", help="suffix for the results file")
    args = ap.parse_args()
    set_threads(args.threads)

    rows = []
    info = machine()
    for batch in args.batch:
        fns = contenders(batch, args)
        steps = max(1, args.series_per_round // batch)
        before = loadavg()
        times = interleaved(fns, args.rounds, steps)
        after = loadavg()
        stats = {name: summary(t) for name, t in times.items()}
        peer = stats["patchtst"]["median"]
        for name, s in stats.items():
            # the ratio of medians, and the median of per-round ratios (robust to load drifting)
            per_round = [p / n for p, n in zip(times["patchtst"], times[name])]
            rows.append({"batch": batch, "model": name, "ms_per_step": 1e3 * s["median"],
                         "ms_min": 1e3 * s["min"], "ms_max": 1e3 * s["max"],
                         "series_per_s": batch / s["median"], "speedup_vs_patchtst": peer / s["median"],
                         "speedup_median_of_rounds": sorted(per_round)[len(per_round) // 2],
                         "load_before": before, "load_after": after})
        print(f"\nbatch {batch}, {args.threads} thread(s), NanoTST {args.precision} / PatchTST {args.peer_precision or args.precision}: {steps} steps x {args.rounds} interleaved rounds, "
              f"load {before} -> {after}")
        print(f"{'model':<22}{'ms/step':>9}{'min':>8}{'max':>8}{'series/s':>10}{'x PatchTST':>12}{'(per-round)':>12}")
        for r in rows:
            if r["batch"] == batch:
                print(f"{r['model']:<22}{r['ms_per_step']:9.1f}{r['ms_min']:8.1f}{r['ms_max']:8.1f}"
                      f"{r['series_per_s']:10.0f}{r['speedup_vs_patchtst']:12.2f}{r['speedup_median_of_rounds']:12.2f}")
    path = write_result(f"train_throughput{args.tag}", {"machine": info, "args": vars(args), "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
