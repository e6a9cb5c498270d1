"""Paths in messages and journals: one spelling for the key a journal stores and the text a message shows."""

from __future__ import annotations

import os
from pathlib import Path


def key(path: Path | str) -> str:
    """The journal's name for an image: its absolute path as given (links are not resolved)."""
    return os.path.abspath(os.fspath(path))


def shown(path: object) -> str:
    """A path for a one-line message: newlines and other control characters escaped, undecodable bytes as
    ``\\xNN``, so a hostile name can neither break the line nor crash a strict UTF-8 terminal."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
