"""MTCNN face detection with five landmarks, in numpy + onnxruntime (no torch): ``--detector mtcnn``.

MTCNN (Zhang et al. 2016) runs three small networks in cascade: P-Net slides a 12x12 window over an image
pyramid and proposes boxes, R-Net re-scores and refines them on 24x24 crops, O-Net on 48x48 crops gives the
final score, box and five landmarks (eye centres, nose tip, mouth corners). The weights are facenet-pytorch
2.6.0's (MIT), exported by ``packaging/build_mtcnn.py`` into ``models_zoo/detectors/`` with their licence
and provenance; ``training/mtcnn_nets.py`` holds the torch nets and the ONNX contract.

Constants, measured with ``benchmarks/detector_compare.py --part sweep --threads 1`` on the 14 photos of
../shared/data/photos and ../shared/data/group_photos (counts in faces.json, 18 hand-annotated boxes), with
single-core CPU ms for a 1920x1080 photo; and ``--part rotated --part covered`` for the O-Net threshold:

* ``MIN_FACE_FRACTION`` / ``MIN_FACE_PX``: the pyramid's smallest face is 1% of the photo's long side (60 px
  in a 6000 px photo, the issue's target: bald_guys.jpg tiled 3x3 keeps 96% of its faces) but never under
  20 px. Floors of 24, 30 and 40 px cut the 1080p time from 245 to 185, 128 and 86 ms but each missed a
  face of the group photos; 12 and 16 px missed one and added a false box. Only 20 was right on all 14.
* ``MIN_FACE_RELATIVE`` / ``MIN_FACE_CAP``: and never under 2% of the long side, up to 40 px. The group photos
  (<= 800 px) keep their 20 px floor, photos from 4000 px keep 1%, and in between (a 1080p photo: 38 px
  instead of 20) the pyramid loses its costliest levels. Those levels found nothing right there and one thing
  wrong: on two_people.jpg upscaled into a 1920x1080 frame (``python -m benchmarks``' 1080p photo) a jacket
  button came out as a 22 px face (O-Net 0.92), and a 20-38 px face in a 1080p photo is too small to label
  well (FER2013 faces are 48 px). ``detector_compare.py --part sweep`` (2 threads, wall-clock, beside a
  training run, load 4.9): on the 14 photos, their 70 turned and covered variants and that frame, the rule
  gets 14/14, 63/70 and 2 faces in 74 ms per 1080p photo; 20 px alone 14/14, 62/70 and 3 faces (the button)
  in 149 ms; 2% up to 30 px the same as the rule in 105 ms; 3% up to 40 px (40 px at 1080p) the same; floors of
  24-40 px for every photo size lose a face of the group photos.
* ``FACTOR`` 0.709 (each pyramid level halves the area), MTCNN's own.
* ``THRESHOLDS`` (P-Net, R-Net, O-Net face probability): P-Net 0.5-0.8 are all right on the 14 photos; R-Net
  0.6 and 0.7 are, 0.8 loses a face; O-Net 0.6 adds a false box, 0.7-0.9 are right. On the same photos
  turned by +-15/30 degrees and with covered mouths (90 images), O-Net 0.7 / 0.8 / 0.9 give the right count
  on 80 / 82 / 82 (0.8 drops three false boxes at 0.71-0.75 and one face at 0.73; 0.9 loses faces): 0.8.
  Then P-Net 0.6 / 0.7 / 0.8: 82 / 82 / 81, and the tiled 6000 px photo takes 2.5 / 2.2 / 1.8 s of one
  core (fewer proposals for R-Net): 0.7.
* NMS overlaps are MTCNN's: 0.5 IoU within a pyramid level, 0.7 IoU across levels and after R-Net, 0.7 of the
  smaller box after O-Net (a box inside a larger one of the same face).
* ``CROP_SCALE`` 0.99: ``benchmarks/crop_margin.py --detector mtcnn`` on the 3,000 FER2013 validation images
  upscaled to 192x192 (one face in 2,506): the square MTCNN box side is a median 1.014 of the FER2013 frame
  (quartiles 0.932-1.089), centred (dx +0.014, dy -0.007 box sides). So FER2013's framing is the MTCNN box
  itself (crop 0.986x the box), where a Haar box needs 1.09x (``app.detect._crop.CROP_SCALE``).

Speed (single-core CPU ms, ``--threads 1``): about 245 ms for a 1920x1080 photo, most of it P-Net on the
first pyramid level (1152x648 for 20 px faces); see README's "Two detectors" table for the rest. On the tiled
6000 px crowd photo the numpy around the nets mattered too: NMS over ~4,400 proposals (now block-wise, the
same boxes) and cutting ~5,700 crops (now straight from the level when inside it) took 0.29 and 0.38 s of
its ~1.7 s; now 0.14 and ~0.3 s, with identical boxes and landmarks on all 31 photos compared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from app.core import Box, EmotionLensError, resource_path

DETECTOR_DIR = ("models_zoo", "detectors")
FILES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}
OUTPUTS = {"pnet": ["prob", "reg"], "rnet": ["prob", "reg"], "onet": ["prob", "reg", "landmarks"]}
REBUILD = "python packaging/build_mtcnn.py"

MIN_FACE_FRACTION = 0.01
MIN_FACE_PX = 20
MIN_FACE_RELATIVE, MIN_FACE_CAP = 0.02, 40.0
FACTOR = 0.709
THRESHOLDS = (0.7, 0.7, 0.8)
NMS_LEVEL, NMS_PYRAMID, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
THREADS = max(1, min(2, os.cpu_count() or 1))  # per session: small convolutions, more threads only wait
CROP_SCALE = 0.99  # crop side / MTCNN box side that frames a face like FER2013 (Haar boxes: 1.09)
BATCH = 512  # R-Net/O-Net crops per run: bounds memory on a crowd photo (512 x 48 x 48 x 3 floats = 14 MB)

Runner = Callable[[np.ndarray], list[np.ndarray]]  # float32 NCHW 0..255 RGB -> the net's outputs (OUTPUTS order)


class DetectorError(EmotionLensError, RuntimeError):
    """A detector file is missing or unusable; the message is one line naming it."""


_lock = threading.Lock()
_runners: dict[str, Runner] = {}  # ORT sessions are thread-safe for run(): one per process, shared by threads


def detector_path(name: str) -> Path:
    return resource_path(*DETECTOR_DIR, FILES[name])


def load_runner(name: str, path: Path) -> Runner:
    """The net ``name`` ("pnet", "rnet", "onet") from the ONNX file ``path``, checked against the contract."""
    import onnxruntime as ort

    try:
        blob = path.read_bytes()  # bytes, not a path: ORT cannot open non-ASCII paths on Windows
    except OSError as e:
        raise DetectorError(f"{path}: cannot read the MTCNN detector file ({e.strerror or e}); "
                            f"rebuild it with {REBUILD}") from None
    from app.core import session_options

    opts = session_options(THREADS)
    try:
        sess = ort.InferenceSession(blob, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DetectorError(f"{path}: not a valid ONNX file ({first}); rebuild it with {REBUILD}") from None
    ins, outs = [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    if ins != ["image"] or outs != OUTPUTS[name]:
        raise DetectorError(f"{path}: expected input ['image'] and outputs {OUTPUTS[name]}, has {ins} and {outs}; "
                            f"rebuild it with {REBUILD}")
    names = OUTPUTS[name]
    return lambda x: sess.run(names, {"image": x})


def onnx_runners() -> dict[str, Runner]:
    """The three nets as onnxruntime sessions, loaded once per process (a bad file raises DetectorError)."""
    with _lock:
        for name in FILES:
            if name not in _runners:
                _runners[name] = load_runner(name, detector_path(name))
        return dict(_runners)


def _rgb(img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB from an RGB/RGBA/gray array (the nets were trained on colour; gray is repeated)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return np.ascontiguousarray(a[:, :, :3])
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {a.shape}")


def _pairs_between(boxes: np.ndarray, area: np.ndarray, rows: np.ndarray, cols: np.ndarray, threshold: float,
                   by_min: bool) -> np.ndarray:
    """``[P, 2]`` pairs (row box, column box) of ``rows`` x ``cols`` that overlap by more than ``threshold``."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    r, c = rows[:, None], cols[None, :]
    iw = np.maximum(0, np.minimum(x2[r], x2[c]) - np.maximum(x1[r], x1[c]))
    ih = np.maximum(0, np.minimum(y2[r], y2[c]) - np.maximum(y1[r], y1[c]))
    inter = iw * ih
    denom = np.minimum(area[r], area[c]) if by_min else area[r] + area[c] - inter
    i, j = np.nonzero(inter > threshold * np.maximum(denom, 1e-9))
    return np.stack([rows[i], cols[j]], axis=1)


