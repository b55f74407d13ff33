"""Checkpoints: save atomically, load safely, list what is there.

A checkpoint is a plain dict of Python scalars, lists and tensors:

    {"format": "nanotst-checkpoint", "version": 1, "model_config": {...}, "train_config": {...} | None,
     "state_dict": {...}, "history": [...], "snapshots": [...], "data_spec": {...}, "metrics": {...},
     "created": "2026-11-28T12:00:00+00:00", "name": ...}

It is always loaded with torch.load(..., weights_only=True): a file that is not a valid checkpoint
(random bytes, a truncated download, a pickle that would run code) gets a CheckpointError with a
one-line message, never code execution.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, ModelConfig, TrainConfig
from .files import atomic_write, remove_stale_temps
from .model import PatchForecaster, build_model, with_inputs, with_settings

FORMAT = "nanotst-checkpoint"
VERSION = 1
MAX_BYTES = 200 * 1024 * 1024
MAX_INFLATED_BYTES = 300 * 1024 * 1024   # what the file's zip entries may inflate to
REQUIRED_KEYS = ("format", "version", "model_config", "state_dict")
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class CheckpointError(ValueError):
    """A checkpoint cannot be saved or loaded; the one-line message says why."""


class CheckpointExists(CheckpointError):
    """A save without overwrite found a file of that name already there."""


@dataclass
class LoadedCheckpoint:
    model: PatchForecaster            # in eval mode, on the CPU
    model_config: ModelConfig
    train_config: TrainConfig | None
    history: list
    snapshots: list
    data_spec: dict | None
    metrics: dict | None
    path: str | None
    name: str | None = None
    created: str | None = None


@dataclass
class CheckpointInfo:
    name: str
    path: str
    size: int
    created: str | None = None
    rung: str | None = None
    params: int | None = None
    grammar: dict | None = None
    error: str | None = None          # set for a file that could not be loaded

    @property
    def ok(self) -> bool:
        return self.error is None


def _plain(obj):
    """Python scalars, lists and dicts only: what weights_only loading accepts back."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    text = text[0] if text else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---- save ----------------------------------------------------------------------------------------

def save_checkpoint(path, model: PatchForecaster, train_config: TrainConfig | None = None,
                    history: list | None = None, snapshots: list | None = None,
                    data_spec: dict | None = None, metrics: dict | None = None,
                    name: str | None = None, overwrite: bool = True) -> Path:
    """Write a checkpoint atomically: a temp file in the same folder, then os.replace().
    overwrite=False refuses (CheckpointExists) when the file is there, atomically."""
    path = Path(path)
    if metrics is None:
        from .evaluate import grammar_eval, grammar_noise_floor
        cfg = model.config
        metrics = {"grammar": grammar_eval(model),
                   "noise_floor": grammar_noise_floor(cfg.context_length, cfg.patch_size)}
    payload = {
        "format": FORMAT, "version": VERSION,
        "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else _plain(train_config.to_dict()),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "history": _plain(history or []),
        "snapshots": _plain(snapshots or []),
        "data_spec": _plain(data_spec),
        "metrics": _plain(metrics),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": name if name is not None else path.stem,
    }
    try:
        atomic_write(path, lambda f: torch.save(payload, f), exclusive=not overwrite)
    except FileExistsError:
        raise CheckpointExists(f"{path.name} already exists; overwrite it or choose another name") from None
    except Exception as err:  # noqa: BLE001 - any failure to write is one message, nothing is left behind
        raise CheckpointError(f"could not save checkpoint {path}: {_one_line(err)}") from None
    return path


# ---- load ----------------------------------------------------------------------------------------

