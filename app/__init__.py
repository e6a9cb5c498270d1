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
    "Labeler": "app.labeler",
    "PhotoResult": "app.labeler",
    "FaceResult": "app.labeler",
    "Prediction": "app.labeler",
    "Box": "app.detect",
    "DETECTORS": "app.detect",
    "EMOTIONS": "app.emotions",
    "ImageError": "app.imageio",
    "ZooError": "app.zoo",
    "VideoError": "app.video",
    "VideoOptions": "app.video_label",
    "VideoFrame": "app.video_label",
    "TrackFace": "app.video_label",
    "labels_header": "app.labels_csv",
    "photo_rows": "app.labels_csv",
    "frames_header": "app.video_rows",
    "frame_rows": "app.video_rows",
    "tracks_header": "app.video_rows",
    "track_rows": "app.video_rows",
    "video_series": "app.video_rows",
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
    from app.detect import DETECTORS, Box
    from app.emotions import EMOTIONS
    from app.imageio import ImageError
    from app.labeler import FaceResult, Labeler, PhotoResult, Prediction
    from app.labels_csv import labels_header, photo_rows
    from app.video import VideoError
    from app.video_label import TrackFace, VideoFrame, VideoOptions
    from app.video_rows import frame_rows, frames_header, track_rows, tracks_header, video_series
    from app.zoo import ZooError


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
