"""Synthetic signals: families with known latent factors, mixtures, grammar and probe cases.

Every generated series carries the factors that made it (family, frequency, amplitude, trend,
offset, noise std, jump position and size), so the app can show the true noise level beside the
model's predicted sigma. Everything is deterministic given a seed.

Time runs over t in [0, 1) across the series, so `freq` is cycles per series and `trend` is the
rise over the whole series (the original generator's convention).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch

FAMILIES = (
    "flat", "trend_up", "trend_down", "sine_low", "sine_high", "sine_trend", "noisy_sine",
    "step", "noise", "multi_sine", "sawtooth", "square", "random_walk", "seasonal",
    # repetition at every scale (issue 12): shapes with periods of 2-256 values, and what real
    # seasonal data adds on top of them
    "periodic", "multi_seasonal", "modulated_seasonal", "multiplicative_seasonal", "arma",
    "shifts_outliers", "kernel_synth", "mixup", "structural", "drift_walk", "growth",
)
# families added after the "all" mix was fixed: it leaves them out, and so does mixup's pool, so
# the recipes that name "all" draw the same series as before
ADDED_LATER = ("structural", "drift_walk", "growth")

REPETITION_FAMILIES = ("periodic", "multi_seasonal", "modulated_seasonal",
                       "multiplicative_seasonal", "arma", "shifts_outliers", "kernel_synth", "mixup")

MIXES = {
    # every family, the repetition families at about equal weight with the first wave's families
    # together (published recipes favour an equal-weight mix of many generators): what the
    # shipped model is trained on
    "all": {"flat": 0.5, "trend_up": 0.5, "trend_down": 0.5, "sine_low": 0.5, "sine_high": 0.5,
            "sine_trend": 1.0, "noisy_sine": 2.0, "step": 0.5, "noise": 0.5, "multi_sine": 0.5,
            "sawtooth": 0.25, "square": 0.25, "random_walk": 0.75, "seasonal": 3.0,
            "periodic": 6.0, "multi_seasonal": 2.0, "modulated_seasonal": 1.5,
            "multiplicative_seasonal": 1.5, "arma": 1.0, "shifts_outliers": 1.0,
            "kernel_synth": 2.0, "mixup": 2.0},
    # the first wave's mix (the model shipped before issue 12 was trained on it)
    "first_wave": {"flat": 1.0, "trend_up": 1.0, "trend_down": 1.0, "sine_low": 1.0, "sine_high": 1.0,
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


SPEC_KINDS = ("sine", "sawtooth", "square", "triangle", "pulse", "flat", "random_walk", "noise")
WAVE_SHAPES = ("sine", "sawtooth", "square", "triangle", "pulse")
PULSE_DUTY = 0.2   # the designed pulse train's share of each cycle spent high


def wave(kind: str, phase: np.ndarray, duty: float = 0.5) -> np.ndarray:
    """A unit-amplitude periodic shape; phase is in cycles. duty: the high share of a square or
    pulse cycle (a pulse is a square wave with a short high part)."""
    if kind == "sine":
        return np.sin(2 * np.pi * phase)
    if kind == "sawtooth":
        return 2.0 * (phase - np.floor(phase + 0.5))
    if kind in ("square", "pulse"):
        if kind == "square" and duty == 0.5:   # the first wave's square: high first, flips at half
            return np.sign(np.sin(2 * np.pi * phase) + 1e-12)
        frac = phase - np.floor(phase)
        return np.where(frac < duty, 1.0, -1.0)
    if kind == "triangle":
        frac = phase - np.floor(phase)
        return 1.0 - 4.0 * np.abs(frac - 0.5)
    raise SignalError(f"unknown wave shape {kind!r}")


def design_signal(spec: SignalSpec) -> tuple[np.ndarray, Factors]:
    """Build one series from explicit parameters. Returns (values, factors)."""
    if spec.kind not in SPEC_KINDS:
        raise SignalError(f"kind must be one of {', '.join(SPEC_KINDS)}, got {spec.kind!r}")
    if spec.length < 2:
        raise SignalError(f"length must be at least 2, got {spec.length}")
    if spec.kind in WAVE_SHAPES and not spec.period > 1:
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
    if spec.kind in WAVE_SHAPES:
        freq = n / spec.period
        duty = PULSE_DUTY if spec.kind == "pulse" else 0.5
        values = values + spec.amplitude * wave(spec.kind, np.arange(n) / spec.period, duty)
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
        values = offset + amp * wave(family, freq * t + u(0, 1)) + noise * rng.normal(0, 1, length)
        return values, Factors(family, freq=freq, amplitude=amp, offset=offset, noise_std=noise)
    if family == "random_walk":
        std = u(0.05, 0.5)
        values = offset + np.cumsum(std * rng.normal(0, 1, length))
        return values, Factors(family, offset=offset, noise_std=std)
    if family == "seasonal":
        return _seasonal(length, rng, offset)
    if family in _REPETITION:
        return _REPETITION[family](length, rng, offset)
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


# ---- repetition at every scale (issue 12) ----------------------------------------------------
# Patch boundaries fall on multiples of PATCH_GRID values from the series' start (and its end):
# a shape whose flips land exactly on them gives the model no cue inside a patch, so a share of
# the periodic draws is aligned on purpose (copying across patches is the hard part).
PATCH_GRID = 32
ALIGNED_PERIODS = (8, 16, 32, 48, 64, 96, 128, 160, 192, 256)
COMMON_PERIODS = (3, 4, 5, 6, 7, 12, 14, 24, 26, 30, 48, 52, 60, 96, 168)   # calendar seasons


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _draw_period(rng: np.random.Generator) -> tuple[float, float]:
    """(period in values, phase in cycles): any real period in 2-256, a whole one, a calendar one,
    or one aligned on the patch grid with a cycle starting on a patch boundary."""
    kind = rng.random()
    if kind < 0.35:
        return _log_uniform(rng, 2.0, 256.0), rng.uniform(0, 1)
    if kind < 0.6:
        return float(round(_log_uniform(rng, 2.0, 256.0))), rng.uniform(0, 1)
    if kind < 0.8:
        return float(rng.choice(COMMON_PERIODS)), rng.uniform(0, 1)
    period = float(rng.choice(ALIGNED_PERIODS))
    start = PATCH_GRID * int(rng.integers(0, 8))
    return period, (-start / period) % 1.0


def _noise_level(rng: np.random.Generator, amp: float) -> float:
    return 0.0 if rng.random() < 0.2 else amp * _log_uniform(rng, 0.01, 0.3)


def _shape(rng: np.random.Generator, cycles: np.ndarray, shape: str | None = None) -> np.ndarray:
    shape = shape or str(rng.choice(WAVE_SHAPES))
    duty = {"square": 0.5 if rng.random() < 0.5 else rng.uniform(0.2, 0.8),
            "pulse": rng.uniform(0.03, 0.35)}.get(shape, 0.5)
    values = wave(shape, cycles, duty)
    if shape == "pulse":   # mostly low with short high pulses: keep its low part at 0
        values = (values + 1) / 2
    return values


def _trend(rng: np.random.Generator, length: int, amp: float, p: float = 0.3) -> tuple[np.ndarray, float]:
    if rng.random() >= p:
        return np.zeros(length), 0.0
    trend = amp * rng.uniform(-3, 3)
    return trend * np.arange(length) / length, trend


def _add_trend_and_noise(family: str, values: np.ndarray, rng: np.random.Generator, offset: float,
                         amp: float, period: float) -> tuple[np.ndarray, Factors]:
    """offset + (sometimes) a trend + values + (mostly) white noise, with the factors."""
    length = len(values)
    slope, trend = _trend(rng, length, amp)
    noise = _noise_level(rng, amp)
    values = offset + slope + values + noise * rng.normal(0, 1, length)
    return values, Factors(family, freq=length / period, amplitude=amp, trend=trend,
                           offset=offset, noise_std=noise)


def _periodic(length, rng, offset):
    """One shape (sine, square, sawtooth, triangle, pulse) at any period from 2 to 256 values."""
    period, phase = _draw_period(rng)
    amp = rng.uniform(0.5, 2.5)
    values = amp * _shape(rng, np.arange(length) / period + phase)
    return _add_trend_and_noise("periodic", values, rng, offset, amp, period)


def _multi_seasonal(length, rng, offset):
    """Sums of two or three seasons: nested (24 in 168), unrelated, or harmonics of one period."""
    n = np.arange(length)
    period, phase = _draw_period(rng)
    amp = rng.uniform(0.5, 2.0)
    values = amp * _shape(rng, n / period + phase, "sine" if rng.random() < 0.5 else None)
    mode = rng.random()
    for k in range(int(rng.integers(1, 3))):
        weight = amp * rng.uniform(0.2, 0.9)
        if mode < 0.35:      # harmonics: the sum still repeats every `period`
            other = period / int(rng.integers(2, 5))
        elif mode < 0.7:     # a longer season around the first
            other = period * int(rng.integers(2, 8))
        else:
            other = _log_uniform(rng, 2.0, 256.0)
        values = values + weight * _shape(rng, n / other + rng.uniform(0, 1))
    return _add_trend_and_noise("multi_seasonal", values, rng, offset, amp, period)


def _modulated_seasonal(length, rng, offset):
    """A season whose amplitude grows, shrinks or swells slowly."""
    n = np.arange(length)
    period, phase = _draw_period(rng)
    amp = rng.uniform(0.5, 2.0)
    if rng.random() < 0.5:
        envelope = 1 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * (rng.uniform(0.3, 3) * n / length
                                                                 + rng.uniform(0, 1)))
    else:
        envelope = np.exp(rng.uniform(-2, 2) * n / length)
    values = amp * envelope * _shape(rng, n / period + phase)
    return _add_trend_and_noise("modulated_seasonal", values, rng, offset, amp, period)


def _multiplicative_seasonal(length, rng, offset):
    """level x (1 + season): the season grows with the level (air passengers, retail sales)."""
    n = np.arange(length)
    period = float(rng.choice(COMMON_PERIODS)) if rng.random() < 0.6 else _draw_period(rng)[0]
    growth = rng.uniform(-1.0, 2.5)
    level = np.exp(growth * n / length + 0.05 * np.cumsum(rng.normal(0, 1, length)) / np.sqrt(length))
    strength = rng.uniform(0.1, 0.5)
    season = np.zeros(length)
    for k in range(1, int(rng.integers(1, 4)) + 1):
        season += (1.0 if k == 1 else rng.uniform(0, 0.6) / k) * np.sin(2 * np.pi * (k * n / period + rng.uniform(0, 1)))
    season /= max(np.abs(season).max(), 1e-9)
    noise = rng.uniform(0, 0.05)
    base = abs(offset) + 1.0
    values = base * level * (1 + strength * season) * (1 + noise * rng.normal(0, 1, length))
    return values, Factors("multiplicative_seasonal", freq=length / period, amplitude=base * strength,
                           trend=float(base * (level[-1] - level[0])), offset=base, noise_std=base * noise)


def _arma(length, rng, offset):
    """ARMA(2, 1) noise from a stable AR part, integrated (ARIMA d=1) a third of the time."""
    while True:
        phi1, phi2 = rng.uniform(-1.9, 1.9), rng.uniform(-0.95, 0.95)
        if phi2 + phi1 < 0.98 and phi2 - phi1 < 0.98:      # inside the stationarity triangle
            break
    theta = rng.uniform(-0.8, 0.8)
    std = rng.uniform(0.1, 1.0)
    eps = std * rng.normal(0, 1, length + 50)
    out = np.zeros(length + 50)
    for i in range(2, length + 50):
        out[i] = phi1 * out[i - 1] + phi2 * out[i - 2] + eps[i] + theta * eps[i - 1]
    out = out[50:]
    if rng.random() < 0.33:
        out = np.cumsum(out) * 0.2
    return offset + out, Factors("arma", offset=offset, noise_std=std)


def _shifts_outliers(length, rng, offset):
    """A season or a flat level with one to three level shifts and a few outliers."""
    n = np.arange(length)
    amp = rng.uniform(0.5, 2.0)
    if rng.random() < 0.6:
        period, phase = _draw_period(rng)
        values = amp * _shape(rng, n / period + phase)
        freq = length / period
    else:
        values, freq = np.zeros(length), 0.0
    jump_pos, jump_size = 0, 0.0
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(length // 8, length - length // 16))
        size = amp * rng.uniform(0.5, 3.0) * rng.choice([-1.0, 1.0])
        values = values + size * (n >= pos)
        if pos >= jump_pos:              # the factors record the latest shift
            jump_pos, jump_size = pos, size
    noise = _noise_level(rng, amp)
    values = values + noise * rng.normal(0, 1, length)
    outliers = rng.random(length) < rng.uniform(0.002, 0.02)
    values = values + outliers * amp * rng.uniform(2, 6, length) * rng.choice([-1.0, 1.0], length)
    return offset + values, Factors("shifts_outliers", freq=freq, amplitude=amp, offset=offset,
                                    noise_std=noise, jump_pos=jump_pos, jump_size=jump_size)


STRUCTURAL_PERIODS = (4, 7, 12, 12, 24, 52)   # quarterly, daily-weekly, monthly (twice), hourly, weekly


def _structural(length, rng, offset):
    """What exponential smoothing assumes of monthly and quarterly data: a level and a slope that
    wander, a season of whole period whose shape itself drifts from cycle to cycle, added to the
    level or scaled by it, and noise. The last cycles say more about the next than the first."""
    u = rng.uniform
    n = np.arange(length)
    period = int(rng.choice(STRUCTURAL_PERIODS))
    amp = u(0.3, 2.0)
    slope = u(-1, 1) * amp * 3 / length + np.cumsum(rng.normal(0, amp * u(0, 0.002), length))
    level = np.cumsum(slope + rng.normal(0, amp * u(0, 0.1), length))
    profile = rng.normal(0, 1, period)
    drift = rng.normal(0, u(0, 0.15), (length // period + 1, period))       # per cycle, per slot
    cycles = profile + np.cumsum(drift, axis=0)
    cycles -= cycles.mean(axis=1, keepdims=True)
    season = amp * cycles.ravel()[:length] / (np.abs(profile - profile.mean()).max() + 1e-9)
    noise = amp * _log_uniform(rng, 0.02, 0.3)
    if rng.random() < 0.4:           # multiplicative: the season grows and shrinks with the level
        base = amp * u(2, 6)
        level = np.maximum(base + level, 0.2 * base)
        factor = np.maximum(1 + u(0.1, 0.5) * season / amp, 0.05)
        values = level * factor + noise * rng.normal(0, 1, length)
    else:
        values = level + season + noise * rng.normal(0, 1, length)
    return offset + values, Factors("structural", freq=length / period, amplitude=amp,
                                    trend=float(level[-1] - level[0]), offset=offset, noise_std=noise)


def _drift_walk(length, rng, offset):
    """A random walk with a drift (a share price, a count of jobs): each step is the drift plus
    noise, the drift 0.02 to 0.4 of the step's noise either way, and a third of the time the walk is
    seen through observation noise. The naive forecast plus the drift is the best one there is."""
    step = _log_uniform(rng, 0.05, 0.5)
    drift = rng.choice([-1.0, 1.0]) * rng.uniform(0.02, 0.4) * step
    values = np.cumsum(drift + step * rng.normal(0, 1, length))
    noise = step * rng.uniform(0.5, 2.0) if rng.random() < 1 / 3 else 0.0
    values = values + noise * rng.normal(0, 1, length)
    return offset + values, Factors("drift_walk", trend=float(drift * length), offset=offset,
                                    noise_std=step)


def _growth(length, rng, offset):
    """Exponential growth (or decay) at a pace that shows within the last 48 values or more, as in
    a short real series (a company's quarterly sales, a country's arrivals): the level grows by
    1.3x to 4x over that stretch, at most e^8 over the whole series, wanders a little, and most of
    the time carries a season that grows with it. A crop of the last values (a short input) still
    sees the growth, which a crop of a series growing over all 544 values does not."""
    n = np.arange(length)
    stretch = rng.uniform(48, length)
    rate = np.log(rng.uniform(1.3, 4.0)) / stretch * (1.0 if rng.random() < 0.8 else -1.0)
    log_level = np.clip(rate * (n - length + 1), -8.0, 8.0)          # 0 at the end
    log_level = log_level + np.cumsum(rng.normal(0, rng.uniform(0, 0.02), length))
    season = np.zeros(length)
    period = 0.0
    if rng.random() < 0.7:
        period = float(rng.choice(COMMON_PERIODS))
        season = _shape(rng, n / period + rng.uniform(), "sine" if rng.random() < 0.5 else None)
        season = rng.uniform(0.05, 0.4) * season / max(np.abs(season).max(), 1e-9)
    noise = rng.uniform(0, 0.05)
    base = abs(offset) + 1.0
    values = base * np.exp(log_level) * (1 + season) * (1 + noise * rng.normal(0, 1, length))
    return values, Factors("growth", freq=length / period if period else 0.0, offset=base,
                           trend=float(base * (1 - np.exp(log_level[0]))), noise_std=base * noise)


# KernelSynth (Ansari et al., 2024): a Gaussian process whose kernel is a random composition of
# kernels from a bank. Distances are in values, so periods read as in the rest of this module.
KERNEL_PERIODS = (2, 3, 4, 5, 6, 7, 12, 14, 24, 30, 32, 48, 52, 64, 96, 128, 168, 256)


def _kernel(rng: np.random.Generator, d: np.ndarray, x: np.ndarray, length: int) -> np.ndarray:
    kind = rng.integers(0, 6)
    if kind == 0:   # periodic
        p = float(rng.choice(KERNEL_PERIODS)) if rng.random() < 0.7 else _log_uniform(rng, 2, 256)
        return np.exp(-2 * np.sin(np.pi * d / p) ** 2 / rng.choice([0.5, 1.0, 2.0]) ** 2)
    if kind == 1:   # RBF: smooth wandering at a length scale
        ls = length * float(rng.choice([0.01, 0.05, 0.1, 0.3, 1.0]))
        return np.exp(-0.5 * (d / ls) ** 2)
    if kind == 2:   # rational quadratic: a mixture of length scales
        ls, alpha = length * float(rng.choice([0.02, 0.1, 0.5])), float(rng.choice([0.5, 1.0, 5.0]))
        return (1 + d ** 2 / (2 * alpha * ls ** 2)) ** -alpha
    if kind == 3:   # linear: a trend
        c = rng.uniform(0, 1)
        t = x / length
        return np.outer(t - c, t - c) + rng.uniform(0, 0.5)
    if kind == 4:   # white noise
        return np.eye(len(x)) * _log_uniform(rng, 0.001, 0.1)
    return np.full_like(d, rng.uniform(0.1, 1.0))   # constant


@functools.lru_cache(maxsize=4)
def _distances(length: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(length, dtype=np.float64)
    d = np.abs(x[:, None] - x[None, :])
    d.flags.writeable = False
    return x, d


def _kernel_synth(length, rng, offset):
    """A draw from a GP with up to four kernels combined by + and x."""
    x, d = _distances(length)
    K = _kernel(rng, d, x, length)
    for _ in range(int(rng.integers(0, 4))):
        other = _kernel(rng, d, x, length)
        K = K + other if rng.random() < 0.5 else K * other
    # torch's Cholesky follows torch.set_num_threads (numpy's BLAS would start its own threads)
    K = torch.from_numpy(K)
    eye = torch.eye(length, dtype=torch.float64)
    for jitter in (1e-6, 1e-4, 1e-2):
        L, info = torch.linalg.cholesky_ex(K + jitter * eye)
        if int(info) == 0:
            break
    else:
        L = eye
    values = (L @ torch.from_numpy(rng.normal(0, 1, length))).numpy()
    amp = rng.uniform(0.5, 2.5)
    values = amp * (values - values.mean()) / (values.std() + 1e-9)
    return offset + values, Factors("kernel_synth", amplitude=amp, offset=offset)


def _mixup(length, rng, offset):
    """TSMixup (Ansari et al., 2024): a convex mixture of two or three standardized series of the
    other families."""
    # a fixed pool: a family added later leaves the "all" mix's draws (and its recipes) as they were
    others = [f for f in FAMILIES if f not in ("mixup", "kernel_synth") + ADDED_LATER]
    k = int(rng.integers(2, 4))
    weights = rng.dirichlet(np.full(k, 1.5))
    values = np.zeros(length)
    for w in weights:
        part, _ = generate(str(rng.choice(others)), length, rng)
        values += w * (part - part.mean()) / (part.std() + 1e-9)
    amp = rng.uniform(0.5, 2.5)
    return offset + amp * values, Factors("mixup", amplitude=amp, offset=offset)


_REPETITION = {"periodic": _periodic, "multi_seasonal": _multi_seasonal,
               "modulated_seasonal": _modulated_seasonal,
               "multiplicative_seasonal": _multiplicative_seasonal, "arma": _arma,
               "shifts_outliers": _shifts_outliers, "kernel_synth": _kernel_synth, "mixup": _mixup,
               "structural": _structural, "drift_walk": _drift_walk, "growth": _growth}


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


# ---------------------------------------------------------------- named signals (the pages' pickers)

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
    period: int | None = None    # the season in values, when the signal repeats (what a backtest uses)


def _period(length: int, freq: float) -> int | None:
    """Values per cycle of a signal with `freq` cycles over `length` values; None for none."""
    return int(round(length / freq)) if freq > 0 and length / freq >= 2 else None


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
        periodic = name in ("sine", "noisy")        # four cycles over linspace(0, 8 pi, length)
        return Signal(name, grammar_cases(length, seed)[name], GRAMMAR_NOISE_STD.get(name), name,
                      _period(length - 1, 4.0) if periodic else None)
    if source == PROBE:
        values, f = probe_cases(length, seed)[name]
        return Signal(name, values, f.noise_std, f.family, _period(length, f.freq))
    if source == FAMILY:
        values, f = generate(name, length, np.random.default_rng(seed))
        return Signal(f"{name} (seed {seed})", values.astype(np.float32), f.noise_std, f.family,
                      _period(length, f.freq))
    raise SignalError(f"unknown signal source {source!r}")


def designed_signal(spec: SignalSpec) -> Signal:
    values, f = design_signal(spec)
    return Signal(f"designed {spec.kind}", values, f.noise_std, f.family, _period(spec.length, f.freq))
