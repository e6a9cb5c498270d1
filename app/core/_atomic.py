"""Atomic file writes: a crash or kill leaves the old file or the new one, never half of one.

One place for the temp-name scheme (``.<stem>.<pid>-<hex>.tmp<suffix>``, which ``app.batch`` recognises when
it cleans up after a crash) and for permissions: the temp file is created with ``open(..., "x")``, so it gets
the user's umask like any other file, not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write; it replaces ``path`` on success and is removed on failure."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) atomically and durably (fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically and durably (fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
