"""Retake README's pictures with the shipped models: the app window and the annotated sample photo.

The percentages in those pictures are the models' real output, so they are regenerated (never edited) each
time the zoo changes. Needs an X display for the window; under a headless machine run it through Xvfb::

    xvfb-run -s "-screen 0 1280x800x24" python docs/make_figures.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def annotated_sample(photo: Path, out: Path) -> None:
    from app.annotate import annotate, save_image
    from app.imageio import load_image
    from app.labeler import Labeler

    labeler = Labeler()
    rgb = load_image(photo)
    result = labeler.label_image(rgb, path=photo)
    save_image(annotate(rgb, result, {m.name: m.display_name for m in labeler.models}), out)


def window_screenshot(photo: Path, out: Path, size: str = "1280x760") -> list[list[str]]:
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
    for _ in range(20):  # let Tk draw everything before the grab
        root.update()
        time.sleep(0.05)
    # The window sits at +0+0; its menu bar lies above winfo_rooty(), so grab from the screen's top.
    bbox = (0, 0, root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height())
    ImageGrab.grab(bbox=bbox, xdisplay=None).save(out)
    rows = app.face_rows()
    app.quit()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python docs/make_figures.py",
        description="Regenerate docs/screenshot.png (the app window labelling a photo) and "
        "docs/sample-annotated.jpg (the batch annotation of the same photo) with the models in models_zoo/.",
        epilog='example: xvfb-run -s "-screen 0 1280x800x24" python docs/make_figures.py',
    )
    p.add_argument("--photo", default=str(ROOT / "app" / "assets" / "sample.jpg"),
                   help="photo to show (default: the bundled sample)")
    p.add_argument("--out", default=str(ROOT / "docs"), help="folder for the two pictures (default: docs/)")
    args = p.parse_args(argv)
    photo, out = Path(args.photo), Path(args.out)
    annotated_sample(photo, out / "sample-annotated.jpg")
    for row in window_screenshot(photo, out / "screenshot.png"):
        print(" | ".join(row))
    print(f"wrote {out / 'screenshot.png'} and {out / 'sample-annotated.jpg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
