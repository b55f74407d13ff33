"""Peak memory (RSS) while training, measured in a fresh subprocess per case.

    python benchmarks/memory.py

Each case runs in its own Python process; the peak resident set size comes from
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss after it exits, and the child also reports its
RSS after imports (torch alone is a few hundred MB of it).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from common import ROOT, loadavg, machine, write_result

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
from nanotst.config import ModelConfig, TrainConfig
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
after_imports = rss_mb()
case, steps, batch = {case!r}, {steps}, {batch}
if case == "trainer":
    from nanotst.train import Trainer
    tr = Trainer(ModelConfig(), TrainConfig(batch_size=batch))
    tr.run(steps)
else:
    from nanotst.data import make_dataset
    from nanotst.model import build_model
    model = build_model(ModelConfig()).train()
    data = torch.from_numpy(make_dataset(2000, 512 + 32, "all", 0).values)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=True)
    for i in range(steps):
        s = data[torch.randint(0, len(data), (batch,))]
        loss = model.loss(model(s[:, :512]), s[:, 32:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
print(json.dumps({{"after_imports_mb": after_imports, "peak_self_mb": rss_mb()}}))
"""


def run_case(case: str, steps: int, batch: int) -> dict:
    code = CHILD.format(root=str(ROOT), case=case, steps=steps, batch=batch)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    child.update({"case": case, "steps": steps, "batch": batch,
                  "peak_children_mb": peak / 1024 if peak > before else None})
    return child


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=130, help="steps per case (2 epochs at batch 32)")
    args = ap.parse_args()
    rows = []
    info = machine()
    # smallest first, so each case's RUSAGE_CHILDREN peak is its own
    for case, batch in [("lean", 32), ("trainer", 32), ("lean", 256)]:
        r = run_case(case, args.steps if batch == 32 else max(10, args.steps // 8), batch)
        rows.append(r)
        print(f"{case:<8} batch {batch:<4} {r['steps']:>4} steps: peak RSS {r['peak_self_mb']:.0f} MB "
              f"(after imports {r['after_imports_mb']:.0f} MB)")
    path = write_result("memory", {"machine": info, "load_after": loadavg(), "rows": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