def _overlapping_pairs(boxes: np.ndarray, threshold: float, by_min: bool, block: int = 256) -> np.ndarray:
    """``[P, 2]`` index pairs (i < j, each once) of boxes overlapping by more than ``threshold``.

    A crowd photo gives a few thousand proposals, mostly far apart: comparing each with all the others (the
    textbook loop) cost 150 ms of the tiled 6000 px photo. Here the boxes are taken in order of their left
    edge, a block at a time, and each block is compared only with itself and the later boxes whose left edge
    lies before the block's rightmost right edge: of two overlapping boxes, the one that starts further
    left always finds the other that way.
    """
    n = len(boxes)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    x1, x2 = boxes[:, 0], boxes[:, 2]
    area = np.maximum(0, x2 - x1) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    by_x = np.argsort(x1, kind="stable")
    sx1 = x1[by_x]
    found = []
    for a in range(0, n, block):
        rows = by_x[a : a + block]
        hi = np.searchsorted(sx1, float(np.max(x2[rows])), side="left")
        found.append(_pairs_between(boxes, area, rows, by_x[a:hi], threshold, by_min))
    pairs = np.concatenate(found)
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first; overlap is IoU or intersection/smaller.

    Exactly the textbook loop (keep the best box, drop every box overlapping it by more than ``threshold``,
    repeat), computed from the overlapping pairs: only boxes that overlap another need the loop at all.
    """
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    pairs = _overlapping_pairs(boxes, threshold, by_min)
    dropped = np.zeros(len(order), bool)
    if len(pairs):
        a, b = rank[pairs[:, 0]], rank[pairs[:, 1]]
        better, worse = np.minimum(a, b), np.maximum(a, b)  # ranks: the better box may suppress the worse
        by_better = np.argsort(better, kind="stable")
        better, worse = better[by_better], worse[by_better]
        starts = np.searchsorted(better, np.arange(len(order) + 1))
        for r in np.unique(better):
            if not dropped[r]:
                dropped[worse[starts[r] : starts[r + 1]]] = True
    return order[~dropped]


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes ``[x1, y1, x2, y2]`` grown to squares on the same centre (the nets' crops are square)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _refine(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the nets' box regression: offsets of each edge in box widths/heights."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)


Level = tuple[float, float, np.ndarray]  # (x scale, y scale, the image resized by them)


def _crops(sources: list[Level], boxes: np.ndarray, side: int) -> np.ndarray:
    """float32 ``[N, 3, side, side]`` crops of ``boxes``, zero past the frame as MTCNN was trained.

    Each crop is cut from the smallest pyramid level that still has ``side`` pixels across the box (the photo
    itself for small boxes): resampling a 1000 px box from the photo for a 24 px crop cost more than all three
    nets together on a 1080p photo, and the level already holds the same pixels area-averaged. A box inside
    the frame is resized straight from the level (no copy); only one that sticks out is padded with zeros.
    """
    out = np.zeros((len(boxes), side, side, 3), np.float32)
    if not len(boxes):
        return out.transpose(0, 3, 1, 2)
    # The level for each box: the last (smallest) whose scale still gives the box ``side`` pixels, else the photo.
    scales = np.array([min(sx, sy) for sx, sy, _ in sources])
    need = side / np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    ok = scales[None, :] >= need[:, None]
    level = np.where(ok.any(axis=1), len(sources) - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    for k, (box, lv) in enumerate(zip(boxes[:, :4], level, strict=True)):
        sx, sy, img = sources[lv]
        x1, y1, x2, y2 = np.round(box * (sx, sy, sx, sy)).astype(np.int64)
        H, W = img.shape[:2]
        w, h = max(1, x2 - x1), max(1, y2 - y1)
        if x1 >= 0 and y1 >= 0 and x1 + w <= W and y1 + h <= H:
            patch = img[y1 : y1 + h, x1 : x1 + w]
        else:
            patch = np.zeros((h, w, 3), np.uint8)
            sx0, sy0, sx1, sy1 = max(0, x1), max(0, y1), min(W, x1 + w), min(H, y1 + h)
            if sx1 > sx0 and sy1 > sy0:
                patch[sy0 - y1 : sy1 - y1, sx0 - x1 : sx1 - x1] = img[sy0:sy1, sx0:sx1]
        interp = cv2.INTER_AREA if max(w, h) > side else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (side, side), interpolation=interp)
    return out.transpose(0, 3, 1, 2)


def _batched(run: Runner, x: np.ndarray) -> list[np.ndarray]:
    parts = [run(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    return [np.concatenate(p) for p in zip(*parts, strict=True)]


def min_face_size(shape: tuple[int, ...], fraction: float = MIN_FACE_FRACTION, floor: int = MIN_FACE_PX,
                  relative: float = MIN_FACE_RELATIVE, cap: float = MIN_FACE_CAP) -> float:
    """Smallest face side (pixels) the pyramid looks for: ``fraction`` of the long side, at least ``floor``, and
    at least ``relative`` of the long side up to ``cap`` pixels (20 px up to 1000 px, 38 px at 1920, 40 px
    from 2000 to 4000 px, then 1%)."""
    long_side = max(shape[:2])
    return max(float(floor), min(relative * long_side, cap), fraction * long_side)


def pyramid_scales(shape: tuple[int, ...], min_face: float, factor: float = FACTOR) -> list[float]:
    """Scales at which P-Net's 12 px window covers faces of ``min_face`` px and up to the whole short side."""
    scale, short, out = 12.0 / min_face, min(shape[:2]), []
    while short * scale >= 12:
        out.append(scale)
        scale *= factor
    return out


