"""Where the app's bundled data files are: beside the code, or inside the PyInstaller bundle.

Every data file path goes through :func:`resource_path` instead of ``__file__`` arithmetic scattered over the
modules, so the frozen bundle (``sys._MEIPASS``) and a source checkout find the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _base_dir() -> Path:
    """The folder holding ``app/``, ``haarcascades/`` and ``models_zoo/`` (PyInstaller unpacks to _MEIPASS)."""
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and meipass:
        return Path(meipass)
    return Path(__file__).resolve().parents[2]  # app/core/_resources.py -> the folder holding app/


def resource_path(*parts: str) -> Path:
    """Path of a bundled data file, e.g. ``resource_path("haarcascades", "x.xml")``; works when frozen."""
    return _base_dir().joinpath(*parts)
