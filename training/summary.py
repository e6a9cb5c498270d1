"""The manifest's ``training`` record of a run, read back from its ``last.pt``.

Reading it from the checkpoint (not from memory) lets ``training.export`` describe any run, finished or still
going, without importing the training loop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training import checkpoint
from training.config import ROOT, TrainConfig
from training.datasets import FER2013
from training.models import build_model, count_parameters

DEVICE_KEYS = ("device", "device_name", "torch", "processes", "precision")


def images_seen(history: list[dict]) -> float:
    """Training images processed over the epochs of ``history.json`` (its rows keep rate and time)."""
    return sum(h["images_per_second"] * h["seconds"] for h in history)


def device_record(history: list[dict]) -> dict:
    """Where the epochs ran (history rows carry it since issue 11): each key's distinct values in order,
    joined with " + " when a resumed run changed device (e.g. "cpu + cuda:0")."""
    out = {}
    for key in DEVICE_KEYS:
        values = list(dict.fromkeys(str(h[key]) for h in history if key in h))
        if values:
            out[key] = values[0] if len(values) == 1 else " + ".join(values)
    if "processes" in out and out["processes"].isdigit():
        out["processes"] = int(out["processes"])
    return out


def training_summary(run_dir: Path, data: FER2013) -> dict:
    """The manifest's ``training`` record; an unfinished run is marked ``interim`` so nobody mistakes it for
    the final model."""
    run_dir = Path(run_dir)
    state = checkpoint.load(run_dir / "last.pt")
    cfg = TrainConfig.from_dict(state["config"])
    history = state["history"]
    seen = images_seen(history)
    train_images = state.get("train_images")
    if train_images is None:  # checkpoints written before train_images was stored
        from training.batches import training_arrays

        train_images = len(training_arrays(cfg, data)[1])
    finished = state["epoch"] >= cfg.epochs or state["bad_epochs"] >= cfg.patience
    try:
        log_dir = str(run_dir.resolve().relative_to(ROOT))
    except ValueError:
        log_dir = str(run_dir)
    teacher = {}
    if cfg.distill and Path(cfg.distill).exists():  # which zoo taught it: the archive names its files' sha256
        from training.distill import load as load_teacher

        info = load_teacher(cfg.distill)[0]
        teacher = {"teacher": {k: info[k] for k in ("zoo", "teacher_sha256", "tta", "weights") if k in info}}
    return {
        **teacher, "config": dataclasses.asdict(cfg), "epochs": len(history), "best_epoch": state["best_epoch"],
        "train_images": int(train_images), "seconds": round(state["seconds"], 1),
        "images_per_second": round(seen / state["seconds"], 1) if state["seconds"] else 0.0,
        **device_record(history),
        "parameters": count_parameters(build_model(cfg.model, **cfg.model_params)), "log_dir": log_dir,
        "status": "finished" if finished else f"interim: epoch {state['epoch']} of {cfg.epochs}, still training",
    }
