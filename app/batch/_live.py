"""The headless live command: ``python -m app --webcam [INDEX] --headless``, prints the rate, records frames.csv."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from app.core import one_line
from app.outputs import FramesRecorder
from app.video import LiveError, LiveStats, VideoError, VideoFrame, VideoOptions, open_source, run_live


def headless(spec: str, record: str | None = None, seconds: float | None = None,
             zoo_dir: str | os.PathLike | None = None, opts: VideoOptions | None = None,
             print_every_s: float = 1.0) -> int:
    """Label a camera (or a file played live) without a window: prints the processed frames/s once a second,
    writes ``record``; stops at Ctrl+C, after ``seconds`` or at the end of a file. Returns the exit code."""
    import signal

    from app.models import Labeler, ZooError

    try:
        labeler = Labeler(zoo_dir=zoo_dir)
    except ZooError as e:
        print(f"emotionlens: {_message(e)}", file=sys.stderr)
        return 1
    try:  # models first: a file played live starts its clock when opened
        source = open_source(spec)
    except (LiveError, VideoError) as e:
        print(f"emotionlens: {_message(e)}", file=sys.stderr)
        return 1
    stop = threading.Event()
    start = time.perf_counter()
    next_print = [print_every_s]

    def on_sigint(signum: int, frame: Any) -> None:  # the first Ctrl+C ends the run cleanly, a second one now
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def should_stop() -> bool:
        return stop.is_set() or (seconds is not None and time.perf_counter() - start >= seconds)

    recorder = FramesRecorder()

    def on_frame(vf: VideoFrame, s: LiveStats) -> None:
        recorder.write(source.name, vf)
        if s.seconds >= next_print[0]:
            next_print[0] = s.seconds + print_every_s
            faces = ", ".join(f"#{f.track} {f.smooth.label} {100 * f.smooth.confidence:.0f}%" for f in vf.faces)
            print(f"{s.seconds:6.1f} s  {s.recent_fps:5.1f} frames/s processed  {s.frames} frames, "
                  f"{s.dropped} dropped  {faces or 'no face'}", flush=True)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)
    print(f"{source.name}: labelling live{f', recording to {record}' if record else ''}; Ctrl+C stops",
          flush=True)
    try:
        if record is not None:
            recorder.open(record, labeler.models)
        stats = run_live(labeler, source, opts, on_frame=on_frame, should_stop=should_stop)
    except (LiveError, VideoError, OSError) as e:
        print(f"emotionlens: {_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emotionlens: interrupted", file=sys.stderr)
        return 130
    finally:
        source.close()  # run_live closes it too; this covers a recording that could not be opened
        recorder.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    print(f"{source.name}: {stats.frames} frames labelled in {stats.seconds:.1f} s ({stats.fps:.1f} frames/s "
          f"processed), {stats.dropped} dropped{f'; rows in {record}' if record else ''}", flush=True)
    return 0


def _message(e: BaseException) -> str:
    """One line for the command line: an OSError of the recording names its file."""
    if isinstance(e, OSError) and not isinstance(e, LiveError) and e.filename is not None:
        return f"{e.filename}: {one_line(e, strerror=True)}"
    return " ".join(str(e).split()) or type(e).__name__