def _read_bytes(source, label: str, max_bytes: int) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise CheckpointError(f"{label}: no such checkpoint file")
        size = p.stat().st_size
        if size > max_bytes:
            raise CheckpointError(f"{label}: file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit")
        try:
            return p.read_bytes()
        except OSError as err:
            raise CheckpointError(f"{label}: cannot read: {_one_line(err)}") from None
    data = source.read(max_bytes + 1)       # a file object (an upload): never read past the limit
    if isinstance(data, str):
        raise CheckpointError(f"{label}: open the checkpoint in binary mode")
    if len(data) > max_bytes:
        raise CheckpointError(f"{label}: file is over the {max_bytes / 2**20:.0f} MB limit")
    return data


def _check_inflated_size(data: bytes, label: str) -> None:
    """torch.save writes a zip; its entries may be compressed, so the file size alone does not
    bound what loading it allocates. Sum the sizes the entries declare before anything inflates."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return                            # the legacy format stores tensors uncompressed
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{label}: not a readable NanoTST checkpoint ({_one_line(err, 100)})") from None
    if inflated > MAX_INFLATED_BYTES:
        raise CheckpointError(f"{label}: its contents inflate to {inflated / 2**20:.0f} MB, over the "
                              f"{MAX_INFLATED_BYTES / 2**20:.0f} MB limit")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_metadata(ckpt: dict, label: str) -> None:
    """history, snapshots, metrics and data_spec as the app and the CLI read them."""
    def bad(field: str, why: str):
        raise CheckpointError(f"{label}: {field} {why}")
    history = ckpt.get("history")
    if history is not None:
        if not isinstance(history, list):
            bad("history", "is not a list of records")
        for h in history:
            if not isinstance(h, dict) or not isinstance(h.get("step"), int):
                bad("history", "has a record that is not a dict with an integer step")
            for key in ("train_loss", "val_loss", "elapsed", "epoch"):
                if h.get(key) is not None and not _is_number(h[key]):
                    bad("history", f"has a {key} that is not a number")
            if h.get("grammar") is not None and not _grammar_ok(h["grammar"]):
                bad("history", "has grammar results that are not {case: {mse, sigma}}")
    snapshots = ckpt.get("snapshots")
    if snapshots is not None:
        if not isinstance(snapshots, list) or not all(
                isinstance(s, dict) and isinstance(s.get("step"), int) and isinstance(s.get("grammar"), dict)
                and all(isinstance(c, dict) for c in s["grammar"].values()) for s in snapshots):
            bad("snapshots", "are not a list of {step, grammar} records")
    for key in ("metrics", "data_spec"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            bad(key, "is not a dict")
    grammar = (ckpt.get("metrics") or {}).get("grammar")
    if grammar is not None and not _grammar_ok(grammar):
        bad("metrics", "has grammar results that are not {case: {mse, sigma}}")
    for key in ("name", "created"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], str):
            bad(key, "is not text")


def _grammar_ok(grammar) -> bool:
    return isinstance(grammar, dict) and all(
        isinstance(r, dict) and _is_number(r.get("mse")) and (r.get("sigma") is None or _is_number(r["sigma"]))
        for r in grammar.values())


def _load_reason(err: Exception) -> str:
    """torch's weights_only errors are long; keep the line that says what was refused."""
    text = str(err)
    if "Weights only load failed" in text:
        for line in text.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith(("Please file", "Check the documentation", "WeightsUnpickler error: ")):
                return f"refused unsafe or unknown content: {_one_line(ValueError(line), 100)}"
            if line.startswith("WeightsUnpickler error: ") and len(line) > 24:
                return f"refused unsafe or unknown content: {_one_line(ValueError(line[24:]), 100)}"
        return "refused unsafe or unknown content"
    return f"{type(err).__name__}: {_one_line(err, 100)}"


def _check_weights_finite(state: dict, label: str) -> None:
    for k, v in state.items():
        if not v.is_floating_point() or not torch.isfinite(v).all():
            raise CheckpointError(f"{label}: weight {k} is not finite floating point")


