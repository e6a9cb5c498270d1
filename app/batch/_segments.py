"""A long video labelled in segments (``--cluster-segment``): split at keyframes, warmed up, stitched.

Tracking and smoothing make every frame depend on the frames before it, so a segment cannot simply start at its
first frame. Each segment (:func:`plan_segments`) writes the rows of frames ``[start, end)``; its decoding starts
earlier, at a keyframe at least :func:`warmup_s` before ``start`` (a seek: nothing before that keyframe is
decoded), and the frames between are a warm-up: labelled (tracker, cut detector, smoother) but not written. The
detection phase is the whole run's: the segment is told how many frames the whole run analysed before its first
(``app.video.sampled`` answers that for ``--fps`` too), so it detects on exactly the frames a whole run does.

The segment's own track numbers start at 1. :func:`stitch` maps them onto the video's: a segment track that
overlaps (IoU >= ``MATCH_IOU``, same frame) a track of the rows already written, on the warm-up frames, takes
that track's number (one optimal assignment over the counts of such frames, ``app.video.assign``); every other
track takes the next free number in order of first appearance, as the whole run's tracker numbers them (every
number it hands out appears in a row: a new track is shown on the frame it starts). Rows are then sorted by
frame and track, as a whole run writes them.

Where rows can differ from a single-process run, all just after a segment boundary:

* Smoothing: the whole run's exponential average of a track carries its history from before the warm-up;
  the segment's starts at the track's first detection in the warm-up. The difference decays as
  ``exp(-t / --smooth)``; ``SMOOTH_SPANS`` = 10 spans (plus one detection interval) put it at 4.5e-5 of a
  probability, under frames.csv's 4-decimal rounding, so the ``p_*`` columns can still differ by one step
  (0.0001) where the rounding falls differently.
* Tracker: a track running through the boundary is a new Kalman filter in the segment. On detection frames
  its box is the detection's own, so the same; on the frames between (predicted boxes) it can be a pixel off
  until the filter has converged (``WARMUP_DETECTIONS`` = 10 detection runs: on synthetic tracks the rounded
  boxes agreed after at most 6), and a pixel moves the crop and its raw labels. A late difference in the
  warm-up reaches the first written frames through the smoother only. A face missed by the detector for the
  whole warm-up, kept by the whole run's tracker (``MAX_MISSING_S``), is not shown by the segment's: hence a
  warm-up of at least ``WARMUP_S`` = 2 s.
* Track numbers: different only where the stitch cannot see a track in the overlap (that face, hidden for the
  whole warm-up), or where the two trackers split a face differently.
* Detection phase: none (the segment detects on the whole run's frames, ``--fps`` included).
* Shot cuts: the same from the warm-up's second frame (the cut detector compares each frame with the one
  before); a cut inside the warm-up ends every track in both runs, after which both are identical.

Measured (whole run against 4 segments, app.batch._segments' functions called directly, frames.csv rows
compared column by column; real zoo and Haar detector on ../shared/data/videos):

| clip, options | warm-up | rows, (frame, track) keys, track numbers, boxes, raw and smoothed labels | ``p_*`` |
|---|---|---|---|
| talking_head.mp4 (464 frames, 15.5 s), --smooth 0.5 | 5 s (default) | identical | <= 0.0001, up to 0.73 s after |
| same | 2 s | identical | <= 0.0059 (boundary frame), within 3.4 s |
| same, --smooth 0 | 2 s | identical | identical |
| stage_and_audience.mp4 (275 frames, 3 cuts), --smooth 0.5 | 5 s, 2 s | identical | identical |
| same, --smooth 0 | 1 s | identical | identical |

tests/test_video_segments.py: two squares and a cut, a stand-in exact detector (every boundary, ``--fps`` 12
too): ``p_*`` <= 0.0001, the rest identical, identical after a cut in the warm-up; a Haar-tracked face pan
through ``--cluster local:1`` with a 1 s warm-up at ``--smooth 0.05``: ``p_*`` up to 0.0008 on a boundary's first
frame, <= 0.0001 from 0.17 s after it, the rest identical. Cost: each segment labels its warm-up too, about
``warm-up / segment`` more work (5 s on 60 s segments: 8%).

A segment whose frames do not match the packet table (:func:`check_segment`: a damaged file, a seek that
landed elsewhere) is not stitched: the caller labels the video whole instead, where its damage is reported as
in a local run.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from app.outputs import KEY_COLUMNS, rows_as_dicts
from app.video import (
    FrameTable,
    VideoError,
    VideoFrame,
    VideoOptions,
    assign,
    frames,
    iou,
    label_frames,
    probe,
    sampled,
)

if TYPE_CHECKING:
    from app.models import Labeler

DEFAULT_SEGMENT_S = 60.0  # --cluster-segment's default: videos longer than this are split
WARMUP_S = 2.0  # at least this much warm-up before a segment's first written frame (module docstring)
SMOOTH_SPANS = 10.0  # ... and at least this many smoothing time constants
WARMUP_DETECTIONS = 10  # ... and at least this many detection runs (the Kalman filter's convergence)
MATCH_IOU = 0.5  # a segment's track and a written track overlapping this much in one frame are one face there

Rect = tuple[int, int, int, int]
Boxes = dict[int, list[tuple[int, Rect]]]  # frame index -> (track, (x, y, w, h)) of each face in it


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` (``end`` None: to the end) to write; decoding starts at ``keyframe`` ((index,
    pts), None: the first frame) and frames are labelled from index ``first``, ``analysed`` of the whole run's
    analysed frames lying before it."""

    start: int
    end: int | None
    keyframe: tuple[int, int] | None = None
    first: int = 0
    analysed: int = 0


