"""EmotionLens: find every face in a photo or video and label its emotion with three models and their
ensemble, on ONNX Runtime (no torch).

The Python API is importable from here in one line::

    from app import Labeler

    labeler = Labeler()                           # the shipped zoo, Haar faces verified by eyes
    result = labeler.label_image("photo.jpg")     # or an RGB numpy array
    for frame in labeler.label_video("clip.mp4"):  # tracked faces, frame by frame
        ...

The names below load lazily (PEP 562), so ``import app.video`` or ``python -m app --version`` do not pay for
OpenCV and ONNX Runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

# public name -> module that defines it
_EXPORTS = {
    "Labeler": "app.video",
    "PhotoResult": "app.core",
    "FaceResult": "app.core",
    "Prediction": "app.core",
    "Box": "app.core",
    "DETECTORS": "app.detect",
    "EMOTIONS": "app.core",
    "ImageError": "app.core",
    "EmotionLensError": "app.core",
    "ZooError": "app.models",
    "VideoError": "app.video",
    "VideoOptions": "app.video",
    "VideoFrame": "app.video",
    "TrackFace": "app.video",
    "labels_header": "app.outputs",
    "photo_rows": "app.outputs",
    "frames_header": "app.outputs",
    "frame_rows": "app.outputs",
    "tracks_header": "app.outputs",
    "track_rows": "app.outputs",
    "video_series": "app.outputs",
}
__all__ = [
    "__version__",
    "Labeler",
    "PhotoResult",
    "FaceResult",
    "Prediction",
    "Box",
    "DETECTORS",
    "EMOTIONS",
    "ImageError",
    "EmotionLensError",
    "ZooError",
    "VideoError",
    "VideoOptions",
    "VideoFrame",
    "TrackFace",
    "labels_header",
    "photo_rows",
    "frames_header",
    "frame_rows",
    "tracks_header",
    "track_rows",
    "video_series",
]

if TYPE_CHECKING:
    from app.core import EMOTIONS, Box, FaceResult, ImageError, PhotoResult, Prediction
    from app.detect import DETECTORS
    from app.models import Labeler, ZooError
    from app.outputs import (
        frame_rows,
        frames_header,
        labels_header,
        photo_rows,
        track_rows,
        tracks_header,
        video_series,
    )
    from app.video import TrackFace, VideoError, VideoFrame, VideoOptions


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
