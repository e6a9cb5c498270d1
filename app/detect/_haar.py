"""Frontal-face detection: OpenCV Haar cascade on a downscaled copy, then an eye check on each face.

Every number below was chosen by measurement with ``benchmarks/detect_tuning.py`` on ../shared/data/photos
(7 photos, counts in faces.json) plus the sample portrait pasted into flat 4000x3000, 1920x1080, 800x600
and 426x240 frames; its docstring has the tables. In short:

* ``haarcascade_frontalface_alt2``: ``_default`` gave wrong counts at almost every setting (2-4 boxes on
  single portraits at scaleFactor 1.1).
* No global pre-processing: with ``equalizeHist`` (what OpenCV's samples do) every setting lost the face in
  at least one of the flat-background frames (a studio backdrop or sky): the backdrop's one grey level takes
  most of the histogram and squashes the face's contrast. The cascade normalises each window's variance.
* ``PAD``: a 10% edge-replicated border, without which the face cut by the frame edge
  (obama_partial_face.jpg, ~25% missing) is never found; a mirrored border invented faces instead.
* ``WORK_SIZE`` 640 (longest side of the working copy; smaller images are not upscaled): 320 misses the
  faces in the 1920x1080 and 800x600 frames, 480 the 1080p one (33 px on a 640 copy) at scaleFactor >= 1.15;
  at 640, 8 of the 9 scaleFactor/minNeighbors settings around the chosen one are right; 800-960 are right
  too but cost 1.5-3x as much. Faces below ``MIN_SIZE / WORK_SIZE`` = 3% of the longest side are missed:
  the price of ~0.1-0.2 s per photo whatever its resolution.
* ``SCALE_FACTOR`` 1.15, ``MIN_NEIGHBORS`` 4, ``MIN_SIZE`` 20 (the cascade's window): right on every
  image, and so are all its neighbours (1.1 and 1.2; 5 neighbours). 6 neighbours lost the 1080p face.
* Large photos (``LARGE_PHOTO`` and below, measured with ``benchmarks/large_photos.py``): bald_guys.jpg
  tiled 3x3 (5958x4635, 216 faces of 2.0-5.9% of the long side) got 110 faces from the 640 px copy alone
  and gets 212 (98%, no false box) with the small-face pass, at 3.4x the CPU time (1.37 -> 4.65 s of CPU,
  most of it the eye check of 216 faces at ~10 ms each; the eye checks now share the cores, see
  ``_eye_checks``). Photos up to 2500 px (1080p and every shared photo) take exactly the old path, so their
  boxes and cost are unchanged. ``SMALL_SCALE_FACTOR`` (``large_photos.py --sweep``, 3 interleaved runs on the
  loaded machine): 1.15 / 1.2 / 1.25 / 1.3 found 212 / 211 / 207 / 207 faces in 2.65 / 2.31 / 2.12 / 2.00 s
  (4.6 / 4.0 / 3.7 / 3.6 s of CPU); none reaches the issue's 1.5 s, so recall decided: 1.15. Swept again with
  the eye check's step too (``--sweep``, idle machine; faces, eye pairs, s): 1.15/1.1 (now) 212, 183, 2.41;
  1.3/1.1 207, 181, 1.83; 1.3/1.2 207, 170, 1.46; 1.3/1.25 204, 144, 1.30; 1.35/1.2 200, 165, 1.32. Only a
  coarser eye step gets under 1.5 s, and it would apply to every photo over ``LARGE_PHOTO`` (most phone
  photos) and cost aligned crops, so it was not taken; ``--detector mtcnn`` finds all 216 in about 1.35 s.

Eye check (``find_eyes``/``count_eyes``): a face counts when ``haarcascade_eye`` finds at least ``MIN_EYES`` = 1 eye in
its upper part. Measured on 379 faces found in FER2013 validation images (turned heads, squints, glasses,
hands) plus the 9 photo faces, against 16 boxes a loose detector finds on the photos away from any face and
16 drawn cartoon faces: with one eye required, 87% of FER faces pass and all photo faces; requiring two
would drop to 65%, so a third of real faces would vanish for no gain, while only 2 of the 16 loose
boxes and none of the cartoons show an eye. ``haarcascade_eye_tree_eyeglasses`` rejected all 16 boxes but
passed only 72% of the FER faces at twice the cost.

Re-measured with ``--part fallback`` (more positives: the 34 faces of ../shared/data/group_photos the
cascade finds on an annotated box or on the 24-face collage; negatives: the 16 loose boxes, 16 cartoons and
dogs.jpg), on 600 FER validation images (367 found):

| eye check | FER faces kept | photo faces | group-photo faces | negatives passed |
|---|---|---|---|---|
| eye (before) | 323 of 367 | 9 of 9 | 33 of 34 | 2 of 32 |
| eye, 2 neighbours | 336 of 367 | 9 of 9 | 33 of 34 | 2 of 32 |
| eye, then eye_tree_eyeglasses | 329 of 367 | 9 of 9 | 33 of 34 | 2 of 32 |
| eye, then left/righteye_2splits | **344 of 367** | 9 of 9 | 33 of 34 | 2 of 32 |

So when ``haarcascade_eye`` finds no eye, ``EYE_FALLBACK_CASCADES`` are asked: 94% of FER faces kept
instead of 88%, no negative more; the extra cost falls only on boxes the first cascade finds no eye in.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from app.core import Box, resource_path

FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
EYE_CASCADE = "haarcascade_eye.xml"
# Asked only when EYE_CASCADE finds no eye: the left- and right-eye cascades (trained on each eye apart, they
# find narrowed, smiling and half-shadowed eyes the single-eye cascade misses). See the module docstring.
EYE_FALLBACK_CASCADES = ("haarcascade_lefteye_2splits.xml", "haarcascade_righteye_2splits.xml")

WORK_SIZE = 640
SCALE_FACTOR = 1.15
MIN_NEIGHBORS = 4
MIN_SIZE = 20
PAD = 0.10

# Eye check: the face is resized so its width is EYE_FACE_WIDTH, the eye cascade searches the band between
# EYE_TOP and EYE_BOTTOM (fractions of the face height; the cascade's window includes the brow, so the band is
# generous) for eyes EYE_MIN..EYE_MAX of the face width, and only eyes centred between EYE_CENTER_TOP and
# EYE_CENTER_BOTTOM count (keeps teeth and nostrils out). No histogram equalisation here either: in an early
# run of the sweep it found eyes in only 4 of the 9 photo faces (9 of 9 without) and in fewer FER faces.
MIN_EYES = 1
EYE_FACE_WIDTH = 160
EYE_TOP, EYE_BOTTOM = 0.0, 0.70
EYE_CENTER_TOP, EYE_CENTER_BOTTOM = 0.15, 0.55
EYE_MIN, EYE_MAX = 0.12, 0.45
EYE_SCALE_FACTOR = 1.1
EYE_MIN_NEIGHBORS = 3

# Large photos (benchmarks/large_photos.py): the 640 px working copy misses faces under 3% of the long side,
# so a photo whose long side exceeds LARGE_PHOTO gets a second pass for small faces only: a working copy on
# which a face of SMALL_FACE of the long side is the cascade's 20 px window, searched only up to the sizes
# the first pass already covers (SMALL_OVERLAP x its smallest face). Photos up to LARGE_PHOTO (1080p, every
# photo of ../shared/data/photos) are detected exactly as before, at the same cost.
LARGE_PHOTO = 2500
SMALL_FACE = 0.01
SMALL_OVERLAP = 1.3
SMALL_SCALE_FACTOR = 1.15

# Two boxes whose intersection covers more than this fraction of the smaller one are the same face.
MERGE_OVERLAP = 0.5




_local = threading.local()  # CascadeClassifier is not documented as thread-safe; the GUI detects in a worker


def _cascade(name: str) -> cv2.CascadeClassifier:
    cache = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    if name not in cache:
        path = resource_path("haarcascades", name)
        if not path.is_file() and hasattr(cv2, "data"):
            # Cascades the app does not ship (benchmarks/detect_tuning.py compares them) come from the cv2 wheel.
            path = Path(cv2.data.haarcascades) / name
        if not path.is_file():
            raise RuntimeError(f"{resource_path('haarcascades', name)}: Haar cascade file missing")
        c = cv2.CascadeClassifier()
        # cv2 cannot open non-ASCII paths on Windows; read the XML through a FileStorage from memory instead.
        fs = cv2.FileStorage(path.read_text(encoding="utf-8"), cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
        ok = c.read(fs.getFirstTopLevelNode())
        fs.release()
        if not ok or c.empty():
            raise RuntimeError(f"{path}: cannot load Haar cascade")
        cache[name] = c
    return cache[name]


def to_gray(img: np.ndarray) -> np.ndarray:
    """uint8 grayscale from an RGB/RGBA/gray array (the detector and the crop both work on luminance)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] == 1:
        return a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 3:
        return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    if a.ndim == 3 and a.shape[2] == 4:
        return cv2.cvtColor(a, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {a.shape}")


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ix * iy / smaller if smaller > 0 else 0.0


def merge_boxes(rects: list[tuple[int, int, int, int]], scores: list[float]) -> list[tuple[int, int, int, int]]:
    """Greedy non-maximum suppression: keep the best-supported box of each cluster of overlapping boxes.

    Haar finds the same face at two neighbouring scales (a box inside a slightly bigger one), which IoU-based
    NMS misses; overlap is measured against the smaller box for that reason.
    """
    order = sorted(range(len(rects)), key=lambda i: (-scores[i], -rects[i][2]))
    kept: list[tuple[int, int, int, int]] = []
    for i in order:
        if all(_overlap(rects[i], k) <= MERGE_OVERLAP for k in kept):
            kept.append(rects[i])
    return kept


def candidates(
    gray: np.ndarray,
    work_size: int = WORK_SIZE,
    scale_factor: float = SCALE_FACTOR,
    min_neighbors: int = MIN_NEIGHBORS,
    min_size: int = MIN_SIZE,
    pad: float = PAD,
    cascade: str = FACE_CASCADE,
) -> list[tuple[int, int, int, int]]:
    """Merged face boxes ``(x, y, w, h)`` in ``gray``'s pixels, unclipped (a half-cut face sticks out)."""
    h, w = gray.shape[:2]
    scale = min(1.0, work_size / max(h, w))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    p = int(round(pad * max(small.shape)))
    if p:
        small = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_REPLICATE)
    rects, counts = _cascade(cascade).detectMultiScale2(
        small, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size)
    )
    boxes = [
        (
            int(round((rx - p) / scale)),
            int(round((ry - p) / scale)),
            int(round(rw / scale)),
            int(round(rh / scale)),
        )
        for rx, ry, rw, rh in np.asarray(rects).reshape(-1, 4)
    ]
    scores = [float(c) for c in np.asarray(counts).reshape(-1)]
    if cascade == FACE_CASCADE and max(h, w) > LARGE_PHOTO and work_size == WORK_SIZE:
        small_boxes, small_scores = _small_faces(gray, scale_factor=SMALL_SCALE_FACTOR, min_neighbors=min_neighbors)
        # The first pass's boxes win ties: its faces were found with more context.
        boxes += small_boxes
        scores += [s - 1000 for s in small_scores]
    return merge_boxes(boxes, scores)


