"""Simulated-annealing hyper-parameter search over training runs, scored on PublicTest (validation) accuracy.

Trial 1 trains the space's start point; every later trial trains a neighbour of the current point (one or more
parameters moved by a step that shrinks as the temperature falls) and the Metropolis rule decides whether the
search moves there: a better point is always accepted, a worse one with probability ``exp(-delta / T)`` where
``delta`` is the accuracy lost (as a fraction: T=0.02 accepts a 2-point drop with probability 1/e). The
temperature falls geometrically from ``--t-start`` to ``--t-end`` over ``--iterations`` trials.

Reproducible and resumable by construction: trial ``i`` draws its move and its acceptance number from an RNG
seeded with ``(seed, i)``, so the proposals depend only on the seed and the recorded outcomes. ``trials.json``
is rewritten atomically after every trial; rerunning the same command (or ``--resume``) replays the recorded
trials without training them, checks that each one is what the seed proposes, and continues, so a search
killed in trial 5 ends exactly as an uninterrupted one. A trial killed mid-way resumes from its last epoch.

PrivateTest is never used: the trials get a copy of the data with an empty test split. Example::

    python -m training.anneal --model ff --data ../shared/data/fer2013 --iterations 8 --subset 4000 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.atomic import write_text
from training.models import MODEL_NAMES
from training.search_space import SearchSpace, SpaceError, build_space, load_space, neighbour
from training.train import ROOT, TrainConfig, read_config_file

if TYPE_CHECKING:
    from training.datasets import FER2013

FORMAT = "emotionlens-anneal/1"
MAX_REDRAWS = 20  # neighbours drawn per trial to find a point not scored yet (small spaces run out of them)
SUBSET_SHUFFLE_SEED = 0  # fixed, so every search with the same --subset trains on the same images


# ------------------------------------------------------------------------------------------ the core


@dataclass(frozen=True)
class Schedule:
    """Temperature per trial: ``start`` at trial 1, ``end`` at the last trial, geometric or linear between."""

    start: float = 0.03
    end: float = 0.003
    iterations: int = 30
    kind: str = "geometric"

    def __post_init__(self) -> None:
        if not (self.start > 0 and self.end > 0 and math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"temperatures must be > 0 (got start {self.start}, end {self.end})")
        if self.end > self.start:
            raise ValueError(f"the end temperature ({self.end}) must not exceed the start ({self.start})")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1 (got {self.iterations})")
        if self.kind not in ("geometric", "linear"):
            raise ValueError(f"schedule must be geometric or linear (got {self.kind!r})")

    def temperature(self, iteration: int) -> float:
        """Temperature of 1-based trial ``iteration``."""
        frac = 0.0 if self.iterations == 1 else min(max((iteration - 1) / (self.iterations - 1), 0.0), 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        return self.start * (self.end / self.start) ** frac

    def step_scale(self, iteration: int) -> float:
        """How much of a parameter's step a move uses: 1 when hot, sqrt(T/T_start) later (0.32 at T_start/10),
        so late moves stay local without becoming too small to change anything."""
        return math.sqrt(self.temperature(iteration) / self.start)


def acceptance_probability(current: float, candidate: float, temperature: float) -> float:
    """Metropolis: 1 for a candidate at least as good as the current point, else exp(-(current-candidate)/T)."""
    if candidate >= current:
        return 1.0
    if temperature <= 0:
        return 0.0
    return math.exp(-(current - candidate) / temperature)


def trial_rng(seed: int, iteration: int) -> np.random.Generator:
    """Trial ``iteration``'s own RNG: proposals never depend on how many draws earlier trials made."""
    return np.random.default_rng([seed, iteration])


