"""The player's frames: app.video decoding on a thread into a small bounded queue, restarted at every seek.

Why: decoding and converting a 1080p frame costs 5-15 ms, and the Tk thread must stay free to draw and to
answer the keys. The queue holds a few frames (``DEPTH``): enough to ride over a slow frame, small enough
that the memory stays flat (a 1080p RGB frame is 6 MB) and a seek is not stuck behind old frames.

A seek starts a new thread with its own queue and tells the old one to stop, so nothing from before the seek
can be shown after it. Far into a file a seek first shows :func:`app.video.frame_at`'s frame (the keyframe
seek makes it quick), then continues with :func:`app.video.frames` from the next index, which decodes from
the start of the file: playing on from a far seek waits for that, showing the seeked frame meanwhile.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from app.video import MAX_SIDE, Frame, VideoError, frame_at, frames

DEPTH = 4
FAST_SEEK_FRAMES = 90  # beyond this index a seek shows frame_at's frame first (see the module docstring)


@dataclass(frozen=True)
class Stopped:
    """The end of the frames from a start: at the file's end (``reason`` None) or where it is damaged."""

    reason: str | None = None


class Decoder:
    """Frames of ``path`` from a start index, on a daemon thread; :meth:`get` never blocks."""

    def __init__(self, path: Path, max_side: int = MAX_SIDE, depth: int = DEPTH) -> None:
        self.path, self.max_side, self.depth = path, max_side, depth
        self._queue: queue.Queue[Frame | Stopped] = queue.Queue(depth)
        self._stop = threading.Event()
        self._stop.set()

    def start(self, index: int, time_s: float | None = None) -> None:
        """Decode from frame ``index`` (whose time is ``time_s``, where known) on; the previous run is dropped."""
        self._stop.set()
        self._queue, self._stop = queue.Queue(self.depth), threading.Event()
        threading.Thread(target=self._run, args=(max(0, index), time_s, self._queue, self._stop),
                         name="emotionlens-decode", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def get(self) -> Frame | Stopped | None:
        """The next frame, a :class:`Stopped`, or None when the next frame is not decoded yet."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self, index: int, time_s: float | None, q: queue.Queue, stop: threading.Event) -> None:
        try:
            if time_s is not None and index > FAST_SEEK_FRAMES:
                f = frame_at(self.path, time_s, self.max_side)
                if not _put(q, Frame(index, f.time_s, f.rgb), stop):
                    return
                index += 1
            source = frames(self.path, start_index=index, max_side=self.max_side)
            try:
                for f in source:
                    if not _put(q, f, stop):
                        return
            finally:
                source.close()
            _put(q, Stopped(), stop)
        except VideoError as e:
            _put(q, Stopped(e.reason), stop)
        except Exception as e:  # PyAV surprising us: the player says so and stops, the window lives on
            _put(q, Stopped(f"cannot decode ({type(e).__name__}: {' '.join(str(e).split())})"), stop)


def _put(q: queue.Queue, item: Frame | Stopped, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False when told to stop meanwhile."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
