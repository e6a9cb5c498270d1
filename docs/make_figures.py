"""Retake README's pictures with the shipped models: the app window on a group photo, an annotated photo, the
window with saliency maps (``--maps-only``) and the video player (``--video-only``).

The percentages in those pictures are the models' real output, so they are regenerated (never edited) each
time the zoo changes. Needs an X display for the window; under a headless machine run it through Xvfb::

    xvfb-run -s "-screen 0 1700x1100x24" python docs/make_figures.py

The window is shot at 1600x1000 (docs/screenshot.jpg, README's top picture) and at the smallest size the
window allows, 720x480 (docs/screenshot-720x480.png), with one face selected so its card shows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GROUP = ROOT.parent / "shared" / "data" / "group_photos" / "bald_guys.jpg"  # the 24-face collage
SAMPLE = ROOT / "app" / "assets" / "sample.jpg"
CLIP = ROOT.parent / "shared" / "data" / "videos" / "talking_head.mp4"  # one face, 15 s (its README)
SAMPLE_CLIP = ROOT / "app" / "assets" / "sample_clip.mp4"


def annotated_sample(photo: Path, out: Path) -> None:
    from app.core import load_image
    from app.models import Labeler
    from app.outputs import annotate, save_image

    labeler = Labeler()
    rgb = load_image(photo)
    result = labeler.label_image(rgb, path=photo)
    save_image(annotate(rgb, result.shown(), {m.name: m.display_name for m in labeler.models}), out)


def _grab(root, out: Path) -> None:
    """Grab the window (at +0+0, its menu bar above winfo_rooty(), so from the screen's top) into ``out``."""
    from PIL import ImageGrab

    for _ in range(20):  # let Tk draw everything before the grab
        root.update()
        time.sleep(0.05)
    bbox = (0, 0, root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height())
    shot = ImageGrab.grab(bbox=bbox, xdisplay=None).convert("RGB")
    if out.suffix.lower() in (".jpg", ".jpeg"):
        shot.save(out, quality=85, optimize=True)
    else:
        shot.quantize(colors=256, method=2).save(out, optimize=True)  # a few hundred KB, not MB


def _window(size: str):
    """The app's window at ``size``, at the screen's top left, once its models have loaded."""
    import tkinter as tk

    from app.gui import App

    root = tk.Tk(className="EmotionLens")
    app = App(root)
    root.geometry(f"{size}+0+0")
    if not app.wait_idle(120):
        raise SystemExit("error: the models did not load within 120 s")
    return root, app


def video_screenshot(clip: Path, out: Path, size: str = "1332x800", at_s: float = 4.6) -> list[list[str]]:
    """Open ``clip`` in a window of ``size``, let the analysis finish, show the frame at ``at_s`` seconds with
    track 1 selected (its timeline and cursor below), grab the screen; returns the track table."""
    root, app = _window(size)
    app.open_video(clip)
    if not app.wait_idle(900):
        raise SystemExit("error: the video's analysis did not finish within 900 s")
    app.video.player.seek(at_s)
    deadline = time.monotonic() + 10
    while abs(app.video.player.current.time_s - at_s) > 0.1 and time.monotonic() < deadline:
        root.update()
        time.sleep(0.02)
    _grab(root, out)
    rows = app.video.track_rows()
    app.quit()
    return rows


def window_screenshot(photo: Path, out: Path, size: str, select: int | None, maps: bool = False) -> list[list[str]]:
    """Open ``photo`` in a window of ``size``, select face ``select`` (``maps``: with its saliency maps), grab
    the screen; returns the table."""
    root, app = _window(size)
    app.open_image(photo)
    if not app.wait_idle(120):
        raise SystemExit("error: labelling did not finish within 120 s")
    if select is not None:
        app.select_face(select)
    app.set_maps(maps)
    _grab(root, out)
    rows = app.face_rows()
    app.quit()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python docs/make_figures.py",
        description="Regenerate docs/screenshot.jpg and docs/screenshot-720x480.png (the app window on a group "
        "photo) and docs/sample-annotated.jpg (the batch annotation of the sample) with the models in models_zoo/.",
        epilog='example: xvfb-run -s "-screen 0 1700x1100x24" python docs/make_figures.py --select 5',
    )
    p.add_argument("--photo", default=str(GROUP if GROUP.is_file() else SAMPLE),
                   help="photo to show in the window (default: ../shared's 24-face collage, else the sample)")
    p.add_argument("--annotate-photo", default=str(SAMPLE),
                   help="photo for docs/sample-annotated.jpg (default: the bundled sample)")
    p.add_argument("--select", type=int, default=5, help="face number to select in the window (default: 5)")
    p.add_argument("--out", default=str(ROOT / "docs"), help="folder for the pictures (default: docs/)")
    p.add_argument("--video", default=str(CLIP if CLIP.is_file() else SAMPLE_CLIP),
                   help="clip for docs/screenshot-video.png, the player (default: ../shared's talking_head.mp4, "
                   "else the bundled sample clip)")
    p.add_argument("--video-only", action="store_true",
                   help="only docs/screenshot-video.png: the player with the track's timeline (README, Videos)")
    p.add_argument("--maps-only", action="store_true",
                   help="only docs/saliency/window.png: the window with saliency maps on (README, 'Why this label')")
    args = p.parse_args(argv)
    photo, out = Path(args.photo), Path(args.out)
    if args.video_only:
        rows = video_screenshot(Path(args.video), out / "screenshot-video.png")
        print(f"wrote {out / 'screenshot-video.png'}: " + "; ".join(" | ".join(r) for r in rows))
        return 0
    if args.maps_only:
        (out / "saliency").mkdir(parents=True, exist_ok=True)
        window_screenshot(photo, out / "saliency" / "window.png", "1280x800", args.select, maps=True)
        print(f"wrote {out / 'saliency' / 'window.png'}")
        return 0
    annotated_sample(Path(args.annotate_photo), out / "sample-annotated.jpg")
    for size, name in (("1600x1000", "screenshot.jpg"), ("720x480", "screenshot-720x480.png")):
        rows = window_screenshot(photo, out / name, size, args.select)
        print(f"{name}: {len(rows)} faces in the table")
    for k, row in enumerate(rows, 1):
        print(f"{k:2d} " + " | ".join(row))
    print(f"wrote {out / 'screenshot.jpg'}, {out / 'screenshot-720x480.png'} and {out / 'sample-annotated.jpg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
