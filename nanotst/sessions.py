"""Per-browser-session state: a training run, an experiment, and the store that keeps runs alive
across reloads. No streamlit here: pages call these objects from their fragments.

`TrainingSession` is the Train page's run (a Trainer plus play/pause state, saved with a name
that no other session can take by accident); `ExperimentRun` trains an experiment's variants one
after the other, a chunk per `advance()`.

Training runs outlive a browser tab: they are kept on the server under a private run id.

A page reload, or a dropped connection, starts a new browser session; its URL still carries the
run id, so the new session attaches to its own run again (the trainer, its settings, the active
model). A run is held by at most one live browser session: a link copied from the address bar
and opened elsewhere while its owner is connected gets a run of its own. The store is bounded in
number (and so in memory: a run's data is bounded by the Train page's limits) and forgets runs
that nobody has held for `idle_seconds`.

No streamlit here: the app passes an opaque holder object per browser session and calls
`release` when that session ends.
"""
from __future__ import annotations

import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable

import numpy as np

from .backtest import backtest
from .checkpoints import (CheckpointError, checkpoint_dir, default_checkpoint_path, safe_checkpoint_path,
                          save_checkpoint)
from .config import ConfigError, ModelConfig, TrainConfig
from .data import DEFAULT_MIX, MIXES, SignalError
from .model import FORECAST_ONLY, PatchForecaster, with_settings
from .train import Trainer

MAX_RUNS = 8
DEFAULT_SEEDS = 3     # every experiment variant is trained this many times; the page shows the spread
IDLE_SECONDS = 30 * 60


# ---------------------------------------------------------------- one training run

@dataclass(frozen=True)
class TrainSettings:
    """What the Train page's controls set. The defaults learn the grammar in well under 30 s."""
    rung: str = "nanotst"
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    patch_size: int = 32
    dropout: float = 0.0
    lr: float = 2e-3
    batch_size: int = 32
    epochs: int = 60
    n_series: int = 512
    seed: int = 0
    mix: str | tuple = DEFAULT_MIX  # a preset's name (kept to the checkpoint), or ((family, weight), ...)
    eval_every: int = 20
    # the small default model learns the sine in its 960 steps with rotary positions (step 740)
    # and not with learned ones (MSE 0.09 at the end); the shipped model uses both
    position: str = "rope"
    # lr falling to a tenth: with a constant lr the sine case hovers at MSE 0.05-0.06 after the
    # default 960 steps and never counts as learned; with cosine it is learned at step 820
    lr_schedule: str = "cosine"

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        mc = ModelConfig(rung=self.rung, n_layers=self.n_layers, d_model=self.d_model,
                         n_heads=self.n_heads, patch_size=self.patch_size, dropout=self.dropout,
                         position=self.position)
        mix = self.mix if isinstance(self.mix, str) else dict(self.mix)
        tc = TrainConfig(n_series=self.n_series, epochs=self.epochs, batch_size=self.batch_size,
                         lr=self.lr, lr_schedule=self.lr_schedule, seed=self.seed, mix=mix)
        return mc, tc


def unique_run_name() -> str:
    """A save name no other run has: the time and four random hex digits."""
    return f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def default_mix_weights() -> dict[str, float]:
    return dict(MIXES["all"])


