"""The training data path: the set resident on the device as uint8, batches gathered by index, augmentation there.

FER2013 is small (114,836 x 48 x 48 uint8 = 265 MB with the offline augmentation), so it is copied to the
device once and every batch is one index gather plus a handful of vectorised ops (mirror, replicate-padded
shift, random erasing) on the device: no per-image Python work, no DataLoader processes, and on a GPU no
host-to-device copy per step.

Determinism: each epoch's order comes from a CPU generator seeded from (seed, epoch), the same on every
device and every process, so a resumed run draws the same batches as an uninterrupted one and N processes
split exactly the order one process would use. Augmentation parameters are drawn for the whole global batch
on every process and each process keeps its own rows, so a distributed step augments exactly as a single
process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.datasets import FER2013


@dataclass(frozen=True)
class TrainingSet:
    """What one epoch iterates: images, hard labels, FER+ vote distributions (``ferplus-soft`` only) and
    ``rows``, each row's index in the whole pool (the offline-augmented set or the raw split) that per-row
    archives such as a teacher's logits are indexed by."""

    images: np.ndarray
    labels: np.ndarray
    dist: np.ndarray | None
    rows: np.ndarray


def label_votes(cfg: TrainConfig):  # noqa: ANN201 - training.ferplus.Votes | None
    """The run's FER+ votes, or None when it has no ``ferplus`` file."""
    if not cfg.ferplus:
        return None
    from training.ferplus import read_votes

    return read_votes(cfg.ferplus)


def training_set(cfg: TrainConfig, data: FER2013, votes=None) -> TrainingSet:  # noqa: ANN001
    """The offline-augmented set if given, else the raw split, limited to ``cfg.limit`` originals and to the
    rows the label source keeps (training.ferplus.targets), labelled by it."""
    from training.ferplus import targets

    if cfg.augmented:
        from training.augment import load as load_augmented

        aug = load_augmented(cfg.augmented)
        if int(aug.source_index.max()) + 1 != len(data.train):
            raise ValueError(
                f"{cfg.augmented}: made from {int(aug.source_index.max()) + 1} training images, but the data has "
                f"{len(data.train)}; rerun training.augment on the same --data"
            )
        images, source = aug.images, aug.source_index.astype(np.int64)
    else:
        images, source = data.train.images, np.arange(len(data.train))
    if votes is None:
        votes = label_votes(cfg)
    t = targets(data.train, votes, cfg.labels, cfg.contempt, drop_nonfaces=not cfg.keep_nonfaces)
    keep = t.keep[source]
    if cfg.limit is not None:
        keep &= source < cfg.limit
    rows = np.flatnonzero(keep)
    labels = t.labels[source[rows]]  # the augmented archive's labels are its originals' (mirrors keep them)
    dist = None if t.soft is None else t.soft[source[rows]]
    return TrainingSet(images[rows] if len(rows) != len(images) else images, labels, dist, rows)


def training_arrays(cfg: TrainConfig, data: FER2013) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels one epoch iterates (training_set without the extras)."""
    ts = training_set(cfg, data)
    return ts.images, ts.labels


def validation_split(cfg: TrainConfig, data: FER2013, votes=None):  # noqa: ANN001, ANN201 - Split
    """PublicTest as the run is validated on: FER2013's labels, or the FER+ majority (contempt dropped, the
    evaluation truth, so runs with either contempt rule pick epochs on the same faces) for FER+ label sources."""
    if cfg.labels == "fer2013":
        return data.val
    from training.ferplus import truth_split

    return truth_split(data.val, votes if votes is not None else label_votes(cfg))


def validation_rows(cfg: TrainConfig, data: FER2013, votes=None) -> np.ndarray | None:  # noqa: ANN001
    """Which PublicTest rows :func:`validation_split` keeps, in its order (indices into ``data.val``), or None
    when it keeps them all in order (FER2013 labels). With FER+ labels the faces without a FER+ majority leave."""
    if cfg.labels == "fer2013":
        return None
    from training.ferplus import truth

    return np.flatnonzero(truth(data.val, votes if votes is not None else label_votes(cfg)) >= 0)


@dataclass(frozen=True)
class ResidentSet:
    """A split on the device: ``images`` uint8 [N,H,W], ``labels`` int64 [N], for distillation the teacher's
    probabilities ``soft`` float32 [N,7], and for ``ferplus-soft`` the vote distributions ``dist`` [N,7]."""

    images: torch.Tensor
    labels: torch.Tensor
    soft: torch.Tensor | None = None
    dist: torch.Tensor | None = None

    @classmethod
    def put(cls, images: np.ndarray, labels: np.ndarray, device: torch.device,
            soft: np.ndarray | None = None, dist: np.ndarray | None = None) -> ResidentSet:
        imgs = torch.from_numpy(np.ascontiguousarray(images))
        labs = torch.from_numpy(np.ascontiguousarray(labels)).long()
        for name, extra in (("soft", soft), ("vote-distribution", dist)):
            if extra is not None and len(extra) != len(labels):
                raise ValueError(f"{len(extra)} {name} targets for {len(labels)} training images")

        def put_rows(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)

        return cls(imgs.to(device), labs.to(device), put_rows(soft), put_rows(dist))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images [B,1,H,W] in [0,1] and labels for the indices ``idx`` (on the same device)."""
        return self.images[idx].unsqueeze(1).float().div_(255), self.labels[idx]


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def epoch_generators(seed: int, epoch: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Generator]:
    """(order of the ``n`` examples on ``device``, generator for the augmentation on ``device``).

    The order always comes from a CPU generator, so it is the same on every device; on the CPU the same
    generator then drives the augmentation, as it always has.
    """
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(n, generator=gen)
    if device.type == "cpu":
        return order, gen
    return order.to(device), torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch))


