"""One trial: the TrainConfig a point becomes, the data trials see, and training it with ``training.train.fit``.

:func:`run_trial` is a plain module-level function of picklable arguments (a :class:`TrialSpec`, the data, the
request, a device), so the same code trains a trial in this process, in a local worker process or on a Dask
worker. Trial ``i`` trains in ``<run>/trials/trial-<i>/``; on a cluster that path must be on a shared
filesystem for the trial's curves and mid-trial resume to reach the search's machine (the result itself always
comes back with the task).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.anneal.core import BudgetExhausted, Objective, Outcome, TrialRequest
from training.search_space import SearchSpace
from training.train import TrainConfig

if TYPE_CHECKING:
    import torch

    from training.datasets import FER2013

SUBSET_SHUFFLE_SEED = 0  # fixed, so every search with the same --subset trains on the same images


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


def search_data(data: FER2013, subset: int | None, keep_all: bool = False) -> FER2013:
    """The data trials see: an empty PrivateTest (so nothing can peek at it) and, with ``subset``, the first
    ``subset`` training images of a fixed shuffled order, because ``cfg.limit`` takes the *first* N images and the
    Kaggle folder layout lists them sorted by class (its first 4,000 are 3,995 angry faces and 5 disgusted ones).
    The rest is dropped (less to send to every worker) unless ``keep_all`` (an --augmented set indexes it all)."""
    from training.datasets import FER2013, Split

    empty = Split(data.test.images[:0], data.test.labels[:0])
    train = data.train
    if subset is not None:
        order = np.random.default_rng(SUBSET_SHUFFLE_SEED).permutation(len(train))
        if not keep_all:
            order = order[:subset]
        train = Split(train.images[order], train.labels[order])
    return FER2013(train=train, val=data.val, test=empty, source=data.source)


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of a search shares: picklable, so it travels to worker processes and Dask workers."""

    space: SearchSpace
    base: TrainConfig
    run_dir: Path
    subset: int | None = None
    epochs_scale: float = 1.0
    max_epochs: int | None = None


def run_trial(spec: TrialSpec, data: FER2013, req: TrialRequest, device: str | torch.device = "cpu") -> Outcome:
    """Train trial ``req.iteration`` on ``device`` and return its best validation accuracy.

    Checkpoints are deleted after a finished or failed trial (history.json, config.json and curves.png stay);
    a trial cut short by the budget or a kill keeps ``last.pt`` and resumes from its last epoch when the search
    is rerun. Raises :class:`BudgetExhausted` when ``req.budget_seconds`` ran out before the last epoch.
    """
    from training import checkpoint
    from training.device import describe, resolve_device
    from training.train import fit

    dev = resolve_device(device)
    cfg = trial_config(spec.space, spec.base, req.params, spec.subset, spec.epochs_scale, spec.max_epochs)
    tdir = Path(spec.run_dir) / "trials" / f"trial-{req.iteration:03d}"
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
    max_seconds = None if req.budget_seconds is None else done_seconds + req.budget_seconds
    try:
        result = fit(cfg, data, tdir, resume=resume, progress=False, tensorboard=False, max_seconds=max_seconds,
                     device=dev)
    except Exception:
        _drop_checkpoints(tdir)
        raise
    early_stopped = result.epochs_run - result.best_epoch >= cfg.patience
    if result.epochs_run < cfg.epochs and not early_stopped:
        raise BudgetExhausted(f"trial {req.iteration} stopped at epoch {result.epochs_run} by the time budget")
    _drop_checkpoints(tdir)
    return Outcome(result.best_val_accuracy, {
        "trial_epochs": cfg.epochs, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "train_images": result.train_images, "train_seconds": round(result.seconds, 1),
        "device": str(dev), "device_name": describe(dev).name, "host": socket.gethostname()})


def training_objective(space: SearchSpace, base: TrainConfig, data: FER2013, run_dir: Path, *,
                       subset: int | None = None, epochs_scale: float = 1.0, max_epochs: int | None = None,
                       deadline: float | None = None, clock: Callable[[], float] | None = None,
                       device: str | torch.device = "cpu") -> Objective:
    """:func:`run_trial` bound as an in-process objective. ``deadline`` (on ``clock``) limits trials whose
    request carries no budget of its own."""
    spec = TrialSpec(space, base, Path(run_dir), subset, epochs_scale, max_epochs)
    clock = clock or time.monotonic

    def objective(req: TrialRequest) -> Outcome:
        if req.budget_seconds is None and deadline is not None:
            req = dataclasses.replace(req, budget_seconds=max(deadline - clock(), 0.0))
        return run_trial(spec, data, req, device)

    return objective


def _drop_checkpoints(tdir: Path) -> None:
    for p in tdir.glob("*.pt*"):
        p.unlink(missing_ok=True)
