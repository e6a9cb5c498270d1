"""The result types every layer shares: a face's box, a model's prediction, a labelled face and photo.

Defined here, below detection and the models, so the detector, the labeller, the video pipeline and the
writers all speak one vocabulary without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face in original-image pixels (clipped to the frame); ``eyes`` is how many eyes the check saw.

    ``landmarks``: points in original-image pixels that alignment uses, empty when none were found: the two
    eye centres (the image's left one first) from the Haar eye check, or a landmark detector's five points
    (left eye, right eye, nose tip, left and right mouth corner).
    """

    x: int
    y: int
    w: int
    h: int
    eyes: int = 0
    landmarks: tuple[tuple[float, float], ...] = ()


CROP_SIZE = (48, 48)


@dataclass(frozen=True)
class Prediction:
    """Class probabilities ``probs`` (7,) in EMOTIONS order, the top class and its probability."""

    probs: np.ndarray
    label: str
    confidence: float


@dataclass(frozen=True)
class FaceResult:
    """One face: 1-based ``index`` (reading order), its box, the 48x48 crop the models saw, and the labels."""

    index: int
    box: Box
    crop: np.ndarray
    predictions: dict[str, Prediction]
    ensemble: Prediction

    def shown(self) -> ShownFace:
        """The face as the annotators draw it: numbered in reading order, tagged with the ensemble's label."""
        return ShownFace(self.index, self.box, self.predictions, self.ensemble)


@dataclass(frozen=True)
class ShownFace:
    """One face as the pictures show it (the annotated copies, the window's boxes): the ``number`` on its tag, its
    box, each model's prediction for the full label line, and ``label``, the face's label as a whole.

    A photo's face is numbered in reading order and tagged with the ensemble (:meth:`FaceResult.shown`); a video's
    face is numbered by its track and tagged with the smoothed ensemble (:meth:`app.video.TrackFace.shown`).
    """

    number: int
    box: Box
    predictions: dict[str, Prediction]
    label: Prediction


@dataclass(frozen=True)
class Detection:
    """One image's faces before labelling (:meth:`Labeler.detect_image`): boxes in reading order, their 48x48
    crops, the image ``size`` (width, height) and the seconds detection took. Small: the image is not kept."""

    boxes: list[Box]
    crops: np.ndarray
    size: tuple[int, int]
    seconds: float


@dataclass(frozen=True)
class PhotoResult:
    """All faces of one photo; ``size`` is (width, height); times in seconds (``seconds`` includes loading)."""

    path: str | None
    size: tuple[int, int]
    faces: list[FaceResult]
    seconds: float
    detect_seconds: float
    label_seconds: float

    def shown(self) -> list[ShownFace]:
        """Every face as the annotators draw it."""
        return [f.shown() for f in self.faces]
