"""The video player: the frame with its boxes and labels, play/pause, frame steps, a seek slider, the timeline.

Why it is built this way:

* Frames come from :class:`app.gui.video.decoder.Decoder` (a thread, a small queue); the Tk thread only shows
  them, from a timer (``after``) that runs on the video's own clock: each tick shows the newest frame whose
  time has come and drops the ones it has passed, so a slow machine skips frames instead of drifting
  behind the clock.
* It knows nothing of the analysis: ``faces_at(time_s)`` gives the boxes to draw (app.core.ShownFace,
  numbered by track, the smoothed label on the tag) and ``index_at``/``time_of`` the exact frame numbers
  where the analysis knows them. Boxes and labels are drawn by :class:`app.gui.photo_view.PhotoView`, the
  photo's own canvas: the same colours, the same placement rule, zoom and pan, a click selects the track.
* Keys (on the frame, the timeline and the track table): Space plays and pauses, Left/Right or ,/. step one
  frame, Home/End go to the start and the end.
"""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk
from typing import Any

from PIL import Image

from app.gui.photo_view import PhotoView
from app.gui.video.decoder import Decoder, Stopped
from app.gui.video.timeline_view import TimelineView
from app.video import Frame, VideoInfo

IDLE_MS = 30  # tick while paused: a seek's or step's frame is shown this soon after it is decoded
SEEK_DEBOUNCE_MS = 60  # dragging the slider seeks at most this often
TIMELINE_HEIGHT = 170  # px at 96 DPI


def clock(t: float) -> str:
    """``m:ss.s``: where the player is, to a tenth of a second."""
    m, s = divmod(max(0.0, t), 60)
    return f"{int(m)}:{s:04.1f}"


