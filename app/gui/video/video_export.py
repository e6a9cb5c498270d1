"""File > Export video results: frames.csv, tracks.csv, timelines/ and an annotated MP4 of the window's video.

The batch command's own writers make every file (app.outputs._video_rows, app.outputs._video_annotate), so an export
from the
window and ``python -m app.batch --annotate`` of the same video have the same columns and pictures. As in the
batch, frames.csv comes first (from the analysed frames the window kept), and tracks.csv, the charts and the
annotated copy are made from its rows read back; the copy is drawn in a second decoding pass (H.264, the
source's sound copied where MP4 can hold it). No Tk here: the window runs it on a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.gui.video.analysis import Record, as_video_frame
from app.outputs import (
    FRAMES,
    TIMELINES,
    TRACKS,
    frame_rows,
    read_video_series,
    track_rows,
    tracks_header,
)
from app.video import MAX_SIDE

ANNOTATED_SUFFIX = "_annotated.mp4"


@dataclass
class Exported:
    """What an export wrote, and a note when the annotated copy could not keep the sound."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    charts: int = 0
    video: Path | None = None
    note: str | None = None


def annotated_name(video: Path) -> str:
    return video.stem + ANNOTATED_SUFFIX


def export_results(out_dir: Path, video: Path, records: list[Record], labeler: Any, span: tuple[float, float],
                   thumbnails: dict[int, np.ndarray] | None = None, annotate: bool = True,
                   max_side: int = MAX_SIDE, progress: Callable[[str], None] = lambda _s: None) -> Exported:
    """Write the results of ``video``'s analysed ``records`` into ``out_dir`` (created if needed; files of the
    same names are replaced atomically, the video itself never). Raises OSError when the folder is not
    writable, :class:`app.video.VideoError` when the video cannot be read again for the annotated copy."""
    from app.core import write_bytes
    from app.outputs import ENCODING, ERRORS, csv_text, frames_bytes, header_size, write_timelines

    out_dir.mkdir(parents=True, exist_ok=True)
    out = Exported(out_dir)
    name = str(video)
    rows = [row for rec in records for row in frame_rows(name, as_video_frame(rec), labeler.models)]
    frames_csv = out_dir / FRAMES
    progress(FRAMES)
    write_bytes(frames_csv, frames_bytes(labeler.models, rows))
    out.files.append(frames_csv)
    series = read_video_series(frames_csv, name)
    progress(TRACKS)
    write_bytes(out_dir / TRACKS, csv_text([tracks_header(), *track_rows(name, series)]).encode(
        ENCODING, ERRORS))
    out.files.append(out_dir / TRACKS)
    if series:
        progress(TIMELINES)
        charts = write_timelines(out_dir / TIMELINES, video.name, series, span, thumbnails)
        out.files += charts
        out.charts = len(charts)
    if annotate and records:
        from app.outputs import write_annotated

        progress(annotated_name(video))
        dst = out_dir / annotated_name(video)
        out.note = write_annotated(video, dst, frames_csv, name, header_size(labeler.models),
                                   frames_csv.stat().st_size, labeler, max_side)
        out.video = dst
        out.files.append(dst)
    return out
