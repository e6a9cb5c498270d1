"""A video's analysis for the window: app.video._pipeline on its own thread, and its results kept small.

Why it is built this way:

* Labelling a video takes about as long as watching it, or longer (talking_head.mp4, 15 s: 32 s with the
  shipped models on the busy two-core test machine), so it runs while the user watches: the player draws the
  boxes of the frames analysed so far. It has its own thread rather than the window's worker
  because a photo opened meanwhile must not wait an hour behind it (the Labeler is safe to share).
* Per analysed frame only what the player, the track table, the timeline and the export need is kept: each
  face's track, box and labels (:func:`slim`, well under a kilobyte), never the pixels nor the 48x48 crops
  (one per track is kept, for the timeline's thumbnail). An hour of 720p is 300 GB of frames; its labels
  are tens of MB.
* Results reach the Tk thread through a queue it polls (Tk is not thread-safe), a batch at a time
  (``BATCH_S``), so a fast analysis cannot flood the event loop. Every message carries the video's
  ``generation``: the results of a video the user has since closed are dropped.
"""

from __future__ import annotations

import bisect
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.core import EMOTIONS
from app.outputs import HOLD_MAX_S, Series, TrackStats
from app.video import TrackFace, VideoError, VideoFrame, VideoOptions, label_video

BATCH_S = 0.15  # the analysis thread posts its results at most this often
HOLD_S = 0.25  # a frame that was not analysed shows the boxes of an analysed one at most this much earlier


@dataclass(frozen=True, eq=False)
class Record:
    """What is kept of one analysed frame: its index, time and slim faces (by track number)."""

    index: int
    time_s: float
    faces: tuple[TrackFace, ...]


def slim(vf: VideoFrame) -> Record:
    """The frame's faces without the crop and the per-model probabilities (labels and the smoothed
    probabilities stay: the table, the boxes, frames.csv and the timeline need no more)."""
    from app.core import Prediction

    def bare(p: Any) -> Prediction:
        return Prediction(None, p.label, p.confidence)  # type: ignore[arg-type]

    faces = tuple(
        TrackFace(f.track, f.box, f.detected, None, {n: bare(p) for n, p in f.predictions.items()},  # type: ignore[arg-type]
                  bare(f.ensemble), Prediction(np.asarray(f.smooth.probs, np.float32), f.smooth.label,
                                               f.smooth.confidence))
        for f in vf.faces)
    return Record(vf.index, vf.time_s, faces)


def as_video_frame(rec: Record) -> VideoFrame:
    """A record as app.outputs.frame_rows takes it (the export writes frames.csv from these)."""
    return VideoFrame(rec.index, rec.time_s, list(rec.faces), cut=False, detected=False)


class Analysis:
    """One run of label_video over a file on a daemon thread; :meth:`cancel` stops it after the current frame.

    Posts ``(kind, generation, payload)`` to ``results``: ``("frames", g, (records, thumbnails))`` in batches,
    then one ``("done", g, (cancelled, reason))`` (``reason``: why a damaged video stopped early, else None)
    or ``("crash", g, detail)`` for a bug.
    """

    def __init__(self, labeler: Any, path: Path, opts: VideoOptions, results: queue.Queue, generation: int):
        self.labeler, self.path, self.opts = labeler, path, opts
        self.results, self.generation = results, generation
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, name="emotionlens-video", daemon=True)

    def start(self) -> Analysis:
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _post(self, kind: str, payload: Any) -> None:
        self.results.put((kind, self.generation, payload))

    def _run(self) -> None:
        batch: list[Record] = []
        thumbs: dict[int, np.ndarray] = {}
        seen: set[int] = set()
        last = time.monotonic()
        reason = None
        try:
            try:
                for vf in label_video(self.labeler, self.path, self.opts):
                    for f in vf.faces:
                        if f.track not in seen:
                            seen.add(f.track)
                            thumbs[f.track] = np.array(f.crop, np.uint8)
                    batch.append(slim(vf))
                    if time.monotonic() - last >= BATCH_S:
                        self._post("frames", (batch, thumbs))
                        batch, thumbs, last = [], {}, time.monotonic()
                    if self.cancelled.is_set():
                        break
            except VideoError as e:  # damaged part-way: the frames before the damage are kept
                reason = e.reason
            self._post("frames", (batch, thumbs))
            self._post("done", (self.cancelled.is_set(), reason))
        except Exception as e:  # a bug, not the user's file: say so in the window, keep it running
            traceback.print_exc()
            self._post("crash", f"{type(e).__name__}: {' '.join(str(e).split())}")


