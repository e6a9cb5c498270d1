"""Train one of the three models on FER2013, validate on PublicTest, export the best epoch to ONNX.

Runs on the CPU, a CUDA GPU or Apple MPS (``--device``, training.device) and on several processes or machines
through ``torchrun`` (training.distributed). The training set lives on the device as uint8 and batches are
gathered and augmented there (training.batches); the forward/backward pass runs in the device's mixed
precision (training.precision: bf16 autocast on this project's CPU, 2.8-3.2x faster than fp32 for the CNN).

Every epoch writes ``last.pt`` (model, optimizer, scheduler, history, RNG seeds), so ``--resume`` continues a
killed run at the epoch it was in; each epoch reseeds from (seed, epoch), so a resumed run draws the same
batches and augmentations as an uninterrupted one. Example::

    python -m training.train --model cnn --data ../shared/data/fer2013 --config training/configs/cnn.json
    torchrun --nproc_per_node 4 -m training.train --model cnn --data ../shared/data/fer2013 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import checkpoint, distributed, metrics
from training.averaging import WeightAverage
from training.batches import (
    ResidentSet,
    epoch_generators,
    epoch_seed,
    label_votes,
    mix_batch,
    online_augment,
    training_arrays,
    training_set,
    validation_rows,
    validation_split,
)
from training.compress import FORMATS as WEIGHT_FORMATS
from training.config import ROOT, TrainConfig, read_config_file
from training.datasets import FER2013, DatasetError, load_fer2013
from training.device import DEVICE_HELP, describe
from training.distill import TEACHERS_HELP, soft_targets
from training.events import summary_writer
from training.ferplus import CONTEMPT_RULES, EMOTIONS, LABEL_SOURCES, LABELS_HELP
from training.losses import Targets, batch_loss, class_prior
from training.models import MODEL_NAMES, build_model, count_parameters
from training.precision import Precision, choose_precision, make_scaler
from training.summary import images_seen, training_summary

# Re-exported: the annealing search, the ablation and the tests import these from here.
__all__ = ["ROOT", "TrainConfig", "read_config_file", "images_seen", "training_arrays", "online_augment",
           "training_summary", "fit", "RunResult", "TrainingDiverged", "main"]

CHECK_EVERY = 20  # steps between reading the loss on the host: each read waits for the GPU to finish


def _sum_dtype(device: torch.device) -> torch.dtype:
    """Running sums in float64, except on Apple MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the annealing search records such trials as failed."""


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


@dataclass
class Runtime:
    """Where and how a run computes: fixed for the run, shared by the epoch and the validation."""

    device: torch.device
    precision: Precision
    dist: distributed.Dist
    weight: torch.Tensor | None  # class weights on the device, or None
    prior: torch.Tensor | None = None  # the training set's class prior on the device (training.losses)

    def record(self) -> dict:
        """Device fields of every history.json row (and so of the manifest's training record)."""
        return {**describe(self.device).as_dict(), "processes": self.dist.world, "precision": self.precision.name}

    def banner(self) -> str:
        """The line a run prints at start, so a log says where it trained."""
        info = self.record()
        procs = f", {self.dist.world} processes ({self.dist.backend})" if self.dist.active else ""
        return f"device {info['device']} ({info['device_name']}), torch {info['torch']}, {self.precision.name}{procs}"


@dataclass(frozen=True)
class SplitScore:
    """A split scored by :func:`evaluate_split`: plain cross-entropy and accuracy, the confusion matrix (rows
    true, columns predicted) and, when kept, the logits of every row in the split's order."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # int64 [C,C]
    logits: np.ndarray | None = None  # float32 [N,C]

    @property
    def mean_recall(self) -> float:
        return metrics.mean_class_recall(self.confusion)

    @property
    def macro_f1(self) -> float:
        return metrics.macro_f1(self.confusion)


@torch.inference_mode()
def evaluate_split(model: torch.nn.Module, split: ResidentSet, rt: Runtime, batch: int = 512,
                   keep_logits: bool = False) -> SplitScore:
    """Loss, accuracy and the confusion matrix in fp32, the exported model's precision, on the plain logits
    (what inference uses, whatever the training loss adjusted); each process scores its share, accumulating
    on the device, then all processes agree on the sums. ``keep_logits`` also returns every row's logits."""
    model.eval()
    n, c = len(split), len(EMOTIONS)
    share = -(-n // rt.dist.world)
    lo, hi = rt.dist.rank * share, min(n, (rt.dist.rank + 1) * share)
    loss = torch.zeros((), dtype=_sum_dtype(rt.device), device=rt.device)
    cm = torch.zeros(c * c, dtype=torch.int64, device=rt.device)
    kept = torch.zeros((n, c), dtype=torch.float32, device=rt.device) if keep_logits else None
    for i in range(lo, hi, batch):
        idx = torch.arange(i, min(i + batch, hi), device=rt.device)
        x, y = split.batch(idx)
        logits = model(x).float()
        loss += F.cross_entropy(logits, y, reduction="sum")
        cm += torch.bincount(y * c + logits.argmax(1), minlength=c * c)
        if kept is not None:
            kept[i : i + len(idx)] = logits
    sums = distributed.all_sum(torch.cat([loss.reshape(1), cm.to(loss.dtype)]), rt.dist, rt.device)
    matrix = sums[1:].round().long().numpy().reshape(c, c)
    all_logits = None
    if kept is not None:  # each process filled its own rows, zeros elsewhere: the sum is every row
        all_logits = distributed.all_sum(kept, rt.dist, rt.device).numpy().astype(np.float32)
    return SplitScore(float(sums[0]) / max(n, 1), float(np.trace(matrix)) / max(n, 1), matrix, all_logits)


def save_outputs(run_dir: Path, name: str, logits: np.ndarray, info: dict) -> None:
    """``<name>_logits.npy`` and ``<name>.json`` (which rows, which epoch), each written whole or not at all."""
    tmp = run_dir / f".{name}_logits.npy"
    np.save(tmp, logits.astype(np.float32))
    os.replace(tmp, run_dir / f"{name}_logits.npy")
    tmp = run_dir / f".{name}.json"
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, run_dir / f"{name}.json")


def _check_finite(loss_sum: torch.Tensor, rt: Runtime, epoch: int, step: int) -> None:
    """Raise TrainingDiverged on every process at once if any process's running loss is not finite."""
    bad = distributed.all_max(0.0 if torch.isfinite(loss_sum).item() else 1.0, rt.dist, rt.device)
    if bad:
        raise TrainingDiverged(f"loss became {loss_sum.item()} at epoch {epoch}, step {step}")


def train_epoch(model, opt, sched, scaler, rt: Runtime, train_set: ResidentSet, cfg: TrainConfig, epoch: int,
                progress: bool, average: WeightAverage | None = None):
    """One pass over the training set; returns (loss, accuracy, seconds), summed over all processes.

    Positional, with ``epoch`` eighth, as the annealing tests wrap it. ``average`` (the EMA of the weights)
    is updated after every step. Each step takes rows
    ``[rank * b, (rank + 1) * b)`` of the global batch ``order[step * B : (step + 1) * B]``, ``b = B / N``.
    """
    model.train()
    order, gen = epoch_generators(cfg.seed, epoch, len(train_set), rt.device)
    # dropout masks: same on resume as uninterrupted; different on each process
    torch.manual_seed(epoch_seed(cfg.seed, epoch) + 1_000_003 * rt.dist.rank)
    rank, world = rt.dist.rank, rt.dist.world
    big, b = cfg.batch_size, cfg.batch_size // world
    steps = len(order) // big  # drop the ragged last batch: BatchNorm dislikes tiny batches
    total_loss = torch.zeros((), dtype=_sum_dtype(rt.device), device=rt.device)
    correct = torch.zeros((), dtype=torch.int64, device=rt.device)
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
               disable=not (progress and rt.dist.is_main), dynamic_ncols=True, leave=False)
    for step in bar:
        glob = order[step * big : (step + 1) * big]
        idx = glob[rank * b : (rank + 1) * b]
        x, y = train_set.batch(idx)
        x = online_augment(x, gen, cfg, (rank, world))
        x, perm, lam = mix_batch(x, cfg, epoch, step)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.precision.autocast(rt.device):
            logits = model(x)
        targets = Targets(y, train_set.labels[glob] if world > 1 else y,
                          None if train_set.soft is None else train_set.soft[idx], perm, lam,
                          None if train_set.dist is None else train_set.dist[idx], rt.prior)
        loss = batch_loss(logits.float(), targets, cfg, rt.weight, world)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before the step
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sched.step()
        if average is not None:
            average.update()
        total_loss += loss.detach() * (big / world)
        correct += (logits.detach().argmax(1) == y).sum()
        if step % CHECK_EVERY == 0 or step == steps - 1:
            _check_finite(total_loss, rt, epoch, step)
            if rt.dist.is_main and progress:
                seen = (step + 1) * b
                bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}",
                                lr=f"{sched.get_last_lr()[0]:.2e}")
    bar.close()
    if rt.device.type == "cuda":
        torch.cuda.synchronize(rt.device)
    secs = distributed.all_max(time.perf_counter() - start, rt.dist, rt.device)
    loss_sum, n_correct = distributed.all_sum(torch.stack([total_loss, correct.to(total_loss.dtype)]), rt.dist,
                                              rt.device).tolist()
    seen = steps * big
    return loss_sum / max(seen, 1), n_correct / max(seen, 1), secs


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
    device: dict = field(default_factory=dict)  # device, device_name, torch, processes, precision


