"""The original job: 2000 series x 100 epochs, batch 32, AdamW lr 3e-4, grad clip 1.0.

    python benchmarks/original_job.py                       # through nanotst.train.Trainer
    python benchmarks/original_job.py --optimizer fused     # ... with AdamW(fused=True) swapped in
    python benchmarks/original_job.py --via lean            # a lean loop: the step and nothing else
    python benchmarks/original_job.py --epochs 10           # a tenth of the job (times scaled x10)

Wall time covers everything after imports: dataset generation, model build, (compile), training
and, through the Trainer, its per-epoch evaluation and snapshots. The Trainer's own `elapsed`
(training steps only) is reported beside it.
"""
from __future__ import annotations

import argparse
import time

import torch

from common import ROOT, loadavg, machine, set_threads, write_result


def via_trainer(args) -> dict:
    from nanotst.config import ModelConfig, TrainConfig
    from nanotst.train import Trainer
    t0 = time.perf_counter()
    trainer = Trainer(ModelConfig(), TrainConfig(epochs=args.epochs))
    if args.optimizer == "fused":
        tc = trainer.train_config
        trainer.optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=tc.lr,
                                              weight_decay=tc.weight_decay, fused=True)
    if args.compile:
        trainer.model.compile(dynamic=False)  # nn.Module.compile: same module, compiled forward
    if args.precision == "bf16":  # what a Trainer(precision="bf16") would do around its forward
        model, forward = trainer.model, trainer.model.forward

        def autocast_forward(*a, **kw):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=model.training):
                return forward(*a, **kw)
        model.forward = autocast_forward
    setup = time.perf_counter() - t0
    trainer.run(trainer.total_steps)
    wall = time.perf_counter() - t0
    last = trainer.history[-1]
    return {"wall_s": wall, "setup_s": setup, "train_s": trainer.elapsed, "steps": trainer.step,
            "final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"]}


def via_lean(args) -> dict:
    from nanotst.config import ModelConfig, TrainConfig
    from nanotst.data import make_dataset
    from nanotst.model import build_model
    t0 = time.perf_counter()
    tc = TrainConfig(epochs=args.epochs)
    torch.manual_seed(tc.seed)
    model = build_model(ModelConfig()).train()
    data = torch.from_numpy(make_dataset(tc.n_series, 512 + 32, tc.mix, tc.seed).values)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                            fused=args.optimizer == "fused")
    params = list(model.parameters())
    loss_fn = lambda s: model.loss(model(s[:, :512]), s[:, 32:])  # noqa: E731
    if args.compile:
        loss_fn = torch.compile(loss_fn, dynamic=False)
    setup = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(tc.seed)
    steps, total = 0, torch.zeros(())
    for _ in range(tc.epochs):
        perm = torch.randperm(len(data), generator=gen)
        for i in range(0, len(data), tc.batch_size):
            x = data[perm[i:i + tc.batch_size]]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                loss = loss_fn(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()
            total += loss.detach()
            steps += 1
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "setup_s": setup, "train_s": wall - setup, "steps": steps,
            "final_train_loss": float(loss.detach())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--via", choices=["trainer", "lean"], default="trainer")
    ap.add_argument("--optimizer", choices=["default", "fused"], default="default",
                    help="torch's default AdamW (a per-tensor loop on CPU) or fused=True")
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward+loss")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forward under torch.autocast(cpu, bfloat16); not the same maths")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    set_threads(args.threads)
    info = machine()
    before = loadavg()
    res = (via_trainer if args.via == "trainer" else via_lean)(args)
    scale = 100 / args.epochs
    res.update({"load_before": before, "load_after": loadavg(), "epochs": args.epochs,
                "wall_s_for_100_epochs": res["wall_s"] * scale if scale == 1 else
                res["setup_s"] + (res["wall_s"] - res["setup_s"]) * scale,
                "ms_per_step": 1e3 * res["train_s"] / res["steps"]})
    print(f"{args.via} optimizer={args.optimizer} compile={args.compile} precision={args.precision} "
          f"threads={args.threads} "
          f"epochs={args.epochs}: wall {res['wall_s']:.1f} s (setup {res['setup_s']:.1f} s, "
          f"training {res['train_s']:.1f} s, {res['ms_per_step']:.1f} ms/step); "
          f"100 epochs -> {res['wall_s_for_100_epochs']:.0f} s; load {before} -> {res['load_after']}")
    tag = args.tag or f"_{args.via}_{args.optimizer}{'_compile' if args.compile else ''}_{args.precision}_t{args.threads}_e{args.epochs}"
    path = write_result(f"original_job{tag}", {"machine": info, "args": vars(args), "result": res})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
