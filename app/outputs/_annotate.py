"""Draw numbered face boxes and per-model labels on a copy of the photo, and save images atomically.

The picture follows the window's rule and colours (app.outputs._placement): every box carries a tag with its number and
ensemble emotion in that emotion's colour; the full line (each model's label in its own emotion's colour, on
a dark strip) goes where it covers no face box, else it is left out and the tag stays (labels.csv has every
number). Sizes scale with the photo so the labels read the same on a 240p frame viewed 1:1 and on a
4000x3000 photo viewed fit-to-screen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core import COLORS, FaceResult, ShownFace, atomic_path
from app.outputs._placement import Placement, place_labels

SEP = " · "
MIN_FONT_PX = 11  # smallest size still legible at 1:1 on a 240p frame
FONT_FRACTION = 0.016  # font px per px of the longest side: ~31 px on 1080p, 64 px on 4000x3000
LABEL_BG = (28, 28, 28)  # the full label's strip, as on screen: every model's colour reads on it
SEP_COLOR = (187, 187, 187)
UNKNOWN_COLOR = (160, 160, 160)  # a class the palette does not know (a future extra class)


def color(label: str) -> tuple[int, int, int]:
    """RGB colour of an emotion, shared by the window and the saved images."""
    return COLORS.get(label, UNKNOWN_COLOR)


def text_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads on ``rgb`` (the tag's fill)."""
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold when installed (crisp, full Unicode), else Pillow's built-in scalable font."""
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, px)
        except OSError:
            continue
    return ImageFont.load_default(size=px)


def label_text(face: ShownFace | FaceResult, display_names: dict[str, str]) -> list[str]:
    """``["CNN happy 91%", "FF happy 58%", ...]`` in manifest order (the order of ``face.predictions``)."""
    return [text for text, _ in label_parts(face, display_names)]


def label_parts(face: ShownFace | FaceResult, display_names: dict[str, str]) -> list[tuple[str, str]]:
    """(text, emotion) per model in manifest order: ``("CNN happy 91%", "happy")``; the emotion picks the colour."""
    return [
        (f"{display_names.get(name, name)} {p.label} {round(100 * p.confidence)}%", p.label)
        for name, p in face.predictions.items()
    ]


def number_prefix(face: ShownFace, numbered: bool) -> str:
    """What starts a full label on a photo with several faces: the face's number, so no label is ambiguous
    when it sits beside a neighbour's box or at the end of a leader line; nothing on a one-face photo."""
    return f"{face.number}: " if numbered else ""


def tag_text(face: ShownFace, short: bool = False) -> str:
    """The tag on a box: ``"3 happy"``, or ``"3"`` where the emotion word does not fit."""
    return str(face.number) if short else f"{face.number} {face.label.label}"


def annotate(rgb: np.ndarray, faces: Sequence[ShownFace], display_names: dict[str, str]) -> np.ndarray:
    """RGB copy of ``rgb`` with a numbered, tagged box per face and the full label line where it fits
    (``faces``: a photo's ``PhotoResult.shown()``, or a video frame's tracks)."""
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
    asc = draw.textbbox((0, 0), "Ag", font=font)
    lh = asc[3] - asc[1]

    def size(lines: list[str]) -> tuple[float, float]:
        tw = max(draw.textlength(t, font=font) for t in lines)
        return (int(tw) + 2 * pad, len(lines) * (lh + pad) + pad)

    boxes = [(f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in faces]
    tags = [(size([tag_text(f)]), size([tag_text(f, short=True)])) for f in faces]
    numbered = len(faces) > 1
    fulls = []
    for f in faces:
        parts = label_text(f, display_names)
        if parts:
            parts = [number_prefix(f, numbered) + parts[0], *parts[1:]]
        fulls.append((size([SEP.join(parts)]), size(parts)) if parts else None)
    placements = place_labels(boxes, tags, fulls, (0, 0, W, H), gap=pad)
    for f, box in zip(faces, boxes, strict=True):
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=color(f.label.label), width=line_w)
    for f, pl in zip(faces, placements, strict=True):
        _draw_labels(draw, font, pad, lh, asc[1], f, pl, display_names, line_w, number_prefix(f, numbered))
    return np.asarray(im)


def _draw_labels(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    pad: int,
    lh: int,
    top: int,
    face: ShownFace,
    pl: Placement,
    display_names: dict[str, str],
    line_w: int,
    prefix: str,
) -> None:
    fill = color(face.label.label)
    x0, y0, x1, y1 = (round(v) for v in pl.tag)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    draw.text((x0 + pad, y0 + pad - top), tag_text(face, pl.short), font=font, fill=text_color(fill))
    if pl.full is None:
        return
    if pl.leader is not None:
        draw.line(pl.leader, fill=fill, width=max(1, line_w // 2))
    fx0, fy0, fx1, fy1 = (round(v) for v in pl.full)
    draw.rectangle((fx0, fy0, fx1 - 1, fy1 - 1), fill=LABEL_BG, outline=fill)
    parts = label_parts(face, display_names)
    lines = [[p] for p in parts] if pl.stacked else [parts]
    ty = fy0 + pad
    for n, line in enumerate(lines):
        x = fx0 + pad
        if n == 0 and prefix:
            draw.text((x, ty - top), prefix, font=font, fill=fill)
            x += draw.textlength(prefix, font=font)
        for k, (text, label) in enumerate(line):
            if k:
                draw.text((x, ty - top), SEP, font=font, fill=SEP_COLOR)
                x += draw.textlength(SEP, font=font)
            draw.text((x, ty - top), text, font=font, fill=color(label))
            x += draw.textlength(text, font=font)
        ty += lh + pad


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
