"""Non-UI logic behind the Explorer's pages: model sources, signals, a training session,
pipeline stages, analyses and experiment runs. Never imports streamlit.

Pages keep one `TrainingSession` and one `ExperimentRun` per browser session in
st.session_state and call `tick()` / `advance()` from a fragment, a short chunk at a time.
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from datetime import datetime
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, ModelConfig, TrainConfig
from .data import (FAMILIES, GRAMMAR_NOISE_STD, MIXES, SignalError, SignalSpec, design_signal,
                   generate, grammar_cases, probe_cases)
from .evaluate import next_patch_predictions
from .model import PatchForecaster, build_model

CHECKPOINT_DIR_ENV = "NANOTST_CHECKPOINT_DIR"
DEFAULT_CHECKPOINT_ENV = "NANOTST_DEFAULT_CHECKPOINT"


# ---------------------------------------------------------------- model sources

def checkpoint_dir() -> Path:
    """Where runs are saved and listed: $NANOTST_CHECKPOINT_DIR, else checkpoints/."""
    from .checkpoints import CHECKPOINT_DIR
    env = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(env) if env else CHECKPOINT_DIR


def default_checkpoint_path() -> Path:
    from .checkpoints import DEFAULT_CHECKPOINT
    env = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    return Path(env) if env else DEFAULT_CHECKPOINT


@dataclass
class ActiveModel:
    """The model every analysis page uses, with what is known about how it was made."""
    key: str                       # stable id for caches: changes whenever the weights change
    label: str
    source: str                    # "default" | "saved" | "uploaded" | "untrained"
    model: PatchForecaster
    train_config: TrainConfig | None = None
    history: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    data_spec: dict | None = None
    metrics: dict | None = None
    created: str | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def from_loaded(ck, key: str, label: str, source: str) -> ActiveModel:
    return ActiveModel(key=key, label=label, source=source, model=ck.model,
                       train_config=ck.train_config, history=ck.history, snapshots=ck.snapshots,
                       data_spec=ck.data_spec, metrics=ck.metrics, created=ck.created)


def load_path(path) -> ActiveModel:
    """Load a checkpoint file (raises checkpoints.CheckpointError with a one-line message)."""
    from .checkpoints import load_checkpoint
    path = Path(path)
    ck = load_checkpoint(path)
    key = f"file:{path.resolve()}:{path.stat().st_mtime_ns}"
    source = "default" if path.resolve() == default_checkpoint_path().resolve() else "saved"
    return from_loaded(ck, key, ck.name or path.stem, source)


def load_upload(data: bytes, name: str) -> ActiveModel:
    from .checkpoints import load_checkpoint
    buf = io.BytesIO(data)
    buf.name = name
    ck = load_checkpoint(buf)
    digest = hashlib.sha1(data).hexdigest()[:12]
    return from_loaded(ck, f"upload:{digest}", f"{name} (uploaded)", "uploaded")


def untrained_model(config: ModelConfig | None = None, seed: int = 0) -> ActiveModel:
    """A fallback when no checkpoint exists: honest about being untrained."""
    config = config or ModelConfig()
    torch.manual_seed(seed)
    model = build_model(config).eval()
    return ActiveModel(key=f"untrained:{seed}:{sorted(config.to_dict().items())}",
                       label="untrained model (no checkpoint found)", source="untrained", model=model)


def saved_runs() -> list:
    """checkpoints.CheckpointInfo for every run in the checkpoint folder except the default."""
    from .checkpoints import list_checkpoints
    folder = checkpoint_dir()
    default = default_checkpoint_path().resolve()
    return [i for i in list_checkpoints(folder) if Path(i.path).resolve() != default]


def model_card(active: ActiveModel) -> dict:
    """What the Overview shows about the active model, as plain values."""
    cfg = active.config
    card = {"name": active.label, "source": active.source, "rung": cfg.rung,
            "parameters": active.model.num_params(), "config": cfg.to_dict(),
            "created": active.created}
    if active.train_config is not None:
        tc = active.train_config
        card["training"] = {"series": tc.n_series, "epochs": tc.epochs, "batch size": tc.batch_size,
                            "learning rate": tc.lr, "seed": tc.seed,
                            "steps": active.history[-1]["step"] if active.history else None}
        # a run started from another checkpoint's weights (train --init): the numbers above are
        # this run's only
        if (active.data_spec or {}).get("init_from"):
            card["training"]["continued from"] = active.data_spec["init_from"]
    if active.data_spec:
        card["data"] = active.data_spec
    grammar = (active.metrics or {}).get("grammar")
    if grammar is None and active.history:
        grammar = active.history[-1].get("grammar")
    card["grammar"] = grammar
    card["noise_floor"] = (active.metrics or {}).get("noise_floor")
    return card


# ---------------------------------------------------------------- signals

GRAMMAR = "grammar case"
PROBE = "probe signal"
FAMILY = "random from a family"
SIGNAL_SOURCES = (GRAMMAR, PROBE, FAMILY)


@dataclass(frozen=True)
class Signal:
    name: str
    values: np.ndarray
    noise_std: float | None      # true noise std in original units, when known
    family: str | None = None


def signal_names(source: str) -> list[str]:
    if source == GRAMMAR:
        return list(grammar_cases(64))
    if source == PROBE:
        return list(probe_cases(64))
    if source == FAMILY:
        return list(FAMILIES)
    raise SignalError(f"unknown signal source {source!r}")


def get_signal(source: str, name: str, length: int = 512, seed: int = 0) -> Signal:
    """A named signal from one of SIGNAL_SOURCES."""
    if source == GRAMMAR:
        return Signal(name, grammar_cases(length, seed)[name], GRAMMAR_NOISE_STD.get(name), name)
    if source == PROBE:
        values, f = probe_cases(length, seed)[name]
        return Signal(name, values, f.noise_std, f.family)
    if source == FAMILY:
        values, f = generate(name, length, np.random.default_rng(seed))
        return Signal(f"{name} (seed {seed})", values.astype(np.float32), f.noise_std, f.family)
    raise SignalError(f"unknown signal source {source!r}")


def designed_signal(spec: SignalSpec) -> Signal:
    values, f = design_signal(spec)
    return Signal(f"designed {spec.kind}", values, f.noise_std, f.family)


# ---------------------------------------------------------------- analyses

def _fit_length(model: PatchForecaster, values: np.ndarray) -> np.ndarray:
    """The most recent whole patches that fit the model's context."""
    cfg = model.config
    values = np.asarray(values, dtype=np.float32)[-cfg.context_length:]
    return values[len(values) % cfg.patch_size:]


