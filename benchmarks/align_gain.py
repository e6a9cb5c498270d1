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

Run: ``python benchmarks/align_gain.py [--shared ../shared] [--n 1000] [--zoo models_zoo] [--detector haar]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.align import eye_angle  # noqa: E402
from app.crop import CROP_SCALE, crop_face  # noqa: E402
from app.detect import DETECTORS, detect_faces  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
FACE, FRAME = 160, 320
BANDS = ((0, 0), (10, 20), (20, 30), (10, 30))


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
    if detector == "mtcnn":  # MTCNN boxes have their own measured margin (app/mtcnn.py)
        from app import mtcnn

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="example: python benchmarks/align_gain.py --n 1000")
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s)")
    p.add_argument("--n", type=int, default=1000, help="validation faces per angle band (default: %(default)s)")
    p.add_argument("--zoo", type=Path, default=None, help="model folder (default: the bundled zoo)")
    p.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0], help="face detector (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="angle and background noise seed (default: %(default)s)")
    args = p.parse_args(argv)
    data_dir = args.shared / "data" / "fer2013"
    if not data_dir.is_dir():
        print(f"skipped: {data_dir} not found (needs ../shared)")
        return 0
    cv2.setNumThreads(1)
    from app.labeler import Labeler
    from training.datasets import load_fer2013

    val = load_fer2013(data_dir).split("val")
    images, labels = val.images[: args.n], val.labels[: args.n]
    labeler = Labeler(zoo_dir=args.zoo)
    print(f"FER2013 PublicTest, first {len(images)} faces at {FACE} px in {FRAME}x{FRAME} frames, "
          f"ensemble of {len(labeler.models)} models, detector {args.detector}")
    print("| tilt (deg) | faces found | with eye pair | eye-pair tilt error (median deg) | ensemble acc., box crop "
          "| aligned crop | gain (points) | true tilt, levelled | its gain |")
    print("|---|---|---|---|---|---|---|---|---|")
    for band in BANDS:
        r = run(images, labels, band, labeler, args.seed, args.detector)
        name = "0 (upright)" if band == (0, 0) else f"+-{band[0]}-{band[1]}"
        print(f"| {name} | {r['found']} of {r['n']} | {r['pairs']} | {r['tilt_err']:.1f} | {100 * r['plain']:.1f}% | "
              f"{100 * r['aligned']:.1f}% | {100 * (r['aligned'] - r['plain']):+.1f} | {100 * r['oracle']:.1f}% | "
              f"{100 * (r['oracle'] - r['plain']):+.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
