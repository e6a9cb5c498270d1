"""Atomic checkpoint files: a kill at any moment leaves either the previous or the new file, never half of one."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core import atomic_path
from training.models import build_model


def save(obj: dict, path: str | Path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None


def load_model(path: str | Path) -> torch.nn.Module:
    """Rebuild the model a checkpoint was trained as and load its weights (``best.pt`` or ``last.pt``)."""
    return model_from(load(path), path)


def model_from(ckpt: dict, path: str | Path) -> torch.nn.Module:
    """The model of an already loaded checkpoint (``path`` only names it in errors)."""
    try:
        model = build_model(ckpt["model_name"], **ckpt["model_params"])
        model.load_state_dict(ckpt["model"])
    except KeyError as e:
        raise ValueError(f"{path}: checkpoint lacks {e}; was it written by training.train?") from None
    return model.eval()