class BudgetExhausted(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by an objective that ran out of the time budget mid-trial; the trial is not recorded."""


class ResumeMismatch(ValueError):
    """The recorded trials are not what this seed and space propose (changed --space, --seed, ...)."""


@dataclass(frozen=True)
class TrialRequest:
    """What an objective is asked to score."""

    iteration: int
    params: dict[str, Any]
    temperature: float


@dataclass
class Outcome:
    """An objective's answer: the validation accuracy, plus anything worth recording (epochs run, ...)."""

    value: float
    info: dict = field(default_factory=dict)


Objective = Callable[[TrialRequest], "float | Outcome"]


@dataclass
class SearchResult:
    trials: list[dict]
    best: dict | None
    complete: bool
    stopped: str  # "completed" | "time budget"


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def anneal(
    space: SearchSpace,
    objective: Objective,
    *,
    schedule: Schedule,
    seed: int,
    history: Sequence[dict] = (),
    on_trial: Callable[[list[dict]], None] | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] | None = None,
) -> SearchResult:
    """Run (or continue) a search; pure apart from calling ``objective`` and ``on_trial``.

    ``history`` holds the trial records of an earlier, interrupted run with the same settings: they are replayed
    (proposals recomputed and checked against the records, outcomes taken from the records) and not scored
    again. ``on_trial`` receives the full record list after every new trial, which is where callers persist
    state. A neighbour that was scored before is redrawn (up to MAX_REDRAWS times); if the space is too small
    to avoid it, the earlier outcome is reused (training is deterministic) and the trial marked ``cached``.
    An objective exception other than :class:`BudgetExhausted` (BaseExceptions such as KeyboardInterrupt
    propagate) marks the trial failed: objective 0 and rejected.
    """
    clock = clock or time.monotonic
    trials: list[dict] = []
    current: dict | None = None
    current_value = 0.0
    best: dict | None = None
    seen: dict[str, dict] = {}

    def propose(i: int) -> tuple[dict, float]:
        rng = trial_rng(seed, i)
        if current is None:
            point = space.start_point()
        else:  # a point already scored teaches nothing new: redraw a few times before settling for a repeat
            for _ in range(MAX_REDRAWS):
                point = neighbour(space, current, rng, schedule.step_scale(i))
                if _key(point) not in seen:
                    break
        return point, float(rng.random())  # the acceptance draw is taken whatever the outcome

    def settle(rec: dict) -> None:
        nonlocal current, current_value, best
        if rec["accepted"] or current is None:
            current, current_value = rec["params"], rec["objective"]
        if rec["status"] != "failed" and (best is None or rec["val_accuracy"] > best["val_accuracy"]):
            best = rec
        rec["best_so_far"] = None if best is None else best["val_accuracy"]
        seen.setdefault(_key(rec["params"]), rec)
        trials.append(rec)

    for n, rec in enumerate(history, start=1):
        if rec.get("iteration") != n:
            raise ResumeMismatch(f"recorded trial {n} is numbered {rec.get('iteration')}; the state file is damaged")
        point, _ = propose(n)
        if _key(point) != _key(rec["params"]):
            raise ResumeMismatch(
                f"recorded trial {n} has {_key(rec['params'])} but seed {seed} proposes {_key(point)}: the search "
                "space, seed or base config changed since the run started; start a fresh run instead")
        settle(dict(rec))

    stopped = "completed"
    for i in range(len(trials) + 1, schedule.iterations + 1):
        if deadline is not None and clock() >= deadline:
            stopped = "time budget"
            break
        temperature = schedule.temperature(i)
        point, u = propose(i)
        rec: dict[str, Any] = {"iteration": i, "temperature": temperature, "params": point, "status": "ok",
                               "val_accuracy": None, "objective": 0.0, "reason": "", "info": {}}
        earlier = seen.get(_key(point))
        start = time.perf_counter()
        if earlier is not None:
            rec.update(status="cached" if earlier["status"] != "failed" else "failed",
                       val_accuracy=earlier["val_accuracy"], objective=earlier["objective"],
                       reason=earlier["reason"], info={"cached_from": earlier["iteration"]})
        else:
            try:
                out = objective(TrialRequest(i, dict(point), temperature))
            except BudgetExhausted:
                stopped = "time budget"
                break
            except Exception as e:  # a crashing trial is data for the search, not the end of it
                rec.update(status="failed", reason=f"{type(e).__name__}: {e}".splitlines()[0][:300])
            else:
                out = out if isinstance(out, Outcome) else Outcome(float(out))
                if not math.isfinite(out.value):
                    rec.update(status="failed", reason=f"objective returned {out.value}")
                else:
                    rec.update(val_accuracy=float(out.value), objective=float(out.value), info=dict(out.info))
        rec["seconds"] = round(time.perf_counter() - start, 2)
        if rec["status"] == "failed":
            p, accepted = 0.0, False
        elif current is None:
            p, accepted = 1.0, True
        else:
            p = acceptance_probability(current_value, rec["objective"], temperature)
            accepted = u < p
        rec["acceptance_probability"], rec["accepted"] = p, accepted
        settle(rec)
        if on_trial is not None:
            on_trial(trials)
    complete = len(trials) >= schedule.iterations
    return SearchResult(trials, best, complete, "completed" if complete else stopped)


