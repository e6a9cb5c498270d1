"""The rows of ``labels.csv``: one per face of a photo, the same for the batch command, the window's folder
labelling and the Python API (``from app import photo_rows``).

Example:
    >>> import csv, io
    >>> result = labeler.label_image(sample_photo)
    >>> out = io.StringIO()
    >>> writer = csv.writer(out)
    >>> writer.writerows([labels_header(labeler.models), *photo_rows("sample.jpg", result, labeler.models)])
    >>> print(out.getvalue().splitlines()[0])
    image,face,x,y,w,h,cnn_label,cnn_confidence,ff_label,ff_confidence,resnet18_label,resnet18_confidence,...
    >>> print(out.getvalue().splitlines()[1])  # doctest: +ELLIPSIS
    sample.jpg,1,...,happy,0...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.models import ModelInfo

if TYPE_CHECKING:
    from app.core import PhotoResult


def labels_header(models: Iterable[ModelInfo]) -> list[str]:
    """``image, face, x, y, w, h``, then ``<model>_label, <model>_confidence`` per model, then the ensemble."""
    cols = ["image", "face", "x", "y", "w", "h"]
    for m in models:
        cols += [f"{m.name}_label", f"{m.name}_confidence"]
    return cols + ["ensemble_label", "ensemble_confidence"]


def confidence(p: float) -> str:
    """How a probability is written in the CSV files: four decimals, e.g. ``0.9132``."""
    return f"{p:.4f}"


def photo_rows(image: str | os.PathLike, result: PhotoResult, models: Iterable[ModelInfo]) -> list[list[Any]]:
    """One :func:`labels_header` row per face of ``result`` (faces in reading order), ``image`` naming the photo."""
    models = list(models)
    rows: list[list[Any]] = []
    for f in result.faces:
        b = f.box
        row: list[Any] = [os.fspath(image), f.index, b.x, b.y, b.w, b.h]
        for m in models:
            p = f.predictions[m.name]
            row += [p.label, confidence(p.confidence)]
        rows.append(row + [f.ensemble.label, confidence(f.ensemble.confidence)])
    return rows
