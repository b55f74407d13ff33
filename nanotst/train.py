"""Training in chunks: a Trainer that a UI, the CLI or a notebook can drive a few steps at a time.

    trainer = Trainer(ModelConfig(), TrainConfig())
    while not trainer.done:
        trainer.run(50)            # returns how many optimizer steps ran
        print(trainer.history[-1])

Nothing is lost between chunks: the data order, dropout randomness and optimizer state all live
on the trainer, so running 10 x 100 steps gives the same weights as running 1000 steps at once.
Evaluation (validation loss, grammar eval) happens every `eval_every` steps and its time is not
counted in `elapsed`. A nan/inf loss stops the run and restores the last evaluated weights.

`fine_tune` trains a copy of a model on windows of one series through the same `train_step`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError, ModelConfig, TrainConfig
from .data import grammar_cases, make_dataset, resolve_mix
from .evaluate import grammar_eval, grammar_noise_floor, next_patch_predictions
from .metrics import trailing_geomean
from .model import TARGET_CLIP, PatchForecaster, build_model, eval_mode, next_patch_pairs
from .userdata import DataError

VAL_SEED_OFFSET = 1_000_003   # the validation set is drawn from a different seed than the training set
EVAL_BATCH = 256
# Forecasts of short series read the model after fewer than the full number of patches. Half the
# training batches are cut to a random shorter input (one patch or more, the newest values,
# padded at the start to whole patches), so that case is trained too; learned positions count
# back from the newest patch (model.positions).
SHORT_INPUT_FRACTION = 0.5
# Weight copies a run keeps at its snapshots (the Inside page reads them across training): at
# most this many and this many bytes; past that every other older copy is dropped.
MAX_WEIGHT_SNAPSHOTS = 16
MAX_WEIGHT_SNAPSHOT_BYTES = 64 * 2**20


def padded_pairs(series: torch.Tensor, length: int, patch_size: int):
    """Inputs, targets and the inputs' observed mask for a `length`-value input from the newest
    values of series (B, >= length + P). The series is padded at the start to whole patches
    before it is split, so every target is data: the padding sits in the first input patch only."""
    window = series[:, -(length + patch_size):]
    pad = -length % patch_size
    observed = torch.ones_like(window)
    if pad:
        window, observed = F.pad(window, (pad, 0)), F.pad(observed, (pad, 0))
    x, y = next_patch_pairs(window, patch_size)
    return x, y, observed[:, :-patch_size]


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _snapshot_case(model: PatchForecaster, series: np.ndarray) -> dict:
    p = next_patch_predictions(model, series)
    return {"target": p.target.tolist(), "mu": p.mu.tolist(),
            "sigma": None if p.sigma is None else p.sigma.tolist(),
            "loc": p.loc, "scale": p.scale}


def train_step(model: PatchForecaster, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, observed: torch.Tensor | None = None, grad_clip: float = 1.0,
               nll_beta: float = 0.0) -> torch.Tensor:
    """One optimizer step on the model's own next-patch loss; training and fine-tuning share it."""
    loss = model.loss(model(x, observed=observed), y, nll_beta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


class Trainer:
    """Owns a model, its optimizer, the data and the record of how training went."""

    def __init__(self, model_config: ModelConfig | None, train_config: TrainConfig, *,
                 eval_every: int | None = None, snapshot_every: int | None = None,
                 device: str | torch.device | None = None, model: PatchForecaster | None = None):
        if model is not None:
            if model_config is not None and model_config != model.config:
                raise ConfigError("model_config: does not match the given model's config")
            model_config = model.config
        if model_config is None:
            raise ConfigError("model_config: needed when no model is given")
        self.model_config = model_config
        self.train_config = tc = train_config
        self.device = torch.device(device) if device is not None else default_device()
        self.eval_every = self._interval(eval_every, tc.steps_per_epoch, "eval_every")
        self.snapshot_every = self._interval(snapshot_every, self.eval_every, "snapshot_every")

        # the model is built under its own seed, and the trainer keeps its own RNG stream after that,
        # so whatever else the process does with torch's global RNG cannot change a run
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tc.seed)
            self.model = model if model is not None else build_model(model_config)
            self._rng_state = torch.get_rng_state()
        self.model.to(self.device)
        self._order_gen = torch.Generator().manual_seed(tc.seed)

        # each series is one patch longer than the context: the input plus the patch after it
        length = model_config.context_length + model_config.patch_size
        self._train_x = torch.from_numpy(make_dataset(tc.n_series, length, tc.mix, tc.seed).values).to(self.device)
        self.n_val = int(round(tc.val_fraction * tc.n_series))
        self._val_x = None
        if self.n_val > 0:
            val = make_dataset(self.n_val, length, tc.mix, tc.seed + VAL_SEED_OFFSET)
            self._val_x = torch.from_numpy(val.values).to(self.device)
        self._cases = grammar_cases(length)

        # fused: one kernel for all parameters; the default per-tensor loop is slow on CPU
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                                           fused=True)
        self.history: list[dict] = []
        self.snapshots: list[dict] = []
        self.weight_snapshots: list[tuple[int, dict]] = []   # (step, state_dict), see _keep_weights
        self.step = 0
        self.stop_reason: str | None = None
        self.elapsed = 0.0                 # training seconds, evaluation excluded
        self._perm: torch.Tensor | None = None
        self._loss_sum = torch.zeros((), device=self.device)
        self._loss_count = 0
        self._good = (0, self._copy_state())
        self._check_every = 1 if self.device.type == "cpu" else 25  # finiteness checks sync the GPU

    @staticmethod
    def _interval(value, default, name) -> int:
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
        return value

    # ---- state -------------------------------------------------------------------------------

    @property
    def steps_per_epoch(self) -> int:
        return self.train_config.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.train_config.total_steps

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.step // self.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.stop_reason is not None or self.step >= self.total_steps

    def data_spec(self) -> dict:
        tc = self.train_config
        return {"mix": resolve_mix(tc.mix), "mix_name": tc.mix if isinstance(tc.mix, str) else None,
                "n_series": tc.n_series, "seed": tc.seed,
                "length": self.model_config.context_length + self.model_config.patch_size,
                "n_val": self.n_val, "val_seed": tc.seed + VAL_SEED_OFFSET}

    def metrics(self) -> dict:
        """The grammar eval of the current weights (reused from the last record when it is current)."""
        if self.history and self.history[-1]["step"] == self.step:
            grammar = self.history[-1]["grammar"]
        else:
            grammar = grammar_eval(self.model, self._cases)
        floors = grammar_noise_floor(patch_size=self.model_config.patch_size, cases=self._cases)
        return {"grammar": grammar, "noise_floor": floors,
                "step": self.step, "elapsed": self.elapsed}

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"rung": self.model_config.rung, "params": self.model.num_params(),
                "device": str(self.device), "step": self.step, "epoch": self.step / self.steps_per_epoch,
                "total_steps": self.total_steps, "done": self.done, "stop_reason": self.stop_reason,
                "elapsed": self.elapsed, "train_loss": last.get("train_loss"),
                "val_loss": last.get("val_loss"), "grammar": last.get("grammar")}

    # ---- training ----------------------------------------------------------------------------

    def run(self, n_steps: int) -> int:
        """Run up to n_steps optimizer steps; returns how many ran (fewer at the end or on divergence)."""
        if not self.history:
            self.record()
        ran = 0
        if self.done or n_steps <= 0:
            self._finish_if_done()
            return 0
        self.model.train()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            t0 = time.perf_counter()
            while ran < n_steps and self.step < self.total_steps:
                loss = self._train_step().detach()
                if (self.step % self._check_every == 0 or self._due()) and not torch.isfinite(loss):
                    self.elapsed += time.perf_counter() - t0
                    self._diverged(float(loss))
                    break
                self._loss_sum += loss
                self._loss_count += 1
                self.step += 1
                ran += 1
                if self._due():
                    self.elapsed += time.perf_counter() - t0
                    self.record()
                    self.model.train()
                    t0 = time.perf_counter()
            else:
                self.elapsed += time.perf_counter() - t0
            self._rng_state = torch.get_rng_state()
        self._finish_if_done()
        return ran

    def run_for(self, seconds: float, chunk: int = 20) -> int:
        """Train for about `seconds` of wall time (whole chunks); returns the steps that ran."""
        end = time.perf_counter() + seconds
        ran = 0
        while not self.done and time.perf_counter() < end:
            ran += self.run(chunk)
        return ran

    def stop(self, reason: str = "stopped") -> None:
        """End the run here (a Stop button, Ctrl-C, a time limit): record the current weights."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.record()

    def _due(self) -> bool:
        return self.step % self.eval_every == 0 or self.step == self.total_steps

    def _batch(self) -> torch.Tensor:
        spe, bs = self.steps_per_epoch, self.train_config.batch_size
        i = self.step % spe
        if i == 0 or self._perm is None:
            self._perm = torch.randperm(len(self._train_x), generator=self._order_gen).to(self.device)
        batch = self._train_x[self._perm[i * bs:(i + 1) * bs]]
        if self.train_config.flip > 0:   # a shape upside down is a shape too: x -> -x
            flipped = torch.rand(len(batch), 1, generator=self._order_gen) < self.train_config.flip
            batch = torch.where(flipped.to(self.device), -batch, batch)
        return batch

    def _input_length(self) -> int:
        """How many input values this step trains on: the whole context, or a random shorter
        input of one patch or more (mostly not whole patches, so the padding is trained too)."""
        P, L = self.model_config.patch_size, self.model_config.context_length
        if L <= P or torch.rand((), generator=self._order_gen) >= SHORT_INPUT_FRACTION:
            return L
        return int(torch.randint(P, L, (), generator=self._order_gen))

    def lr_at(self, step: int) -> float:
        tc = self.train_config
        if tc.lr_schedule == "cosine":   # lr -> lr/10: a constant lr leaves the last weights noisy
            return tc.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / self.total_steps, 1.0))))
        return tc.lr

    def _train_step(self) -> torch.Tensor:
        if self.train_config.lr_schedule != "constant":
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.step)
        P = self.model_config.patch_size
        x, y, observed = padded_pairs(self._batch(), self._input_length(), P)
        tc = self.train_config
        return train_step(self.model, self.optimizer, x, y, observed, tc.grad_clip, tc.nll_beta)

    def _diverged(self, value: float) -> None:
        bad_step = self.step
        good_step, state = self._good
        self.model.load_state_dict(state)
        self.step = good_step
        # the optimizer's moments are poisoned too; the run is over, but keep them finite
        self.optimizer.state.clear()
        self.history = [h for h in self.history if h["step"] <= good_step]
        self.snapshots = [s for s in self.snapshots if s["step"] <= good_step]
        self.weight_snapshots = [w for w in self.weight_snapshots if w[0] <= good_step]
        self._loss_sum.zero_()
        self._loss_count = 0
        self.stop_reason = f"loss became {value} at step {bad_step}; kept the weights from step {good_step}"
        self.record()

    def _finish_if_done(self) -> None:
        if self.step >= self.total_steps and self.stop_reason is None:
            self.stop_reason = "finished"
            self.record()

    # ---- evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def val_loss(self) -> float | None:
        return self.validation()[0]

    @torch.no_grad()
    def validation(self) -> tuple[float | None, float | None]:
        """(the model's own loss, next-patch MSE of mu) on the validation series. The MSE is the
        metric every rung shares (the loss is NLL for NanoTST and MSE for the others)."""
        if self._val_x is None:
            return None, None
        total, squared = 0.0, 0.0
        with eval_mode(self.model):
            for i in range(0, len(self._val_x), EVAL_BATCH):
                x, y = next_patch_pairs(self._val_x[i:i + EVAL_BATCH], self.model_config.patch_size)
                pred = self.model(x)
                total += float(self.model.loss(pred, y)) * len(x)
                target = ((y - pred.loc) / pred.scale).view_as(pred.mu).clamp(-TARGET_CLIP, TARGET_CLIP)
                squared += float(((pred.mu - target) ** 2).mean()) * len(x)
        return total / len(self._val_x), squared / len(self._val_x)

    def record(self) -> None:
        """Evaluate now and append to history (and snapshots when due); once per step."""
        if self.history and self.history[-1]["step"] == self.step:
            self._maybe_snapshot(force=self.done)
            return
        train_loss = float(self._loss_sum) / self._loss_count if self._loss_count else None
        self._loss_sum.zero_()
        self._loss_count = 0
        val, val_mse = self.validation()
        entry = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4),
                 "train_loss": train_loss, "val_loss": val, "val_mse": val_mse, "elapsed": self.elapsed,
                 "grammar": grammar_eval(self.model, self._cases)}
        self.history.append(entry)
        finite = all(v is None or math.isfinite(v) for v in (train_loss, val))
        if finite and self._weights_finite():
            self._good = (self.step, self._copy_state())
        self._maybe_snapshot(force=self.step == 0 or self.done)
        self.model.train()

    def snapshot(self) -> dict:
        """The grammar cases' next-patch predictions now, as plain lists and floats."""
        return {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4),
                "grammar": {name: _snapshot_case(self.model, s) for name, s in self._cases.items()}}

    def _maybe_snapshot(self, force: bool = False) -> None:
        if self.snapshots and self.snapshots[-1]["step"] == self.step:
            return
        if force or self.step % self.snapshot_every == 0:
            self.snapshots.append(self.snapshot())
            self._keep_weights()

    def _keep_weights(self) -> None:
        """A copy of the weights at this snapshot. Past the cap every other older copy goes (the
        first and the newest stay), so the copies stay spread over the whole run."""
        self.weight_snapshots.append((self.step, self._copy_state()))
        nbytes = sum(v.numel() * v.element_size() for v in self.weight_snapshots[0][1].values())
        cap = max(2, min(MAX_WEIGHT_SNAPSHOTS, MAX_WEIGHT_SNAPSHOT_BYTES // max(1, nbytes)))
        if len(self.weight_snapshots) > cap:
            *older, newest = self.weight_snapshots
            self.weight_snapshots = older[::2] + [newest]

    def _copy_state(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for p in self.model.parameters())


LEARNED_MSE = 0.05        # a grammar case counts as learned below this next-patch MSE ...
LEARNED_FLOOR_FACTOR = 1.5  # ... or below 1.5 x its noise floor, when that is higher (noisy)
SMOOTH_WINDOW = 3         # evaluations in the trailing geometric mean the rule reads


def learned_threshold(case: str, floors: dict | None = None) -> float:
    return max(LEARNED_MSE, LEARNED_FLOOR_FACTOR * (floors or {}).get(case, 0.0))


def learning_order(history: list[dict], floors: dict | None = None) -> list[dict]:
    """When each grammar case was learned: the first evaluation from which its smoothed MSE (a
    trailing geometric mean of SMOOTH_WINDOW evaluations) stays below learned_threshold for the
    rest of the run so far. [{"case", "step", "epoch", "elapsed", "threshold"}], earliest first;
    a case not learned (or learned and lost again) is left out."""
    cases = list((history[0].get("grammar") or {}) if history else {})
    order = []
    for case in cases:
        points = [h for h in history if case in (h.get("grammar") or {})]
        smooth = trailing_geomean([h["grammar"][case]["mse"] for h in points], SMOOTH_WINDOW)
        limit = learned_threshold(case, floors)
        above = np.flatnonzero(smooth >= limit)
        first = 0 if len(above) == 0 else above[-1] + 1
        if first < len(points):
            h = points[first]
            order.append({"case": case, "step": h["step"], "epoch": h["epoch"], "elapsed": h["elapsed"],
                          "threshold": limit})
    return sorted(order, key=lambda r: r["step"])


def learning_order_text(history: list[dict], floors: dict | None = None) -> str:
    """"flat learned at step 20, line at 110, sine at 380, noisy not yet"."""
    learned = {r["case"]: r["step"] for r in learning_order(history, floors)}
    cases = list((history[0].get("grammar") or {}) if history else {})
    done = sorted((c for c in cases if c in learned), key=learned.get)
    parts = [f"{c} learned at step {learned[c]}" if i == 0 else f"{c} at {learned[c]}"
             for i, c in enumerate(done)]
    rest = [c for c in cases if c not in learned]
    if rest:
        parts.append(f"{', '.join(rest)} not yet")
    return ", ".join(parts)


# ---------------------------------------------------------------- fine-tuning on one series

@dataclass
class FineTuneResult:
    model: PatchForecaster     # a trained COPY, in eval mode
    losses: list[float]        # training loss per step
    window: int                # values per training window
    n_windows: int             # distinct windows it drew from
    n_values: int              # values it trained on (everything before the holdout)


def fine_tune(model: PatchForecaster, values, holdout: int, steps: int = 50, lr: float = 1e-4,
              batch_size: int = 16, seed: int = 0, progress=None) -> FineTuneResult:
    """Train a copy of `model` for `steps` steps on windows of values[:-holdout].

    The held-out values are never seen. Windows are the most recent whole-patch length that fits
    the context (at most context_length), every start position, drawn at random each step; the
    loss is the model's own next-patch loss. `model` itself is never changed. progress(done,
    total, loss) is called after every step.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    cfg = model.config
    P, L = cfg.patch_size, cfg.context_length
    if not isinstance(holdout, (int, np.integer)) or holdout < 0:
        raise DataError(f"the holdout must be zero or a positive number of values, got {holdout!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DataError(f"fine-tuning needs at least 1 step, got {steps!r}")
    history = values[:len(values) - holdout]
    width = min(L + P, (len(history) // P) * P)           # input plus the patch after it
    if width < 2 * P:
        raise DataError(f"fine-tuning needs at least {2 * P} values before the holdout, "
                        f"got {len(history)}")
    windows = torch.from_numpy(np.lib.stride_tricks.sliding_window_view(history, width)
                               .astype(np.float32))      # (n_windows, width)
    rng = np.random.default_rng(seed)
    tuned = copy.deepcopy(model)
    for p in tuned.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)                          # dropout masks
        tuned.train()
        for step in range(steps):
            idx = rng.integers(0, len(windows), size=min(batch_size, len(windows)))
            x, y = next_patch_pairs(windows[idx], P)
            losses.append(float(train_step(tuned, opt, x, y).detach()))
            if progress is not None:
                progress(step + 1, steps, losses[-1])
    tuned.eval()
    return FineTuneResult(tuned, losses, width, len(windows), len(history))