class TrackInfo:
    """One track's numbers so far: tracks.csv's statistics, the smoothed series for its timeline, a thumbnail."""

    def __init__(self, track: int, time_s: float, thumbnail: np.ndarray | None) -> None:
        self.track = track
        self.stats = TrackStats(track, time_s, time_s)
        self.times: list[float] = []
        self.probs: list[np.ndarray] = []
        self.thumbnail = thumbnail
        self._series: Series | None = None

    def add(self, time_s: float, probs: np.ndarray) -> None:
        self.stats.add(time_s, int(np.argmax(probs)))
        self.times.append(time_s)
        self.probs.append(probs)
        self._series = None

    def series(self) -> Series:
        if self._series is None:
            self._series = Series(self.track, np.asarray(self.times), np.asarray(self.probs, np.float32).reshape(
                -1, len(EMOTIONS)), self.thumbnail)
        return self._series

    def in_view_s(self, frame_s: float) -> float:
        """Seconds in view: each analysed frame counts until the next (at most HOLD_MAX_S), the last one frame."""
        return float(self.stats.seconds.sum()) + min(frame_s, HOLD_MAX_S)

    def dominant(self, frame_s: float) -> str:
        """The smoothed label held longest, as tracks.csv says it."""
        return str(self.stats.row("", min(frame_s, HOLD_MAX_S))[5])


class VideoStore:
    """The analysed frames of one video, in order, with per-track summaries; lives on the Tk thread."""

    def __init__(self, fps: float = 0.0) -> None:
        self.records: list[Record] = []
        self.times: list[float] = []
        self.tracks: dict[int, TrackInfo] = {}
        self.frame_s = 1.0 / fps if fps > 0 else 0.0
        self.version = 0  # bumped on every change: views redraw only when it moved

    def add(self, records: list[Record], thumbnails: dict[int, np.ndarray]) -> None:
        for rec in records:
            if self.times and rec.time_s < self.times[-1]:
                continue  # kept in time order for the lookups (one analysis per store, so never expected)
            self.records.append(rec)
            self.times.append(rec.time_s)
            for f in rec.faces:
                info = self.tracks.get(f.track)
                if info is None:
                    info = self.tracks[f.track] = TrackInfo(f.track, rec.time_s, thumbnails.get(f.track))
                info.add(rec.time_s, f.smooth.probs)
        if records:
            self.version += 1

    def __len__(self) -> int:
        return len(self.records)

    @property
    def analysed_s(self) -> float:
        """Time of the last analysed frame (-1 before the first)."""
        return self.times[-1] if self.times else -1.0

    def at(self, time_s: float) -> Record | None:
        """The analysed frame shown at ``time_s``: the last one at or before it, if at most HOLD_S earlier."""
        i = bisect.bisect_right(self.times, time_s + 1e-6) - 1
        if i < 0 or time_s - self.times[i] > HOLD_S:
            return None
        return self.records[i]

    def index_at(self, time_s: float) -> int | None:
        """The frame index shown at ``time_s`` where the analysis has reached it, else None."""
        if not self.times or time_s > self.times[-1] + HOLD_S:
            return None
        i = max(0, bisect.bisect_right(self.times, time_s + 1e-6) - 1)
        return self.records[i].index

    def time_of(self, index: int) -> float | None:
        """The time of analysed frame ``index`` (None where not analysed yet)."""
        i = bisect.bisect_left(self.records, index, key=lambda r: r.index)
        if i < len(self.records) and self.records[i].index == index:
            return self.records[i].time_s
        return None
