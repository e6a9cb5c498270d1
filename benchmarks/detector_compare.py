"""Haar and MTCNN side by side on the same photos: README's "Two detectors" table, and app/detect/_mtcnn.py's constants.

Parts (``--part``, default all but ``sweep``); skips with a message and exit status 0 without ../shared:

* ``table``: per folder (../shared/data/photos, ../shared/data/group_photos, the bundled sample): faces found,
  missed, false boxes, median ms per photo (median of ``--repeats`` runs of each photo, then the median over
  the folder), and recall at IoU >= 0.4 on group_photos/faces.json's hand-annotated boxes. Where a photo has
  annotated boxes, missed and false come from matching the boxes (IoU >= 0.4, greedy, best first); otherwise
  from the count range faces.json gives (``faces`` to ``max``).
* ``large``: a 1920x1080 photo (two_people.jpg resized) timed, and bald_guys.jpg tiled 3x3 (5958x4635, every
  face the same pixel size as in the original): boxes found and the share of the detector's own boxes on the
  original found again in every tile (IoU >= 0.4), with the seconds per photo.
* ``rotated``: every photo of both folders and the sample turned in plane by -30, -15, +15 and +30 degrees
  (canvas grown so nothing is cut): photos with the right count, faces found of those expected.
* ``covered``: the same photos with each face's mouth and chin covered by a patch of the face's own mean
  colour (a hand over the mouth; placed from MTCNN's landmarks on the clean photo): faces found.
* ``sweep`` (slow, not in ``all``): MTCNN's thresholds one stage at a time and the min-face floor, on both
  folders plus the tiled photo's timing, as used to choose app/detect/_mtcnn.py's constants.
* ``figures``: docs/detectors/*.jpg, the examples README shows (both detectors' boxes; MTCNN's landmarks).

``--update-docs`` writes what ran into docs/batch.md, each between its markers with a note naming the command
and the machine: ``table`` -> ``detector-table``, ``large`` -> ``detector-large`` (with the time targets,
``TARGETS_S``), ``rotated`` and ``covered`` together -> ``detector-rotated`` (one table; counts only, no timing).

Run: ``python benchmarks/detector_compare.py [--shared ../shared] [--part table --part large] [--repeats 3]
[--update-docs]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import Box, load_image  # noqa: E402
from app.detect import DETECTORS, detect_faces  # noqa: E402
from app.detect import _mtcnn as mtcnn  # noqa: E402

DEFAULT_SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "app" / "assets" / "sample.jpg"
IOU = 0.4
ANGLES = (-30, -15, 15, 30)
PARTS = ("table", "large", "rotated", "covered", "figures", "sweep")
FIGURES = ROOT / "docs" / "detectors"
# The detectors' time targets, seconds per photo: a 1080p photo, and the tiled 6000 px crowd photo
TARGETS_S = {"1080p": 0.060, "tiled": 1.5}

Detect = Callable[[np.ndarray], list[Box]]


def detector(name: str) -> Detect:
    return lambda rgb: detect_faces(rgb, detector=name)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match(found: list[tuple], truth: list[tuple], threshold: float = IOU) -> int:
    """Pairs of (found, true) boxes with IoU >= ``threshold``, matched greedily from the best overlap."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_f, used_t, n = set(), set(), 0
    for v, i, j in pairs:
        if v < threshold:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            n += 1
    return n


def photo_sets(shared: Path) -> dict[str, list[tuple[Path, dict]]]:
    """Folder name -> [(photo, its faces.json entry)], plus the sample (one face)."""
    out = {}
    for folder in ("photos", "group_photos"):
        meta = json.loads((shared / "data" / folder / "faces.json").read_text(encoding="utf-8"))
        out[folder] = [(shared / "data" / folder / k, v) for k, v in meta.items() if not k.startswith("_")]
    out["sample"] = [(SAMPLE, {"faces": 1, "max": 1})]
    return out


