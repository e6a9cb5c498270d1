"""Where face numbers and labels go: label placement that never covers a face.

Pure geometry (no Tk, no Pillow), so the window, the saved image and the batch annotations share one rule and
tests can check it without a display:

* faces are numbered in reading order (:func:`app.detect.reading_order`);
* :func:`place_labels` gives every face a short tag (number and ensemble emotion) touching its box and the
  full per-model line where it fits without covering any face box, frame edge or other label: beside the
  tag, below or beside the box, else a little away with a leader line; when nothing fits, ``full`` is None
  and the window shows the line on hover/selection (the saved image keeps the tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1/y1 exclusive)
Size = tuple[float, float]  # width, height


@dataclass(frozen=True)
class Placement:
    """Where one face's labels go. ``short``: the tag shows only the number (no room for the emotion word).

    ``full`` is None when the full line fits nowhere; ``stacked`` says it is one line per model;
    ``leader`` is the segment (x0, y0, x1, y1) joining a detached full label to its box, or None.
    """

    tag: Rect
    short: bool
    full: Rect | None
    stacked: bool
    leader: tuple[float, float, float, float] | None


def overlaps(a: Rect, b: Rect) -> bool:
    """True when the rectangles share interior area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(r: Rect, frame: Rect) -> bool:
    return r[0] >= frame[0] and r[1] >= frame[1] and r[2] <= frame[2] and r[3] <= frame[3]


def _shift_into(r: Rect, frame: Rect) -> Rect:
    """Slide ``r`` horizontally into ``frame`` when it sticks out (labels may start left of their box)."""
    w = r[2] - r[0]
    x0 = min(max(r[0], frame[0]), max(frame[0], frame[2] - w))
    return (x0, r[1], x0 + w, r[3])


def _near(rects: list[Rect], region: Rect) -> list[Rect]:
    return [r for r in rects if overlaps(r, region)]


def _free_mask(cands: list[Rect], frame: Rect, obstacles: list[Rect]) -> np.ndarray:
    """Which candidates lie inside ``frame`` and overlap no obstacle: one numpy test for all of them."""
    c = np.asarray(cands, dtype=np.float64).reshape(-1, 4)
    ok = (c[:, 0] >= frame[0]) & (c[:, 1] >= frame[1]) & (c[:, 2] <= frame[2]) & (c[:, 3] <= frame[3])
    if obstacles:
        o = np.asarray(obstacles, dtype=np.float64).reshape(-1, 4)
        hit = ((c[:, None, 0] < o[None, :, 2]) & (o[None, :, 0] < c[:, None, 2])
               & (c[:, None, 1] < o[None, :, 3]) & (o[None, :, 1] < c[:, None, 3]))
        ok &= ~hit.any(axis=1)
    return ok


def _free(r: Rect, frame: Rect, obstacles: list[Rect]) -> bool:
    return _inside(r, frame) and not any(overlaps(r, o) for o in obstacles)


def _tag_candidates(box: Rect, size: Size, frame: Rect) -> list[Rect]:
    """Tag positions touching the box: on its top edge outside, below it, then inside its corners (top-left
    first; the others serve where a neighbour's box overlaps this one's top-left, as landmark-detector boxes
    of touching faces do)."""
    x0, y0, x1, y1 = box
    w, h = size
    return [
        _shift_into((x0, y0 - h, x0 + w, y0), frame),
        _shift_into((x0, y1, x0 + w, y1 + h), frame),
        *_inside_corners(box, size),
    ]


def _inside_corners(box: Rect, size: Size) -> list[Rect]:
    x0, y0, x1, y1 = box
    w, h = size
    return [(x0, y0, x0 + w, y0 + h), (x1 - w, y0, x1, y0 + h), (x0, y1 - h, x0 + w, y1), (x1 - w, y1 - h, x1, y1)]


def _overlap_area(r: Rect, others: list[Rect]) -> float:
    return sum(max(0.0, min(r[2], o[2]) - max(r[0], o[0])) * max(0.0, min(r[3], o[3]) - max(r[1], o[1]))
               for o in others)


