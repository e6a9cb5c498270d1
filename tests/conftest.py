"""Shared fixtures: a tiny ONNX model zoo built without torch, the sample photo, and generated bad images.

The real models are trained elsewhere and may not exist yet; the app's tests only need models that obey the
ONNX contract (input ``input`` [N,1,48,48] float32, output ``logits`` [N,7]), so they are built here with
``onnx.helper`` as Flatten -> Gemm with fixed random weights.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE = REPO / "app" / "assets" / "sample.jpg"
DISPLAY = {"cnn": "CNN", "ff": "FF", "resnet18": "ResNet18"}


def build_onnx_model(path: Path, seed: int, input_size: tuple[int, int] = (48, 48)) -> Path:
    """Write a contract-conforming model: ``logits = flatten(input) @ W + b`` with seeded weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = input_size
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((h * w, 7)) * 0.05).astype(np.float32)
    bias = (rng.standard_normal(7) * 0.5).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
        ],
        f"tiny_{seed}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 7])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="emotionlens-tests")
    model.ir_version = 8  # readable by every onnxruntime >= 1.18
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_zoo(folder: Path, names: Sequence[str] = ("cnn", "ff", "resnet18")) -> Path:
    """A zoo folder with one tiny model per name and a valid manifest.json; returns the folder."""
    from app.core import EMOTIONS

    folder.mkdir(parents=True, exist_ok=True)
    models = []
    for i, name in enumerate(names):
        build_onnx_model(folder / f"{name}.onnx", seed=100 + i)
        models.append(
            {
                "name": name,
                "display_name": DISPLAY.get(name, name.upper()),
                "file": f"{name}.onnx",
                "input_size": [48, 48],
                "metrics": {"public_test_accuracy": 0.14},
                "training": {"note": "random weights for tests"},
            }
        )
    (folder / "manifest.json").write_text(json.dumps({"classes": list(EMOTIONS), "models": models}, indent=2))
    return folder


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny models named cnn/ff/resnet18 (display CNN/FF/ResNet18) with their manifest."""
    return build_zoo(tmp_path_factory.mktemp("tiny_zoo"))


@pytest.fixture
def zoo_factory(tmp_path: Path, tiny_zoo: Path) -> Callable[..., Path]:
    """``zoo_factory(names)`` builds a fresh zoo with those model names in a per-test folder."""

    def make(names: Sequence[str] = ("cnn", "ff", "resnet18"), folder: str = "zoo") -> Path:
        return build_zoo(tmp_path / folder, names)

    return make


@pytest.fixture
def exported_zoo(tmp_path: Path) -> Path:
    """A zoo of two tiny torch models (cnn, ff) exported by training.export, as the training scripts make it."""
    import torch

    from training import export
    from training.models import build_model

    torch.manual_seed(0)
    for name, params in (("cnn", {"width": 4, "fc": 8}), ("ff", {"hidden": (16,)})):
        path = export.export_onnx(build_model(name, **params).eval(), tmp_path / "zoo" / f"{name}.onnx")
        export.update_manifest(tmp_path / "zoo", export.manifest_entry(name, path.name, {}, {}))
    return tmp_path / "zoo"


@pytest.fixture
def zoo_copy(tmp_path: Path, tiny_zoo: Path) -> Path:
    """A writable copy of the tiny zoo, for tests that break it."""
    return Path(shutil.copytree(tiny_zoo, tmp_path / "zoo_copy"))


@pytest.fixture(scope="session")
def sample_photo() -> Path:
    """app/assets/sample.jpg: NASA portrait of Eileen Collins (public domain), one frontal face."""
    return SAMPLE


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repo; tests using it are marked slow and skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (data shared with developers and CI)")
    return SHARED


def huge_png_header(width: int, height: int) -> bytes:
    """A tiny file whose PNG header claims ``width`` x ``height``: a decompression bomb in miniature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_bad_images(folder: Path, sample: Path = SAMPLE) -> dict[str, Path]:
    """Generate every awkward input kind into ``folder``; keys name the kind (see ``bad_images``)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = Image.open(sample).convert("RGB")
    raw = sample.read_bytes()
    out: dict[str, Path] = {}

    def put(key: str, name: str) -> Path:
        out[key] = folder / name
        return out[key]

    put("truncated_jpg", "truncated.jpg").write_bytes(raw[: len(raw) * 6 // 10])
    put("zero_byte", "empty.jpg").write_bytes(b"")
    put("text_as_jpg", "notes.jpg").write_text("this is a text file with an image's name\n")
    gray16 = (np.asarray(src.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(put("png16", "gray16.png"))
    src.convert("CMYK").save(put("cmyk_jpg", "cmyk.jpg"), quality=92)
    # Upright 512x400 portrait stored rotated 90 degrees CCW with EXIF Orientation 6 ("rotate 90 CW to view").
    upright = src.crop((0, 0, 512, 400))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(put("exif_rotated_jpg", "rotated.jpg"), exif=exif, quality=92)
    rgba = src.convert("RGBA")
    alpha = np.full((src.height, src.width), 255, np.uint8)
    alpha[:, :40] = 0  # a transparent strip that must come out white
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(put("rgba_png", "rgba.png"))
    src.convert("P", palette=Image.Palette.ADAPTIVE).save(put("palette_png", "palette.png"))
    shutil.copy(sample, put("unicode_name", "фото_日本語_é.jpg"))
    put("huge_png", "huge.png").write_bytes(huge_png_header(30_000, 30_000))
    buf = io.BytesIO()
    src.save(buf, "PNG")
    png = buf.getvalue()
    put("truncated_png", "truncated.png").write_bytes(png[: len(png) // 2])
    return out


@pytest.fixture(scope="session")
def bad_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated awkward inputs, by kind: ``truncated_jpg``, ``truncated_png``, ``zero_byte``, ``text_as_jpg``,
    ``png16`` (16-bit gray), ``cmyk_jpg``, ``exif_rotated_jpg`` (upright 512x400 after EXIF rotation),
    ``rgba_png`` (transparent left strip), ``palette_png``, ``unicode_name``, ``huge_png`` (30000x30000 header).
    The last five and png16/cmyk are valid and must load; the rest must fail with a clear message.
    """
    return make_bad_images(tmp_path_factory.mktemp("bad_images"))


