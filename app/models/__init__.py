"""The emotion models: the zoo and its manifest, ONNX sessions checked against the contract, the
:class:`Labeler` (detect, crop, label with every model and the ensemble) and saliency maps.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "Labeler": "_labeler",
    "METHOD_TITLES": "_saliency",
    "ModelInfo": "_zoo",
    "ZOO_ENV": "_zoo",
    "ZooError": "_zoo",
    "available_zoos": "_zoo",
    "default_zoo_dir": "_zoo",
    "label_source": "_zoo",
    "load_manifest": "_zoo",
    "zoo_title": "_zoo",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.models._labeler import Labeler as Labeler
    from app.models._saliency import METHOD_TITLES as METHOD_TITLES
    from app.models._zoo import ZOO_ENV as ZOO_ENV
    from app.models._zoo import ModelInfo as ModelInfo
    from app.models._zoo import ZooError as ZooError
    from app.models._zoo import available_zoos as available_zoos
    from app.models._zoo import default_zoo_dir as default_zoo_dir
    from app.models._zoo import label_source as label_source
    from app.models._zoo import load_manifest as load_manifest
    from app.models._zoo import zoo_title as zoo_title
