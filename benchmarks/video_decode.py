"""Video decoding: PyAV (app.video) against OpenCV's cv2.VideoCapture, speed and correctness.

Speed: frames per second decoded to an RGB numpy array from ``talking_head.mp4`` (596x336 H.264, 464 frames,
../shared/data/videos), median of ``--runs`` interleaved runs, with the process CPU time per run beside it
(decoders use several threads; on a machine shared with other work the wall time is inflated by its load):

* ``app.video.frames``: PyAV with frame+slice threads, swscale to RGB, as the app runs it; and the same with
  ``THREAD_TYPE = None`` (one decoding thread);
* a plain PyAV loop, one thread: ``frame.to_ndarray(format="rgb24")`` (a new swscale context per frame);
* ``cv2.VideoCapture.read`` (BGR) and ``cv2.cvtColor`` to RGB.

Correctness, on clips written by tests/video_synth.py:

* timestamps: a variable-frame-rate clip (gaps of 1/30, 1/10, 1/60 s): the largest difference between each
  decoder's frame time (PyAV: ``Frame.time_s``; OpenCV: ``CAP_PROP_POS_MSEC`` read after each ``read()``) and
  the time the frame was written at; also on talking_head.mp4, OpenCV against PyAV;
* rotation: a clip stored 96x64 with a display matrix saying "turn 90 degrees clockwise" (phones' portrait
  video): whether the decoder hands out 64x96 frames with the top-left square turned to the top right;
* damage: an MKV cut at 60% of its bytes and a JPEG renamed .mp4: what each decoder reports.

Run: ``python benchmarks/video_decode.py [--video PATH] [--runs 5]``. Skips the speed rows (exit 0) when the
video is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.video import _decode as V  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "talking_head.mp4"


def decode_app(path: Path) -> int:
    return sum(1 for _ in V.frames(path))


def decode_app_one_thread(path: Path) -> int:
    old, V.THREAD_TYPE = V.THREAD_TYPE, None
    try:
        return sum(1 for _ in V.frames(path))
    finally:
        V.THREAD_TYPE = old


def decode_pyav_single(path: Path) -> int:
    import av

    n = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


def decode_cv2(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        cap.release()
    return n


DECODERS = {
    "PyAV, app.video.frames (threads AUTO)": decode_app,
    "PyAV, app.video.frames, THREAD_TYPE None (1 thread)": decode_app_one_thread,
    "PyAV, plain loop: decode + to_ndarray(rgb24), 1 thread": decode_pyav_single,
    "OpenCV cv2.VideoCapture + cvtColor": decode_cv2,
}


def cv2_times(path: Path) -> list[float]:
    """CAP_PROP_POS_MSEC after each read(), in seconds."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    try:
        while cap.read()[0]:
            out.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    finally:
        cap.release()
    return out


def cv2_first_frame(path: Path) -> np.ndarray | None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        ok, bgr = cap.read()
    finally:
        cap.release()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None


def app_outcome(path: Path) -> str:
    n = 0
    try:
        for _ in V.frames(path):
            n += 1
    except V.VideoError as e:
        return f"{n} frame(s), then VideoError: {e.reason[:60]}..."
    return f"{n} frame(s), normal end"


def cv2_outcome(path: Path) -> str:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return "not opened (no reason given)"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return f"{n} frame(s), then read() False (as at a normal end)"


def corner(rgb: np.ndarray) -> str:
    ys, xs = np.nonzero(rgb.mean(axis=2) > 128)
    h, w = rgb.shape[:2]
    return f"{w}x{h}, square {'top' if ys.mean() < h / 2 else 'bottom'} {'left' if xs.mean() < w / 2 else 'right'}"