def new_run_dir(model: str, log_root: Path = ROOT / "logs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = log_root / f"{model}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = log_root / f"{model}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def _cpu_tensors(obj):  # noqa: ANN001, ANN202
    """A copy of a (nested) state dict with every tensor on the CPU: checkpoints load anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_tensors(v) for v in obj)
    return obj


def fit(
    cfg: TrainConfig, data: FER2013, run_dir: Path, resume: bool = False, progress: bool = True,
    tensorboard: bool = True, max_seconds: float | None = None, device: str | torch.device = "cpu",
    compile_model: bool = False,
) -> RunResult:
    """Train with validation on PublicTest, keeping ``best.pt`` and ``last.pt`` in ``run_dir``.

    Never touches PrivateTest: the annealing search calls this directly for its trials. ``device`` is any
    ``--device`` spelling (training.device); under torchrun this is one process of a DDP run and only rank 0
    writes files. Checkpoints are always written with CPU tensors. ``compile_model`` wraps the model in
    ``torch.compile`` (README says where that measured faster).

    Besides the checkpoints, ``run_dir`` gets ``prior.json`` (the training class prior the balanced losses
    use) and, rewritten whenever validation improves, so the best epoch's at the end, ``publictest_logits.npy``
    (float32 [N,7], the validation split's rows in order) with ``publictest.json`` (which PublicTest rows those
    are, the epoch): prior correction, calibration and KL need no checkpoint afterwards.
    """
    cfg.validate()
    ctx = distributed.current()
    dev = distributed.local_device(device)
    main_rank = ctx.is_main
    if cfg.batch_size % ctx.world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {ctx.world} processes")
    run_dir = Path(run_dir)
    if main_rank:
        run_dir.mkdir(parents=True, exist_ok=True)
    votes = label_votes(cfg)
    ts = training_set(cfg, data, votes)
    images, labels = ts.images, ts.labels
    steps_per_epoch = len(labels) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch size {cfg.batch_size} is larger than the {len(labels)} training images")
    soft = soft_targets(cfg, data, ts.rows) if cfg.distill else None
    train_set = ResidentSet.put(images, labels, dev, soft, ts.dist)
    val = validation_split(cfg, data, votes)
    val_set = ResidentSet.put(val.images, val.labels, dev)
    val_rows = validation_rows(cfg, data, votes)
    prior = class_prior(labels, ts.dist, len(EMOTIONS))

    precision = choose_precision(dev, cfg.bf16)
    rt = Runtime(dev, precision, ctx, class_weights(labels).to(dev) if cfg.class_weighted else None,
                 torch.tensor(prior, dtype=torch.float32, device=dev))
    scaler = make_scaler(precision, dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed 48x48 inputs: pick the fastest kernels once

    torch.manual_seed(cfg.seed)
    net = build_model(cfg.model, **cfg.model_params).to(dev)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if ctx.active:
        net = distributed.convert_batchnorm(net, dev)
    opt = make_optimizer(cfg, net)
    sched = make_scheduler(cfg, opt, steps_per_epoch)
    average = WeightAverage(net, cfg.ema) if cfg.ema else None

    history: list[dict] = []
    best_acc, best_epoch, bad_epochs, start_epoch, seconds = -1.0, 0, 0, 1, 0.0
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    has_last = distributed.broadcast(resume and main_rank and last_path.exists(), ctx, dev)
    if has_last:
        state = distributed.broadcast(checkpoint.load(last_path) if main_rank else None, ctx, dev)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if average is not None:
            average.load_state_dict(state["average"])
        history, best_acc, best_epoch = state["history"], state["best_acc"], state["best_epoch"]
        bad_epochs, seconds, start_epoch = state["bad_epochs"], state["seconds"], state["epoch"] + 1
        if progress and main_rank:
            print(f"resuming {run_dir} at epoch {start_epoch} (best val {best_acc:.4f} at epoch {best_epoch})")
    model = distributed.wrap(net, ctx, dev)
    if compile_model:
        model = torch.compile(model)
    if main_rank:
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        (run_dir / "prior.json").write_text(json.dumps({
            "classes": list(EMOTIONS), "prior": [round(float(x), 8) for x in prior],
            "source": "mean of the training vote distributions" if ts.dist is not None
            else "training label frequencies", "train_images": len(labels),
        }, indent=2))
    val_info = {
        "split": "PublicTest",
        "truth": "FER2013 labels" if cfg.labels == "fer2013" else "FER+ majority (contempt dropped)",
        "rows_note": "rows: indices into PublicTest of the faces scored, in this order (the faces with a FER+ "
        "majority, training.ferplus.truth_split); null = every PublicTest face in order",
        "n": len(val_set), "rows": None if val_rows is None else val_rows.tolist(),
    }

    writer = summary_writer(run_dir, progress, "history.json and curves.png") if tensorboard and main_rank \
        else None
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
        train_loss, train_acc, secs = train_epoch(model, opt, sched, scaler, rt, train_set, cfg, epoch, progress,
                                                  average)
        # with weight averaging, the averaged weights are the ones validated, kept as best.pt and exported
        chosen = net if average is None else average.model
        val_score = evaluate_split(chosen, val_set, rt, keep_logits=True)
        val_loss, val_acc = val_score.loss, val_score.accuracy
        seconds += secs
        row = {
            "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
            "val_acc": val_acc, "val_mean_recall": val_score.mean_recall, "val_macro_f1": val_score.macro_f1,
            "lr": sched.get_last_lr()[0], "seconds": secs,
            "images_per_second": steps_per_epoch * cfg.batch_size / secs, **rt.record(),
        }
        if average is not None:  # the raw weights' score too: the evidence of what averaging adds
            raw = evaluate_split(net, val_set, rt)
            row["val_loss_raw"], row["val_acc_raw"] = raw.loss, raw.accuracy
        history.append(row)
        improved = val_acc > best_acc
        if improved:
            best_acc, best_epoch, bad_epochs = val_acc, epoch, 0
        else:
            bad_epochs += 1
        if main_rank:
            if improved:
                best = _cpu_tensors(chosen.state_dict())
                checkpoint.save({**meta, "model": best, "epoch": epoch, "val_acc": val_acc}, best_path)
                # the best epoch's PublicTest logits, kept beside the checkpoint (and after it is deleted):
                # prior correction, calibration and KL can be computed from them later, resumed runs included
                save_outputs(run_dir, "publictest", val_score.logits,
                             {**val_info, "epoch": epoch, "val_acc": val_acc})
            checkpoint.save({
                **meta, "model": _cpu_tensors(net.state_dict()), "optimizer": _cpu_tensors(opt.state_dict()),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "average": _cpu_tensors(average.state_dict()) if average is not None else None,
                "epoch": epoch, "history": history, "best_acc": best_acc, "best_epoch": best_epoch,
                "bad_epochs": bad_epochs, "seconds": seconds,
            }, last_path)
            (run_dir / "history.json").write_text(json.dumps(history, indent=2))
            plot_curves(history, run_dir / "curves.png", title=f"{cfg.model} ({run_dir.name})")  # watchable mid-run
        if writer is not None:
            for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_mean_recall", "val_macro_f1", "lr",
                      "images_per_second"):
                writer.add_scalar(k.replace("_", "/", 1), row[k], epoch)
            writer.flush()
        if progress and main_rank:
            print(f"epoch {epoch:3d}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} mean recall {val_score.mean_recall:.4f}  "
                  f"{row['images_per_second']:.0f} img/s  "
                  f"{secs:.0f}s{'  *best' if best_epoch == epoch else ''}", flush=True)
    if stopped_early and progress and main_rank:
        print(f"early stop: no validation improvement for {cfg.patience} epochs")
    trained_images = images_seen(history)
    result = RunResult(
        run_dir=run_dir, best_val_accuracy=best_acc, best_epoch=best_epoch, epochs_run=len(history),
        seconds=seconds, train_images=len(labels), history=history,
        images_per_second=trained_images / seconds if seconds else 0.0, device=rt.record(),
    )
    if writer is not None:
        hparams = {k: v for k, v in dataclasses.asdict(cfg).items() if isinstance(v, int | float | str | bool)}
        hparams.update({f"model.{k}": str(v) for k, v in cfg.model_params.items()})
        writer.add_hparams(hparams, {"hparam/best_val_acc": best_acc}, name="hparams")
        writer.close()
    return result


def finish(
    result: RunResult, cfg: TrainConfig, data: FER2013, zoo_dir: Path, name: str | None = None,
    weights_format: str = "fp32",
) -> dict:
    """Export the best epoch to ONNX, score it on PublicTest and PrivateTest, and record the manifest."""
    from training.export import export_and_register

    model = checkpoint.load_model(result.run_dir / "best.pt")
    training = training_summary(result.run_dir, data)
    return export_and_register(model, name or cfg.model, zoo_dir, data, training, result.run_dir, weights_format,
                               votes=label_votes(cfg), labels=cfg.labels)


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
        "  python -m training.train --model cnn --data ../shared/data/fer2013 --resume   # after a kill\n"
        "  python -m training.train --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 "
        "--labels ferplus-soft --ferplus ../shared/data/ferplus/ferplus_votes.csv\n"
        "  python -m training.train --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 "
        "--logit-adjust 1.0   # balanced softmax on the FER+ votes\n"
        "  python -m training.train --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 "
        "--photometric 0.5 --geometric 0.5 --crop-jitter 0.5 --occlusion 0.5   # faces unlike FER2013's\n"
        "  python -m training.train --model resnet18 --data ../shared/data/fer2013 --device cuda:1\n"
        "  torchrun --nproc_per_node 4 -m training.train --model cnn --data ../shared/data/fer2013 --device cuda\n"
        "    (one model on 4 GPUs; --batch-size and --lr stay global; --resume works the same way)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--model", choices=MODEL_NAMES, help="which network (default: cnn)")
    a("--data", required=True, help="fer2013.csv or the Kaggle folder with train/<emotion>/ and test/<emotion>/")
    a("--augmented", help="offline-augmented training set from training.augment (.npz) to train on instead")
    a("--config", help="JSON with TrainConfig fields, e.g. training/configs/cnn.json or an annealing best.json")
    a("--epochs", type=int, help="maximum epochs (default: 30)")
    a("--batch-size", type=int, help="global batch size: under torchrun each of N processes takes batch/N "
      "(default: 128)")
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
    a("--distill", metavar="ARCHIVE", help="learn from a teacher's soft targets too: an archive from "
      "training.distill, e.g. data/fer2013-teacher.npz (computed on the same --augmented set)")
    a("--distill-alpha", type=float, help="weight of the distillation term against the hard-label loss, "
      "0..1 (default: 0.5)")
    a("--distill-temperature", type=float, help="softening temperature of teacher and student (default: 2)")
    a("--distill-teachers", help=f"which archive models teach: {TEACHERS_HELP}, or names such as cnn,resnet18 "
      "(default: all, weighted as the manifest's ensemble)")
    a("--ema", type=float, help="keep an exponential moving average of the weights with this decay per step, "
      "e.g. 0.999, and validate/export it instead of the raw weights (default: 0 = off)")
    a("--mix", choices=["none", "mixup", "cutmix"], help="mix each batch with a permutation of itself: mixup "
      "blends two faces, cutmix pastes a box of one into the other (default: none)")
    a("--mix-alpha", type=float, help="Beta(a, a) parameter of the mixing share (default: 0.2)")
    a("--labels", choices=LABEL_SOURCES, help=f"what the model learns: {LABELS_HELP} (default: fer2013)")
    a("--ferplus", metavar="PATH", help="FER+ votes: ferplus_votes.csv for the image-folder layout or Microsoft's "
      "fer2013new.csv for fer2013.csv, e.g. ../shared/data/ferplus/ferplus_votes.csv; with it, images FER+ marks as "
      "not a face leave the training set")
    a("--contempt", choices=CONTEMPT_RULES, help="FER+ contempt votes: drop them, or fold them into disgust "
      "(default: drop)")
    a("--keep-nonfaces", action="store_true", default=None, help="keep images FER+ marks as not a face in the "
      "training set (default: they leave it when --ferplus is given)")
    a("--logit-adjust", type=float, metavar="TAU", help="logit-adjusted label loss (Menon et al., ICLR 2021): "
      "cross-entropy on logits + TAU * log(training class prior), so the model stops leaning on the big classes "
      "(neutral, happy); 1 = balanced softmax (Ren et al., 2020); inference uses the plain logits; the prior is "
      "the mean vote distribution for ferplus-soft, else the label frequencies, saved as prior.json "
      "(default: 0 = off)")
    a("--target-reweight", type=float, metavar="BETA", help="class-balanced targets: multiply each vote "
      "distribution by prior**-BETA per class and renormalise it (hard labels: row weights prior[y]**-BETA, mean "
      "1 per batch), e.g. 0.5 (default: 0 = off)")
    a("--photometric", type=float, metavar="P", help="camera and processing changes, each applied to a training "
      "image independently with probability P: Gaussian blur (sigma 0-1.2 px), contrast x0.6-1.4 around the "
      "image mean, gamma 0.7-1.4, Gaussian noise (std 0-0.06 of the range), a JPEG round trip at quality 15-60; "
      "e.g. 0.5 (default: 0 = off)")
    a("--geometric", type=float, metavar="P", help="with probability P per training image, one affine: rotation "
      "up to 15 degrees either way, face size x0.85-1.15, shift up to 8%% of the side, border pixels repeated; "
      "e.g. 0.5 (default: 0 = off)")
    a("--crop-jitter", type=float, metavar="P", help="with probability P per training image, re-frame it the way "
      "the app's face detectors frame faces (Haar boxes cropped at 1.09x, MTCNN at 0.99x, aligned or keeping "
      "the head's tilt): crop side 0.92-1.12 of FER2013's framing, centre moved up to 5%%, tilt up to 6 "
      "degrees; e.g. 0.5 (default: 0 = off)")
    a("--occlusion", type=float, metavar="P", help="with probability P per training image, cover part of the "
      "face: a glasses-like band across the eyes (dark or light, full width) or a hand-like grey ellipse over "
      "the lower half, one or the other; applied before --erase; e.g. 0.5 (default: 0 = off)")
    a("--patience", type=int, help="early stop after this many epochs without validation gain (default: 10); "
      "with --resume it replaces the run's own, e.g. to let an early-stopped onecycle run finish its schedule")
    a("--seed", type=int, help="random seed (default: 0)")
    a("--limit", type=int, help="train on the first N training images only (quick runs)")
    a("--no-amp", "--no-bf16", dest="bf16", action="store_false", default=None,
      help="train in fp32 instead of the device's mixed precision (bf16 autocast on CPUs with AVX-512 BF16 and "
      "on bf16 GPUs, fp16 + grad scaler on older GPUs); slower")
    a("--channels-last", action=argparse.BooleanOptionalAction, default=None,
      help="channels_last memory format for the convolutions (default: on; README has the measurement)")
    a("--device", default="auto", help=DEVICE_HELP + "; under torchrun, cuda means cuda:LOCAL_RANK")
    a("--compile", action="store_true", help="wrap the model in torch.compile (first epoch pays the compile "
      "time; see README for where it measured faster)")
    a("--threads", type=int, help="CPU threads for torch (default: all cores; torchrun sets 1 per process)")
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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    d: dict = read_config_file(args.config) if args.config else {}
    direct = ["model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "scheduler",
              "label_smoothing", "class_weighted", "online_aug", "erase", "patience", "seed", "limit", "augmented",
              "bf16", "channels_last", "distill", "distill_alpha", "distill_temperature", "distill_teachers", "ema",
              "mix", "mix_alpha", "labels", "ferplus", "contempt", "keep_nonfaces", "logit_adjust", "target_reweight",
              "photometric", "geometric", "crop_jitter", "occlusion"]
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


def plan_run(args: argparse.Namespace, ctx: distributed.Dist, device: torch.device) -> tuple[Path, TrainConfig]:
    """The run folder and config, decided by rank 0 alone and sent to the others: only rank 0 needs the log
    folder (other machines may not have it), and every rank fails with rank 0's one-line error, never waits."""
    plan: tuple = ("", {})
    if ctx.is_main:
        try:
            log_root = Path(args.log_root)
            if args.resume:
                run_dir = find_resumable(log_root, args.model) if args.resume == "latest" else Path(args.resume)
                cfg = TrainConfig.from_dict(checkpoint.load(run_dir / "last.pt")["config"])
                if args.patience is not None:  # the one setting a resumed run may change: stop later or sooner
                    cfg.patience = args.patience
            else:
                cfg = config_from_args(args)
                run_dir = new_run_dir(cfg.model, log_root)
            plan = (str(run_dir), dataclasses.asdict(cfg))
        except (ValueError, FileNotFoundError) as e:
            plan = ("", str(e))
    run_dir, cfg = distributed.broadcast(plan, ctx, device)
    if isinstance(cfg, str):
        raise ValueError(cfg)
    return Path(run_dir), TrainConfig.from_dict(cfg)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = distributed.SINGLE
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        ctx, device = distributed.setup(args.device)  # a missing device fails here, before the data loads
        run_dir, cfg = plan_run(args, ctx, device)
        data = load_fer2013(args.data)
        if ctx.is_main:
            print(Runtime(device, choose_precision(device, cfg.bf16), ctx, None).banner(), flush=True)
            print(f"{cfg.model}: {count_parameters(build_model(cfg.model, **cfg.model_params)):,} parameters, "
                  f"run folder {run_dir}", flush=True)
        result = fit(cfg, data, run_dir, resume=bool(args.resume), progress=not args.quiet, device=device,
                     compile_model=args.compile)
        if ctx.is_main:
            print(f"best validation accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}; "
                  f"{result.seconds / 60:.1f} min, {result.images_per_second:.0f} images/s")
        if ctx.is_main and not args.no_export:
            metrics = finish(result, cfg, data, Path(args.out), args.name, args.weights_format)
            print(f"exported {Path(args.out) / ((args.name or cfg.model) + '.onnx')}: "
                  + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    except (DatasetError, ValueError, FileNotFoundError, TrainingDiverged, RuntimeError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; continue with --resume", file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
