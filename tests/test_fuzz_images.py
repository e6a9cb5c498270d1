"""Fuzz: a few hundred corrupted JPEG, PNG, WebP, TIFF and GIF files through load_image and the detector.

Only the project's ImageError may come out: never another exception, never a hang (a time limit per file),
never an image past the decompression-bomb limit. The seeds are fixed, so a failure reproduces; set
EMOTIONLENS_FUZZ_SEED to explore other corruptions.
"""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core import ImageError, load_image
from app.core._imageio import MAX_PIXELS
from app.detect import detect_faces, to_gray

FORMATS = {"jpg": ("JPEG", {"quality": 85}), "png": ("PNG", {}), "webp": ("WEBP", {"quality": 80}),
           "tif": ("TIFF", {"compression": "tiff_lzw"}), "gif": ("GIF", {})}
VARIANTS_PER_FORMAT = 64  # 5 formats x 64 = 320 files
TIME_LIMIT_S = 10.0  # per file; a healthy decode of these takes milliseconds


def _originals() -> dict[str, bytes]:
    """Small real files made from an array with structure (gradients, a disc) so every codec does work."""
    y, x = np.mgrid[0:72, 0:96]
    rgb = np.stack([x * 2.6, y * 3.5, ((x - 48) ** 2 + (y - 36) ** 2 < 400) * 255], axis=-1).astype(np.uint8)
    im = Image.fromarray(rgb)
    out = {}
    for ext, (fmt, kw) in FORMATS.items():
        buf = io.BytesIO()
        (im.convert("P") if fmt == "GIF" else im).save(buf, fmt, **kw)
        out[ext] = buf.getvalue()
    return out


def _corrupt(data: bytes, rng: np.random.Generator, others: list[bytes]) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 5)
    if kind == 0:  # bit flips, anywhere
        for _ in range(int(rng.integers(1, 24))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # truncation
        b = b[: int(rng.integers(1, len(b)))]
    elif kind == 2:  # this header spliced onto another file's body
        other = others[int(rng.integers(0, len(others)))]
        cut = int(rng.integers(8, min(len(b), 200)))
        b = b[:cut] + other[int(rng.integers(0, len(other))):]
    elif kind == 3:  # bytes overwritten in the header, where sizes and lengths live
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(0, min(len(b), 64)))
            b[i] = int(rng.integers(0, 256))
    else:  # a random block of garbage in the middle, and sometimes a duplicated tail
        i = int(rng.integers(0, len(b)))
        b[i : i + int(rng.integers(1, 64))] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        if rng.random() < 0.5:
            b += b[-int(rng.integers(1, len(b))):]
    return bytes(b)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001
    raise _Timeout


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM for the per-file time limit")
def test_corrupted_images_give_only_image_errors(tmp_path):
    seed = int(os.environ.get("EMOTIONLENS_FUZZ_SEED", "14"))
    rng = np.random.default_rng(seed)
    originals = _originals()
    others = list(originals.values())
    outcomes = {"loaded": 0, "refused": 0}
    slowest = (0.0, "")
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for ext, data in originals.items():
            for i in range(VARIANTS_PER_FORMAT):
                path: Path = tmp_path / f"{ext}_{i:03d}.{ext}"
                path.write_bytes(_corrupt(data, rng, others))
                t = time.perf_counter()
                signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
                try:
                    rgb = load_image(path)
                    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, path
                    assert rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS
                    detect_faces(to_gray(rgb))
                    outcomes["loaded"] += 1
                except ImageError as e:
                    assert "\n" not in str(e) and str(e).startswith(str(path))
                    outcomes["refused"] += 1
                except _Timeout:
                    pytest.fail(f"{path.name} (seed {seed}): no result within {TIME_LIMIT_S} s")
                except Exception as e:  # the bug this test exists to catch
                    pytest.fail(f"{path.name} (seed {seed}): {type(e).__name__}: {e}")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                slowest = max(slowest, (time.perf_counter() - t, path.name))
    finally:
        signal.signal(signal.SIGALRM, old)
    total = len(FORMATS) * VARIANTS_PER_FORMAT
    assert outcomes["loaded"] + outcomes["refused"] == total
    assert outcomes["refused"] > total // 4  # the corruptions bite; the test is not decoding clean files
    assert slowest[0] < TIME_LIMIT_S, slowest
