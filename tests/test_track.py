"""app.video._track and app.video._shots: track numbers that stay with faces, and shot cuts that end them.

Three layers: the tracker on synthetic Box sequences (no detector), synthetic clips rendered in memory from
the sample portrait with the real Haar detector on every frame (benchmarks/tracking.py builds them), and the
two real clips of ../shared/data/videos against the README's expectations (skipped without ../shared).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.core import Box
from app.video import DETECT_EVERY, Frame, assign
from app.video._shots import CUT_THRESHOLD, CutDetector, distance, signature
from app.video._track import Tracked, Tracker, TrackingRun, track_frames
from benchmarks import tracking as bench

FPS = 30.0


def box_at(cx: float, cy: float, size: float = 80.0) -> Box:
    return Box(int(round(cx - size / 2)), int(round(cy - size / 2)), int(round(size)), int(round(size)), eyes=2)


def numbers(tracks: list[Tracked]) -> list[int]:
    return [t.track for t in tracks]


def centre(t: Tracked) -> tuple[float, float]:
    return t.box.x + t.box.w / 2, t.box.y + t.box.h / 2


# --- the assignment ---------------------------------------------------------------------------------------------


def test_assign_matches_scipy_on_random_matrices():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    for k in range(300):
        rows, cols = (int(v) for v in rng.integers(1, 8, 2))
        cost = rng.random((rows, cols))
        if k % 3 == 0:
            cost = np.round(cost * 3)  # ties: the total must still be optimal
        pairs = assign(cost)
        r, c = scipy_optimize.linear_sum_assignment(cost)
        assert len(pairs) == min(rows, cols)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(cost[r, c].sum())


def test_assign_edge_cases():
    assert assign(np.zeros((0, 3))) == []
    assert assign(np.array([[5.0]])) == [(0, 0)]
    assert assign(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError):
        assign(np.array([[np.inf]]))


# --- the tracker on synthetic boxes -----------------------------------------------------------------------------


def test_constant_motion_keeps_one_number_and_follows_the_face():
    tracker = Tracker()
    for i in range(90):
        out = tracker.update(i / FPS, [box_at(100 + 3 * i, 200)])
        assert numbers(out) == [1] and out[0].detected
        assert out[0].box == box_at(100 + 3 * i, 200)  # a detected face is shown with the detection's own Box


def test_first_frame_face_is_shown_at_once():
    assert numbers(Tracker().update(0.0, [box_at(100, 100)])) == [1]


def test_gap_of_0_8_s_keeps_the_number_and_1_5_s_gives_a_new_one():
    for gap, expected in ((0.8, [1]), (1.5, [2])):
        tracker = Tracker()
        t, x = 0.0, 100.0
        for _ in range(15):  # a face moving at 60 px/s (0.75 face sizes per second)
            tracker.update(t, [box_at(x, 200)])
            t, x = t + 1 / FPS, x + 2
        last_seen, missed_until = t - 1 / FPS, t + gap
        while t < missed_until - 1e-9:  # the detector runs but finds nothing: turned head, hand before the face
            out = tracker.update(t, [])
            if abs(t - last_seen - 1.0) > 1e-6:  # shown at its prediction for max_missing_s, then ended
                assert numbers(out) == ([1] if t - last_seen < 1.0 else []), t
            assert all(not o.detected and o.box.landmarks == () for o in out)
            t, x = t + 1 / FPS, x + 2
        assert numbers(tracker.update(t, [box_at(x, 200)])) == expected


def test_cut_ends_every_track_and_numbers_continue():
    tracker = Tracker()
    tracker.update(0.0, [box_at(100, 100), box_at(300, 100)])
    tracker.update(1 / FPS, [box_at(100, 100), box_at(300, 100)])
    tracker.cut()
    assert tracker.update(2 / FPS, None) == []
    assert numbers(tracker.update(3 / FPS, [box_at(100, 100), box_at(300, 100)])) == [3, 4]


def test_faces_passing_each_other_keep_their_numbers():
    # Two 60 px faces 48 px apart vertically (their boxes never merge; IoU at the crossing 0.11) move towards
    # each other at 180 px/s and pass; detection runs every other frame, misses both for the 0.33 s around the
    # crossing and returns its boxes sorted left to right, as detect_faces does. When they reappear, each face is
    # nearer the other one's last box than its own: only the motion prediction tells them apart.
    tracker = Tracker()
    seen: dict[int, list[tuple[float, float]]] = {}
    for i in range(60):
        t = i / FPS
        a, b = (60 + 180 * t, 100), (420 - 180 * t, 148)
        hidden = abs(a[0] - b[0]) < 60
        dets = None if i % 2 else ([] if hidden else sorted([box_at(*a, 60), box_at(*b, 60)], key=lambda d: d.x))
        for o in tracker.update(t, dets):
            seen.setdefault(o.track, []).append(centre(o))
            truth = a if o.track == 1 else b
            assert math.dist(centre(o), truth) < 30, (i, o)  # a number stays on its own face, hidden or not
    assert sorted(seen) == [1, 2]
    assert seen[1][-1][0] > 350 and seen[2][-1][0] < 130  # each number crossed over with its face


def test_detect_every_3_predicts_between_detections():
    tracker = Tracker()
    for i in range(30):
        x = 100 + 4 * i
        out = tracker.update(i / FPS, [box_at(x, 200)] if i % 3 == 0 else None)
        assert numbers(out) == [1]
        assert out[0].detected == (i % 3 == 0)
        if i >= 6:  # the speed is known after two detections: the prediction keeps up with the face
            assert abs(centre(out[0])[0] - x) < 4, i


def test_variable_frame_rate_uses_the_times():
    rng = np.random.default_rng(3)
    tracker, t = Tracker(), 0.0
    for i in range(80):
        t += float(rng.uniform(1 / 60, 1 / 12))  # dropped and doubled frames
        x = 100 + 150 * t  # 150 px/s whatever the frame spacing
        out = tracker.update(t, [box_at(x, 200)] if i % 2 == 0 else None)
        assert numbers(out) == [1]
        if i > 10 and not out[0].detected:
            assert abs(centre(out[0])[0] - x) < 8, i


def test_times_must_not_go_back():
    tracker = Tracker()
    tracker.update(1.0, [box_at(100, 100)])
    with pytest.raises(ValueError):
        tracker.update(0.5, None)


def test_one_off_false_detection_does_not_linger_but_a_flickering_face_keeps_its_number():
    tracker = Tracker()
    tracker.update(0.0, [box_at(100, 100)])
    assert numbers(tracker.update(1 / FPS, None)) == [1]  # shown until the next detection run ...
    assert tracker.update(2 / FPS, []) == []  # ... which did not find it again: hidden, not a predicted ghost
    assert numbers(tracker.update(3 / FPS, [box_at(101, 100)])) == [1]  # found again: same number, confirmed
    assert numbers(tracker.update(4 / FPS, [])) == [1]  # confirmed: shown through a miss


def test_a_face_leaving_the_frame_ends_its_track():
    tracker = Tracker(frame_size=(320, 240))
    for i in range(10):
        tracker.update(i / FPS, [box_at(200 + 8 * i, 120, 60)])
    for i in range(10, 50):  # the detector loses it at the edge; the prediction carries it out of the frame
        out = tracker.update(i / FPS, [])
        for o in out:  # clipped to the frame while at least half of it is inside
            assert o.box.x >= 0 and o.box.x + o.box.w <= 320 and o.box.w >= 30
        if i >= 20:
            assert out == [], i
    assert tracker.state()["tracks"] == []


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(7)
    script = []
    for i in range(120):
        dets = None if i % 3 else [box_at(100 + 2 * i + rng.normal(0, 1), 150 + rng.normal(0, 1)),
                                   box_at(400 - 2 * i, 300, 70)][: 1 + (i < 80)]
        script.append((i / FPS, dets))
    original = Tracker(frame_size=(640, 480))
    for t, d in script[:50]:
        original.update(t, d)
    original.cut()
    for t, d in script[50:70]:
        original.update(t, d)
    restored = Tracker.from_state(json.loads(json.dumps(original.state())))
    assert restored.next_number == original.next_number
    for t, d in script[70:]:
        assert restored.update(t, d) == original.update(t, d)
    assert restored.state() == original.state()


def test_from_state_rejects_another_version():
    state = Tracker().state()
    state["version"] = 99
    with pytest.raises(ValueError, match="version"):
        Tracker.from_state(state)


# --- the shot-cut detector --------------------------------------------------------------------------------------


def _photo(seed: int) -> np.ndarray:
    """A smooth random colour field, a stand-in for a shot."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (640, 360), interpolation=cv2.INTER_CUBIC)


