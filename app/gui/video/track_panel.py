"""The side panel for a video: one table row per tracked face, and the selected track's summary below it.

Why a row per track and not per face: in a video the same person is in thousands of frames; the tracker
(app.video._track) gives them one number, so the table says who is in the video (time in view, the emotion they
show longest) while its model columns follow the player (each model's label of that face in the frame on
screen, "–" while it is out of view).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

import numpy as np
from PIL import Image, ImageTk

from app.core import EMOTIONS
from app.gui.face_panel import percent, scrolled_table
from app.gui.photo_view import hex_color

ABSENT = "–"  # a model column while the track is not in the frame on screen
THUMB = 64


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour): how long a face is in view, or where the player is."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrackPanel:
    """``frame`` holds the table (top) and the card (below); ``on_select(track)`` fires on a row pick."""

    def __init__(self, parent: tk.Misc, fonts: dict[str, Any], on_select: Callable[[int | None], None]) -> None:
        self.fonts = fonts
        self.on_select = on_select
        self.frame = ttk.PanedWindow(parent, orient=tk.VERTICAL)
        top, self.tree = scrolled_table(self.frame)
        self.tree.bind("<<TreeviewSelect>>", self._on_tree_select)
        self.card = tk.Canvas(self.frame, bg="white", highlightthickness=0, width=380)
        self.card.bind("<Configure>", lambda _e: self._draw_card())
        self.frame.add(top, weight=1)
        self.frame.add(self.card, weight=1)
        self.models: list[Any] = []
        self.selected: int | None = None
        self.hint = ""
        self._quiet = False
        self._tracks: dict[int, Any] = {}  # track -> app.gui.video.analysis.TrackInfo
        self._frame_s = 0.0
        self._current: dict[str, tuple[str, ...]] = {}
        self._images: list[ImageTk.PhotoImage] = []

    def set_models(self, models: list[Any], hint: str = "") -> None:
        """Start empty, with a column per model (``hint`` fills the card until a track is picked)."""
        self.models, self.hint = list(models), hint
        self.selected, self._tracks, self._current = None, {}, {}
        columns = ["track", "inview", "dominant", *[m.name for m in self.models]]
        titles = ["Track", "In view", "Dominant", *[m.display_name for m in self.models]]
        self._quiet = True
        self.tree.delete(*self.tree.get_children())
        self.tree.configure(columns=columns)
        f, bold = self.fonts["body"], self.fonts["bold"]  # headings are bold in some themes
        for col, title in zip(columns, titles, strict=True):
            self.tree.heading(col, text=title)
            sample = {"track": "Track", "inview": "In view", "dominant": "Dominant"}.get(col, "surprise 100%")
            width = max(f.measure(sample), bold.measure(title)) + 18
            self.tree.column(col, width=width, minwidth=width, stretch=False,
                             anchor=tk.E if col in ("track", "inview") else tk.W)
        self._quiet = False
        self._draw_card()

    def update_tracks(self, tracks: dict[int, Any], frame_s: float) -> None:
        """Add new tracks' rows and refresh every row's time in view and dominant emotion."""
        self._tracks, self._frame_s = tracks, frame_s
        for track in sorted(tracks):
            info = tracks[track]
            iid = str(track)
            values = [str(track), clock(info.in_view_s(frame_s)), info.dominant(frame_s)]
            if self.tree.exists(iid):
                old = self.tree.item(iid, "values")
                self.tree.item(iid, values=values + list(old[3:]))
            else:
                now = list(self._current.get(iid, ())) or [ABSENT] * len(self.models)
                self.tree.insert("", tk.END, iid=iid, values=values + now)
        self._draw_card()

    def set_current(self, faces: list[Any]) -> None:
        """Each model's label of every track in the frame on screen (``faces``: its TrackFaces); others "–"."""
        now = {str(f.track): tuple(f"{p.label} {percent(p.confidence)}" for p in
                                   (f.predictions.get(m.name) for m in self.models) if p is not None)
               for f in faces}
        if now == self._current:
            return
        for iid in self.tree.get_children():
            if self._current.get(iid) != now.get(iid):
                values = list(self.tree.item(iid, "values"))
                labels = list(now.get(iid, ())) or [ABSENT] * len(self.models)
                self.tree.item(iid, values=values[:3] + labels)
        self._current = now

    def rows(self) -> list[list[str]]:
        """The table as shown, one list of cell texts per track (for tests)."""
        return [list(self.tree.item(i, "values")) for i in self.tree.get_children()]

    def order(self) -> list[int]:
        return [int(i) for i in self.tree.get_children()]

    def select(self, track: int | None) -> None:
        """Highlight ``track``'s row and show its card (None: clear); does not echo back to ``on_select``."""
        self.selected = track
        self._quiet = True
        if track is not None and self.tree.exists(str(track)):
            self.tree.selection_set((str(track),))
            self.tree.focus(str(track))
            self.tree.see(str(track))
        else:
            self.tree.selection_set(())
        self.tree.update_idletasks()
        self._quiet = False
        self._draw_card()

    def _on_tree_select(self, _e: tk.Event) -> None:
        if self._quiet:
            return
        sel = self.tree.selection()
        track = int(sel[0]) if sel else None
        if track != self.selected:
            self.on_select(track)

    # ------------------------------------------------------------------ the card

    def _draw_card(self) -> None:
        p = self.card
        p.delete("all")
        self._images.clear()
        pw = max(p.winfo_width(), 200)
        info = self._tracks.get(self.selected) if self.selected is not None else None
        if info is None:
            p.create_text(pw // 2, 24, text=self.hint, width=pw - 30, fill="#666666", justify=tk.CENTER,
                          font=self.fonts["body"], anchor=tk.N, tags=("hint",))
            return
        bold, small = self.fonts["bold"], self.fonts["small"]
        side = max(THUMB, round(THUMB * bold.metrics("linespace") / 17))
        x, y = 10, 10
        if info.thumbnail is not None:
            thumb = Image.fromarray(np.asarray(info.thumbnail, np.uint8), "L").resize((side, side), Image.NEAREST)
            img = ImageTk.PhotoImage(thumb, master=p)
            self._images.append(img)
            p.create_image(x, y, image=img, anchor=tk.NW)
            x += side + 10
        dominant = info.dominant(self._frame_s)
        shares = [float(s) for s in info.stats.row("", self._frame_s)[6:]]
        t = p.create_text(x, y, text=f"Track {info.track}", anchor=tk.NW, font=bold, tags=("title",))
        y2 = p.bbox(t)[3] + 2
        t = p.create_text(x, y2, text=f"mostly {dominant}" if dominant else "", anchor=tk.NW, font=bold,
                          fill=hex_color(dominant))
        y2 = p.bbox(t)[3] + 2
        st = info.stats
        t = p.create_text(x, y2, text=f"in view {clock(info.in_view_s(self._frame_s))}, from {clock(st.first_s)} "
                          f"to {clock(st.last_s)}\n{st.frames} frames analysed", anchor=tk.NW, font=small,
                          fill="#666666", width=max(60, pw - x - 10))
        y = max(y + side, p.bbox(t)[3]) + 10
        t = p.create_text(10, y, text="Share of its time (smoothed label)", anchor=tk.NW, font=small, fill="#555555")
        y = p.bbox(t)[3] + 4
        name_w = max(small.measure(e) for e in EMOTIONS) + 8
        pct_w = small.measure("100%") + 6
        row_h = max(13, bold.metrics("linespace"))
        bar_w = max(20, pw - 20 - name_w - pct_w)
        best = int(np.argmax(shares)) if any(shares) else -1
        for i, (emotion, share) in enumerate(zip(EMOTIONS, shares, strict=False)):
            font = bold if i == best else small
            p.create_text(10 + name_w - 4, y + row_h // 2, text=emotion, anchor=tk.E, font=font)
            p.create_rectangle(10 + name_w, y + 2, 10 + name_w + bar_w, y + row_h - 2, fill="#f0f0f0", outline="")
            if share > 0.002:
                p.create_rectangle(10 + name_w, y + 2, 10 + name_w + max(1, share * bar_w), y + row_h - 2,
                                   fill=hex_color(emotion) if i == best else "#b8b8b8", outline="")
            p.create_text(10 + name_w + bar_w + 3, y + row_h // 2, text=percent(share), anchor=tk.W, font=font)
            y += row_h
