"""Face tracking for video: give each face a number that stays with it while it is in view.

How a track lives (:class:`Tracker`):

* Each face is a Kalman filter over its box (centre x, centre y, width, height, and their speeds), stepped
  by the time between frames (``time_s``, so variable frame rates and dropped frames are handled). The motion
  model is constant velocity with the speed fading over ``SPEED_MEMORY_S`` in a prediction. Detection runs
  every ``detect_every`` frames (and on the first frame of a shot); between runs the boxes follow the
  prediction.
* On a frame with detections, tracks and detections are paired by one optimal assignment (Hungarian, below)
  on ``cost = (1 - IoU) + centre distance / face size`` between the predicted and the detected box. Pairs
  that cannot be the same face are gated out: size ratio over ``MAX_SCALE``, or an IoU under ``min_iou`` with
  a centre further than the filter's uncertainty allows (``GATE_SIGMAS`` standard deviations, kept between
  ``MIN_GATE`` and ``MAX_GATE`` face sizes; the uncertainty grows while a face is missed). The motion
  prediction is what keeps two faces' numbers apart when they pass each other: each detection is nearest to
  where its own face was heading (tests/test_track.py has a crossing that a tracker without it gets wrong).
* A detection that pairs with no track starts a new one with the next number; numbers are never reused
  within a video, not even after :meth:`Tracker.cut` (a shot cut ends every track).
* A new track is reported at once (the first frame of a one-face clip has its face), but until it has been
  detected ``min_hits`` times it is shown only while its latest detection run found it: a one-off false
  detection vanishes at the next run instead of lingering as a predicted box for a second. It is remembered
  meanwhile, so a face the detector finds only every other run keeps one number (the small, far pianist of
  stage_and_audience.mp4, found on 6 of its 20 frames, is one track).
* A confirmed track missed by the detector (turned head, hand before the face) keeps its number and is shown
  at its predicted box until ``max_missing_s`` has passed since it was last detected; then it ends. With a
  ``frame_size``, a prediction leaving the frame is hidden, and ended once wholly outside.

Why no tracking library: norfair 2.3 requires numpy < 2 (the project uses numpy 2.x), rich < 15 (with
markdown-it-py and pygments), filterpy (which requires matplotlib and scipy) and scipy; motpy requires
filterpy and scipy; supervision (ByteTrack) requires scipy, matplotlib, requests, PyYAML and PyAV. scipy and
matplotlib are excluded from the bundle by name (build.spec's EXCLUDES, tests/test_bundle.py), and scipy
alone is 143 MB installed (35 MB wheel) against a bundle of ~204 of its 250 MB with the video decoder still
to add ~100 MB. So this module is numpy only: the assignment is a 40-line Hungarian method (a few faces per
frame: ~0.3 ms for 10x10) instead of ``scipy.optimize.linear_sum_assignment`` (which the tests compare it
with), and the filter is written out because ``cv2.KalmanFilter`` lives in OpenCV's video module, which the
app's small OpenCV build (core, imgproc, objdetect) does not have. The four box coordinates are modelled as
independent, so the filter is four 2x2 filters side by side.

Measurements behind the constants (``benchmarks/tracking.py`` on ../shared/data/videos and two synthetic
clips; its docstring has the table). Noise is in face sizes, so one setting fits a 40 px and a 400 px face.

* ``MEASURE_POS``/``MEASURE_SIZE``: the talking head's Haar boxes change from frame to frame by 1.0% of the
  face per axis in position and 4.0% in size (rms, her own motion included), i.e. detector noise of at most
  ~0.7% and ~2.8%; the settings are looser on purpose, as a tilted or turning face's box slides further.
* ``ACCEL_POS`` 4: the normalised innovation (squared distance of each detection from its prediction over the
  predicted variance) of the fast-moving, gesturing singer of stage_and_audience.mp4 averages 0.7 / 1.2 at
  ``detect_every`` 1 / 3, at most 4.4, under the 3-sigma gate's 9; with 3 its largest was 7.4 (the singer's
  head found again 0.93 face sizes from its prediction after a 0.37 s miss, frame 123), too near the gate.
* ``SPEED_MEMORY_S`` 0.5: over that miss a constant speed carried the prediction on downwards while the head
  went up, 1.11 face sizes off; a speed fading over 0.5 s puts it 0.94 off, and the talking head's longest
  miss 0.47 -> 0.29 (1.0 s: 1.02 and 0.36; 0.3 s: 0.86 and 0.21). It costs little on steady motion: the
  synthetic crossing's predicted boxes (every 3rd frame detected) are 3.9% of a face off instead of 2.6%.
* ``MAX_MISSING_S`` 1.0: the issue's "about a second"; the clips' longest misses are 10 frames (0.37 s from
  detection to detection): the singer's head tilted and turned (frames 113-122) and the talking head's tilted
  (155-164).
* ``DETECT_EVERY`` 3: 1, 2 and 3 give the same tracks on all four clips (one per face, no switch, every
  expectation met); 5 loses the stage pianist (never found on a detection frame) and its predicted boxes fit
  the singer worse (mean IoU with that frame's detection 0.85 at 3, 0.73 at 5). Detection is the cost: a third
  of it per frame at 3. The prediction beats holding the last detected box on steady motion (crossing: IoU
  0.86 vs 0.73) and equals it on the real clips' erratic head motion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from app.core import Box
from app.video._decode import Frame
from app.video._shots import CutDetector

MAX_MISSING_S = 1.0  # a confirmed track survives this long without a detection
MIN_IOU = 0.2  # a predicted and a detected box overlapping at least this much may be one face
MIN_HITS = 2  # detections before a track is shown between its detections
MAX_SCALE = 1.5  # larger size ratios between prediction and detection are never one face
GATE_SIGMAS = 3.0  # centre distance allowed, in standard deviations of the prediction's position ...
MIN_GATE, MAX_GATE = 0.5, 1.5  # ... but at least/at most this many face sizes
# Kalman noise, in face sizes: the detector's standard deviation in centre and size, the white-noise
# acceleration density (face sizes / s^1.5) of centre and size, and a new track's speed spread (module docstring).
MEASURE_POS, MEASURE_SIZE = 0.03, 0.05
ACCEL_POS, ACCEL_SIZE = 4.0, 1.0
START_SPEED = 1.0  # face sizes per second
# A prediction's speed decays with this time constant (s): heads bob and turn back, so over a long miss a
# constant speed overshoots (module docstring).
SPEED_MEMORY_S = 0.5
MIN_SIDE = 4.0  # px: a predicted box never shrinks below this
MIN_VISIBLE = 0.5  # a predicted box with less of its area inside the frame is not shown (the face is leaving)
DETECT_EVERY = 3  # track_frames detects on every DETECT_EVERY-th frame and on each shot's first (module docstring)

STATE_VERSION = 1
_BIG = 1e6  # cost of a gated-out pair in the assignment


@dataclass(frozen=True)
class Tracked:
    """One face in one frame. ``box`` is the detection's own Box when ``detected``, else the prediction
    (``eyes`` 0, no landmarks)."""

    track: int  # 1-based, unique within a video, never reused
    box: Box
    detected: bool


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of rows to columns (Hungarian method with potentials, O(n^2 m)).

    Returns ``(row, column)`` pairs, one for each row when rows <= columns (else one for each column), sorted
    by row; the same pairs as ``scipy.optimize.linear_sum_assignment`` when the optimum is unique. Costs must
    be finite (give forbidden pairs a large cost and drop them afterwards).
    """
    a = np.asarray(cost, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"cost must be a matrix, got shape {a.shape}")
    if a.size == 0:
        return []
    if not np.isfinite(a).all():
        raise ValueError("cost must be finite")
    if a.shape[0] > a.shape[1]:
        return sorted((i, j) for j, i in assign(a.T))
    n, m = a.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=int)  # owner[j]: the row (1-based) holding column j; column 0 is a sentinel
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        best = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:  # grow an alternating tree from row i until it reaches a free column
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < best[1:])
            best[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, best[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            best[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j])


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _measure(box: Box) -> np.ndarray:
    return np.array([box.x + box.w / 2, box.y + box.h / 2, box.w, box.h], dtype=np.float64)


def _noise_scale(size: float) -> np.ndarray:
    return np.array([ACCEL_POS, ACCEL_POS, ACCEL_SIZE, ACCEL_SIZE]) * size


class _Track:
    """Mutable filter state of one face: ``x`` (4, 2) = [value, speed] of cx, cy, w, h; ``P`` (4, 2, 2)."""

    def __init__(self, number: int, x: np.ndarray, P: np.ndarray, hits: int, last_seen: float, found: bool):
        self.number, self.x, self.P = number, x, P
        self.hits, self.last_seen, self.found = hits, last_seen, found  # found: matched on the latest run

    @classmethod
    def start(cls, number: int, box: Box, time_s: float) -> _Track:
        z = _measure(box)
        size = math.sqrt(max(z[2], 1.0) * max(z[3], 1.0))
        x = np.stack([z, np.zeros(4)], axis=1)
        r = np.array([MEASURE_POS, MEASURE_POS, MEASURE_SIZE, MEASURE_SIZE]) * size
        P = np.zeros((4, 2, 2))
        P[:, 0, 0] = r**2
        P[:, 1, 1] = (START_SPEED * size) ** 2
        return cls(number, x, P, 1, time_s, True)

    @property
    def size(self) -> float:
        return math.sqrt(max(self.x[2, 0], 1.0) * max(self.x[3, 0], 1.0))

    def rect(self) -> tuple[float, float, float, float]:
        cx, cy, w, h = self.x[:, 0]
        return cx - w / 2, cy - h / 2, w, h

    def predict(self, dt: float) -> None:
        if dt <= 0:
            return
        q = _noise_scale(self.size) ** 2
        keep = math.exp(-dt / SPEED_MEMORY_S)  # share of the speed left after dt
        reach = SPEED_MEMORY_S * (1.0 - keep)  # distance covered per unit of starting speed (dt for a long memory)
        self.x[:, 0] += reach * self.x[:, 1]
        self.x[:, 1] *= keep
        P = self.P  # F P F' + Q with F = [[1, reach], [0, keep]] (Q: the constant-velocity model's)
        p00, p01, p11 = P[:, 0, 0], P[:, 0, 1], P[:, 1, 1]
        n00 = p00 + 2 * reach * p01 + reach * reach * p11 + q * dt**3 / 3
        n01 = keep * (p01 + reach * p11) + q * dt**2 / 2
        n11 = keep * keep * p11 + q * dt
        P[:, 0, 0], P[:, 0, 1], P[:, 1, 0], P[:, 1, 1] = n00, n01, n01, n11
        small = self.x[2:, 0] < MIN_SIDE  # a shrinking prediction stops at MIN_SIDE instead of turning inside out
        self.x[2:, 0][small] = MIN_SIDE
        self.x[2:, 1][small] = 0.0

    def correct(self, box: Box, time_s: float) -> None:
        z = _measure(box)
        size = math.sqrt(max(z[2], 1.0) * max(z[3], 1.0))
        r = (np.array([MEASURE_POS, MEASURE_POS, MEASURE_SIZE, MEASURE_SIZE]) * size) ** 2
        P = self.P
        s = P[:, 0, 0] + r
        k = P[:, :, 0] / s[:, None]  # gain (4, 2)
        self.x += k * (z - self.x[:, 0])[:, None]
        self.P = P - k[:, :, None] * P[:, None, 0, :]
        self.P = (self.P + self.P.transpose(0, 2, 1)) / 2
        self.hits += 1
        self.last_seen = time_s
        self.found = True

    def position_sigma(self) -> float:
        """Standard deviation (px) of where the next detection's centre may fall, prediction plus detector jitter."""
        return math.sqrt((self.P[0, 0, 0] + self.P[1, 0, 0]) / 2 + (MEASURE_POS * self.size) ** 2)

    def to_state(self) -> dict:
        return {"track": self.number, "x": self.x.tolist(), "P": self.P.tolist(), "hits": self.hits,
                "last_seen": self.last_seen, "found": self.found}

    @classmethod
    def from_state(cls, s: dict) -> _Track:
        x, P = np.asarray(s["x"], dtype=np.float64), np.asarray(s["P"], dtype=np.float64)
        if x.shape != (4, 2) or P.shape != (4, 2, 2):
            raise ValueError(f"track state: x {x.shape}, P {P.shape}; expected (4, 2) and (4, 2, 2)")
        return cls(int(s["track"]), x, P, int(s["hits"]), float(s["last_seen"]), bool(s["found"]))


class Tracker:
    """Numbers the faces of one video; call :meth:`update` once per frame, in time order.

    ``frame_size`` (width, height), when given, clips predicted boxes to the frame, hides a prediction that
    has less than ``MIN_VISIBLE`` of its area inside it and ends a track whose prediction has left it.
    """

    def __init__(self, max_missing_s: float = MAX_MISSING_S, min_iou: float = MIN_IOU, min_hits: int = MIN_HITS,
                 frame_size: tuple[int, int] | None = None) -> None:
        self.max_missing_s = float(max_missing_s)
        self.min_iou = float(min_iou)
        self.min_hits = int(min_hits)
        self.frame_size = None if frame_size is None else (int(frame_size[0]), int(frame_size[1]))
        self._tracks: list[_Track] = []
        self._next = 1
        self._time: float | None = None

    @property
    def next_number(self) -> int:
        """The number the next new track will get (one more than the last used)."""
        return self._next

    def update(self, time_s: float, detections: list[Box] | None) -> list[Tracked]:
        """Advance to ``time_s`` and return the tracks shown in this frame, ordered by track number.

        ``detections`` None: no detection ran on this frame (the boxes follow their prediction); ``[]``: it
        ran and found nothing (every track counts as missed). Times must not decrease.
        """
        time_s = float(time_s)
        if self._time is not None and time_s < self._time:
            raise ValueError(f"frame time {time_s} s is before the previous frame's {self._time} s")
        dt = 0.0 if self._time is None else time_s - self._time
        self._time = time_s
        for t in self._tracks:
            t.predict(dt)
        detected: dict[int, Box] = {}
        if detections is not None:
            for t in self._tracks:
                t.found = False
            pairs = self._match(detections)
            for ti, di in pairs:
                self._tracks[ti].correct(detections[di], time_s)
                detected[self._tracks[ti].number] = detections[di]
            paired = {di for _, di in pairs}
            for di, box in enumerate(detections):
                if di not in paired:
                    self._tracks.append(_Track.start(self._next, box, time_s))
                    detected[self._next] = box
                    self._next += 1
        self._tracks = [t for t in self._tracks if time_s - t.last_seen <= self.max_missing_s and self._in_frame(t)]
        out = []
        for t in sorted(self._tracks, key=lambda t: t.number):
            if t.number in detected:
                out.append(Tracked(t.number, detected[t.number], True))
            elif t.found or t.hits >= self.min_hits:
                box = self._predicted_box(t)
                if box is not None:
                    out.append(Tracked(t.number, box, False))
        return out

    def cut(self) -> None:
        """A shot cut: every track ends; new faces get numbers after the last one used."""
        self._tracks = []

    def _match(self, detections: list[Box]) -> list[tuple[int, int]]:
        """(track index, detection index) pairs of the cheapest assignment that passes the gates."""
        if not self._tracks or not detections:
            return []
        cost = np.full((len(self._tracks), len(detections)), _BIG)
        for ti, t in enumerate(self._tracks):
            p = t.rect()
            size = t.size
            gate = min(max(GATE_SIGMAS * t.position_sigma(), MIN_GATE * size), MAX_GATE * size)
            for di, d in enumerate(detections):
                dsize = math.sqrt(max(d.w, 1) * max(d.h, 1))
                if max(dsize / size, size / dsize) > MAX_SCALE:
                    continue
                overlap = iou(p, (d.x, d.y, d.w, d.h))
                dist = math.hypot(d.x + d.w / 2 - t.x[0, 0], d.y + d.h / 2 - t.x[1, 0])
                if overlap >= self.min_iou or dist <= gate:
                    cost[ti, di] = (1.0 - overlap) + dist / size
        return [(ti, di) for ti, di in assign(cost) if cost[ti, di] < _BIG]

    def _visible(self, t: _Track) -> tuple[float, float, float, float, float]:
        """The prediction clipped to the frame (x0, y0, x1, y1) and the fraction of its area inside."""
        x, y, w, h = t.rect()
        if self.frame_size is None:
            return x, y, x + w, y + h, 1.0
        fw, fh = self.frame_size
        x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(fw), x + w), min(float(fh), y + h)
        inside = max(0.0, x1 - x0) * max(0.0, y1 - y0) / max(w * h, 1e-9)
        return x0, y0, x1, y1, inside

    def _in_frame(self, t: _Track) -> bool:
        return self._visible(t)[4] > 0

    def _predicted_box(self, t: _Track) -> Box | None:
        x0, y0, x1, y1, inside = self._visible(t)
        if inside < MIN_VISIBLE:
            return None
        bx, by = int(round(x0)), int(round(y0))
        return Box(bx, by, max(1, int(round(x1)) - bx), max(1, int(round(y1)) - by))

    def state(self) -> dict:
        """JSON-serialisable full state: a tracker from :meth:`from_state` continues exactly as this one would."""
        return {
            "version": STATE_VERSION,
            "max_missing_s": self.max_missing_s,
            "min_iou": self.min_iou,
            "min_hits": self.min_hits,
            "frame_size": None if self.frame_size is None else list(self.frame_size),
            "next": self._next,
            "time": self._time,
            "tracks": [t.to_state() for t in self._tracks],
        }

    @classmethod
    def from_state(cls, state: dict) -> Tracker:
        """The tracker :meth:`state` described (ValueError for a state of another version)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"tracker state version {state.get('version')!r}, expected {STATE_VERSION}")
        size = state.get("frame_size")
        tracker = cls(state["max_missing_s"], state["min_iou"], state["min_hits"],
                      None if size is None else (size[0], size[1]))
        tracker._next = int(state["next"])
        tracker._time = None if state["time"] is None else float(state["time"])
        tracker._tracks = [_Track.from_state(s) for s in state["tracks"]]
        return tracker


@dataclass(frozen=True, eq=False)
class FrameTracks:
    """What :func:`track_frames` yields for each frame: the frame, its tracks, whether it started a shot and
    whether detection ran, and the gray copy detection made (None when it did not run), which the crops reuse."""

    frame: Frame
    tracks: list[Tracked]
    cut: bool
    detected: bool
    gray: np.ndarray | None = None


@dataclass
class TrackingRun:
    """The mutable state of the loop, kept between calls and saved for ``--resume``: the tracker (made on the
    first frame, sized to it), the cut detector and the number of frames analysed since the video's start."""

    tracker: Tracker | None = None
    cuts: CutDetector = field(default_factory=CutDetector)
    analysed: int = 0


