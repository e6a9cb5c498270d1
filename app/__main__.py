"""Entry point: ``python -m app [IMAGE]`` opens the window; ``--self-test`` labels the bundled sample photo and
sample clip; ``--webcam [INDEX]`` labels a camera live (in the window, or ``--headless`` on the console,
app.video._live).

The self-test never imports tkinter, so it works on a server, in CI and in a frozen (PyInstaller) build
without a display: it is the quickest proof that the models load and give sensible answers.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import time
from pathlib import Path
from typing import Any

from app.core import one_line


def face_line(face: Any, models: list[Any]) -> str:
    """``face 1 (x=..,y=..,w=..,h=..): CNN happy 91% · FF ... · ensemble happy 80%`` for one face."""
    b = face.box
    parts = []
    for m in models:
        p = face.predictions.get(m.name)
        if p is not None:
            parts.append(f"{m.display_name} {p.label} {100 * p.confidence:.0f}%")
    e = face.ensemble
    parts.append(f"ensemble {e.label} {100 * e.confidence:.0f}%")
    return f"face {face.index} (x={b.x},y={b.y},w={b.w},h={b.h}): " + " · ".join(parts)


def sample_photo_path() -> Path:
    """The bundled sample photo, found the same way from a checkout, a wheel or a PyInstaller bundle."""
    from app.core import resource_path

    return Path(resource_path("app", "assets", "sample.jpg"))


def sample_clip_path() -> Path:
    """The sample clip (app/video/_sample_clip.py: 1.5 s pan and zoom over the sample photo, made on first use)."""
    from app.video import sample_clip

    return sample_clip()


def clip_self_test(labeler: Any, path: Path, eye_check: bool, tta: bool, detector: str) -> str:
    """Label ``path`` with tracked faces (``app.video.label_video``) and return the self-test's clip line:
    ``clip sample_clip.mp4 (320x240): 45 frames, 1 track: track 1 happy 81% smoothed (45 frames) in 640 ms``,
    each track's label being its smoothed ensemble at its last frame. Raises ``ValueError`` (``VideoError``)
    for a clip that cannot be decoded, ``ImportError`` without PyAV, ``LookupError`` when no face is tracked."""
    from app.video import VideoOptions, label_video, probe

    t0 = time.perf_counter()
    info = probe(path)
    n = 0
    tracks: dict[int, tuple[int, Any]] = {}  # track -> (frames seen, last smoothed prediction)
    for frame in label_video(labeler, path, VideoOptions(detector=detector, eye_check=eye_check, tta=tta)):
        n += 1
        for face in frame.faces:
            tracks[face.track] = (tracks.get(face.track, (0, None))[0] + 1, face.smooth)
    if not tracks:
        raise LookupError(f"no face tracked in {path} ({n} frames decoded)")
    parts = [f"track {t} {p.label} {100 * p.confidence:.0f}% smoothed ({k} frames)"
             for t, (k, p) in sorted(tracks.items())]
    return (f"clip {path.name} ({info.width}x{info.height}): {n} frames, {len(tracks)} "
            f"track{'s' if len(tracks) != 1 else ''}: {', '.join(parts)} in {1000 * (time.perf_counter() - t0):.0f} ms")


def self_test(image: str | os.PathLike | None = None, zoo_dir: str | os.PathLike | None = None,
              eye_check: bool = True, tta: bool = False, detector: str | None = None) -> int:
    """Load all models, label the sample (or ``image``), print a line per face; exit 0 iff a face is found.

    Without ``image`` it then labels the sample clip as a video (decoding, tracking, smoothing: the frozen app's
    proof that PyAV came along) and prints one ``clip ...`` line; exit 1 if the clip cannot be decoded or no
    face is tracked in it."""
    t0 = time.perf_counter()
    from app.core import ImageError
    from app.detect import DETECTORS
    from app.models import Labeler, ZooError

    try:
        labeler = Labeler(zoo_dir=zoo_dir)
    except ZooError as e:
        print(f"emotionlens: self-test failed: {one_line(e, limit=None)}", file=sys.stderr)
        return 1
    t_load = time.perf_counter() - t0
    path = Path(image) if image is not None else sample_photo_path()
    try:
        result = labeler.label_file(path, eye_check=eye_check, tta=tta, detector=detector or DETECTORS[0])
    except (ImageError, RuntimeError) as e:  # RuntimeError: a missing or corrupt detector file
        print(f"emotionlens: self-test failed: {one_line(e, limit=None)}", file=sys.stderr)
        return 1
    if not result.faces:
        print(f"emotionlens: self-test failed: no face found in {path}", file=sys.stderr)
        return 1
    for face in result.faces:
        print(face_line(face, labeler.models))
    n = len(result.faces)
    w, h = result.size if result.size else ("?", "?")
    total = time.perf_counter() - t0
    print(
        f"{n} face{'s' if n != 1 else ''} in {path.name} ({w}x{h}) with {len(labeler.models)} models"
        f" trained on {labeler.label_source}"
        f"{' (flip TTA)' if tta else ''}"
        f"{f', detector {detector}' if detector not in (None, DETECTORS[0]) else ''}: "
        f"load {1000 * t_load:.0f} ms, detection {1000 * result.detect_seconds:.0f} ms, "
        f"labelling {1000 * result.label_seconds:.0f} ms, total {1000 * total:.0f} ms"
    )
    if image is not None:
        return 0
    try:
        clip = sample_clip_path()
        line = clip_self_test(labeler, clip, eye_check, tta, detector or DETECTORS[0])
    except ImportError as e:
        print(f"emotionlens: self-test failed: cannot decode video, PyAV is missing ({one_line(e, limit=None)})",
              file=sys.stderr)
        return 1
    except (ValueError, LookupError, RuntimeError, OSError) as e:  # ValueError: app.video.VideoError
        print(f"emotionlens: self-test failed: {one_line(e, limit=None)}", file=sys.stderr)
        return 1
    print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, kept separate so tests and docs can show the help text."""
    ap = argparse.ArgumentParser(
        prog="emotionlens",
        description="Find every face in a photo and label its emotion with each model side by side.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  emotionlens photo.jpg                          open the window with a photo\n"
        "  emotionlens --self-test                        label the bundled sample photo and clip, no window\n"
        "  emotionlens --webcam                           label camera 0 live in the window\n"
        "  emotionlens --webcam 1 --headless --record live.csv\n"
        "                                                 camera 1 without a window, rows to live.csv; Ctrl+C stops\n"
        "  emotionlens --webcam clip.mp4 --headless --seconds 10\n"
        "                                                 play a video file live (frames dropped when labelling is\n"
        "                                                 slower than the clip), stop after 10 s",
    )
    ap.add_argument("--version", action="store_true",
                    help="print the version, the zoo's folder and what its models were trained on, then exit. "
                    "Example: emotionlens --version --zoo models_zoo")
    ap.add_argument("image", nargs="?", help="photo to open at start (with --self-test: label it instead of "
                    "the bundled sample)")
    ap.add_argument("--zoo", metavar="DIR", help="model folder with manifest.json (default: the bundled zoo)")
    ap.add_argument("--no-eye-check", action="store_true",
                    help="do not require an eye inside each face box (finds more faces, more false ones)")
    ap.add_argument("--tta", action="store_true",
                    help="flip test-time augmentation: label each face and its mirror image and combine them; "
                    "slightly more accurate (README's results table, 'flip TTA' column), labelling takes about "
                    "twice as long. In the window: Options > Flip test-time augmentation")
    from app.detect import DETECTORS

    ap.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                    help=f"face detector: {', '.join(DETECTORS)} (default: %(default)s). haar: OpenCV's frontal-face "
                    "cascade verified by an eye, fast; a landmark detector also finds tilted and partly covered "
                    "faces. Example: emotionlens --self-test --detector " + DETECTORS[-1])
    ap.add_argument("--self-test", action="store_true",
                    help="label the bundled sample photo without opening a window, print one line per face, then "
                    "label the bundled sample clip (decoding, tracking, smoothing) and print one line for it; "
                    "with IMAGE: that photo only")
    ap.add_argument("--webcam", nargs="?", const="0", metavar="INDEX",
                    help="label a camera live: boxes and labels at the camera's rate, frames dropped rather than "
                    "falling behind (default camera 0). INDEX: the camera's number (Linux /dev/videoINDEX, macOS "
                    "avfoundation, Windows DirectShow in FFmpeg's order), a device path or name "
                    "(--webcam \"Integrated Camera\"), or a video file, played live against the clock. "
                    "Example: emotionlens --webcam 0 --headless --record live.csv")
    ap.add_argument("--record", metavar="CSV",
                    help="with --webcam: write frames.csv rows (one per tracked face per labelled frame) to CSV "
                    "as they come (the file is replaced)")
    ap.add_argument("--headless", action="store_true",
                    help="with --webcam: no window; print the processed frames/s once a second until Ctrl+C "
                    "(or --seconds, or the end of a video file)")
    ap.add_argument("--seconds", type=float, metavar="S",
                    help="with --webcam --headless: stop after S seconds. Example: emotionlens --webcam "
                    "--headless --seconds 30 --record live.csv")
    return ap


