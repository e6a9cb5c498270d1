"""Make app/assets/sample_clip.mp4, the short clip ``python -m app --self-test`` labels after the sample photo.

The clip is a slow pan and zoom over app/assets/sample.jpg (the public-domain NASA portrait), so the face moves
and grows across the frame the way a face in a real video does: the detector has to find it again, the tracker
has to keep its number, the smoother has something to smooth. Defaults: 1.5 s at 30 fps (45 frames), 320x240,
H.264 (libx264, yuv420p, +faststart) in MP4, the codec and container most videos come in; 37 KB.

The output is deterministic for a given PyAV/x264 build (one encoder thread, fixed settings), so rerunning it
changes nothing unless the defaults do. It needs only PyAV, numpy and Pillow (all app dependencies).

Example:
    python packaging/make_sample_clip.py                       # writes app/assets/sample_clip.mp4
    python packaging/make_sample_clip.py --out /tmp/clip.mp4 --seconds 3 --size 640x480
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "app" / "assets" / "sample.jpg"
OUT = ROOT / "app" / "assets" / "sample_clip.mp4"


def _smooth(t: float) -> float:
    """Ease in and out (0 -> 1) so the motion starts and ends gently, like a camera move."""
    return t * t * (3 - 2 * t)


def pan_zoom_frames(photo: Image.Image, size: tuple[int, int], n: int) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (w, h): a window over ``photo`` that zooms in and drifts right and down.

    The window starts wide (the whole portrait's width, face small and left of centre) and ends at 70% of that,
    shifted so the face moves across the frame by about a fifth of its width while it grows by ~40%.
    """
    w, h = size
    pw, ph = photo.size
    aspect = w / h
    out = []
    for i in range(n):
        t = _smooth(i / max(1, n - 1))
        cw = pw * (1.0 - 0.3 * t)  # crop width: 100% -> 70% of the photo
        ch = cw / aspect
        ch = min(ch, ph)
        cw = ch * aspect
        x0 = (pw - cw) * (0.15 + 0.55 * t)  # the crop slides right over the face...
        y0 = (ph - ch) * 0.1 * (1 - t)  # ...and up a little, keeping the face clear of the top edge
        frame = photo.resize((w, h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
        out.append(np.asarray(frame.convert("RGB")))
    return out


def write_mp4(path: Path, frames: list[np.ndarray], fps: int, crf: int) -> None:
    """H.264 in MP4, yuv420p (plays everywhere), one thread and a fixed GOP so the bytes are reproducible."""
    import av

    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
        out.metadata["title"] = "EmotionLens self-test clip (pan and zoom over the public-domain sample.jpg)"
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow", "tune": "film", "threads": "1", "g": str(fps)}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python packaging/make_sample_clip.py                  write app/assets/sample_clip.mp4 (the defaults)\n"
        "  python packaging/make_sample_clip.py --out /tmp/c.mp4 --seconds 3 --size 640x480",
    )
    p.add_argument("--source", type=Path, default=SOURCE, help="photo to pan over (default: app/assets/sample.jpg)")
    p.add_argument("--out", type=Path, default=OUT, help="MP4 to write (default: app/assets/sample_clip.mp4)")
    p.add_argument("--seconds", type=float, default=1.5, help="length in seconds (default: %(default)s)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default: %(default)s)")
    p.add_argument("--size", default="320x240", help="WIDTHxHEIGHT, both even (default: %(default)s)")
    p.add_argument("--crf", type=int, default=26,
                   help="x264 quality, lower is better and bigger (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must be WIDTHxHEIGHT, e.g. 320x240, not {args.size!r}")
    if w < 16 or h < 16 or w % 2 or h % 2:
        p.error(f"--size {args.size}: width and height must be even and at least 16 (H.264 yuv420p)")
    if not args.seconds > 0 or args.fps < 1:
        p.error("--seconds and --fps must be positive")
    if not args.source.is_file():
        p.error(f"{args.source}: no such file")
    n = max(1, round(args.seconds * args.fps))
    with Image.open(args.source) as im:
        frames = pan_zoom_frames(im.convert("RGB"), (w, h), n)
    write_mp4(args.out, frames, args.fps, args.crf)
    print(f"make_sample_clip: {args.out} ({n} frames, {w}x{h}, {args.fps} fps, "
          f"{args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
