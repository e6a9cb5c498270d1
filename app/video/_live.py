"""Label a live source, a webcam or a video file played against the clock, at the source's rate.

A camera does not wait: if labelling a frame takes longer than the camera's frame interval, queued frames
would make the picture fall further and further behind. So a producer thread reads the source and keeps only
the newest frame in a one-frame slot; the consumer (:func:`run_live`, in the GUI's worker thread or the
headless command's main thread) takes whatever is newest when it is ready, and a frame that is replaced before
anyone took it is dropped and counted. ``Frame.index`` keeps the producer's numbering, so gaps are drops.

:func:`file_as_live` releases a video file's frames at their presentation times on the wall clock: the same
code path as a camera, so the whole live pipeline is tested on machines without one (ours), and a user can
watch a file being labelled "live" (speed up with ``speed``).

Choices, with what they rest on:

* Capture with PyAV (FFmpeg's libavdevice, in PyAV's wheels: "video4linux2,v4l2" is in
  ``av.formats_available`` of PyAV 18.1 on Linux), not ``cv2.VideoCapture``: the app's OpenCV build has no
  videoio module, and PyAV is already the decoder (``app.video``).
* ``chunk=1`` for :func:`app.video.label_frames`: its default ``CHUNK`` (8 frames per model run, for
  the batch's throughput) would hold every result back until 8 frames were read, ~0.27 s at 30 fps, and
  hand results to the display in bursts. A live frame is labelled as soon as it is taken.
* ``recent_fps`` over ``FPS_WINDOW_S`` = 1 s: what a live display shows (it follows a change of load within a
  second); ``fps`` is the run's mean, what a report quotes.
* Tried on this project's machines (no camera): the camera path up to opening a device (missing device
  messages), and the capture loop itself on FFmpeg's ``lavfi`` test source paced by its ``realtime`` filter
  (tests/test_live.py), which runs the same PyAV read/decode/convert code as a camera. Not tried on a real
  camera: v4l2 (Linux), avfoundation (macOS), dshow (Windows) capture, camera permission prompts, and the
  Windows device listing (:func:`dshow_cameras`), which parses FFmpeg's ``list_devices`` log in both the
  FFmpeg < 5 and >= 5 formats as written in libavdevice/dshow.c.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.core import EmotionLensError, one_line
from app.video._decode import MAX_SIDE, Frame, _target_size, frames, probe

if TYPE_CHECKING:
    from app.models import Labeler
    from app.video._pipeline import VideoFrame, VideoOptions

# Rate window of LiveStats.recent_fps (see the module docstring).
FPS_WINDOW_S = 1.0

# How long close() waits for the producer thread. A camera delivers a frame every 33-100 ms and the file
# player waits on the stop event, so the thread ends within a frame; only a camera that stopped sending mid-read
# (the driver's read blocks) can outlast this, and then the daemon thread is left to end with the read.
CLOSE_TIMEOUT_S = 2.0

# Camera packets the decoder may reject in a row (a damaged MJPEG frame from a USB camera) before capture is
# given up: 30 is one second at 30 fps without a single good frame.
MAX_BAD_PACKETS = 30

# avfoundation (macOS) asks for 29.97 fps unless told, which many built-in cameras refuse ("Selected framerate
# (29.970030) is not supported by the device"); 30 is what they offer. Not tried on a Mac: see the docstring.
AVFOUNDATION_FPS = "30"


class LiveError(EmotionLensError, ValueError):
    """A camera that cannot be opened or that stopped delivering; ``str()`` is one line."""


class LiveSource:
    """Iterable of :class:`app.video.Frame` from a producer thread; the consumer always gets the NEWEST frame.

    Frames that arrive while the consumer is busy are dropped (counted in ``dropped``), never queued.
    ``Frame.index`` is the producer's frame number (gaps = drops), ``time_s`` the capture time from the start.
    ``name`` is what recordings put in their ``video`` column (``webcam:<index>`` or the file's name), ``fps``
    the source's nominal rate (0.0 if unknown), ``scale`` the frames' size over the source's (boxes are reported
    in source pixels). Made by :func:`camera_source` and :func:`file_as_live`; ``produce(stop)`` yields frames
    as they are captured and must return soon after ``stop`` is set. Iterate it from one thread only.
    """

    def __init__(self, produce: Callable[[threading.Event], Iterator[Frame]], *, name: str, fps: float = 0.0,
                 scale: float = 1.0) -> None:
        self.name = name
        self.fps = fps
        self.scale = scale
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._done = False
        self._closed = False
        self._error: BaseException | None = None
        self._delivered = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, args=(produce,), name=f"live {name}", daemon=True)
        self._thread.start()

    @property
    def delivered(self) -> int:
        """Frames handed to the consumer."""
        return self._delivered

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before the consumer took them."""
        return self._dropped

    def _run(self, produce: Callable[[threading.Event], Iterator[Frame]]) -> None:
        it = produce(self._stop)
        try:
            for frame in it:
                with self._cond:
                    if self._slot is not None:
                        self._dropped += 1
                    self._slot = frame
                    self._cond.notify()
                if self._stop.is_set():
                    break
        except BaseException as e:  # given to the consumer after the frames before it
            self._error = e
        finally:
            with contextlib.suppress(Exception):
                it.close()  # type: ignore[attr-defined]  # a generator: runs its finally (closes the device)
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        with self._cond:
            while self._slot is None and not self._done and not self._closed:
                self._cond.wait(0.5)  # a timeout keeps Ctrl+C deliverable on every platform
            if self._closed:
                raise StopIteration
            if self._slot is not None:
                frame, self._slot = self._slot, None
                self._delivered += 1
                return frame
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration

    def close(self) -> None:
        """Stop the producer thread and release the camera or file; idempotent, callable from any thread."""
        self._stop.set()
        with self._cond:
            self._closed = True
            self._slot = None
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(CLOSE_TIMEOUT_S)

    @property
    def alive(self) -> bool:
        """Whether the producer thread still runs."""
        return self._thread.is_alive()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------------