Detect = Callable[[np.ndarray], tuple[np.ndarray | None, list[Box]]]  # rgb -> (its gray copy or None, boxes)


def track_frames(frames: Iterable[Frame], detect: Detect, detect_every: int = DETECT_EVERY,
                 run: TrackingRun | None = None) -> Iterator[FrameTracks]:
    """The one cut -> detect -> track loop, which the app runs (:func:`app.video.label_frames`) and
    ``benchmarks/tracking.py`` measures: detection on every ``detect_every``-th *analysed* frame, counted from
    the video's first (``run.analysed``; with ``--fps`` sampling that is not the decoded-frame index), and on
    the first frame of every shot; prediction in between; every track ended at a cut.

    ``run`` carries the state across calls: a run restored from its saved state (``Tracker.from_state``,
    ``CutDetector.from_state``, the count) continues exactly as an uninterrupted one, same detection frames,
    same numbers and boxes. A fresh run whose count is not 0 (a segment of a long video) detects on exactly the
    frames a whole run would.
    """
    if detect_every < 1:
        raise ValueError(f"detect_every must be at least 1, got {detect_every}")
    run = run if run is not None else TrackingRun()
    for frame in frames:
        rgb = frame.rgb
        if run.tracker is None:
            run.tracker = Tracker(frame_size=(rgb.shape[1], rgb.shape[0]))
        cut = run.cuts.is_cut(rgb)
        if cut:
            run.tracker.cut()
        detected = cut or run.analysed % detect_every == 0
        gray, found = detect(rgb) if detected else (None, None)
        tracks = run.tracker.update(frame.time_s, found)
        run.analysed += 1
        yield FrameTracks(frame, tracks, cut, detected, gray)