def cartoon_face(side: int = 200) -> np.ndarray:
    """A drawn face (skin oval, flat dark eye blobs, nose line, mouth), gray uint8.

    The Haar face cascade fires on it (its features are dark eye band vs bright cheeks) but the eye cascade
    finds no eye in it: the false positive the eye check exists to remove.
    """
    import cv2

    im = np.full((200, 200), 30, np.uint8)
    cv2.ellipse(im, (100, 100), (62, 80), 0, 0, 360, 210, -1, cv2.LINE_AA)
    for cx in (72, 128):
        cv2.ellipse(im, (cx, 80), (18, 10), 0, 0, 360, 40, -1, cv2.LINE_AA)
    cv2.line(im, (100, 90), (100, 125), 120, 3, cv2.LINE_AA)
    cv2.ellipse(im, (100, 145), (26, 8), 0, 0, 360, 60, -1, cv2.LINE_AA)
    return im if side == 200 else cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def false_positive_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample portrait with a drawn cartoon face beside it: 2 faces without eye check, 1 with it."""
    sample = Image.open(SAMPLE).convert("RGB")
    canvas = Image.new("RGB", (800, 512), (30, 30, 30))
    canvas.paste(sample, (0, 0))
    canvas.paste(Image.fromarray(cartoon_face(220)).convert("RGB"), (550, 150))
    path = tmp_path_factory.mktemp("false_positive") / "portrait_and_drawing.png"
    canvas.save(path)
    return path