def _check_weights(model: PatchForecaster, state: dict, label: str, values: bool = True) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{label}: state_dict is not a dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"{label}: weights do not fit the config: {len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        raise CheckpointError(f"{label}: weights do not fit the config: {len(unexpected)} unexpected (e.g. {unexpected[0]})")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{label}: weights do not fit the config: {k} has shape "
                                  f"{tuple(state[k].shape)}, expected {tuple(v.shape)}")
    if values:
        _check_weights_finite(state, label)


def load_checkpoint(source, max_bytes: int = MAX_BYTES) -> LoadedCheckpoint:
    """Load a checkpoint from a path or a binary file object, refusing anything not valid."""
    is_path = isinstance(source, (str, os.PathLike))
    label = str(source) if is_path else str(getattr(source, "name", "uploaded checkpoint"))
    data = _read_bytes(source, label, max_bytes)
    _check_inflated_size(data, label)
    try:
        with warnings.catch_warnings():   # odd pickles warn before they are refused; the error says enough
            warnings.simplefilter("ignore")
            ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{label}: not a readable NanoTST checkpoint ({_load_reason(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{label}: not a NanoTST checkpoint (format tag missing)")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{label}: checkpoint is missing {', '.join(missing)}")
    if ckpt["version"] != VERSION:
        raise CheckpointError(f"{label}: checkpoint version {ckpt['version']!r} is not supported (expected {VERSION})")
    _check_metadata(ckpt, label)
    config_dict = ckpt["model_config"]
    if isinstance(config_dict, dict):
        # written before these switches existed: learned positions, the patch values only
        config_dict = {"position": "learned", "input_mask": False, **config_dict}
    try:
        model_config = ModelConfig.from_dict(config_dict)
        tc = ckpt.get("train_config")
        train_config = None if tc is None else TrainConfig.from_dict(tc)
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{label}: invalid config: {_one_line(err)}") from None
    # compare the weights with the config on the meta device (no memory) before building it
    with torch.device("meta"):
        _check_weights(build_model(model_config), ckpt["state_dict"], label, values=False)
    _check_weights_finite(ckpt["state_dict"], label)
    model = build_model(model_config)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return LoadedCheckpoint(model=model, model_config=model_config, train_config=train_config,
                            history=list(ckpt.get("history") or []), snapshots=list(ckpt.get("snapshots") or []),
                            data_spec=ckpt.get("data_spec"), metrics=ckpt.get("metrics"),
                            path=str(source) if is_path else None, name=ckpt.get("name"),
                            created=ckpt.get("created"))


def average_checkpoints(sources, out, name: str | None = None, **settings) -> Path:
    """A model soup (Wortsman et al. 2022): one model whose every weight is the mean of that weight
    in the given checkpoints, which must share one architecture (and should share a start: runs
    continued from one checkpoint sit in one basin, so their mean is a model too, often a better
    one). A model without an input the others read (config.previous_patch, seasonal_patch) takes
    part with zero weights for it, as training from it with that input would start (with_inputs).
    Saved atomically to `out` with the first checkpoint's training record and data spec (its
    `averaged_from` naming every source) and its grammar metrics measured anew. settings: config
    fields no weight depends on (model.WEIGHTLESS) that the mean gets, e.g. season_slack; with
    settings, one checkpoint is enough: its copy with those settings."""
    sources = list(sources)
    if len(sources) < 2 and not settings:
        raise CheckpointError("averaging needs at least two checkpoints (or one and a setting to change)")
    configs = [load_checkpoint(source).model_config for source in sources]
    inputs = {"previous_patch": any(c.previous_patch for c in configs),
              "seasonal_patch": any(c.seasonal_patch for c in configs)}
    widened = lambda ck: with_inputs(ck.model, **inputs)
    first = load_checkpoint(sources[0])
    model = widened(first)
    total = {key: value.double() for key, value in model.state_dict().items()}
    for source in sources[1:]:             # one at a time: memory holds two models, not all
        other = widened(load_checkpoint(source))
        if other.config != model.config:
            raise CheckpointError(f"{source}: its model config differs from {sources[0]}'s; "
                                  f"only one architecture can be averaged")
        for key, value in other.state_dict().items():
            total[key] += value.double()
    model.load_state_dict({key: (value / len(sources)).float() for key, value in total.items()})
    model = with_settings(model, **settings)
    data_spec = {**(first.data_spec or {}), "averaged_from": [str(source) for source in sources]}
    return save_checkpoint(out, model, first.train_config, first.history, first.snapshots, data_spec,
                           name=name)


def list_checkpoints(folder=CHECKPOINT_DIR) -> list[CheckpointInfo]:
    """Every *.pt in folder, sorted by name; files that fail to load are listed with an error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    remove_stale_temps(folder)
    infos = []
    for p in sorted(folder.glob("*.pt")):
        info = CheckpointInfo(name=p.stem, path=str(p), size=p.stat().st_size)
        try:
            ck = load_checkpoint(p)
        except CheckpointError as err:
            info.error = str(err)
        else:
            info.created = ck.created
            info.rung = ck.model_config.rung
            info.params = ck.model.num_params()
            info.grammar = (ck.metrics or {}).get("grammar")
        infos.append(info)
    return infos


def safe_checkpoint_path(folder, name: str) -> Path:
    """A user-given name -> folder/<name>.pt, refusing anything that could escape folder."""
    if not isinstance(name, str):
        raise CheckpointError("checkpoint name must be text")
    clean = name.strip().replace(" ", "-")
    if clean.endswith(".pt"):
        clean = clean[:-3]
    if not clean:
        raise CheckpointError("checkpoint name is empty")
    if len(clean) > 100 or ".." in clean or not _NAME_RE.match(clean):
        raise CheckpointError(f"invalid checkpoint name {name!r}: use letters, digits, - _ . only")
    folder = Path(folder).resolve()
    path = (folder / f"{clean}.pt").resolve()
    if path.parent != folder:
        raise CheckpointError(f"invalid checkpoint name {name!r}")
    return path


# ---------------------------------------------------------------- the active-model sources
# (the app's sidebar: the shipped model, saved runs, an upload, an untrained fallback)

CHECKPOINT_DIR_ENV = "NANOTST_CHECKPOINT_DIR"
DEFAULT_CHECKPOINT_ENV = "NANOTST_DEFAULT_CHECKPOINT"


def checkpoint_dir() -> Path:
    """Where runs are saved and listed: $NANOTST_CHECKPOINT_DIR, else checkpoints/."""
    env = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(env) if env else CHECKPOINT_DIR


def default_checkpoint_path() -> Path:
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
    path = Path(path)
    ck = load_checkpoint(path)
    key = f"file:{path.resolve()}:{path.stat().st_mtime_ns}"
    source = "default" if path.resolve() == default_checkpoint_path().resolve() else "saved"
    return from_loaded(ck, key, ck.name or path.stem, source)


def load_upload(data: bytes, name: str) -> ActiveModel:
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
        if tc.flip:
            card["training"]["upside down"] = f"{tc.flip:.0%} of each batch"
        # a run started from another checkpoint's weights (train --init): the numbers above are
        # this run's only
        if (active.data_spec or {}).get("init_from"):
            card["training"]["continued from"] = active.data_spec["init_from"]
        # a mean of several models' weights (python -m nanotst average): the record is the first's
        averaged = (active.data_spec or {}).get("averaged_from")
        if isinstance(averaged, list) and averaged:
            card["training"]["averaged from"] = f"{len(averaged)} models: " + ", ".join(
                Path(str(name)).stem for name in averaged)
    if active.data_spec:
        card["data"] = active.data_spec
    grammar = (active.metrics or {}).get("grammar")
    if grammar is None and active.history:
        grammar = active.history[-1].get("grammar")
    card["grammar"] = grammar
    card["noise_floor"] = (active.metrics or {}).get("noise_floor")
    return card
