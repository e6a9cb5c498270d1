"""Aligned crops: the eyes level and placed where FER2013 has them, exactly, whatever the face's tilt."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.core import Box, load_image
from app.detect import crop_face, detect_faces
from app.detect._align import FER_EYE_DIST, FER_EYE_X, FER_EYE_Y, align_face, eye_angle, eye_transform

LEFT, RIGHT = (180.0, 200.0), (260.0, 200.0)  # eye centres of the synthetic face, level


def synthetic_face() -> np.ndarray:
    """A 480x480 textured face: oval, two dark eyes at LEFT/RIGHT, an off-centre mouth (breaks symmetry)."""
    rng = np.random.default_rng(3)
    im = cv2.GaussianBlur(rng.integers(60, 200, (480, 480), dtype=np.uint8), (0, 0), 6)
    cv2.ellipse(im, (220, 240), (110, 140), 0, 0, 360, 190, -1, cv2.LINE_AA)
    for cx, cy in (LEFT, RIGHT):
        cv2.circle(im, (int(cx), int(cy)), 12, 30, -1, cv2.LINE_AA)
    cv2.ellipse(im, (235, 310), (40, 10), 0, 0, 360, 70, -1, cv2.LINE_AA)
    return im


def _turn(points: list[tuple[float, float]], m: np.ndarray) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in m @ (x, y, 1.0)) for x, y in points]  # type: ignore[misc]


def test_eyes_land_on_the_fer_framing():
    m = eye_transform(LEFT, RIGHT, (48, 48))
    (lx, ly), (rx, ry) = _turn([LEFT, RIGHT], m)
    assert lx == pytest.approx(48 * (FER_EYE_X - FER_EYE_DIST / 2), abs=1e-9)
    assert rx == pytest.approx(48 * (FER_EYE_X + FER_EYE_DIST / 2), abs=1e-9)
    assert ly == pytest.approx(48 * FER_EYE_Y, abs=1e-9) and ry == pytest.approx(48 * FER_EYE_Y, abs=1e-9)


@pytest.mark.parametrize("angle", [-30.0, -12.5, 17.0, 30.0])
def test_alignment_undoes_a_known_rotation_exactly(angle):
    face = synthetic_face()
    rot = cv2.getRotationMatrix2D((240, 240), angle, 1.0)  # counter-clockwise on screen for angle > 0
    tilted = cv2.warpAffine(face, rot, (480, 480), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    left, right = sorted(_turn([LEFT, RIGHT], rot))
    assert eye_angle(left, right) == pytest.approx(-angle, abs=1e-9)
    upright = align_face(face, LEFT, RIGHT, (96, 96)).astype(float)
    undone = align_face(tilted, left, right, (96, 96)).astype(float)
    inner = (slice(8, -8), slice(8, -8))  # the border holds replicated pixels that differ by construction
    assert np.abs(undone[inner] - upright[inner]).mean() < 2.0
    # Left unaligned, the same crop differs a lot: the test would notice an alignment that does nothing.
    plain = align_face(tilted, left, (left[0] + np.hypot(right[0] - left[0], right[1] - left[1]), left[1]),
                       (96, 96)).astype(float)
    assert np.abs(plain[inner] - upright[inner]).mean() > 4.0


def test_large_face_is_shrunk_without_aliasing():
    stripes = np.tile(np.array([0, 255], np.uint8), (2000, 1000))  # 1 px stripes average to mid-grey
    crop = align_face(stripes, (700.0, 800.0), (1300.0, 800.0), (48, 48))
    assert abs(float(crop[10:-10, 10:-10].mean()) - 127.5) < 10 and crop[10:-10, 10:-10].std() < 10


def test_crop_face_aligns_only_with_two_eye_landmarks():
    face = synthetic_face()
    box = Box(120, 110, 200, 200)
    with_eyes = Box(120, 110, 200, 200, 2, (LEFT, RIGHT))
    assert np.array_equal(crop_face(face, with_eyes), align_face(face, LEFT, RIGHT, (48, 48)))
    assert np.array_equal(crop_face(face, with_eyes, align=False), crop_face(face, box))
    one_eye = Box(120, 110, 200, 200, 1, ())
    assert np.array_equal(crop_face(face, one_eye), crop_face(face, box))


def test_haar_eye_check_records_a_level_eye_pair(sample_photo):
    faces = detect_faces(load_image(sample_photo))
    assert len(faces) == 1 and len(faces[0].landmarks) == 2
    (lx, ly), (rx, ry) = faces[0].landmarks
    b = faces[0]
    assert b.x < lx < b.x + b.w / 2 < rx < b.x + b.w  # one eye each side of the face, left first
    assert b.y < ly < b.y + b.h / 2 and b.y < ry < b.y + b.h / 2
    assert abs(eye_angle((lx, ly), (rx, ry))) < 8  # the sample portrait is upright


def test_five_landmarks_use_the_landmark_detectors_framing():
    from app.detect._align import HAAR_FRAMING, LANDMARK_FRAMING, framing_for

    face = synthetic_face()
    five = (LEFT, RIGHT, (220.0, 250.0), (200.0, 300.0), (240.0, 300.0))
    assert framing_for(five) == LANDMARK_FRAMING and framing_for((LEFT, RIGHT)) == HAAR_FRAMING
    box = Box(120, 110, 200, 200, 2, five)
    assert np.array_equal(crop_face(face, box), align_face(face, LEFT, RIGHT, (48, 48), LANDMARK_FRAMING))
