"""Decode a video file into upright RGB frames with their real timestamps, or fail with one clear line.

PyAV (FFmpeg's libraries, bundled in its wheel) decodes; every failure becomes a :class:`VideoError` whose
message names the file, as :class:`app.core.ImageError` does for photos, so the GUI can show it and the batch
CLI can log it without a traceback. ``cv2.VideoCapture`` (also FFmpeg inside) was measured against it with
``benchmarks/video_decode.py``: OpenCV 4.14 gets variable-frame-rate timestamps (``CAP_PROP_POS_MSEC``) and the
rotation right too, and decoded talking_head.mp4 faster on the loaded test machine, but it cannot say why a file
fails: a truncated clip reads like a normal end, a JPEG renamed .mp4 reads as a one-frame video, an audio-only
or unfinished recording is just "not opened", and FFmpeg's complaints go to stderr. PyAV gives the errors, the
stream facts for :func:`probe` (codec, audio, rotation), keyframe seeking, and scaling inside the RGB conversion.

Choices, with what they rest on:

* ``MAX_SIDE`` 1920: frames whose long side is larger (4K phone video) are scaled down by swscale while
  converting to RGB (``AREA`` filter: it averages like ``cv2.INTER_AREA``, so no aliasing). 1920 is 1080p,
  where the Haar detector still finds faces down to 3% of the frame (``app/detect/_haar.py``), and it keeps every
  frame below ``app.detect._haar.LARGE_PHOTO`` (2500), above which the detector adds its small-face pass. Measured
  on a 4K pan over the sample portrait (nice'd on a loaded 2-core machine, so indicative): ``detect_faces``
  took 1332 ms on the 3840x2160 frame and 230 ms on the 1920x1080 one; the RGB copy is 25 MB instead of
  6 MB; converting with the downscale costs ~12 ms a frame against ~5-8 ms at full size, which the detector
  repays many times over.
* Rotation: phones store portrait video as landscape frames plus a display matrix (the old ``rotate=90``
  tag); FFmpeg hands the matrix to every frame as side data (``VideoFrame.rotation`` in recent PyAV, read from
  the side data on older ones: PyAV 12.3 and 14.0 have no such property) and it is applied with ``np.rot90``,
  so ``rotate=90`` turns the stored frame a quarter turn clockwise, as players do. Mirroring in the matrix
  (rare: front cameras that write it) is not applied.
* PyAV versions: the clips of tests/test_video.py decode alike (frames, times, rotation, errors) with PyAV
  12.3.0 (FFmpeg 6.1), 14.0.1 (FFmpeg 7.1) and 18.1.0 (FFmpeg 8.1); hence ``av>=12`` in pyproject.toml.
  Writing rotated clips (tests/video_synth.py) needs PyAV 18.
* Time: ``Frame.time_s`` is the frame's presentation timestamp minus the stream's start, in seconds (exact
  rational arithmetic, then float); only a stream without timestamps (a raw ``.h264`` renamed) falls back to
  ``index / fps``.
* Damage: a packet the decoder rejects is skipped and decoding goes on (FFmpeg resynchronises at the next
  keyframe), up to ``MAX_BAD_PACKETS`` rejected in a row. A demuxer error, or a file shorter than its own
  header says (:mod:`app.video._truncation`: MP4/MOV boxes, Matroska/WebM segment, AVI RIFF sizes), stops the stream:
  the
  frames before the damage have been yielded, then :class:`VideoError` says where it stopped.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from app.core import EmotionLensError, one_line
from app.video._truncation import mp4_boxes, truncated_reason

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"})

# Long side of the frames handed out; larger frames are scaled down while decoding (see the module docstring).
MAX_SIDE = 1920

# Frames larger than this are refused before any is decoded, the photo loader's decompression-bomb limit
# (app.core._imageio.MAX_PIXELS): it admits 8K (7680x4320 = 33 MP) and 12K cinema (80 MP), while a damaged or hostile
# header declaring 60000x60000 would have the decoder allocate gigabytes per frame and per thread.
MAX_PIXELS = 120_000_000

# Packets the decoder may reject in a row before the stream is given up. One damaged packet costs at most the
# frames up to the next keyframe, so a file keeps playing past it; 300 (10 s at 30 fps) without a single frame
# means the rest is not video. Over 1680 clips damaged as in tests/test_fuzz_video.py (seeds 0-39) the longest
# run of rejected packets was 25.
MAX_BAD_PACKETS = 300

# FFmpeg's decoder threading for frames() and frame_at(): "AUTO" is frame and slice threads, one per core; None
# is FFmpeg's default, one thread. Not shown to help yet: on the test machine (2 cores, both busy with a training
# run) it changed nothing for talking_head.mp4 (596x336 H.264, ~1 ms a frame, benchmarks/video_decode.py) nor
# for a 4K pan over the sample portrait (12 ms a frame as H.264, 21 ms as HEVC, on one core). It is kept because
# frame threading is FFmpeg's own remedy for large frames on idle multi-core machines; re-measure there.
THREAD_TYPE: str | None = "AUTO"

# FFmpeg's demuxers for still images (every image-pipe demuxer is named "<format>_pipe"): a photo saved with a
# video suffix opens as a one-frame "video", which is refused with a pointer to the photo path instead.
_IMAGE_FORMATS = {"image2", "image2pipe", "gif", "apng"}
_IMAGE_NAMES = {"jpeg_pipe": "JPEG", "png_pipe": "PNG", "gif": "GIF", "webp_pipe": "WebP", "bmp_pipe": "BMP",
                "tiff_pipe": "TIFF", "apng": "PNG"}
# AV_DISPOSITION_ATTACHED_PIC: a "video" stream that is the cover art of a music file, not a video.
_ATTACHED_PIC = 0x0400
_FORMATS_HINT = "MP4, MOV, M4V, AVI, MKV, WebM"


class VideoError(EmotionLensError, ValueError):
    """A video that cannot be read (or not to its end); ``str()`` is one line ``"<path>: <reason>"``.

    ``path`` and ``reason`` are kept apart for reports. ``frames_decoded`` is how many frames :func:`frames`
    yielded before the error (0 if none, and for errors of :func:`probe`/:func:`frame_at`); ``stopped_at`` the
    index of the first frame that could not be decoded (the count of frames decoded, skipped ones included).
    """

    def __init__(
        self, message: str, *, path: str | None = None, reason: str | None = None, frames_decoded: int = 0,
        stopped_at: int = 0,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason if reason is not None else message
        self.frames_decoded = frames_decoded
        self.stopped_at = stopped_at


def _fail(path: Path | str, reason: str, frames_decoded: int = 0, stopped_at: int = 0) -> VideoError:
    return VideoError(f"{path}: {reason}", path=str(path), reason=reason, frames_decoded=frames_decoded,
                      stopped_at=stopped_at)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns from the header and the first frame."""

    path: str
    width: int  # of the frames as yielded: after rotation and any downscale to max_side
    height: int
    source_width: int  # as stored, after rotation
    source_height: int
    fps: float  # average frame rate (frames / duration), 0.0 if unknown
    duration_s: float | None
    frames: int | None  # the container's frame count, else duration * fps rounded; None if unknown
    rotation: int  # degrees clockwise applied to the stored frames: 0, 90, 180 or 270
    codec: str  # FFmpeg's short name: h264, hevc, vp9, mjpeg...
    has_audio: bool
    scale: float  # yielded frame size / source size: 1.0 unless downscaled


