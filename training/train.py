"""Train one of the three models on FER2013, validate on PublicTest, export the best epoch to ONNX.

Data lives in memory as uint8 tensors; batches are converted, flipped and shifted on the fly with vectorised
tensor ops, and the forward/backward pass runs in bfloat16 autocast with channels_last tensors, which measured
2.8-3.2x faster than fp32 for the CNN on this project's 2-core CPU (see ``python -m benchmarks``).

Every epoch writes ``last.pt`` (model, optimizer, scheduler, history, RNG seeds), so ``--resume`` continues a
killed run at the epoch it was in; each epoch reseeds from (seed, epoch), so a resumed run draws the same
batches and augmentations as an uninterrupted one. Example::

    python -m training.train --model cnn --data ../shared/data/fer2013 --config training/configs/cnn.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import checkpoint
from training.compress import FORMATS as WEIGHT_FORMATS
from training.datasets import FER2013, DatasetError, load_fer2013
from training.device import DeviceError, resolve_device
from training.models import MODEL_NAMES, build_model, count_parameters

ROOT = Path(__file__).resolve().parents[1]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the annealing search records such trials as failed."""


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in every checkpoint and accepted back as ``--config FILE``."""

    model: str = "cnn"
    model_params: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adamw"  # adam | adamw | sgd (with momentum)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "onecycle"  # onecycle | cosine | none
    label_smoothing: float = 0.0
    class_weighted: bool = False
    online_aug: str = "shift"  # none | flip | shift (flip + random shift) on top of any offline augmentation
    shift: int = 4
    erase: float = 0.0  # probability of random erasing per image
    patience: int = 10
    seed: int = 0
    limit: int | None = None
    augmented: str | None = None
    bf16: bool = True
    channels_last: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks = [
            (self.model in MODEL_NAMES, f"model must be one of {', '.join(MODEL_NAMES)}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.lr > 0 and math.isfinite(self.lr), "lr must be > 0"),
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be adam, adamw or sgd"),
            (self.scheduler in ("onecycle", "cosine", "none"), "scheduler must be onecycle, cosine or none"),
            (self.online_aug in ("none", "flip", "shift"), "online_aug must be none, flip or shift"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.limit is None or self.limit >= 1, "limit must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ----------------------------------------------------------------------------------------------- data


def training_arrays(cfg: TrainConfig, data: FER2013) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels one epoch iterates: the offline-augmented set if given, limited to ``cfg.limit``."""
    if not cfg.augmented:
        train = data.train.head(cfg.limit)
        return train.images, train.labels
    from training.augment import load as load_augmented

    aug = load_augmented(cfg.augmented)
    if int(aug.source_index.max()) + 1 != len(data.train):
        raise ValueError(
            f"{cfg.augmented}: made from {int(aug.source_index.max()) + 1} training images, but the data has "
            f"{len(data.train)}; rerun training.augment on the same --data"
        )
    keep = slice(None) if cfg.limit is None else aug.source_index < cfg.limit
    return aug.images[keep], aug.labels[keep]


def online_augment(x: torch.Tensor, gen: torch.Generator, cfg: TrainConfig) -> torch.Tensor:
    """Random mirror, shift (replicate-padded crop) and erasing for a float batch [B,1,H,W], all vectorised."""
    b, _, h, w = x.shape
    if cfg.online_aug in ("flip", "shift"):
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.online_aug == "shift" and cfg.shift > 0:
        s = cfg.shift
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        oy = torch.randint(0, 2 * s + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * s + 1, (b,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]
        x = padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    if cfg.erase > 0:
        hit = torch.rand(b, generator=gen) < cfg.erase
        eh = torch.randint(h // 6, h // 2, (b,), generator=gen)
        ew = torch.randint(w // 6, w // 2, (b,), generator=gen)
        y0 = (torch.rand(b, generator=gen) * (h - eh)).long()
        x0 = (torch.rand(b, generator=gen) * (w - ew)).long()
        yy = torch.arange(h)[None, :, None]
        xx = torch.arange(w)[None, None, :]
        box = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None])
        box = box & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None])
        fill = torch.rand(b, 1, 1, generator=gen)
        x = torch.where((box & hit[:, None, None]).unsqueeze(1), fill.unsqueeze(1), x)
    return x