# ------------------------------------------------------------------------------- training objective


def trial_config(space: SearchSpace, base: TrainConfig, params: dict, subset: int | None, epochs_scale: float,
                 max_epochs: int | None) -> TrainConfig:
    """The TrainConfig a trial trains: the point applied to ``base``, on ``subset`` images, epochs scaled/capped."""
    cfg = space.apply(base, params)
    epochs = max(1, int(round(cfg.epochs * epochs_scale)))
    if max_epochs is not None:
        epochs = min(epochs, max_epochs)
    cfg = dataclasses.replace(cfg, epochs=epochs, limit=subset if subset is not None else cfg.limit)
    cfg.validate()
    return cfg


def full_config(space: SearchSpace, base: TrainConfig, params: dict) -> TrainConfig:
    """The config best.json recommends: the point on ``base``, full data and the searched (unscaled) epochs."""
    cfg = space.apply(base, params)
    cfg.validate()
    return cfg


def search_data(data: FER2013, subset: int | None) -> FER2013:
    """The data trials see: an empty PrivateTest (so nothing can peek at it) and, with ``subset``, the training
    set in a fixed shuffled order, because ``cfg.limit`` takes the *first* N images and the Kaggle folder layout
    lists them sorted by class (its first 4,000 are 3,995 angry faces and 5 disgusted ones)."""
    from training.datasets import FER2013, Split

    empty = Split(data.test.images[:0], data.test.labels[:0])
    train = data.train
    if subset is not None:
        order = np.random.default_rng(SUBSET_SHUFFLE_SEED).permutation(len(train))
        train = Split(train.images[order], train.labels[order])
    return FER2013(train=train, val=data.val, test=empty, source=data.source)


def training_objective(space: SearchSpace, base: TrainConfig, data: FER2013, run_dir: Path, *,
                       subset: int | None = None, epochs_scale: float = 1.0, max_epochs: int | None = None,
                       deadline: float | None = None, clock: Callable[[], float] | None = None) -> Objective:
    """Bind ``training.train.fit`` as the objective: trial ``i`` trains in ``run_dir/trials/trial-<i>/``.

    Checkpoints are deleted after a finished or failed trial (history.json, config.json and curves.png stay);
    an interrupted trial keeps ``last.pt`` and resumes from its last epoch when the search is rerun.
    """
    from training import checkpoint
    from training.train import fit

    clock = clock or time.monotonic

    def objective(req: TrialRequest) -> Outcome:
        cfg = trial_config(space, base, req.params, subset, epochs_scale, max_epochs)
        tdir = run_dir / "trials" / f"trial-{req.iteration:03d}"
        cfg_json = dataclasses.asdict(cfg)
        resume, done_seconds = False, 0.0
        if (tdir / "last.pt").exists():
            try:
                same = json.loads((tdir / "config.json").read_text()) == json.loads(json.dumps(cfg_json))
                done_seconds = float(checkpoint.load(tdir / "last.pt")["seconds"]) if same else 0.0
                resume = same
            except (OSError, ValueError, KeyError):
                resume = False
        if not resume and tdir.exists():
            shutil.rmtree(tdir)
        max_seconds = None if deadline is None else done_seconds + max(deadline - clock(), 0.0)
        try:
            result = fit(cfg, data, tdir, resume=resume, progress=False, tensorboard=False, max_seconds=max_seconds)
        except Exception:
            _drop_checkpoints(tdir)
            raise
        early_stopped = result.epochs_run - result.best_epoch >= cfg.patience
        if result.epochs_run < cfg.epochs and not early_stopped:
            raise BudgetExhausted(f"trial {req.iteration} stopped at epoch {result.epochs_run} by the time budget")
        _drop_checkpoints(tdir)
        return Outcome(result.best_val_accuracy, {
            "trial_epochs": cfg.epochs, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "train_images": result.train_images, "train_seconds": round(result.seconds, 1)})

    return objective