def pyramid(img: np.ndarray, scales: list[float]) -> list[Level]:
    """The photo resized to each scale (sizes rounded up; the true x/y scales are returned with each level)."""
    H, W = img.shape[:2]
    levels: list[Level] = []
    for scale in scales:
        size = (max(12, int(np.ceil(W * scale))), max(12, int(np.ceil(H * scale))))
        # Each level from the one before: the chain costs half of resizing level 0 for every level, and area
        # averaging (what the nets were trained with) is kept: bilinear resizing was 10x faster but added a
        # false box on obama.jpg and lost a face on 2008_002079.jpg.
        src = levels[-1][2] if levels else img
        interp = cv2.INTER_AREA if size[0] < src.shape[1] else cv2.INTER_LINEAR
        levels.append((size[0] / W, size[1] / H, cv2.resize(src, size, interpolation=interp)))
    return levels


def _proposals(levels: list[Level], run: Runner, threshold: float) -> np.ndarray:
    """P-Net over the pyramid: ``[M, 9]`` rows of x1, y1, x2, y2, score, 4 offsets, after per-level NMS."""
    found = []
    for sx, sy, level in levels:
        prob, reg = run(np.ascontiguousarray(level.transpose(2, 0, 1)[None], dtype=np.float32))
        prob, reg = prob[0], reg[0]
        rows, cols = np.nonzero(prob >= threshold)
        if rows.size == 0:
            continue
        # Output cell (r, c) sees the 12x12 window at (2c, 2r) of the level.
        b = np.stack([2 * cols / sx, 2 * rows / sy, (2 * cols + 12) / sx, (2 * rows + 12) / sy,
                      prob[rows, cols], *reg[:, rows, cols]], axis=1).astype(np.float64)
        found.append(b[nms(b[:, :4], b[:, 4], NMS_LEVEL)])
    return np.concatenate(found) if found else np.zeros((0, 9))


