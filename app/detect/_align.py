"""Aligned face crops: rotate so the eyes are level, then frame the face the way FER2013 frames its faces.

FER2013 faces are upright and framed alike; a tilted photo face cropped as it stands is a different input
and is labelled worse. Given the two eye centres (the Haar eye check's, or a landmark detector's), one
similarity transform (rotation, scale, shift) maps the photo onto the models' input so that the eyes land
where the same pipeline finds them on FER2013 faces.

The framing was measured with ``benchmarks/crop_margin.py --eyes``: the app's detector and eye check on the
3,589 FER2013 validation (PublicTest) images upscaled to 192x192 found exactly one face in 2,086 and an eye
pair in 1,698 of them; relative to the frame side, the eye midpoint lies at median x **0.490**, y **0.388**
and the eyes are **0.373** apart (quartiles 0.332-0.406); the eye line's tilt is a median -0.7 degrees
(quartiles -4.4 to +2.8): FER2013 faces are upright, so levelling the eyes is what matches them. Both eye
sources give eye *centres*; the Haar eye cascade's box includes the brow, so its centre sits a little above
the pupil, and that bias is measured in, since the same cascade produced the numbers.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Where the eyes sit in a FER2013 frame, as fractions of its side (see the module docstring): Haar eye centres.
FER_EYE_X = 0.490
FER_EYE_Y = 0.388
FER_EYE_DIST = 0.373
# The same for a landmark detector's eye points (five landmarks), from ``benchmarks/crop_margin.py --eyes
# --detector mtcnn --n 4000``: MTCNN found one face with both eyes in 2,919 of the 3,589 PublicTest images;
# eye midpoint x 0.503, y 0.390, eyes 0.370 apart (quartiles 0.333-0.399), tilt -1.2 degrees (-5.2 to +3.2).
# Nearly Haar's framing: the two sources agree on where FER2013's eyes are.
LANDMARK_EYE_X = 0.503
LANDMARK_EYE_Y = 0.390
LANDMARK_EYE_DIST = 0.370

Framing = tuple[float, float, float]
HAAR_FRAMING: Framing = (FER_EYE_X, FER_EYE_Y, FER_EYE_DIST)
LANDMARK_FRAMING: Framing = (LANDMARK_EYE_X, LANDMARK_EYE_Y, LANDMARK_EYE_DIST)


def framing_for(landmarks: tuple) -> Framing:
    """The measured framing for these landmarks: five points come from a landmark detector, two from Haar."""
    return LANDMARK_FRAMING if len(landmarks) >= 5 else HAAR_FRAMING

Point = tuple[float, float]


def eye_angle(left: Point, right: Point) -> float:
    """Degrees the eye line is turned clockwise from level in image coordinates (y down)."""
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def eye_transform(
    left: Point, right: Point, size: tuple[int, int],
    eye_x: float = FER_EYE_X, eye_y: float = FER_EYE_Y, eye_dist: float = FER_EYE_DIST,
) -> np.ndarray:
    """2x3 affine matrix from image pixels to a ``size`` (H, W) crop with the eyes level and FER-framed."""
    out_h, out_w = size
    dx, dy = right[0] - left[0], right[1] - left[1]
    dist = math.hypot(dx, dy)
    if dist <= 0:
        raise ValueError("the two eye points coincide")
    scale = eye_dist * out_w / dist
    a = math.atan2(dy, dx)
    c, s = scale * math.cos(a), scale * math.sin(a)
    mx, my = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    # Rotate by -a and scale about the eye midpoint, then move the midpoint to its FER place.
    tx = eye_x * out_w - (c * mx + s * my)
    ty = eye_y * out_h - (-s * mx + c * my)
    return np.array([[c, s, tx], [-s, c, ty]], dtype=np.float64)


def align_face(
    gray: np.ndarray, left: Point, right: Point, size: tuple[int, int] = (48, 48), framing: Framing = HAAR_FRAMING
) -> np.ndarray:
    """``size`` (H, W) uint8 crop of ``gray`` with the eye line level and the face framed like FER2013.

    Past the frame edge the image is edge-replicated, as in the unaligned crop. A large face is first shrunk
    with area averaging (warpAffine alone would alias a 600 px face down to 48 px).
    """
    m = eye_transform(left, right, size, *framing)
    scale = math.hypot(m[0, 0], m[0, 1])
    src = gray
    if scale < 0.5:
        # Shrink the region around the face by area averaging to about 2x the output scale, then warp.
        out_h, out_w = size
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [out_w, 0, 1], [0, out_h, 1], [out_w, out_h, 1]], np.float64) @ inv.T
        H, W = gray.shape[:2]
        x0 = int(max(0, math.floor(corners[:, 0].min()) - 2))
        y0 = int(max(0, math.floor(corners[:, 1].min()) - 2))
        x1 = int(min(W, math.ceil(corners[:, 0].max()) + 2))
        y1 = int(min(H, math.ceil(corners[:, 1].max()) + 2))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = 2 * scale
            src = cv2.resize(gray[y0:y1, x0:x1], (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                             interpolation=cv2.INTER_AREA)
            fx, fy = src.shape[1] / (x1 - x0), src.shape[0] / (y1 - y0)
            # Compose: crop coordinates -> shrunk patch coordinates.
            to_src = np.array([[1 / fx, 0, x0], [0, 1 / fy, y0], [0, 0, 1]], np.float64)
            m = m @ to_src
    out_h, out_w = size
    out = cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)