@dataclass
class Stage:
    name: str
    shape: str
    array: np.ndarray       # 1-D or 2-D, batch dimension dropped
    note: str = ""


@torch.no_grad()
def pipeline_stages(model: PatchForecaster, values: np.ndarray) -> list[Stage]:
    """Every intermediate tensor of one forward pass, for the Overview's pipeline."""
    cfg = model.config
    x = torch.as_tensor(_fit_length(model, values)).unsqueeze(0)
    patches, mask, loc, scale = model.patchify(x)
    N, P = patches.shape[1:]
    fmt = lambda t: "×".join(str(s) for s in t.shape[1:])  # noqa: E731
    stages = [Stage("raw series", str(x.shape[1]), x[0].numpy(), "the values as given"),
              Stage("normalized", str(x.shape[1]), ((x - loc) / scale)[0].numpy(),
                    f"(x − {float(loc):.3g}) / {float(scale):.3g}: mean 0, std 1"),
              Stage("patches", f"{N}×{P}", patches[0].numpy(), f"{N} tokens of {P} values")]
    where = {"learned": ", plus a learned position", "rope": ", positions are rotary (in attention)"}
    notes = {"embeddings": f"each patch → {cfg.d_model} numbers"
                           + (where[cfg.position] if cfg.rung in ("transformer", "nanotst") else ""),
             "attention": "one causal attention head"}
    for name, h in model.hidden_states(x):
        stages.append(Stage(name, fmt(h), h[0].numpy(),
                            notes.get(name, "attention mixes earlier patches in, then a GELU FFN")))
    pred = model(x)
    stages.append(Stage("μ (next patch)", fmt(pred.mu), pred.mu[0].numpy(),
                        "row n is the predicted patch n+1"))
    if pred.sigma is not None:
        stages.append(Stage("σ (next patch)", fmt(pred.sigma), pred.sigma[0].numpy(),
                            "the model's uncertainty for each value"))
    return stages