def _small_faces(
    gray: np.ndarray, scale_factor: float, min_neighbors: int, small_face: float = SMALL_FACE,
) -> tuple[list[tuple[int, int, int, int]], list[float]]:
    """Faces between ``small_face`` and what the 640 px pass finds, on a larger working copy (no padding)."""
    long_side = max(gray.shape[:2])
    work = min(long_side, round(MIN_SIZE / small_face))
    scale = work / long_side
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    max_side = round(SMALL_OVERLAP * MIN_SIZE / WORK_SIZE * work)
    rects, counts = _cascade(FACE_CASCADE).detectMultiScale2(
        small, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(MIN_SIZE, MIN_SIZE),
        maxSize=(max_side, max_side),
    )
    boxes = [tuple(int(round(v / scale)) for v in r) for r in np.asarray(rects).reshape(-1, 4)]
    return boxes, [float(c) for c in np.asarray(counts).reshape(-1)]  # type: ignore[return-value]


def find_eyes(
    gray: np.ndarray, box: tuple[int, int, int, int], min_neighbors: int = EYE_MIN_NEIGHBORS,
    face_width: int = EYE_FACE_WIDTH, cascade: str = EYE_CASCADE,
) -> list[tuple[float, float]]:
    """Centres (x, y, in ``gray``'s pixels) of the eyes the eye cascade finds in the upper part of ``box``.

    Best-supported first, overlapping detections merged. The face is rescaled to a fixed width first, so the
    eye search costs the same for a 60 px and a 1500 px face (and a face found on the downscaled working copy
    is checked with all the detail the photo has).
    """
    x, y, w, h = box
    H, W = gray.shape[:2]
    x0, x1 = max(0, x), min(W, x + w)
    y0, y1 = max(0, y + int(EYE_TOP * h)), min(H, y + int(EYE_BOTTOM * h))
    if x1 - x0 < 4 or y1 - y0 < 4 or w <= 0:
        return []
    s = face_width / w
    roi = cv2.resize(
        gray[y0:y1, x0:x1],
        (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))),
        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
    )
    lo, hi = round(EYE_MIN * face_width), round(EYE_MAX * face_width)
    if min(roi.shape[:2]) < lo:
        return []
    rects, counts = _cascade(cascade).detectMultiScale2(
        roi, scaleFactor=EYE_SCALE_FACTOR, minNeighbors=min_neighbors, minSize=(lo, lo), maxSize=(hi, hi)
    )
    found, support = [], []
    for (ex, ey, ew, eh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(counts).reshape(-1), strict=True):
        centre = (ey + eh / 2) / s + (y0 - y)  # in face pixels from the box top
        if EYE_CENTER_TOP * h <= centre <= EYE_CENTER_BOTTOM * h:
            found.append((int(ex), int(ey), int(ew), int(eh)))
            support.append(float(n))
    return [(x0 + (ex + ew / 2) / s, y0 + (ey + eh / 2) / s) for ex, ey, ew, eh in merge_boxes(found, support)]


