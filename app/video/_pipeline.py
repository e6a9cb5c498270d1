"""Label a video: decoded frames -> detection every few frames -> tracked faces -> crops -> every model ->
per-track smoothing. The one video path of the batch command, the window's player and the webcam.

It reuses the photo pipeline's pieces (``app.detect``, ``app.detect._crop``, ``Labeler.classify``) and adds what video
needs: ``app.video._shots`` ends every track at a cut, ``app.video._track`` keeps a face's number between detections and
through short misses, ``app.video._smooth`` steadies each track's probabilities. Faces of ``CHUNK`` frames are
labelled in one model run per model: batching crops is what lets a 30 fps clip be labelled faster than real
time on two cores (a model run has a fixed cost that one face per run pays every frame).

Frames stream through; nothing is collected, so memory stays flat over an hour of video. Every ``CHUNK``
frames the last result carries ``state``: everything needed to continue after that frame (``--resume``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from app.core import CROP_SIZE, Box, ShownFace
from app.detect import DETECTORS, crop_faces, find_faces, to_gray
from app.video._decode import MAX_SIDE, Frame, frames, probe
from app.video._shots import CutDetector
from app.video._smooth import SMOOTH_S, Smoother
from app.video._track import DETECT_EVERY, FrameTracks, Tracker, TrackingRun, track_frames

if TYPE_CHECKING:
    from app.core import Prediction
    from app.models import Labeler

CHUNK = 8  # frames whose faces are labelled together (see the module docstring)
STATE_VERSION = 1


@dataclass(frozen=True)
class VideoOptions:
    """How a video is labelled. ``fps`` samples (None: every frame); ``smooth_s`` 0 switches smoothing off."""

    detect_every: int = DETECT_EVERY
    smooth_s: float = SMOOTH_S
    fps: float | None = None
    detector: str = DETECTORS[0]
    eye_check: bool = True
    tta: bool = False
    max_side: int = MAX_SIDE

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.smooth_s < 0:
            raise ValueError(f"smoothing must be >= 0 seconds, got {self.smooth_s}")


@dataclass(frozen=True)
class TrackFace:
    """One tracked face in one frame: its track number, box (source-video pixels), whether the detector found
    it in this frame (else the box is the tracker's prediction), the crop, each model's raw label, the raw
    ensemble and the smoothed ensemble."""

    track: int
    box: Box
    detected: bool
    crop: np.ndarray
    predictions: dict[str, Prediction]
    ensemble: Prediction
    smooth: Prediction

    def shown(self) -> ShownFace:
        """The face as the annotators draw it: numbered by its track, tagged with its smoothed label."""
        return ShownFace(self.track, self.box, self.predictions, self.smooth)


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One analysed frame. ``index`` is the 0-based decoded-frame index, ``time_s`` its presentation time;
    ``rgb`` the frame as analysed (None unless asked for); ``state`` is set every ``CHUNK`` frames."""

    index: int
    time_s: float
    faces: list[TrackFace]
    cut: bool
    detected: bool
    rgb: np.ndarray | None = None
    scale: float = 1.0
    state: dict | None = field(default=None, repr=False)


class _Run:
    """The mutable part of a labelling run: the tracking loop's state (tracker, cut detector, analysed-frame
    count) and the smoother."""

    def __init__(self, opts: VideoOptions, state: dict | None) -> None:
        if state is None:
            self.tracking = TrackingRun()
            self.smoother = Smoother(opts.smooth_s)
        else:
            if state.get("version") != STATE_VERSION:
                raise ValueError("saved video state is from another version; label this video afresh")
            self.tracking = TrackingRun(Tracker.from_state(state["tracker"]) if state.get("tracker") else None,
                                        CutDetector.from_state(state["cuts"]), int(state["analysed"]))
            self.smoother = Smoother.from_state(state["smoother"])

    def state(self, next_index: int) -> dict:
        tr = self.tracking
        return {"version": STATE_VERSION, "next_index": next_index, "analysed": tr.analysed,
                "tracker": None if tr.tracker is None else tr.tracker.state(),
                "cuts": tr.cuts.state(), "smoother": self.smoother.state()}


def label_frames(labeler: Labeler, source: Iterable[Frame], opts: VideoOptions = VideoOptions(),
                 state: dict | None = None, keep_rgb: bool = False, scale: float = 1.0,
                 chunk: int | None = None, analysed: int = 0) -> Iterator[VideoFrame]:
    """Label a stream of :class:`app.video.Frame` (a file's, or a live source's), yielding one
    :class:`VideoFrame` per frame in order. ``state`` (a previous run's last ``VideoFrame.state``) continues
    that run: same track numbers, same smoothing. ``scale`` is the frames' size over the source's (boxes are
    reported in source pixels). ``chunk``: frames per model run, ``CHUNK`` by default; the live path (app.video._live)
    passes 1, since a chunk holds its first frame's result back until the chunk is full. ``analysed``, without a
    ``state``: frames of the video analysed before ``source``'s first, so a segment of a long video detects on
    the frames a whole run would (app.batch._segments)."""
    per_run = CHUNK if chunk is None else max(1, chunk)
    run = _Run(opts, state)
    if state is None:
        run.tracking.analysed = analysed

    def detect(rgb: np.ndarray) -> tuple[np.ndarray | None, list[Box]]:
        return find_faces(rgb, eye_check=opts.eye_check, detector=opts.detector)

    pending: list[FrameTracks] = []
    it = track_frames(source, detect, opts.detect_every, run.tracking)
    while True:
        try:
            ft = next(it)
        except StopIteration:
            break
        except BaseException:  # a damaged file: the frames decoded before the damage are labelled first
            yield from _finish(labeler, pending, run, opts, keep_rgb, scale)
            raise
        pending.append(ft)
        if len(pending) >= per_run:
            yield from _finish(labeler, pending, run, opts, keep_rgb, scale)
            pending = []
    yield from _finish(labeler, pending, run, opts, keep_rgb, scale)


def _scaled(box: Box, scale: float) -> Box:
    if scale == 1.0:
        return box
    s = 1.0 / scale
    return Box(round(box.x * s), round(box.y * s), max(1, round(box.w * s)), max(1, round(box.h * s)), box.eyes,
               tuple((x * s, y * s) for x, y in box.landmarks))


def _finish(labeler: Labeler, chunk: list[FrameTracks], run: _Run, opts: VideoOptions, keep_rgb: bool,
            scale: float) -> Iterator[VideoFrame]:
    """Crop every tracked face of the chunk, label them in one run per model, smooth per track, yield."""
    if not chunk:
        return
    crops = [crop_faces(ft.gray if ft.gray is not None else to_gray(ft.frame.rgb), [t.box for t in ft.tracks])
             for ft in chunk if ft.tracks]
    batch = np.concatenate(crops) if crops else np.zeros((0, *CROP_SIZE), np.uint8)
    per_model, ensemble = labeler.classify(batch, tta=opts.tta)
    i = 0
    for n, ft in enumerate(chunk):
        frame = ft.frame
        faces = []
        for t in ft.tracks:
            smooth = run.smoother.update(t.track, frame.time_s, ensemble[i])
            faces.append(TrackFace(
                track=t.track, box=_scaled(t.box, scale), detected=t.detected, crop=batch[i],
                predictions={m.name: labeler.prediction(per_model[m.name][i]) for m in labeler.models},
                ensemble=labeler.prediction(ensemble[i]), smooth=labeler.prediction(smooth)))
            i += 1
        run.smoother.forget(frame.time_s)
        last = n == len(chunk) - 1
        yield VideoFrame(frame.index, frame.time_s, faces, ft.cut, ft.detected, frame.rgb if keep_rgb else None,
                         scale, run.state(frame.index + 1) if last else None)


def label_video(labeler: Labeler, path: str | os.PathLike, opts: VideoOptions = VideoOptions(),
                state: dict | None = None, keep_rgb: bool = False) -> Iterator[VideoFrame]:
    """Label a video file frame by frame (``opts.fps`` samples it); ``state`` resumes after the frame it was
    saved at. Raises :class:`app.video.VideoError` for a file that cannot be read, and, after yielding the
    frames decoded before the damage, for a truncated or corrupt one."""
    info = probe(path, max_side=opts.max_side)
    start = int(state["next_index"]) if state else 0
    every = None if opts.fps is None else 1.0 / opts.fps
    source = frames(path, start_index=start, every_s=every, max_side=opts.max_side)
    yield from label_frames(labeler, source, opts, state, keep_rgb, info.scale)

