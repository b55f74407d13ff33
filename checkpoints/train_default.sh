#!/usr/bin/env bash
# The whole recipe of checkpoints/default.pt, from scratch (see checkpoints/README.md).
# One thread per run makes it deterministic on CPU; about 3 hours on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { python -m nanotst train --threads 1 --dropout 0 --lr-schedule cosine "$@"; }

train --n-series 60000 --epochs 40 --lr 1e-3 --seed 1 --position learned \
    --eval-every 5000 --snapshot-every 25000 --max-steps 40840 --out checkpoints/stage-learned.pt
train --init checkpoints/stage-learned.pt --n-series 20000 --epochs 10 --lr 3e-4 --seed 2 \
    --eval-every 2500 --snapshot-every 6250 --out checkpoints/stage2.pt
train --init checkpoints/stage2.pt --n-series 30000 --epochs 20 --lr 3e-4 --seed 4 --nll-beta 0.5 \
    --eval-every 2500 --snapshot-every 6250 --out checkpoints/stage3-beta05.pt
# learned positions -> learned + rotary ("both"): every weight carries over
train --init checkpoints/stage3-beta05.pt --position both --n-series 30000 --epochs 20 --lr 3e-4 \
    --seed 5 --nll-beta 0.5 --eval-every 2500 --snapshot-every 6250 \
    --out checkpoints/stage6-both-from-learned.pt
previous=checkpoints/stage6-both-from-learned.pt
for seed in 6 7 8; do   # three rounds of series never seen twice
    out=checkpoints/stageA$seed-both-learned-fresh.pt
    train --init "$previous" --n-series 166760 --epochs 4 --lr 3e-4 --seed "$seed" --nll-beta 0.5 \
        --eval-every 2500 --snapshot-every 6250 --out "$out"
    previous=$out
done
python - <<'PY'
import os, torch
ck = torch.load("checkpoints/stageA8-both-learned-fresh.pt", weights_only=True)
ck["name"] = "default"
ck["data_spec"]["init_from"] = ("checkpoints/stageA7-both-learned-fresh.pt (the last of four rounds from "
                                "the default.pt shipped 12-02, see checkpoints/README.md)")
torch.save(ck, "checkpoints/default.pt.tmp")
os.replace("checkpoints/default.pt.tmp", "checkpoints/default.pt")
PY