class TrainingSession:
    """One browser session's training run: a Trainer, trained by a background thread while
    `running`, so the page only draws (at its own pace) and a click never waits for training.

    The thread is the only writer of the trainer while it runs; every control takes the same
    lock, so Step, Stop, Reset and Save never interleave with a training chunk. Pages read the
    history and snapshots (lists the trainer only appends to) without the lock.
    """
    CHUNK = 10     # steps per locked chunk: a Pause or Stop takes effect within one chunk
    PAGE_WAIT = 2.0  # seconds the thread waits for a page at most, then trains a chunk anyway

    def __init__(self, settings: TrainSettings | None = None):
        self.settings = settings or TrainSettings()
        self.trainer = None
        self.running = False
        self.error: str | None = None
        self.saved_as: str | None = None
        self.default_name = unique_run_name()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._pages = 0                           # page scripts of this session running now
        self._page_done = threading.Condition()

    @contextmanager
    def page_first(self):
        """While a page's script runs inside this, the thread waits between chunks. The script
        and training share the interpreter (and a 2-core machine with the browser): a page
        opened during a run took 2-4x as long. The live charts redraw in a fragment, outside it."""
        with self._page_done:
            self._pages += 1
        try:
            yield
        finally:
            with self._page_done:
                self._pages -= 1
                self._page_done.notify_all()

    def _wait_for_pages(self) -> None:
        with self._page_done:
            self._page_done.wait_for(lambda: self._pages == 0, timeout=self.PAGE_WAIT)

    # controls (the page wires these to on_click callbacks)
    def _ensure(self) -> bool:
        if self.trainer is None:
            try:
                mc, tc = self.settings.configs()
                self.trainer = Trainer(mc, tc, eval_every=self.settings.eval_every,
                                       snapshot_every=self.settings.eval_every, device="cpu")
                self.error = None
            except (ConfigError, SignalError, ValueError) as err:
                self.error = str(err)
                self.running = False
                return False
        return True

    def start(self) -> None:
        with self._lock:
            if not self._ensure() or self.trainer.done:
                return
            self.running = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._train, args=(self.trainer,),
                                                name="nanotst-training", daemon=True)
                self._thread.start()

    def _train(self, trainer: Trainer) -> None:
        """The background loop: chunks of steps while running and this trainer is current."""
        try:
            while True:
                self._wait_for_pages()
                with self._lock:
                    if not self.running or self.trainer is not trainer or trainer.done:
                        break
                    trainer.run(self.CHUNK)
        except Exception as err:  # noqa: BLE001 - shown on the page, never lost in a thread
            self.error = f"training stopped: {type(err).__name__}: {err}"
        finally:
            with self._lock:
                if self.trainer is trainer:
                    self.running = False

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background loop has stopped (tests, a clean shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def pause(self) -> None:
        self.running = False

    def step(self, n_steps: int = 20) -> int:
        self.running = False
        with self._lock:
            if not self._ensure():
                return 0
            return self.trainer.run(n_steps)

    def stop(self) -> None:
        self.running = False
        with self._lock:
            if self.trainer is not None and not self.trainer.done:
                self.trainer.stop("stopped by user")

    def reset(self, settings: TrainSettings | None = None) -> None:
        self.running = False
        with self._lock:
            self.trainer = None
            self.error = None
            self.saved_as = None
            self.default_name = unique_run_name()
            if settings is not None:
                self.settings = settings

    # state for the page
    @property
    def started(self) -> bool:
        return self.trainer is not None

    @property
    def done(self) -> bool:
        return self.trainer is not None and self.trainer.done

    @property
    def history(self) -> list:
        return [] if self.trainer is None else self.trainer.history

    @property
    def snapshots(self) -> list:
        return [] if self.trainer is None else self.trainer.snapshots

    def status(self) -> dict:
        t = self.trainer
        if t is None:
            return {"state": "not started", "step": 0, "total_steps": self.settings.configs()[1].total_steps
                    if self.error is None else None, "epoch": 0, "train_loss": None, "val_loss": None,
                    "elapsed": 0.0}
        last = t.history[-1] if t.history else {}
        state = "running" if self.running else (t.stop_reason or ("paused" if t.step else "ready"))
        return {"state": state, "step": t.step, "total_steps": t.total_steps,
                "epoch": t.step / t.steps_per_epoch, "train_loss": last.get("train_loss"),
                "val_loss": last.get("val_loss"), "elapsed": t.elapsed}

    def save(self, name: str, folder=None, overwrite: bool = False):
        """Save the run as folder/<name>.pt (name sanitized); returns the path.

        Never over the shipped model; over another file only with overwrite=True (otherwise
        CheckpointExists, decided atomically: two sessions saving one name cannot both win).
        """
        if self.trainer is None:
            raise CheckpointError("nothing to save yet: start or step the training first")
        with self._lock:
            return self._save(name, folder, overwrite)

    def _save(self, name: str, folder, overwrite: bool):
        t = self.trainer
        path = safe_checkpoint_path(folder or checkpoint_dir(), name)
        if path.stem == "default" or path == default_checkpoint_path().resolve():
            raise CheckpointError(f"“{path.stem}” is the shipped model's name and cannot be "
                                  f"overwritten from the app; choose another name")
        t.record()  # make sure the last step is evaluated
        save_checkpoint(path, t.model, t.train_config, history=t.history, snapshots=t.snapshots,
                        data_spec=t.data_spec(), metrics=t.metrics(), name=path.stem,
                        overwrite=overwrite)
        self.saved_as = str(path)
        return path


# ---------------------------------------------------------------- experiments

@dataclass(frozen=True)
class Variant:
    name: str
    model_config: ModelConfig
    train_config: TrainConfig
    test_cases: tuple = ()          # grammar cases the result table focuses on


def _base(settings: TrainSettings, **model_kw) -> ModelConfig:
    mc, _ = settings.configs()
    return replace(mc, **model_kw)


EXPERIMENTS = {
    "ladder": "Build ladder: every rung on the same data for the same number of steps",
    "depth": "Depth sweep: 1, 2, 4 transformer blocks",
    "width": "Width sweep: d_model 32, 64, 128",
    "patch": "Patch-size sweep: 16, 32, 64 values per patch",
    "generalization": "Generalization: train without periodic signals, test on sine",
    "causal": "Causal mask off: the model sees the patch it predicts and cheats",
    "position": "Positions: rotary (distances between patches), learned (one vector each), or both",
    "padding": "Padding mask: the embedding knows which values are padding, or it does not",
    "loss": "Loss: plain Gaussian NLL against beta-NLL (beta 0.5, the shipped model's last stage)",
    "previous": "Previous patch: each token reads its own patch, or the patch before it too",
    "seasonal": "Seasonal patch: each token reads its own patch, or also the values one season before its target",
    "level": "Season's level: the seasonal patch as it was a season ago, or moved to where the series is now",
    "cycles": "Seasons averaged: the last season, the mean of the last 4, or of the 1 to 4 that forecast best lately",
    "short": "Short seasons: a season shorter than a patch read as a longer multiple of it, or as itself, repeated",
    "flip": "Upside down: train on series as drawn or half of them upside down; forecast upright or mirrored",
}


def experiment_variants(kind: str, steps: int = 300, settings: TrainSettings | None = None
                        ) -> list[Variant]:
    """The variants of one experiment. Every variant trains `steps` steps on the same data."""
    s = settings or TrainSettings()
    bs = s.batch_size
    n_series = max(bs, min(s.n_series, steps * bs))
    epochs = -(-steps * bs // n_series)
    tc = TrainConfig(n_series=n_series, epochs=epochs, batch_size=bs, lr=s.lr, seed=s.seed)
    # n_series * epochs / bs may overshoot `steps`; Trainer stops at total_steps, we cap below
    if kind == "ladder":
        return [Variant(r, _base(s, rung=r), tc) for r in ("linear", "attention", "transformer", "nanotst")]
    if kind == "depth":
        return [Variant(f"{n} layers", _base(s, n_layers=n), tc) for n in (1, 2, 4)]
    if kind == "width":
        return [Variant(f"d_model {d}", _base(s, d_model=d), tc) for d in (32, 64, 128)]
    if kind == "patch":
        return [Variant(f"patch {p}", _base(s, patch_size=p), tc) for p in (16, 32, 64)]
    if kind == "generalization":
        return [Variant("trained on all", _base(s), tc, ("sine", "noisy")),
                Variant("trained on no_periodic", _base(s), replace(tc, mix="no_periodic"),
                        ("sine", "noisy"))]
    if kind == "causal":
        return [Variant("causal (honest)", _base(s), tc),
                Variant("causal=False (cheats)", _base(s, causal=False), tc)]
    if kind == "position":
        return [Variant("rotary positions", _base(s, position="rope"), tc),
                Variant("learned positions", _base(s, position="learned"), tc),
                Variant("both", _base(s, position="both"), tc)]
    if kind == "padding":
        return [Variant("mask in the embedding", _base(s, input_mask=True), tc),
                Variant("no mask (padding looks like the mean)", _base(s, input_mask=False), tc)]
    if kind == "previous":
        return [Variant("own patch only", _base(s), tc),
                Variant("own and previous patch", _base(s, previous_patch=True), tc)]
    if kind == "seasonal":
        return [Variant("own patch only", _base(s), tc),
                Variant("own and seasonal patch", _base(s, seasonal_patch=True), tc)]
    if kind == "level":
        return [Variant("seasonal patch as it was", _base(s, seasonal_patch=True), tc),
                Variant("seasonal patch at today's level", _base(s, seasonal_patch=True, seasonal_level=True), tc)]
    if kind == "cycles":
        season = _base(s, seasonal_patch=True, seasonal_level=True)
        return [Variant("the last season", season, tc),
                Variant("the mean of the last 4", replace(season, season_cycles=4), tc),
                Variant("1 to 4, chosen", replace(season, season_cycles=4, choose_cycles=True), tc)]
    if kind == "short":
        season = _base(s, seasonal_patch=True, seasonal_level=True)
        return [Variant("a multiple of 32 values or longer", season, tc),
                Variant("the season itself, repeated", replace(season, short_seasons=True), tc)]
    if kind == "flip":
        flipped = replace(tc, flip=0.5)
        return [Variant("as drawn", _base(s), tc),
                Variant("half upside down", _base(s), flipped),
                Variant("half upside down, forecast mirrored", _base(s, mirror=True), flipped)]
    if kind == "loss":
        return [Variant("plain NLL", _base(s), tc), Variant("beta-NLL 0.5", _base(s), replace(tc, nll_beta=0.5))]
    raise KeyError(f"unknown experiment {kind!r}; known: {', '.join(EXPERIMENTS)}")


def _trains_like(a: Variant, b: Variant) -> bool:
    """Whether variants a and b train the same weights (they differ at most in FORECAST_ONLY)."""
    upright = {f: getattr(ModelConfig, f) for f in FORECAST_ONLY}
    return (replace(a.model_config, **upright) == replace(b.model_config, **upright)
            and a.train_config == b.train_config)


class ExperimentRun:
    """Trains every variant of an experiment under several seeds, one after the other, a chunk
    per `advance()` call. A seed changes the model's initial weights and the training series.

    results[name] summarizes a variant over its seeds: the mean of each final number, its
    spread (min, max), every seed's history, and the first seed's trained model (the page's
    forecasts)."""

    def __init__(self, kind: str, steps: int = 300, settings: TrainSettings | None = None,
                 seeds: int = DEFAULT_SEEDS):
        self.kind = kind
        self.steps = steps
        self.seeds = seeds
        self.variants = experiment_variants(kind, steps, settings)
        # a variant that differs from an earlier one only in how it forecasts trains alike: it
        # takes that one's runs and weights instead of training them again
        self.trained_as = {v.name: next(u for u in self.variants if _trains_like(u, v)) for v in self.variants}
        # seed by seed, so that one seed of every variant is there early
        self.jobs = [(v, k) for k in range(seeds) for v in self.variants if self.trained_as[v.name] is v]
        self.eval_every = max(1, steps // 10)
        self.index = 0
        self.trainer = None
        self.runs: dict[str, list[dict]] = {}     # variant -> one record per finished seed
        self.models: dict[str, PatchForecaster] = {}
        self.results: dict[str, dict] = {}
        self.started_at = time.perf_counter()
        self.wall = 0.0
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.jobs) or self.error is not None

    @property
    def progress(self) -> float:
        inner = 0.0 if self.trainer is None else min(1.0, self.trainer.step / self.steps)
        return min(1.0, (self.index + inner) / len(self.jobs))

    @property
    def current(self) -> str | None:
        if self.done:
            return None
        v, k = self.jobs[self.index]
        return f"{v.name}, seed {k + 1} of {self.seeds}"

    def advance(self, seconds: float = 1.0) -> None:
        """Train the current job for about `seconds`; move on when it reaches its budget."""
        if self.done:
            return
        t0 = time.perf_counter()
        v, k = self.jobs[self.index]
        try:
            if self.trainer is None:
                tc = replace(v.train_config, seed=v.train_config.seed + k)
                self.trainer = Trainer(v.model_config, tc, eval_every=self.eval_every,
                                       snapshot_every=self.steps, device="cpu")
            while time.perf_counter() - t0 < seconds and self.trainer.step < self.steps \
                    and not self.trainer.done:
                self.trainer.run(min(10, self.steps - self.trainer.step))
            if self.trainer.step >= self.steps or self.trainer.done:
                self._finish(v, k)
        except (ConfigError, SignalError, ValueError) as err:
            self.error = f"{v.name}: {err}"
        self.wall += time.perf_counter() - t0

    def run_all(self, seconds_per_call: float = 5.0) -> "ExperimentRun":
        while not self.done:
            self.advance(seconds_per_call)
        return self

    def _finish(self, v: Variant, seed: int) -> None:
        t = self.trainer
        if not t.history or t.history[-1]["step"] != t.step:
            t.record()
        last = t.history[-1]
        record = {
            "history": t.history, "grammar": {c: g["mse"] for c, g in last["grammar"].items()},
            "val_loss": last["val_loss"], "val_mse": last.get("val_mse"), "steps": t.step,
            "seconds": t.elapsed}
        for twin in (u for u in self.variants if self.trained_as[u.name] is v):
            self.runs.setdefault(twin.name, []).append(record)
            if seed == 0:
                settings = {f: getattr(twin.model_config, f) for f in FORECAST_ONLY}
                self.models[twin.name] = with_settings(t.model, **settings).eval()
            self.results[twin.name] = self._summary(twin, self.runs[twin.name], t.model.num_params())
        self.results = {u.name: self.results[u.name] for u in self.variants if u.name in self.results}
        self.trainer = None
        self.index += 1

    @staticmethod
    def _summary(v: Variant, runs: list[dict], params: int) -> dict:
        def spread(values):
            values = [x for x in values if x is not None]
            return (min(values), max(values)) if values else (None, None)

        def mean(values):
            values = [x for x in values if x is not None]
            return float(np.mean(values)) if values else None
        cases = list(runs[0]["grammar"])
        return {
            "history": runs[0]["history"], "histories": [r["history"] for r in runs],
            "grammar": {c: mean([r["grammar"][c] for r in runs]) for c in cases},
            "grammar_spread": {c: spread([r["grammar"][c] for r in runs]) for c in cases},
            "val_loss": mean([r["val_loss"] for r in runs]), "val_mse": mean([r["val_mse"] for r in runs]),
            "val_mse_spread": spread([r["val_mse"] for r in runs]), "seeds": len(runs),
            "params": params, "steps": runs[-1]["steps"], "seconds": sum(r["seconds"] for r in runs),
            "rung": v.model_config.rung, "loss_kind": "NLL" if v.model_config.probabilistic else "MSE"}

    def forecasts(self, values: np.ndarray, horizon: int, n_samples: int = 50) -> dict:
        """Each variant's first-seed model forecasting the last `horizon` values of one series
        from the rest: {variant: Backtest}, the same test signal for every variant."""
        return {name: backtest(model, values, horizon, n_samples=n_samples, linear=False)
                for name, model in self.models.items()}

    def headline(self) -> str | None:
        """One sentence with the experiment's point, once every variant has finished, from the
        numbers the page's charts show (the validation next-patch MSE every rung shares, the
        grammar MSE)."""
        if not self.done or self.error is not None:
            return None
        r = list(self.results.values())
        names = list(self.results)
        if self.kind == "generalization":
            case = self.variants[0].test_cases[0]
            a, b = r[0]["grammar"][case], r[1]["grammar"][case]
            return (f"On the {case} case, “{names[1]}” has next-patch MSE {b:.4f} against {a:.4f} "
                    f"for “{names[0]}” ({b / max(a, 1e-12):.1f}× the error).")
        if self.kind == "causal":
            return (f"“{names[1]}” ends at validation MSE {r[1]['val_mse']:.3f} against "
                    f"{r[0]['val_mse']:.3f} for “{names[0]}”: it reads the answer off the future.")
        best = min(names, key=lambda n: self.results[n]["val_mse"])
        sine = min(names, key=lambda n: self.results[n]["grammar"].get("sine", float("inf")))
        lo, hi = self.results[best]["val_mse_spread"]
        text = (f"Lowest validation next-patch MSE after {self.steps} steps: “{best}” "
                f"({self.results[best]['val_mse']:.3f}, mean of {self.seeds} seeds, {lo:.3f}–{hi:.3f})")
        rivals = [n for n in names if n != best and self.results[n]["val_mse_spread"][0] <= hi]
        if rivals:
            text += f"; within its seed spread: {', '.join(f'“{n}”' for n in rivals)}"
        if sine != best:
            text += (f"; lowest sine-case MSE: “{sine}” "
                     f"({self.results[sine]['grammar']['sine']:.4f})")
        return text + "."

    def table(self) -> list[dict]:
        rows = []
        for name, r in self.results.items():
            lo, hi = r["val_mse_spread"]
            row = {"variant": name, "parameters": r["params"], "steps": r["steps"], "seeds": r["seeds"],
                   "train seconds": round(r["seconds"], 1), "loss": r["loss_kind"],
                   "final val MSE": r["val_mse"], "val MSE min": lo, "val MSE max": hi,
                   "final val loss": r["val_loss"]}
            row.update({f"MSE {c}": v for c, v in r["grammar"].items()})
            rows.append(row)
        return rows


# ---------------------------------------------------------------- runs that survive a reload

class RunStoreFull(RuntimeError):
    """Every slot is held by a live browser session; the message says what to do."""


@dataclass
class Run:
    """What a browser session gets back after a reload."""
    run_id: str
    training: TrainingSession
    active_choice: str | None = None              # the sidebar's active model
    widgets: dict = field(default_factory=dict)   # the Train page's settings, by widget key
    holder: object | None = None
    last_seen: float = field(default_factory=time.monotonic)


class RunStore:
    """Runs by id, thread-safe (every browser session runs in its own thread)."""

    def __init__(self, max_runs: int = MAX_RUNS, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.max_runs = max_runs
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def attach(self, run_id: str | None, holder: object) -> Run:
        """The run with this id if it exists and no other live session holds it, else a new run.
        The returned run is held by `holder` until `release(holder)`."""
        with self._lock:
            self._expire()
            run = self._runs.get(run_id) if isinstance(run_id, str) else None
            if run is not None and (run.holder is None or run.holder is holder):
                run.holder = holder
                run.last_seen = self._clock()
                return run
            return self._new(holder)

    def touch(self, run: Run) -> None:
        run.last_seen = self._clock()

    def release(self, holder: object) -> None:
        """The browser session `holder` ended: its run waits for a reload (until it expires)."""
        with self._lock:
            for run in self._runs.values():
                if run.holder is holder:
                    run.holder = None
                    run.training.pause()         # nobody is watching: stop spending the CPU
                    run.last_seen = self._clock()

    def _new(self, holder: object) -> Run:
        if len(self._runs) >= self.max_runs:
            # make room: first a run with nothing to lose (never started; its tab keeps working,
            # only a reload of it would start afresh), then the longest idle one nobody holds
            unstarted = [r for r in self._runs.values() if not r.training.started]
            free = [r for r in self._runs.values() if r.holder is None]
            victims = unstarted or free
            if not victims:
                raise RunStoreFull(f"{self.max_runs} training runs are open in other browser tabs; "
                                   f"close one or try again later")
            del self._runs[min(victims, key=lambda r: r.last_seen).run_id]
        run = Run(secrets.token_urlsafe(12), TrainingSession(), holder=holder, last_seen=self._clock())
        self._runs[run.run_id] = run
        return run

    def _expire(self) -> None:
        now = self._clock()
        for run_id in [r.run_id for r in self._runs.values()
                       if r.holder is None and now - r.last_seen > self.idle_seconds]:
            del self._runs[run_id]
