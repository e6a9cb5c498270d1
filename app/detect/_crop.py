"""Cut a detected face out of a photo the way FER2013 frames its faces, as the models' 48x48 input.

The models saw only FER2013 framing, so a photo face must be cropped to match it. Measured with
``benchmarks/crop_margin.py``: the app's detector (no eye check) on the 3,589 FER2013 validation images
upscaled to 192x192 found exactly one face in 2,283; the detected box side is a median **0.917** of the
frame side (quartiles 0.859-0.953) and the box is centred in the frame (median offset dx +0.000,
dy +0.006 box sides). Inverting: the crop is a square **1.09x** the box side (a 4.5% margin on each side),
centred on the box. That is forehead to chin, like FER2013; a wider crop (the common 1.2-1.4) would shrink
the face inside the 48x48 input below what the models were trained on.

A box that carries two eye landmarks (``Box.landmarks``) is cropped aligned instead (``app/detect/_align.py``): the
eyes level and placed where FER2013 has them, which is what a tilted face needs; ``align=False`` keeps the
box crop (``benchmarks/align_gain.py`` measures both).
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core import Box
from app.detect._align import align_face, framing_for
from app.detect._haar import to_gray

CROP_SCALE = 1.09


def _square(start: int, length: int, side: int, limit: int) -> int:
    """Start of a ``side``-long span for a box span clipped by the frame: grow it back towards the cut edge."""
    if length >= side:
        return start
    if start <= 0:  # cut by the top/left edge: the missing part lies before 0
        return start + length - side
    if start + length >= limit:  # cut by the bottom/right edge: the missing part lies past the edge
        return start
    return start - (side - length) // 2


def crop_face(
    gray_or_rgb: np.ndarray,
    box: Box | tuple[int, int, int, int],
    size: tuple[int, int] = (48, 48),
    scale: float = CROP_SCALE,
    align: bool = True,
) -> np.ndarray:
    """``size`` (H, W) uint8 grayscale crop of ``box`` with the FER2013 margin; edge-replicated past the frame.

    Detector boxes are square; a non-square box is one clipped by the frame edge, so the square is restored
    on the side where the frame cut it, keeping the face where FER2013 would have it rather than re-centring
    on the visible half. With ``align`` and two eye landmarks on the box, the crop is aligned on the eyes.
    """
    gray = to_gray(gray_or_rgb)
    if align and isinstance(box, Box) and len(box.landmarks) >= 2 and box.w > 0 and box.h > 0:
        return align_face(gray, box.landmarks[0], box.landmarks[1], size, framing_for(box.landmarks))
    H, W = gray.shape[:2]
    x, y, w, h = (box.x, box.y, box.w, box.h) if isinstance(box, Box) else (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {w}x{h}")
    side = max(w, h)
    x = _square(x, w, side, W)
    y = _square(y, h, side, H)
    cx, cy = x + side / 2, y + side / 2
    s = max(1, int(round(side * scale)))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    x1, y1 = x0 + s, y0 + s
    region = gray[max(0, y0) : min(H, y1), max(0, x0) : min(W, x1)]
    if region.size == 0:
        raise ValueError(f"face box {x},{y} {w}x{h} lies outside the {W}x{H} image")
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y1 - H), max(0, x1 - W)
    if top or left or bottom or right:
        region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
    out_h, out_w = size
    interp = cv2.INTER_AREA if s >= max(out_h, out_w) else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(region, (out_w, out_h), interpolation=interp), dtype=np.uint8)
