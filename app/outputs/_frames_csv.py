"""frames.csv, the one module that writes and reads it: one row per tracked face per analysed frame.

Columns (:func:`frames_header`): ``video, frame, time_s, track, x, y, w, h``, each model's raw
``<model>_label, <model>_confidence``, the raw ``ensemble_label, ensemble_confidence``, then the smoothed
ensemble ``smooth_label`` and its seven probabilities ``p_angry ... p_neutral``.

Every writer goes through here: the batch command and the cluster append encoded rows and keep the byte offsets
that resume checkpoints and the annotate pass need (:class:`FramesAppender`), the window's export writes a whole
file (:func:`frames_bytes`), the live paths record frame by frame (:class:`FramesRecorder`). Every reader reads
by column name (:func:`read_frame_rows`), never by position, so a column added later cannot shift another.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core import EMOTIONS, write_all
from app.outputs._csv import ENCODING, ERRORS, csv_text
from app.outputs._labels_csv import confidence

if TYPE_CHECKING:
    from app.models import ModelInfo
    from app.video import VideoFrame

KEY_COLUMNS = ("video", "frame", "time_s", "track", "x", "y", "w", "h")  # the first columns, whatever the zoo


def frames_header(models: Iterable[ModelInfo]) -> list[str]:
    """frames.csv's columns for a zoo's models (the module docstring says what each holds)."""
    cols = list(KEY_COLUMNS)
    for m in models:
        cols += [f"{m.name}_label", f"{m.name}_confidence"]
    return cols + ["ensemble_label", "ensemble_confidence", "smooth_label"] + [f"p_{e}" for e in EMOTIONS]


def frame_rows(video: str, vf: VideoFrame, models: Iterable[ModelInfo]) -> list[list[Any]]:
    """frames.csv rows of one analysed frame (one per tracked face, by track number)."""
    names = [m.name for m in models]
    rows = []
    for f in vf.faces:
        row: list[Any] = [video, vf.index, f"{vf.time_s:.4f}", f.track, f.box.x, f.box.y, f.box.w, f.box.h]
        for n in names:
            row += [f.predictions[n].label, confidence(f.predictions[n].confidence)]
        row += [f.ensemble.label, confidence(f.ensemble.confidence), f.smooth.label]
        row += [confidence(float(p)) for p in f.smooth.probs]
        rows.append(row)
    return rows


def encode(rows: list[list[Any]]) -> bytes:
    """Rows as frames.csv's bytes (UTF-8, undecodable name bytes kept: app.outputs._csv)."""
    return csv_text(rows).encode(ENCODING, ERRORS)


def frames_bytes(models: Iterable[ModelInfo], rows: list[list[Any]]) -> bytes:
    """A whole frames.csv: the header, then ``rows``."""
    return encode([frames_header(models), *rows])


def header_size(models: Iterable[ModelInfo]) -> int:
    """The header's length in bytes: where the first row starts."""
    return len(encode([frames_header(models)]))


class FramesAppender:
    """Appends encoded rows to an existing frames.csv through one ``O_APPEND`` descriptor and says where the
    file ends after each write: the offsets resume checkpoints and the annotate pass's row ranges need."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))

    def append(self, rows: list[list[Any]]) -> int:
        """Write ``rows``; returns the file's size after them (the next row's offset)."""
        return self.write(encode(rows))

    def write(self, data: bytes) -> int:
        """Write rows already encoded (a cluster worker's, :func:`encode`); returns the file's size after them."""
        if data:
            write_all(self._fd, data)
        return self.size()

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FramesAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FramesRecorder:
    """frames.csv rows of each labelled frame into one CSV (replaced when opened), flushed per frame, so a crash
    loses at most the frame in hand. Safe to open, write and close from different threads (the window toggles
    recording from Tk while the labelling thread writes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: Any = None
        self._models: list[ModelInfo] = []
        self.path: Path | None = None
        self.rows = 0

    def open(self, path: str | os.PathLike, models: Iterable[ModelInfo]) -> None:
        """Start recording to ``path`` (an OSError if it cannot be created); a recording in progress ends."""
        models = list(models)
        f = open(path, "w", encoding=ENCODING, errors=ERRORS, newline="")  # noqa: SIM115 - closed in close()
        f.write(csv_text([frames_header(models)]))
        f.flush()
        with self._lock:
            self._close_locked()
            self._file, self._models, self.path, self.rows = f, models, Path(path), 0

    def write(self, video: str, vf: VideoFrame) -> None:
        """Append ``vf``'s rows under the name ``video``; nothing when not recording."""
        with self._lock:
            if self._file is not None:
                rows = frame_rows(video, vf, self._models)
                self._file.write(csv_text(rows))
                self._file.flush()
                self.rows += len(rows)

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None

    @property
    def on(self) -> bool:
        return self._file is not None

    def __enter__(self) -> FramesRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_frame_rows(frames_csv: str | os.PathLike, video: str | None = None, start: int = 0,
                    end: int | None = None) -> Iterator[dict[str, str]]:
    """frames.csv's rows as ``{column: text}``, of ``video`` (every video when None), between byte offsets
    ``start`` (0, or where a row starts) and ``end`` (the end of the file when None). A row torn by a kill or
    with the wrong number of fields is left out, as is any header line."""
    with open(frames_csv, "rb") as f:
        header = next(csv.reader([f.readline().decode(ENCODING, ERRORS)]), [])
        f.seek(max(start, f.tell()))
        data = f.read(None if end is None else max(0, end - f.tell()))
    for row in csv.reader(io.StringIO(data.decode(ENCODING, ERRORS), newline="")):
        if len(row) != len(header) or row == header or (video is not None and row[0] != video):
            continue
        yield dict(zip(header, row, strict=True))


def rows_as_dicts(rows: Iterable[list[Any]]) -> Iterator[dict[str, Any]]:
    """In-memory rows of :func:`frame_rows` by column name, as :func:`read_frame_rows` gives file rows (the
    key columns only: they are the same for every zoo)."""
    for r in rows:
        yield dict(zip(KEY_COLUMNS, r[: len(KEY_COLUMNS)], strict=True))