def _drop_checkpoints(tdir: Path) -> None:
    for p in tdir.glob("*.pt*"):
        p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------- run folder


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / "trials.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{run_dir}: no trials.json, not an annealing run folder") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an annealing state file ({FORMAT})")
    return state


def csv_text(trials: Sequence[dict], names: Sequence[str]) -> str:
    """trials.csv: one row per trial, parameters as columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["iteration", "status", "temperature", *names, "val_accuracy", "acceptance_probability", "accepted",
                "best_so_far", "seconds", "epochs_run", "reason"])
    for t in trials:
        params = [json.dumps(t["params"][n]) if isinstance(t["params"][n], list) else t["params"][n] for n in names]
        acc = "" if t["val_accuracy"] is None else f"{t['val_accuracy']:.4f}"
        best = "" if t["best_so_far"] is None else f"{t['best_so_far']:.4f}"
        epochs = t["info"].get("epochs_run", "")
        reason = t["reason"] or (f"same as trial {t['info']['cached_from']}" if "cached_from" in t["info"] else "")
        w.writerow([t["iteration"], t["status"], f"{t['temperature']:.5f}", *params, acc,
                    f"{t['acceptance_probability']:.3f}", int(t["accepted"]), best, t["seconds"], epochs, reason])
    return buf.getvalue()


def markdown_table(trials: Sequence[dict], names: Sequence[str]) -> str:
    head = ["trial", "T", *names, "val acc", "p(accept)", "accepted", "best so far", "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in trials:
        acc = t["status"] if t["val_accuracy"] is None else f"{t['val_accuracy']:.4f}"
        if t["status"] == "cached":
            acc += f" (= trial {t['info']['cached_from']})"
        best = "" if t["best_so_far"] is None else f"{t['best_so_far']:.4f}"
        row = [t["iteration"], f"{t['temperature']:.4f}", *(_fmt(t["params"][n]) for n in names), acc,
               f"{t['acceptance_probability']:.2f}", "yes" if t["accepted"] else "no", best, f"{t['seconds']:.0f}"]
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return json.dumps(v) if isinstance(v, list) else str(v)


class RunFolder:
    """Everything the CLI writes: state (trials.json), trials.csv, best.json, search.png, tensorboard."""

    def __init__(self, run_dir: Path, settings: dict, space: SearchSpace, base: TrainConfig,
                 tensorboard: bool = True):
        self.dir, self.settings, self.space, self.base = Path(run_dir), settings, space, base
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(self.dir))
        self._logged = 0

    def save(self, trials: list[dict], complete: bool = False, stopped: str = "running") -> None:
        best = _best(trials)
        state = {"format": FORMAT, "settings": self.settings, "complete": complete, "stopped": stopped,
                 "best": best, "trials": trials}
        write_text(self.dir / "trials.json", json.dumps(state, indent=1) + "\n")
        write_text(self.dir / "trials.csv", csv_text(trials, self.space.names))
        if best is not None:
            write_text(self.dir / "best.json", json.dumps(self.best_json(best, len(trials)), indent=2) + "\n")
        from training.plots import plot_search

        s = self.settings
        plot_search(trials, self.dir / "search.png",
                    title=f"annealing {s['model']} (seed {s['seed']}, {len(trials)}/{s['iterations']} trials"
                    f"{', subset ' + str(s['subset']) if s['subset'] else ''})")

    def best_json(self, best: dict, done: int) -> dict:
        """{"config": TrainConfig fields for a full-data run, "search": what the search measured}."""
        s = self.settings
        trial_cfg = trial_config(self.space, self.base, best["params"], s["subset"], s["epochs_scale"],
                                 s["max_epochs"])
        return {
            "config": dataclasses.asdict(full_config(self.space, self.base, best["params"])),
            "search": {
                "note": "training.train reads only 'config' (full data, searched epochs); val_accuracy was "
                        "measured by the search's trials, with trial_limit images and trial_epochs epochs",
                "run": self.dir.name, "iteration": best["iteration"], "val_accuracy": best["val_accuracy"],
                "metric": "PublicTest (validation) accuracy", "params": best["params"],
                "trial_limit": trial_cfg.limit, "trial_epochs": trial_cfg.epochs,
                "subset_sampling": (f"first {s['subset']} training images after a fixed shuffle "
                                    f"(numpy default_rng({SUBSET_SHUFFLE_SEED}))") if s["subset"] else None,
                "epochs_scale": s["epochs_scale"], "max_epochs": s["max_epochs"], "seed": s["seed"],
                "trials_done": done, "iterations": s["iterations"],
            },
        }

    def log_trial(self, trials: list[dict]) -> None:
        """Tensorboard scalars (accuracy, temperature, acceptance) and one hparams run per new trial."""
        if self.writer is None:
            return
        for t in trials[self._logged:]:
            i = t["iteration"]
            acc = t["val_accuracy"] if t["val_accuracy"] is not None else 0.0
            accepted_so_far = sum(x["accepted"] for x in trials[:i])
            w = self.writer
            w.add_scalar("search/val_accuracy", acc, i)
            w.add_scalar("search/best_so_far", t["best_so_far"] or 0.0, i)
            w.add_scalar("search/temperature", t["temperature"], i)
            w.add_scalar("search/accepted", float(t["accepted"]), i)
            w.add_scalar("search/acceptance_probability", t["acceptance_probability"], i)
            w.add_scalar("search/acceptance_rate", accepted_so_far / i, i)
            hp = {k: (v if isinstance(v, int | float | str | bool) else json.dumps(v)) for k, v in t["params"].items()}
            hp["status"] = t["status"]
            # the hparams run lives in the trial's own folder, next to its history.json and curves.png
            w.add_hparams(hp, {"hparam/val_accuracy": acc}, name=f"trials/trial-{i:03d}", global_step=i)
            w.flush()
        self._logged = len(trials)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _best(trials: Sequence[dict]) -> dict | None:
    ok = [t for t in trials if t["val_accuracy"] is not None]
    return max(ok, key=lambda t: (t["val_accuracy"], -t["iteration"])) if ok else None


# ------------------------------------------------------------------------------------------- the CLI


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
    a("--threads", type=_positive_int, metavar="N", help="CPU threads for torch, e.g. 1 (default: all cores)")
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
                  "augmented")
DEFAULTS = {"iterations": 30, "subset": None, "epochs_scale": 1.0, "max_epochs": None, "seed": 0, "t_start": 0.03,
            "t_end": 0.003, "schedule": "geometric", "augmented": None}


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
        print("\ninterrupted; run the same command again (or --resume RUN_DIR) to continue where it stopped",
              file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    start_clock = time.monotonic()
    log_root = Path(args.log_root)
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

    if args.threads:
        torch.set_num_threads(args.threads)
    data = search_data(load_fer2013(data_path), settings["subset"])

    history: list[dict] = []
    if run_dir is not None:
        history = read_state(run_dir)["trials"]
    else:
        run_dir = new_run_dir(base.model, log_root)
    folder = RunFolder(run_dir, settings, space, base, tensorboard=not args.no_tensorboard)
    folder._logged = len(history)
    deadline = None if args.time_budget is None else start_clock + args.time_budget
    objective = training_objective(space, base, data, run_dir, subset=settings["subset"],
                                   epochs_scale=settings["epochs_scale"], max_epochs=settings["max_epochs"],
                                   deadline=deadline)
    print(f"annealing {base.model}: {schedule.iterations} trials, T {schedule.start:g} -> {schedule.end:g} "
          f"({schedule.kind}), seed {settings['seed']}, "
          f"{settings['subset'] or len(data.train)} training images per trial; run folder {run_dir}", flush=True)
    if history:
        print(f"{len(history)} trial(s) already recorded; continuing with trial {len(history) + 1}")

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
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = anneal(space, objective, schedule=schedule, seed=settings["seed"], history=history,
                        on_trial=on_trial, deadline=deadline)
    finally:
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