# A video file played against the clock.


def file_as_live(path: str | os.PathLike, speed: float = 1.0, loop: bool = False, *,
                 max_side: int = MAX_SIDE) -> LiveSource:
    """Play a video file against the wall clock: frame k is released ``time_s / speed`` after the start (the
    call); a slow consumer gets the newest frame and the ones between are dropped, as with a camera.

    ``time_s`` of the frames is the file's own time (plus the earlier loops' length with ``loop``), so rows match
    the batch's for the same file. Raises :class:`app.video.VideoError` now for a file that cannot be played;
    damage found while playing comes from the iteration, after the frames before it.
    """
    if not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"speed must be a positive number, not {speed}")
    info = probe(path, max_side=max_side)
    interval = 1.0 / info.fps if info.fps else 0.04  # the last frame's duration, where a loop restarts

    def produce(stop: threading.Event) -> Iterator[Frame]:
        t0 = time.monotonic()
        offset_s, offset_i = 0.0, 0
        while True:
            n, last = 0, 0.0
            with contextlib.closing(frames(path, max_side=max_side)) as decoded:  # closes the file on stop
                for f in decoded:
                    t = offset_s + f.time_s
                    wait = t0 + t / speed - time.monotonic()
                    if (wait > 0 and stop.wait(wait)) or stop.is_set():
                        return
                    yield Frame(offset_i + f.index, t, f.rgb)
                    n, last = f.index + 1, f.time_s
            if not loop or n == 0:
                return
            offset_s += last + interval
            offset_i += n

    return LiveSource(produce, name=Path(os.fspath(path)).name, fps=info.fps, scale=info.scale)


# ---------------------------------------------------------------------------------------------------------------
# Cameras.




def camera_input(index: int | str) -> tuple[str, str]:
    """FFmpeg's ``(input format, device URL)`` for camera ``index`` on this platform.

    Linux: v4l2 on ``/dev/video<index>``. macOS: avfoundation, whose URL is the video device's number (or name).
    Windows: dshow, which opens devices by name only (``video=<name>``), so a number is looked up in
    :func:`dshow_cameras`. A string instead of a number is the device itself: a path such as
    ``/dev/v4l/by-id/...`` on Linux, a device name on macOS and Windows (``"Integrated Camera"``).
    """
    if sys.platform.startswith("linux"):
        return "v4l2", index if isinstance(index, str) else f"/dev/video{index}"
    if sys.platform == "darwin":
        return "avfoundation", str(index)
    if sys.platform == "win32":
        if isinstance(index, str):
            return "dshow", index if index.startswith("video=") else f"video={index}"
        try:
            cameras = dshow_cameras()
        except Exception as e:
            why = one_line(e, strerror=True)
            raise LiveError(f"cannot list the cameras ({why}); give the camera's name instead of "
                            "a number: --webcam \"Integrated Camera\"") from None
        if not 0 <= index < len(cameras):
            names = ", ".join(f"{i}: {n}" for i, (n, _) in enumerate(cameras)) or "none"
            raise LiveError(f"no camera {index} (DirectShow cameras: {names})")
        friendly, unique = cameras[index]
        return "dshow", f"video={unique or friendly}"
    raise LiveError(f"webcam capture is not supported on {sys.platform} (Linux, macOS and Windows only)")


