"""Command line: python -m nanotst train | evaluate | average | forecast | backtest.

Each subcommand is an `add_<name>(subparsers)` that registers its flags and a `cmd_<name>(args)`
that does the work; add new subcommands (forecast, backtest) in the same style and list them in
SUBCOMMANDS. Expected failures (bad flags, bad files, bad configs) exit with code 2 and one line on
stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

from .backtest import BacktestError, backtest
from .checkpoints import CHECKPOINT_DIR, CheckpointError, average_checkpoints, load_checkpoint, save_checkpoint
from .config import POSITIONS, ConfigError, ModelConfig, TrainConfig
from .data import MIXES, SignalError
from .files import atomic_write
from .forecast import QUANTILES, ForecastError, forecast
from .model import FORECAST_SETTINGS, WEIGHTLESS, with_inputs, with_position, with_settings
from .userdata import DataError, future_times

EXPECTED_ERRORS = (ConfigError, SignalError, CheckpointError, DataError, BacktestError, ForecastError,
                   OSError)
MAX_INPUT_BYTES = 10_000_000
MAX_AVERAGED = 64         # checkpoints one average may read (each is loaded whole, up to 200 MB)


class CLIError(Exception):
    """A user error found by the CLI itself; exit code 2."""


def parse_mix(text: str):
    """'all' -> 'all'; 'flat=1,sine_low=2' -> {'flat': 1.0, 'sine_low': 2.0}."""
    text = text.strip()
    if "=" not in text:
        return text
    mix = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad mix weight in {part.strip()!r}") from None
    return mix


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# ---- train ---------------------------------------------------------------------------------------

def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: the original 2000 series x 100 epochs job)")
    m, t = ModelConfig(), TrainConfig()
    g = p.add_argument_group("model")
    g.add_argument("--rung", default=m.rung, help="linear | attention | transformer | nanotst")
    for name in ("context_length", "patch_size", "d_model", "n_heads", "n_layers", "ffn_mult"):
        g.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(m, name))
    g.add_argument("--dropout", type=float, default=None,
                   help=f"default {m.dropout}; with --init the checkpoint's, unless given")
    g.add_argument("--min-sigma", type=float, default=m.min_sigma)
    g.add_argument("--no-causal", action="store_true", help="let patches see the future (the cheating experiment)")
    g.add_argument("--position", default=None, choices=POSITIONS,
                   help=f"learned: a vector per position; rope: rotary, attention sees only distances; both: the "
                        f"two together (default {m.position}; with --init the checkpoint's, unless given)")
    g.add_argument("--no-input-mask", dest="input_mask", action="store_false",
                   help="embed the patch values only, not the padding mask")
    g.add_argument("--previous-patch", action="store_true",
                   help="the patch embedding also reads the patch before each token (with --init: the new "
                        "inputs start at zero weight, so the model starts exactly where the checkpoint was)")
    g.add_argument("--seasonal-patch", action="store_true",
                   help="the patch embedding also reads the values one season before the patch each token "
                        "predicts, the season found in the window (with --init: new inputs at zero weight)")
    g.add_argument("--seasonal-level", action="store_true",
                   help="with --seasonal-patch: shift the seasonal patch by how far the level moved in a "
                        "season (the mean of the token's patch minus the mean one season before it)")
    g.add_argument("--season-slack", type=float, default=None,
                   help="with --seasonal-patch: a shorter season wins when its correlation is within this "
                        f"share of the best one's (default {m.season_slack}; with --init the checkpoint's, "
                        "unless given)")
    g.add_argument("--season-cycles", type=int, default=None,
                   help="with --seasonal-patch: the seasonal patch is the mean of this many seasons back "
                        f"(default {m.season_cycles}; with --init the checkpoint's, unless given)")
    g.add_argument("--choose-cycles", action="store_true", default=None,
                   help="with --season-cycles N: each token takes the mean of the 1 to N seasons back that "
                        "forecast its last 4 patches best (with --init: the checkpoint's, unless given)")
    g.add_argument("--short-seasons", action="store_true", default=None,
                   help="with --seasonal-patch: a season shorter than a patch is its own lag, its last cycle "
                        "repeated across the patch (with --init: the checkpoint's, unless given)")
    g.add_argument("--mirror", action="store_true", default=None,
                   help="forecasts also read the series upside down: every other path forecasts -x and is "
                        "turned back (a setting no weight depends on; with --init the checkpoint's, unless given)")
    g.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights and model config (then leave out the model "
                        "flags; only --dropout, a training setting, --position where the weights fit, "
                        "--previous-patch, --seasonal-patch, --seasonal-level, "
                        "--season-slack, --season-cycles, --choose-cycles, --short-seasons and --mirror may change)")
    g = p.add_argument_group("training")
    for name in ("n_series", "epochs", "batch_size", "seed"):
        g.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(t, name))
    for name in ("lr", "weight_decay", "grad_clip", "val_fraction", "nll_beta", "flip"):
        g.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(t, name))
    g.add_argument("--lr-schedule", default=t.lr_schedule, help="constant | cosine (lr -> lr/10)")
    g.add_argument("--mix", type=parse_mix, default=t.mix,
                   help=f"a preset ({', '.join(MIXES)}) or weights like flat=1,sine_low=2")
    g = p.add_argument_group("run")
    g.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default: one epoch)")
    g.add_argument("--snapshot-every", type=int, default=None, help="steps between prediction snapshots")
    g.add_argument("--max-seconds", type=_positive_float, default=None, help="stop after this much training time")
    g.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps (the lr schedule still spans every epoch): "
                        "the reproducible form of a run that was stopped early")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    g.add_argument("--out", type=Path, default=None, help="checkpoint path (default checkpoints/run-<time>.pt)")
    g.add_argument("--report", type=Path, default=None, help="HTML report path (default: next to the checkpoint)")
    g.add_argument("--no-report", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_train)


def configs_from_args(args) -> tuple[ModelConfig, TrainConfig]:
    m = {f.name: getattr(args, f.name) for f in fields(ModelConfig) if f.name != "causal"}
    m["seasonal_patch"] = m["seasonal_patch"] or m["seasonal_level"]     # the level shifts that patch
    for name in ("position", *WEIGHTLESS):            # None: not given (--init keeps it)
        if m[name] is None:
            m[name] = getattr(ModelConfig, name)
    t = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    return ModelConfig(causal=not args.no_causal, **m), TrainConfig(**t)


def _architecture(config: ModelConfig) -> ModelConfig:
    """What --init must keep: the config without its dropout (a training setting), its
    position encoding (with_position checks that the weights fit another one) and whether the
    embedding reads the previous or the seasonal patch (with_inputs adds them)."""
    return replace(config, dropout=0.0, position=ModelConfig.position, previous_patch=False,
                   seasonal_patch=False, seasonal_level=False, season_slack=0.0, season_cycles=1,
                   choose_cycles=False, short_seasons=False, mirror=False)


def _progress(trainer, start: float) -> str:
    h = trainer.history[-1] if trainer.history else {}
    g = h.get("grammar") or {}
    gram = " ".join(f"{k}={v['mse']:.3g}" for k, v in g.items())
    loss = h.get("train_loss")
    val = h.get("val_loss")
    return (f"epoch {trainer.step / trainer.steps_per_epoch:6.2f}/{trainer.train_config.epochs} "
            f"step {trainer.step}/{trainer.total_steps} "
            f"loss {'-' if loss is None else f'{loss:.4f}'} val {'-' if val is None else f'{val:.4f}'} "
            f"mse[{gram}] {time.perf_counter() - start:.0f}s")


def cmd_train(args) -> int:
    import torch
    from .train import Trainer
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    model_config, train_config = configs_from_args(args)
    out = args.out or CHECKPOINT_DIR / f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}.pt"
    if out.suffix != ".pt":
        raise CLIError(f"--out must end in .pt, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)      # fail before training, not after
    if not os.access(out.parent, os.W_OK):
        raise CLIError(f"cannot write to {out.parent}")
    init_model = None
    if args.init is not None:
        init_model = load_checkpoint(args.init).model
        if _architecture(model_config) not in (_architecture(ModelConfig()), _architecture(init_model.config)):
            raise CLIError("--init takes the model config from the checkpoint; leave out the model flags "
                           "(--position, --dropout, --previous-patch, --seasonal-patch, --seasonal-level, "
                        "--season-slack, --season-cycles, --choose-cycles, --short-seasons and --mirror may "
                        "change)")
        try:      # --position may change how positions are encoded where the weights fit
            init_model = with_position(init_model, args.position or init_model.config.position)
        except ValueError as e:
            raise CLIError(f"--position: {e}") from None
        for name in WEIGHTLESS:                # dropout and the season's settings, where given
            if getattr(args, name) is not None:
                init_model = with_settings(init_model, **{name: getattr(args, name)})
        init_model = with_inputs(init_model, args.previous_patch, args.seasonal_patch, args.seasonal_level)
        model_config = None
    if args.max_steps is not None and args.max_steps < 1:
        raise CLIError(f"--max-steps must be a positive integer, got {args.max_steps}")
    trainer = Trainer(model_config, train_config, eval_every=args.eval_every, snapshot_every=args.snapshot_every,
                      model=init_model)
    model_config = trainer.model_config

    interrupted = []
    def on_sigint(signum, frame):          # first Ctrl-C: stop after this chunk and save
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)
    previous = signal.signal(signal.SIGINT, on_sigint)
    print(f"training {model_config.rung}, {trainer.model.num_params():,} params on {trainer.device}: "
          f"{trainer.total_steps} steps; Ctrl-C stops and saves", file=sys.stderr, flush=True)
    start = time.perf_counter()
    tty = sys.stderr.isatty()
    last_print = 0.0
    try:
        while not trainer.done:
            trainer.run(20 if args.max_steps is None else max(0, min(20, args.max_steps - trainer.step)))
            if interrupted:
                trainer.stop("interrupted (Ctrl-C)")
            elif args.max_seconds is not None and trainer.elapsed >= args.max_seconds:
                trainer.stop(f"time limit of {args.max_seconds:g} s")
            elif args.max_steps is not None and trainer.step >= args.max_steps:
                trainer.stop(f"step limit of {args.max_steps}")
            now = time.perf_counter()
            if not args.quiet and (now - last_print > (0.5 if tty else 10) or trainer.done):
                line = _progress(trainer, start)
                print(("\r" + line + "\033[K") if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
                last_print = now
    finally:
        signal.signal(signal.SIGINT, previous)
    if not args.quiet and tty:
        print(file=sys.stderr)
    print(f"{trainer.stop_reason}: {trainer.step} steps, {trainer.elapsed:.1f} s of training", file=sys.stderr)

    metrics = trainer.metrics()
    data_spec = trainer.data_spec()
    if args.init is not None:
        data_spec["init_from"] = str(args.init)
    save_checkpoint(out, trainer.model, train_config, trainer.history, trainer.snapshots,
                    data_spec, metrics)
    print(f"saved {out}", file=sys.stderr)
    if not args.no_report:
        from .report import write_report
        report = args.report or out.with_suffix(".html")
        write_report(report, trainer.history, trainer.snapshots, model=trainer.model,
                     title=f"NanoTST training: {out.name}", meta=trainer.summary())
        print(f"report {report}", file=sys.stderr)
    return 0


# ---- evaluate ------------------------------------------------------------------------------------

def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="grammar eval of a checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def evaluate_checkpoint(path) -> dict:
    from .evaluate import grammar_eval
    from .evaluate import grammar_noise_floor
    ck = load_checkpoint(path)
    cfg = ck.model_config
    history = ck.history
    return {"checkpoint": str(path), "rung": cfg.rung, "params": ck.model.num_params(),
            "model_config": cfg.to_dict(),
            "train_config": None if ck.train_config is None else ck.train_config.to_dict(),
            "trained_steps": history[-1]["step"] if history else None,
            "train_seconds": history[-1].get("elapsed") if history else None,
            "grammar": grammar_eval(ck.model),
            "noise_floor": grammar_noise_floor(cfg.context_length, cfg.patch_size),
            "test": _test_set_metrics(ck.model)}


def _test_set_metrics(model) -> dict | None:
    """evaluate.evaluate_model on fresh synthetic series, when evaluate.py offers it."""
    from . import evaluate
    if not hasattr(evaluate, "evaluate_model"):
        return None
    return evaluate.evaluate_model(model)


def cmd_evaluate(args) -> int:
    result = evaluate_checkpoint(args.checkpoint)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['checkpoint']}: {result['rung']}, {result['params']:,} params, "
          f"{result['trained_steps']} steps")
    print(f"{'case':8} {'mse':>10} {'sigma':>8} {'floor':>8}")
    for case, r in result["grammar"].items():
        sigma = "-" if r["sigma"] is None else f"{r['sigma']:.4f}"
        print(f"{case:8} {r['mse']:10.5f} {sigma:>8} {result['noise_floor'][case]:8.4f}")
    test = result["test"]
    if test:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"
        print(f"\ntest set: {test['n_series']} fresh series, mix {test['mix']!r}, seed {test['seed']}")
        print(f"{'family':12} {'n':>4} {'nll':>8} {'mse':>8} {'mae':>8}")
        for fam, r in [("all", {**test, "n": test["n_series"]}), *test["per_family"].items()]:
            print(f"{fam:12} {r['n']:4d} {fmt(r['nll']):>8} {fmt(r['mse']):>8} {fmt(r['mae']):>8}")
    return 0


# ---- average -------------------------------------------------------------------------------------

def add_average(sub) -> None:
    p = sub.add_parser("average", help="average the weights of checkpoints of one architecture (a model soup); "
                                       "one checkpoint with a setting: its copy with that setting")
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", default=None, help="the model's name (default: the output file's stem)")
    p.add_argument("--season-slack", type=float, default=None,
                   help="the mean's season_slack (a setting no weight depends on; default: the first "
                        "checkpoint's)")
    p.add_argument("--season-cycles", type=int, default=None,
                   help="the mean's season_cycles (no weight depends on it; default: the first checkpoint's)")
    p.add_argument("--choose-cycles", action="store_true", default=None,
                   help="the mean chooses 1 to season_cycles seasons by their recent forecasts (see train)")
    p.add_argument("--short-seasons", action="store_true", default=None,
                   help="the mean reads seasons shorter than a patch (see train)")
    p.add_argument("--mirror", action="store_true", default=None,
                   help="the mean's forecasts also read the series upside down (see train)")
    p.set_defaults(func=cmd_average)


def cmd_average(args) -> int:
    if len(args.checkpoints) > MAX_AVERAGED:
        raise CLIError(f"at most {MAX_AVERAGED} checkpoints can be averaged, got {len(args.checkpoints)}")
    settings = {name: getattr(args, name) for name in FORECAST_SETTINGS if getattr(args, name) is not None}
    try:                                   # before any checkpoint is read
        ModelConfig(**settings)
    except ConfigError as e:
        raise CLIError(str(e)) from None
    out = average_checkpoints(args.checkpoints, args.out, args.name, **settings)
    if len(args.checkpoints) == 1:
        changed = ", ".join(f"{name} {value}" for name, value in settings.items()) or "nothing changed"
        print(f"saved {out}: {args.checkpoints[0]}'s weights with {changed}")
    else:
        print(f"saved {out}: the mean of {len(args.checkpoints)} checkpoints' weights")
    return 0


# ---- forecast / backtest: a user's own series -----------------------------------------------------

def _add_series_input(p) -> None:
    """The flags that say which series to read, shared by forecast and backtest."""
    p.add_argument("--input", type=Path, required=True, help="a CSV file")
    p.add_argument("--column", default=None, help="the value column (default: the only numeric one)")
    p.add_argument("--fill", choices=["interpolate"], default=None,
                   help="fill missing values by linear interpolation (otherwise they are an error)")
    p.add_argument("--horizon", type=int, required=True, help="values to forecast")
    p.add_argument("--samples", type=int, default=200, help="sample paths (default 200)")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="every other sample path forecasts the series upside down and is turned back "
                        "(default: the checkpoint's setting; the shipped model mirrors)")


def _parse_quantiles(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"quantiles must be numbers like 0.1,0.5,0.9, got {text!r}") from None
    if not levels or not all(0 < q < 1 for q in levels):
        raise argparse.ArgumentTypeError(f"quantiles must be between 0 and 1, got {text!r}")
    return levels


def _load_series(args):
    """Model and series for forecast/backtest; notes about the data go to stderr."""
    from .checkpoints import DEFAULT_CHECKPOINT
    from .userdata import load_series_csv
    if args.horizon <= 0:
        raise CLIError(f"--horizon must be a positive number of values, got {args.horizon}")
    if args.samples <= 0:
        raise CLIError(f"--samples must be positive, got {args.samples}")
    model = load_checkpoint(args.checkpoint or DEFAULT_CHECKPOINT).model
    if args.mirror is not None:
        model = with_settings(model, mirror=args.mirror)
    series = load_series_csv(args.input, column=args.column, fill=args.fill,
                             max_bytes=MAX_INPUT_BYTES, patch_size=model.config.patch_size)
    for note in series.notes:
        print(f"note: {note}", file=sys.stderr)
    return model, series


def add_forecast(sub) -> None:
    p = sub.add_parser("forecast", help="forecast the values after a CSV series")
    _add_series_input(p)
    p.add_argument("--quantiles", type=_parse_quantiles, default=QUANTILES,
                   help=f"comma-separated levels (default {','.join(f'{q:g}' for q in QUANTILES)}: "
                        f"the median and the edges of the 50%%, 80%% and 95%% bands)")
    p.add_argument("--output", type=Path, required=True, help="CSV to write: step, mean, q2.5, ...")
    p.set_defaults(func=cmd_forecast)


def cmd_forecast(args) -> int:
    if args.output.is_dir():
        raise CLIError(f"--output {args.output} is a folder; give a file name such as forecast.csv")
    model, series = _load_series(args)
    fc = forecast(model, series.values, args.horizon, n_samples=args.samples, seed=args.seed)
    for note in fc.notes:
        print(f"note: {note}", file=sys.stderr)
    frame = fc.to_frame(future_times(series.times, args.horizon), quantiles=args.quantiles)
    atomic_write(args.output, lambda f: frame.to_csv(f, index=False), binary=False)
    print(f"wrote {len(frame)} steps of {series.name!r} to {args.output}", file=sys.stderr)
    return 0


def add_backtest(sub) -> None:
    p = sub.add_parser("backtest", help="hold out the last H values, forecast them, compare with baselines")
    _add_series_input(p)
    p.add_argument("--period", type=int, default=None, help="season length for seasonal naive and MASE "
                   "(default: detected)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args) -> int:
    model, series = _load_series(args)
    if args.period is not None and args.period < 1:
        raise CLIError(f"--period must be a positive number of values, got {args.period}")
    result = backtest(model, series.values, args.horizon, period=args.period,
                      n_samples=args.samples, seed=args.seed)
    if args.json:
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v
        print(json.dumps({"input": str(args.input), "column": series.name, "horizon": args.horizon,
                          "period": result.period, "period_detected": result.period_detected,
                          "notes": series.notes + result.notes,
                          "methods": [{k: clean(v) for k, v in row.items()} for row in result.rows()]}))
        return 0
    print(f"{args.input}: {series.name!r}, {len(series)} values; held out the last {args.horizon}; "
          f"season period {result.period}{' (detected)' if result.period_detected else ''}")
    print(result.table().to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return 0


# ---- entry point ---------------------------------------------------------------------------------

SUBCOMMANDS = (add_train, add_evaluate, add_average, add_forecast, add_backtest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nanotst", description="NanoTST: a tiny time-series transformer")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _check_common(args) -> None:
    """Bounds on the flags every command shares, before any work starts."""
    threads = getattr(args, "threads", None)
    if threads is not None and not 1 <= threads <= (os.cpu_count() or 1):
        raise CLIError(f"--threads must be from 1 to {os.cpu_count() or 1} (this machine's CPUs), got {threads}")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2**31:
        raise CLIError(f"--seed must be from 0 to 2^31 - 1, got {seed}")
    samples = getattr(args, "samples", None)
    if samples is not None and samples < 1:
        raise CLIError(f"--samples must be positive, got {samples}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_common(args)
        return args.func(args)
    except (CLIError, *EXPECTED_ERRORS) as err:
        print(f"error: {_first_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller model, horizon or number of samples", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - never a traceback in the user's face
        if os.environ.get("NANOTST_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {_first_line(err)} "
              f"(set NANOTST_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


def _first_line(err: BaseException, limit: int = 200) -> str:
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    return line if len(line) <= limit else line[:limit - 1] + "…"
