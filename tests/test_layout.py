"""app.outputs._placement without a display: reading order of faces, and labels that never cover another face's box."""

from __future__ import annotations

import numpy as np
import pytest

from app.detect import reading_order
from app.outputs import place_labels
from app.outputs._placement import overlaps


def test_reading_order_rows_then_left_to_right():
    # Two rows of three; the middle face of each row sits a little higher/lower (heads are never level).
    boxes = [
        (400, 212, 90, 90), (10, 200, 90, 90), (200, 190, 90, 90),  # lower row, jittered by +-12 px
        (210, 10, 90, 90), (20, 22, 90, 90), (390, 0, 90, 90),  # upper row
    ]
    order = reading_order(boxes)
    assert order == [4, 3, 5, 1, 2, 0]


def test_reading_order_is_not_x_order_on_a_collage():
    # Left to right by x (the old numbering) would put the bottom-left face first.
    boxes = [(0, 500, 100, 100), (50, 0, 100, 100), (300, 10, 100, 100)]
    assert reading_order(boxes) == [1, 2, 0]


def test_reading_order_mixed_sizes_and_empty():
    assert reading_order([]) == []
    # A big face beside two small ones stacked: the small ones' centres are 60 px apart, more than half their
    # height, so they are two rows; the big one (centre between them) joins the first.
    boxes = [(0, 0, 200, 200), (250, 30, 50, 50), (250, 120, 50, 50)]
    assert reading_order(boxes) == [0, 1, 2]


def _sizes(n, tag=(60, 16), short=(20, 16), full=(240, 18), stacked=(90, 50)):
    return [(tag, short)] * n, [(full, stacked)] * n


def _assert_clear(boxes, placements, frame):
    for i, p in enumerate(placements):
        labels = [p.tag] + ([p.full] if p.full is not None else [])
        for j, b in enumerate(boxes):
            if j != i:
                for r in labels:
                    assert not overlaps(r, b), f"label of face {i} {r} covers face {j} {b}"
        if p.full is not None:
            assert not overlaps(p.full, boxes[i]), "the full line hides its own face"
            assert frame[0] <= p.full[0] and p.full[2] <= frame[2] and frame[1] <= p.full[1] and p.full[3] <= frame[3]
        for k, q in enumerate(placements):
            if k != i:
                for r in labels:
                    assert not overlaps(r, q.tag) and (q.full is None or not overlaps(r, q.full))


def test_single_face_gets_tag_on_its_box_and_the_full_line():
    frame = (0, 0, 800, 600)
    box = (300, 200, 500, 400)
    tags, fulls = _sizes(1)
    (p,) = place_labels([box], tags, fulls, frame)
    assert not p.short and p.full is not None and p.leader is None
    # The tag touches the box (sits on its top edge).
    assert p.tag[3] == box[1] and p.tag[0] == box[0]


@pytest.mark.parametrize("seed", range(6))
def test_crowded_random_faces_labels_never_cover_another_face(seed):
    rng = np.random.default_rng(seed)
    frame = (0, 0, 720, 480)
    boxes = []
    while len(boxes) < 24:  # a crowded photo: 24 non-overlapping faces of 30-90 px
        s = float(rng.integers(30, 90))
        x, y = float(rng.integers(0, 720 - s)), float(rng.integers(0, 480 - s))
        b = (x, y, x + s, y + s)
        if not any(overlaps(b, o) for o in boxes):
            boxes.append(b)
    tags, fulls = _sizes(len(boxes))
    placements = place_labels(boxes, tags, fulls, frame)
    _assert_clear(boxes, placements, frame)
    assert sum(p.full is not None for p in placements) >= 1  # where there is room, the full line is shown


def test_collage_grid_like_bald_guys():
    """A 6x4 grid of touching faces (the 24-face collage's layout): tags outside or inside, never across."""
    frame = (0, 0, 1200, 800)
    boxes = [(c * 200 + 40, r * 200 + 40, c * 200 + 160, r * 200 + 160) for r in range(4) for c in range(6)]
    tags, fulls = _sizes(24)
    placements = place_labels(boxes, tags, fulls, frame)
    _assert_clear(boxes, placements, frame)
    assert all(not p.short for p in placements)  # 40 px gaps leave room for "12 neutral" above every box


def test_no_room_falls_back_to_number_inside_own_box():
    boxes = [(0, 0, 30, 30), (30, 0, 60, 30), (0, 30, 30, 60), (30, 30, 60, 60)]  # fill the frame
    tags, fulls = _sizes(4)
    placements = place_labels(boxes, tags, fulls, (0, 0, 60, 60))
    for p, b in zip(placements, boxes, strict=True):
        assert p.short and p.full is None
        assert b[0] <= p.tag[0] and p.tag[1] >= b[1]


def _result(boxes, size):
    from app.core import EMOTIONS, Box, FaceResult, PhotoResult, Prediction

    def pred(k):
        probs = np.full(len(EMOTIONS), 0.05, np.float32)
        probs[k % len(EMOTIONS)] = 0.7
        return Prediction(probs=probs, label=EMOTIONS[k % len(EMOTIONS)], confidence=0.7)

    faces = [
        FaceResult(index=i + 1, box=Box(*b), crop=np.zeros((48, 48), np.uint8),
                   predictions={"cnn": pred(i), "ff": pred(i + 1), "resnet18": pred(i + 2)}, ensemble=pred(i))
        for i, b in enumerate(boxes)
    ]
    return PhotoResult(path=None, size=size, faces=faces, seconds=0, detect_seconds=0, label_seconds=0)


@pytest.mark.parametrize("gap", [8, 40, 120])
def test_annotated_image_draws_nothing_inside_another_face(gap):
    """The saved/batch picture: pixels inside every face box stay the photo's, bar that face's own outline."""
    from app.outputs import annotate

    side = 120
    boxes = [(gap + c * (side + gap), gap + r * (side + gap) + (c % 3) * 10, side, side)
             for r in range(4) for c in range(6)]
    w, h = 6 * (side + gap) + gap, 4 * (side + gap) + gap + 30
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    out = annotate(rgb, _result(boxes, (w, h)).shown(), {"cnn": "CNN", "ff": "FF", "resnet18": "ResNet18"})
    line = max(2, round(max(w, h) / 400))
    for i, (x, y, bw, bh) in enumerate(boxes):
        inner = (slice(y + line + 1, y + bh - line - 1), slice(x + line + 1, x + bw - line - 1))
        changed = np.any(out[inner] != rgb[inner], axis=2)
        if gap >= 40:  # room for every tag outside its box: the face is untouched
            assert not changed.any(), f"something drawn inside face {i + 1}"
        else:  # tight: a face may carry its own tag in its top-left corner, never another face's label
            ys, xs = np.nonzero(changed)
            assert not len(ys) or (ys.max() < bh // 3 and xs.min() == 0), f"label inside face {i + 1}"
