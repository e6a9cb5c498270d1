"""The live path (app.video._live): newest-frame delivery with counted drops, a file played against the clock as the
camera's stand-in, Record to CSV, camera errors, and ``python -m app --webcam``.

No camera exists on the test machines, so the camera's capture loop is run on FFmpeg's ``lavfi`` test source
paced by its ``realtime`` filter (the same PyAV read, decode and convert code). Timings are loose on purpose:
the tests run nice'd beside a training run; each bound says what it guards.
"""

from __future__ import annotations

import csv
import glob
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.outputs import FramesRecorder, frames_header
from app.video import LiveError, run_live
from app.video import _live as live
from app.video._live import LiveStats, file_as_live
from tests.video_synth import moving_square_frames, pan_frames, square_position, write_clip

REPO = Path(__file__).resolve().parents[1]
FPS = 30
N = 30  # a one-second clip
STEP = 2  # square's step per frame: 30 frames stay inside a 96 px wide frame without wrapping


@pytest.fixture(scope="module")
def labeler(tiny_zoo):
    from app.models import Labeler

    return Labeler(zoo_dir=tiny_zoo, threads=1)


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory) -> Path:
    """1 s at 30 fps of a square moving STEP px a frame: each frame tells its own number."""
    return write_clip(tmp_path_factory.mktemp("live") / "square.mp4", moving_square_frames(N, step=STEP), fps=FPS)


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, sample_photo) -> Path:
    """1 s at 12 fps of the sample portrait's face, drifting slowly (the detector finds it in every frame)."""
    rgb = np.asarray(Image.open(sample_photo).convert("RGB"))
    frames = pan_frames(rgb, 12, (192, 144), (130, 40), (136, 44))
    return write_clip(tmp_path_factory.mktemp("live") / "face.mp4", frames, fps=12)


def _live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("live ")]


def test_file_as_live_keeps_the_clips_rate(square_clip):
    t0 = time.monotonic()
    got = []
    with file_as_live(square_clip) as src:
        for f in src:
            got.append((f.index, f.time_s, time.monotonic() - t0, square_position(f.rgb)))
        delivered, dropped = src.delivered, src.dropped
    wall = time.monotonic() - t0
    assert delivered + dropped == N and delivered == len(got)
    assert dropped <= 3, got  # a fast consumer loses (almost) nothing; slack for a preempted nice'd thread
    assert [i for i, *_ in got] == sorted({i for i, *_ in got}) and got[-1][0] == N - 1
    for index, time_s, arrived, pos in got:
        assert time_s == pytest.approx(index / FPS, abs=1e-3)
        assert arrived >= time_s - 0.01  # never before its time on the clock
        assert pos is not None and pos[0] == index * STEP  # the pixels are that frame's
    assert (N - 1) / FPS - 0.01 <= wall <= (N - 1) / FPS + 0.5  # played at the clip's rate, not as fast as possible


def test_slow_consumer_gets_the_newest_frame_and_no_backlog(labeler, square_clip):
    seen: list[tuple[int, float, float]] = []  # (index, time it was asked for, time it came back)
    asked = [0.0]

    def on_frame(vf, stats: LiveStats) -> None:
        now = time.monotonic()
        seen.append((vf.index, asked[0], now))
        assert stats.frames == len(seen)
        time.sleep(0.1)  # three frame intervals: labelling slower than the camera
        asked[0] = time.monotonic()

    t0 = time.monotonic()
    src = file_as_live(square_clip)
    asked[0] = time.monotonic()
    stats = run_live(labeler, src, on_frame=on_frame)
    wall = time.monotonic() - t0
    indices = [i for i, *_ in seen]
    assert indices == sorted(set(indices)) and indices[-1] == N - 1  # in order; the last frame is never lost
    assert max(b - a for a, b in zip(indices, indices[1:], strict=False)) > 1
    assert stats.frames == len(seen) == src.delivered and stats.dropped == src.dropped == N - len(seen)
    assert len(seen) <= N // 2
    # The newest frame: when a frame is asked for, the one handed over was released at most ~2 intervals
    # before, i.e. nothing older was queued. (Frames are released at t0 + index / FPS, t0 a little after t0 here.)
    for index, asked_at, _ in seen[1:]:
        assert index >= (asked_at - t0) * FPS - 2.5, seen
    # Reported rate = real rate; no backlog: the run ends about one interval + one frame's work after the clip.
    assert stats.fps == pytest.approx(stats.frames / stats.seconds)
    assert stats.fps == pytest.approx(len(seen) / wall, rel=0.15)
    work = max(b - a for (_, a, _), (_, _, b) in zip(seen, seen[1:], strict=False))  # ask -> result, worst
    assert wall <= (N - 1) / FPS + 1 / FPS + work + 0.3, (wall, work)
    assert not _live_threads()