def version_text(zoo_dir: str | os.PathLike | None = None) -> str:
    """``emotionlens 0.2.0 · zoo models_zoo: CNN, FF, ResNet18 trained on FER+ votes`` (reads the manifest only:
    no model is loaded, so it answers even where ONNX Runtime cannot start)."""
    from app import __version__
    from app.models import ZooError, default_zoo_dir, label_source, load_manifest

    zoo = Path(zoo_dir) if zoo_dir is not None else default_zoo_dir()
    try:
        _, models = load_manifest(zoo)
    except ZooError as e:
        return f"emotionlens {__version__} · zoo unusable: {one_line(e, limit=None)}"
    names = ", ".join(m.display_name for m in models)
    return f"emotionlens {__version__} · zoo {zoo}: {names} trained on {label_source(models)}"


def webcam_window(args: argparse.Namespace) -> int:
    """``--webcam`` without ``--headless``: the window in webcam mode, when the window has one
    (``app.gui.window.run_gui`` taking ``webcam``); otherwise one line pointing at ``--headless``."""
    try:
        from app.gui.window import run_gui  # type: ignore[attr-defined]
    except ImportError:
        run_gui = None
    params = inspect.signature(run_gui).parameters if callable(run_gui) else {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "webcam" not in params and not takes_any:
        print("emotionlens: the window has no webcam view in this build; use --webcam with --headless",
              file=sys.stderr)
        return 2
    spec = args.webcam
    wanted = {"image": args.image, "zoo_dir": args.zoo, "eye_check": not args.no_eye_check, "tta": args.tta,
              "detector": args.detector, "webcam": int(spec) if spec.strip().isdigit() else spec,
              "record": args.record}
    return run_gui(**{k: v for k, v in wanted.items() if takes_any or k in params})


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``emotionlens``); returns the process exit code."""
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a frozen build on a legacy console must not die on "·"
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")
    if args.version:
        print(version_text(args.zoo))
        return 0
    eye_check = not args.no_eye_check
    if args.webcam is None and (args.record or args.headless or args.seconds is not None):
        build_parser().error("--record, --headless and --seconds go with --webcam")
    if args.seconds is not None and not args.seconds > 0:
        build_parser().error(f"--seconds must be a positive number, not {args.seconds}")
    if args.webcam is not None and args.self_test:
        build_parser().error("--webcam and --self-test cannot go together")
    if args.webcam is not None and args.headless:
        from app.batch import headless
        from app.video import VideoOptions

        opts = VideoOptions(detector=args.detector, eye_check=eye_check, tta=args.tta)
        return headless(args.webcam, args.record, args.seconds, args.zoo, opts)
    if args.webcam is not None:
        return webcam_window(args)
    if args.self_test:
        return self_test(args.image, args.zoo, eye_check, args.tta, args.detector)
    from app.gui import run  # tkinter only from here on

    return run(args.image, args.zoo, eye_check, args.tta, detector=args.detector)


if __name__ == "__main__":
    sys.exit(main())