@dataclass
class NextPatchAnalysis:
    normalized: np.ndarray
    patches: np.ndarray
    target: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray | None
    loc: float
    scale: float
    rms_error: np.ndarray            # per predicted patch
    mean_sigma: np.ndarray | None    # per predicted patch
    true_noise: float | None         # in normalized units
    mse: float


def next_patch_analysis(model: PatchForecaster, values: np.ndarray,
                        noise_std: float | None = None) -> NextPatchAnalysis:
    values = _fit_length(model, values)
    p = next_patch_predictions(model, values)
    P = model.config.patch_size
    normalized = (values - p.loc) / p.scale
    err = np.sqrt(np.mean((p.mu - p.target) ** 2, axis=1))
    return NextPatchAnalysis(
        normalized=normalized, patches=normalized.reshape(-1, P), target=p.target, mu=p.mu,
        sigma=p.sigma, loc=p.loc, scale=p.scale, rms_error=err,
        mean_sigma=None if p.sigma is None else p.sigma.mean(axis=1),
        true_noise=None if noise_std is None else float(noise_std) / p.scale, mse=p.mse)


# ---------------------------------------------------------------- training session

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
    mix: tuple = ()                 # ((family, weight), ...); empty: the "all" preset
    eval_every: int = 20
    # the small default model learns the sine in its 960 steps with rotary positions (step 740)
    # and not with learned ones (MSE 0.09 at the end); the shipped model uses learned positions
    position: str = "rope"

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        mc = ModelConfig(rung=self.rung, n_layers=self.n_layers, d_model=self.d_model,
                         n_heads=self.n_heads, patch_size=self.patch_size, dropout=self.dropout,
                         position=self.position)
        mix = dict(self.mix) if self.mix else "all"
        tc = TrainConfig(n_series=self.n_series, epochs=self.epochs, batch_size=self.batch_size,
                         lr=self.lr, seed=self.seed, mix=mix)
        return mc, tc


def unique_run_name() -> str:
    """A save name no other run has: the time and four random hex digits."""
    return f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def default_mix_weights() -> dict[str, float]:
    return dict(MIXES["all"])


class TrainingSession:
    """One browser session's training run: a Trainer plus play/pause state."""

    def __init__(self, settings: TrainSettings | None = None):
        self.settings = settings or TrainSettings()
        self.trainer = None
        self.running = False
        self.error: str | None = None
        self.saved_as: str | None = None
        self.default_name = unique_run_name()

    # controls (the page wires these to on_click callbacks)
    def _ensure(self) -> bool:
        if self.trainer is None:
            from .train import Trainer
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
        if self._ensure() and not self.trainer.done:
            self.running = True

    def pause(self) -> None:
        self.running = False

    def step(self, n_steps: int = 20) -> int:
        self.running = False
        if not self._ensure():
            return 0
        return self.trainer.run(n_steps)

    def stop(self) -> None:
        self.running = False
        if self.trainer is not None and not self.trainer.done:
            self.trainer.stop("stopped by user")

    def reset(self, settings: TrainSettings | None = None) -> None:
        self.running = False
        self.trainer = None
        self.error = None
        self.saved_as = None
        self.default_name = unique_run_name()
        if settings is not None:
            self.settings = settings

    def tick(self, seconds: float = 0.5) -> int:
        """Called by the page's fragment: train for about `seconds` while running."""
        if not self.running or self.trainer is None:
            return 0
        ran = self.trainer.run_for(seconds, chunk=10)
        if self.trainer.done:
            self.running = False
        return ran

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
        from .checkpoints import CheckpointError, safe_checkpoint_path, save_checkpoint
        if self.trainer is None:
            raise CheckpointError("nothing to save yet: start or step the training first")
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
    "position": "Positions: rotary (distances between patches) against learned (one vector each)",
    "padding": "Padding mask: the embedding knows which values are padding, or it does not",
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
                Variant("learned positions", _base(s, position="learned"), tc)]
    if kind == "padding":
        return [Variant("mask in the embedding", _base(s, input_mask=True), tc),
                Variant("no mask (padding looks like the mean)", _base(s, input_mask=False), tc)]
    raise KeyError(f"unknown experiment {kind!r}; known: {', '.join(EXPERIMENTS)}")


