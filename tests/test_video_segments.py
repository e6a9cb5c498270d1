"""app.batch._segments: a long video labelled in segments gives a whole run's rows, track numbers included.

Most tests label a synthetic clip of bright squares ("faces") with a stand-in detector that finds them exactly
(the Haar detector costs ~100 ms a frame on the busy test machines) and call the segment functions directly; one
runs ``--cluster local:1 --cluster-segment`` on a real-face clip with the real detector.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.batch._segments import (
    Segment,
    check_segment,
    match_tracks,
    plan_segments,
    renumber,
    run_segment,
    stitch,
    warmup_s,
)
from app.core import Box
from app.detect import _faces as faces_step
from app.outputs import frame_rows
from app.video import VideoOptions, frame_table, frames, label_video, sampled
from tests.video_synth import write_clip

FPS = 30
P_TOLERANCE = 1e-4  # smoothed probabilities: one step of frames.csv's 4-decimal rounding (module docstring)
WINDOW_S, WINDOW_TOLERANCE = 0.25, 2e-3  # just after a boundary, a Haar-tracked face's may differ more


def squares(n: int = 150, w: int = 192, h: int = 112, cut_at: int | None = None):
    """Two bright squares moving in opposite directions, the second only in frames 20-119; from ``cut_at`` on
    the background turns blue (a shot cut)."""
    base = np.random.default_rng(0).integers(30, 60, (h, w, 3), dtype=np.uint8)
    for i in range(n):
        f = base.copy()
        if cut_at is not None and i >= cut_at:
            f[..., 2] = 160
        x1, x2 = int(10 + i * 0.8) % (w - 30), int(w - 40 - i * 0.6) % (w - 30)
        f[12:40, x1:x1 + 28] = 230
        if 20 <= i < 120:
            f[60:88, x2:x2 + 28] = 200
        yield f


def find_squares(rgb: np.ndarray, eye_check: bool = True, detector: str | None = None) -> list[Box]:
    """The stand-in detector: every bright blob is a face (given the frame's gray copy, as the Haar path is)."""
    mask = ((rgb if rgb.ndim == 2 else rgb.min(axis=2)) > 150).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return [Box(int(x), int(y), int(w), int(h), 2) for x, y, w, h, area in stats[1:] if area > 100]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("segments")
    return {"plain": write_clip(folder / "squares.mp4", squares(), fps=FPS, gop=15),
            "cut": write_clip(folder / "cut.mp4", squares(cut_at=80), fps=FPS, gop=15)}


@pytest.fixture
def labeler(tiny_zoo, monkeypatch):
    from app.models import Labeler

    monkeypatch.setattr(faces_step, "detect_faces", find_squares)
    return Labeler(tiny_zoo, threads=1)


def test_frame_table_and_seeking_give_the_decoders_frames(clips):
    clip = clips["plain"]
    table = frame_table(clip)
    whole = list(frames(clip))
    assert table is not None and table.keyframes == tuple(range(0, 150, 15))
    assert [f.time_s for f in whole] == pytest.approx(list(table.times_s), abs=1e-9)
    seeked = list(frames(clip, keyframe=(45, table.pts[45]), start_index=47))
    assert [f.index for f in seeked] == list(range(47, 150))
    for a, b in zip(whole[47:], seeked, strict=True):
        assert a.time_s == b.time_s and np.array_equal(a.rgb, b.rgb)
    every = 1 / 12
    taken = [f.index for f in frames(clip, every_s=every)]
    assert [i for i, t in enumerate(sampled(table.times_s, every)) if t] == taken
    # sampling restarts at the keyframe and is the whole stream's from the frame after it
    assert [f.index for f in frames(clip, keyframe=(45, table.pts[45]), start_index=46, every_s=every)] == \
        [i for i in taken if i >= 46]


def test_plan_splits_at_keyframes_with_a_warm_up(clips):
    table = frame_table(clips["plain"])
    assert plan_segments(table, 10.0, 2.0) == []  # not longer than a segment: whole
    plan = plan_segments(table, 1.0, 2.0)
    assert [s.start for s in plan] == [0, 30, 60, 90, 120] and plan[-1].end is None
    assert all(a.end == b.start for a, b in zip(plan, plan[1:], strict=False))
    assert plan[1] == Segment(30, 60)  # its warm-up reaches the first frame: decoded from there
    assert plan[3] == Segment(90, 120, (30, table.pts[30]), 31, 31)
    fps_plan = plan_segments(table, 1.0, 2.0, every_s=1 / 12)
    assert fps_plan[3].analysed == sum(sampled(table.times_s[:31], 1 / 12)) == 13


def test_match_and_renumber():
    written = {10: [(3, (0, 0, 20, 20)), (5, (50, 0, 20, 20))], 11: [(3, (1, 0, 20, 20)), (5, (51, 0, 20, 20))]}
    warm = {10: [(1, (50, 0, 20, 20)), (2, (1, 0, 20, 20))], 11: [(1, (52, 0, 20, 20)), (2, (90, 0, 20, 20))]}
    assert match_tracks(written, warm) == {1: 5, 2: 3}
    assert match_tracks(written, warm, tracks={1}) == {1: 5}
    assert renumber([2, 4, 1, 3], {1: 5, 2: 3}, 6) == {2: 3, 4: 6, 1: 5, 3: 7}


def _whole_and_segmented(labeler, clip: Path, opts: VideoOptions, segment_s: float = 1.0):
    whole = [r for vf in label_video(labeler, clip, opts) for r in frame_rows(str(clip), vf, labeler.models)]
    table = frame_table(clip)
    every = None if opts.fps is None else 1 / opts.fps
    plan = plan_segments(table, segment_s, warmup_s(opts, FPS), every)
    assert len(plan) > 2 and any(s.keyframe for s in plan)  # some segments really seek
    results = [run_segment(labeler, clip, opts, s) for s in plan]
    taken = sampled(table.times_s, every)
    assert all(check_segment(r, s, table, taken) for r, s in zip(results, plan, strict=True))
    return whole, stitch(results)


def _assert_same_rows(whole: list[list], segmented: list[list], boundaries: tuple[int, ...] = ()) -> None:
    """Same (frame, track) rows in the same order, the same boxes and raw labels; smoothed probabilities within
    one rounding step, or ``WINDOW_TOLERANCE`` in the ``WINDOW_S`` after one of the ``boundaries`` (frames)."""
    assert [(r[1], r[3]) for r in segmented] == [(r[1], r[3]) for r in whole]
    for a, b in zip(whole, segmented, strict=True):
        assert a[:-8] == b[:-8]
        near = any(0 <= int(a[1]) - b < WINDOW_S * FPS for b in boundaries)
        dp = max(abs(float(x) - float(y)) for x, y in zip(a[-7:], b[-7:], strict=True))
        assert dp <= (WINDOW_TOLERANCE if near else P_TOLERANCE) + 1e-9, (a[1], dp)


@pytest.mark.parametrize("fps", [None, 12.0])
def test_segments_stitch_into_the_whole_runs_rows(labeler, clips, fps):
    opts = VideoOptions(smooth_s=0.1, fps=fps)
    whole, stitched = _whole_and_segmented(labeler, clips["plain"], opts)
    assert {r[3] for r in whole} == {1, 2}  # two faces, one number each, across four boundaries
    _assert_same_rows(whole, stitched.rows)
    assert stitched.frames == len({r[1] for r in whole}) and sorted(stitched.thumbs) == [1, 2]


def test_a_cut_inside_a_warm_up_gives_identical_rows(labeler, clips):
    """Frame 80 cuts inside the warm-up of the segment from 90: every track restarts in both runs."""
    opts = VideoOptions(smooth_s=0.1)
    whole, stitched = _whole_and_segmented(labeler, clips["cut"], opts)
    assert {r[3] for r in whole} == {1, 2, 3, 4}
    _assert_same_rows(whole, stitched.rows)
    assert [r for r in stitched.rows if r[1] >= 80] == [r for r in whole if r[1] >= 80]


def _face_clip(path: Path, sample_photo: Path, n: int) -> Path:
    from PIL import Image

    from tests.video_synth import pan_frames

    im = Image.open(sample_photo).convert("RGB")
    im = im.resize((im.width * 240 // im.height, 240))
    size = (192, 144)
    pan = pan_frames(np.asarray(im), n, size, (im.width / 2 - 110, 20), (im.width / 2 - 70, 26))
    return write_clip(path, pan, fps=FPS, gop=10)


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_cluster_labels_a_long_video_in_segments(tmp_path, sample_photo, tiny_zoo, monkeypatch):
    """local:1 with --cluster-segment 0.8 on a 3 s clip: four segments, two of them seeking (WARMUP_S lowered
    so the warm-up is the tracker's 10 detection runs, 1 s); frames.csv rows as --workers 1 writes them within
    the documented tolerance, tracks.csv, charts and thumbnails alike."""
    pytest.importorskip("distributed")
    from app.batch import _segments as segments
    from app.batch._cli import main

    monkeypatch.setattr(segments, "WARMUP_S", 0.5)
    src = tmp_path / "in"
    src.mkdir()
    _face_clip(src / "pan.mp4", sample_photo, n=90)
    local, clustered = tmp_path / "local", tmp_path / "cluster"
    common = ["--zoo", str(tiny_zoo), "--threads", "1", "--smooth", "0.05"]
    assert main([str(src), "--out", str(local), "--workers", "1", *common]) == 0
    assert main([str(src), "--out", str(clustered), "--cluster", "local:1", "--cluster-segment", "0.8",
                 *common]) == 0
    a, b = _rows(local / "frames.csv"), _rows(clustered / "frames.csv")
    assert len(a) > 30 and {r[3] for r in a[1:]} == {"1"}
    assert a[0] == b[0]
    table = frame_table(src / "pan.mp4")
    plan = segments.plan_segments(table, 0.8, warmup_s(VideoOptions(smooth_s=0.05), FPS))
    assert [s.start for s in plan] == [0, 30, 50, 70] and [bool(s.keyframe) for s in plan] == [False, False, True, True]
    _assert_same_rows([[*r[:3], int(r[3]), *r[4:]] for r in a[1:]], [[*r[:3], int(r[3]), *r[4:]] for r in b[1:]],
                      tuple(s.start for s in plan[1:]))
    ta, tb = _rows(local / "tracks.csv"), _rows(clustered / "tracks.csv")
    assert [r[:5] for r in ta] == [r[:5] for r in tb]
    charts = sorted(p.relative_to(local) for p in (local / "timelines").rglob("*") if p.is_file())
    assert charts == sorted(p.relative_to(clustered) for p in (clustered / "timelines").rglob("*") if p.is_file())
    thumb = Path("timelines/pan.mp4/track1_face.png")
    assert (local / thumb).read_bytes() == (clustered / thumb).read_bytes()
    import json

    videos = [json.loads(line) for line in (clustered / ".videos.jsonl").read_text().splitlines()]
    assert videos[0]["segments"] == 4