def dshow_cameras() -> list[tuple[str, str]]:
    """Windows: the DirectShow video devices as ``(name, unique name)``, in FFmpeg's order (what ``ffmpeg
    -list_devices true -f dshow -i dummy`` prints). PyAV has no device-listing call, so FFmpeg's log is read."""
    import av
    import av.logging

    level = av.logging.get_level()
    skip = av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.INFO)
    av.logging.set_skip_repeated(False)
    try:
        # list_devices always ends with AVERROR_EXIT after printing the list.
        with av.logging.Capture() as logs, contextlib.suppress(av.FFmpegError):
            av.open("dummy", format="dshow", options={"list_devices": "true"}).close()
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)
    return parse_dshow_list("".join(str(m[2]) for m in logs))


def parse_dshow_list(text: str) -> list[tuple[str, str]]:
    """The video devices of dshow's ``list_devices`` output, in both of libavdevice/dshow.c's formats: FFmpeg
    >= 5 writes ``"Name" (video)`` then ``Alternative name "..."``; older ones a "DirectShow video devices"
    section of ``"Name"`` lines."""
    devices: list[tuple[str, str]] = []
    section = ""
    last_video = False
    for raw in text.splitlines():
        line = re.sub(r"^\[[^\]]*\]\s*", "", raw).strip()  # "[dshow @ 0000...]" when the prefix is kept
        m = re.fullmatch(r'"(.*)"\s*\(([^)]*)\)', line)
        if m:  # FFmpeg >= 5
            last_video = "video" in m.group(2)
            if last_video:
                devices.append((m.group(1), ""))
            continue
        if line.startswith("DirectShow video devices"):
            section = "video"
            continue
        if line.startswith("DirectShow audio devices"):
            section = "audio"
            continue
        m = re.fullmatch(r'Alternative name "(.*)"', line)
        if m:
            if last_video and devices:
                devices[-1] = (devices[-1][0], m.group(1))
            last_video = False
            continue
        m = re.fullmatch(r'"(.*)"', line)
        if m:  # FFmpeg < 5
            last_video = section == "video"
            if last_video:
                devices.append((m.group(1), ""))
    return devices


def camera_source(index: int | str = 0, size: tuple[int, int] | None = None, *,
                  max_side: int = MAX_SIDE) -> LiveSource:
    """Open camera ``index`` with PyAV (see :func:`camera_input` for the device per platform) and capture it.

    ``size``: the capture size ``(w, h)`` to ask for (the camera's default otherwise; it must be one the camera
    offers). Frames come as the camera gives them (not mirrored), scaled down to ``max_side``. A camera that
    cannot be opened raises :class:`LiveError` with one line, e.g. ``no camera 1 (/dev/video1: No such file or
    directory)``.
    """
    fmt, url = camera_input(index)
    options: dict[str, str] = {}
    if size is not None:
        options["video_size"] = f"{int(size[0])}x{int(size[1])}"
    if fmt == "avfoundation":
        options["framerate"] = AVFOUNDATION_FPS
    if fmt == "v4l2" and url.startswith("/dev/") and not os.path.exists(url):
        raise LiveError(f"no camera {index} ({url}: No such file or directory)")
    return device_source(fmt, url, options, name=f"webcam:{index}", what=f"camera {index}", max_side=max_side)


def device_source(fmt: str, url: str, options: dict[str, str] | None = None, *, name: str, what: str,
                  max_side: int = MAX_SIDE) -> LiveSource:
    """Capture any FFmpeg input device (``fmt``, ``url``) as a :class:`LiveSource`: the camera path, also
    used by the tests with FFmpeg's ``lavfi`` test source (no camera here). ``what`` names it in messages."""
    import av

    try:
        container = av.open(url, "r", format=fmt, options=dict(options or {}))
    except (av.FFmpegError, OSError) as e:
        raise LiveError(_open_error(what, url, e)) from None
    except ValueError as e:  # PyAV's "no container format 'v4l2'": a build without that input device
        if "container format" in str(e):
            raise LiveError(f"cannot open {what}: this PyAV build has no {fmt} input (camera capture)") from None
        raise LiveError(f"cannot open {what} ({url}: {one_line(e, strerror=True)})") from None
    video = [s for s in container.streams if s.type == "video"]
    if not video:
        container.close()
        raise LiveError(f"cannot open {what} ({url}: it gives no video stream)")
    stream = video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0

    def produce(stop: threading.Event) -> Iterator[Frame]:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        t0 = time.monotonic()
        first: float | None = None
        last = -1.0
        index = bad = 0
        try:
            for packet in container.demux(stream):
                if stop.is_set():
                    return
                try:
                    decoded = stream.decode(packet)
                except av.FFmpegError as e:
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        why = one_line(e, strerror=True)
                        raise LiveError(f"{what} stopped: {bad} frames in a row undecodable ({why})") \
                            from None
                    continue
                bad = 0
                for frame in decoded:
                    # Capture time from the device's timestamps where they run forward, else the arrival time.
                    t = frame.time
                    if t is not None and first is None:
                        first = t
                    t = t - first if t is not None and first is not None else None
                    if t is None or t < last:
                        t = time.monotonic() - t0
                    last = t
                    w, h, _ = _target_size(frame.width, frame.height, max_side)
                    rgb = reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                               interpolation="AREA").to_ndarray()
                    yield Frame(index, t, rgb)
                    index += 1
        except av.FFmpegError as e:
            raise LiveError(f"{what} stopped ({one_line(e, strerror=True)})") from None
        finally:
            container.close()

    return LiveSource(produce, name=name, fps=fps)


