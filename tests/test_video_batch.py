"""Videos through ``python -m app.batch``: the outputs (frames.csv, tracks.csv, timelines/, annotated MP4),
sampling, smoothing, exact resume after a real ``kill -9``, and every kind of bad video reported in one line
while the batch goes on. Clips are generated here from the sample photo, so ../shared is not needed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.batch._cli import main
from app.core import EMOTIONS
from app.video._smooth import Smoother, label_changes
from tests.video_synth import pan_frames, write_audio_only, write_clip

ROOT = Path(__file__).resolve().parents[1]


def _face_clip(path: Path, sample_photo: Path, n: int = 48, size=(320, 240), fps: float = 30, audio=False) -> Path:
    """A slow pan across the sample photo scaled so its face is ~100 px: one face moving through the frame."""
    im = Image.open(sample_photo).convert("RGB")
    im = im.resize((im.width * 360 // im.height, 360))
    frames = pan_frames(np.asarray(im), n, size, (im.width / 2 - 200, 60), (im.width / 2 - 120, 70))
    return write_clip(path, frames, fps=fps, audio=audio)


def _run(*args, zoo) -> int:
    return main([*map(str, args), "--zoo", str(zoo), "--threads", "1", "--workers", "1"])


def _csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, sample_photo) -> Path:
    return _face_clip(tmp_path_factory.mktemp("clips") / "pan.mp4", sample_photo, audio=True)


def test_video_outputs_beside_photos(tmp_path, face_clip, sample_photo, tiny_zoo):
    src = tmp_path / "in"
    src.mkdir()
    (src / "pan.mp4").write_bytes(face_clip.read_bytes())
    (src / "photo.jpg").write_bytes(sample_photo.read_bytes())
    out = tmp_path / "out"
    assert _run(src, "--out", out, "--annotate", zoo=tiny_zoo) == 0
    labels = _csv(out / "labels.csv")
    assert [Path(r[0]).name for r in labels[1:]] == ["photo.jpg"]  # photos write labels.csv exactly as before
    rows = _csv(out / "frames.csv")
    head = rows[0]
    assert head[:8] == ["video", "frame", "time_s", "track", "x", "y", "w", "h"]
    assert head[-8:] == ["smooth_label"] + [f"p_{e}" for e in EMOTIONS]
    assert {"cnn_label", "ff_confidence", "ensemble_label", "ensemble_confidence"} <= set(head)
    frames = [int(r[1]) for r in rows[1:]]
    assert frames == sorted(frames) and len(set(frames)) >= 0.9 * 48  # the face found in >= 90% of frames
    assert {r[3] for r in rows[1:]} == {"1"}  # one face, one track
    times = [float(r[2]) for r in rows[1:]]
    assert times[1] - times[0] == pytest.approx(1 / 30, abs=1e-3)
    for r in rows[1:]:
        assert sum(float(x) for x in r[-7:]) == pytest.approx(1, abs=1e-3)
    tracks = _csv(out / "tracks.csv")
    assert tracks[0][:6] == ["video", "track", "first_s", "last_s", "frames", "dominant"]
    assert len(tracks) == 2 and tracks[1][1] == "1" and int(tracks[1][4]) == len(rows) - 1
    assert sum(float(x) for x in tracks[1][6:]) == pytest.approx(1, abs=1e-3)
    assert tracks[1][5] in EMOTIONS
    charts = out / "timelines" / "pan.mp4"
    assert (charts / "track1.png").exists() and (charts / "overview.png").exists()
    import av

    with av.open(str(out / "annotated" / "pan.mp4")) as c:
        kinds = sorted(s.type for s in c.streams)
        n = sum(1 for _ in c.decode(video=0))
    assert kinds == ["audio", "video"] and n == 48  # every frame, and the source's audio kept
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"]["frames"] == 48 and summary["videos"]["tracks"] == 1
    assert summary["detect_every"] == 3 and summary["images"] == 1


def test_fps_sampling_and_smoothing_off(tmp_path, face_clip, tiny_zoo):
    out = tmp_path / "out"
    assert _run(face_clip, "--out", out, "--fps", "5", "--smooth", "0", zoo=tiny_zoo) == 0
    rows = _csv(out / "frames.csv")[1:]
    times = [float(r[2]) for r in rows]
    assert len(times) == 8 and np.allclose(np.diff(times), 0.2, atol=0.02)  # 1.6 s at 5 per second
    head = _csv(out / "frames.csv")[0]
    e, s = head.index("ensemble_label"), head.index("smooth_label")
    assert all(r[e] == r[s] for r in rows)  # smoothing off: the smoothed label is the raw ensemble's


def test_smoother_reduces_flicker_and_keeps_the_dominant_label():
    """A steady expression seen through noisy per-frame probabilities: smoothing must cut label changes at
    least 5x (the issue's target) without changing the label held longest."""
    rng = np.random.default_rng(0)
    base = np.array([0.05, 0.02, 0.08, 0.40, 0.10, 0.05, 0.30])
    raw, smooth = [], []
    sm = Smoother(0.5)
    for i in range(900):  # 30 s at 30 fps
        p = np.clip(base + rng.normal(0, 0.08, 7), 1e-3, None)
        p /= p.sum()
        raw.append(EMOTIONS[int(p.argmax())])
        smooth.append(EMOTIONS[int(sm.update(1, i / 30, p).argmax())])
    assert label_changes(raw) >= 5 * max(1, label_changes(smooth))
    assert max(set(raw), key=raw.count) == max(set(smooth), key=smooth.count) == "happy"
    restored = Smoother.from_state(json.loads(json.dumps(sm.state())))
    p = np.full(7, 1 / 7)
    assert np.allclose(restored.update(1, 30.0, p), sm.update(1, 30.0, p))


def test_bad_videos_are_one_line_errors_and_the_batch_goes_on(tmp_path, face_clip, sample_photo, tiny_zoo):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_empty.mp4").write_bytes(b"")
    (src / "b_photo.mp4").write_bytes(sample_photo.read_bytes())  # an image saved with a video extension
    write_audio_only(src / "c_audio.mp4")
    data = face_clip.read_bytes()
    (src / "d_truncated.mkv").write_bytes(b"")
    clip_mkv = _face_clip(tmp_path / "full.mkv", sample_photo)
    (src / "d_truncated.mkv").write_bytes(clip_mkv.read_bytes()[: len(clip_mkv.read_bytes()) * 6 // 10])
    (src / "e_good.mp4").write_bytes(data)
    out = tmp_path / "out"
    assert _run(src, "--out", out, zoo=tiny_zoo) == 0
    summary = json.loads((out / "summary.json").read_text())
    errors = {Path(e["video"]).name: e for e in summary["videos"]["errors"]}
    assert set(errors) == {"a_empty.mp4", "b_photo.mp4", "c_audio.mp4", "d_truncated.mkv"}
    for e in errors.values():
        assert "\n" not in e["reason"] and len(e["reason"]) < 300 and "Traceback" not in e["reason"]
    assert errors["d_truncated.mkv"]["frames_kept"] > 0  # the frames before the damage are kept
    assert errors["a_empty.mp4"]["frames_kept"] == 0
    rows = _csv(out / "frames.csv")[1:]
    names = {Path(r[0]).name for r in rows}
    assert names == {"d_truncated.mkv", "e_good.mp4"}
    # a resume retries what wrote nothing and keeps what was done
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo) == 0
    assert _csv(out / "frames.csv")[1:] == rows


def test_resume_after_kill_9_gives_every_frame_once_and_keeps_tracks(tmp_path, sample_photo, tiny_zoo):
    clip = _face_clip(tmp_path / "long.mp4", sample_photo, n=360)
    ref = tmp_path / "ref"
    assert _run(clip, "--out", ref, zoo=tiny_zoo) == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "app.batch", str(clip), "--out", str(out), "--zoo", str(tiny_zoo), "--threads", "1",
           "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = out / ".video-progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not progress.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before a checkpoint: make the clip longer"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads(progress.read_text())
    assert 0 < saved["state"]["next_index"] < 360
    assert _run(clip, "--out", out, "--resume", zoo=tiny_zoo) == 0
    assert _csv(out / "frames.csv") == _csv(ref / "frames.csv")  # every analysed frame exactly once, same tracks
    assert _csv(out / "tracks.csv") == _csv(ref / "tracks.csv")
    assert not progress.exists()