def score(boxes: list[Box], want: dict) -> dict[str, int]:
    """found/missed/false for one photo; ``annotated``/``matched`` where faces.json has boxes."""
    found = [(b.x, b.y, b.w, b.h) for b in boxes]
    if want.get("boxes"):
        m = match(found, [tuple(t) for t in want["boxes"]])
        return {"found": len(found), "missed": len(want["boxes"]) - m, "false": len(found) - m,
                "annotated": len(want["boxes"]), "matched": m}
    return {"found": len(found), "missed": max(0, want["faces"] - len(found)),
            "false": max(0, len(found) - want["max"]), "annotated": 0, "matched": 0}


CPU_TIME = False  # --threads 1: time the process's CPU seconds, which other processes' load does not inflate


def timed(fn: Detect, rgb: np.ndarray, repeats: int) -> tuple[list[Box], float]:
    """The boxes and the median seconds of ``repeats`` runs after one warm-up run."""
    clock = time.process_time if CPU_TIME else time.perf_counter
    boxes = fn(rgb)
    times = []
    for _ in range(repeats):
        t = clock()
        fn(rgb)
        times.append(clock() - t)
    return boxes, statistics.median(times)


def part_table(sets: dict, repeats: int) -> list[str]:
    lines = ["| photos | detector | faces found | missed | false boxes | right count | recall at IoU >= 0.4 "
             "(annotated) | ms per photo |", "|---|---|---|---|---|---|---|---|"]
    for folder, photos in sets.items():
        images = [(load_image(p), want) for p, want in photos]
        totals = {d: {"found": 0, "missed": 0, "false": 0, "annotated": 0, "matched": 0, "right": 0, "ms": []}
                  for d in DETECTORS}
        for rgb, want in images:
            for d in DETECTORS:  # interleaved, so load from other processes hits both alike
                boxes, sec = timed(detector(d), rgb, repeats)
                s = score(boxes, want)
                for k, v in s.items():
                    totals[d][k] += v
                totals[d]["right"] += int(want["faces"] <= s["found"] <= want["max"])
                totals[d]["ms"].append(1000 * sec)
        for d in DETECTORS:
            t = totals[d]
            recall = f"{100 * t['matched'] / t['annotated']:.0f}% ({t['matched']}/{t['annotated']})" \
                if t["annotated"] else "—"
            lines.append(f"| {folder} ({len(images)}) | {d} | {t['found']} | {t['missed']} | {t['false']} | "
                         f"{t['right']}/{len(images)} | {recall} | {statistics.median(t['ms']):.0f} |")
    return lines


def tiled(rgb: np.ndarray, n: int = 3) -> np.ndarray:
    return np.ascontiguousarray(np.tile(rgb, (n, n, 1)))


def _target(sec: float, target: float) -> str:
    return f"{target:g} | {'yes' if sec <= target else 'no'}"


