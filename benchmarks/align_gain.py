"""What aligned crops change: the zoo's accuracy on tilted FER2013 faces, cropped with and without alignment.

Each FER2013 validation (PublicTest; never PrivateTest) face is upscaled to ``FACE`` px, turned by an angle
drawn uniformly from +-[lo, hi] degrees and pasted into a ``FRAME`` x ``FRAME`` frame of mid-grey noise,
then found by the app's own pipeline (``detect_faces``, eye check on) and cropped twice by ``crop_face``:
``align=False`` (the box crop) and ``align=True`` (eyes level, FER framing; falls back to the box crop
when the eye check found fewer than two eyes). The detections are the same for both, so the difference is
the crop alone. A third crop, ``true tilt``, turns the box crop level by the angle the face was pasted at:
what alignment would give with perfect landmarks (the eye-pair estimate's error is the rest). Rows: the
angle band, faces found (a box whose centre lies within a quarter frame of the pasted face's), of those how
many had an eye pair and how far its tilt is from the true one, and the ensemble's accuracy on the found faces each way.
Upright faces (0 degrees) are the control: alignment must not hurt them.

Skips (exit 0) when ../shared is absent.

``--update-docs`` writes the table into docs/batch.md, between the ``align-gain-haar`` or ``align-gain-mtcnn``
markers (by ``--detector``), with a note naming the command, the faces, the ensemble's accuracy on the same faces
untouched (48 px as FER2013 gives them, no detection: what tilt and framing are measured against) and whether the
alignment target (``GAIN_TARGET`` points on the +-10-30 degree faces) is met.

Run: ``python benchmarks/align_gain.py [--shared ../shared] [--n 1000] [--zoo models_zoo] [--detector haar]
[--update-docs]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.detect import DETECTORS, crop_face, detect_faces  # noqa: E402
from app.detect._align import eye_angle  # noqa: E402
from app.detect._crop import CROP_SCALE  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
FACE, FRAME = 160, 320
BANDS = ((0, 0), (10, 20), (20, 30), (10, 30))
GAIN_TARGET = 5.0  # points of accuracy alignment should win on the +-10-30 degree faces (the alignment target)
DOCS_BLOCK = "align-gain-{detector}"


def tilted_scene(face48: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """``face48`` upscaled to FACE px, turned ``angle`` degrees (counter-clockwise) and pasted mid-frame."""
    frame = np.clip(rng.normal(128, 20, (FRAME, FRAME)), 0, 255).astype(np.uint8)
    big = cv2.resize(face48, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    m = cv2.getRotationMatrix2D((FACE / 2, FACE / 2), angle, 1.0)
    m[:, 2] += (FRAME - FACE) / 2
    cv2.warpAffine(big, m, (FRAME, FRAME), dst=frame, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return frame


def level_by(gray: np.ndarray, box, angle: float, scale: float = CROP_SCALE) -> np.ndarray:  # noqa: ANN001
    """The box crop (``scale`` x the box, 48x48) turned ``angle`` degrees counter-clockwise about its centre."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, 48 / (max(box.w, box.h) * scale))
    m[:, 2] += (24 - cx, 24 - cy)
    return cv2.warpAffine(gray, m, (48, 48), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def run(images: np.ndarray, labels: np.ndarray, band: tuple[int, int], labeler, seed: int,  # noqa: ANN001
        detector: str = DETECTORS[0]) -> dict:
    rng = np.random.default_rng(seed)
    box_scale = CROP_SCALE
    if detector == "mtcnn":  # MTCNN boxes have their own measured margin (app/detect/_mtcnn.py)
        from app.detect import _mtcnn as mtcnn

        box_scale = mtcnn.CROP_SCALE
    plain, aligned, oracle, truth = [], [], [], []
    pairs = 0
    tilt_err: list[float] = []
    for im, y in zip(images, labels, strict=True):
        angle = float(rng.uniform(*band)) * (1 if rng.random() < 0.5 else -1)
        scene = tilted_scene(im, angle, rng)
        found = detect_faces(scene if detector == "haar" else np.dstack([scene] * 3), detector=detector)
        near = [b for b in found
                if abs(b.x + b.w / 2 - FRAME / 2) < FRAME / 4 and abs(b.y + b.h / 2 - FRAME / 2) < FRAME / 4]
        if not near:
            continue
        b = max(near, key=lambda b: b.w)
        if len(b.landmarks) >= 2:
            pairs += 1
            # The face was turned `angle` degrees counter-clockwise: its eye line reads -angle in image terms.
            tilt_err.append(abs(eye_angle(*b.landmarks[:2]) + angle))
        plain.append(crop_face(scene, b, (48, 48), scale=box_scale, align=False))
        aligned.append(crop_face(scene, b, (48, 48), align=True))
        oracle.append(level_by(scene, b, -angle, box_scale))
        truth.append(int(y))
    out = {"n": len(images), "found": len(truth), "pairs": pairs,
           "tilt_err": float(np.median(tilt_err)) if tilt_err else float("nan")}
    if truth:
        t = np.array(truth)
        for key, crops in (("plain", plain), ("aligned", aligned), ("oracle", oracle)):
            _, ens = labeler.classify(np.stack(crops))
            out[key] = float(np.mean(np.argmax(ens, axis=1) == t))
    return out


HEADER = ("| tilt | faces found | with eye pair | eye-pair tilt error (median) | box crop | aligned crop | gain "
          "(points) | true tilt, levelled | its gain |\n|---|---|---|---|---|---|---|---|---|")


def band_name(band: tuple[int, int]) -> str:
    return "0° (upright)" if band == (0, 0) else f"±{band[0]}-{band[1]}°"


def table_row(band: tuple[int, int], r: dict) -> str:
    """One band's row of the table: faces found, eye pairs, tilt error, the three crops' accuracies and gains."""
    if not r["found"]:
        return f"| {band_name(band)} | 0 of {r['n']} | 0 | — | — | — | — | — | — |"
    return (f"| {band_name(band)} | {r['found']} of {r['n']} | {r['pairs']} | {r['tilt_err']:.1f}° | "
            f"{100 * r['plain']:.1f}% | {100 * r['aligned']:.1f}% | {100 * (r['aligned'] - r['plain']):+.1f} | "
            f"{100 * r['oracle']:.1f}% | {100 * (r['oracle'] - r['plain']):+.1f} |")


def docs_note(command: str, results: dict[tuple[int, int], dict], untouched: float, n: int, models: int) -> str:
    """The line under the table: what was run, the untouched faces' accuracy, and the target's verdict."""
    r = results.get((10, 30))
    gain = 100 * (r["aligned"] - r["plain"]) if r and r["found"] else None
    verdict = ("not measured" if gain is None else
               f"{'met' if gain >= GAIN_TARGET else 'not met'} ({gain:+.1f} on {r['found']} faces)")
    return (f"`{command}`: the first {n} FER2013 PublicTest faces per band at {FACE} px in {FRAME}x{FRAME} noise "
            f"frames, ensemble of {models} models; the same {n} faces untouched (48 px, upright, no detection): "
            f"{100 * untouched:.1f}%. Alignment target, a gain of at least {GAIN_TARGET:g} points on the ±10-30° "
            f"faces: {verdict}.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="examples:\n  python benchmarks/align_gain.py --n 1000\n"
                                "  python benchmarks/align_gain.py --n 1000 --detector mtcnn --update-docs",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s; "
                   "example: --shared /data/shared)")
    p.add_argument("--n", type=int, default=1000, help="validation faces per angle band (default: %(default)s; "
                   "example: --n 500)")
    p.add_argument("--zoo", type=Path, default=None, help="model folder (default: the bundled zoo; example: --zoo "
                   "models_zoo_ferplus)")
    p.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0], help="face detector (default: %(default)s; "
                   "example: --detector mtcnn)")
    p.add_argument("--seed", type=int, default=0, help="angle and background noise seed (default: %(default)s; "
                   "example: --seed 1)")
    p.add_argument("--update-docs", action="store_true",
                   help="also write the table between the align-gain-DETECTOR markers of docs/batch.md (example: "
                   "--n 1000 --detector mtcnn --update-docs)")
    args = p.parse_args(argv)
    data_dir = args.shared / "data" / "fer2013"
    if not data_dir.is_dir():
        print(f"skipped: {data_dir} not found (needs ../shared)")
        return 0
    cv2.setNumThreads(1)
    from app.models import Labeler
    from training.datasets import load_fer2013

    val = load_fer2013(data_dir).split("val")
    images, labels = val.images[: args.n], val.labels[: args.n]
    labeler = Labeler(zoo_dir=args.zoo)
    print(f"FER2013 PublicTest, first {len(images)} faces at {FACE} px in {FRAME}x{FRAME} frames, "
          f"ensemble of {len(labeler.models)} models, detector {args.detector}")
    print(HEADER)
    results, rows = {}, []
    for band in BANDS:
        results[band] = run(images, labels, band, labeler, args.seed, args.detector)
        rows.append(table_row(band, results[band]))
        print(rows[-1], flush=True)
    _, ens = labeler.classify(images)  # the same faces as FER2013 gives them: no tilt, no detection, no crop
    untouched = float(np.mean(np.argmax(ens, axis=1) == labels))
    command = " ".join(["python benchmarks/align_gain.py",
                        *[a for a in (argv if argv is not None else sys.argv[1:]) if a != "--update-docs"]])
    note = docs_note(command, results, untouched, len(images), len(labeler.models))
    print(note)
    if args.update_docs:
        from training.report import block_file, replace_block

        block = DOCS_BLOCK.format(detector=args.detector)
        page = block_file(block)
        replace_block(page, block, "\n".join([HEADER, *rows]) + "\n\n" + note)
        print(f"wrote the {block} block of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