# -------------------------------------------------------------------------------------- optimisation


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm and biases: decaying them only fights the normalisation.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.2)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=cfg.lr * 1e-3)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def class_weights(labels: np.ndarray, n_classes: int = 7) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1, so rare disgust is not ignored."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = counts.sum() / (n_classes * np.maximum(counts, 1))
    return torch.tensor(w / w.mean(), dtype=torch.float32)


@torch.inference_mode()
def evaluate_split(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 512):
    """(loss, accuracy) in fp32, the exported model's precision."""
    model.eval()
    total_loss, correct = 0.0, 0
    y_all = torch.from_numpy(labels)
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).unsqueeze(1).float().div_(255)
        y = y_all[i : i + batch]
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    n = max(len(images), 1)
    return total_loss / n, correct / n


def train_epoch(model, opt, sched, loss_fn, images_t, labels_t, cfg: TrainConfig, epoch: int, progress: bool):
    """One pass over the training set; returns (loss, accuracy, seconds)."""
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout masks: same on resume as uninterrupted
    order = torch.randperm(len(labels_t), generator=gen)
    steps = len(order) // cfg.batch_size  # drop the ragged last batch: BatchNorm dislikes tiny batches
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
               dynamic_ncols=True, leave=False)
    for step in bar:
        idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        x = images_t[idx].unsqueeze(1).float().div_(255)
        y = labels_t[idx]
        x = online_augment(x, gen, cfg)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}, step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            lr=f"{sched.get_last_lr()[0]:.2e}")
    bar.close()
    return total_loss / max(seen, 1), correct / max(seen, 1), time.perf_counter() - start


# ------------------------------------------------------------------------------------------ the run


@dataclass
class RunResult:
    run_dir: Path
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    train_images: int
    images_per_second: float
    history: list


def images_seen(history: list[dict]) -> float:
    """Training images processed over the epochs of ``history.json`` (its rows keep rate and time)."""
    return sum(h["images_per_second"] * h["seconds"] for h in history)


