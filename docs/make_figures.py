"""Retake README's pictures with the shipped models: the app window on a group photo and an annotated photo.

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


def annotated_sample(photo: Path, out: Path) -> None:
    from app.annotate import annotate, save_image
    from app.imageio import load_image
    from app.labeler import Labeler

    labeler = Labeler()
    rgb = load_image(photo)
    result = labeler.label_image(rgb, path=photo)
    save_image(annotate(rgb, result, {m.name: m.display_name for m in labeler.models}), out)


def window_screenshot(photo: Path, out: Path, size: str, select: int | None, maps: bool = False) -> list[list[str]]:
    """Open ``photo`` in a window of ``size``, select face ``select`` (``maps``: with its saliency maps), grab
    the screen; returns the table."""
    import tkinter as tk

    from PIL import ImageGrab

    from app.gui import App

    root = tk.Tk(className="EmotionLens")
    app = App(root)
    root.geometry(f"{size}+0+0")
    if not app.wait_idle(120):
        raise SystemExit("error: the models did not load within 120 s")
    app.open_image(photo)
    if not app.wait_idle(120):
        raise SystemExit("error: labelling did not finish within 120 s")
    if select is not None:
        app.select_face(select)
    app.set_maps(maps)
    for _ in range(20):  # let Tk draw everything before the grab
        root.update()
        time.sleep(0.05)
    # The window sits at +0+0; its menu bar lies above winfo_rooty(), so grab from the screen's top.
    bbox = (0, 0, root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height())
    shot = ImageGrab.grab(bbox=bbox, xdisplay=None).convert("RGB")
    if out.suffix.lower() in (".jpg", ".jpeg"):
        shot.save(out, quality=85, optimize=True)
    else:
        shot.quantize(colors=256, method=2).save(out, optimize=True)  # a few hundred KB, not MB
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
    p.add_argument("--maps-only", action="store_true",
                   help="only docs/saliency/window.png: the window with saliency maps on (README, 'Why this label')")
    args = p.parse_args(argv)
    photo, out = Path(args.photo), Path(args.out)
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
