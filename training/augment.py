"""Offline augmentation: expand FER2013's 28,709 training faces to 4x = 114,836.

Each original face yields four images: itself, its mirror, and two rotated copies (one clockwise, one
counter-clockwise by a per-image angle drawn from ``--min-angle``..``--max-angle``). Rotations reflect the
border instead of padding black, so the network never learns "black corner = rotated". Validation and test
are never augmented. The same ``--seed`` always gives byte-identical arrays.

Example::

    python -m training.augment --data ../shared/data/fer2013 --out data/fer2013-aug.npz
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core import atomic_path
from training.datasets import NPZ_ERRORS

TRANSFORMS = ("original", "mirror", "rotate_ccw", "rotate_cw")
COPIES = len(TRANSFORMS)


@dataclass(frozen=True)
class Augmented:
    """The expanded training set; row ``COPIES*i + t`` is transform ``t`` of original ``i``."""

    images: np.ndarray  # (4N, 48, 48) uint8
    labels: np.ndarray  # (4N,) int64
    transform: np.ndarray  # (4N,) int8 index into TRANSFORMS
    angle: np.ndarray  # (4N,) float32 degrees, 0 for original and mirror
    source_index: np.ndarray  # (4N,) int32 row of the original in the training split

    def __len__(self) -> int:
        return len(self.labels)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre, reflecting the border (positive = counter-clockwise, as OpenCV)."""
    import cv2

    h, w = image.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def augment(
    images: np.ndarray, labels: np.ndarray, seed: int = 0, min_angle: float = 10.0, max_angle: float = 15.0
) -> Augmented:
    """Return the 4x expanded set; deterministic for a given seed."""
    if not 0 <= min_angle <= max_angle:
        raise ValueError(f"need 0 <= min_angle <= max_angle, got {min_angle}, {max_angle}")
    n = len(images)
    rng = np.random.default_rng(seed)
    angles = rng.uniform(min_angle, max_angle, size=(n, 2)).astype(np.float32)
    out = np.empty((n, COPIES) + images.shape[1:], dtype=np.uint8)
    out[:, 0] = images
    out[:, 1] = images[:, :, ::-1]
    for i in range(n):
        out[i, 2] = rotate(images[i], float(angles[i, 0]))
        out[i, 3] = rotate(images[i], -float(angles[i, 1]))
    angle = np.zeros((n, COPIES), np.float32)
    angle[:, 2], angle[:, 3] = angles[:, 0], -angles[:, 1]
    return Augmented(
        images=out.reshape((n * COPIES,) + images.shape[1:]),
        labels=np.repeat(np.asarray(labels, dtype=np.int64), COPIES),
        transform=np.tile(np.arange(COPIES, dtype=np.int8), n),
        angle=angle.reshape(-1),
        source_index=np.repeat(np.arange(n, dtype=np.int32), COPIES),
    )


def save(aug: Augmented, path: str | os.PathLike) -> None:
    """Write one compressed archive atomically (a killed run never leaves a half-written file behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp,
            images=aug.images,
            labels=aug.labels,
            transform=aug.transform,
            angle=aug.angle,
            source_index=aug.source_index,
            transforms=np.array(TRANSFORMS),
        )


def load(path: str | os.PathLike) -> Augmented:
    """Read an archive written by :func:`save`; raises ValueError with the file name if it is not one."""
    try:
        with np.load(path) as z:
            return Augmented(z["images"], z["labels"], z["transform"], z["angle"], z["source_index"])
    except NPZ_ERRORS as e:
        raise ValueError(f"{path}: not an augmented archive from training.augment ({e})") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.augment",
        description="Expand FER2013 Training 4x (original, mirror, two rotations) into one compressed .npz.",
        epilog="example: python -m training.augment --data ../shared/data/fer2013 --out data/fer2013-aug.npz",
    )
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/")
    p.add_argument("--out", default="data/fer2013-aug.npz", help="output archive (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for the rotation angles (default: %(default)s)")
    p.add_argument("--min-angle", type=float, default=10.0, help="smallest rotation in degrees (default: %(default)s)")
    p.add_argument("--max-angle", type=float, default=15.0, help="largest rotation in degrees (default: %(default)s)")
    args = p.parse_args(argv)

    from training.datasets import DatasetError, load_fer2013

    try:
        train = load_fer2013(args.data).train
        aug = augment(train.images, train.labels, args.seed, args.min_angle, args.max_angle)
        save(aug, args.out)
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(aug)} training images ({len(train)} originals x {COPIES}: {', '.join(TRANSFORMS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