class Player:
    """Owns ``frame`` (the video, the transport bar, the timeline). Callbacks: ``on_frame(frame)`` after a
    frame is shown, ``on_select(track)`` on a click on a box, ``on_problem(text)`` when decoding stops early."""

    def __init__(self, parent: tk.Misc, fonts: dict[str, Any], label_font: Any, dpi_scale: float,
                 on_select: Callable[[int | None], None], on_frame: Callable[[Frame], None],
                 on_problem: Callable[[str], None]) -> None:
        self.on_frame, self.on_problem = on_frame, on_problem
        self.faces_at: Callable[[float], list[Any]] = lambda _t: []
        self.index_at: Callable[[float], int | None] = lambda _t: None
        self.time_of: Callable[[int], float | None] = lambda _i: None
        self.frame = ttk.Frame(parent)
        self.view = PhotoView(self.frame, label_font, fonts["bold"], on_select)
        bar = ttk.Frame(self.frame, padding=(6, 4))
        self.back_btn = ttk.Button(bar, text="◀|", width=3, command=lambda: self.step(-1))
        self.play_btn = ttk.Button(bar, text="▶ Play", width=8, command=self.toggle)
        self.fwd_btn = ttk.Button(bar, text="|▶", width=3, command=lambda: self.step(1))
        self.pos_var = tk.DoubleVar(master=self.frame, value=0.0)
        self.slider = ttk.Scale(bar, from_=0.0, to=1.0, orient=tk.HORIZONTAL, variable=self.pos_var,
                                command=self._on_slide)
        self.time_var = tk.StringVar(master=self.frame, value="")
        self.time_label = ttk.Label(bar, textvariable=self.time_var, font=fonts["small"], width=26, anchor=tk.E)
        for w in (self.back_btn, self.play_btn, self.fwd_btn):
            w.pack(side=tk.LEFT, padx=(0, 4))
        self.time_label.pack(side=tk.RIGHT, padx=(6, 0))
        self.slider.pack(side=tk.LEFT, fill=tk.X, expand=True, padx=(6, 0))
        self.timeline = TimelineView(self.frame, self.seek, round(TIMELINE_HEIGHT * dpi_scale), fonts["body"])
        self.frame.columnconfigure(0, weight=1)
        self.frame.rowconfigure(0, weight=1)
        self.view.canvas.grid(row=0, column=0, sticky="nsew")
        bar.grid(row=1, column=0, sticky="ew")
        self.timeline.canvas.grid(row=2, column=0, sticky="ew")
        for widget in (self.view.canvas, self.timeline.canvas, self.slider):
            self.bind_keys(widget)
        self.view.canvas.bind("<Configure>", self._on_resize, add=True)

        self.path: Path | None = None
        self.info: VideoInfo | None = None
        self.duration = 0.0
        self.current: Frame | None = None
        self.playing = False
        self.at_end = False
        self._decoder: Decoder | None = None
        self._ahead: Frame | Stopped | None = None  # the next item, taken out of the queue to look at its time
        self._want = False  # show the next frame as soon as it is decoded (a seek or a step)
        self._aligned = False  # the decoder's next frame is the one after ``current``
        self._t0 = self._w0 = 0.0  # playing: video time t0 was on screen at monotonic time w0
        self._after: str | None = None
        self._seek_after: str | None = None
        self._resize_after: str | None = None
        self._seek_to = 0.0

    def bind_keys(self, widget: tk.Misc) -> None:
        """Space, Left/Right (or , and .), Home and End on ``widget`` drive the player."""
        for seq, fn in (("<space>", self.toggle), ("<Right>", lambda: self.step(1)), ("<period>", lambda: self.step(1)),
                        ("<Left>", lambda: self.step(-1)), ("<comma>", lambda: self.step(-1)),
                        ("<Home>", lambda: self.seek(0.0)), ("<End>", lambda: self.seek(self.duration))):
            widget.bind(seq, lambda _e, fn=fn: (fn(), "break")[1])

    # ------------------------------------------------------------------ what to play

    def load(self, path: Path, info: VideoInfo) -> None:
        """Show ``path``'s first frame, paused."""
        self.unload()
        self.path, self.info = path, info
        duration = info.duration_s or (info.frames / info.fps if info.frames and info.fps else 0.0)
        self.duration = max(duration, 0.0)
        self.slider.configure(to=max(self.duration, 1e-3))
        self.view.set_photo(None, (info.source_width, info.source_height))
        self._decoder = Decoder(path)
        self.seek(0.0)
        self.view.canvas.focus_set()

    def unload(self) -> None:
        """Stop decoding and the clock; the canvas keeps what it shows until the next load."""
        if self._decoder is not None:
            self._decoder.stop()
        self._decoder = None
        for after_id in (self._after, self._seek_after, self._resize_after):
            if after_id is not None:
                self.frame.after_cancel(after_id)
        self._after = self._seek_after = self._resize_after = None
        self.path, self.info, self.current = None, None, None
        self.playing = self.at_end = self._want = self._aligned = False
        self._ahead = None
        self.play_btn.configure(text="▶ Play")

    def extend(self, time_s: float) -> None:
        """The video lasts at least until ``time_s`` (for files whose header has no duration)."""
        if time_s > self.duration:
            self.duration = time_s
            self.slider.configure(to=time_s)

    # ------------------------------------------------------------------ transport

    def toggle(self) -> None:
        """Space: play or pause."""
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self._decoder is None or (self.current is None and not self._want):
            return
        if self.at_end:
            self.seek(0.0)
        self.playing = True
        self.play_btn.configure(text="❚❚ Pause")
        if self.current is not None and not self._want:
            self._anchor(self.current.time_s)
        self._schedule(1)

    def pause(self) -> None:
        self.playing = False
        self.play_btn.configure(text="▶ Play")

    def seek(self, time_s: float) -> None:
        """Show the frame at ``time_s`` (keeps playing if it was)."""
        if self._decoder is None:
            return
        t = min(max(0.0, time_s), self.duration) if self.duration else max(0.0, time_s)
        index = self.index_at(t)
        if index is None:
            fps = self.info.fps if self.info else 0.0
            index = int(round(t * fps)) if fps else 0
        self._restart(index, t)

    def step(self, n: int) -> None:
        """Show the frame ``n`` frames on (back for negative ``n``), pausing."""
        self.pause()
        if self._decoder is None or self.current is None:
            return
        if n == 1 and self._aligned:
            self._want = True
            self._schedule(1)
            return
        if n > 0 and self.at_end:
            return
        index = max(0, self.current.index + n)
        t = self.time_of(index)
        if t is None and self.info and self.info.fps:
            t = index / self.info.fps
        self._restart(index, t)

    def _restart(self, index: int, time_s: float | None) -> None:
        assert self._decoder is not None
        self._decoder.start(index, time_s)
        self._ahead = None
        self._want, self._aligned, self.at_end = True, False, False
        self._schedule(1)

    def _anchor(self, time_s: float) -> None:
        self._t0, self._w0 = time_s, time.monotonic()

    def _on_slide(self, value: str) -> None:
        """The user moves the slider: seek there, at most every SEEK_DEBOUNCE_MS while dragging."""
        self._seek_to = float(value)
        if self._seek_after is None:
            self._seek_after = self.frame.after(SEEK_DEBOUNCE_MS, self._slide_done)

    def _slide_done(self) -> None:
        self._seek_after = None
        self.seek(self._seek_to)

    # ------------------------------------------------------------------ the clock

    def _schedule(self, delay_ms: int) -> None:
        if self._after is not None:
            self.frame.after_cancel(self._after)
        self._after = self.frame.after(max(1, int(delay_ms)), self._tick)

    def _peek(self) -> Frame | Stopped | None:
        if self._ahead is None and self._decoder is not None:
            self._ahead = self._decoder.get()
        return self._ahead

    def _take(self) -> Frame | Stopped | None:
        item = self._peek()
        self._ahead = None
        return item

    def _tick(self) -> None:
        self._after = None
        if self._decoder is None:
            return
        delay = IDLE_MS
        if self._want:
            item = self._take()
            if isinstance(item, Frame):
                self._want, self._aligned = False, True
                self._show(item)
                if self.playing:
                    self._anchor(item.time_s)
                    delay = 1
            elif isinstance(item, Stopped):
                self._want = False
                self._stopped(item)
            else:
                delay = 5
        elif self.playing:
            target = self._t0 + (time.monotonic() - self._w0)
            shown = None
            while True:
                item = self._peek()
                if isinstance(item, Stopped):
                    if shown is None:
                        self._take()
                        self._stopped(item)
                    break
                if item is None or item.time_s > target + 1e-3:
                    break
                shown = self._take()  # a frame whose time has passed is dropped unless it is the newest
            if shown is not None:
                self._show(shown)
            nxt = self._peek()
            delay = 5 if nxt is None else IDLE_MS if isinstance(nxt, Stopped) else (nxt.time_s - target) * 1000
            delay = min(max(delay, 1), 100)
        if self._decoder is not None and (self.playing or self._want):
            self._schedule(int(delay))

    def _stopped(self, item: Stopped) -> None:
        self._aligned = False
        self.at_end = True
        self.pause()
        if item.reason:
            self.on_problem(f"The video cannot be played further: {item.reason}")

    # ------------------------------------------------------------------ drawing

    def _on_resize(self, _event: tk.Event) -> None:
        if self._resize_after is None:
            self._resize_after = self.frame.after(SEEK_DEBOUNCE_MS, self._resized)

    def _resized(self) -> None:
        self._resize_after = None
        self.view.redraw()

    def _show(self, frame: Frame) -> None:
        self.current = frame
        self.view.set_frame(Image.fromarray(frame.rgb), self.faces_at(frame.time_s))
        self.pos_var.set(frame.time_s)
        self._set_time_text()
        self.timeline.set_cursor(frame.time_s)
        self.on_frame(frame)

    def _set_time_text(self) -> None:
        if self.current is not None:
            self.time_var.set(f"{clock(self.current.time_s)} / {clock(self.duration)} · frame {self.current.index}")

    def refresh(self) -> None:
        """Redraw the boxes of the frame on screen (the analysis reached it meanwhile)."""
        if self.current is not None and self.view.base is not None:
            self.view.set_frame(self.view.base, self.faces_at(self.current.time_s))
            self.on_frame(self.current)
