"""Small faces in large photos: recall and time of the Haar detector on a 24-face collage tiled 3x3.

``bald_guys.jpg`` (1986x1545, ../shared/data/group_photos) holds 24 faces that the detector finds in the
photo as it is. Tiled 3x3 with numpy (5958x4635) every face keeps its pixel size but shrinks to 2-6% of the
long side, which is a class or team photo from a current camera. Truth: the 24 boxes found on the original,
repeated on each tile; a found box counts when its IoU with a truth box is at least 0.4. Compared, in one
run: the 640 px working copy alone (the detector up to this change) and the current ``detect_faces``
(which adds a small-face pass above ``LARGE_PHOTO``), each with the eye check on, median of ``--runs``.

Wall time on a machine shared with other work is inflated by its load; the process CPU time (both of
OpenCV's threads summed) is printed beside it.

Then the smallest face found at each photo size, by each detector: the sample portrait scaled so that its
face (its Haar box) is ``k`` times the size the detector's rule predicts (Haar, ``app/detect/_haar.py``:
``max(20 px, 3%)`` of the long side up to LARGE_PHOTO, ``max(20 px, 1%)`` above; MTCNN,
``app.detect._mtcnn.min_face_size``), pasted into a flat frame, for k from 0.6 to 2.0 in steps of 0.1. Reported: the
smallest face found, and the size from which every larger step was found (near its limit the cascade's
coarse scale steps find some sizes and miss their neighbours).

Skips (exit 0) when ../shared is absent.

``--sweep`` instead times the small-face pass's scale factor (``SMALL_SCALE_FACTOR``, 1.15-1.4) together with
the eye check's (``EYE_SCALE_FACTOR``, 1.1-1.3) on the tiled photo, interleaved: recall, false boxes, faces with
an eye pair (aligned crops), seconds, as used to choose them.

``--update-docs`` writes the tables into docs/batch.md, between its ``large-photos`` (or with ``--sweep``
``large-photos-sweep``) and ``smallest-face`` markers, each with a note naming the command and the machine; the
tiled photo's table says which of the targets (``RECALL_TARGET``, ``TIME_TARGET_S``) each row meets. ``--part``
runs one of the two measurements: ``sizes`` has no timing, so it may be retaken on a busy machine.

Run: ``python benchmarks/large_photos.py [--shared ../shared] [--runs 3] [--sweep] [--part tiled|sizes]
[--update-docs]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import load_image  # noqa: E402
from app.detect import DETECTORS, detect_faces  # noqa: E402
from app.detect import _haar as D  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
SIZES = ((640, 480), (1280, 960), (1920, 1080), (2500, 1875), (4000, 3000), (6000, 4000))
SAMPLE_FACE = 101 / 512  # the sample portrait's face box side / image side (tests/test_detect.py)
RECALL_TARGET = 0.85  # the large-photo targets: recall on the tiled photo, and its seconds per photo
TIME_TARGET_S = 1.5
STEPS = np.arange(0.6, 2.01, 0.1)  # the face size as multiples of each detector's rule


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def recall(found: list[tuple[int, int, int, int]], truth: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """(truth boxes matched at IoU >= 0.4, found boxes matching none)."""
    hit = sum(any(iou(t, f) >= 0.4 for f in found) for t in truth)
    false = sum(all(iou(t, f) < 0.4 for t in truth) for f in found)
    return hit, false


def first_pass_only(gray: np.ndarray) -> list[D.Box]:
    """The detector as it was before the small-face pass: 640 px working copy, then the eye check."""
    saved = D.LARGE_PHOTO
    D.LARGE_PHOTO = 10**9
    try:
        return detect_faces(gray)
    finally:
        D.LARGE_PHOTO = saved


# (small-face pass's scale factor, eye check's scale factor): the app's pair first
SWEEP = ((1.15, 1.1), (1.2, 1.1), (1.25, 1.1), (1.3, 1.1), (1.3, 1.2), (1.3, 1.25), (1.35, 1.2), (1.35, 1.25),
         (1.4, 1.3))


def with_scale_factors(small: float, eye: float):  # noqa: ANN201 - a detector function
    """``detect_faces`` with the small-face pass's and the eye check's scale factors set for the call."""
    def run(gray: np.ndarray) -> list[D.Box]:
        saved = D.SMALL_SCALE_FACTOR, D.EYE_SCALE_FACTOR
        D.SMALL_SCALE_FACTOR, D.EYE_SCALE_FACTOR = small, eye
        try:
            return detect_faces(gray)
        finally:
            D.SMALL_SCALE_FACTOR, D.EYE_SCALE_FACTOR = saved
    return run


def predicted_min_face(long_side: int, detector: str = "haar") -> float:
    """The smallest face (px, as the sample's Haar box measures it) each detector's rule looks for."""
    if detector == "mtcnn":
        from app.detect import _mtcnn as mtcnn

        return mtcnn.min_face_size((long_side,))
    frac = D.SMALL_FACE if long_side > D.LARGE_PHOTO else D.MIN_SIZE / D.WORK_SIZE
    return max(D.MIN_SIZE, frac * long_side)


def targets_met(recall: float, seconds: float) -> str:
    """Which of the large-photo targets a row meets: "both", "recall only", "time only" or "neither"."""
    r, t = recall >= RECALL_TARGET, seconds <= TIME_TARGET_S
    return "both" if r and t else "recall only" if r else "time only" if t else "neither"


def smallest_faces(detector: str, fw: int, fh: int, sample: np.ndarray) -> tuple[float, int | None, int | None]:
    """(the rule's face size, the smallest face found, the size from which every step was found) at one photo
    size: the sample portrait scaled to each of STEPS times the rule and centred in a flat frame."""
    m = predicted_min_face(fw, detector)
    found = {}
    for k in STEPS:
        side = max(8, round(k * m / SAMPLE_FACE))
        frame = np.full((fh, fw, 3), 120, np.uint8)
        face = cv2.resize(sample, (side, side), interpolation=cv2.INTER_AREA if side < 512 else cv2.INTER_CUBIC)
        y0, x0 = max(0, (fh - side) // 2), max(0, (fw - side) // 2)
        crop = face[: fh - y0, : fw - x0]
        frame[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        found[round(k * m)] = bool(detect_faces(frame, detector=detector))
    sizes = sorted(found)
    smallest = next((f for f in sizes if found[f]), None)
    steady = next((f for i, f in enumerate(sizes) if all(found[g] for g in sizes[i:])), None)
    return m, smallest, steady


def sizes_table() -> str:
    """The smallest face found at each of SIZES by each detector, as a Markdown table."""
    lines = ["| photo size | detector | rule | smallest face found | every face found from |", "|---|---|---|---|---|"]
    sample = load_image(ROOT / "app" / "assets" / "sample.jpg")
    for fw, fh in SIZES:
        for detector in DETECTORS:
            m, smallest, steady = smallest_faces(detector, fw, fh, sample)
            low = "—" if smallest is None else f"{smallest} px"
            high = "—" if steady is None else f"{steady} px ({100 * steady / fw:.1f}%)"
            lines.append(f"| {fw}x{fh} | {detector} | {m:.0f} px ({100 * m / fw:.1f}%) | {low} | {high} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def sizes_note(command: str) -> str:
    """The line under the smallest-face table: the command and how the faces were made."""
    return (f"`{command}`: the sample portrait scaled so that its face (its Haar box) is {STEPS[0]:.1f}-"
            f"{STEPS[-1]:.1f}x each detector's rule in steps of 0.1, centred in a flat frame of each size.")


def update_docs(block: str, text: str) -> None:
    """Write ``text`` between docs/batch.md's ``block`` markers."""
    from training.report import block_file, replace_block

    page = block_file(block)
    replace_block(page, block, text)
    print(f"wrote the {block} block of {page}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="examples:\n  python benchmarks/large_photos.py --runs 3 --update-docs   "
                                "# idle machine\n  python benchmarks/large_photos.py --part sizes --update-docs\n"
                                "  python benchmarks/large_photos.py --sweep --runs 3",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s; "
                   "example: --shared /data/shared)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per detector (default: %(default)s; example: "
                   "--runs 5)")
    p.add_argument("--sweep", action="store_true", help="time the small-face pass's and the eye check's scale "
                   "factors instead (app/detect/_haar.py's SMALL_SCALE_FACTOR, EYE_SCALE_FACTOR), "
                   "e.g. --sweep --runs 3")
    p.add_argument("--part", choices=("tiled", "sizes", "all"), default="all",
                   help="tiled: recall and time on the tiled photo; sizes: the smallest face found at each photo "
                   "size (no timing); all: both (default; --sweep: tiled only). Example: --part sizes")
    p.add_argument("--update-docs", action="store_true",
                   help="also write the tables between the large-photos (--sweep: large-photos-sweep) and "
                   "smallest-face markers of docs/batch.md (example: --runs 3 --update-docs on an idle machine)")
    args = p.parse_args(argv)
    command = " ".join(["python benchmarks/large_photos.py",
                        *[a for a in (argv if argv is not None else sys.argv[1:]) if a != "--update-docs"]])
    from benchmarks.common import machine_line

    machine = machine_line(None)  # before the timings: the load average it gives is other work's, not ours
    if args.part == "sizes":
        text = sizes_table()
        if args.update_docs:
            update_docs("smallest-face", f"{text}\n\n{sizes_note(command)}")
        return 0
    src = args.shared / "data" / "group_photos" / "bald_guys.jpg"
    if not src.is_file():
        print(f"skipped: {src} not found (needs ../shared)")
        return 0
    gray = D.to_gray(load_image(src))
    h, w = gray.shape
    one = [(b.x, b.y, b.w, b.h) for b in detect_faces(gray)]
    tiled = np.tile(gray, (3, 3))
    truth = [(x + i * w, y + j * h, bw, bh) for i in range(3) for j in range(3) for x, y, bw, bh in one]
    lo, hi = min(b[2] for b in one), max(b[2] for b in one)
    photo = (f"bald_guys.jpg {w}x{h}: {len(one)} faces, {lo}-{hi} px; tiled 3x3: {tiled.shape[1]}x{tiled.shape[0]}, "
             f"{len(truth)} faces ({100 * lo / max(tiled.shape):.1f}-{100 * hi / max(tiled.shape):.1f}% of the long "
             "side)")
    print(photo)
    lines = ["| detector | faces found (IoU >= 0.4) | recall | false boxes | with an eye pair | s per photo (median) "
             "| CPU s (median) | targets met |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines))
    arms = {"640 px working copy only (before)": first_pass_only,
            "`detect_faces` with the small-face pass (now)": detect_faces}
    if args.sweep:
        arms = {f"small-face pass {sf}, eye check {ef}": with_scale_factors(sf, ef) for sf, ef in SWEEP}
    times: dict[str, list[float]] = {name: [] for name in arms}
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    results = {}
    for _ in range(args.runs):  # interleaved, so the shared machine's load hits both alike
        for name, fn in arms.items():
            t, c = time.perf_counter(), time.process_time()
            results[name] = fn(tiled)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    for name, boxes in results.items():
        hit, false = recall([(b.x, b.y, b.w, b.h) for b in boxes], truth)
        pairs = sum(1 for b in boxes if len(b.landmarks) == 2)
        sec = statistics.median(times[name])
        lines.append(f"| {name} | {hit} of {len(truth)} | {100 * hit / len(truth):.0f}% | {false} | {pairs} | "
                     f"{sec:.2f} | {statistics.median(cpu[name]):.2f} | {targets_met(hit / len(truth), sec)} |")
        print(lines[-1])
    load = f"load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    print(f"({load})" if load else "")
    if args.update_docs:
        update_docs("large-photos-sweep" if args.sweep else "large-photos",
                    "\n".join(lines) + f"\n\n`{command}`: {photo}; medians of {args.runs} interleaved runs; targets: "
                    f"recall at least {RECALL_TARGET:.0%}, at most {TIME_TARGET_S:g} s per photo; {load}. "
                    f"{machine}")
    if args.sweep or args.part == "tiled":
        return 0
    print()
    text = sizes_table()
    if args.update_docs:
        update_docs("smallest-face", f"{text}\n\n{sizes_note(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
