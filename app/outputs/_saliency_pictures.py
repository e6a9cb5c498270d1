"""Pictures of saliency maps: a map over its crop, captioned tiles side by side, and the grids built of them.

One drawing for every place maps are shown outside the window's card (which uses :func:`overlay`): the PNGs of
``app.batch --explain``, ``training.evaluate --explain``'s grid per class and README's figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.models import METHOD_TITLES


def jet(v: np.ndarray) -> np.ndarray:
    """The JET palette (blue, cyan, yellow, red) for values in [0, 1], as float RGB 0-255. In numpy, so that the
    app needs no cv2 function beyond those the bundle's small OpenCV build (packaging/build_opencv.py) has."""
    v = np.clip(np.asarray(v, np.float32), 0, 1)[..., None]
    centres = np.array([3.0, 2.0, 1.0], np.float32)  # red, green, blue peak at 3/4, 1/2, 1/4
    return 255 * np.clip(1.5 - np.abs(4 * v - centres), 0, 1)


def overlay(crop: np.ndarray, heat: np.ndarray, scale: int = 4, alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 picture of a gray crop ``scale`` times larger with the map in the JET palette blended on top."""
    h, w = crop.shape[:2]
    big = cv2.resize(np.asarray(crop, np.uint8), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    m = cv2.resize(np.asarray(heat, np.float32), (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    colour = jet(m)
    gray = np.repeat(big[..., None], 3, axis=2).astype(np.float32)
    return np.clip((1 - alpha) * gray + alpha * colour, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Panel:
    """One tile of a picture: ``heat`` over the crop (or the plain crop when None), under caption ``lines``;
    the first line is drawn in ``color``."""

    lines: tuple[str, ...]
    heat: np.ndarray | None = None
    color: tuple[int, int, int] = (235, 235, 235)
    crop: np.ndarray | None = None  # another face than the strip's (a grid row of several faces)


def strip(crop: np.ndarray, panels: list[Panel], scale: int = 4) -> np.ndarray:
    """RGB uint8: the panels side by side, each the crop ``scale`` times larger with its caption above; the
    batch's ``--explain`` PNGs, ``training.evaluate --explain``'s grid rows and README's figure are made of these."""
    from PIL import Image, ImageDraw

    from app.outputs._annotate import _font

    h, w = crop.shape[:2]
    side, pad = w * scale, 4
    font = _font(max(11, side // 14))
    line_h = int(font.size * 1.25)
    n_lines = max(len(p.lines) for p in panels) if panels else 0
    top = n_lines * line_h + pad
    canvas = Image.new("RGB", (len(panels) * (side + pad) + pad, top + side + pad), (28, 28, 28))
    draw = ImageDraw.Draw(canvas)
    for i, p in enumerate(panels):
        x = pad + i * (side + pad)
        face = crop if p.crop is None else p.crop
        if p.heat is None:
            tile = cv2.resize(np.asarray(face, np.uint8), (side, h * scale), interpolation=cv2.INTER_CUBIC)
            tile = np.repeat(tile[..., None], 3, axis=2)
        else:
            tile = overlay(face, p.heat, scale)
        canvas.paste(Image.fromarray(tile), (x, top))
        for j, text in enumerate(p.lines):
            draw.text((x, pad + j * line_h), text, font=font, fill=p.color if j == 0 else (200, 200, 200))
    return np.asarray(canvas)


def stack(rows: list[np.ndarray], background: int = 28) -> np.ndarray:
    """RGB images one under the other, left-aligned, padded to the widest."""
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=background) for r in rows]
    return np.concatenate(padded, axis=0)


def class_grid(labeler, name: str, images: np.ndarray, labels: np.ndarray, per_class: int,  # noqa: ANN001
               scale: int = 3) -> np.ndarray:
    """RGB grid, one row per true class: its first ``per_class`` faces with model ``name``'s map for the class it
    predicted, captioned true -> predicted (the figure papers show for Grad-CAM). ``labeler.models`` must hold
    ``name``."""
    from app.outputs._annotate import color

    rows = []
    for c, cls in enumerate(labeler.classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        if not len(idx):
            continue
        probs, _ = labeler.classify(images[idx])
        maps = labeler.explain(images[idx])[name]
        panels = []
        for j, i in enumerate(idx):
            p = probs[name][j]
            k = int(np.argmax(p))
            mark = "" if k == c else " ✗"
            panels.append(Panel((f"true {cls}", f"→ {labeler.classes[k]} {100 * float(p[k]):.0f}%{mark}"),
                                maps[j, k], color(cls), images[i]))
        rows.append(strip(images[idx[0]], panels, scale))
    return stack(rows)


def face_strip(labeler, crop: np.ndarray, probs: dict[str, np.ndarray], maps: dict[str, np.ndarray],  # noqa: ANN001
               title: tuple[str, ...], target: int | None = None, scale: int = 4) -> np.ndarray:
    """One face as a picture: its crop under ``title``, then each model's map for the class it predicted (or
    ``target``), captioned with the model, class, probability and method. ``probs[name]`` is ``(classes,)`` and
    ``maps[name]`` ``(classes, H, W)``; ``labeler`` gives the models' order, names and methods."""
    from app.outputs._annotate import color

    panels = [Panel(title)]
    for m in labeler.models:
        p = probs[m.name]
        c = int(np.argmax(p)) if target is None else target
        name = labeler.classes[c]
        panels.append(Panel((f"{m.display_name} {name} {100 * float(p[c]):.0f}%",
                             METHOD_TITLES.get(labeler.saliency_method(m.name), "")), maps[m.name][c], color(name)))
    return strip(crop, panels, scale)
