"""Draw numbered face boxes and per-model labels on a copy of the photo, and save images atomically.

Sizes scale with the photo so the labels read the same on a 240p frame viewed 1:1 and on a 4000x3000
photo viewed fit-to-screen; labels are placed to avoid each other and the frame edge.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.atomic import atomic_path
from app.emotions import COLORS
from app.labeler import FaceResult, PhotoResult

SEP = " · "
MIN_FONT_PX = 11  # smallest size still legible at 1:1 on a 240p frame
FONT_FRACTION = 0.016  # font px per px of the longest side: ~31 px on 1080p, 64 px on 4000x3000


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold when installed (crisp, full Unicode), else Pillow's built-in scalable font."""
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, px)
        except OSError:
            continue
    return ImageFont.load_default(size=px)


def label_text(face: FaceResult, display_names: dict[str, str]) -> list[str]:
    """``["CNN happy 91%", "FF happy 58%", ...]`` in manifest order (the order of ``face.predictions``)."""
    names = display_names
    return [f"{names.get(name, name)} {p.label} {round(100 * p.confidence)}%" for name, p in face.predictions.items()]


def _text_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def annotate(rgb: np.ndarray, result: PhotoResult, display_names: dict[str, str]) -> np.ndarray:
    """RGB copy of ``rgb`` with a numbered box per face in its ensemble emotion's colour and a label line."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    im = Image.fromarray(np.ascontiguousarray(a[:, :, :3], dtype=np.uint8), "RGB")
    W, H = im.size
    ref = max(W, H)
    px = max(MIN_FONT_PX, round(FONT_FRACTION * ref))
    font = _font(px)
    line_w = max(2, round(ref / 400))
    pad = max(2, px // 5)
    draw = ImageDraw.Draw(im)
    placed: list[tuple[int, int, int, int]] = [
        (f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in result.faces
    ]  # labels avoid other faces too
    for face in result.faces:
        color = COLORS.get(face.ensemble.label, (255, 255, 255))
        fg = _text_color(color)
        b = face.box
        x0, y0, x1, y1 = b.x, b.y, b.x + b.w - 1, b.y + b.h - 1
        draw.rectangle((x0, y0, x1, y1), outline=color, width=line_w)
        # Number badge in the box's top-left corner.
        num = str(face.index)
        nb = draw.textbbox((0, 0), num, font=font)
        bw, bh = nb[2] - nb[0] + 2 * pad, nb[3] - nb[1] + 2 * pad
        draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=color)
        draw.text((x0 + pad - nb[0], y0 + pad - nb[1]), num, font=font, fill=fg)
        # Label: one line if it fits somewhere free, else one line per model.
        parts = label_text(face, display_names)
        own = (b.x, b.y, b.x + b.w, b.y + b.h)
        others = [r for r in placed if r != own]
        rect, lines = _place(draw, font, pad, parts, (x0, y0, x1, y1), W, H, others)
        draw.rectangle(rect, fill=color)
        lh = draw.textbbox((0, 0), "Ag", font=font)
        ty = rect[1] + pad
        for line in lines:
            draw.text((rect[0] + pad, ty - lh[1]), line, font=font, fill=fg)
            ty += lh[3] - lh[1] + pad
        placed.append(rect)
    return np.asarray(im)


def _place(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    pad: int,
    parts: list[str],
    box: tuple[int, int, int, int],
    W: int,
    H: int,
    taken: list[tuple[int, int, int, int]],
) -> tuple[tuple[int, int, int, int], list[str]]:
    """Label rectangle and its lines: above, below, then inside the box; one line first, then stacked."""
    x0, y0, x1, y1 = box
    lh_box = draw.textbbox((0, 0), "Ag", font=font)
    lh = lh_box[3] - lh_box[1]
    candidates = []
    for lines in ([SEP.join(parts)], parts):
        tw = max(draw.textlength(t, font=font) for t in lines)
        rw, rh = int(tw) + 2 * pad, len(lines) * (lh + pad) + pad
        lx = min(max(0, x0), max(0, W - rw))
        for ly in (y0 - rh - 1, y1 + 1, y0 + (lh + 2 * pad) + 1):
            ly = min(max(0, ly), max(0, H - rh))
            rect = (lx, ly, lx + rw, ly + rh)
            candidates.append((rect, lines))
            if rw <= W and not any(_overlaps(rect, t) for t in taken):
                return rect, lines
    return candidates[0]


def save_image(rgb: np.ndarray, path: str | os.PathLike) -> None:
    """Write ``rgb`` to ``path`` in the format its suffix names, atomically (temp file + ``os.replace``).

    A crash or Ctrl+C mid-write leaves either the old file or none, never a truncated image.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path}: cannot save images with suffix {path.suffix or '(none)'!r}")
    a = np.asarray(rgb, dtype=np.uint8)
    im = Image.fromarray(a if a.ndim == 3 else a, "RGB" if a.ndim == 3 else "L")
    kwargs = {"quality": 92} if fmt in ("JPEG", "WEBP") else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        im.save(f, format=fmt, **kwargs)