@dataclass(frozen=True, eq=False)  # eq=False: comparing or hashing the pixel array makes no sense
class Frame:
    """One decoded frame. ``index`` counts every decoded frame of the stream from 0 (skipped ones too); it is
    -1 where unknown (:func:`frame_at` after a seek into the middle). ``time_s``: presentation time in seconds
    from the stream's start. ``rgb``: ``(H, W, 3)`` uint8, upright."""

    index: int
    time_s: float
    rgb: np.ndarray


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video suffix (content is not looked at: the folder walk decides by name)."""
    return Path(os.fspath(path)).suffix.lower() in VIDEO_SUFFIXES


def _target_size(w: int, h: int, max_side: int) -> tuple[int, int, float]:
    """Size to convert a ``w`` x ``h`` frame to so its long side is at most ``max_side``, and the scale."""
    long = max(w, h)
    if long <= max_side:
        return w, h, 1.0
    scale = max_side / long
    return max(1, round(w * scale)), max(1, round(h * scale)), scale


def _fraction(x: Any) -> Fraction | None:
    """A PyAV rational (Fraction up to PyAV 18, AVRational after, falsy when unset) as a Fraction or None."""
    if not x:
        return None
    try:
        return Fraction(int(x.numerator), int(x.denominator))
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        return None


def _frame_rotation(frame: Any) -> float:
    """The display rotation of a decoded frame, degrees counter-clockwise (FFmpeg's av_display_rotation_get).

    ``VideoFrame.rotation`` where PyAV has it (not yet in 14.0); older PyAV only exposes the frame's side data,
    whose 3x3 display matrix (16.16 fixed point) is read here the way FFmpeg reads it. PyAV up to 14 lists side
    data entries; 18.1.1 maps their types to them (iterating yields the types), so a type is looked up.
    """
    rotation = getattr(frame, "rotation", None)
    if rotation is not None:
        return rotation
    try:
        side_data = frame.side_data
        for item in side_data:
            sd = item if hasattr(item, "type") else side_data[item]
            if "DISPLAYMATRIX" in str(getattr(sd, "type", "")).upper():
                return _matrix_rotation(bytes(sd))
    except Exception:  # unreadable side data: show the frame as stored
        return 0.0
    return 0.0


def _matrix_rotation(matrix: bytes) -> float:
    """av_display_rotation_get() of a 36-byte display matrix (nine native-endian int32, 16.16 fixed point)."""
    if len(matrix) < 36:
        return 0.0
    m = struct.unpack("=9i", matrix[:36])
    a, b, c, d = (v / 65536 for v in (m[0], m[1], m[3], m[4]))
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if sx == 0 or sy == 0:
        return 0.0
    return -math.degrees(math.atan2(b / sy, a / sx))


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns for np.rot90 from FFmpeg's counter-clockwise display angle."""
    if rotation is None or not math.isfinite(rotation):
        return 0
    return round(rotation / 90) % 4


def _clockwise_degrees(turns_ccw: int) -> int:
    return (-90 * turns_ccw) % 360


def _to_rgb(src: _Source, frame: Any, max_side: int) -> np.ndarray:  # frame: av.VideoFrame
    """Upright RGB of a decoded frame: scaled (swscale, AREA) and converted in one pass, then rotated.

    The source's one VideoReformatter keeps swscale's context from frame to frame; ``frame.to_ndarray(format=)``
    builds a new one per frame: frames() gave 1001 instead of 1174 frames/s on talking_head.mp4 with it (median
    of 5, loaded machine; 1503 frames/s without any conversion).
    """
    w, h, _ = _target_size(frame.width, frame.height, max_side)
    rgb = src.reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    k = _quarter_turns(_frame_rotation(frame))
    if k:
        rgb = np.rot90(rgb, k)
    return np.ascontiguousarray(rgb)


# ---------------------------------------------------------------------------------------------------------------
# Opening.


def _check_file(p: Path) -> None:
    """The regular-file checks of app.core.load_image: never open a FIFO, name empty and missing files."""
    from app.core import file_kind, os_reason

    try:
        st = p.stat()
    except FileNotFoundError:
        reason = "broken symbolic link (its target is missing)" if os.path.islink(p) else "no such file"
        raise _fail(p, reason) from None
    except OSError as e:
        raise _fail(p, os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(p, "is a folder, not a video")
    if not stat.S_ISREG(st.st_mode):  # FFmpeg opening a FIFO would block until a writer comes
        raise _fail(p, f"is a {file_kind(st.st_mode)}, not a video file")
    if st.st_size == 0:
        raise _fail(p, "empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise _fail(p, "cannot read (permission denied)")


def _sniff(p: Path) -> str:
    """What a file FFmpeg cannot open is, for the message."""
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp" or head[4:8] in (b"mdat", b"free", b"wide", b"moov"):
        boxes, clean = mp4_boxes(p)
        if clean and b"moov" not in boxes and b"mdat" in boxes:
            return ("the MP4/MOV index (moov box) is missing: the recording was not finished or the file was cut "
                    "short; a repair tool (e.g. untrunc) may recover it")
        return truncated_reason(p) or "corrupt MP4/MOV file (its structure cannot be read)"
    truncated = truncated_reason(p)
    if truncated:
        return truncated
    for magic, what in ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
                        (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive")):
        if head.startswith(magic):
            return f"not a video file: it is {what} (saved with a video extension?)"
    return f"not a video file (contents are not {_FORMATS_HINT} or another format FFmpeg reads)"


def _open(path: str | os.PathLike, threads: bool = True) -> _Source:
    """_Source(path), with anything unforeseen PyAV raises on a hostile file turned into a one-line VideoError."""
    try:
        return _Source(path, threads)
    except VideoError:
        raise
    except MemoryError:
        raise _fail(path, "not enough memory to open it") from None
    except Exception as e:
        raise _fail(path, f"cannot open ({one_line(e, strerror=True)})") from None


def _av_open(av: Any, path: str) -> Any:
    options = {"protocol_whitelist": "file", "max_pixels": str(MAX_PIXELS)}
    try:
        return av.open(path, "r", metadata_errors="replace", options=options)
    except TypeError:  # PyAV >= 19 dropped the argument: it always reads metadata with surrogateescape
        return av.open(path, "r", options=options)


class _Source:
    """An open container, its chosen video stream, and the frame clock (start, time base, fps)."""

    def __init__(self, path: str | os.PathLike, threads: bool = True) -> None:
        import av

        self.path = Path(os.fspath(path))
        _check_file(self.path)
        try:
            # An absolute path never reads as an FFmpeg protocol ("name:..."); only local files may be opened,
            # also by playlist-like formats a renamed file could contain.
            # max_pixels: FFmpeg's decoders refuse larger frames already while av.open probes the streams.
            # metadata_errors: titles in a legacy encoding (or damaged) must not make the video unreadable.
            self.container = _av_open(av, os.path.abspath(self.path))
        except av.FFmpegError as e:
            if isinstance(e, av.error.PermissionError):
                raise _fail(self.path, "cannot read (permission denied)") from None
            if isinstance(e, av.error.InvalidDataError):
                raise _fail(self.path, _sniff(self.path)) from None
            if isinstance(e, av.error.MemoryError):
                raise _fail(self.path, "corrupt video header (it asks for more memory than there is)") from None
            if isinstance(e, (av.error.EOFError, av.error.PatchWelcomeError)):
                raise _fail(self.path, truncated_reason(self.path)
                            or f"corrupt or unsupported video file ({one_line(e, strerror=True)})") from None
            if getattr(e, "errno", None) == errno.EIO:  # what several demuxers return for a mangled header
                raise _fail(self.path, "cannot read it (input/output error: a damaged file, or the disk failed)") \
                    from None
            raise _fail(self.path, f"cannot open ({one_line(e, strerror=True)})") from None
        except MemoryError:
            raise _fail(self.path, "corrupt video header (it asks for more memory than there is)") from None
        except (OSError, ValueError) as e:
            raise _fail(self.path, f"cannot open ({one_line(e, strerror=True)})") from None
        try:
            self.stream = self._pick_stream()
            cc = self.stream.codec_context
            if cc is None:
                raise _fail(self.path, "uses a video codec FFmpeg does not know (unknown codec); convert it to "
                                       "H.264 MP4 first")
            w, h = cc.width or 0, cc.height or 0
            if w * h > MAX_PIXELS:
                raise _fail(self.path, f"video frames too large ({w}x{h} = {w * h / 1e6:.0f} megapixels; the "
                                       f"limit is {MAX_PIXELS / 1e6:.0f})")
            cc.options = {**cc.options, "max_pixels": str(MAX_PIXELS)}
            if threads and THREAD_TYPE:
                self.stream.thread_type = THREAD_TYPE
        except BaseException:
            self.container.close()
            raise
        s = self.stream
        self.time_base = _fraction(s.time_base)
        self.start_pts: int | None = s.start_time
        rate = _fraction(s.average_rate) or _fraction(s.guessed_rate) or _fraction(s.base_rate)
        self.fps = float(rate) if rate and 0 < rate < 10_000 else 0.0
        self.last_error = ""  # the decoder's last complaint about a packet it skipped, for messages
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()

    def _pick_stream(self) -> Any:
        streams = list(self.container.streams)
        fmt = self.container.format.name
        if fmt in _IMAGE_FORMATS or fmt.endswith("_pipe"):
            name = _IMAGE_NAMES.get(fmt, fmt.removesuffix("_pipe").upper())
            raise _fail(self.path, f"not a video: it is a {name} image saved with a video extension; open it as a "
                                   "photo")
        video = [s for s in streams if s.type == "video"
                 and not int(getattr(s, "disposition", 0)) & _ATTACHED_PIC]
        if not video:
            audio = [s.codec_context.name for s in streams if s.type == "audio" and s.codec_context is not None]
            if audio:
                raise _fail(self.path, f"no video stream: it holds only sound ({', '.join(audio)})")
            raise _fail(self.path, "no video stream in the file")
        return video[0]

    def time_of(self, frame: Any, index: int) -> float:
        """Seconds from the stream's start to this frame's presentation (index / fps without timestamps)."""
        pts = frame.pts
        tb = _fraction(frame.time_base) or self.time_base
        if pts is None or tb is None:
            return index / self.fps if self.fps else 0.0
        if self.start_pts is None:
            self.start_pts = pts
        return float((pts - self.start_pts) * tb)

    def close(self) -> None:
        self.container.close()


def _packets_to_frames(src: _Source) -> Iterator[tuple[Any, str | None]]:
    """Decoded frames of the stream in presentation order, then ``(None, why)`` when the stream stopped early.

    Rejected packets are skipped (up to MAX_BAD_PACKETS in a row); a demuxer error ends the stream after the
    decoder's buffered frames are flushed out (frame threading holds several).
    """
    import av

    stream = src.stream
    bad = 0
    try:
        packets = src.container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:
                yield from _flush(stream)
                yield None, f"corrupt data ({one_line(e, strerror=True)})"
                return
            try:
                out = stream.decode(packet)
            except av.error.DecoderNotFoundError:
                yield None, f"no decoder for its video codec ({stream.codec_context.name}) in this build"
                return
            except av.FFmpegError as e:
                bad += 1
                src.last_error = one_line(e, strerror=True)
                if bad >= MAX_BAD_PACKETS:
                    yield None, f"undecodable data ({bad} packets in a row rejected: {src.last_error})"
                    return
                continue
            if out:
                bad = 0
            for frame in out:
                yield frame, None
    except MemoryError:
        yield None, "not enough memory to decode it"


def _flush(stream: Any) -> Iterator[tuple[Any, None]]:
    try:
        for frame in stream.decode(None):
            yield frame, None
    except Exception:  # a decoder that cannot even flush: its buffered frames are lost, the error still comes
        return


def _check_frame_size(src: _Source, frame: Any, yielded: int, index: int, time_s: float) -> None:
    if frame.width * frame.height > MAX_PIXELS:
        raise _fail(src.path, f"stopped at frame {index} ({time_s:.1f} s): frame too large "
                              f"({frame.width}x{frame.height})", yielded, index)


# ---------------------------------------------------------------------------------------------------------------
# Public functions.


def probe(path: str | os.PathLike, *, max_side: int = MAX_SIDE) -> VideoInfo:
    """Header facts and the first frame's size and rotation; raises :class:`VideoError` for anything unplayable.

    The first frame is decoded (not converted) because only decoding proves the stream plays and because the
    rotation and true frame size are known from frames (headers can be wrong about both).
    """
    src = _open(path, threads=False)
    try:
        first = None
        why = None
        for frame, reason in _packets_to_frames(src):
            if frame is None:
                why = reason
                break
            first = frame
            break
        if first is None:
            raise _fail(src.path, _no_frame(src, why or truncated_reason(src.path)))
        s = src.stream
        k = _quarter_turns(_frame_rotation(first))
        sw, sh = (first.height, first.width) if k % 2 else (first.width, first.height)
        w, h, scale = _target_size(sw, sh, max_side)
        duration = None
        if s.duration and src.time_base:
            duration = float(s.duration * src.time_base)
        elif _hms(s.metadata.get("DURATION")):  # Matroska: FFmpeg's muxer tags each track with its own length
            duration = _hms(s.metadata.get("DURATION"))
        elif src.container.duration:
            duration = src.container.duration / 1_000_000  # AV_TIME_BASE
        n = s.frames if s.frames and s.frames > 0 else None
        if n is None and duration and src.fps:
            n = round(duration * src.fps)
        return VideoInfo(
            path=str(src.path), width=w, height=h, source_width=sw, source_height=sh, fps=src.fps,
            duration_s=duration, frames=n, rotation=_clockwise_degrees(k), codec=s.codec_context.name,
            has_audio=any(x.type == "audio" for x in src.container.streams), scale=scale,
        )
    except VideoError:
        raise
    except Exception as e:  # PyAV raising something unexpected on a hostile file: still one line
        raise _fail(src.path, f"cannot read the video ({one_line(e, strerror=True)})") from None
    finally:
        src.close()


def _hms(text: str | None) -> float | None:
    """Seconds from "HH:MM:SS.fraction" (a Matroska DURATION tag); None when absent or malformed."""
    try:
        h, m, sec = (text or "").split(":")
        value = int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def frames(
    path: str | os.PathLike,
    *,
    start_index: int = 0,
    every_s: float | None = None,
    max_side: int = MAX_SIDE,
    keyframe: tuple[int, int] | None = None,
) -> Iterator[Frame]:
    """Stream the frames of ``path`` as upright RGB, one at a time (never collected); see the module docstring.

    ``start_index``: frames before it are decoded (the decoder needs them) but not converted nor yielded, so
    ``--resume`` continues at exactly the frame it stopped at. ``every_s``: yield only the first frame at or
    after each multiple of ``every_s`` seconds (``--fps F`` is ``every_s = 1 / F``); ``Frame.index`` still counts
    every decoded frame, and the sampling runs over the skipped frames too, so a resumed run yields exactly the
    frames the uninterrupted one would have. Errors (also opening ones) are raised by the iteration: after the
    frames decoded before the damage, :class:`VideoError` with ``frames_decoded`` = frames yielded.

    ``keyframe``: ``(index, pts)`` of a keyframe from :func:`frame_table`; decoding starts there (a seek) instead
    of at the first frame, so a segment of a long video does not decode everything before it. Indices count from
    that keyframe's; ``every_s`` sampling restarts at it, and is the whole stream's from the frame after it on
    (whether a frame is taken depends only on its time and the previous frame's). A seek that lands elsewhere
    raises :class:`VideoError`.
    """
    if start_index < 0:
        raise ValueError(f"start_index must be >= 0, not {start_index}")
    if every_s is not None and not (every_s > 0 and math.isfinite(every_s)):
        raise ValueError(f"every_s must be a positive number of seconds, not {every_s}")
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, not {max_side}")
    if keyframe is not None and keyframe[0] < 0:
        raise ValueError(f"keyframe index must be >= 0, not {keyframe[0]}")
    return _frames(path, start_index, every_s, max_side, keyframe)


# Slack when comparing a frame's time with a sampling instant: timestamps are exact rationals turned into floats
# (0.3 from 9/30 s is 0.29999999999999998 beside 3 * 0.1 = 0.30000000000000004), far below any frame interval.
_TIME_EPS = 1e-6


def _sample(time_s: float, next_k: int, every_s: float | None) -> tuple[bool, int]:
    """Whether ``every_s`` sampling takes the frame at ``time_s``, and the number of the next sampling instant
    (``next_k * every_s``): the frame taken is the first at or after each instant."""
    if every_s is None:
        return True, next_k
    if time_s + _TIME_EPS >= next_k * every_s:
        return True, math.floor((time_s + _TIME_EPS) / every_s) + 1
    return False, next_k


def sampled(times_s: Iterable[float], every_s: float | None) -> list[bool]:
    """Which of a stream's frame times :func:`frames` yields with ``every_s`` (all of them without): what a
    segment of a long video needs to know how many frames were analysed before it."""
    out, next_k = [], 0
    for t in times_s:
        take, next_k = _sample(t, next_k, every_s)
        out.append(take)
    return out


def _seek(src: _Source, keyframe: tuple[int, int]) -> None:
    """Position the demuxer on the keyframe with presentation timestamp ``keyframe[1]``."""
    try:
        src.container.seek(keyframe[1], stream=src.stream, backward=True)
    except Exception as e:
        raise _fail(src.path, f"cannot seek to frame {keyframe[0]} ({one_line(e, strerror=True)})") from None


def _frames(path: str | os.PathLike, start_index: int, every_s: float | None, max_side: int,
            keyframe: tuple[int, int] | None = None) -> Iterator[Frame]:
    src = _open(path)
    index = 0  # frames decoded so far = index of the next one
    yielded = 0
    time_s = 0.0
    next_k = 0  # the next sampling instant is next_k * every_s
    try:
        if keyframe is not None:
            _seek(src, keyframe)
            index = keyframe[0]
        for frame, why in _packets_to_frames(src):
            if frame is None:
                raise _fail(src.path, f"stopped at frame {index} ({_stop_time(src, index, time_s):.1f} s): {why}",
                            yielded, index)
            if keyframe is not None:  # after a seek: frames before the keyframe (an open GOP's) are not counted
                if frame.pts is not None and frame.pts < keyframe[1]:
                    continue
                if frame.pts != keyframe[1]:
                    raise _fail(src.path, f"the seek to frame {keyframe[0]} landed elsewhere", yielded, index)
                keyframe = None
            time_s = src.time_of(frame, index)
            take, next_k = _sample(time_s, next_k, every_s)
            if take and index >= start_index:
                _check_frame_size(src, frame, yielded, index, time_s)
                rgb = _to_rgb(src, frame, max_side)
                yield Frame(index, time_s, rgb)
                yielded += 1
            index += 1
        if keyframe is not None:
            raise _fail(src.path, f"the seek to frame {keyframe[0]} found no frame there", yielded, index)
        truncated = truncated_reason(src.path)
        if index == 0:
            raise _fail(src.path, _no_frame(src, truncated))
        if truncated:
            raise _fail(src.path, f"stopped at frame {index} ({_stop_time(src, index, time_s):.1f} s): {truncated}",
                        yielded, index)
    except VideoError:
        raise
    except MemoryError:
        raise _fail(src.path, f"stopped at frame {index}: not enough memory to decode it", yielded, index) from None
    except Exception as e:  # PyAV raising something unexpected on a hostile file: still one line
        why = one_line(e, strerror=True)
        raise _fail(src.path, f"stopped at frame {index} ({time_s:.1f} s): cannot decode ({why})",
                    yielded, index) from None
    finally:
        src.close()


def _no_frame(src: _Source, why: str | None) -> str:
    if why:
        return f"no frame could be decoded: {why}"
    if src.last_error:
        return f"no frame could be decoded (corrupt video data: {src.last_error})"
    return "no frame could be decoded (the video stream is empty)"


def _stop_time(src: _Source, index: int, last_time: float) -> float:
    """Where decoding stopped, in seconds: one frame after the last one decoded."""
    if index == 0:
        return 0.0
    return last_time + (1 / src.fps if src.fps else 0.0)


@dataclass(frozen=True)
class FrameTable:
    """Every frame's presentation timestamp (``pts``, stream time base) and time, in presentation order, and the
    indices of the keyframes: where a long video can be split, and which frame index each keyframe has."""

    pts: tuple[int, ...]
    times_s: tuple[float, ...]
    keyframes: tuple[int, ...]


def frame_table(path: str | os.PathLike) -> FrameTable | None:
    """The :class:`FrameTable` of ``path`` from its packets alone (demuxed, not decoded: about a millisecond per
    hundred frames), or None where it cannot be trusted: packets without timestamps, two with the same one, or a
    stream without a start time. Frame ``i`` of :func:`frames` is the ``i``-th smallest packet timestamp as long
    as every packet decodes; a caller seeking with it checks the frames it gets against it."""
    src = _open(path, threads=False)
    try:
        if src.start_pts is None or src.time_base is None:
            return None
        pts, keys = [], set()
        for packet in src.container.demux(src.stream):
            if not packet.size:  # the demuxer's final empty packet
                continue
            if packet.pts is None:
                return None
            pts.append(int(packet.pts))
            if packet.is_keyframe:
                keys.add(int(packet.pts))
    except Exception:  # a damaged file: labelled whole, where its damage is reported
        return None
    finally:
        src.close()
    order = sorted(pts)
    if len(set(order)) != len(order):
        return None
    times = tuple(float((p - src.start_pts) * src.time_base) for p in order)
    return FrameTable(tuple(order), times, tuple(i for i, p in enumerate(order) if p in keys))


def frame_at(path: str | os.PathLike, time_s: float, max_side: int = MAX_SIDE) -> Frame:
    """The frame shown at ``time_s`` (the last one whose time is <= ``time_s``), for a player's seek bar.

    Seeks to the keyframe before ``time_s`` and decodes forward. ``Frame.index`` is known (counted) only when
    the decoding started at the stream's first frame; after a seek into the middle it is -1, because containers
    do not record how many frames precede a keyframe. Before the first frame gives the first frame, past the end
    the last one.
    """
    if not math.isfinite(time_s):
        raise ValueError(f"time_s must be a finite number of seconds, not {time_s}")
    target = max(time_s, 0.0)
    src = _open(path)
    try:
        found = _decode_to(src, target, seek=src.start_pts is not None)
        if found is None:  # the seek landed after time_s (an inexact index): decode from the start instead
            src.close()
            src = _open(path)
            found = _decode_to(src, target, seek=False)
        if found is None:
            raise _fail(src.path, _no_frame(src, truncated_reason(src.path)))
        frame, index, t = found
        _check_frame_size(src, frame, 0, max(index, 0), t)
        return Frame(index, t, _to_rgb(src, frame, max_side))
    except VideoError:
        raise
    except MemoryError:
        raise _fail(src.path, "not enough memory to decode it") from None
    except Exception as e:
        raise _fail(src.path, f"cannot decode at {time_s:.1f} s ({one_line(e, strerror=True)})") from None
    finally:
        src.close()


def _decode_to(src: _Source, time_s: float, seek: bool) -> tuple[Any, int, float] | None:
    """Decode from the keyframe before ``time_s`` (or from the start) to the last frame at or before it.

    None when a seek landed after ``time_s``, which the caller answers by decoding from the start.
    """
    s = src.stream
    start = src.start_pts or 0
    if seek and src.time_base:
        try:
            src.container.seek(start + math.floor(time_s / src.time_base), stream=s, backward=True)
        except Exception:  # not seekable (no index): decode from where we are, the start
            seek = False
    else:
        seek = False
    best: tuple[Any, int, float] | None = None
    counting = not seek
    first = True
    for index, (frame, why) in enumerate(_packets_to_frames(src)):
        if frame is None:
            if best is None:
                raise _fail(src.path, f"cannot decode at {time_s:.1f} s: {why}")
            break
        t = src.time_of(frame, index)
        if first:
            # The frame count is right only from the stream's first frame (the seek went to the start).
            counting = counting or (frame.pts is not None and frame.pts == start)
            first = False
            if t > time_s + _TIME_EPS:  # time_s lies before this frame
                return (frame, 0, t) if counting else None
        if t > time_s + _TIME_EPS:
            break
        best = (frame, index if counting else -1, t)
    return best