class ExperimentRun:
    """Trains a list of variants one after the other, a chunk per `advance()` call."""

    def __init__(self, kind: str, steps: int = 300, settings: TrainSettings | None = None):
        self.kind = kind
        self.steps = steps
        self.variants = experiment_variants(kind, steps, settings)
        self.eval_every = max(1, steps // 10)
        self.index = 0
        self.trainer = None
        self.results: dict[str, dict] = {}
        self.started_at = time.perf_counter()
        self.wall = 0.0
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.variants) or self.error is not None

    @property
    def progress(self) -> float:
        inner = 0.0 if self.trainer is None else min(1.0, self.trainer.step / self.steps)
        return min(1.0, (self.index + inner) / len(self.variants))

    @property
    def current(self) -> str | None:
        return None if self.done else self.variants[self.index].name

    def advance(self, seconds: float = 1.0) -> None:
        """Train the current variant for about `seconds`; move on when it reaches its budget."""
        if self.done:
            return
        from .train import Trainer
        t0 = time.perf_counter()
        v = self.variants[self.index]
        try:
            if self.trainer is None:
                self.trainer = Trainer(v.model_config, v.train_config, eval_every=self.eval_every,
                                       snapshot_every=self.steps, device="cpu")
            while time.perf_counter() - t0 < seconds and self.trainer.step < self.steps \
                    and not self.trainer.done:
                self.trainer.run(min(10, self.steps - self.trainer.step))
            if self.trainer.step >= self.steps or self.trainer.done:
                self._finish(v)
        except (ConfigError, SignalError, ValueError) as err:
            self.error = f"{v.name}: {err}"
        self.wall += time.perf_counter() - t0

    def run_all(self, seconds_per_call: float = 5.0) -> "ExperimentRun":
        while not self.done:
            self.advance(seconds_per_call)
        return self

    def _finish(self, v: Variant) -> None:
        t = self.trainer
        if not t.history or t.history[-1]["step"] != t.step:
            t.record()
        last = t.history[-1]
        self.results[v.name] = {
            "history": t.history, "grammar": {c: g["mse"] for c, g in last["grammar"].items()},
            "val_loss": last["val_loss"], "params": t.model.num_params(), "steps": t.step,
            "seconds": t.elapsed, "rung": v.model_config.rung,
            "loss_kind": "NLL" if v.model_config.probabilistic else "MSE",
        }
        self.trainer = None
        self.index += 1

    def headline(self) -> str | None:
        """One sentence with the experiment's point, once every variant has finished."""
        if not self.done or len(self.results) != len(self.variants):
            return None
        r = list(self.results.values())
        names = list(self.results)
        if self.kind == "generalization":
            case = self.variants[0].test_cases[0]
            a, b = r[0]["grammar"][case], r[1]["grammar"][case]
            return (f"On the {case} case, “{names[1]}” has next-patch MSE {b:.4f} against {a:.4f} "
                    f"for “{names[0]}” ({b / max(a, 1e-12):.1f}× the error).")
        if self.kind == "causal":
            return (f"“{names[1]}” ends at validation loss {r[1]['val_loss']:.3f} against "
                    f"{r[0]['val_loss']:.3f} for “{names[0]}”: it reads the answer off the future.")
        best = min(names, key=lambda n: self.results[n]["grammar"].get("sine", float("inf")))
        return f"Lowest sine-case MSE after {self.steps} steps: “{best}”."

    def table(self) -> list[dict]:
        rows = []
        for name, r in self.results.items():
            row = {"variant": name, "parameters": r["params"], "steps": r["steps"],
                   "train seconds": round(r["seconds"], 1), "loss": r["loss_kind"],
                   "final val loss": r["val_loss"]}
            row.update({f"MSE {c}": v for c, v in r["grammar"].items()})
            rows.append(row)
        return rows


# ---------------------------------------------------------------- forecasting

BAND_LEVELS = (0.5, 0.8, 0.95)
FORECAST_QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)


