"""Synthetic signals: families with known latent factors, mixtures, grammar and probe cases.

Every generated series carries the factors that made it (family, frequency, amplitude, trend,
offset, noise std, jump position and size), so the app can show the true noise level beside the
model's predicted sigma. Everything is deterministic given a seed.

Time runs over t in [0, 1) across the series, so `freq` is cycles per series and `trend` is the
rise over the whole series (the original generator's convention).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FAMILIES = (
    "flat", "trend_up", "trend_down", "sine_low", "sine_high", "sine_trend", "noisy_sine",
    "step", "noise", "multi_sine", "sawtooth", "square", "random_walk", "seasonal",
)

MIXES = {
    # every family: what the shipped model is trained on, so the grammar really holds
    "all": {"flat": 1.0, "trend_up": 1.0, "trend_down": 1.0, "sine_low": 1.0, "sine_high": 1.0,
            "sine_trend": 2.0, "noisy_sine": 4.0, "step": 0.75, "noise": 0.5, "multi_sine": 1.0,
            "sawtooth": 0.5, "square": 0.5, "random_walk": 0.5, "seasonal": 6.0},
    # the original generator: offset + trend*t + amp*sin(2*pi*freq*t) + 0.1 noise
    "original": {"sine_trend": 1.0},
    # no periodic data at all: the generalization experiment trains on this and tests on sine
    "no_periodic": {"flat": 1.0, "trend_up": 1.0, "trend_down": 1.0, "step": 1.0,
                    "noise": 0.5, "random_walk": 1.0},
}
DEFAULT_MIX = "all"


class SignalError(ValueError):
    """A signal parameter or mix is invalid; the message says which."""


@dataclass(frozen=True)
class Factors:
    """The latent factors behind one series. Unused factors are 0."""
    family: str
    freq: float = 0.0          # cycles per series
    amplitude: float = 0.0
    trend: float = 0.0         # total rise over the series
    offset: float = 0.0
    noise_std: float = 0.0
    jump_pos: int = 0          # index where a step jump happens (0: no jump)
    jump_size: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SignalSpec:
    """A hand-designed signal: what the Signals page's controls set.

    kind: one of "sine", "sawtooth", "square", "flat", "random_walk", "noise".
    period: samples per cycle (periodic kinds). slope: total rise over the series.
    """
    kind: str = "sine"
    length: int = 512
    period: float = 128.0
    amplitude: float = 1.0
    slope: float = 0.0
    offset: float = 0.0
    noise: float = 0.0
    jump_pos: int = 0
    jump_size: float = 0.0
    seed: int = 0


SPEC_KINDS = ("sine", "sawtooth", "square", "flat", "random_walk", "noise")


def _wave(kind: str, phase: np.ndarray) -> np.ndarray:
    """A unit-amplitude periodic shape; phase is in cycles."""
    if kind == "sine":
        return np.sin(2 * np.pi * phase)
    if kind == "sawtooth":
        return 2.0 * (phase - np.floor(phase + 0.5))
    if kind == "square":
        return np.sign(np.sin(2 * np.pi * phase) + 1e-12)
    raise SignalError(f"unknown wave shape {kind!r}")


def design_signal(spec: SignalSpec) -> tuple[np.ndarray, Factors]:
    """Build one series from explicit parameters. Returns (values, factors)."""
    if spec.kind not in SPEC_KINDS:
        raise SignalError(f"kind must be one of {', '.join(SPEC_KINDS)}, got {spec.kind!r}")
    if spec.length < 2:
        raise SignalError(f"length must be at least 2, got {spec.length}")
    if spec.kind in ("sine", "sawtooth", "square") and not spec.period > 1:
        raise SignalError(f"period must be more than 1 sample, got {spec.period}")
    if spec.noise < 0:
        raise SignalError(f"noise must be >= 0, got {spec.noise}")
    if not 0 <= spec.jump_pos < spec.length:
        raise SignalError(f"jump position must be in [0, {spec.length}), got {spec.jump_pos}")
    rng = np.random.default_rng(spec.seed)
    n = spec.length
    t = np.arange(n) / n
    values = spec.offset + spec.slope * t
    freq = 0.0
    if spec.kind in ("sine", "sawtooth", "square"):
        freq = n / spec.period
        values = values + spec.amplitude * _wave(spec.kind, np.arange(n) / spec.period)
    elif spec.kind == "random_walk":
        values = values + spec.amplitude * np.cumsum(rng.normal(0, 1, n)) / np.sqrt(n)
    elif spec.kind == "noise":
        values = values + spec.amplitude * rng.normal(0, 1, n)
    if spec.jump_pos > 0:
        values = values + spec.jump_size * (np.arange(n) >= spec.jump_pos)
    values = values + spec.noise * rng.normal(0, 1, n)
    family = {"sine": "sine_trend" if spec.slope else "sine_low"}.get(spec.kind, spec.kind)
    if spec.jump_pos > 0 and spec.kind == "flat":
        family = "step"
    factors = Factors(family=family, freq=freq, amplitude=spec.amplitude, trend=spec.slope,
                      offset=spec.offset, noise_std=spec.noise, jump_pos=spec.jump_pos,
                      jump_size=spec.jump_size if spec.jump_pos > 0 else 0.0)
    return values.astype(np.float32), factors


def generate(family: str, length: int, rng: np.random.Generator) -> tuple[np.ndarray, Factors]:
    """Draw one random series of a family."""
    t = np.arange(length) / length
    u = rng.uniform
    offset = u(-5, 5)
    if family == "flat":
        f = Factors(family, offset=offset)
        return np.full(length, offset), f
    if family in ("trend_up", "trend_down"):
        sign = 1.0 if family == "trend_up" else -1.0
        trend = sign * u(0.5, 5.0)
        noise = u(0, 0.05) * abs(trend) if rng.random() < 0.5 else 0.0
        values = offset + trend * t + noise * rng.normal(0, 1, length)
        return values, Factors(family, trend=trend, offset=offset, noise_std=noise)
    if family in ("sine_low", "sine_high", "sine_trend", "noisy_sine"):
        freq = {"sine_low": (1, 5), "sine_high": (8, 20), "sine_trend": (2, 19),
                "noisy_sine": (2, 12)}[family]
        freq = u(*freq)
        amp = u(0.5, 2.5)
        phase = u(0, 1) if family != "sine_trend" else 0.0
        trend = u(-0.5, 0.5) if family == "sine_trend" else 0.0
        noise = {"sine_trend": 0.1, "noisy_sine": u(0.1, 0.5) * amp}.get(family, 0.0)
        values = offset + trend * t + amp * np.sin(2 * np.pi * (freq * t + phase))
        values = values + noise * rng.normal(0, 1, length)
        return values, Factors(family, freq=freq, amplitude=amp, trend=trend, offset=offset,
                               noise_std=noise)
    if family == "step":
        pos = int(rng.integers(length // 8, length - length // 8))
        size = u(0.5, 3.0) * rng.choice([-1.0, 1.0])
        noise = u(0, 0.1)
        values = offset + size * (np.arange(length) >= pos) + noise * rng.normal(0, 1, length)
        return values, Factors(family, offset=offset, noise_std=noise, jump_pos=pos, jump_size=size)
    if family == "noise":
        std = u(0.1, 2.0)
        return offset + std * rng.normal(0, 1, length), Factors(family, offset=offset, noise_std=std)
    if family == "multi_sine":
        n_comp = int(rng.integers(2, 4))
        freqs = u(1, 16, n_comp)
        amps = u(0.3, 2.0, n_comp)
        phases = u(0, 1, n_comp)
        values = offset + (amps[:, None] * np.sin(2 * np.pi * (freqs[:, None] * t + phases[:, None]))).sum(0)
        noise = u(0, 0.1)
        values = values + noise * rng.normal(0, 1, length)
        return values, Factors(family, freq=float(freqs[0]), amplitude=float(amps.sum()),
                               offset=offset, noise_std=noise)
    if family in ("sawtooth", "square"):
        freq = u(2, 12)
        amp = u(0.5, 2.5)
        noise = u(0, 0.1)
        values = offset + amp * _wave(family, freq * t + u(0, 1)) + noise * rng.normal(0, 1, length)
        return values, Factors(family, freq=freq, amplitude=amp, offset=offset, noise_std=noise)
    if family == "random_walk":
        std = u(0.05, 0.5)
        values = offset + np.cumsum(std * rng.normal(0, 1, length))
        return values, Factors(family, offset=offset, noise_std=std)
    if family == "seasonal":
        return _seasonal(length, rng, offset)
    raise SignalError(f"unknown signal family {family!r}; known: {', '.join(FAMILIES)}")


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance AR(1) noise: phi 0 is white, phi near 1 wanders slowly."""
    eps = rng.normal(0, 1, n)
    out = np.empty(n)
    out[0] = eps[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + np.sqrt(1 - phi * phi) * eps[i]
    return out


def _seasonal(length: int, rng: np.random.Generator, offset: float) -> tuple[np.ndarray, Factors]:
    """What real seasonal data looks like: a season of 4-96 samples (often shorter than a patch)
    with a few harmonics, under a trend that may dwarf it, with drifting anomalies, red noise,
    sometimes a level shift, a slowly changing amplitude or period, or a rectified shape
    (sunspot-like cycles that never go below zero)."""
    u = rng.uniform
    n = np.arange(length)
    period = float(np.exp(u(np.log(4), np.log(96))))
    amp = u(0.3, 2.0)
    cycles = n / period
    if rng.random() < 0.25:                  # the period drifts: quasi-periodic cycles
        cycles = np.cumsum(np.exp(0.12 * _ar1(length, 0.995, rng))) / period
    season = np.zeros(length)
    for k in range(1, int(rng.integers(1, 4)) + 1):
        weight = 1.0 if k == 1 else u(0, 0.6) / k
        season += weight * np.sin(2 * np.pi * (k * cycles + u(0, 1)))
    if rng.random() < 0.15:                  # rectified cycles, e.g. sunspots
        season = np.abs(np.sin(np.pi * (cycles + u(0, 1)))) ** u(1, 2) * 2 - 1
    if rng.random() < 0.3:                   # the amplitude changes slowly
        season *= 1 + u(0, 0.6) * np.sin(2 * np.pi * (u(0.3, 3) * n / length + u(0, 1)))
    values = amp * season
    trend = 0.0
    if rng.random() < 0.7:                   # total rise, up to 30x the seasonal amplitude
        trend = amp * float(np.exp(u(np.log(0.2), np.log(30)))) * rng.choice([-1.0, 1.0])
        t = n / length
        bend = u(-0.5, 0.5) if rng.random() < 0.3 else 0.0
        values += trend * (t + bend * (t * t - t))
    if rng.random() < 0.3:                   # slow anomalies (El Nino-like)
        values += amp * u(0.1, 1.0) * _ar1(length, u(0.9, 0.99), rng)
    jump_pos, jump_size = 0, 0.0
    if rng.random() < 0.15:
        jump_pos = int(rng.integers(length // 8, length - length // 8))
        jump_size = amp * u(0.5, 3.0) * rng.choice([-1.0, 1.0])
        values += jump_size * (n >= jump_pos)
    noise = amp * u(0, 0.3)
    values += noise * _ar1(length, u(0, 0.8), rng)
    return offset + values, Factors("seasonal", freq=length / period, amplitude=amp, trend=trend,
                                    offset=offset, noise_std=noise, jump_pos=jump_pos,
                                    jump_size=jump_size)


def resolve_mix(mix: dict | str | None) -> dict[str, float]:
    """Turn a mix (a preset name or family -> weight) into normalized family weights."""
    if mix is None:
        mix = DEFAULT_MIX
    if isinstance(mix, str):
        if mix not in MIXES:
            raise SignalError(f"unknown mix {mix!r}; presets: {', '.join(MIXES)}")
        mix = MIXES[mix]
    weights = {}
    for name, weight in mix.items():
        if name in MIXES:  # a preset inside a mix expands to its families
            for fam, w in resolve_mix(name).items():
                weights[fam] = weights.get(fam, 0.0) + w * float(weight)
            continue
        if name not in FAMILIES:
            raise SignalError(f"unknown signal family {name!r}; known: {', '.join(FAMILIES)}")
        if not np.isfinite(weight) or weight < 0:
            raise SignalError(f"weight for {name!r} must be a finite number >= 0, got {weight!r}")
        weights[name] = weights.get(name, 0.0) + float(weight)
    total = sum(weights.values())
    if total <= 0:
        raise SignalError("the mix needs at least one family with a positive weight")
    return {name: w / total for name, w in weights.items() if w > 0}


@dataclass
class SeriesSet:
    """A batch of series with their latent factors."""
    values: np.ndarray            # (N, L) float32
    factors: list[Factors]

    def __len__(self) -> int:
        return len(self.values)

    def families(self) -> np.ndarray:
        return np.array([f.family for f in self.factors])


def make_dataset(n_series: int, length: int = 512, mix: dict | str | None = None,
                 seed: int = 0) -> SeriesSet:
    """Draw n_series series from a family mixture, deterministically from seed."""
    if n_series <= 0:
        raise SignalError(f"n_series must be positive, got {n_series}")
    weights = resolve_mix(mix)
    names = list(weights)
    rng = np.random.default_rng(seed)
    choice = rng.choice(len(names), size=n_series, p=np.array([weights[n] for n in names]))
    values = np.empty((n_series, length), dtype=np.float32)
    factors = []
    for i, k in enumerate(choice):
        values[i], f = generate(names[k], length, rng)
        factors.append(f)
    return SeriesSet(values, factors)


def grammar_cases(length: int = 512, seed: int = 0) -> dict[str, np.ndarray]:
    """The original grammar test: flat = 3.0; line 0 -> 5; sine over 8*pi; noisy = sine + 0.2 noise."""
    sine = np.sin(np.linspace(0, 8 * np.pi, length))
    noise = np.random.default_rng(seed).normal(0, 0.2, length)
    return {
        "flat": np.full(length, 3.0, dtype=np.float32),
        "line": np.linspace(0, 5, length).astype(np.float32),
        "sine": sine.astype(np.float32),
        "noisy": (sine + noise).astype(np.float32),
    }


GRAMMAR_NOISE_STD = {"flat": 0.0, "line": 0.0, "sine": 0.0, "noisy": 0.2}
"""The true noise std of each grammar case, in original units."""


def probe_cases(length: int = 512, seed: int = 0) -> dict[str, tuple[np.ndarray, Factors]]:
    """Canonical probe signals, one per behaviour a learner should see."""
    specs = {
        "trend_up": SignalSpec("flat", length, slope=4.0, offset=-2.0, seed=seed),
        "trend_down": SignalSpec("flat", length, slope=-4.0, offset=2.0, seed=seed),
        "sine_low": SignalSpec("sine", length, period=length / 3, amplitude=1.5, seed=seed),
        "sine_high": SignalSpec("sine", length, period=length / 14, amplitude=1.0, seed=seed),
        "jump": SignalSpec("flat", length, offset=1.0, jump_pos=length * 5 // 8, jump_size=2.0,
                           noise=0.05, seed=seed),
        "noisy_sine": SignalSpec("sine", length, period=length / 6, amplitude=1.0, noise=0.3, seed=seed),
    }
    return {name: design_signal(spec) for name, spec in specs.items()}