def test_record_writes_frames_csv_rows_as_it_goes(labeler, face_clip, tmp_path):
    out = tmp_path / "live.csv"
    faces_so_far = [0]
    flushed = []
    recorder = FramesRecorder()
    recorder.open(out, labeler.models)

    def on_frame(vf, stats) -> None:
        recorder.write("face.mp4", vf)
        faces_so_far[0] += len(vf.faces)
        with open(out, encoding="utf-8", newline="") as f:  # written and flushed before on_frame is called
            flushed.append(len(list(csv.reader(f))) - 1 == faces_so_far[0])

    with recorder:
        stats = run_live(labeler, file_as_live(face_clip), on_frame=on_frame)
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == frames_header(labeler.models)
    assert len(rows) - 1 == faces_so_far[0] > 0  # one row per tracked face per processed frame
    assert all(flushed) and len(flushed) == stats.frames
    assert {r[0] for r in rows[1:]} == {"face.mp4"}
    assert all(len(r) == len(rows[0]) for r in rows)


def test_lavfi_capture_runs_the_camera_loop(labeler):
    """The camera's code path (device_source) on a paced synthetic device: rate, drops, stop, release."""
    src = live.device_source("lavfi", "testsrc=size=160x120:rate=30,realtime", name="webcam:test", what="test")
    assert src.fps == pytest.approx(30)
    stop_after = 0.6
    t0 = time.monotonic()
    seen = []

    def on_frame(vf, stats) -> None:
        seen.append(vf.index)
        time.sleep(0.05)

    stats = run_live(labeler, src, on_frame=on_frame, should_stop=lambda: time.monotonic() - t0 > stop_after)
    assert time.monotonic() - t0 < stop_after + 1.0
    assert seen == sorted(set(seen)) and stats.frames == len(seen) >= 3
    assert stats.dropped > 0 and max(b - a for a, b in zip(seen, seen[1:], strict=False)) > 1
    assert not src.alive and not _live_threads()


def test_close_stops_the_thread_and_is_idempotent(square_clip):
    src = file_as_live(square_clip, loop=True)  # endless: only close() stops it
    it = iter(src)
    first, second = next(it), next(it)
    assert second.index > first.index
    assert src.alive
    src.close()
    assert not src.alive and not _live_threads()
    src.close()
    with src:
        pass  # the context manager closes again, harmlessly
    assert list(src) == []


def test_loop_continues_numbers_and_time(square_clip):
    with file_as_live(square_clip, speed=8.0, loop=True) as src:
        got = []
        for f in src:
            got.append(f)
            if f.index >= N + 5:
                break
    assert got[-1].time_s == pytest.approx(got[-1].index / FPS, abs=1e-3)
    assert [f.index for f in got] == sorted({f.index for f in got})


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match="speed"):
        file_as_live(tmp_path / "x.mp4", speed=0)
    from app.video import VideoError

    with pytest.raises(VideoError, match="no such file"):
        file_as_live(tmp_path / "missing.mp4")
    with pytest.raises(LiveError, match="no lavfi-nonsense input|cannot open"):
        live.device_source("lavfi-nonsense", "x", name="x", what="test")


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="a camera device exists here")
def test_missing_camera_is_one_line():
    with pytest.raises(LiveError) as e:
        live.camera_source(99)
    msg = str(e.value)
    assert isinstance(e.value, ValueError) and len(msg.splitlines()) == 1
    assert msg.startswith("no camera 99") or "camera 99" in msg
    if sys.platform.startswith("linux"):
        assert msg == "no camera 99 (/dev/video99: No such file or directory)"
    assert not _live_threads()


