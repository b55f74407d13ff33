#!/usr/bin/env bash
# The whole recipe of checkpoints/default.pt, from scratch (see checkpoints/README.md, stage 10).
# One thread per run makes it deterministic on CPU; about 2.5 hours on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { python -m nanotst train --threads 1 --dropout 0 --lr-schedule cosine --nll-beta 0.5 "$@"; }

# learned positions plus rotary attention from the first step, beta-NLL, series seen 14 times
train --position both --n-series 166760 --epochs 14 --lr 1e-3 --seed 11 \
    --eval-every 5000 --snapshot-every 12500 --out checkpoints/stageB-both-scratch.pt
previous=checkpoints/stageB-both-scratch.pt
round() {   # one round of 166,760 series never seen before, 4 epochs: 20,848 steps
    out=$1; shift
    train --init "$previous" --n-series 166760 --epochs 4 --lr 3e-4 \
        --eval-every 2500 --snapshot-every 6250 --out "$out" "$@"
    previous=$out
}
round checkpoints/stageB2-both-scratch-fresh.pt --seed 12
round checkpoints/stageB3-both-scratch-fresh.pt --seed 13     # = checkpoints/lineage/
round checkpoints/stageB15.pt --seed 15
# then a tenth of the series from the structural family (a season that drifts, ETS-like)
round checkpoints/stageS16.pt --seed 16 --mix "all=1,structural=0.12"
round checkpoints/stageS17.pt --seed 17 --mix "all=1,structural=0.12"
python - <<'PY'
import os, torch
ck = torch.load("checkpoints/stageS17.pt", weights_only=True)
ck["name"] = "default"
ck["data_spec"]["init_from"] = "checkpoints/stageS16.pt (the last of six stages from scratch, see checkpoints/README.md, stage 10)"
torch.save(ck, "checkpoints/default.pt.tmp")
os.replace("checkpoints/default.pt.tmp", "checkpoints/default.pt")
PY