def new_run_dir(model: str, log_root: Path = ROOT / "logs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = log_root / f"{model}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = log_root / f"{model}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def fit(
    cfg: TrainConfig, data: FER2013, run_dir: Path, resume: bool = False, progress: bool = True,
    tensorboard: bool = True, max_seconds: float | None = None, device: str | torch.device = "cpu",
) -> RunResult:
    """Train with validation on PublicTest, keeping ``best.pt`` and ``last.pt`` in ``run_dir``.

    Never touches PrivateTest: the annealing search calls this directly for its trials. ``device`` is any
    ``--device`` spelling (training.device); checkpoints are always written with CPU tensors.
    """
    cfg.validate()
    device = resolve_device(device)
    if device.type != "cpu":  # the device data path (issue 11) replaces this guard
        raise DeviceError(f"training on {device} is not implemented yet; use --device cpu")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    images, labels = training_arrays(cfg, data)
    images_t, labels_t = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    steps_per_epoch = len(labels) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch size {cfg.batch_size} is larger than the {len(labels)} training images")

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, **cfg.model_params)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    sched = make_scheduler(cfg, opt, steps_per_epoch)
    weight = class_weights(labels) if cfg.class_weighted else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)

    history: list[dict] = []
    best_acc, best_epoch, bad_epochs, start_epoch, seconds = -1.0, 0, 0, 1, 0.0
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.exists():
        state = checkpoint.load(last_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, best_acc, best_epoch = state["history"], state["best_acc"], state["best_epoch"]
        bad_epochs, seconds, start_epoch = state["bad_epochs"], state["seconds"], state["epoch"] + 1
        if progress:
            print(f"resuming {run_dir} at epoch {start_epoch} (best val {best_acc:.4f} at epoch {best_epoch})")
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))

    writer = None
    if tensorboard:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(run_dir))
    from training.plots import plot_curves

    meta = {"model_name": cfg.model, "model_params": cfg.model_params, "config": dataclasses.asdict(cfg),
            "train_images": len(labels)}
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs + 1):
        if bad_epochs >= cfg.patience:
            stopped_early = True
            break
        if max_seconds is not None and seconds >= max_seconds:
            break
        train_loss, train_acc, secs = train_epoch(model, opt, sched, loss_fn, images_t, labels_t, cfg, epoch,
                                                  progress)
        val_loss, val_acc = evaluate_split(model, data.val.images, data.val.labels)
        seconds += secs
        row = {
            "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
            "val_acc": val_acc, "lr": sched.get_last_lr()[0], "seconds": secs,
            "images_per_second": steps_per_epoch * cfg.batch_size / secs,
        }
        history.append(row)
        if val_acc > best_acc:
            best_acc, best_epoch, bad_epochs = val_acc, epoch, 0
            checkpoint.save({**meta, "model": model.state_dict(), "epoch": epoch, "val_acc": val_acc}, best_path)
        else:
            bad_epochs += 1
        checkpoint.save({
            **meta, "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "history": history, "best_acc": best_acc, "best_epoch": best_epoch,
            "bad_epochs": bad_epochs, "seconds": seconds,
        }, last_path)
        (run_dir / "history.json").write_text(json.dumps(history, indent=2))
        plot_curves(history, run_dir / "curves.png", title=f"{cfg.model} ({run_dir.name})")  # watchable mid-run
        if writer is not None:
            for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_second"):
                writer.add_scalar(k.replace("_", "/", 1), row[k], epoch)
            writer.flush()
        if progress:
            print(f"epoch {epoch:3d}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f}  {row['images_per_second']:.0f} img/s  "
                  f"{secs:.0f}s{'  *best' if best_epoch == epoch else ''}", flush=True)
    if stopped_early and progress:
        print(f"early stop: no validation improvement for {cfg.patience} epochs")
    trained_images = images_seen(history)
    result = RunResult(
        run_dir=run_dir, best_val_accuracy=best_acc, best_epoch=best_epoch, epochs_run=len(history),
        seconds=seconds, train_images=len(labels), history=history,
        images_per_second=trained_images / seconds if seconds else 0.0,
    )
    if writer is not None:
        hparams = {k: v for k, v in dataclasses.asdict(cfg).items() if isinstance(v, int | float | str | bool)}
        hparams.update({f"model.{k}": str(v) for k, v in cfg.model_params.items()})
        writer.add_hparams(hparams, {"hparam/best_val_acc": best_acc}, name="hparams")
        writer.close()
    return result


def training_summary(run_dir: Path, data: FER2013) -> dict:
    """The manifest's ``training`` record, read back from a run folder's ``last.pt``.

    Reading it from the checkpoint (not from memory) lets ``training.export`` describe any run, finished or
    still going; an unfinished run is marked ``interim`` so nobody mistakes it for the final model.
    """
    run_dir = Path(run_dir)
    state = checkpoint.load(run_dir / "last.pt")
    cfg = TrainConfig.from_dict(state["config"])
    history = state["history"]
    seen = images_seen(history)
    train_images = state.get("train_images")
    if train_images is None:  # checkpoints written before train_images was stored
        train_images = len(training_arrays(cfg, data)[1])
    finished = state["epoch"] >= cfg.epochs or state["bad_epochs"] >= cfg.patience
    try:
        log_dir = str(run_dir.resolve().relative_to(ROOT))
    except ValueError:
        log_dir = str(run_dir)
    return {
        "config": dataclasses.asdict(cfg), "epochs": len(history), "best_epoch": state["best_epoch"],
        "train_images": int(train_images), "seconds": round(state["seconds"], 1),
        "images_per_second": round(seen / state["seconds"], 1) if state["seconds"] else 0.0,
        "parameters": count_parameters(build_model(cfg.model, **cfg.model_params)), "log_dir": log_dir,
        "status": "finished" if finished else f"interim: epoch {state['epoch']} of {cfg.epochs}, still training",
    }


