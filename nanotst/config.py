"""Configuration dataclasses for NanoTST: validated on construction, to and from plain dicts.

A checkpoint stores these as dicts of Python scalars, so they must round-trip exactly and
refuse anything they do not know.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

RUNGS = ("linear", "attention", "transformer", "nanotst")
"""The build ladder, in the order a learner meets it (see model.py)."""

LR_SCHEDULES = ("constant", "cosine")
POSITIONS = ("learned", "rope", "both")
"""How a patch's place is encoded: a learned vector per position (counted back from the newest
patch), rotary embeddings of q and k (attention sees only how far apart two patches are), or
both at once (the learned vector says where a patch is, the rotation how far back a key is)."""


# Upper bounds: every documented recipe fits far inside them, and a config from a file (a
# checkpoint, a CLI flag) can never ask for a model or a dataset that fills memory or hangs.
MAX_CONTEXT = 8192
MAX_PATCH = 1024
MAX_D_MODEL = 1024
MAX_HEADS = 64
MAX_LAYERS = 32
MAX_FFN_MULT = 16
MAX_PARAMS = 60_000_000          # about 240 MB of float32 weights
MAX_DATASET_VALUES = 100_000_000  # n_series x series length: 400 MB of float32
MAX_EPOCHS = 100_000
MAX_BATCH = 4096
MAX_SEASON_CYCLES = 8            # the seasonal patch averages at most this many seasons back


class ConfigError(ValueError):
    """A config value is out of range; the message names the field."""


def _require(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{field_name}: {message}")


def _positive_int(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 name, f"must be a positive integer, got {value!r}")


def _at_most(obj, limits: dict) -> None:
    for name, limit in limits.items():
        value = getattr(obj, name)
        _require(value <= limit, name, f"must be at most {limit:,}, got {value:,}")


def _from_dict(cls, data: dict):
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown {cls.__name__} field")
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    rung: str = "nanotst"        # which rung of the build ladder
    context_length: int = 512    # values the model sees at most
    patch_size: int = 32         # values per patch (one token)
    d_model: int = 128           # embedding width
    n_heads: int = 4
    n_layers: int = 4
    ffn_mult: int = 4            # FFN hidden width = ffn_mult * d_model
    dropout: float = 0.1
    causal: bool = True          # False lets every patch see the future (the "cheating" experiment)
    min_sigma: float = 1e-3      # floor on the predicted standard deviation
    position: str = "learned"    # see POSITIONS
    input_mask: bool = True      # the patch embedding also reads which values are padding
    previous_patch: bool = False  # ... and the patch before it: a token sees 2 patches of values
    seasonal_patch: bool = False  # ... and the values one season before the patch it predicts
    seasonal_level: bool = False  # ... shifted to the token's level (needs seasonal_patch)
    season_slack: float = 0.0    # a shorter season wins within this share of the best's correlation
    season_cycles: int = 1       # the seasonal patch: the mean of this many seasons back
    choose_cycles: bool = False  # ... or of the 1 .. season_cycles that forecast the recent patches best
    short_seasons: bool = False  # a season shorter than a patch: its last cycle, repeated
    mirror: bool = False         # forecast(): every other path forecasts the series upside down

    def __post_init__(self):
        _require(self.rung in RUNGS, "rung", f"must be one of {', '.join(RUNGS)}, got {self.rung!r}")
        _positive_int(self, "context_length", "patch_size", "d_model", "n_heads", "n_layers", "ffn_mult")
        _at_most(self, {"context_length": MAX_CONTEXT, "patch_size": MAX_PATCH, "d_model": MAX_D_MODEL,
                        "n_heads": MAX_HEADS, "n_layers": MAX_LAYERS, "ffn_mult": MAX_FFN_MULT})
        _require(self.context_length % self.patch_size == 0, "patch_size",
                 f"{self.patch_size} does not divide context_length {self.context_length}")
        _require(self.context_length // self.patch_size >= 2, "patch_size",
                 "the context must hold at least 2 patches")
        _require(self.d_model % self.n_heads == 0, "d_model",
                 f"{self.d_model} is not divisible by n_heads {self.n_heads}")
        _require(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0,
                 "dropout", f"must be in [0, 1), got {self.dropout!r}")
        _require(isinstance(self.causal, bool), "causal", f"must be true or false, got {self.causal!r}")
        _require(self.position in POSITIONS, "position",
                 f"must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        for name in ("input_mask", "previous_patch", "seasonal_patch", "seasonal_level", "choose_cycles",
                     "short_seasons", "mirror"):
            _require(isinstance(getattr(self, name), bool), name,
                     f"must be true or false, got {getattr(self, name)!r}")
        _require(isinstance(self.season_slack, (int, float)) and 0.0 <= self.season_slack < 1.0,
                 "season_slack", f"must be in [0, 1), got {self.season_slack!r}")
        _require(isinstance(self.season_cycles, int) and not isinstance(self.season_cycles, bool)
                 and 1 <= self.season_cycles <= MAX_SEASON_CYCLES, "season_cycles",
                 f"must be a whole number from 1 to {MAX_SEASON_CYCLES}, got {self.season_cycles!r}")
        _require(self.seasonal_patch or not self.seasonal_level, "seasonal_level",
                 "shifts the seasonal patch, so it needs seasonal_patch")
        _require(isinstance(self.min_sigma, (int, float)) and 0 < self.min_sigma < 1e6,
                 "min_sigma", f"must be positive, got {self.min_sigma!r}")
        _require(self.approx_params <= MAX_PARAMS, "d_model",
                 f"this config has about {self.approx_params:,} parameters; the limit is {MAX_PARAMS:,}")

    @property
    def approx_params(self) -> int:
        """Parameters of the blocks and embeddings (the bulk of any rung), without building it."""
        D, P = self.d_model, self.patch_size
        block = 4 * D * D + 2 * self.ffn_mult * D * D
        embed = 2 * P * D * (1 + self.previous_patch + self.seasonal_patch)
        return self.n_layers * block + embed + self.n_patches * D + 2 * P * D

    @property
    def n_patches(self) -> int:
        return self.context_length // self.patch_size

    @property
    def probabilistic(self) -> bool:
        """Only the last rung predicts a sigma."""
        return self.rung == "nanotst"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    n_series: int = 2000         # the fixed training set, reused every epoch
    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    val_fraction: float = 0.1    # extra validation series, as a fraction of n_series
    seed: int = 0
    mix: str | dict = "all"      # a preset name from data.MIXES, or family -> weight
    lr_schedule: str = "constant"  # or "cosine": decay from lr to lr/10 over the run
    nll_beta: float = 0.0        # beta-NLL (Seitzer et al. 2022): 0 is the plain Gaussian NLL
    flip: float = 0.0            # the share of each batch's series turned upside down (x -> -x)

    def __post_init__(self):
        _positive_int(self, "n_series", "epochs", "batch_size")
        _at_most(self, {"epochs": MAX_EPOCHS, "batch_size": MAX_BATCH})
        # (context + patch) is not known here; 8192 + 1024 values a series bounds it
        _require(self.n_series * (1 + self.val_fraction) <= MAX_DATASET_VALUES // 544, "n_series",
                 f"must be at most {MAX_DATASET_VALUES // 544:,} (memory), got {self.n_series:,}")
        _require(isinstance(self.lr, (int, float)) and 0 < self.lr < float("inf"), "lr",
                 f"must be a positive finite number, got {self.lr!r}")
        _require(isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < float("inf"),
                 "weight_decay", f"must be a finite number >= 0, got {self.weight_decay!r}")
        _require(isinstance(self.grad_clip, (int, float)) and 0 < self.grad_clip < float("inf"),
                 "grad_clip", f"must be a positive finite number, got {self.grad_clip!r}")
        _require(isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction <= 1,
                 "val_fraction", f"must be in [0, 1], got {self.val_fraction!r}")
        _require(isinstance(self.seed, int) and not isinstance(self.seed, bool)
                 and 0 <= self.seed < 2**31, "seed",
                 f"must be an integer from 0 to 2^31 - 1, got {self.seed!r}")
        _require(isinstance(self.nll_beta, (int, float)) and not isinstance(self.nll_beta, bool)
                 and 0 <= self.nll_beta <= 1, "nll_beta", f"must be in [0, 1], got {self.nll_beta!r}")
        _require(isinstance(self.flip, (int, float)) and not isinstance(self.flip, bool)
                 and 0 <= self.flip <= 1, "flip", f"must be in [0, 1], got {self.flip!r}")
        _require(self.lr_schedule in LR_SCHEDULES, "lr_schedule",
                 f"must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        from .data import SignalError, resolve_mix
        try:
            resolve_mix(self.mix)
        except (SignalError, TypeError, AttributeError) as err:
            raise ConfigError(f"mix: {err}") from None

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_series // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return _from_dict(cls, data)
