"""Finding faces: a registry of detectors (Haar + eye check, MTCNN), alignment, the FER2013-like crop and
the reading order of faces. Imports only :mod:`app.core`.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "crop_face": "_crop",
    "crop_faces": "_faces",
    "find_faces": "_faces",
    "to_gray": "_haar",
    "reading_order": "_order",
    "DETECTORS": "_registry",
    "DetectorSpec": "_registry",
    "detect_faces": "_registry",
    "get_detector": "_registry",
    "load_detector": "_registry",
    "register": "_registry",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.detect._crop import crop_face as crop_face
    from app.detect._faces import crop_faces as crop_faces
    from app.detect._faces import find_faces as find_faces
    from app.detect._haar import to_gray as to_gray
    from app.detect._order import reading_order as reading_order
    from app.detect._registry import DETECTORS as DETECTORS
    from app.detect._registry import DetectorSpec as DetectorSpec
    from app.detect._registry import detect_faces as detect_faces
    from app.detect._registry import get_detector as get_detector
    from app.detect._registry import load_detector as load_detector
    from app.detect._registry import register as register