def test_dshow_listing_both_ffmpeg_formats():
    """Windows only in use; the text is what libavdevice/dshow.c logs (FFmpeg >= 5, then older)."""
    modern = ('"Integrated Camera" (video)\n  Alternative name "@device_pnp_\\\\?\\usb#vid_04f2"\n'
              '"Microphone Array (Realtek(R) Audio)" (audio)\n  Alternative name "@device_cm_{33D9}\\wave_{B1F1}"\n'
              '"HD Webcam C920" (video, audio)\n  Alternative name "@device_pnp_c920"\n"OBS Virtual" (none)\n')
    assert live.parse_dshow_list(modern) == [("Integrated Camera", "@device_pnp_\\\\?\\usb#vid_04f2"),
                                             ("HD Webcam C920", "@device_pnp_c920")]
    old = ("[dshow @ 0000] DirectShow video devices (some may be both video and audio devices)\n"
           '[dshow @ 0000]  "Integrated Camera"\n[dshow @ 0000]     Alternative name "@device_pnp_a"\n'
           "[dshow @ 0000] DirectShow audio devices\n"
           '[dshow @ 0000]  "Microphone"\n[dshow @ 0000]     Alternative name "@device_cm_b"\n')
    assert live.parse_dshow_list(old) == [("Integrated Camera", "@device_pnp_a")]


def test_chunk_one_yields_each_frame_before_the_next_is_read(labeler, square_clip):
    from app.video import frames, label_frames

    pulled = []

    def source():
        for f in frames(square_clip):
            pulled.append(f.index)
            yield f
            if len(pulled) == 5:
                return

    for vf in label_frames(labeler, source(), chunk=1):
        assert pulled[-1] == vf.index  # the result came before the next frame was taken


def test_help_documents_the_webcam_options():
    from app.__main__ import build_parser

    text = build_parser().format_help()
    for opt in ("--webcam", "--record", "--headless", "--seconds"):
        assert opt in text
    assert "examples:" in text and "--webcam 1 --headless --record live.csv" in text


def _cli(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    return subprocess.Popen([sys.executable, "-m", "app", *map(str, args)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", **kw)


@pytest.mark.skipif(bool(glob.glob("/dev/video99")), reason="a camera 99 exists here")
def test_cli_missing_camera_exits_nonzero_with_one_line(tiny_zoo):
    p = _cli("--webcam", "99", "--headless", "--zoo", tiny_zoo)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1
    assert len(err.strip().splitlines()) == 1 and "camera 99" in err and "Traceback" not in err, err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_cli_headless_prints_rate_records_and_stops_on_ctrl_c(tiny_zoo, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", moving_square_frames(60, step=1), fps=10)  # 6 s
    out = tmp_path / "rec.csv"
    p = _cli("--webcam", clip, "--headless", "--record", out, "--zoo", tiny_zoo)
    try:
        lines = []
        for line in p.stdout:  # the start line, then one line a second
            lines.append(line)
            if "frames/s processed" in line and len(lines) > 1:
                break
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    summary = rest.strip().splitlines()[-1]
    assert summary.startswith("long.mp4: ") and "frames/s processed" in summary, rest
    assert float(summary.split(" labelled in ")[1].split(" s")[0]) < 5.5  # stopped early, not at the end
    with open(out, encoding="utf-8", newline="") as f:
        assert next(csv.reader(f))[:3] == ["video", "frame", "time_s"]


def test_close_from_another_thread_ends_the_run(labeler, square_clip):
    """The GUI's Stop: close() from the UI thread ends run_live in its worker after the frame in hand."""
    src = file_as_live(square_clip, loop=True)
    done: list[LiveStats] = []
    worker = threading.Thread(target=lambda: done.append(run_live(labeler, src)))
    worker.start()
    time.sleep(0.3)
    src.close()
    worker.join(5)
    assert not worker.is_alive() and done and done[0].frames > 0
    assert not _live_threads()
