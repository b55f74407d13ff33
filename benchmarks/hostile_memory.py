"""Peak memory of the CLI on hostile inputs, each in its own subprocess, beside a normal forecast.

    python benchmarks/hostile_memory.py

The issue's bar: no invalid or hostile input makes a command exceed 1 GB above its normal
footprint. Prints each case's exit code, its first stderr line and its peak RSS.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb(args: list[str]) -> tuple[int, str, float]:
    """Run python -m nanotst args in a fresh process; (exit code, first stderr line, peak MB)."""
    code = ("import resource, sys, runpy; sys.argv = ['nanotst'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('nanotst', run_name='__main__')\n"
            "except SystemExit as e:\n    rc = e.code\nelse:\n    rc = 0\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    peak = next(float(l.split()[1]) / 1024 for l in lines if l.startswith("PEAK"))
    message = next((l for l in lines if l.startswith("error")), lines[0] if lines else "")
    return proc.returncode, message, peak


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    csv = tmp / "s.csv"
    csv.write_text("y\n" + "\n".join(f"{5 + np.sin(i / 2):.4f}" for i in range(300)) + "\n")
    bomb = tmp / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("archive/data.pkl", "w", force_zip64=True) as entry:   # streamed: this
            chunk = b"\0" * 2**24                                          # process stays small
            for _ in range(128):
                entry.write(chunk)
    huge_config = tmp / "huge.pt"
    ck = torch.load(ROOT / "checkpoints" / "default.pt", weights_only=True)
    ck["model_config"]["d_model"] = 10**9
    torch.save(ck, huge_config)
    long_field = tmp / "long.csv"
    long_field.write_text("y\n" + "1" * 5_000_000 + "\n")
    cases = {
        "normal forecast (reference)": ["forecast", "--input", str(csv), "--horizon", "64", "--output", str(tmp / "o.csv")],
        "horizon 10^11": ["forecast", "--input", str(csv), "--horizon", "100000000000", "--output", str(tmp / "o.csv")],
        "samples 10^9": ["forecast", "--input", str(csv), "--horizon", "64", "--samples", "1000000000", "--output", str(tmp / "o.csv")],
        "2 GiB zip bomb as checkpoint": ["evaluate", str(bomb)],
        "config d_model 10^9": ["evaluate", str(huge_config)],
        "5 MB single field CSV": ["backtest", "--input", str(long_field), "--horizon", "8"],
        "train n_series 10^9": ["train", "--n-series", "1000000000", "--out", str(tmp / "x.pt")],
        "train d_model 1024 x 32 layers": ["train", "--d-model", "1024", "--n-layers", "32", "--out", str(tmp / "x.pt")],
    }
    print(f"bomb file {bomb.stat().st_size / 2**20:.1f} MB on disk (inflates to 2048 MB)")
    rows = {name: peak_rss_mb(args) for name, args in cases.items()}
    base = rows["normal forecast (reference)"][2]
    print(f"{'case':34} {'rc':>3} {'peak MB':>8} {'above ref':>9}  message")
    for name, (rc, msg, peak) in rows.items():
        print(f"{name:34} {rc:>3} {peak:8.0f} {peak - base:9.0f}  {msg[:90]}")


if __name__ == "__main__":
    main()
