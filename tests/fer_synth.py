"""Synthetic FER2013 stand-ins for the training tests: small, learnable, and written in both Kaggle layouts.

Each class draws a bright square at its own position on a noisy background, so a model that learns anything
beats chance (1/7) by far within a few epochs; tests can then assert learning, not only that code runs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from app.core import EMOTIONS
from training.datasets import FER2013, Split

PREFIX = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def make_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(EMOTIONS)
    rng.shuffle(labels)
    images = rng.integers(0, 90, size=(n, 48, 48), dtype=np.uint8)
    for i, c in enumerate(labels):
        y, x = 4 + 12 * (c // 3), 4 + 14 * (c % 3)
        images[i, y : y + 10, x : x + 10] = 230
    return images, labels.astype(np.int64)


def make_fer(n_train: int = 140, n_val: int = 42, n_test: int = 42, seed: int = 0) -> FER2013:
    parts = [make_images(n, seed + k) for k, n in enumerate((n_train, n_val, n_test))]
    return FER2013(*(Split(img, lab) for img, lab in parts), source="synthetic")


def write_csv(data: FER2013, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for split, usage in PREFIX.items():
            s = data.split(split)
            for img, lab in zip(s.images, s.labels, strict=True):
                w.writerow([int(lab), " ".join(map(str, img.reshape(-1))), usage])
    return path


def write_folder(data: FER2013, root: Path) -> Path:
    """Kaggle folder layout; PNG keeps pixels exact so CSV and folder can be compared byte for byte."""
    import cv2

    for split, usage in PREFIX.items():
        top = "train" if split == "train" else "test"
        s = data.split(split)
        for i, (img, lab) in enumerate(zip(s.images, s.labels, strict=True)):
            d = root / top / EMOTIONS[lab]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{usage}_{i:05d}.png"), img)
    return root
