"""The selected track's emotions over time, under the player: app.outputs._timeline's chart with a cursor; a click
seeks.

The chart is drawn by :func:`app.outputs.track_chart` (the same picture the export writes to timelines/) and
only when its data or size changed, at most every ``REDRAW_S`` while the analysis adds to it; the cursor is a
canvas line moved on every frame, so playing costs no chart redraws. Time maps to x by
:func:`app.outputs.plot_area`, and a click goes back through :func:`app.outputs.time_at`.
"""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable

from PIL import ImageTk

from app.outputs import Series, plot_area, time_at, track_chart

REDRAW_S = 0.5
CURSOR = "#d62728"


class TimelineView:
    """Owns ``canvas``; ``on_seek(time_s)`` hears the clicks."""

    def __init__(self, parent: tk.Misc, on_seek: Callable[[float], None], height: int, font: object) -> None:
        self.canvas = tk.Canvas(parent, bg="white", height=height, highlightthickness=0, cursor="hand2")
        self.on_seek = on_seek
        self.font = font
        self.series: Series | None = None
        self.span = (0.0, 1.0)
        self.title = ""
        self.hint = ""
        self.cursor_s: float | None = None
        self._image: ImageTk.PhotoImage | None = None
        self._key: tuple | None = None
        self._drawn_at = 0.0
        self._size = (0, 0)
        self.canvas.bind("<Configure>", lambda _e: self.redraw(force=True))
        self.canvas.bind("<ButtonPress-1>", self._on_click)
        self.canvas.bind("<B1-Motion>", self._on_click)  # dragging along the chart scrubs

    def set_series(self, series: Series | None, span: tuple[float, float], title: str = "", hint: str = "",
                   force: bool = False) -> None:
        """Chart ``series`` over ``span`` (None: show ``hint`` instead); redrawn when it changed."""
        self.series, self.span, self.title, self.hint = series, span, title, hint
        self.redraw(force=force)

    def set_cursor(self, time_s: float | None) -> None:
        self.cursor_s = time_s
        self._place_cursor()

    def size(self) -> tuple[int, int]:
        return max(self.canvas.winfo_width(), 1), max(self.canvas.winfo_height(), 1)

    def redraw(self, force: bool = False) -> None:
        size = self.size()
        s = self.series
        key = (None if s is None else (s.track, len(s.times)), self.span, self.title, self.hint, size)
        if key == self._key:
            return
        same_chart = self._key is not None and key[0] is not None and self._key[0] is not None and (
            key[0][0] == self._key[0][0] and key[1:] == self._key[1:])
        if same_chart and not force and time.monotonic() - self._drawn_at < REDRAW_S:
            return  # only more points of the same track: wait a little, the next call draws them
        self._key, self._drawn_at, self._size = key, time.monotonic(), size
        c = self.canvas
        c.delete("all")
        if size[0] < 50 or size[1] < 40:
            return
        if s is None or not len(s.times):
            c.create_text(size[0] // 2, size[1] // 2, text=self.hint, fill="#666666", font=self.font,
                          width=max(100, size[0] - 40), justify=tk.CENTER, tags=("hint",))
            return
        self._image = ImageTk.PhotoImage(track_chart(s, size, self.span, None, self.title), master=c)
        c.create_image(0, 0, image=self._image, anchor=tk.NW, tags=("chart",))
        self._place_cursor()

    def _place_cursor(self) -> None:
        c = self.canvas
        c.delete("cursor")
        t0, t1 = self.span
        if self.cursor_s is None or not c.find_withtag("chart") or t1 <= t0:
            return
        x0, y0, x1, y1 = plot_area(self._size)
        x = x0 + (min(max(self.cursor_s, t0), t1) - t0) / (t1 - t0) * (x1 - x0)
        c.create_line(x, y0, x, y1, fill=CURSOR, width=2, tags=("cursor",))

    def x_of(self, time_s: float) -> float:
        """The canvas x of ``time_s`` (tests click there)."""
        x0, _, x1, _ = plot_area(self.size())
        t0, t1 = self.span
        return x0 + (time_s - t0) / max(t1 - t0, 1e-9) * (x1 - x0)

    def _on_click(self, event: tk.Event) -> None:
        self.canvas.focus_set()
        if self.series is None:
            return
        self.on_seek(time_at(event.x, self.size(), *self.span))