def online_augment(x: torch.Tensor, gen: torch.Generator, cfg: TrainConfig,
                   shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Random mirror, shift (replicate-padded crop) and erasing for a float batch [B,1,H,W], all vectorised.

    ``shard=(rank, world)``: ``x`` is rank's slice of a global batch of ``B * world`` images; the random
    parameters are drawn for the global batch (same generator state on every rank) and sliced, so the
    global batch is augmented exactly as one process would augment it. Everything runs on ``x``'s device,
    which must be ``gen``'s.
    """
    b, _, h, w = x.shape
    rank, world = shard
    n, dev = b * world, x.device
    rows = slice(rank * b, (rank + 1) * b)

    def rand(*size):
        return torch.rand(*size, generator=gen, device=dev)[rows]

    def randint(lo, hi, size):
        return torch.randint(lo, hi, size, generator=gen, device=dev)[rows]

    if cfg.online_aug in ("flip", "shift"):
        flip = rand(n) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.online_aug == "shift" and cfg.shift > 0:
        s = cfg.shift
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        oy = randint(0, 2 * s + 1, (n,))
        ox = randint(0, 2 * s + 1, (n,))
        ys = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]
        xs = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]
        x = padded[torch.arange(b, device=dev)[:, None, None], 0, ys, xs].unsqueeze(1)
    if cfg.erase > 0:
        hit = rand(n) < cfg.erase
        eh = randint(h // 6, h // 2, (n,))
        ew = randint(w // 6, w // 2, (n,))
        y0 = (rand(n) * (h - eh)).long()
        x0 = (rand(n) * (w - ew)).long()
        yy = torch.arange(h, device=dev)[None, :, None]
        xx = torch.arange(w, device=dev)[None, None, :]
        box = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None])
        box = box & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None])
        fill = rand(n, 1, 1)
        x = torch.where((box & hit[:, None, None]).unsqueeze(1), fill.unsqueeze(1), x)
    return x


def mix_batch(x: torch.Tensor, cfg: TrainConfig, epoch: int, step: int
              ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Mixup or cutmix of a float batch [B,1,H,W] with a permutation of itself: (mixed, perm, lam).

    ``lam`` is the share of each row's own face (for cutmix, the share of its pixels left uncovered), so the
    loss weights the row's target by ``lam`` and its partner's by ``1 - lam``. Parameters come from a
    generator seeded by (seed, epoch, step): a resumed run mixes as an uninterrupted one, and every DDP
    process draws the same ``lam`` and box (each permutes its own rows).
    """
    if cfg.mix == "none":
        return x, None, 1.0
    rng = np.random.default_rng([cfg.seed, epoch, step, 7])
    lam = float(rng.beta(cfg.mix_alpha, cfg.mix_alpha))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    if cfg.mix == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[-2:]
    ch, cw = int(round(h * np.sqrt(1 - lam))), int(round(w * np.sqrt(1 - lam)))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + (ch + 1) // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + (cw + 1) // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    return mixed, perm, 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
