"""The training loss: cross-entropy on the hard labels (or on FER+ vote distributions), mixed with
distillation to soft targets, both following a mixed batch (mixup/cutmix) by its share.

Kept apart from the loop so each term is testable alone. Under DDP every term is scaled so that DDP's
average of the processes' gradients equals the gradient of the global batch's loss, as one process would
compute it (each process holds an equal share of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.config import TrainConfig


@dataclass(frozen=True)
class Targets:
    """What a batch is scored against: labels ``y`` (this process's rows), the global batch's labels (for
    class-weight normalisation), optional teacher probabilities, and a mixing (partner rows ``perm`` and the
    share ``lam`` of the original face), when the batch was mixed."""

    y: torch.Tensor
    y_global: torch.Tensor
    soft: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    lam: float = 1.0
    dist: torch.Tensor | None = None  # FER+ vote distributions, the label target instead of ``y`` (ferplus-soft)


def hard_loss(logits: torch.Tensor, y: torch.Tensor, y_global: torch.Tensor, cfg: TrainConfig,
              weight: torch.Tensor | None, world: int) -> torch.Tensor:
    """Cross-entropy of this process's rows (class-weighted mean over the global batch when weighted)."""
    if world == 1:
        return F.cross_entropy(logits, y, weight=weight, label_smoothing=cfg.label_smoothing)
    total = F.cross_entropy(logits, y, weight=weight, label_smoothing=cfg.label_smoothing, reduction="sum")
    denom = weight[y_global].sum() if weight is not None else y_global.numel()
    return total * world / denom


def distribution_loss(logits: torch.Tensor, dist: torch.Tensor, y_global: torch.Tensor, cfg: TrainConfig,
                      world: int) -> torch.Tensor:
    """Cross-entropy against a target distribution (Barsoum et al.'s "probability" scheme), smoothed as
    F.cross_entropy smooths a one-hot label, so on one-hot votes it equals :func:`hard_loss` exactly."""
    if cfg.label_smoothing:
        dist = dist * (1 - cfg.label_smoothing) + cfg.label_smoothing / dist.shape[1]
    per_row = -(dist * F.log_softmax(logits, dim=1)).sum(1)
    if world == 1:
        return per_row.mean()
    return per_row.sum() * world / y_global.numel()


def soft_loss(logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at ``temperature``, times T^2 so its gradient scale does not depend on T.

    ``teacher`` holds probabilities already softened at the same temperature (training.distill)."""
    log_student = F.log_softmax(logits / temperature, dim=1)
    kl = F.kl_div(log_student, teacher, reduction="none").sum(1)
    return kl.mean() * temperature**2


def batch_loss(logits: torch.Tensor, t: Targets, cfg: TrainConfig, weight: torch.Tensor | None = None,
               world: int = 1) -> torch.Tensor:
    """(1 - alpha) * hard + alpha * soft, each split between the two faces of a mixed batch by ``lam``."""

    def label(perm: torch.Tensor | None = None) -> torch.Tensor:
        if t.dist is not None:
            return distribution_loss(logits, t.dist if perm is None else t.dist[perm], t.y_global, cfg, world)
        return hard_loss(logits, t.y if perm is None else t.y[perm], t.y_global, cfg, weight, world)

    loss = label() if t.perm is None else t.lam * label() + (1 - t.lam) * label(t.perm)
    if t.soft is None or cfg.distill_alpha == 0:
        return loss
    soft = t.soft if t.perm is None else t.lam * t.soft + (1 - t.lam) * t.soft[t.perm]
    return (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * soft_loss(logits, soft, cfg.distill_temperature)
