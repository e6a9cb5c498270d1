"""The one detect -> crop step that photos (:meth:`app.models.Labeler.detect_image`) and videos
(:func:`app.video.label_frames`) share: find the faces of a frame, then cut each box the way FER2013 frames its
faces.

The gray copy is made once per frame and serves both the Haar cascade and the crops (MTCNN reads colour).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.core import CROP_SIZE, Box
from app.detect._crop import crop_face
from app.detect._haar import to_gray
from app.detect._registry import DETECTORS, detect_faces


def find_faces(image: np.ndarray, eye_check: bool = True, detector: str = DETECTORS[0]) -> tuple[np.ndarray, list[Box]]:
    """The frame's gray copy and its faces (``detector``'s boxes, sorted left to right) in an RGB or gray image."""
    gray = to_gray(image)
    return gray, detect_faces(gray if detector == "haar" else image, eye_check=eye_check, detector=detector)


def crop_faces(gray: np.ndarray, boxes: Sequence[Box], size: tuple[int, int] = CROP_SIZE) -> np.ndarray:
    """``uint8 [N, h, w]``: each box cut from the gray frame (aligned when it carries eyes), as the models expect."""
    crops = np.zeros((len(boxes), *size), np.uint8)
    for i, b in enumerate(boxes):
        crops[i] = crop_face(gray, b, size)
    return crops
