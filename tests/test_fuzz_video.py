"""Fuzz: corrupted MP4, MOV, MKV, WebM and AVI clips through probe, frames and frame_at.

Only the project's VideoError may come out: never another exception, never a hang (a time limit per file),
never a frame that is not upright RGB uint8 within MAX_SIDE. The seeds are fixed, so a failure reproduces; set
EMOTIONLENS_FUZZ_SEED to explore other corruptions.

The time limit is a worker thread joined with a timeout rather than SIGALRM (tests/test_fuzz_images.py): a
signal only reaches Python between bytecodes, and a decoder stuck inside FFmpeg would never return to take it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.video import _decode as V
from tests.video_synth import moving_square_frames, write_clip

# (file name, write_clip keywords): each container the app lists, with its usual codec; the MP4s both ways
# round (index last, as cameras write it, and first), one with a sound track to interleave.
ORIGINALS = {
    "h264.mp4": {}, "faststart.mp4": {"container_options": {"movflags": "+faststart"}},
    "sound.mov": {"audio": True}, "h264.mkv": {"gop": 6}, "vp8.webm": {}, "mjpeg.avi": {},
}
VARIANTS_PER_FILE = 7  # 6 x 7 = 42 files
TIME_LIMIT_S = 10.0  # per file; a healthy run over one of these takes ~10 ms


def _corrupt(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = int(rng.integers(0, 6))
    if kind == 0:  # bit flips anywhere
        for _ in range(int(rng.integers(1, 40))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
        return "bitflips", bytes(b)
    if kind == 1:  # truncation
        return "truncated", bytes(b[: int(rng.integers(1, len(b)))])
    if kind == 2:  # a range zeroed (a bad sector, a sparse file never filled)
        i = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, max(2, len(b) // 4)))
        b[i : i + n] = bytes(len(b[i : i + n]))
        return "zeroed", bytes(b)
    if kind == 3:  # chunks shuffled (a broken download manager reassembling parts)
        size = int(rng.integers(256, 4096))
        chunks = [bytes(b[i : i + size]) for i in range(0, len(b), size)]
        order = np.arange(len(chunks))
        lo = int(rng.integers(0, len(chunks)))
        hi = min(len(chunks), lo + int(rng.integers(2, 6)))
        order[lo:hi] = rng.permutation(order[lo:hi])
        return "shuffled", b"".join(chunks[j] for j in order)
    if kind == 4:  # header bytes overwritten: sizes, dimensions, codec ids, time bases live there
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(0, min(len(b), 512)))
            b[i] = int(rng.integers(0, 256))
        return "header", bytes(b)
    # garbage inserted in the middle, shifting everything after it
    i = int(rng.integers(0, len(b)))
    junk = rng.integers(0, 256, int(rng.integers(1, 2000)), dtype=np.uint8).tobytes()
    return "inserted", bytes(b[:i]) + junk + bytes(b[i:])


def _exercise(path: Path) -> str:
    """probe, frames (to the end) and frame_at; 'decoded', 'partial' (frames then an error) or 'refused'."""
    outcome = "decoded"
    for call in ("probe", "frames", "frame_at"):
        try:
            if call == "probe":
                V.probe(path)
            elif call == "frames":
                n = 0
                for f in V.frames(path):
                    _check_frame(f, path)
                    n += 1
            else:
                _check_frame(V.frame_at(path, 0.3), path)
        except V.VideoError as e:
            assert "\n" not in str(e) and str(e).startswith(f"{path}: "), str(e)
            if call == "frames":
                assert e.frames_decoded == n
                outcome = "partial" if n else "refused"
    return outcome


def _check_frame(f: V.Frame, path: Path) -> None:
    assert f.rgb.dtype == np.uint8 and f.rgb.ndim == 3 and f.rgb.shape[2] == 3, path
    assert max(f.rgb.shape[:2]) <= V.MAX_SIDE and np.isfinite(f.time_s), path


def _run_with_limit(path: Path) -> tuple[str | None, BaseException | None, float]:
    """Run _exercise in a daemon thread: (outcome, unexpected exception, seconds); outcome None on timeout."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["outcome"] = _exercise(path)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            result["error"] = e

    t = time.perf_counter()
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(TIME_LIMIT_S)
    took = time.perf_counter() - t
    if worker.is_alive():
        return None, None, took
    return result.get("outcome"), result.get("error"), took  # type: ignore[return-value]


def test_corrupted_videos_give_only_video_errors(tmp_path):
    seed = int(os.environ.get("EMOTIONLENS_FUZZ_SEED", "21"))
    rng = np.random.default_rng(seed)
    outcomes = {"decoded": 0, "partial": 0, "refused": 0}
    slowest = (0.0, "")
    for name, kw in ORIGINALS.items():
        data = write_clip(tmp_path / f"orig_{name}", moving_square_frames(24, noise=12), **kw).read_bytes()
        for i in range(VARIANTS_PER_FILE):
            how, bad = _corrupt(data, rng)
            path = tmp_path / f"{i:02d}_{how}_{name}"
            path.write_bytes(bad)
            outcome, error, took = _run_with_limit(path)
            if outcome is None and error is None:
                pytest.fail(f"{path.name} (seed {seed}): no result within {TIME_LIMIT_S} s")
            if error is not None:  # the bug this test exists to catch
                pytest.fail(f"{path.name} (seed {seed}): {type(error).__name__}: {error}")
            outcomes[outcome] += 1
            slowest = max(slowest, (took, path.name))
    total = len(ORIGINALS) * VARIANTS_PER_FILE
    assert sum(outcomes.values()) == total
    # the corruptions bite (the test is not decoding clean files), and not every one is fatal
    assert outcomes["refused"] + outcomes["partial"] > total // 4, outcomes
    assert outcomes["decoded"] + outcomes["partial"] > 0, outcomes
    assert slowest[0] < TIME_LIMIT_S, slowest
