"""Forecast latency: 100 sample paths, 64 steps (2 patches) ahead of a 512-value context.

    python benchmarks/forecast_latency.py            # nanotst.forecast.forecast, 1 and 2 threads
    python benchmarks/forecast_latency.py --no-peer  # without HF PatchTST's generate() beside it
    python benchmarks/forecast_latency.py --bf16     # also forecast() under bf16 autocast
    python benchmarks/forecast_latency.py --positions learned both   # each position scheme, interleaved
    python benchmarks/forecast_latency.py --shared 0 1  # forecast(shared_patches=0): every window
                                                        # whole; 1 (the default): the second patch shares the context
    python benchmarks/forecast_latency.py --seasonal    # each model also with the seasonal patch
    python benchmarks/forecast_latency.py --mirror      # each also with forecast(mirror=True / False)

The weights do not change the cost, so a freshly built (untrained) NanoTST in eval mode is timed.
The peer is PatchTSTForPrediction(prediction_length=64).generate(): a direct multi-step model
drawing 100 samples from one forward pass, not an autoregressive roll-out; shown for scale.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from common import ROOT, interleaved, loadavg, machine, nanotst_model, patchtst_model, summary, write_result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=20, help="calls per round")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--positions", nargs="+", default=["learned"], choices=["learned", "rope", "both"],
                    help="time a model with each position scheme (the shipped model uses both)")
    ap.add_argument("--shared", type=int, nargs="+", default=None,
                    help="time forecast(shared_patches=) with each value")
    ap.add_argument("--seasonal", action="store_true",
                    help="time each model also with the seasonal patch, as the shipped model reads it "
                         "(its seasonal settings: level, slack, cycles and their choice, short seasons)")
    ap.add_argument("--mirror", action="store_true",
                    help="also time forecast(mirror=True) (half the paths forecast the context upside down) "
                         "and forecast(mirror=False)")
    ap.add_argument("--bf16", action="store_true",
                    help="also time forecast() under torch.autocast(cpu, bfloat16): not the same maths")
    args = ap.parse_args()
    from nanotst.checkpoints import load_checkpoint
    from nanotst.model import FORECAST_SETTINGS
    from nanotst.forecast import forecast

    torch.manual_seed(0)
    models = {position: nanotst_model(position=position).eval() for position in args.positions}
    if args.seasonal:
        shipped = load_checkpoint(ROOT / "checkpoints" / "default.pt").model_config
        seasonal = {name: getattr(shipped, name)
                    for name in ("seasonal_patch", "seasonal_level", *FORECAST_SETTINGS)}
        models.update({f"{position}+seasonal": nanotst_model(position=position, **seasonal).eval()
                       for position in args.positions})
    model = models[args.positions[0]]
    context = np.sin(np.linspace(0, 12 * np.pi, 512)) + 0.1 * np.random.default_rng(0).normal(size=512)
    fns = {}
    for position, m in models.items():
        name = "nanotst forecast()" if len(models) == 1 else f"forecast() {position}"
        for patches in args.shared or [None]:
            label = name if patches is None else f"{name} shared={patches}"
            kw = {} if patches is None else {"shared_patches": patches}
            fns[label] = lambda m=m, kw=kw: forecast(m, context, 64, n_samples=100, **kw)
            if args.mirror:
                for mirror in (True, False):
                    fns[f"{label} mirror={mirror}"] = lambda m=m, kw=kw, mirror=mirror: forecast(
                        m, context, 64, n_samples=100, mirror=mirror, **kw)
    if args.bf16:
        def bf16_fn():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return forecast(model, context, 64, n_samples=100)
        fns["nanotst forecast() bf16"] = bf16_fn
    if not args.no_peer:
        peer = patchtst_model(prediction_length=64).eval()
        past = torch.as_tensor(context, dtype=torch.float32).view(1, 512, 1)

        def peer_fn():
            with torch.inference_mode():
                return peer.generate(past_values=past).sequences  # (1, 100, 64, 1)
        assert peer_fn().shape == (1, 100, 64, 1)
        fns["patchtst generate()"] = peer_fn
    out = forecast(model, context, 64, n_samples=100)
    assert out.samples.shape == (100, 64)

    rows, info = [], machine()
    for n in args.threads:
        torch.set_num_threads(n)
        before = loadavg()
        times = interleaved(fns, args.rounds, args.calls)
        after = loadavg()
        print(f"\n{n} thread(s), {args.calls} calls x {args.rounds} rounds, load {before} -> {after}")
        for name, t in times.items():
            s = summary(t)
            rows.append({"threads": n, "fn": name, "ms_median": 1e3 * s["median"], "ms_min": 1e3 * s["min"],
                         "ms_max": 1e3 * s["max"], "load_before": before, "load_after": after})
            print(f"  {name:<22} median {1e3 * s['median']:6.2f} ms  (min {1e3 * s['min']:.2f}, max {1e3 * s['max']:.2f})")
    path = write_result("forecast_latency", {"machine": info, "args": vars(args), "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