def warmup_s(opts: VideoOptions, frame_rate: float) -> float:
    """Seconds of warm-up before a segment: enough for the tracker and the smoother to forget their start
    (``frame_rate``: the video's frames per second, which with ``opts.fps`` unset are all analysed)."""
    rate = opts.fps or frame_rate or 30.0
    first_detection = opts.detect_every / rate  # a track can start only on a detection frame of the warm-up
    return max(WARMUP_S, SMOOTH_SPANS * opts.smooth_s + first_detection, WARMUP_DETECTIONS * first_detection)


def plan_segments(table: FrameTable, segment_s: float, warm_s: float, every_s: float | None = None) -> list[Segment]:
    """Segments of at most about ``segment_s`` seconds, each starting at a keyframe, with their warm-up; [] when
    the video is not longer than ``segment_s`` or its keyframes are too sparse to split it."""
    times, keys, n = table.times_s, table.keyframes, len(table.times_s)
    if n < 2 or segment_s <= 0 or not keys:
        return []
    count = math.ceil(times[-1] / segment_s - 1e-9)
    key_times = [times[k] for k in keys]
    starts = [0]
    for k in range(1, count):
        i = bisect.bisect_left(key_times, k * times[-1] / count)
        if i < len(keys) and keys[i] > starts[-1]:
            starts.append(keys[i])
    if len(starts) < 2:
        return []
    taken = sampled(times, every_s)
    out = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        j = bisect.bisect_right(key_times, times[start] - warm_s) - 1
        while j >= 0 and keys[j] > start - 2:  # at least one warm-up frame after the keyframe
            j -= 1
        k0 = keys[j] if j >= 0 else 0
        if k0 == 0:  # the warm-up reaches the first frame: decode from there, exactly as a whole run
            out.append(Segment(start, end))
        else:
            out.append(Segment(start, end, (k0, table.pts[k0]), k0 + 1, sum(taken[:k0 + 1])))
    return out


def label_segment(labeler: Labeler, path: str | os.PathLike, opts: VideoOptions, seg: Segment) -> Iterator[VideoFrame]:
    """The labelled frames of ``seg``, warm-up first (index < ``seg.start``: not to be written)."""
    info = probe(path, max_side=opts.max_side)
    every = None if opts.fps is None else 1.0 / opts.fps
    source = frames(path, start_index=seg.first, every_s=every, max_side=opts.max_side, keyframe=seg.keyframe)
    try:
        yield from label_frames(labeler, _until(source, seg.end), opts, scale=info.scale, analysed=seg.analysed)
    finally:
        source.close()


def _until(source: Iterator, end: int | None) -> Iterator:
    for frame in source:
        if end is not None and frame.index >= end:
            return
        yield frame