def finish(
    result: RunResult, cfg: TrainConfig, data: FER2013, zoo_dir: Path, name: str | None = None,
    weights_format: str = "fp32",
) -> dict:
    """Export the best epoch to ONNX, score it on PublicTest and PrivateTest, and record the manifest."""
    from training.export import export_and_register

    model = checkpoint.load_model(result.run_dir / "best.pt")
    training = training_summary(result.run_dir, data)
    return export_and_register(model, name or cfg.model, zoo_dir, data, training, result.run_dir, weights_format)


# ------------------------------------------------------------------------------------------- the CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train cnn, ff or resnet18 on FER2013, validating on PublicTest every epoch, then export the "
        "best epoch to <out>/<model>.onnx, score it on PublicTest and PrivateTest, and update the manifest. "
        "Options not given come from --config, then from the built-in defaults.",
        epilog="examples:\n"
        "  python -m training.train --model ff --data ../shared/data/fer2013 --epochs 3\n"
        "  python -m training.train --config training/configs/cnn.json --data ../shared/data/fer2013 "
        "--augmented data/fer2013-aug.npz\n"
        "  python -m training.train --model cnn --data ../shared/data/fer2013 --resume   # after a kill",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--model", choices=MODEL_NAMES, help="which network (default: cnn)")
    a("--data", required=True, help="fer2013.csv or the Kaggle folder with train/<emotion>/ and test/<emotion>/")
    a("--augmented", help="offline-augmented training set from training.augment (.npz) to train on instead")
    a("--config", help="JSON with TrainConfig fields, e.g. training/configs/cnn.json or an annealing best.json")
    a("--epochs", type=int, help="maximum epochs (default: 30)")
    a("--batch-size", type=int, help="batch size (default: 128)")
    a("--lr", type=float, help="learning rate; the peak rate for onecycle (default: 1e-3)")
    a("--optimizer", choices=["adam", "adamw", "sgd"], help="optimizer; sgd uses Nesterov momentum (default: adamw)")
    a("--momentum", type=float, help="SGD momentum (default: 0.9)")
    a("--weight-decay", type=float, help="weight decay on weights, not on BatchNorm/biases (default: 1e-4)")
    a("--scheduler", choices=["onecycle", "cosine", "none"], help="learning-rate schedule per step (default: onecycle)")
    a("--label-smoothing", type=float, help="cross-entropy label smoothing (default: 0)")
    a("--class-weighted", action=argparse.BooleanOptionalAction, default=None,
      help="weight the loss by inverse class frequency (default: off)")
    a("--online-aug", choices=["none", "flip", "shift"], help="on-the-fly augmentation (default: shift = flip+shift)")
    a("--erase", type=float, help="random-erasing probability per image (default: 0)")
    a("--dropout", type=float, help="dropout of the model (cnn, ff, resnet18 head)")
    a("--width", type=int, help="cnn: channels of the first block (default: 32)")
    a("--pretrained", choices=["imagenet", "none"], help="resnet18: start from torchvision's ImageNet weights "
      "(downloads them; conv1 averaged to one channel)")
    a("--weights", help="resnet18: start from a local torchvision ResNet18 state_dict file")
    a("--patience", type=int, help="early stop after this many epochs without validation gain (default: 10)")
    a("--seed", type=int, help="random seed (default: 0)")
    a("--limit", type=int, help="train on the first N training images only (quick runs)")
    a("--no-bf16", dest="bf16", action="store_false", default=None,
      help="train in fp32 instead of bfloat16 autocast (slower on CPUs with AVX-512 BF16)")
    a("--threads", type=int, help="CPU threads for torch (default: all cores)")
    a("--out", default=str(ROOT / "models_zoo"), help="ONNX file + manifest folder (default: models_zoo/)")
    a("--name", help="model name in the manifest (default: the --model name)")
    a("--log-root", default=str(ROOT / "logs"), help="where run folders go (default: logs/)")
    a("--resume", nargs="?", const="latest", metavar="RUN_DIR",
      help="continue a killed run: its folder, or without a value the newest unfinished run of --model")
    a("--weights-format", choices=WEIGHT_FORMATS, default="fp32",
      help="export weights as fp16 (cnn/resnet18) or int8 (ff) when PublicTest accuracy stays within 0.3 points")
    a("--no-export", action="store_true", help="train only; skip ONNX export and the PrivateTest evaluation")
    a("--quiet", action="store_true", help="no progress bars")
    return p


