"""``python -m training.anneal``: the command line of the annealing search (options, run folder choice, resume,
progress and the closing summary). The search is in training.anneal.core, trials in .trials, where they run in
.executors and what is written in .run_folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from training.anneal.core import ResumeMismatch, Schedule, anneal
from training.anneal.executors import ProcessRunner, threads_per_worker, worker_devices
from training.anneal.run_folder import RunFolder, _best, _fmt, markdown_table, read_state
from training.anneal.trials import TrialSpec, search_data, training_objective
from training.device import add_device_argument
from training.models import MODEL_NAMES
from training.search_space import SearchSpace, SpaceError, build_space, load_space
from training.train import ROOT, TrainConfig, read_config_file


def parse_duration(text: str) -> float:
    """Seconds from ``3600``, ``90m``, ``1.5h``, ``1h30m`` or ``45s``."""
    s = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", s)
    if not parts or re.sub(r"\s+", "", s) != "".join(n + u for n, u in parts):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 3600, 45s, 90m, 1.5h or 1h30m)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {v})")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.anneal",
        description="Simulated-annealing search over learning rate, epochs, batch size, optimizer, weight decay\n"
        "and dropout (the space is per model; see --print-space). Each trial trains with training.train's fit()\n"
        "and is scored on PublicTest accuracy; PrivateTest is never used. Writes logs/anneal-<model>-<time>/\n"
        "with trials.csv, trials.json (also the resume state), best.json, search.png and tensorboard logs;\n"
        "best.json is accepted by 'python -m training.train --config'. Killed? Run the same command again.",
        epilog="examples:\n"
        "  python -m training.anneal --model ff --data ../shared/data/fer2013 --iterations 8 --subset 4000 --seed 1\n"
        "  python -m training.anneal --model cnn --data ../shared/data/fer2013 --subset 8000 --epochs-scale 0.25 "
        "--time-budget 90m\n"
        "  python -m training.anneal --model cnn --data ../shared/data/fer2013 --space my_space.json\n"
        "  python -m training.anneal --resume logs/anneal-cnn-20261124-101500      # after a kill\n"
        "  python -m training.anneal --model ff --print-space > my_space.json        # then edit ranges\n"
        "  python -m training.anneal --model ff --data ../shared/data/fer2013 --iterations 8 --subset 4000 "
        "--workers 2\n"
        "  python -m training.anneal --model cnn --data ../shared/data/fer2013 --devices cuda:0,cuda:1\n"
        "  python -m training.anneal --model cnn --data ../shared/data/fer2013 --cluster tcp://10.0.0.5:8786 "
        "--workers 8\n"
        "  python -m training.train --config logs/anneal-ff-<time>/best.json --data ../shared/data/fer2013\n\n"
        "--space FILE maps parameter names to (partial) specs merged into the defaults, e.g.\n"
        '  {"lr": {"low": 3e-4, "high": 3e-3, "step": 0.3}, "batch_size": {"values": [64, 128]},\n'
        '   "dropout": null, "label_smoothing": {"type": "float", "low": 0, "high": 0.2, "step": 0.05}}\n'
        "types: log (step in decades), float, int, choice (values; numeric values are ordered, step in positions);\n"
        "null removes a parameter from the search; a file may also hold one such object per model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--model", choices=MODEL_NAMES, help="which network to tune (default: cnn, or the --config file's model)")
    a("--data", metavar="PATH", help="fer2013.csv or the Kaggle folder with train/ and test/, e.g. "
      "../shared/data/fer2013 (required unless --resume or --print-space)")
    a("--config", metavar="FILE", help="base TrainConfig JSON (bare or {\"config\": ...}, e.g. training/configs/"
      "cnn.json): the fields the search does not vary, and its start point where its values lie in the space")
    a("--space", metavar="FILE", help="JSON overriding the search space's ranges, steps and start values "
      "(see below); validated before any training")
    a("--print-space", action="store_true", help="print the model's resolved search space as JSON and exit")
    a("--iterations", type=_positive_int, metavar="N", help="number of trials, the start point included, e.g. 8 "
      "(default: 30)")
    a("--time-budget", type=parse_duration, metavar="DURATION",
      help="stop cleanly when this much time has passed in this invocation, e.g. 3600, 90m, 1.5h; a trial cut "
      "short is not recorded and resumes from its last epoch when the same command is run again")
    a("--subset", type=_positive_int, metavar="N", help="train each trial on N training images (a fixed shuffled "
      "sample, the same for every trial and every search), e.g. 4000; best.json still describes full data")
    a("--epochs-scale", type=_positive_float, metavar="F", help="trials train round(epochs * F) epochs, e.g. 0.25 "
      "for quick trials; best.json keeps the unscaled epochs (default: 1)")
    a("--max-epochs", type=_positive_int, metavar="N", help="cap on a trial's epochs after --epochs-scale, e.g. 10")
    a("--seed", type=int, help="search seed: the same seed and settings give the same proposals and results; "
      "every trial trains with the base config's seed (default 0) so differences come from the hyper-parameters "
      "(default: 0)")
    a("--t-start", type=_positive_float, metavar="T", help="start temperature, in accuracy units: T=0.03 accepts "
      "a trial 3 points worse with probability 1/e (default: 0.03)")
    a("--t-end", type=_positive_float, metavar="T", help="temperature of the last trial, e.g. 0.001 "
      "(default: 0.003)")
    a("--schedule", choices=["geometric", "linear"], help="how the temperature falls from --t-start to --t-end, "
      "e.g. --schedule linear (default: geometric, the same factor every trial)")
    a("--augmented", metavar="NPZ", help="train trials on an offline-augmented set from training.augment, e.g. "
      "data/fer2013-aug.npz (passed through to TrainConfig.augmented)")
    a("--workers", type=_positive_int, metavar="N", help="trials trained at once, e.g. 2: each temperature step "
      "proposes N neighbours of the current point, trains them in parallel and settles them in trial order; the "
      "same --seed and --workers give the same search (default: the number of --devices, the cluster's worker "
      "threads with --cluster, else 1)")
    add_device_argument(p)
    a("--devices", metavar="LIST", help="one device per local worker, round robin, e.g. cuda:0,cuda:1 (default: "
      "every CUDA GPU with --device auto, else --device for all)")
    a("--cluster", metavar="ADDRESS", help="run the trials as tasks of a Dask distributed scheduler, e.g. "
      "tcp://10.0.0.5:8786 (start it with 'dask scheduler' and workers with 'dask worker ADDRESS --nthreads 1'); "
      "--device is then resolved on each worker. Needs pip install 'emotionlens[cluster]'")
    a("--threads", type=_positive_int, metavar="N", help="CPU threads for torch in each trial, e.g. 1 (default: "
      "all cores for one worker, cores // workers for several)")
    a("--log-root", default=str(ROOT / "logs"), metavar="DIR", help="where run folders go, e.g. /tmp/searches "
      "(default: logs/)")
    a("--resume", nargs="?", const="latest", metavar="RUN_DIR", help="continue a killed search: its folder, or "
      "without a value the newest unfinished search of --model, e.g. --resume logs/anneal-ff-20261124-101500. "
      "Rerunning the original command also continues an unfinished search with identical settings")
    a("--fresh", action="store_true", help="start a new run folder even if an unfinished search with the same "
      "settings exists")
    a("--no-tensorboard", action="store_true", help="do not write tensorboard scalars and hparams")
    a("--quiet", action="store_true", help="no progress bar")
    return p


SEARCH_OPTIONS = ("iterations", "subset", "epochs_scale", "max_epochs", "seed", "t_start", "t_end", "schedule",
                  "augmented", "workers")
DEFAULTS = {"iterations": 30, "subset": None, "epochs_scale": 1.0, "max_epochs": None, "seed": 0, "t_start": 0.03,
            "t_end": 0.003, "schedule": "geometric", "augmented": None, "workers": 1}


def load_base_config(path: str | None, model: str | None, augmented: str | None) -> TrainConfig:
    """The base TrainConfig: --config file (bare or wrapped), then --model and --augmented on top."""
    d: dict = read_config_file(path) if path else {}
    if model and d.get("model", model) != model:
        raise ValueError(f"--model {model} differs from the config's model {d['model']}; drop one of them")
    d["model"] = model or d.get("model", "cnn")
    if augmented:
        d["augmented"] = augmented
    return TrainConfig.from_dict(d)


def make_settings(args: argparse.Namespace, base: TrainConfig, space: SearchSpace, data: str) -> dict:
    """What defines a search's results; an unfinished run with equal settings is continued, not restarted."""
    settings = {
        "model": base.model, "data": str(Path(data).resolve()), "base_config": dataclasses.asdict(base),
        "space": space.spec(), **{k: getattr(args, k) for k in SEARCH_OPTIONS},
    }
    return json.loads(json.dumps(settings))  # as trials.json will hold it, so equality checks compare like with like