def test_cut_detector_finds_a_cut_and_not_motion():
    a, b = _photo(1), _photo(2)
    detector = CutDetector()
    flags = [detector.is_cut(np.roll(a, 4 * i, axis=1)) for i in range(10)]  # a pan
    flags += [detector.is_cut(np.roll(b, 4 * i, axis=1)) for i in range(10)]  # cut, then another pan
    assert flags == [False] * 10 + [True] + [False] * 9
    assert distance(signature(a), signature(a)) == pytest.approx(0.0)
    assert distance(signature(a), signature(b)) > CUT_THRESHOLD


def test_cut_detector_state_round_trip_judges_the_next_frame():
    a, b = _photo(1), _photo(2)
    detector = CutDetector()
    detector.is_cut(a)
    restored = CutDetector.from_state(json.loads(json.dumps(detector.state())))
    assert restored.is_cut(b) and not CutDetector.from_state(CutDetector().state()).is_cut(b)


def test_cut_detector_accepts_grey_frames_and_rejects_others():
    detector = CutDetector()
    assert not detector.is_cut(np.zeros((36, 64), np.uint8))
    with pytest.raises(ValueError):
        detector.is_cut(np.zeros((36, 64, 4), np.uint8))


# --- synthetic clips with the real detector ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def group_pan() -> bench.Clip:
    return bench.detect_all(bench.group_pan_clip())


