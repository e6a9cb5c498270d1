"""The training loss: cross-entropy on the hard labels (or on FER+ vote distributions), mixed with
distillation to soft targets, both following a mixed batch (mixup/cutmix) by its share.

Two balanced objectives (issue 34) act on the label term only, through the training set's class prior
(:func:`class_prior`, carried in :class:`Targets`):

- ``logit_adjust`` (tau): the label loss is taken on ``logits + tau * log(prior)``, the logit-adjusted loss of
  Menon et al. (ICLR 2021); tau = 1 is the balanced softmax of Ren et al. (NeurIPS 2020). Its optimum is the
  model whose plain softmax is the target divided by prior**tau, so rare classes win more often at inference,
  which uses the plain logits.
- ``target_reweight`` (beta): class-balanced re-weighting. A vote distribution is multiplied by
  prior**(-beta) per class and renormalised per row, so a unanimous face keeps its target and a split one
  moves its mass toward its rarer classes; a hard label weighs its row by prior[y]**(-beta), normalised to
  mean 1 over the (global) batch.

Both are 0 by default, which is exactly the plain loss.

Kept apart from the loop so each term is testable alone. Under DDP every term is scaled so that DDP's
average of the processes' gradients equals the gradient of the global batch's loss, as one process would
compute it (each process holds an equal share of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    prior: torch.Tensor | None = None  # the training set's class prior [C], for logit_adjust / target_reweight


PRIOR_FLOOR = 1e-6  # a class absent from a (tiny, --limit) training set: finite log and power, not inf


def class_prior(labels: np.ndarray, dist: np.ndarray | None = None, n_classes: int = 7) -> np.ndarray:
    """The training set's class prior (float64 [C], summing to 1): the mean of the target distributions when
    given (ferplus-soft), else the label frequencies; floored at PRIOR_FLOOR and renormalised."""
    if dist is not None and len(dist):
        prior = np.asarray(dist, np.float64).mean(axis=0)
    else:
        counts = np.bincount(np.asarray(labels, np.int64), minlength=n_classes).astype(np.float64)
        prior = counts / max(counts.sum(), 1)
    if len(prior) != n_classes or not prior.sum() > 0:
        raise ValueError(f"cannot compute a {n_classes}-class prior from {len(labels)} training labels")
    prior = np.maximum(prior / prior.sum(), PRIOR_FLOOR)
    return prior / prior.sum()


def reweight_distribution(dist: torch.Tensor, prior: torch.Tensor, beta: float) -> torch.Tensor:
    """Each row times prior**(-beta) per class, renormalised to sum to 1 (an all-zero row stays zero)."""
    w = dist * prior.pow(-beta)
    return w / w.sum(1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)


def reweighted_hard_loss(logits: torch.Tensor, y: torch.Tensor, y_global: torch.Tensor, cfg: TrainConfig,
                         class_weight: torch.Tensor, world: int) -> torch.Tensor:
    """Cross-entropy with per-row weights ``class_weight[y]`` normalised to mean 1 over the global batch (label
    smoothing stays per row, unweighted inside the row, unlike F.cross_entropy's ``weight``)."""
    per_row = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing, reduction="none")
    return (class_weight[y] * per_row).sum() * world / class_weight[y_global].sum()


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
    """(1 - alpha) * hard + alpha * soft, each split between the two faces of a mixed batch by ``lam``.

    ``cfg.logit_adjust`` and ``cfg.target_reweight`` change the label term (module docstring) and need
    ``t.prior``; the distillation term always compares the plain logits with the teacher."""
    tau, beta = cfg.logit_adjust, cfg.target_reweight
    if (tau or beta) and t.prior is None:
        raise ValueError("logit_adjust and target_reweight need the training prior (Targets.prior)")
    label_logits = logits + tau * t.prior.log() if tau else logits
    class_weight = t.prior.pow(-beta) if beta else None

    def label(perm: torch.Tensor | None = None) -> torch.Tensor:
        if t.dist is not None:
            dist = t.dist if perm is None else t.dist[perm]
            if beta:
                dist = reweight_distribution(dist, t.prior, beta)
            return distribution_loss(label_logits, dist, t.y_global, cfg, world)
        y = t.y if perm is None else t.y[perm]
        if class_weight is not None:
            return reweighted_hard_loss(label_logits, y, t.y_global, cfg, class_weight, world)
        return hard_loss(label_logits, y, t.y_global, cfg, weight, world)

    loss = label() if t.perm is None else t.lam * label() + (1 - t.lam) * label(t.perm)
    if t.soft is None or cfg.distill_alpha == 0:
        return loss
    soft = t.soft if t.perm is None else t.lam * t.soft + (1 - t.lam) * t.soft[t.perm]
    return (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * soft_loss(logits, soft, cfg.distill_temperature)