def part_large(shared: Path, repeats: int) -> list[str]:
    lines = ["| photo | detector | result | seconds per photo | target | met |", "|---|---|---|---|---|---|"]
    two = load_image(shared / "data" / "photos" / "two_people.jpg")
    hd = cv2.resize(two, (1920, 1080), interpolation=cv2.INTER_AREA)
    bald = load_image(shared / "data" / "group_photos" / "bald_guys.jpg")
    big = tiled(bald)
    H, W = bald.shape[:2]
    for d in DETECTORS:
        boxes, sec = timed(detector(d), hd, max(repeats, 5))
        lines.append(f"| two_people.jpg at 1920x1080 | {d} | {len(boxes)} faces | {sec:.3f} | "
                     f"{_target(sec, TARGETS_S['1080p'])} |")
    for d in DETECTORS:
        ref = [(b.x + i * W, b.y + j * H, b.w, b.h) for b in detector(d)(bald) for i in range(3) for j in range(3)]
        boxes, sec = timed(detector(d), big, max(1, repeats // 2))
        found = [(b.x, b.y, b.w, b.h) for b in boxes]
        m = match(found, ref)
        lines.append(f"| bald_guys.jpg tiled 3x3 ({big.shape[1]}x{big.shape[0]}) | {d} | {len(found)} boxes; "
                     f"{m} of the {len(ref)} it finds in the 9 originals ({100 * m / max(1, len(ref)):.0f}%), "
                     f"{len(found) - m} others | {sec:.2f} | {_target(sec, TARGETS_S['tiled'])} |")
    return lines


def rotate(rgb: np.ndarray, angle: float) -> np.ndarray:
    """``rgb`` turned by ``angle`` degrees (counter-clockwise) on a canvas grown to hold all of it."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(rgb, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _all_photos(sets: dict) -> list[tuple[np.ndarray, dict, str]]:
    return [(load_image(p), want, p.name) for photos in sets.values() for p, want in photos]


def _count_lines(title: str, variants: dict[str, list[tuple[np.ndarray, dict]]]) -> list[str]:
    """Per variant and detector: photos whose count is in range, and faces found; the header gives the first
    variant's right total."""
    lo, hi = sum(w["faces"] for _, w in next(iter(variants.values()))), sum(w["max"] for _, w in
                                                                         next(iter(variants.values())))
    lines = [f"| {title} | detector | photos with the right count | faces found ({lo}-{hi} right) |",
             "|---|---|---|---|"]
    for label, items in variants.items():
        for d in DETECTORS:
            right = found = 0
            for rgb, want in items:
                n = len(detector(d)(rgb))
                right += int(want["faces"] <= n <= want["max"])
                found += n
            lines.append(f"| {label} | {d} | {right}/{len(items)} | {found} |")
    return lines


def part_rotated(sets: dict) -> list[str]:
    photos = _all_photos(sets)
    variants = {f"{a:+d}°": [(rotate(rgb, a), want) for rgb, want, _ in photos] for a in ANGLES}
    return _count_lines("turned in plane", {"upright": [(rgb, want) for rgb, want, _ in photos], **variants})


def cover_mouths(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """``rgb`` with every MTCNN face's mouth and chin under a patch of the face's mean colour; faces covered."""
    out = rgb.copy()
    faces = mtcnn.detect_faces(rgb)
    for f in faces:
        (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = f.landmarks
        eye = max(1.0, float(np.hypot(rex - lex, rey - ley)))
        colour = rgb[f.y : f.y + f.h, f.x : f.x + f.w].reshape(-1, rgb.shape[2]).mean(axis=0)
        x0, x1 = int(min(mlx, lex) - 0.35 * eye), int(max(mrx, rex) + 0.35 * eye)
        y0, y1 = int(ny + 0.25 * (min(mly, mry) - ny)), int(max(mly, mry) + 0.9 * eye)
        out[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = colour.astype(np.uint8)
    return out, len(faces)


def part_covered(sets: dict) -> list[str]:
    photos = _all_photos(sets)
    covered = []
    for rgb, want, _ in photos:
        img, n = cover_mouths(rgb)
        covered.append((img, {"faces": min(want["faces"], n), "max": want["max"]}))
    return _count_lines("mouth and chin covered", {"clean": [(r, w) for r, w, _ in photos], "covered": covered})


def part_turned_covered(sets: dict) -> list[str]:
    """docs/batch.md's table: the photos upright, turned by each of ANGLES and with mouths covered, one table."""
    photos = _all_photos(sets)
    variants = {"upright": [(rgb, want) for rgb, want, _ in photos]}
    variants |= {f"turned {a:+d}°": [(rotate(rgb, a), want) for rgb, want, _ in photos] for a in ANGLES}
    covered = []
    for rgb, want, _ in photos:
        img, n = cover_mouths(rgb)
        covered.append((img, {"faces": min(want["faces"], n), "max": want["max"]}))
    variants["mouth and chin covered"] = covered
    return _count_lines("photos", variants)


def draw(rgb: np.ndarray, boxes: list[Box], width: int = 400) -> np.ndarray:
    s = width / rgb.shape[1]
    out = cv2.resize(rgb, (width, max(1, round(rgb.shape[0] * s))), interpolation=cv2.INTER_AREA)
    t = max(2, width // 240)
    for b in boxes:
        cv2.rectangle(out, (round(b.x * s), round(b.y * s)), (round((b.x + b.w) * s), round((b.y + b.h) * s)),
                      (0, 255, 0), t)
        for x, y in b.landmarks[:5] if len(b.landmarks) == 5 else ():
            cv2.circle(out, (round(x * s), round(y * s)), t + 1, (255, 0, 0), -1)
    return out


def part_figures(shared: Path) -> list[str]:
    from PIL import Image

    sample = load_image(SAMPLE)
    two = load_image(shared / "data" / "photos" / "two_people.jpg")
    group = load_image(shared / "data" / "group_photos" / "2008_002079.jpg")
    family = load_image(shared / "data" / "group_photos" / "2007_007763.jpg")
    examples = {
        "rotated": [rotate(sample, 30), rotate(sample, -30), rotate(two, 20)],
        "covered": [cover_mouths(sample)[0], cover_mouths(two)[0]],
        "group": [group, family],
    }
    FIGURES.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, images in examples.items():
        rows = []
        for rgb in images:
            panels = [draw(rgb, detector(d)(rgb)) for d in DETECTORS]
            h = max(p.shape[0] for p in panels)
            panels = [cv2.copyMakeBorder(p, 0, h - p.shape[0], 0, 8, cv2.BORDER_CONSTANT, value=(255, 255, 255))
                      for p in panels]
            rows.append(np.concatenate(panels, axis=1))
        wmax = max(r.shape[1] for r in rows)
        rows = [cv2.copyMakeBorder(r, 0, 8, 0, wmax - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                for r in rows]
        path = FIGURES / f"{name}.jpg"
        Image.fromarray(np.concatenate(rows, axis=0)).save(path, quality=80, optimize=True)
        lines.append(f"wrote {path.relative_to(ROOT)} (left: {DETECTORS[0]}, right: {DETECTORS[1]})")
    return lines


def part_sweep(sets: dict, shared: Path) -> list[str]:
    """MTCNN alone: each threshold around the default, then the min-face floor, with time on 1080p and tiled."""
    photos = [(rgb, want) for rgb, want, _ in _all_photos({k: v for k, v in sets.items() if k != "sample"})]
    hd = cv2.resize(load_image(shared / "data" / "photos" / "two_people.jpg"), (1920, 1080))
    from benchmarks.label_speed import frame  # python -m benchmarks' 1080p photo: two_people.jpg upscaled

    hd_frame = frame(load_image(shared / "data" / "photos" / "two_people.jpg"), (1920, 1080))
    variants = [(rotate(rgb, a), want) for rgb, want in photos for a in ANGLES]
    variants += [(cover_mouths(rgb)[0], want) for rgb, want in photos]
    lines = ["| setting | right count | missed | false boxes | recall (annotated) | turned/covered right | "
             "faces on the benchmark's 1080p frame (2 right) | ms 1080p |", "|---|---|---|---|---|---|---|---|"]

    def row(label: str, thresholds: tuple[float, float, float] = mtcnn.THRESHOLDS, floor: int = mtcnn.MIN_FACE_PX,
            relative: float = mtcnn.MIN_FACE_RELATIVE, cap: float = mtcnn.MIN_FACE_CAP):
        def run(rgb: np.ndarray) -> list[Box]:
            size = mtcnn.min_face_size(rgb.shape, floor=floor, relative=relative, cap=cap)
            return mtcnn.detect_faces(rgb, min_face=size, thresholds=thresholds)

        right = missed = false = matched = annotated = 0
        for rgb, want in photos:
            s = score(run(rgb), want)
            right += int(want["faces"] <= s["found"] <= want["max"])
            missed, false = missed + s["missed"], false + s["false"]
            matched, annotated = matched + s["matched"], annotated + s["annotated"]
        turned = sum(int(want["faces"] <= len(run(rgb)) <= want["max"]) for rgb, want in variants)
        _, sec = timed(run, hd, 3)
        lines.append(f"| {label} | {right}/{len(photos)} | {missed} | {false} | {matched}/{annotated} | "
                     f"{turned}/{len(variants)} | {len(run(hd_frame))} | {1000 * sec:.0f} |")

    t = mtcnn.THRESHOLDS
    for stage, values in ((0, (0.5, 0.6, 0.7, 0.8)), (1, (0.6, 0.7, 0.8)), (2, (0.6, 0.7, 0.8, 0.9))):
        for v in values:
            th = tuple(v if i == stage else t[i] for i in range(3))
            row(f"thresholds {th}", thresholds=th)
    for floor in (12, 16, 20, 24, 30, 40):
        row(f"min face max({floor} px, 1% of the long side)", floor=floor, relative=0.0)
    for relative, cap in ((0.02, 30.0), (0.02, 40.0), (0.03, 40.0)):
        row(f"min face max(20 px, 1%, {100 * relative:.0f}% up to {cap:.0f} px)", relative=relative, cap=cap)
    return lines


def update_docs(block: str, text: str) -> None:
    """Write ``text`` between docs/batch.md's ``block`` markers."""
    from training.report import block_file, replace_block

    page = block_file(block)
    replace_block(page, block, text)
    print(f"wrote the {block} block of {page}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="examples:\n"
                                "  python benchmarks/detector_compare.py --part table --part large --repeats 5 "
                                "--update-docs   # idle machine\n"
                                "  python benchmarks/detector_compare.py --part rotated --part covered --update-docs",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: %(default)s; "
                   "example: --shared /data/shared)")
    p.add_argument("--part", action="append", choices=PARTS, help="run only this part; repeat for several "
                   "(default: all but sweep; example: --part table --part large)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per photo (default: %(default)s; example: "
                   "--repeats 5)")
    p.add_argument("--threads", type=int, metavar="N", help="threads for onnxruntime and OpenCV (default: the "
                   "app's); with 1, times are the process's CPU seconds: one core's work, whatever else runs "
                   "(example: --threads 1)")
    p.add_argument("--update-docs", action="store_true",
                   help="also write the tables of table, large and rotated with covered between the detector-table, "
                   "detector-large and detector-rotated markers of docs/batch.md (example: --part rotated --part "
                   "covered --update-docs)")
    args = p.parse_args(argv)
    command = " ".join(["python benchmarks/detector_compare.py",
                        *[a for a in (argv if argv is not None else sys.argv[1:]) if a != "--update-docs"]])
    if args.threads:
        global CPU_TIME
        mtcnn.THREADS = args.threads
        cv2.setNumThreads(args.threads)
        CPU_TIME = args.threads == 1
    if not (args.shared / "data" / "photos").is_dir():
        print(f"skipped: {args.shared / 'data' / 'photos'} not found (needs ../shared)")
        return 0
    from benchmarks.common import machine_line

    machine = machine_line(args.threads)  # before the timings: the load average it gives is other work's, not ours
    parts = args.part or [p for p in PARTS if p != "sweep"]
    if args.update_docs and {"rotated", "covered"} <= set(parts):  # one table in the docs: measure them together
        parts = [p for p in parts if p != "covered"]
    sets = photo_sets(args.shared)
    for part in parts:
        if part == "rotated" and args.update_docs and "covered" in (args.part or PARTS):
            out = part_turned_covered(sets)
            print("\n".join(out) + "\n", flush=True)
            update_docs("detector-rotated", "\n".join(out) + f"\n\n`{command}`: every photo of "
                        "../shared/data/photos and group_photos and the sample; a photo's count is right when it is "
                        "within faces.json's range (covered: its lower end at most the faces covered).")
            continue
        if part == "table":
            out = part_table(sets, args.repeats)
        elif part == "large":
            out = part_large(args.shared, args.repeats)
        elif part == "rotated":
            out = part_rotated(sets)
        elif part == "covered":
            out = part_covered(sets)
        elif part == "figures":
            out = part_figures(args.shared)
        else:
            out = part_sweep(sets, args.shared)
        print("\n".join(out), flush=True)
        if part in ("table", "large", "sweep"):
            what = ("CPU time on one thread (onnxruntime and OpenCV limited to 1): one core's work, not inflated "
                    "by other processes" if CPU_TIME else
                    "wall-clock medians, slower when other processes share the cores")
            load = f"; load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
            print(f"(times: {what}{load})", flush=True)
            if args.update_docs and part in ("table", "large"):
                update_docs(f"detector-{part}", "\n".join(out) + f"\n\n`{command}`: times are {what}{load}. {machine}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