def space_from_settings(settings: dict, base: TrainConfig) -> SearchSpace:
    """Rebuild a recorded space exactly: recorded specs only, in recorded order."""
    from training.search_space import DEFAULT_SPACES

    spec = settings["space"]
    overrides = {**{n: None for n in DEFAULT_SPACES[settings["model"]] if n not in spec}, **spec}
    return build_space(settings["model"], overrides, base=base, where="trials.json space")


def find_unfinished(log_root: Path, model: str | None, settings: dict | None = None) -> Path | None:
    runs = []
    for d in Path(log_root).glob(f"anneal-{model or '*'}-*"):
        try:
            state = read_state(d)
        except ValueError:
            continue
        if not state["complete"] and (settings is None or state["settings"] == settings):
            runs.append((d.stat().st_mtime, d))
    return max(runs)[1] if runs else None


def new_run_dir(model: str, log_root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(log_root) / f"anneal-{model}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = Path(log_root) / f"anneal-{model}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def _describe(params: dict) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except (SpaceError, ResumeMismatch, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal while shutting down adds no traceback
        print("\ninterrupted; run the same command again (or --resume RUN_DIR) to continue where it stopped",
              file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    start_clock = time.monotonic()
    log_root = Path(args.log_root)
    cluster = None
    if args.print_space:
        base = load_base_config(args.config, args.model, args.augmented)
        print(json.dumps(load_space(args.space, base.model, base if args.config else None).spec(), indent=2))
        return 0

    if args.resume:
        run_dir = find_unfinished(log_root, args.model) if args.resume == "latest" else Path(args.resume)
        if run_dir is None:
            raise ValueError(f"no unfinished search of {args.model or 'any model'} under {log_root} to resume")
        settings = read_state(run_dir)["settings"]
        changed = [k for k in SEARCH_OPTIONS if getattr(args, k) is not None and getattr(args, k) != settings[k]]
        ignored = ["--" + k.replace("_", "-") for k in changed]
        ignored += [opt for opt, given in (("--space", args.space), ("--config", args.config)) if given]
        if ignored:
            print(f"note: --resume uses the run's recorded settings; ignoring {', '.join(ignored)}", file=sys.stderr)
        base = TrainConfig.from_dict(settings["base_config"])
        space = space_from_settings(settings, base)
        data_path = args.data or settings["data"]
    else:
        if not args.data:
            raise ValueError("--data is required (e.g. --data ../shared/data/fer2013)")
        if args.workers is None and (args.devices or args.cluster):
            cluster = connect(args.cluster) if args.cluster else None
            args.workers = cluster.worker_threads() if cluster else len(worker_devices(args.device, args.devices))
            if args.workers < 1:
                raise ValueError(f"--cluster {args.cluster}: the scheduler has no workers; give --workers N")
        for k, v in DEFAULTS.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        base = load_base_config(args.config, args.model, args.augmented)
        space = load_space(args.space, base.model, base if args.config else None)
        Schedule(args.t_start, args.t_end, args.iterations, args.schedule)  # validate before anything else
        data_path = args.data
        settings = make_settings(args, base, space, data_path)
        run_dir = None if args.fresh else find_unfinished(log_root, base.model, settings)
        if run_dir is not None:
            print(f"continuing the unfinished search in {run_dir} (same settings; --fresh starts a new one)")
    schedule = Schedule(settings["t_start"], settings["t_end"], settings["iterations"], settings["schedule"])
    if settings["subset"] and settings["augmented"]:
        print("warning: --subset with --augmented trains on the augmented copies of the first N training images "
              "in file order, which the Kaggle folder layout sorts by class", file=sys.stderr)

    import torch

    from training.datasets import load_fer2013
    from training.device import describe, resolve_device

    workers = settings["workers"]
    if args.cluster:
        devices = []
        search_device = f"dask {args.cluster} ({args.device})"
    else:
        devices = worker_devices(args.device, args.devices)[:workers]  # worker k takes devices[k % len]
        search_device = ",".join(devices)
        names = sorted({describe(resolve_device(d)).name for d in devices})
        print(f"device: {search_device} ({'; '.join(names)})", flush=True)
    if args.threads and workers == 1:
        torch.set_num_threads(args.threads)
    data = search_data(load_fer2013(data_path), settings["subset"], keep_all=bool(settings["augmented"]))

    history: list[dict] = []
    if run_dir is not None:
        state = read_state(run_dir)
        history, pending = state["trials"], state["pending"]
    else:
        run_dir = new_run_dir(base.model, log_root)
        pending = []
    folder = RunFolder(run_dir, settings, space, base, tensorboard=not args.no_tensorboard, device=search_device,
                       logged=len(history))
    folder.pending = pending
    deadline = None if args.time_budget is None else start_clock + args.time_budget
    spec = TrialSpec(space, base, run_dir, settings["subset"], settings["epochs_scale"], settings["max_epochs"])
    if args.cluster:
        runner = cluster or connect(args.cluster)
        runner.bind(spec, data, args.device, args.threads)
        where = runner.describe()
    elif workers > 1:
        runner = ProcessRunner(spec, data, workers, devices, threads_per_worker(workers, args.threads))
        where = runner.describe()
    else:
        runner = training_objective(space, base, data, run_dir, subset=settings["subset"],
                                    epochs_scale=settings["epochs_scale"], max_epochs=settings["max_epochs"],
                                    device=devices[0])
        where = f"this process on {devices[0]}"
    print(f"annealing {base.model}: {schedule.iterations} trials, {workers} per temperature step, T "
          f"{schedule.start:g} -> {schedule.end:g} ({schedule.kind}), seed {settings['seed']}, "
          f"{settings['subset'] or len(data.train)} training images per trial; trials run in {where}; "
          f"run folder {run_dir}", flush=True)
    if history:
        print(f"{len(history)} trial(s) already recorded; continuing with trial {len(history) + 1}")
    if pending:
        print(f"trial(s) {', '.join(str(r['iteration']) for r in pending)} finished before the stop: not retrained")

    from tqdm import tqdm

    bar = tqdm(total=schedule.iterations, initial=len(history), unit="trial", disable=args.quiet,
               dynamic_ncols=True, desc=f"anneal {base.model}")

    def on_trial(trials: list[dict]) -> None:
        t = trials[-1]
        folder.save(trials)
        folder.log_trial(trials)
        acc = t["status"] if t["val_accuracy"] is None else f"val {t['val_accuracy']:.4f}"
        verdict = "accepted" if t["accepted"] else "rejected"
        reason = f" ({t['reason']})" if t["reason"] else ""
        cached = f" (same point as trial {t['info']['cached_from']})" if t["status"] == "cached" else ""
        bar.write(f"trial {t['iteration']:3d}/{schedule.iterations}  T={t['temperature']:.4f}  "
                  f"{_describe(t['params'])}  {acc}{reason}{cached}  {verdict} (p={t['acceptance_probability']:.2f})  "
                  f"best {t['best_so_far'] or 0:.4f}  {t['seconds']:.0f}s")
        bar.set_postfix(best=f"{t['best_so_far'] or 0:.4f}", T=f"{t['temperature']:.4f}", refresh=False)
        bar.update(1)

    if history:
        bar.set_postfix(best=f"{(_best(history) or {}).get('val_accuracy') or 0:.4f}",
                        T=f"{history[-1]['temperature']:.4f}")

    def on_pending(trials: list[dict], records: list[dict]) -> None:
        if records != folder.pending:
            folder.pending = records
            if records:
                folder.save_state(trials)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = anneal(space, runner, schedule=schedule, seed=settings["seed"], workers=workers, history=history,
                        pending=pending, on_trial=on_trial, on_pending=on_pending, deadline=deadline)
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
        signal.signal(signal.SIGTERM, previous)
        bar.close()
        folder.close()
    folder.save(result.trials, complete=result.complete, stopped=result.stopped)

    print()
    print(markdown_table(result.trials, space.names))
    print()
    minutes = (time.monotonic() - start_clock) / 60
    if not result.complete:
        print(f"stopped by the time budget after {len(result.trials)}/{schedule.iterations} trials "
              f"({minutes:.1f} min); run the same command again to continue")
    else:
        print(f"finished {len(result.trials)} trials in {minutes:.1f} min")
    if result.best is None:
        print(f"no trial succeeded; see {run_dir / 'trials.csv'} for the failure reasons")
        return 1 if result.complete else 0
    b = result.best
    print(f"best: trial {b['iteration']}, validation accuracy {b['val_accuracy']:.4f}: {_describe(b['params'])}")
    print(f"run folder {run_dir}")
    print(f"train it on the full data: python -m training.train --config {run_dir / 'best.json'} --data {data_path}")
    return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def connect(address: str) -> Any:
    """A DaskRunner on ``address``; a one-line ValueError when Dask is missing or the scheduler is not there."""
    from training.anneal.executors import DaskRunner

    return DaskRunner(address)



