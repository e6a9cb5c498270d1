"""Small synthetic video clips for tests, written with PyAV: any frames, any container, VFR, rotation, audio.

Clips are made at test time instead of being committed, so each test states exactly what is in its clip (frame
count, timestamps, rotation metadata) and can check the decoder against it. Everything is small (tens of
pixels, well under a second) so a clip costs milliseconds to write.

* :func:`write_clip` encodes any sequence of RGB frames; the codec follows the suffix (:data:`DEFAULT_CODECS`).
* :func:`moving_square_frames` draws a bright square that moves a known step per frame, and
  :func:`square_position` finds it again, so a test can tell which frame it got back even after lossy coding.
* :func:`pan_frames` moves a window across a photo (a face "walking" through the frame, for tracker tests).
* :func:`write_audio_only` writes a file with a sound track and no picture.

Containers and codecs this PyAV build can write (checked in tests/test_video.py): MP4/MOV/M4V/MKV with H.264
(libx264, or mpeg4), AVI with Motion JPEG, WebM with VP8 (libvpx) or VP9 (libvpx-vp9). ``rotate`` needs PyAV 18
(``VideoStream.set_display_rotation``); reading the clips works with any PyAV app/video/_decode.py supports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

# Codec by suffix when write_clip is given none: each container's usual codec, all encoders in PyAV's wheels.
DEFAULT_CODECS = {
    ".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
    ".avi": "mjpeg", ".webm": "libvpx",
}
# Audio codec by suffix for audio=True (WebM allows only Opus/Vorbis; AVI takes plain PCM).
AUDIO_CODECS = {".webm": "libopus", ".avi": "pcm_s16le"}
# Fine enough for any VFR timeline made of 1/24, 1/25, 1/30, 1/50, 1/60 s steps (the MPEG clock). Matroska and
# WebM store milliseconds whatever is asked, so their timestamps come back rounded to 1 ms.
VFR_TIME_BASE = Fraction(1, 90000)


def _rate(fps: float | Fraction) -> Fraction:
    """Frame rates are rationals in containers: 29.97 -> 30000/1001 (the NTSC rates), 25 -> 25."""
    if isinstance(fps, Fraction):
        return fps
    ntsc = round(fps * 1.001)
    if abs(fps - ntsc) > 0.005 and abs(fps - ntsc * 1000 / 1001) < 0.005:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def write_clip(
    path: str | Path,
    frames_rgb: Iterable[np.ndarray],
    fps: float | Fraction = 30,
    codec: str | None = None,
    times_s: Sequence[float] | None = None,
    rotate: int = 0,
    audio: bool = False,
    *,
    gop: int | None = None,
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames_rgb`` (each ``(H, W, 3)`` uint8, all the same even size) into ``path``; return the path.

    ``fps``: the constant frame rate, frame ``i`` at ``i / fps`` s. ``times_s``: instead, each frame's own
    presentation time in seconds (variable frame rate; increasing), stored on :data:`VFR_TIME_BASE` (AVI can only
    hold a constant rate: don't pass times for it). ``codec``: an FFmpeg encoder name, by default from the suffix
    (:data:`DEFAULT_CODECS`). ``rotate``: the display rotation phones write, in degrees clockwise (90: the stored
    frame is landscape and players turn it a quarter turn clockwise to show it upright), written as the display
    matrix (``tkhd`` matrix in MP4/MOV, projection element in Matroska). ``audio``: add a quiet 440 Hz track as long
    as the video. ``gop``: keyframe interval in frames (the encoder's default otherwise; small values make seeking
    tests meaningful). ``options``/``container_options``: passed to the encoder/muxer, e.g.
    ``container_options={"movflags": "+faststart"}`` puts the MP4 index first.
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or DEFAULT_CODECS.get(suffix, "libx264")
    rate = _rate(fps)
    if times_s is not None:
        time_base = VFR_TIME_BASE
        pts_list = [round(Fraction(t).limit_denominator(10**6) / time_base) for t in times_s]
        if any(b <= a for a, b in zip(pts_list, pts_list[1:], strict=False)):
            raise ValueError("times_s must be strictly increasing (at the 1/90000 s clock)")
    else:
        time_base, pts_list = 1 / rate, None
    enc_options = dict(options or {})
    if codec == "libx264":
        # veryfast keeps B-frames (decode order != presentation order, which the decoder must undo) and is quick.
        enc_options = {"preset": "veryfast", "crf": "18", **enc_options}
    elif codec in ("libvpx", "libvpx-vp9"):
        enc_options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M", **enc_options}
    elif codec == "mjpeg":
        enc_options = {"q:v": "3", **enc_options}
    container = av.open(str(path), "w", options=dict(container_options or {}))
    try:
        stream = container.add_stream(codec, rate=rate, options=enc_options)
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
        if gop is not None:
            stream.codec_context.gop_size = gop
        if rotate % 360:
            if rotate % 90:
                raise ValueError(f"rotate must be a multiple of 90 degrees, not {rotate}")
            stream.set_display_rotation(-(rotate % 360))  # the matrix angle is counter-clockwise
        tone = _Tone(container, AUDIO_CODECS.get(suffix, "aac")) if audio else None
        count, last_pts = 0, 0
        for i, rgb in enumerate(frames_rgb):
            rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
            if i == 0:
                h, w = rgb.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"frame size must be even for 4:2:0 video, got {w}x{h}")
                stream.width, stream.height = w, h
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_list is not None:
                if i >= len(pts_list):
                    raise ValueError(f"more frames than times_s ({len(pts_list)})")
                frame.pts = pts_list[i]
            else:
                frame.pts = i
            frame.time_base = time_base
            last_pts = frame.pts
            container.mux(stream.encode(frame))
            if tone is not None:
                tone.write_until(float(frame.pts * time_base))
            count += 1
        if count == 0:
            raise ValueError("no frames to write")
        container.mux(stream.encode(None))
        if tone is not None:
            tone.write_until(float(last_pts * time_base) + float(1 / rate))
            tone.close()
    except BaseException:
        container.close()
        path.unlink(missing_ok=True)
        raise
    container.close()
    return path


class _Tone:
    """A mono 440 Hz tone written block by block, interleaved with the video so the muxer never waits."""

    def __init__(self, container, codec: str) -> None:  # noqa: ANN001 - an av OutputContainer
        self.container = container
        self.codec = codec
        self.sample_rate = 48000
        self.stream = container.add_stream(codec, rate=self.sample_rate)
        self.stream.layout = "mono"
        self.format = "s16" if codec.startswith("pcm_") else "flt" if codec == "libopus" else "fltp"
        self.written = 0

    def write_until(self, seconds: float) -> None:
        import av

        block = self.stream.codec_context.frame_size or 1024
        while self.written < seconds * self.sample_rate:
            t = (self.written + np.arange(block)) / self.sample_rate
            wave = 0.1 * np.sin(2 * math.pi * 440 * t)
            samples = (wave * 32767).astype(np.int16) if self.format == "s16" else wave.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format=self.format, layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self.written
            frame.time_base = Fraction(1, self.sample_rate)
            self.container.mux(self.stream.encode(frame))
            self.written += block

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))


def write_audio_only(path: str | Path, seconds: float = 0.5) -> Path:
    """A file with one audio track and no video stream (a voice memo renamed .mp4): the decoder must refuse it."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    # The MP4 muxer takes .m4a/.mp4/.mov alike; force it so any video suffix gets a real audio-only MP4.
    fmt = {".webm": "webm", ".mkv": "matroska", ".avi": "avi"}.get(suffix, "mp4")
    container = av.open(str(path), "w", format=fmt)
    try:
        tone = _Tone(container, AUDIO_CODECS.get(suffix, "aac"))
        tone.write_until(seconds)
        tone.close()
    finally:
        container.close()
    return path