def count_eyes(
    gray: np.ndarray, box: tuple[int, int, int, int], min_neighbors: int = EYE_MIN_NEIGHBORS,
    face_width: int = EYE_FACE_WIDTH, cascade: str = EYE_CASCADE,
) -> int:
    """Eyes (0, 1 or 2) the eye cascade finds in the upper part of the face ``box`` (full-resolution gray)."""
    return min(2, len(find_eyes(gray, box, min_neighbors, face_width, cascade)))


def find_eyes_with_fallback(gray: np.ndarray, box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    """:func:`find_eyes` with ``EYE_CASCADE``; when it finds none, with each of ``EYE_FALLBACK_CASCADES``.

    The two fallback cascades may both fire on one eye: centres closer than ``EYE_PAIR_MIN_GAP`` of the face
    width are counted once.
    """
    eyes = find_eyes(gray, box)
    if eyes:
        return eyes
    for cascade in EYE_FALLBACK_CASCADES:
        for e in find_eyes(gray, box, cascade=cascade):
            if all(np.hypot(e[0] - f[0], e[1] - f[1]) >= EYE_PAIR_MIN_GAP * box[2] for f in eyes):
                eyes.append(e)
    return eyes


# Two eye detections make an eye pair for alignment only when they lie this far apart (fraction of the face
# width) and the line through them is at most EYE_PAIR_MAX_TILT degrees from level: two hits on one eye, or
# an eye and a nostril, would otherwise rotate the crop wildly.
EYE_PAIR_MIN_GAP = 0.2
EYE_PAIR_MAX_TILT = 40.0


def eye_pair(
    eyes: list[tuple[float, float]], face_width: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two best-supported eyes that form a plausible pair, the image's left one first; None otherwise."""
    for i, j in ((0, 1), (0, 2), (1, 2)):
        if j >= len(eyes):
            continue
        a, b = sorted((eyes[i], eyes[j]))
        dx, dy = b[0] - a[0], b[1] - a[1]
        if dx >= EYE_PAIR_MIN_GAP * face_width and abs(np.degrees(np.arctan2(dy, dx))) <= EYE_PAIR_MAX_TILT:
            return a, b
    return None


# Eye checks of many faces run on a small pool of threads (OpenCV releases the GIL while a cascade runs). One
# 160 px face is too small for OpenCV's own threads to share well: on the 24-face collage tiled 3x3 (212 faces,
# ~8 ms each), the checks took 1.70 s one after another with OpenCV's 2 threads and 1.08-1.16 s on 2 pool
# threads (``benchmarks/large_photos.py``). Below EYE_POOL_MIN faces the pool's hand-offs are not worth it.
EYE_POOL_MIN = 4
_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, threads, pool): a forked child starts anew


def _eye_checks(gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[list[tuple[float, float]]]:
    """:func:`find_eyes_with_fallback` for each box, in order; on a pool of threads when there are many."""
    threads = max(1, cv2.getNumThreads())
    if len(boxes) < EYE_POOL_MIN or threads < 2:
        return [find_eyes_with_fallback(gray, b) for b in boxes]
    global _pool
    with _pool_lock:  # one pool per process, its threads kept: each loads the eye cascades once (thread-local)
        if _pool is None or _pool[:2] != (os.getpid(), threads):
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)  # OpenCV's thread count changed: the old pool's threads may go
            _pool = (os.getpid(), threads, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="eye-check"))
        pool = _pool[2]
    return list(pool.map(lambda b: find_eyes_with_fallback(gray, b), boxes))