def detect(
    rgb: np.ndarray,
    min_face: float | None = None,
    thresholds: tuple[float, float, float] = THRESHOLDS,
    factor: float = FACTOR,
    runners: dict[str, Runner] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw MTCNN: ``[N, 5]`` boxes (x1, y1, x2, y2, score; float, unclipped) and ``[N, 5, 2]`` landmarks.

    ``runners`` replaces the onnxruntime sessions (the tests run the torch nets through the same pipeline).
    """
    img = _rgb(rgb)
    nets = runners or onnx_runners()
    if min_face is None:
        min_face = min_face_size(img.shape)
    empty = (np.zeros((0, 5)), np.zeros((0, 5, 2)))
    levels = pyramid(img, pyramid_scales(img.shape, min_face, factor))
    b = _proposals(levels, nets["pnet"], thresholds[0])
    sources: list[Level] = [(1.0, 1.0, img), *levels]
    if not len(b):
        return empty
    b = b[nms(b[:, :4], b[:, 4], NMS_PYRAMID)]
    boxes = _square(_refine(b[:, :4], b[:, 5:9]))

    prob, reg = _batched(nets["rnet"], _crops(sources, boxes, 24))
    keep = prob > thresholds[1]
    boxes, prob, reg = boxes[keep], prob[keep], reg[keep]
    if not len(boxes):
        return empty
    keep = nms(boxes, prob, NMS_RNET)
    boxes = _square(_refine(boxes[keep], reg[keep]))
    boxes = np.round(boxes)  # O-Net sees whole-pixel crops; landmarks are fractions of exactly that crop

    prob, reg, marks = _batched(nets["onet"], _crops(sources, boxes, 48))
    keep = prob > thresholds[2]
    boxes, prob, reg, marks = boxes[keep], prob[keep], reg[keep], marks[keep]
    if not len(boxes):
        return empty
    w, h = boxes[:, 2:3] - boxes[:, 0:1], boxes[:, 3:4] - boxes[:, 1:2]
    points = np.stack([boxes[:, 0:1] + w * marks[:, :5], boxes[:, 1:2] + h * marks[:, 5:]], axis=2)
    boxes = _refine(boxes, reg)
    keep = nms(boxes, prob, NMS_ONET, by_min=True)
    return np.concatenate([boxes[keep], prob[keep, None]], axis=1), points[keep]


def detect_faces(rgb: np.ndarray, min_face: float | None = None,
                 thresholds: tuple[float, float, float] = THRESHOLDS) -> list[Box]:
    """Faces as ``app.core.Box``: square boxes (what ``app.detect._crop`` expects) clipped to the frame, sorted left to
    right like Haar's, each with its five landmarks (left eye, right eye, nose, mouth left, mouth right) in
    image pixels."""
    boxes, points = detect(rgb, min_face=min_face, thresholds=thresholds)
    H, W = np.asarray(rgb).shape[:2]
    out = []
    for (x1, y1, x2, _), pts in zip(_square(boxes[:, :4]), points, strict=True):
        x0, y0, side = int(round(x1)), int(round(y1)), int(round(x2 - x1))  # whole pixels, still square
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + side), min(H, y0 + side)
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            continue
        marks = tuple((round(float(x), 2), round(float(y), 2)) for x, y in pts)
        out.append(Box(cx0, cy0, cx1 - cx0, cy1 - cy0, eyes=2, landmarks=marks))  # O-Net located both eyes
    return sorted(out, key=lambda b: (b.x, b.y))
