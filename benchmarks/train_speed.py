"""Training throughput (images/s) of each model, through ``training.train.fit`` itself.

Running the real ``fit`` (not a re-implementation) on a few batches of random 48x48 faces measures exactly
what a training run does per step: on-the-fly augmentation, bf16 autocast, channels_last, optimizer and
scheduler step, on the device asked for (``--device``). Each "epoch" here is a handful of batches; the
first is a warm-up, the rest are the samples whose median is reported. torch is imported only inside
:func:`train_rows`, so the other benchmarks run with just the app installed. CPU rows keep their names
("training cnn"), other devices' rows name the device ("training cnn (cuda:0)"), so one table holds both.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, Row, log

MODELS = ("cnn", "ff", "resnet18")
CONFIG_DIR = ROOT / "training" / "configs"


def load_config(name: str, config_dir: Path = CONFIG_DIR) -> tuple[dict, str]:
    """``training/configs/<name>.json`` if present (bare or an annealing ``best.json``), else the defaults."""
    path = config_dir / f"{name}.json"
    if not path.is_file():
        return {"model": name}, "default config"
    from training.train import read_config_file

    d = read_config_file(path)
    d["model"] = name
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    return d, shown


def synthetic_fer(n_train: int, seed: int = 0):  # noqa: ANN201 - training.datasets is imported lazily
    """Random faces and labels shaped like FER2013: speed does not depend on the pixels."""
    from training.datasets import FER2013, Split

    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n).astype(np.int64))

    return FER2013(train=split(n_train), val=split(8), test=split(8), source="synthetic")


def measure_model(name: str, batches: int, repeats: int, threads: int | None, device: str = "auto",
                  compile_model: bool = False) -> Row:
    """images/s of one model on ``device``: median over ``repeats`` timed epochs of ``batches`` batches, after
    one warm-up (which also absorbs torch.compile's compile time)."""
    import torch

    from training.train import TrainConfig, fit

    d, source = load_config(name)
    d.update(augmented=None, limit=None, epochs=repeats + 1, patience=10**6)
    cfg = TrainConfig.from_dict(d)
    if threads:
        torch.set_num_threads(threads)
    data = synthetic_fer(cfg.batch_size * batches)
    with tempfile.TemporaryDirectory(prefix="emotionlens-bench-") as tmp:
        result = fit(cfg, data, Path(tmp), progress=False, tensorboard=False, device=device,
                     compile_model=compile_model)
    speeds = [h["images_per_second"] for h in result.history[1:]]
    dev = result.device
    modes = [dev["precision"]] + ["channels_last"] * cfg.channels_last + ["torch.compile"] * compile_model
    threads_note = f"; torch threads: {torch.get_num_threads()}" if dev["device"] == "cpu" else ""
    return Row(
        f"training {name}" + ("" if dev["device"] == "cpu" else f" ({dev['device']})"),
        statistics.median(speeds),
        "images/s",
        f"{len(speeds)} x {batches} batches of {cfg.batch_size}",
        f"{source}; {dev['device_name']}, torch {dev['torch']}; {', '.join(modes)}{threads_note}",
    )


def train_rows(models: tuple[str, ...] = MODELS, quick: bool = False, threads: int | None = None,
               device: str = "auto", compile_model: bool = False) -> list[Row]:
    """One row per model on ``device``; a skipped row per model when torch (the ``train`` extra) is not
    installed. A missing device raises training.device.DeviceError (a ValueError: one line, exit 2)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return [
            Row(f"training {m}", None, "images/s", "", "skipped: torch not installed (pip install -e '.[train]')")
            for m in models
        ]
    from training.device import resolve_device

    resolve_device(device)  # fail before the first model, not after
    batches, repeats = (2, 2) if quick else (3, 5)
    rows = []
    for m in models:
        log(f"training {m}: {repeats + 1} x {batches} batches on {device}")
        rows.append(measure_model(m, batches, repeats, threads, device, compile_model))
    return rows