def load_haar() -> None:
    """Load the face and eye cascades now (RuntimeError naming a missing or corrupt file)."""
    _cascade(FACE_CASCADE)
    _cascade(EYE_CASCADE)


def detect_haar(rgb: np.ndarray, eye_check: bool = True, work_size: int = WORK_SIZE) -> list[Box]:
    """Find frontal faces; boxes are in ``rgb``'s pixels, clipped to the frame and sorted left to right
    (the labeller renumbers them in reading order, app.detect.reading_order).

    With ``eye_check`` a face needs at least ``MIN_EYES`` eye in its upper part: that removes the Haar
    cascade's false positives on textures at almost no cost in real faces (see the module docstring).
    """
    gray = to_gray(rgb)
    H, W = gray.shape[:2]
    found = candidates(gray, work_size=work_size)
    checked = _eye_checks(gray, found) if eye_check else [[] for _ in found]
    out: list[Box] = []
    for (x, y, w, h), eyes in zip(found, checked, strict=True):
        if eye_check and len(eyes) < MIN_EYES:
            continue
        cx0, cy0, cx1, cy1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            continue
        pair = eye_pair(eyes, w)
        out.append(Box(cx0, cy0, cx1 - cx0, cy1 - cy0, min(2, len(eyes)), pair or ()))
    return sorted(out, key=lambda b: (b.x, b.y))