@dataclass
class SegmentResult:
    """What a worker sends back for one segment: frames.csv rows (its own track numbers), the analysed frames
    ``(index, time_s)`` it wrote, the warm-up frames' boxes, each track's first detected face as a thumbnail PNG,
    its labelling seconds, and ``error`` (a VideoError's reason) when it could not be labelled."""

    rows: list[list[Any]] = field(default_factory=list)
    frames: list[tuple[int, float]] = field(default_factory=list)
    warm: Boxes = field(default_factory=dict)
    thumbs: dict[int, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def run_segment(labeler: Labeler, path: str | os.PathLike, opts: VideoOptions, seg: Segment) -> SegmentResult:
    """Label ``seg`` of the video at ``path`` into a :class:`SegmentResult` (a worker's part of a long video)."""
    from app.batch._videos import thumbnail_png
    from app.outputs import frame_rows

    t0 = time.perf_counter()
    res = SegmentResult()
    name = str(path)
    try:
        for vf in label_segment(labeler, path, opts, seg):
            if vf.index < seg.start:
                res.warm[vf.index] = [(f.track, _rect(f.box)) for f in vf.faces]
                continue
            res.rows += frame_rows(name, vf, labeler.models)
            res.frames.append((vf.index, vf.time_s))
            for f in vf.faces:
                if f.detected and f.track not in res.thumbs:
                    res.thumbs[f.track] = thumbnail_png(f.crop)
    except VideoError as e:
        res.error = e.reason
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def _rect(box: Any) -> Rect:
    return int(box.x), int(box.y), int(box.w), int(box.h)


def check_segment(res: SegmentResult, seg: Segment, table: FrameTable, taken: list[bool]) -> bool:
    """Whether the segment wrote exactly the frames the packet table says a whole run analyses in it, at the same
    times (``taken``: :func:`app.video.sampled` of the table); else the video is labelled whole."""
    end = len(table.times_s) if seg.end is None else seg.end
    want = [i for i in range(seg.start, end) if taken[i]]
    return res.error is None and [i for i, _ in res.frames] == want and all(
        abs(t - table.times_s[i]) < 1e-6 for i, t in res.frames)


def row_boxes(rows: list[list[Any]]) -> Boxes:
    """frames.csv rows as :data:`Boxes`."""
    out: Boxes = {}
    for r in rows_as_dicts(rows):
        out.setdefault(int(r["frame"]), []).append((int(r["track"]), (int(r["x"]), int(r["y"]), int(r["w"]),
                                                                      int(r["h"]))))
    return out


def match_tracks(written: Boxes, warm: Boxes, tracks: set[int] | None = None,
                 min_iou: float = MATCH_IOU) -> dict[int, int]:
    """Segment track -> written track, for the segment's ``tracks`` (default: all) that are the same face as a
    written one: per shared frame, boxes paired by the optimal assignment on IoU (pairs under ``min_iou`` not
    counted); then tracks paired by the most frames together, each at most once."""
    counts: dict[tuple[int, int], int] = {}
    for index, mine in warm.items():
        theirs = written.get(index)
        mine = [m for m in mine if tracks is None or m[0] in tracks]
        if not theirs or not mine:
            continue
        overlap = np.array([[iou(a, b) for _, b in theirs] for _, a in mine])
        for i, j in assign(1.0 - overlap):
            if overlap[i, j] >= min_iou:
                pair = (mine[i][0], theirs[j][0])
                counts[pair] = counts.get(pair, 0) + 1
    if not counts:
        return {}
    mine_ids = sorted({a for a, _ in counts})
    their_ids = sorted({b for _, b in counts})
    score = np.array([[counts.get((a, b), 0) for b in their_ids] for a in mine_ids], dtype=np.float64)
    return {mine_ids[i]: their_ids[j] for i, j in assign(score.max() - score) if score[i, j] > 0}


def first_appearance(rows: list[list[Any]]) -> list[int]:
    """The track numbers of ``rows`` in order of their first row."""
    return list(dict.fromkeys(int(r["track"]) for r in rows_as_dicts(rows)))


def renumber(order: list[int], matched: dict[int, int], next_number: int) -> dict[int, int]:
    """Segment track -> video track: the matched ones keep the written number, the others get ``next_number``
    on, in ``order`` (of first appearance)."""
    out = {}
    for track in order:
        if track in matched:
            out[track] = matched[track]
        else:
            out[track] = next_number
            next_number += 1
    return out


@dataclass
class Stitched:
    """A video's segments as one: frames.csv rows, thumbnails by track number, analysed frames, seconds."""

    rows: list[list[Any]]
    thumbs: dict[int, bytes]
    frames: int
    seconds: float


def stitch(results: list[SegmentResult]) -> Stitched:
    """The segments' rows with the video's track numbers (see the module docstring), in a whole run's order."""
    rows: list[list[Any]] = []
    thumbs: dict[int, bytes] = {}
    written: Boxes = {}
    next_number = 1
    for res in results:
        order = first_appearance(res.rows)
        matched = match_tracks(written, res.warm, set(order)) if res.warm else {}
        mapping = renumber(order, matched, next_number)
        next_number = max([next_number - 1, *mapping.values()]) + 1
        frame, track = KEY_COLUMNS.index("frame"), KEY_COLUMNS.index("track")
        mine = sorted(([*r[:track], mapping[int(r[track])], *r[track + 1:]] for r in res.rows),
                      key=lambda r: (int(r[frame]), r[track]))
        rows += mine
        written.update(row_boxes(mine))
        for track, png in res.thumbs.items():
            thumbs.setdefault(mapping[track], png)
    return Stitched(rows, thumbs, sum(len(r.frames) for r in results), round(sum(r.seconds for r in results), 3))
