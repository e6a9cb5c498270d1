"""What a labelled video becomes beside frames.csv (app.outputs._frames_csv): tracks.csv rows and the timeline charts.

Shared by the batch command (app.batch._videos), the webcam's Record to CSV (app.video._live) and the window's
export, so all three write the same columns. ``frames.csv``: one row per tracked face per analysed frame,
``video, frame, time_s, track, x, y, w, h``, each model's raw ``<model>_label, <model>_confidence``, the raw
``ensemble_label, ensemble_confidence``, then the smoothed ensemble ``smooth_label`` and its seven
probabilities ``p_angry ... p_neutral``. ``tracks.csv``: one row per track, ``video, track, first_s, last_s,
frames, dominant`` (the smoothed label it holds longest) and ``share_<emotion>`` (its share of the track's
time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core import EMOTIONS
from app.outputs._frames_csv import read_frame_rows

if TYPE_CHECKING:
    from app.video import VideoFrame

HOLD_MAX_S = 1.0  # a track's last label counts for at most this long before its next analysed frame


def tracks_header() -> list[str]:
    """tracks.csv's columns."""
    return ["video", "track", "first_s", "last_s", "frames", "dominant"] + [f"share_{e}" for e in EMOTIONS]


@dataclass
class TrackStats:
    """What tracks.csv says of one track, accumulated frame by frame (constant memory per track)."""

    track: int
    first_s: float
    last_s: float
    frames: int = 0
    seconds: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    _label: int = -1

    def add(self, time_s: float, label: int) -> None:
        if self.frames:  # the previous label held from the previous frame up to this one (at most HOLD_MAX_S)
            self.seconds[self._label] += min(HOLD_MAX_S, max(0.0, time_s - self.last_s))
        self.last_s, self._label = time_s, label
        self.frames += 1

    def row(self, video: str, frame_s: float) -> list[Any]:
        secs = self.seconds.copy()
        if self._label >= 0:  # the last frame's label counts for one frame's time
            secs[self._label] += frame_s
        total = secs.sum()
        share = secs / total if total > 0 else secs
        dominant = EMOTIONS[int(np.argmax(secs))] if total > 0 else ""
        return [video, self.track, f"{self.first_s:.3f}", f"{self.last_s:.3f}", self.frames, dominant,
                *[f"{s:.4f}" for s in share]]


def read_video_series(frames_csv: Path, video: str, start: int = 0, end: int | None = None):  # noqa: ANN201
    """Per track, (times, smoothed probabilities) of ``video``'s rows in frames.csv between byte offsets
    ``start`` and ``end``: what tracks.csv and the charts are made from, read back so that a resumed run's
    outputs are built from exactly the rows on disk."""
    pcols = [f"p_{e}" for e in EMOTIONS]
    series: dict[int, tuple[list[float], list[list[float]]]] = {}
    for row in read_frame_rows(frames_csv, video, start, end):
        times, probs = series.setdefault(int(row["track"]), ([], []))
        times.append(float(row["time_s"]))
        probs.append([float(row[c]) for c in pcols])
    return {k: (np.asarray(t), np.asarray(p, np.float32).reshape(-1, len(EMOTIONS))) for k, (t, p) in series.items()}


def video_series(frames: Iterable[VideoFrame]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`read_video_series`'s output built from labelled frames in memory (``Labeler.label_video``), with
    the same four-decimal rounding frames.csv applies, so :func:`track_rows` gives the batch's tracks.csv rows."""
    series: dict[int, tuple[list[float], list[np.ndarray]]] = {}
    for vf in frames:
        for f in vf.faces:
            times, probs = series.setdefault(f.track, ([], []))
            times.append(round(vf.time_s, 4))
            probs.append(np.round(np.asarray(f.smooth.probs, np.float64), 4))
    return {k: (np.asarray(t), np.asarray(p, np.float32).reshape(-1, len(EMOTIONS))) for k, (t, p) in series.items()}


def track_rows(video: str, series: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[list[Any]]:
    """tracks.csv rows from :func:`read_video_series`'s output, by track number."""
    rows = []
    for track in sorted(series):
        times, probs = series[track]
        stats = TrackStats(track, float(times[0]), float(times[0]))
        for t, p in zip(times, probs, strict=True):
            stats.add(float(t), int(np.argmax(p)))
        frame_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        rows.append(stats.row(video, min(frame_s, HOLD_MAX_S)))
    return rows


def write_timelines(folder: Path, video_name: str, series: dict[int, tuple[np.ndarray, np.ndarray]],
                    span: tuple[float, float], thumbnails: dict[int, np.ndarray] | None = None) -> list[Path]:
    """``folder/track<N>.png`` per track and ``folder/overview.png``, written atomically; returns the paths."""
    from app.core import atomic_path
    from app.outputs._timeline import Series, overview_chart, track_chart

    folder.mkdir(parents=True, exist_ok=True)
    thumbnails = thumbnails or {}
    written = []
    all_series = [Series(k, t, p, thumbnails.get(k)) for k, (t, p) in sorted(series.items())]
    charts = [(f"track{s.track}.png", track_chart(s, span=span, title=f"{video_name}: track {s.track}"))
              for s in all_series]
    charts.append(("overview.png", overview_chart(all_series, span, title=f"{video_name}: smoothed label per track")))
    for name, im in charts:
        path = folder / name
        with atomic_path(path) as tmp:
            im.save(tmp, format="PNG")
        written.append(path)
    return written