@pytest.fixture(scope="module")
def crossing() -> bench.Clip:
    return bench.detect_all(bench.crossing_clip())


@pytest.mark.parametrize("every", [1, DETECT_EVERY, 5])
@pytest.mark.parametrize("clip_name", ["group_pan", "crossing"])
def test_synthetic_clip_one_track_per_face(clip_name, every, request):
    clip = request.getfixturevalue(clip_name)
    cuts, _ = bench.find_cuts(clip)
    assert not any(cuts)
    run = bench.run_clip(clip, every, cuts)
    score = bench.score(run.tracks, clip.truth)
    faces = len(clip.truth[0])
    assert score.found_share >= 0.9, score
    assert all(len(ns) == 1 for ns in score.numbers.values()) and len(score.numbers) == faces, score
    assert score.tracks == faces and score.false_tracks == 0 and score.shared_tracks == 0, score
    assert score.switches == 0, score


def _frames(pairs, start=0):
    """``(time_s, rgb)`` pairs as the decoder's frames, numbered from ``start``."""
    return [Frame(start + i, time_s, rgb) for i, (time_s, rgb) in enumerate(pairs)]


def test_track_frames_detects_on_the_schedule(crossing):
    calls = []

    def detect(rgb):
        calls.append(len(calls))
        return None, []

    results = list(track_frames(_frames(crossing.frames[:10]), detect, detect_every=4))
    assert [r.detected for r in results] == [True, False, False, False, True, False, False, False, True, False]
    assert len(calls) == 3
    # a fresh run told that 5 frames were analysed before (a segment of a long video) keeps the whole run's
    # schedule: it detects on frame 8, as the whole run does, not at once
    resumed = list(track_frames(_frames(crossing.frames[5:10], 5), detect, detect_every=4, run=TrackingRun(analysed=5)))
    assert [r.detected for r in resumed] == [False, False, False, True, False]
    with pytest.raises(ValueError):
        next(track_frames(_frames(crossing.frames), detect, detect_every=0))


def test_track_frames_resumes_exactly_from_saved_state(crossing):
    index = {id(rgb): i for i, (_, rgb) in enumerate(crossing.frames)}

    def detect(rgb):
        return None, crossing.detections[index[id(rgb)]]

    def summary(results):
        return [(r.frame.index, r.tracks, r.cut, r.detected) for r in results]

    frames = _frames(crossing.frames)
    whole = list(track_frames(frames, detect, detect_every=DETECT_EVERY))
    run = TrackingRun()
    head = list(track_frames(frames[:40], detect, run=run))
    saved = json.loads(json.dumps({"tracker": run.tracker.state(), "cuts": run.cuts.state(), "analysed": run.analysed}))
    restored = TrackingRun(Tracker.from_state(saved["tracker"]), CutDetector.from_state(saved["cuts"]),
                           saved["analysed"])
    tail = list(track_frames(frames[40:], detect, run=restored))
    assert summary(head + tail) == summary(whole)


# --- the real clips (../shared/data/videos) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def videos(shared_dir):
    folder = shared_dir / "data" / "videos"
    if not (folder / "talking_head.mp4").is_file() or not (folder / "stage_and_audience.mp4").is_file():
        pytest.skip(f"{folder}: the tracking clips are missing")
    pytest.importorskip("av")
    return folder


def _track_real(path):
    clip = bench.real_clip(path)
    results = list(track_frames(_frames(clip.frames), lambda rgb: (None, bench.detect_faces(rgb)),
                                detect_every=DETECT_EVERY))
    return [r.tracks for r in results], [i for i, r in enumerate(results) if r.cut]


@pytest.mark.slow
def test_talking_head_is_one_track(videos):
    tracks, cuts = _track_real(videos / "talking_head.mp4")
    assert cuts == []
    assert bench.spans(tracks).keys() == {1}
    assert all(numbers(f) == [1] for f in tracks)  # shown in every frame, detection gaps included


@pytest.mark.slow
def test_stage_and_audience_singer_is_one_track_and_no_track_crosses_a_cut(videos):
    tracks, cuts = _track_real(videos / "stage_and_audience.mp4")
    assert cuts == list(bench.STAGE_CUTS)
    first, last = bench.SINGER
    best, covered, count = bench.main_track(tracks, first, last)
    assert count == 1 and covered >= 0.9 * (last - first + 1), (best, covered, count)
    assert bench.across_cuts(tracks, bench.STAGE_CUTS) == []
