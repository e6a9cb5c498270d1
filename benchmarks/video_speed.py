"""Video labelling speed and memory: frames/s from decoding to frames.csv, against labelling each frame as a
separate photo in the same run, and peak memory over a long video against a short one.

The clips are made here from the bundled sample photo (a slow pan, one face), so anyone can rerun the rows:
640x360 and 1920x1080 at 30 fps. "Decoding to CSV" is the batch command's own path
(``app.batch._videos.label_one_video``: decode, detect every ``--detect-every`` frames, track, label with all
three models, smooth, write frames.csv, tracks.csv and the charts). The photo baseline runs
``Labeler.label_image`` on every decoded frame, as a user who split a video into photos would.

Example::

    python -m benchmarks --only video            # the speed rows of README's table
    python -m benchmarks.video_speed --memory    # peak RSS: one hour of 360p video against one minute
    python -m benchmarks.video_speed --smoothing # label changes per minute for each --smooth value
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, Row, log

SAMPLE = ROOT / "app" / "assets" / "sample.jpg"


def make_clip(path: Path, size: tuple[int, int], seconds: float, fps: int = 30, crf: int = 23,
              noise: float = 0.0, zoom: float = 1.0) -> Path:
    """A pan across the sample photo, its face about a third of the frame height, encoded as H.264 MP4.

    ``noise`` > 0 makes a handheld, grainy version of the same steady expression: each frame shifted by up to
    ``noise`` px and given Gaussian grain of ``2 * noise`` grey levels (seeded), the kind of frame-to-frame
    change that makes a per-frame label flicker although the face does not change. ``zoom`` < 1 shows the
    photo smaller (its height that share of the frame's), so the face is small and its labels less sure."""
    import av
    from PIL import Image

    w, h = size
    im = Image.open(SAMPLE).convert("RGB")
    ph = round(h * zoom)
    im = np.asarray(im.resize((round(im.width * ph / im.height), ph)))
    if im.shape[1] < w + 64 or ph < h:  # a canvas wide enough to pan across, the photo in its middle
        canvas = np.full((h, max(w + 64, im.shape[1]), 3), 110, np.uint8)
        x, y = (canvas.shape[1] - im.shape[1]) // 2, (h - ph) // 2
        canvas[y : y + ph, x : x + im.shape[1]] = im
        im = canvas
    n = round(seconds * fps)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": str(crf)}
        for i in range(n):
            a = 0.5 + 0.5 * np.sin(i / max(1, n - 1) * 2 * np.pi * max(1.0, seconds / 20))
            ox = round((im.shape[1] - w) * a)
            oy = (im.shape[0] - h) // 2
            crop = im[oy : oy + h, ox : ox + w]
            if noise > 0:
                crop = np.roll(crop, tuple(rng.integers(-round(noise), round(noise) + 1, 2)), axis=(0, 1))
                crop = np.clip(crop + rng.normal(0, 2 * noise, crop.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(crop), format="rgb24")
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def _batch_seconds(labeler, clip: Path, out: Path, **opts) -> tuple[int, float]:  # noqa: ANN001
    """(frames analysed, seconds) of the batch's video path on ``clip``: decoding to frames.csv."""
    from app.batch._scan import Item
    from app.batch._videos import label_one_video, prepare_videos
    from app.video import VideoOptions

    out.mkdir(parents=True, exist_ok=True)
    outs = prepare_videos(out, labeler, resume=False)
    t0 = time.perf_counter()
    rec = label_one_video(labeler, Item(clip, Path(clip.name)), outs, VideoOptions(**opts))
    return int(rec["frames"]), time.perf_counter() - t0


def _photo_seconds(labeler, clip: Path) -> tuple[int, float]:  # noqa: ANN001
    """(frames, seconds) labelling every decoded frame as a separate photo (detection on each)."""
    from app.video import frames

    t0, n = time.perf_counter(), 0
    for fr in frames(clip):
        labeler.label_image(fr.rgb)
        n += 1
    return n, time.perf_counter() - t0


def video_rows(zoo: str | None = None, quick: bool = False, threads: int | None = None) -> list[Row]:
    """The issue's speed targets as rows: 360p every frame, 360p --fps 5 (x real time), 1080p, photo baseline."""
    from app.models import Labeler

    labeler = Labeler(zoo, threads=threads)
    seconds = 4.0 if quick else 10.0
    repeats = 1 if quick else 3
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip360 = make_clip(tmp / "pan360.mp4", (640, 360), seconds)
        clip1080 = make_clip(tmp / "pan1080.mp4", (1920, 1080), seconds / 2)
        cases = [
            ("video 640x360 30 fps, every frame, 3 models + tracking (decode to frames.csv)", clip360, {}, "fps"),
            ("video 640x360 30 fps, --fps 5", clip360, {"fps": 5.0}, "x real time"),
            ("video 1920x1080 30 fps, defaults", clip1080, {}, "fps"),
            ("video 640x360, every frame with --detect-every 1", clip360, {"detect_every": 1}, "fps"),
        ]
        for what, clip, opts, unit in cases:
            runs = []
            for r in range(repeats):
                n, secs = _batch_seconds(labeler, clip, tmp / f"out{r}", **opts)
                runs.append(n / secs if unit == "fps" else seconds / secs * (0.5 if clip is clip1080 else 1))
            value = float(np.median(runs))
            log(f"{what}: {value:.1f} {unit}")
            rows.append(Row(what, value, unit, f"median of {repeats}", "synthetic pan across app/assets/sample.jpg"))
        runs = []
        for _ in range(repeats):
            n, secs = _photo_seconds(labeler, clip360)
            runs.append(n / secs)
        rows.append(Row("video 640x360 30 fps, each frame labelled as a separate photo (baseline)",
                        float(np.median(runs)), "fps", f"median of {repeats}", "Labeler.label_image per frame"))
    return rows


# -------------------------------------------------------------------------------------------- smoothing

SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "videos"
SMOOTH_CHOICES = (0.0, 0.25, 0.5, 1.0, 2.0)


def smoothing_rows(zoo: str | None = None, choices=SMOOTH_CHOICES) -> list[Row]:  # noqa: ANN001
    """Label changes per minute of each track's smoothed label for each ``--smooth`` value, and whether the
    label a track holds longest stays the raw one's: the measurement behind app.video.SMOOTH_S. One labelling
    run per clip (raw probabilities), then every time constant applied to the same probabilities."""
    from collections import Counter

    from app.models import Labeler
    from app.video import VideoOptions
    from app.video._smooth import Smoother, label_changes

    labeler = Labeler(zoo)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = [("steady expression, small grainy handheld face (synthetic)",
                  make_clip(Path(tmp) / "steady.mp4", (640, 360), 20.0, noise=8.0, zoom=0.5))]
        clips += [(f"{p.name} (../shared)", p) for p in sorted(SHARED_VIDEOS.glob("talking_head.mp4"))]
        for name, clip in clips:
            raw: dict[int, list[tuple[float, np.ndarray]]] = {}
            for vf in labeler.label_video(clip, VideoOptions(smooth_s=0)):
                for f in vf.faces:
                    raw.setdefault(f.track, []).append((vf.time_s, f.ensemble.probs))
            if not raw:
                continue
            track, seq = max(raw.items(), key=lambda kv: len(kv[1]))
            minutes = max(1e-9, (seq[-1][0] - seq[0][0]) / 60)
            raw_labels = [int(np.argmax(p)) for _, p in seq]
            dominant = Counter(raw_labels).most_common(1)[0][0]
            for tau in choices:
                sm = Smoother(tau)
                labels = [int(np.argmax(sm.update(track, t, p))) for t, p in seq]
                kept = Counter(labels).most_common(1)[0][0] == dominant
                rows.append(Row(f"label changes per minute, {name}, --smooth {tau:g}", label_changes(labels) / minutes,
                                "per min", "1", f"track {track}, {len(seq)} frames; dominant label "
                                f"{'unchanged' if kept else 'CHANGED'}; raw {label_changes(raw_labels) / minutes:.1f}"))
    return rows


# ----------------------------------------------------------------------------------------------- memory


def _peak_rss_mb(clip: Path, fps: float | None) -> float:
    """Peak RSS (MB) of a fresh ``python -m app.batch`` labelling ``clip``: a child process, so one run's
    allocations do not hide in another's."""
    with tempfile.TemporaryDirectory() as out:
        code = ("import resource, sys; from app.batch import main; "
                f"rc = main([{str(clip)!r}, '--out', {out!r}, '--workers', '1'"
                + (f", '--fps', '{fps}'" if fps else "") + "]); "
                "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)")
        res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        if res.returncode != 0:
            raise RuntimeError(f"app.batch failed on {clip}: {res.stderr.strip().splitlines()[-1:]}")
        return float(res.stdout.split("PEAK")[-1].split()[0])


def memory_rows(long_s: float = 3600.0, short_s: float = 60.0, fps: float | None = 2.0) -> list[Row]:
    """Peak RSS labelling a ``long_s`` 360p video against a ``short_s`` one (the issue: within 50 MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log(f"encoding a {long_s:.0f} s 640x360 clip (a few minutes)")
        long_clip = make_clip(tmp / "long.mp4", (640, 360), long_s, crf=35)
        short_clip = make_clip(tmp / "short.mp4", (640, 360), short_s, crf=35)
        short = _peak_rss_mb(short_clip, fps)
        long = _peak_rss_mb(long_clip, fps)
    note = f"640x360 synthetic, --fps {fps}" if fps else "640x360 synthetic, every frame"
    return [Row(f"peak RSS, {short_s / 60:.0f} min video", short, "MB", "1", note),
            Row(f"peak RSS, {long_s / 60:.0f} min video", long, "MB", "1", note),
            Row("peak RSS difference, long - short", long - short, "MB", "1", "target: at most 50")]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import markdown_table

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.video_speed",
        description="Video labelling frames/s (decode to frames.csv) against frame-by-frame photo labelling, and "
        "with --memory the peak RSS of an hour of 360p video against a minute.",
        epilog="examples:\n  python -m benchmarks.video_speed --quick\n"
        "  python -m benchmarks.video_speed --memory --long 3600 --short 60 --fps 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--zoo", help="model zoo folder (default: the app's)")
    p.add_argument("--quick", action="store_true", help="shorter clips, one run each")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: the app's)")
    p.add_argument("--memory", action="store_true", help="measure peak RSS of a long against a short video instead")
    p.add_argument("--smoothing", action="store_true", help="label changes per minute for each --smooth value instead "
                   "(the measurement behind the default)")
    p.add_argument("--long", type=float, default=3600.0, help="long clip's seconds for --memory (default: 3600)")
    p.add_argument("--short", type=float, default=60.0, help="short clip's seconds for --memory (default: 60)")
    p.add_argument("--fps", type=float, default=2.0, help="--fps sampling for --memory runs (default: 2; 0 = every "
                   "frame)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    p.add_argument("--update-docs", action="store_true",
                   help="with --memory or --smoothing: also write the table between the video-memory or "
                   "video-smoothing markers of docs/video.md (example: --memory --update-docs)")
    args = p.parse_args(argv)
    if args.update_docs and not (args.memory or args.smoothing):
        p.error("--update-docs goes with --memory or --smoothing (python -m benchmarks --update-readme writes the "
                "speed rows)")
    if args.memory:
        rows = memory_rows(args.long, args.short, args.fps or None)
    elif args.smoothing:
        rows = smoothing_rows(args.zoo)
    else:
        rows = video_rows(args.zoo, args.quick, args.threads)
    print(markdown_table(rows))
    if args.update_docs:
        from benchmarks.common import machine_line
        from training.report import block_file, replace_block

        block = "video-memory" if args.memory else "video-smoothing"
        command = " ".join(["python -m benchmarks.video_speed", *(argv if argv is not None else sys.argv[1:])])
        replace_block(block_file(block), block, f"{markdown_table(rows)}\n\n`{command}` on "
                      f"{machine_line(args.threads)}.")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