def _open_error(what: str, url: str, e: BaseException) -> str:
    """One line for a device that would not open, by errno (the usual three: missing, not allowed, busy)."""
    code = getattr(e, "errno", None)
    reason = one_line(e, strerror=True)
    if code == errno.ENOENT:
        return f"no {what} ({url}: No such file or directory)"
    if code in (errno.EACCES, errno.EPERM):
        hint = "; on Linux add your user to the 'video' group" if url.startswith("/dev/") else \
            "; allow this program to use the camera in the system's privacy settings"
        return f"cannot open {what} ({url}: permission denied{hint})"
    if code == errno.EBUSY:
        return f"{what} is in use by another program ({url}: device or resource busy)"
    if code == errno.ENODEV and url.startswith("/dev/"):
        return (f"cannot open {what} ({url}: not a video capture device; many cameras add a second /dev/video "
                "node for metadata: try the next number)")
    return f"cannot open {what} ({url}: {reason})"


# ---------------------------------------------------------------------------------------------------------------
# Labelling.


@dataclass(frozen=True)
class LiveStats:
    """A live run so far. ``frames``: labelled; ``dropped``: by the source; ``seconds`` since :func:`run_live`
    began; ``fps``: frames / seconds (processed frames per second); ``recent_fps``: over the last
    ``FPS_WINDOW_S``, for a live display."""

    frames: int
    dropped: int
    seconds: float
    fps: float
    recent_fps: float = 0.0


def run_live(labeler: Labeler, source: LiveSource, opts: VideoOptions | None = None,
             on_frame: Callable[[VideoFrame, LiveStats], None] | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> LiveStats:
    """Label each frame of ``source`` as it comes until it ends or ``should_stop()`` says so; returns the stats.

    ``on_frame(frame, stats)`` is called in this thread after each frame (the GUI draws; ``frame.rgb`` is kept
    for it; a recording writes the frame's rows there, :class:`app.outputs.FramesRecorder`). ``source`` is closed
    on return. ``opts.fps`` is not used: the source's rate and the labelling speed decide which frames are seen.
    Errors of the source (a camera unplugged, a damaged file) are raised after the frames before them.
    ``should_stop`` is asked once per frame; to stop at once from another thread (a Stop button while a camera
    has stalled), also call ``source.close()``: the run then ends after the frame in hand.
    """
    from app.video._pipeline import VideoOptions, label_frames

    opts = opts or VideoOptions()
    t0 = time.perf_counter()
    recent: collections.deque[float] = collections.deque()
    n = 0

    def feed() -> Iterator[Frame]:
        for frame in source:
            if should_stop():
                return
            yield frame

    def stats(now: float) -> LiveStats:
        while recent and recent[0] <= now - FPS_WINDOW_S:
            recent.popleft()
        seconds = now - t0
        window = min(FPS_WINDOW_S, seconds)
        return LiveStats(frames=n, dropped=source.dropped, seconds=seconds, fps=n / seconds if seconds > 0 else 0.0,
                         recent_fps=len(recent) / window if window > 0 else 0.0)

    try:
        results = label_frames(labeler, feed(), opts, keep_rgb=True, scale=source.scale, chunk=1)
        for vf in results:
            n += 1
            now = time.perf_counter()
            recent.append(now)
            if on_frame is not None:
                on_frame(vf, stats(now))
            if should_stop():
                break
        return stats(time.perf_counter())
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------------------------
# The headless command: python -m app --webcam [INDEX] --headless.


def open_source(spec: str | int, size: tuple[int, int] | None = None) -> LiveSource:
    """The live source ``--webcam`` names: a number is a camera, a video file is played live (:func:`file_as_live`,
    how the command is tried without a camera), anything else is a camera device path or name."""
    from app.video._decode import is_video

    if isinstance(spec, int) or spec.strip().isdigit():
        return camera_source(int(spec), size)
    if is_video(spec) or os.path.isfile(spec):
        return file_as_live(spec)
    return camera_source(spec, size)


