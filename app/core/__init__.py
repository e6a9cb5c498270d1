"""The vocabulary every layer shares: result types, emotions, errors, atomic writes, photo decoding, ONNX
Runtime options and bundled resources. Imports nothing else of ``app``.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "atomic_path": "_atomic",
    "temp_name": "_atomic",
    "write_all": "_atomic",
    "write_bytes": "_atomic",
    "write_text": "_atomic",
    "COLORS": "_emotions",
    "EMOTIONS": "_emotions",
    "EmotionLensError": "_errors",
    "one_line": "_errors",
    "IMAGE_SUFFIXES": "_imageio",
    "ImageError": "_imageio",
    "file_kind": "_imageio",
    "load_image": "_imageio",
    "os_reason": "_imageio",
    "read_image_bytes": "_imageio",
    "readable_formats": "_imageio",
    "PROVIDER_CHOICES": "_onnx",
    "ProviderError": "_onnx",
    "default_threads": "_onnx",
    "describe": "_onnx",
    "resolve": "_onnx",
    "session_options": "_onnx",
    "resource_path": "_resources",
    "key": "_text",
    "shown": "_text",
    "Box": "_types",
    "CROP_SIZE": "_types",
    "Detection": "_types",
    "FaceResult": "_types",
    "PhotoResult": "_types",
    "Prediction": "_types",
    "ShownFace": "_types",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.core._atomic import atomic_path as atomic_path
    from app.core._atomic import temp_name as temp_name
    from app.core._atomic import write_all as write_all
    from app.core._atomic import write_bytes as write_bytes
    from app.core._atomic import write_text as write_text
    from app.core._emotions import COLORS as COLORS
    from app.core._emotions import EMOTIONS as EMOTIONS
    from app.core._errors import EmotionLensError as EmotionLensError
    from app.core._errors import one_line as one_line
    from app.core._imageio import IMAGE_SUFFIXES as IMAGE_SUFFIXES
    from app.core._imageio import ImageError as ImageError
    from app.core._imageio import file_kind as file_kind
    from app.core._imageio import load_image as load_image
    from app.core._imageio import os_reason as os_reason
    from app.core._imageio import read_image_bytes as read_image_bytes
    from app.core._imageio import readable_formats as readable_formats
    from app.core._onnx import PROVIDER_CHOICES as PROVIDER_CHOICES
    from app.core._onnx import ProviderError as ProviderError
    from app.core._onnx import default_threads as default_threads
    from app.core._onnx import describe as describe
    from app.core._onnx import resolve as resolve
    from app.core._onnx import session_options as session_options
    from app.core._resources import resource_path as resource_path
    from app.core._text import key as key
    from app.core._text import shown as shown
    from app.core._types import CROP_SIZE as CROP_SIZE
    from app.core._types import Box as Box
    from app.core._types import Detection as Detection
    from app.core._types import FaceResult as FaceResult
    from app.core._types import PhotoResult as PhotoResult
    from app.core._types import Prediction as Prediction
    from app.core._types import ShownFace as ShownFace
