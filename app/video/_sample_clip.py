"""The self-test's sample clip, made from the sample photo when it is needed instead of being stored.

A 1.5 s slow pan and zoom over app/assets/sample.jpg (the public-domain NASA portrait): the face moves and grows
across the frame as a face in a real video does, so the detector has to find it again, the tracker has to
keep its number and the smoother has something to smooth. 45 frames at 30 fps, 320x240, H.264 in MP4, about
40 KB. ``python -m app --self-test`` labels it after the photo; the bundle gets a copy made at build time
(build.spec), a source checkout one made on first use under the cache folder. Deterministic for a given
PyAV/x264 build (one encoder thread, fixed settings). ``packaging/make_sample_clip.py`` is its command line.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

NAME = "sample_clip.mp4"
SECONDS, FPS, SIZE, CRF = 1.5, 30, (320, 240), 26


def _smooth(t: float) -> float:
    """Ease in and out (0 -> 1) so the motion starts and ends gently, like a camera move."""
    return t * t * (3 - 2 * t)


def pan_zoom_frames(photo: Image.Image, size: tuple[int, int], n: int) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (w, h): a window over ``photo`` that zooms in and drifts right and down.

    The window starts wide (the whole portrait's width, face small and left of centre) and ends at 70% of that,
    shifted so the face moves across the frame by about a fifth of its width while it grows by ~40%.
    """
    w, h = size
    pw, ph = photo.size
    aspect = w / h
    out = []
    for i in range(n):
        t = _smooth(i / max(1, n - 1))
        cw = pw * (1.0 - 0.3 * t)  # crop width: 100% -> 70% of the photo
        ch = cw / aspect
        ch = min(ch, ph)
        cw = ch * aspect
        x0 = (pw - cw) * (0.15 + 0.55 * t)  # the crop slides right over the face...
        y0 = (ph - ch) * 0.1 * (1 - t)  # ...and up a little, keeping the face clear of the top edge
        frame = photo.resize((w, h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
        out.append(np.asarray(frame.convert("RGB")))
    return out


def write_mp4(path: Path, frames: list[np.ndarray], fps: int, crf: int) -> None:
    """H.264 in MP4, yuv420p (plays everywhere), one thread and a fixed GOP so the bytes are reproducible."""
    import av

    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
        out.metadata["title"] = "EmotionLens self-test clip (pan and zoom over the public-domain sample.jpg)"
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow", "tune": "film", "threads": "1", "g": str(fps)}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)


def make_clip(source: Path, out: Path, seconds: float = SECONDS, fps: int = FPS, size: tuple[int, int] = SIZE,
              crf: int = CRF) -> int:
    """Write the pan-and-zoom clip of ``source`` to ``out``; returns its number of frames."""
    n = max(1, round(seconds * fps))
    with Image.open(source) as im:
        frames = pan_zoom_frames(im.convert("RGB"), size, n)
    write_mp4(out, frames, fps, crf)
    return n


def sample_clip() -> Path:
    """The bundled clip when there is one (the frozen app), else one made once from the sample photo under the
    cache folder ($EMOTIONLENS_CACHE or ~/.cache/emotionlens)."""
    from app.core import resource_path

    bundled = Path(resource_path("app", "assets", NAME))
    if bundled.is_file():
        return bundled
    cache = Path(os.environ.get("EMOTIONLENS_CACHE", Path.home() / ".cache" / "emotionlens")) / NAME
    if not cache.is_file():
        make_clip(Path(resource_path("app", "assets", "sample.jpg")), cache)
    return cache
