"""File > Webcam: a camera (or a video file played live) labelled as it comes, in the window.

Why it is built this way: app.video._live does the work (a producer thread that keeps only the newest frame, and
``run_live`` labelling one frame at a time); this module runs it on its own thread and shows only its newest
result, from an ``after`` timer: boxes and labels at the rate the machine can label, frames dropped rather
than shown late, the processed frames/s in the bar. Record to CSV writes the frames.csv rows
(app.outputs._video_rows) of every labelled frame from the moment it is pressed until it is pressed again, so a
recording needs no restart of the camera. The track table is the video mode's (app.gui.video.track_panel).
"""

from __future__ import annotations

import queue
import threading
import time
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk
from typing import Any

from PIL import Image

from app.gui.host import ModeHost
from app.gui.messages import Message
from app.gui.photo_view import PhotoView
from app.gui.video.analysis import VideoStore, slim
from app.gui.video.track_panel import TrackPanel
from app.outputs import FramesRecorder
from app.video import VideoOptions

TICK_MS = 15
PANEL_S = 0.5
HINT = "One row per face the tracker follows. The model columns show each model's label in the newest frame."


class WebcamMode:
    """The window's webcam mode; built on first use."""

    def __init__(self, app: ModeHost) -> None:
        self.app = app
        self.active = False
        self.frame: ttk.Frame | None = None
        self.view: PhotoView | None = None
        self.tracks: TrackPanel | None = None
        self.spec: int | str | None = None
        self.name = ""
        self.stats: Any = None  # the newest app.video._live.LiveStats
        self.shown = 0  # frames drawn
        self.store = VideoStore()
        self.recorder = FramesRecorder()
        self.generation = 0
        self.results: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self._newest: tuple[int, Any, Any] | None = None  # (generation, VideoFrame, LiveStats), replaced per frame
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wants_start = False
        self._after: str | None = None
        self._panel_at = 0.0

    # ------------------------------------------------------------------ building and switching

    def _build(self) -> None:
        if self.frame is not None:
            return
        app = self.app
        self.frame = ttk.Frame(app.body)
        self.view = PhotoView(self.frame, app.label_font, app.fonts["bold"], self._on_select)
        self.view.parts = app._label_parts
        bar = ttk.Frame(self.frame, padding=(6, 4))
        self.stop_btn = ttk.Button(bar, text="■ Stop", command=self.toggle_camera)
        self.record_btn = ttk.Button(bar, text="● Record to CSV…", command=self.ask_record)
        self.rate_var = tk.StringVar(master=self.frame, value="")
        for w in (self.stop_btn, self.record_btn):
            w.pack(side=tk.LEFT, padx=(0, 6))
        ttk.Label(bar, textvariable=self.rate_var, anchor=tk.E).pack(side=tk.RIGHT, fill=tk.X, expand=True)
        self.frame.columnconfigure(0, weight=1)
        self.frame.rowconfigure(0, weight=1)
        self.view.canvas.grid(row=0, column=0, sticky="nsew")
        bar.grid(row=1, column=0, sticky="ew")
        self.view.canvas.bind("<Configure>", lambda _e: self.view.redraw() if self.view else None, add=True)
        self.tracks = TrackPanel(app.body, app.fonts, self._on_select)

    def close(self) -> None:
        """Back to photos: stop the camera and any recording."""
        if not self.active:
            return
        self.stop_camera()
        self.active = False
        if self._after is not None:
            self.app.root.after_cancel(self._after)
            self._after = None
        self.app.show_panes(self.app.canvas, self.app.panel.frame)

    # ------------------------------------------------------------------ public API (tests drive these)

    def start(self, spec: int | str = 0, record: str | Path | None = None) -> bool:
        """Label camera ``spec`` (a number, a device, or a video file played live); ``record``: a CSV to
        write from the start. False, with a message, when app.video._live is not available."""
        try:
            from app.video import _live as live  # noqa: F401 - the probe: a build without PyAV has no live path
        except ImportError as e:
            self.app.status_var.set(f"The webcam view is not available in this build ({e}).")
            return False
        self._build()
        assert self.frame is not None and self.tracks is not None and self.view is not None
        if not self.active:
            self.active = True
            self.app.show_panes(self.frame, self.tracks.frame)
        self.stop_camera()
        self.spec, self.name = spec, str(spec)
        self.store, self.shown, self.stats = VideoStore(), 0, None
        self.tracks.set_models(self.app.models(), HINT)
        self.view.set_photo(None, (0, 0))
        self._message(Message(f"Starting {self._what()}…"))
        self.app.root.title(f"Webcam {spec} — EmotionLens")
        if record is not None:
            self.record(record)
        self._wants_start = True
        self._try_start()
        if self._after is None:
            self._after = self.app.root.after(TICK_MS, self._tick)
        return True

    def stop_camera(self) -> None:
        """Stop labelling (the last frame stays on screen) and close the recording."""
        self._wants_start = False
        self._stop.set()
        self._thread = None
        self.recorder.close()
        if self.frame is not None:
            self.stop_btn.configure(text="▶ Start")
            self._record_text()

    def toggle_camera(self) -> None:
        if self._thread is not None:
            self.stop_camera()
            self.app.status_var.set(f"{self._what().capitalize()} stopped.")
        elif self.spec is not None:
            self.start(self.spec)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def record(self, path: str | Path | None) -> None:
        """Write every labelled frame's rows to ``path`` (replaced) from now on; None stops recording."""
        if path is None:
            self.recorder.close()
            self.app.status_var.set(f"Recording stopped: {self.recorder.rows} rows in {self.recorder.path}.")
        else:
            try:
                self.recorder.open(Path(path), self.app.models())
            except OSError as e:
                self.app.status_var.set(f"Cannot record to {path}: {e.strerror or e}")
                return
            self.app.status_var.set(f"Recording to {path}…")
        self._record_text()

    def ask_record(self) -> None:
        """The Record button: pick a CSV file to record to, or stop the recording."""
        if self.recorder.on:
            self.record(None)
            return
        name = filedialog.asksaveasfilename(parent=self.app.root, title="Record to CSV", defaultextension=".csv",
                                            initialfile="webcam.csv", filetypes=[("CSV", "*.csv")])
        if name:
            self.record(name)

    def on_nav_key(self, key: str) -> str:
        return "break"

    # ------------------------------------------------------------------ the live thread

    def _what(self) -> str:
        return f"camera {self.spec}" if isinstance(self.spec, int) or str(self.spec).isdigit() else str(self.spec)

    def _try_start(self) -> None:
        if not self._wants_start:
            return
        labeler = self.app.labeler
        if labeler is None:
            if self.app.zoo_error:
                msg = self.app.models_message(self.app.zoo_error)
                self._message(Message("The webcam view needs the emotion models.\n\n" + msg.text, msg.detail))
            return
        self._wants_start = False
        assert self.tracks is not None
        if [m.name for m in self.tracks.models] != [m.name for m in labeler.models]:
            self.tracks.set_models(list(labeler.models), HINT)  # started (--webcam) before the models had loaded
        self.generation += 1
        self._stop = threading.Event()
        eye, tta, det = self.app.options()
        opts = VideoOptions(eye_check=eye, tta=tta, detector=det)
        self._thread = threading.Thread(target=self._run, args=(labeler, self.spec, opts, self._stop, self.generation),
                                        name="emotionlens-webcam", daemon=True)
        self._thread.start()
        self.stop_btn.configure(text="■ Stop")

    def _run(self, labeler: Any, spec: int | str, opts: VideoOptions, stop: threading.Event, gen: int) -> None:
        from app.video import LiveError, VideoError, open_source, run_live

        try:
            source = open_source(spec)
        except (LiveError, VideoError, OSError) as e:
            self.results.put(("failed", gen, str(getattr(e, "reason", None) or e)))
            return
        self.results.put(("started", gen, source.name))

        def on_frame(vf: Any, stats: Any) -> None:
            self.recorder.write(source.name, vf)
            with self._lock:
                self._newest = (gen, vf, stats)
            self.results.put(("record", gen, slim(vf)))

        try:
            stats = run_live(labeler, source, opts, on_frame=on_frame, should_stop=stop.is_set)
            self.results.put(("ended", gen, (None, stats)))
        except (LiveError, VideoError, OSError) as e:
            self.results.put(("ended", gen, (str(getattr(e, "reason", None) or e), None)))
        except Exception as e:  # a bug: say so in the window
            self.results.put(("ended", gen, (f"{type(e).__name__}: {' '.join(str(e).split())}", None)))

    # ------------------------------------------------------------------ Tk thread

    def _tick(self) -> None:
        self._after = None
        if not self.active:
            return
        self._try_start()
        records = []
        try:
            while True:
                kind, gen, payload = self.results.get_nowait()
                if gen != self.generation:
                    continue
                if kind == "record":
                    records.append(payload)
                elif kind == "started":
                    self.name = payload
                    self._message(None)
                    self.app.status_var.set(f"{self._what().capitalize()}: labelling live.")
                elif kind == "failed":
                    self._thread = None
                    self.stop_btn.configure(text="▶ Start")
                    self._message(Message(f"Cannot start {self._what()}.\n\n{payload}\n\nCheck that it is "
                                          "connected and not used by another program, then press Start.", payload))
                    self.app.status_var.set(f"Cannot start {self._what()}: {payload}")
                else:  # ended
                    self._ended(*payload)
        except queue.Empty:
            pass
        if records:
            self.store.add(records, {})
        with self._lock:
            newest, self._newest = self._newest, None
        if newest is not None and newest[0] == self.generation:
            self._show(newest[1], newest[2])
        if self.store.version and time.monotonic() - self._panel_at >= PANEL_S:
            self._panel_at = time.monotonic()
            assert self.tracks is not None
            self.tracks.update_tracks(self.store.tracks, self.store.frame_s)
        self._after = self.app.root.after(TICK_MS, self._tick)

    def _show(self, vf: Any, stats: Any) -> None:
        assert self.view is not None and self.tracks is not None
        h, w = vf.rgb.shape[:2]
        size = (round(w / vf.scale), round(h / vf.scale))
        faces = [f.shown() for f in vf.faces]
        if self.view.size != size:
            self.view.set_photo(None, size)
        self.view.set_frame(Image.fromarray(vf.rgb), faces)
        self.tracks.set_current(vf.faces)
        self.stats = stats
        self.shown += 1
        self._record_text()

    def _ended(self, reason: str | None, stats: Any) -> None:
        self._thread = None
        self.recorder.close()
        self.stop_btn.configure(text="▶ Start")
        self._record_text()
        if reason:
            self.app.set_detail(reason)
            self.app.status_var.set(f"{self._what().capitalize()} stopped: {reason}")
        elif stats is not None:
            self.app.status_var.set(f"{self._what().capitalize()}: {stats.frames} frames labelled in "
                                    f"{stats.seconds:.1f} s ({stats.fps:.1f} frames/s processed), "
                                    f"{stats.dropped} dropped.")

    def _record_text(self) -> None:
        s = self.stats
        rate = f"{s.recent_fps:.1f} frames/s processed · {s.dropped} dropped" if s is not None else ""
        rec = f"recording {self.recorder.rows} rows to {self.recorder.path.name}" if self.recorder.on and \
            self.recorder.path else ""
        self.rate_var.set(" · ".join(p for p in (rate, rec) if p))
        self.record_btn.configure(text="■ Stop recording" if self.recorder.on else "● Record to CSV…")

    def _on_select(self, track: int | None) -> None:
        assert self.view is not None and self.tracks is not None
        self.view.selected = track
        self.tracks.select(track)
        self.view.redraw()

    def _message(self, msg: Message | None) -> None:
        assert self.view is not None
        self.view.message = msg.text if msg else ""
        self.app.set_detail(msg.detail if msg else "")
        self.view.redraw()
