"""Measure how FER2013 frames its faces, so ``app/detect/_crop.py`` can cut photo faces the same way.

The models only ever saw FER2013 framing; a photo face cropped tighter or looser than that is a different
input distribution. So: upscale FER2013 images to 192x192 (the detector needs more than 48 px), run the
app's detector without eye check, and take the detected box relative to the frame:

* ``ratio`` = box side / frame side  -> the crop side for a photo box is ``box side / ratio``;
* ``dx, dy`` = (frame centre - box centre) / box side  -> where to centre the crop relative to the box.

Medians over all images with exactly one detection. Skips (exit 0) when ../shared is absent.

``--eyes`` measures the framing that ``app/detect/_align.py`` uses instead: the same detector *with* its eye check
(Haar) or its landmarks (mtcnn), on the faces with an eye pair, gives the eye midpoint (x, y) and the distance
between the eyes as fractions of the frame side, plus the eye line's tilt (FER2013 faces are upright: near 0).

Run: ``python benchmarks/crop_margin.py [--shared ../shared] [--split val] [--n 3000] [--detector mtcnn] [--eyes]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.detect import DETECTORS, detect_faces  # noqa: E402
from app.detect import _haar as D  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
SIDE = 192


def _boxes(big: np.ndarray, detector: str) -> list[tuple[float, float, float, float]]:
    if detector == "mtcnn":  # MTCNN's boxes squared as the app squares them, unclipped like the Haar candidates
        from app.detect import _mtcnn as mtcnn

        boxes, _ = mtcnn.detect(big)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        return [(float(x - s / 2), float(y - s / 2), float(s), float(s)) for x, y, s in zip(cx, cy, sides, strict=True)]
    return D.candidates(big)


def measure(images: np.ndarray, detector: str = "haar") -> dict[str, float]:
    """Detected-box geometry relative to the frame over ``images`` (N, 48, 48) uint8."""
    ratios, dxs, dys = [], [], []
    for im in tqdm(images, desc=f"{detector} on FER2013", unit="img", leave=False):
        big = cv2.resize(im, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        boxes = _boxes(big, detector)
        if len(boxes) != 1:
            continue
        x, y, w, h = boxes[0]
        ratios.append(w / SIDE)
        dxs.append((SIDE / 2 - (x + w / 2)) / w)
        dys.append((SIDE / 2 - (y + h / 2)) / h)
    r = np.array(ratios)
    return {
        "n": len(images),
        "detected": len(r),
        "ratio_median": float(np.median(r)),
        "ratio_p25": float(np.percentile(r, 25)),
        "ratio_p75": float(np.percentile(r, 75)),
        "dx_median": float(np.median(dxs)),
        "dy_median": float(np.median(dys)),
    }


def measure_eyes(images: np.ndarray, detector: str = "haar") -> dict[str, float]:
    """Eye framing over ``images`` (N, 48, 48) uint8, through the app's own detector (Haar: with its eye check)."""
    mx, my, dist, tilt = [], [], [], []
    n_faces = 0
    for im in tqdm(images, desc=f"{detector} eyes on FER2013", unit="img", leave=False):
        big = cv2.resize(im, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        boxes = detect_faces(big if detector == "haar" else np.dstack([big] * 3), detector=detector)
        if len(boxes) != 1:
            continue
        n_faces += 1
        if len(boxes[0].landmarks) < 2:
            continue
        (lx, ly), (rx, ry) = boxes[0].landmarks[:2]
        mx.append((lx + rx) / 2 / SIDE)
        my.append((ly + ry) / 2 / SIDE)
        dist.append(float(np.hypot(rx - lx, ry - ly)) / SIDE)
        tilt.append(float(np.degrees(np.arctan2(ry - ly, rx - lx))))
    d = np.array(dist)
    return {
        "n": len(images), "faces": n_faces, "pairs": len(d),
        "x_median": float(np.median(mx)), "y_median": float(np.median(my)),
        "dist_median": float(np.median(d)), "dist_p25": float(np.percentile(d, 25)),
        "dist_p75": float(np.percentile(d, 75)), "tilt_median": float(np.median(tilt)),
        "tilt_p25": float(np.percentile(tilt, 25)), "tilt_p75": float(np.percentile(tilt, 75)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--n", type=int, default=3000, help="images to measure (default: %(default)s)")
    p.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                   help="whose boxes to measure (default: %(default)s; mtcnn gives app/detect/_mtcnn.py's "
                   "CROP_SCALE)")
    p.add_argument("--eyes", action="store_true", help="measure the eye framing app/detect/_align.py uses")
    args = p.parse_args(argv)
    data_dir = args.shared / "data" / "fer2013"
    if not data_dir.is_dir():
        print(f"skipped: {data_dir} not found (needs ../shared)")
        return 0
    from training.datasets import load_fer2013

    cv2.setNumThreads(1)
    images = load_fer2013(data_dir).split(args.split).images[: args.n]
    if args.eyes:
        e = measure_eyes(images, args.detector)
        print(f"{args.detector} on FER2013 {args.split}: {e['faces']} of {e['n']} images with exactly one face at "
              f"{SIDE}x{SIDE}, {e['pairs']} with an eye pair")
        print(f"eye midpoint / frame side: x {e['x_median']:.3f}, y {e['y_median']:.3f} (medians)")
        print(f"eye distance / frame side: median {e['dist_median']:.3f} "
              f"(quartiles {e['dist_p25']:.3f}-{e['dist_p75']:.3f})")
        print(f"eye line tilt: median {e['tilt_median']:+.1f} deg (quartiles {e['tilt_p25']:+.1f} to "
              f"{e['tilt_p75']:+.1f})")
        return 0
    m = measure(images, args.detector)
    print(f"{args.detector} on FER2013 {args.split}: {m['detected']} of {m['n']} images with exactly one face at "
          f"{SIDE}x{SIDE}")
    quartiles = f"{m['ratio_p25']:.3f}-{m['ratio_p75']:.3f}"
    print(f"box side / frame side: median {m['ratio_median']:.3f} (quartiles {quartiles})")
    print(f"frame centre - box centre, in box sides: dx {m['dx_median']:+.3f}, dy {m['dy_median']:+.3f}")
    print(f"=> crop side = box side x {1 / m['ratio_median']:.3f}, i.e. margin "
          f"{(1 / m['ratio_median'] - 1) / 2:.3f} of the box on each side")
    return 0


if __name__ == "__main__":
    sys.exit(main())