def read_config_file(path: str | os.PathLike) -> dict:
    """TrainConfig fields from JSON: a bare config, or one wrapped as ``{"config": ..., "search": ...}``
    (an annealing ``best.json``)."""
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read config ({e})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a JSON object of TrainConfig fields")
    return dict(loaded.get("config", loaded))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    d: dict = read_config_file(args.config) if args.config else {}
    direct = ["model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "scheduler",
              "label_smoothing", "class_weighted", "online_aug", "erase", "patience", "seed", "limit", "augmented",
              "bf16"]
    for key in direct:
        value = getattr(args, key)
        if value is not None:
            d[key] = value
    params = dict(d.get("model_params", {}))
    for key in ("dropout", "width", "weights"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    if args.pretrained == "imagenet":
        params["pretrained"] = "imagenet"
    d["model_params"] = params
    cfg = TrainConfig.from_dict(d)
    bad = set(params) - {"cnn": {"width", "dropout", "fc"}, "ff": {"hidden", "dropout", "slope", "per_image"},
                         "resnet18": {"dropout", "pretrained", "weights"}}[cfg.model]
    if bad:
        raise ValueError(f"model {cfg.model} has no parameter(s) {', '.join(sorted(bad))}")
    return cfg


def find_resumable(log_root: Path, model: str | None) -> Path:
    runs = sorted((p for p in log_root.glob(f"{model or '*'}-*") if (p / "last.pt").exists()),
                  key=lambda p: (p / "last.pt").stat().st_mtime)
    if not runs:
        raise ValueError(f"no run of {model or 'any model'} with last.pt under {log_root} to resume")
    return runs[-1]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        log_root = Path(args.log_root)
        if args.resume:
            run_dir = find_resumable(log_root, args.model) if args.resume == "latest" else Path(args.resume)
            cfg = TrainConfig.from_dict(checkpoint.load(run_dir / "last.pt")["config"])
        else:
            cfg = config_from_args(args)
            run_dir = new_run_dir(cfg.model, log_root)
        data = load_fer2013(args.data)
        print(f"{cfg.model}: {count_parameters(build_model(cfg.model, **cfg.model_params)):,} parameters, "
              f"run folder {run_dir}", flush=True)
        result = fit(cfg, data, run_dir, resume=bool(args.resume), progress=not args.quiet)
        print(f"best validation accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}; "
              f"{result.seconds / 60:.1f} min, {result.images_per_second:.0f} images/s")
        if not args.no_export:
            metrics = finish(result, cfg, data, Path(args.out), args.name, args.weights_format)
            print(f"exported {Path(args.out) / ((args.name or cfg.model) + '.onnx')}: "
                  + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    except (DatasetError, ValueError, FileNotFoundError, TrainingDiverged, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
