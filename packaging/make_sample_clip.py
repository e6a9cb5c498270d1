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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.video._sample_clip import CRF, FPS, SECONDS, make_clip  # noqa: E402

SOURCE = ROOT / "app" / "assets" / "sample.jpg"
OUT = ROOT / "app" / "assets" / "sample_clip.mp4"


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
    p.add_argument("--seconds", type=float, default=SECONDS, help="length in seconds (default: %(default)s)")
    p.add_argument("--fps", type=int, default=FPS, help="frames per second (default: %(default)s)")
    p.add_argument("--size", default="320x240", help="WIDTHxHEIGHT, both even (default: %(default)s)")
    p.add_argument("--crf", type=int, default=CRF,
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
    n = make_clip(args.source, args.out, args.seconds, args.fps, (w, h), args.crf)
    print(f"make_sample_clip: {args.out} ({n} frames, {w}x{h}, {args.fps} fps, "
          f"{args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