def vfr_times(intervals: Sequence[float], n: int) -> list[float]:
    """``n`` presentation times starting at 0 whose gaps cycle through ``intervals`` (e.g. 1/30, 1/10, 1/60)."""
    times = [0.0]
    for i in range(n - 1):
        times.append(times[-1] + intervals[i % len(intervals)])
    return times


def moving_square_frames(
    n: int = 15, width: int = 96, height: int = 64, side: int = 16, step: int = 4, background: int = 40,
    y: int | None = None, noise: int = 0,
) -> Iterator[np.ndarray]:
    """``n`` frames of a white square moving right by ``step`` px per frame on a flat grey background.

    Frame ``i`` has the square's left edge at ``x = i * step`` (wrapping), its top at ``y`` (centred by default),
    so :func:`square_position` tells which frame came back: ``x // step``. A faint fixed texture keeps the
    encoders from turning the background into nothing. ``noise``: amplitude of fresh random grain in each frame
    (seeded by the frame number), which makes every frame cost about the same bytes, so cutting a file at 60%
    cuts its frames at about 60% (truncation and fuzz tests).
    """
    if y is None:
        y = (height - side) // 2
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.clip(background + 8 * np.sin(xx / 5.0) * np.cos(yy / 7.0), 0, 255).astype(np.uint8)
    base = np.repeat(base[:, :, None], 3, axis=2)
    span = max(1, width - side + 1)
    for i in range(n):
        frame = base.copy()
        if noise:
            grain = np.random.default_rng(i).integers(-noise, noise + 1, (height, width, 1))
            frame = np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)
        x = (i * step) % span
        frame[y : y + side, x : x + side] = 255
        yield frame


def square_position(rgb: np.ndarray, threshold: int = 160) -> tuple[int, int] | None:
    """Top-left ``(x, y)`` of the bright square in a frame (after lossy coding), or None when there is none."""
    mask = rgb.astype(np.int16).mean(axis=2) > threshold
    cols, rows = np.flatnonzero(mask.sum(axis=0) > 2), np.flatnonzero(mask.sum(axis=1) > 2)
    if not len(cols) or not len(rows):
        return None
    return int(cols[0]), int(rows[0])


def corner_frames(n: int = 3, width: int = 96, height: int = 64, side: int = 16) -> Iterator[np.ndarray]:
    """``n`` identical frames, black with a white square in the top-left corner: shows which way a frame turned."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:side, :side] = 255
    for _ in range(n):
        yield frame.copy()


def pan_frames(
    image_rgb: np.ndarray,
    n: int,
    size: tuple[int, int],
    start: tuple[float, float],
    end: tuple[float, float],
) -> Iterator[np.ndarray]:
    """``n`` crops of ``size`` ``(w, h)`` from ``image_rgb`` whose top-left moves linearly from ``start`` to ``end``.

    The camera pans across a still photo, so the faces in it move through the frame along a known path (crop
    offset ``o``: a face at ``(fx, fy)`` in the photo is at ``(fx - o.x, fy - o.y)`` in the frame). Parts of the
    window outside the photo are black. Offsets are rounded to whole pixels.
    """
    w, h = size
    ih, iw = image_rgb.shape[:2]
    for i in range(n):
        a = i / (n - 1) if n > 1 else 0.0
        ox = round(start[0] + (end[0] - start[0]) * a)
        oy = round(start[1] + (end[1] - start[1]) * a)
        out = np.zeros((h, w, 3), np.uint8)
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, iw), min(oy + h, ih)
        if x1 > x0 and y1 > y0:
            out[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = image_rgb[y0:y1, x0:x1, :3]
        yield out
