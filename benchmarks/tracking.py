"""Face tracking in video (app/video/_track.py, app/video/_shots.py): faces found, track numbers kept, time per frame.

Clips:

* ``group pan`` (synthetic): six copies of the sample portrait's face (flipped, brighter, darker, three sizes)
  on a 1280x720 canvas, filmed by a 480x270 view that pans and zooms in over 72 frames at 30 fps. Truth: each
  face's Haar box on the canvas, carried through the view's transform.
* ``crossing`` (synthetic): two of those faces (one flipped and darker) sliding past each other at ~150 px/s,
  one above the other with a 30 px gap between their face boxes, 72 frames of 480x270.
* ``talking_head.mp4`` and ``stage_and_audience.mp4`` of ../shared/data/videos (skipped when absent; its
  README describes them). No boxes are annotated, so they are scored against the README's expectations: one
  track for the whole talking head; in stage_and_audience the cuts before frames 20, 82 and 211 found, the
  singer of frames 82-210 one track covering >= 90% of those frames, and no track spanning a cut.

Columns: ``found`` is the share of true faces covered by a shown track (IoU >= 0.3 with the truth; for the
real clips, the share of the expected face's frames its main track covers); ``tracks`` the track numbers shown
against the faces expected; ``switches`` how often a face's track number changed (synthetic) or how many extra
tracks a face was split into (real); ``detect`` and ``track`` ms per frame, averaged over all frames (detection
runs on the first frame of each shot and every ``detect_every``-th after; ``track`` includes the cut detector,
timed separately in the notes); ``predicted box IoU`` how well the boxes shown between detections (and during
misses) fit the face: mean IoU with the truth (synthetic) or with that frame's detection (real clips, frames
where the detector found the face; none at ``detect_every`` 1). Each frame is detected once and the results
replayed for every ``detect_every`` (detection is deterministic), so ``detect`` is the measured cost of the
frames it ran on.

Run: ``python benchmarks/tracking.py [--every 1,2,3,5] [--shared ../shared] [--no-real]``.

Measured (2-core Xeon shared with a training run, load average 4-7, so detection ms are 3-4x an idle
machine's; the notes column shortened):

| clip | detect_every | found | tracks | switches | predicted box IoU | detect ms/frame | track ms/frame |
|---|---|---|---|---|---|---|---|
| group pan | 1 / 2 / 3 / 5 | 100% | 6 for 6 faces | 0 | - / 0.91 / 0.91 / 0.90 | 197 / 96 / 66 / 39 | 0.18-0.34 |
| crossing | 1 / 2 / 3 / 5 | 100% | 2 for 2 faces | 0 | - / 0.88 / 0.87 / 0.83 | 116 / 57 / 38 / 23 | 0.07-0.12 |
| talking head | 1 / 2 / 3 / 5 | 100% | 1 for 1 face | 0 | - / 0.93 / 0.93 / 0.92 | 128 / 64 / 43 / 26 | 0.05-0.09 |
| stage | 1 / 2 / 3 | singer 100% | singer 1; 4 in all | 0 | - / 0.88 / 0.85 | 86 / 43 / 30 | 0.03-0.07 |
| stage | 5 | singer 100% | singer 1; 3 in all | 0 | 0.73 | 18 | 0.02 |

Every run found the three cuts of stage_and_audience.mp4 and no other, none in talking_head.mp4, and no track
crossed a cut. The cut detector costs 0.3-1.3 ms per frame (on top of ``track``). At ``detect_every`` 5 the
small pianist of the first shot (found by the detector on frames 1, 3, 4, 7, 8, 14 only) is never detected.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import Box  # noqa: E402
from app.detect import detect_faces  # noqa: E402
from app.video import (  # noqa: E402
    Frame,  # noqa: E402
    assign,
    iou,
)
from app.video._shots import CutDetector  # noqa: E402
from app.video._track import Tracked, TrackingRun, track_frames  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "app" / "assets" / "sample.jpg"
FPS = 30.0
TRUTH_IOU = 0.3  # a shown box covers a true face at this IoU
STAGE_CUTS = (20, 82, 211)  # ../shared/data/videos/README.md
SINGER = (82, 210)  # the singer's shot, first and last frame

Rect = tuple[float, float, float, float]


@dataclass
class Clip:
    """Frames ``(time_s, rgb)``; ``truth[i]`` maps a face id to its box in frame ``i`` (None: not annotated)."""

    name: str
    frames: list[tuple[float, np.ndarray]]
    truth: list[dict[int, Rect]] | None = None
    cuts: tuple[int, ...] = ()
    detections: list[list[Box]] = field(default_factory=list)
    detect_ms: list[float] = field(default_factory=list)


@lru_cache(maxsize=1)
def face_sprite() -> tuple[np.ndarray, Rect]:
    """A square crop around the sample portrait's face and the face's Haar box in it as fractions (x, y, w, h)."""
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    b = detect_faces(rgb)[0]
    side = round(1.6 * b.w)
    x0, y0 = round(b.x + b.w / 2 - side / 2), round(b.y + b.h / 2 - side / 2)
    sprite = rgb[y0 : y0 + side, x0 : x0 + side].copy()
    return sprite, ((b.x - x0) / side, (b.y - y0) / side, b.w / side, b.h / side)


def _variant(sprite: np.ndarray, side: int, flip: bool, gain: float) -> np.ndarray:
    s = cv2.resize(sprite, (side, side), interpolation=cv2.INTER_AREA)
    s = s[:, ::-1] if flip else s
    return np.clip(s.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _background(w: int, h: int) -> np.ndarray:
    """A smooth two-colour gradient: texture-free, so the detector's only faces are the pasted ones."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    s = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    top, bottom = np.array([70, 90, 120], np.float32), np.array([150, 140, 120], np.float32)
    return np.clip(top * (1 - t) + bottom * t + 20 * s, 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    h, w = sprite.shape[:2]
    H, W = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = sprite[cy0 - y : cy1 - y, cx0 - x : cx1 - x]


def group_pan_clip(frames: int = 72, size: tuple[int, int] = (480, 270)) -> Clip:
    """Six faces on a 1280x720 canvas; the view pans right and zooms in (1120 -> 800 canvas px wide)."""
    sprite, (fx, fy, fw, fh) = face_sprite()
    canvas = _background(1280, 720)
    faces = {}  # id -> canvas rect of the face
    layout = [(330, 135, 170, False, 1.0), (580, 150, 150, True, 1.15), (830, 135, 170, False, 0.85),
              (340, 360, 150, True, 0.9), (585, 350, 180, False, 1.1), (840, 365, 150, True, 1.0)]
    for i, (x, y, side, flip, gain) in enumerate(layout, start=1):
        _paste(canvas, _variant(sprite, side, flip, gain), x, y)
        faces[i] = (x + fx * side, y + fy * side, fw * side, fh * side)
    W, H = size
    out, truth = [], []
    for i in range(frames):
        a = i / max(1, frames - 1)
        cw = round(1120 + (800 - 1120) * a)
        ch = round(cw * H / W)
        x0, y0 = round(600 + 100 * a - cw / 2), round(380 - 40 * a - ch / 2)
        sx, sy = W / cw, H / ch
        out.append((i / FPS, cv2.resize(canvas[y0 : y0 + ch, x0 : x0 + cw], (W, H), interpolation=cv2.INTER_AREA)))
        truth.append({k: ((r[0] - x0) * sx, (r[1] - y0) * sy, r[2] * sx, r[3] * sy) for k, r in faces.items()})
    return Clip("group pan (synthetic)", out, truth)


def crossing_clip(frames: int = 72, size: tuple[int, int] = (480, 270), side: int = 110, offset: int = 100) -> Clip:
    """Face 1 slides left to right along the top, face 2 (flipped, darker) right to left ``offset`` px lower."""
    sprite, (fx, fy, fw, fh) = face_sprite()
    a_img, b_img = _variant(sprite, side, False, 1.0), _variant(sprite, side, True, 0.8)
    W, H = size
    bg = _background(W, H)
    left, right, top = 10, W - side - 10, 20
    out, truth = [], []
    for i in range(frames):
        a = i / max(1, frames - 1)
        xa, xb = round(left + (right - left) * a), round(right - (right - left) * a)
        frame = bg.copy()
        _paste(frame, a_img, xa, top)
        _paste(frame, b_img, xb, top + offset)
        out.append((i / FPS, frame))
        truth.append({1: (xa + fx * side, top + fy * side, fw * side, fh * side),
                      2: (xb + fx * side, top + offset + fy * side, fw * side, fh * side)})
    return Clip("crossing (synthetic)", out, truth)


def real_clip(path: Path) -> Clip:
    """Every frame of a video file, decoded with PyAV, with its presentation time."""
    import av

    with av.open(str(path)) as container:
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    cuts = STAGE_CUTS if path.name == "stage_and_audience.mp4" else ()
    return Clip(path.name, frames, None, cuts)


def detect_all(clip: Clip, detect: Callable[[np.ndarray], list[Box]] = detect_faces) -> Clip:
    """Detect faces on every frame once (timed), so each ``detect_every`` can replay them."""
    if not clip.detections:
        for _, rgb in clip.frames:
            t = time.perf_counter()
            clip.detections.append(detect(rgb))
            clip.detect_ms.append(1000 * (time.perf_counter() - t))
    return clip


class _Replay:
    """Stands in for the cut detector with precomputed answers (its cost is timed on its own)."""

    def __init__(self, cuts: list[bool]) -> None:
        self._cuts = iter(cuts)

    def is_cut(self, rgb: np.ndarray) -> bool:
        return next(self._cuts)


@dataclass(frozen=True)
class Run:
    """One clip tracked with one ``detect_every``: the tracks shown per frame and where detection ran."""

    tracks: list[list[Tracked]]
    detected: list[bool]
    cuts: list[int]
    track_ms: float  # per frame, tracker only
    detect_ms: float  # per frame, averaged over all frames


def find_cuts(clip: Clip) -> tuple[list[bool], float]:
    """The cut detector's answer for every frame, and its ms per frame."""
    detector = CutDetector()
    t = time.perf_counter()
    cuts = [detector.is_cut(rgb) for _, rgb in clip.frames]
    return cuts, 1000 * (time.perf_counter() - t) / max(1, len(clip.frames))


def run_clip(clip: Clip, detect_every: int, cuts: list[bool]) -> Run:
    """Track ``clip`` (detections replayed from :func:`detect_all`) through :func:`app.video._track.track_frames`,
    the loop the app's labelling runs."""
    index = {id(rgb): i for i, (_, rgb) in enumerate(clip.frames)}
    ran: list[int] = []

    def detect(rgb: np.ndarray) -> tuple[None, list[Box]]:
        ran.append(index[id(rgb)])
        return None, clip.detections[index[id(rgb)]]

    frames = [Frame(i, time_s, rgb) for i, (time_s, rgb) in enumerate(clip.frames)]
    t = time.perf_counter()
    run = TrackingRun(cuts=_Replay(cuts))  # type: ignore[arg-type]
    results = list(track_frames(frames, detect, detect_every=detect_every, run=run))
    ms = 1000 * (time.perf_counter() - t) / max(1, len(clip.frames))
    return Run([r.tracks for r in results], [r.detected for r in results], [i for i, r in enumerate(results) if r.cut],
               ms, sum(clip.detect_ms[i] for i in ran) / max(1, len(clip.frames)))


@dataclass(frozen=True)
class Score:
    """Tracks against annotated faces: ``found`` of ``faces`` face-frames covered; per face the track numbers it
    had; ``switches`` (a face's number changing between frames); tracks covering no face (``false_tracks``) or
    several faces (``shared_tracks``)."""

    found: int
    faces: int
    numbers: dict[int, list[int]]
    switches: int
    false_tracks: int
    shared_tracks: int

    @property
    def found_share(self) -> float:
        return self.found / max(1, self.faces)

    @property
    def tracks(self) -> int:
        return len({n for ns in self.numbers.values() for n in ns}) + self.false_tracks


def score(tracks: Sequence[list[Tracked]], truth: Sequence[dict[int, Rect]], min_iou: float = TRUTH_IOU) -> Score:
    """Match shown tracks to true faces frame by frame (best IoU assignment, at least ``min_iou``)."""
    found = faces = switches = 0
    history: dict[int, list[int]] = {}
    owners: dict[int, set[int]] = {}
    shown: set[int] = set()
    for frame_tracks, frame_truth in zip(tracks, truth, strict=True):
        ids = list(frame_truth)
        faces += len(ids)
        shown |= {t.track for t in frame_tracks}
        if not ids or not frame_tracks:
            continue
        overlap = np.array([[iou(frame_truth[k], (t.box.x, t.box.y, t.box.w, t.box.h)) for t in frame_tracks]
                            for k in ids])
        for fi, ti in assign(1.0 - overlap):
            if overlap[fi, ti] < min_iou:
                continue
            face, number = ids[fi], frame_tracks[ti].track
            found += 1
            seq = history.setdefault(face, [])
            if seq and seq[-1] != number:
                switches += 1
            seq.append(number)
            owners.setdefault(number, set()).add(face)
    numbers = {face: sorted(set(seq)) for face, seq in sorted(history.items())}
    return Score(found, faces, numbers, switches, len(shown - set(owners)), sum(len(f) > 1 for f in owners.values()))


def spans(tracks: Sequence[list[Tracked]]) -> dict[int, list[int]]:
    """Track number -> the frame indices it was shown in."""
    out: dict[int, list[int]] = {}
    for i, frame_tracks in enumerate(tracks):
        for t in frame_tracks:
            out.setdefault(t.track, []).append(i)
    return out


def across_cuts(tracks: Sequence[list[Tracked]], cuts: Sequence[int]) -> list[int]:
    """Tracks shown both before and from a cut frame: the ones that wrongly continue into a new shot."""
    return sorted(n for n, frames in spans(tracks).items() if any(frames[0] < c <= frames[-1] for c in cuts))


def main_track(tracks: Sequence[list[Tracked]], first: int, last: int) -> tuple[int | None, int, int]:
    """In frames ``first..last``: the track shown most, how many of those frames it covers, how many tracks."""
    counts: dict[int, int] = {}
    for frame_tracks in tracks[first : last + 1]:
        for t in frame_tracks:
            counts[t.track] = counts.get(t.track, 0) + 1
    if not counts:
        return None, 0, 0
    best = max(counts, key=lambda n: counts[n])
    return best, counts[best], len(counts)


def prediction_iou(run: Run, clip: Clip) -> float | None:
    """Mean IoU of the predicted (not detected) boxes shown with the face they follow: the truth on the
    synthetic clips, the every-frame detection on the real ones (frames where it found the face); None if none."""
    values = []
    for i, frame_tracks in enumerate(run.tracks):
        refs = (list(clip.truth[i].values()) if clip.truth is not None
                else [(b.x, b.y, b.w, b.h) for b in clip.detections[i]])
        for t in frame_tracks:
            if not t.detected and refs:
                best = max(iou((t.box.x, t.box.y, t.box.w, t.box.h), r) for r in refs)
                if best > 0:
                    values.append(best)
    return sum(values) / len(values) if values else None


def _row(clip: Clip, every: int, run: Run, found: str, tracks: str, switches: str, notes: str) -> str:
    p = prediction_iou(run, clip)
    return (f"| {clip.name} | {every} | {found} | {tracks} | {switches} | {'—' if p is None else f'{p:.2f}'} "
            f"| {run.detect_ms:.1f} | {run.track_ms:.2f} | {notes} |")


def table_rows(clip: Clip, every: int, run: Run, cut_ms: float) -> str:
    """One Markdown row: the synthetic clips against their truth, the real ones against the README."""
    n = len(clip.frames)
    if clip.truth is not None:
        s = score(run.tracks, clip.truth)
        per_face = ", ".join(f"{face}: {'/'.join(map(str, ns))}" for face, ns in s.numbers.items())
        return _row(clip, every, run, f"{100 * s.found_share:.1f}%", f"{s.tracks} for {len(clip.truth[0])} faces",
                    str(s.switches), f"numbers per face {per_face}; false tracks {s.false_tracks}; "
                    f"cuts found {len(run.cuts)}; cut detector {cut_ms:.2f} ms")
    if clip.name == "stage_and_audience.mp4":
        best, covered, count = main_track(run.tracks, *SINGER)
        total = SINGER[1] - SINGER[0] + 1
        wrong = across_cuts(run.tracks, STAGE_CUTS)
        true_cuts = sorted(set(run.cuts) & set(STAGE_CUTS))
        false_cuts = sorted(set(run.cuts) - set(STAGE_CUTS))
        return _row(clip, every, run, f"singer {100 * covered / total:.1f}%", f"{count} in the singer's shot, "
                    f"{len(spans(run.tracks))} in all", str(count - 1),
                    f"singer track {best}; tracks across a cut: {wrong or 'none'}; cuts found {true_cuts}, "
                    f"false {false_cuts or 'none'}; cut detector {cut_ms:.2f} ms")
    best, covered, count = main_track(run.tracks, 0, n - 1)
    return _row(clip, every, run, f"{100 * covered / n:.1f}%", f"{count} for 1 face", str(count - 1),
                f"track {best} shown in {covered} of {n} frames; cuts found {run.cuts or 'none'}; "
                f"cut detector {cut_ms:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="example: nice -n 19 python benchmarks/tracking.py --every 1,3,5 --no-real",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--every", default="1,2,3,5", metavar="LIST",
                   help="comma-separated detect_every values to compare (default: %(default)s)")
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s)")
    p.add_argument("--no-real", action="store_true", help="only the synthetic clips")
    args = p.parse_args(argv)
    everies = [int(v) for v in args.every.split(",") if v.strip()]
    if not everies or min(everies) < 1:
        p.error("--every needs positive integers")
    clips = [group_pan_clip(), crossing_clip()]
    videos = args.shared / "data" / "videos"
    if not args.no_real:
        for name in ("talking_head.mp4", "stage_and_audience.mp4"):
            if (videos / name).is_file():
                clips.append(real_clip(videos / name))
            else:
                print(f"skipped {name}: not found in {videos}", file=sys.stderr)
    print("| clip | detect_every | found | tracks | switches | predicted box IoU | detect ms/frame | track ms/frame "
          "| notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for clip in clips:
        print(f"tracking: detecting faces in {clip.name} ({len(clip.frames)} frames)", file=sys.stderr, flush=True)
        detect_all(clip)
        cuts, cut_ms = find_cuts(clip)
        for every in everies:
            print(table_rows(clip, every, run_clip(clip, every, cuts), cut_ms), flush=True)
    if hasattr(os, "getloadavg"):
        print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