def _full_candidates(box: Rect, tag: Rect, size: Size, gap: float) -> list[Rect]:
    """Full-label positions, nearest first: right of the tag, above it, below/right/left of the box."""
    x0, y0, x1, y1 = box
    w, h = size
    tx0, ty0, tx1, ty1 = tag
    return [
        (tx1, ty0, tx1 + w, ty0 + h),  # continues the tag's line
        (tx0, ty0 - h, tx0 + w, ty0),  # above the tag
        (x0, y1 + (ty1 - ty0 if ty0 >= y1 else 0), x0 + w, y1 + (ty1 - ty0 if ty0 >= y1 else 0) + h),
        (x1 + gap, y0, x1 + gap + w, y0 + h),  # right of the box
        (x0 - gap - w, y0, x0 - gap, y0 + h),  # left of the box
        (x1 - w, y0 - h - (ty1 - ty0), x1, y0 - (ty1 - ty0)),  # above, right-aligned
    ]


def _ring(box: Rect, size: Size, step: float, rings: int) -> list[Rect]:
    """Detached positions on growing rings around the box, for a label joined by a leader line."""
    x0, y0, x1, y1 = box
    w, h = size
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out: list[tuple[float, Rect]] = []
    for k in range(1, rings + 1):
        d = k * step
        for fx in (-1, -0.5, 0, 0.5, 1):
            for fy in (-1, -0.5, 0, 0.5, 1):
                if abs(fx) < 1 and abs(fy) < 1:
                    continue
                lx = cx + fx * ((x1 - x0) / 2 + d) - (w if fx < 0 else 0 if fx > 0 else w / 2)
                ly = cy + fy * ((y1 - y0) / 2 + d) - (h if fy < 0 else 0 if fy > 0 else h / 2)
                r = (lx, ly, lx + w, ly + h)
                out.append((abs(fx) + abs(fy) + 4 * k, r))
    return [r for _, r in sorted(out, key=lambda t: t[0])]


def crosses(seg: tuple[float, float, float, float], r: Rect) -> bool:
    """True when segment ``seg`` (x0, y0, x1, y1) passes through the interior of ``r`` (Liang-Barsky clip)."""
    x0, y0, x1, y1 = seg
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - r[0]), (dx, r[2] - x0), (-dy, y0 - r[1]), (dy, r[3] - y0)):
        if p == 0:
            if q <= 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 >= t1:
            return False
    return True


def _leader(box: Rect, label: Rect) -> tuple[float, float, float, float]:
    """Segment from the box edge point nearest the label to the label's nearest point."""
    bx = min(max((label[0] + label[2]) / 2, box[0]), box[2])
    by = min(max((label[1] + label[3]) / 2, box[1]), box[3])
    lx = min(max(bx, label[0]), label[2])
    ly = min(max(by, label[1]), label[3])
    return (bx, by, lx, ly)