@dataclass
class ForecastResult:
    context: np.ndarray                       # what the model saw (whole patches)
    truth: np.ndarray                         # (H,) held-out values
    median: np.ndarray
    mean: np.ndarray
    bands: dict                               # coverage % -> (lo, hi)
    samples: np.ndarray                       # (n_samples, H)
    baselines: dict                           # name -> (H,) point forecast
    scores: dict                              # method -> score_forecast(...) dict
    period: int
    probabilistic: bool
    notes: list

    @property
    def horizon_t(self) -> np.ndarray:
        return np.arange(len(self.context), len(self.context) + len(self.truth))

    def table(self) -> list[dict]:
        keys = ("mae", "mse", "mase", "crps", "coverage_50", "coverage_80", "coverage_95")
        return [{"method": m, **{k: s.get(k) for k in keys}} for m, s in self.scores.items()]

    def csv(self) -> str:
        """time, truth, mean, median, every quantile band and every baseline, as CSV text."""
        import pandas as pd
        cols = {"time": self.horizon_t, "truth": self.truth, "mean": self.mean, "median": self.median}
        for cov, (lo, hi) in sorted(self.bands.items()):
            cols[f"lower_{cov}"], cols[f"upper_{cov}"] = lo, hi
        cols.update({f"baseline_{k.replace(' ', '_')}": v for k, v in self.baselines.items()})
        return pd.DataFrame(cols).to_csv(index=False)


def forecast_vs_baselines(model: PatchForecaster, values: np.ndarray, horizon_patches: int,
                          n_samples: int = 100, seed: int = 0) -> ForecastResult:
    """Hold out the last horizon_patches patches, forecast them from the rest with the model and
    with the naive, seasonal naive and linear baselines, and score every one against the truth."""
    from .evaluate import (detect_period, fit_linear_baseline, naive_forecast,
                           score_forecast, seasonal_naive_forecast)
    from .forecast import forecast
    P = model.config.patch_size
    values = np.asarray(values, dtype=np.float64).ravel()
    H = horizon_patches * P
    history, truth = values[:-H], values[-H:]
    fc = forecast(model, history, horizon_patches, n_samples=n_samples,
                  quantiles=FORECAST_QUANTILES, seed=seed)
    context = fc.context
    period = detect_period(context)
    baselines = {"naive": naive_forecast(context, H)}
    if period > 1 and len(context) >= period:
        baselines["seasonal naive"] = seasonal_naive_forecast(context, H, period)
    try:
        lin = fit_linear_baseline(context, replace(model.config, rung="linear"))
        baselines["linear"] = forecast(lin, context, horizon_patches, n_samples=1).mean
    except ValueError:
        pass
    pred = fc.samples if fc.probabilistic else fc.mean
    scores = {f"NanoTST ({model.config.rung})": score_forecast(truth, pred, context, period=period)}
    scores.update({k: score_forecast(truth, v, context, period=period) for k, v in baselines.items()})
    bands = {round(100 * lv): fc.interval(lv) for lv in BAND_LEVELS}
    return ForecastResult(context=context, truth=truth, median=fc.median, mean=fc.mean, bands=bands,
                          samples=fc.samples, baselines=baselines, scores=scores, period=period,
                          probabilistic=fc.probabilistic, notes=list(fc.notes))


# ---------------------------------------------------------------- attention

@dataclass
class AttentionAnalysis:
    maps: np.ndarray            # (L, H, N, N) query x key
    rollout: np.ndarray         # (N, N) attention flow through all layers (residual included)
    last_sources: np.ndarray    # (N,) what the last prediction draws on (rollout row)
    last_per_layer: np.ndarray  # (L, N) the last query's row per layer, heads averaged
    top: list                   # per query patch: [(key patch, weight), ...] (last layer, heads averaged)
    values: np.ndarray          # the series the model saw
    causal: bool


def attention_analysis(model: PatchForecaster, values: np.ndarray, k: int = 3) -> AttentionAnalysis | None:
    """Everything the Attention page shows, from nanotst.interpret; None for the linear rung."""
    from .interpret import (InspectError, attention_maps, attention_rollout, last_prediction_sources,
                          top_sources)
    try:
        maps = attention_maps(model, values)
    except InspectError:
        if model.config.rung == "linear":
            return None
        raise
    last = last_prediction_sources(maps)
    return AttentionAnalysis(maps=maps.weights, rollout=attention_rollout(maps),
                             last_sources=last.rollout, last_per_layer=last.per_layer,
                             top=top_sources(maps, k), values=maps.context, causal=maps.causal)


def top_sources_rows(a: AttentionAnalysis, patch_size: int) -> list[dict]:
    rows = []
    for q, sources in enumerate(a.top):
        row = {"query patch": q, "time range": f"{q * patch_size}–{(q + 1) * patch_size - 1}",
               "predicts patch": q + 1}
        for i, (j, w) in enumerate(sources, 1):
            row[f"source {i}"] = f"patch {j} ({w:.2f})"
        rows.append(row)
    return rows
