"""The face detectors by name, in torchvision's ``get_model`` style: one table the app, the batch command,
the window's Detector menu and the benchmarks all read, so a new detector is one :func:`register` call.

Each entry knows how to load its files up front (:func:`load_detector`: a missing file is one line before any
photo is read) and how to find faces in an RGB frame (:func:`detect_faces`). Both detectors return
:class:`app.core.Box` lists sorted left to right; the reading order is the labeller's (:mod:`app.detect._order`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.core import Box
from app.detect import _haar, _mtcnn


@dataclass(frozen=True)
class DetectorSpec:
    """One detector: its name, what it is, how to load its files and how to run it on an RGB image."""

    name: str
    description: str
    load: Callable[[], object]
    detect: Callable[..., list[Box]]


_REGISTRY: dict[str, DetectorSpec] = {}


def register(spec: DetectorSpec) -> DetectorSpec:
    """Add a detector to the table (its name must be new)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"detector {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _haar_faces(rgb: np.ndarray, eye_check: bool = True, work_size: int = _haar.WORK_SIZE) -> list[Box]:
    return _haar.detect_haar(rgb, eye_check=eye_check, work_size=work_size)


def _mtcnn_faces(rgb: np.ndarray, eye_check: bool = True, work_size: int = _haar.WORK_SIZE) -> list[Box]:
    return _mtcnn.detect_faces(rgb)  # eye_check and work_size are Haar's: MTCNN has its own landmarks and pyramid


register(DetectorSpec("haar", "OpenCV Haar cascade, faces verified by an eye check", _haar.load_haar, _haar_faces))
register(DetectorSpec("mtcnn", "MTCNN (three small ONNX nets) with five landmarks", _mtcnn.onnx_runners,
                      _mtcnn_faces))

DETECTORS = tuple(_REGISTRY)  # the first is the default; --detector in the app, the batch command and the benchmarks


def get_detector(name: str) -> DetectorSpec:
    """The registered detector ``name``; ValueError naming the choices for an unknown one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}: choose {', '.join(_REGISTRY)}") from None


def load_detector(detector: str = DETECTORS[0]) -> None:
    """Load ``detector``'s files now, so a missing or corrupt one is a one-line error before any photo is read
    (RuntimeError naming the file; ValueError for an unknown name), not a failure on every photo of a batch."""
    get_detector(detector).load()


def detect_faces(
    rgb: np.ndarray, eye_check: bool = True, work_size: int = _haar.WORK_SIZE, detector: str = DETECTORS[0]
) -> list[Box]:
    """Find frontal faces with ``detector``; boxes are in ``rgb``'s pixels, clipped to the frame and sorted left
    to right (the labeller renumbers them in reading order). ``eye_check`` and ``work_size`` are Haar's
    (:func:`app.detect._haar.detect_haar`)."""
    return get_detector(detector).detect(rgb, eye_check=eye_check, work_size=work_size)