def place_labels(
    boxes: Sequence[Rect],
    tag_sizes: Sequence[tuple[Size, Size]],
    full_sizes: Sequence[tuple[Size, Size] | None],
    frame: Rect,
    gap: float = 4.0,
    leader_rings: int = 3,
) -> list[Placement]:
    """Place a tag and, where room allows, the full label for every box (rectangles in one coordinate system).

    ``tag_sizes[i]`` is (size with the emotion word, size of the number alone); ``full_sizes[i]`` is (one
    line, one line per model) or None for no full label. Tags are placed for every face first (they matter
    most), in the given order, then full labels; nothing placed ever overlaps another face's box or another
    label. A tag that fits nowhere outside goes inside its own box's corner, number only. A detached label's
    leader line never crosses another face's box.
    """
    boxes = [tuple(map(float, b)) for b in boxes]
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def boxes_near(i: int, region: Rect) -> list[Rect]:
        """Other faces' boxes that overlap ``region`` (vectorised: photos may hold hundreds of faces)."""
        hit = (arr[:, 0] < region[2]) & (region[0] < arr[:, 2]) & (arr[:, 1] < region[3]) & (region[1] < arr[:, 3])
        hit[i] = False
        return [boxes[j] for j in np.flatnonzero(hit)]

    taken: list[Rect] = []
    tags: list[tuple[Rect, bool]] = []
    for i, box in enumerate(boxes):
        tw = max(tag_sizes[i][0][0], tag_sizes[i][1][0]) + 1
        th = max(tag_sizes[i][0][1], tag_sizes[i][1][1]) + 1
        # Only what lies within a tag's reach can be in the way (keeps 200-face photos interactive).
        region = (box[0] - tw, box[1] - th, box[2] + tw, box[3] + th)
        near = boxes_near(i, region) + _near(taken, region)
        chosen: tuple[Rect, bool] | None = None
        for short, size in ((False, tag_sizes[i][0]), (True, tag_sizes[i][1])):
            for r in _tag_candidates(box, size, frame):
                # Inside its own box the tag may cover that face's corner, never a neighbour's box.
                if _free(r, frame, near):
                    chosen = (r, short)
                    break
            if chosen:
                break
        if chosen is None:  # no free place: the inside corner that covers the least of other faces, then of tags
            others, placed = boxes_near(i, region), _near(taken, region)
            chosen = (min(_inside_corners(box, tag_sizes[i][1]),
                          key=lambda r: (_overlap_area(r, others), _overlap_area(r, placed))), True)
        tags.append(chosen)
        taken.append(chosen[0])
    placements = []
    for i, box in enumerate(boxes):
        tag, short = tags[i]
        full: Rect | None = None
        stacked = False
        leader = None
        sizes = full_sizes[i]
        if sizes is not None:
            step = max(gap * 3, min(box[2] - box[0], box[3] - box[1]) / 2)
            reach = leader_rings * step + gap + 2
            reach_x = max(sizes[0][0], sizes[1][0]) + (tag[2] - tag[0]) + reach
            reach_y = max(sizes[0][1], sizes[1][1]) + (tag[3] - tag[1]) + reach
            region = (box[0] - reach_x, box[1] - reach_y, box[2] + reach_x, box[3] + reach_y)
            others = boxes_near(i, region)
            obstacles = [box, *others, *_near(taken, region)]  # the own box too: the line must not hide it
            cands = [(False, _shift_into(r, frame), False) for r in _full_candidates(box, tag, sizes[0], gap)]
            cands += [(True, _shift_into(r, frame), False) for r in _full_candidates(box, tag, sizes[1], gap)]
            cands += [(False, r, True) for r in _ring(box, sizes[0], step, leader_rings)]
            cands += [(True, r, True) for r in _ring(box, sizes[1], step, leader_rings)]
            # Near positions first (beside the tag or box, slid along the frame's edge), then detached ones
            # joined by a leader line that crosses no other face.
            free = _free_mask([r for _, r, _ in cands], frame, obstacles)
            for k in np.flatnonzero(free):
                is_stacked, r, detached = cands[k]
                line = _leader(box, r) if detached else None
                if line is not None and any(crosses(line, b) for b in others):
                    continue
                full, stacked, leader = r, is_stacked, line
                break
            if full is not None:
                taken.append(full)
        placements.append(Placement(tag=tag, short=short, full=full, stacked=stacked, leader=leader))
    return placements


def place_popup(
    box: Rect, tag: Rect, sizes: tuple[Size, Size], others: Sequence[Rect], frame: Rect, gap: float = 4.0
) -> tuple[Rect, bool, tuple[float, float, float, float] | None]:
    """(rect, stacked, leader) for a hovered or selected face's full label, drawn on top of other labels.

    It still avoids every face box where any position allows (other labels may be covered: they are
    behind it only while the pointer or selection is there); else it goes just below or above the box.
    """
    obstacles = [tuple(map(float, b)) for b in others] + [tuple(map(float, box))]
    for is_stacked, size in ((False, sizes[0]), (True, sizes[1])):
        for r in _full_candidates(box, tag, size, gap):
            if _free(_shift_into(r, frame), frame, obstacles):
                return _shift_into(r, frame), is_stacked, None
    step = max(gap * 3, min(box[2] - box[0], box[3] - box[1]) / 2)
    for is_stacked, size in ((False, sizes[0]), (True, sizes[1])):
        for r in _ring(box, size, step, 3):
            line = _leader(box, r)
            if _free(r, frame, obstacles) and not any(crosses(line, b) for b in others):
                return r, is_stacked, line
    stacked = sizes[0][0] > frame[2] - frame[0]
    w, h = sizes[1] if stacked else sizes[0]
    x = min(max(frame[0], box[0]), max(frame[0], frame[2] - w))
    y = box[3] + 2 if box[3] + 2 + h <= frame[3] else max(frame[1], box[1] - h - 2)
    return (x, y, x + w, y + h), stacked, None