def speed_rows(video: Path, runs: int) -> list[str]:
    walls: dict[str, list[float]] = {k: [] for k in DECODERS}
    cpus: dict[str, list[float]] = {k: [] for k in DECODERS}
    counts: dict[str, int] = {}
    for name, fn in DECODERS.items():  # warm-up: libraries loaded, file in the page cache
        counts[name] = fn(video)
    for _ in range(runs):  # interleaved, so the machine's load hits every decoder alike
        for name, fn in DECODERS.items():
            t, c = time.perf_counter(), time.process_time()
            fn(video)
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    rows = []
    for name in DECODERS:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        rows.append(f"| {name} | {counts[name]} | {counts[name] / wall:.0f} | {cpu:.2f} | {counts[name] / cpu:.0f} |")
    return rows


def correctness_rows(video: Path | None) -> list[str]:
    try:
        from tests.video_synth import corner_frames, moving_square_frames, vfr_times, write_clip
    except ImportError:
        return ["| (tests/video_synth.py not found: run from a source checkout) | | |"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        times = vfr_times([1 / 30, 1 / 10, 1 / 60], 30)
        vfr = write_clip(Path(tmp) / "vfr.mp4", moving_square_frames(30), times_s=times)
        pyav = [f.time_s for f in V.frames(vfr)]
        cv = cv2_times(vfr)
        err_pyav = max(abs(a - b) for a, b in zip(pyav, times, strict=True))
        err_cv = max(abs(a - b) for a, b in zip(cv, times, strict=False)) if cv else float("nan")
        rows.append(f"| VFR clip (30 frames, gaps 1/30, 1/10, 1/60 s): largest time error | {err_pyav * 1000:.3f} ms "
                    f"| {err_cv * 1000:.1f} ms ({len(cv)} frames) |")
        if video is not None:
            pyav = [f.time_s for f in V.frames(video, max_side=64)]
            cv = cv2_times(video)
            diff = max(abs(a - b) for a, b in zip(pyav, cv, strict=False))
            rows.append(f"| {video.name}: largest difference OpenCV - PyAV frame time | (reference) "
                        f"| {diff * 1000:.1f} ms ({len(cv)} of {len(pyav)} frames) |")
        rot = write_clip(Path(tmp) / "rot90.mp4", corner_frames(2), rotate=90)
        got_cv = cv2_first_frame(rot)
        seen_cv = corner(got_cv) if got_cv is not None else "no frame"
        rows.append(f"| clip stored 96x64, square top left, rotate=90: first frame | "
                    f"{corner(next(iter(V.frames(rot))).rgb)} | {seen_cv} |")
        whole = write_clip(Path(tmp) / "whole.mkv", moving_square_frames(30, noise=20)).read_bytes()
        cut = Path(tmp) / "cut.mkv"
        cut.write_bytes(whole[: len(whole) * 6 // 10])
        jpg = Path(tmp) / "photo.mp4"
        Image.new("RGB", (64, 48), (200, 10, 10)).save(jpg, "JPEG")
        for what, path in (("MKV of 30 frames cut at 60%", cut), ("JPEG photo renamed .mp4", jpg)):
            rows.append(f"| {what} | {app_outcome(path)} | {cv2_outcome(path)} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="example:\n  nice -n 19 python benchmarks/video_decode.py --runs 5\n"
        "  python benchmarks/video_decode.py --video ~/Videos/clip.mov --runs 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="clip to time (default: %(default)s)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per decoder (default: %(default)s)")
    args = p.parse_args(argv)
    import cv2

    video = args.video if args.video.is_file() else None
    print(f"PyAV {__import__('av').__version__} (FFmpeg {__import__('av').ffmpeg_version_info}), OpenCV "
          f"{cv2.__version__}, {os.cpu_count()} CPUs")
    if video is None:
        print(f"speed skipped: {args.video} not found (needs ../shared)")
    else:
        info = V.probe(video)
        print(f"\n{video.name}: {info.width}x{info.height} {info.codec}, {info.frames} frames, {info.fps:.2f} fps; "
              f"median of {args.runs} runs\n")
        print("| decoder | frames | frames/s (wall) | CPU s per run | frames per CPU s |")
        print("|---|---|---|---|---|")
        for row in speed_rows(video, args.runs):
            print(row)
    print("\n| check | PyAV (app.video) | OpenCV |")
    print("|---|---|---|")
    for row in correctness_rows(video):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
