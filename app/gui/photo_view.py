"""The photo canvas: the scaled photo, a box and tag per face, full labels where they fit, zoom, pan, selection.

Why it is built this way:

* Only the visible part of the photo is resampled, to the canvas's size, so zooming into a 6000 px photo costs
  what the fitted view costs. ``scale``/``ox``/``oy`` map photo pixels to canvas pixels: ``X = ox + x * scale``.
* Boxes and labels are canvas items in canvas pixels, so they stay crisp at any zoom; where the labels go is
  decided by :func:`app.outputs.place_labels`, the rule the saved images use too, so no label covers a face.
  A face whose full line has no room shows it on hover and while selected (drawn on top, allowed to cover).
* A press that moves more than a few pixels pans; one that does not selects the face under the pointer.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageTk

from app.outputs import (
    LABEL_BG,
    SEP,
    SEP_COLOR,
    Placement,
    color,
    number_prefix,
    place_labels,
    place_popup,
    tag_text,
    text_color,
)

CANVAS_BG = "#2b2b2b"
SELECTED = "#ffffff"
DRAG_PX = 4  # a press that moves less than this is a click
MAX_ZOOM = 16.0  # times the fitted scale
MIN_SELECTED_PX = 40  # selecting a face smaller than this on screen zooms in on it
ZOOM_STEP = 1.25


def hex_color(label: str) -> str:
    """Tk colour string for an emotion (grey for anything unknown, e.g. a future extra class)."""
    return _hex(color(label))


def _hex(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


class PhotoView:
    """Owns ``canvas``; the window tells it what to show and hears about clicks through ``on_select``."""

    def __init__(self, parent: tk.Misc, font: Any, message_font: Any, on_select: Callable[[int | None], None]):
        self.canvas = tk.Canvas(parent, bg=CANVAS_BG, highlightthickness=2, highlightbackground=CANVAS_BG,
                                highlightcolor="#5b9bd5", width=400, height=300, takefocus=1)
        self.font = font
        self.message_font = message_font
        self.on_select = on_select
        self.base: Image.Image | None = None  # display copy of the photo (may be smaller than the photo)
        self.full: Any = None  # the photo's own pixels (RGB array), for zoomed views of large photos
        self._full_image: Image.Image | None = None
        self.size: tuple[int, int] = (0, 0)  # the photo's real size; boxes are in its pixels
        self.faces: list[Any] = []
        self.parts: Callable[[Any], list[tuple[str, str]]] = lambda _f: []
        self.message = ""
        self.selected: int | None = None
        self.hover: int | None = None
        self.scale, self.ox, self.oy = 1.0, 0.0, 0.0
        self.fitted = True  # follow the window's size until the user zooms or pans
        self.placements: list[Placement] = []
        self._layout_key: tuple | None = None
        self._tk_photo: ImageTk.PhotoImage | None = None
        self._press: tuple[int, int] | None = None
        self._dragged = False
        c = self.canvas
        c.bind("<ButtonPress-1>", self._on_press)
        c.bind("<B1-Motion>", self._on_drag)
        c.bind("<ButtonRelease-1>", self._on_release)
        c.bind("<Motion>", self._on_motion)
        c.bind("<Leave>", lambda _e: self._set_hover(None))
        for seq in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            c.bind(seq, self._on_wheel)
        for seq, fn in (("<plus>", lambda: self.zoom_by(ZOOM_STEP)), ("<equal>", lambda: self.zoom_by(ZOOM_STEP)),
                        ("<minus>", lambda: self.zoom_by(1 / ZOOM_STEP)), ("<Key-0>", self.fit)):
            c.bind(seq, lambda _e, fn=fn: (fn(), "break")[1])

    # ------------------------------------------------------------------ what to show

    def set_photo(self, base: Image.Image | None, size: tuple[int, int], full: Any = None) -> None:
        """A new photo (or None): fitted to the canvas, nothing selected.

        ``base`` is the display copy (at most a few thousand pixels); ``full`` the photo's own pixels (an RGB
        array), used only where zooming in shows more detail than the display copy has.
        """
        self.base, self.size, self.full = base, size, full
        self._full_image = None
        self.faces, self.selected, self.hover = [], None, None
        self.fitted = True

    def set_faces(self, faces: list[Any], parts: Callable[[Any], list[tuple[str, str]]]) -> None:
        """Faces to box; ``parts(face)`` gives the full label's (text, emotion) pieces."""
        self.faces, self.parts = list(faces), parts
        self.selected = self.hover = None

    def set_frame(self, base: Image.Image, faces: list[Any]) -> None:
        """The next frame of a video (same size): new pixels and boxes, while zoom, pan and selection stay."""
        self.base, self.full, self._full_image = base, None, None
        self.faces = list(faces)
        self.redraw()

    # ------------------------------------------------------------------ view geometry

    def viewport(self) -> tuple[int, int]:
        return max(self.canvas.winfo_width(), 1), max(self.canvas.winfo_height(), 1)

    def fit_scale(self) -> float:
        cw, ch = self.viewport()
        w, h = self.size
        return min(cw / w, ch / h) if w and h else 1.0

    def fit(self) -> None:
        """Whole photo in view, centred (upscaling small frames too)."""
        cw, ch = self.viewport()
        w, h = self.size
        self.scale = self.fit_scale()
        self.ox, self.oy = (cw - w * self.scale) / 2, (ch - h * self.scale) / 2
        self.fitted = True
        self.redraw()

    @property
    def zoom(self) -> float:
        """Current scale relative to the fitted one (1 = whole photo)."""
        return self.scale / self.fit_scale()

    def zoom_by(self, factor: float, x: float | None = None, y: float | None = None) -> None:
        """Zoom around canvas point (x, y) (the centre by default), between fitted and MAX_ZOOM x fitted."""
        if self.base is None:
            return
        cw, ch = self.viewport()
        x = cw / 2 if x is None else x
        y = ch / 2 if y is None else y
        fit = self.fit_scale()
        new = min(max(self.scale * factor, fit), fit * MAX_ZOOM)
        if abs(new - fit) < 1e-9:
            self.fit()
            return
        px, py = (x - self.ox) / self.scale, (y - self.oy) / self.scale  # the photo point under the cursor
        self.scale = new
        self.ox, self.oy = x - px * new, y - py * new
        self.fitted = False
        self.clamp()
        self.redraw()

    def pan(self, dx: float, dy: float) -> None:
        """Move the photo by (dx, dy) canvas pixels, never further than its edges."""
        self.ox += dx
        self.oy += dy
        self.fitted = False
        self.clamp()
        self.redraw()

    def clamp(self) -> None:
        """Keep the photo covering the view along each axis it overflows, centred along the others."""
        cw, ch = self.viewport()
        w, h = self.size[0] * self.scale, self.size[1] * self.scale
        self.ox = (cw - w) / 2 if w <= cw else min(0.0, max(cw - w, self.ox))
        self.oy = (ch - h) / 2 if h <= ch else min(0.0, max(ch - h, self.oy))

    def to_canvas(self, box: Any) -> tuple[float, float, float, float]:
        s = self.scale
        return (self.ox + box.x * s, self.oy + box.y * s, self.ox + (box.x + box.w) * s, self.oy + (box.y + box.h) * s)

    def show_face(self, index: int) -> None:
        """Bring face ``index`` into view: zoom in when it is tiny on screen, pan when it is (partly) outside."""
        face = self._face(index)
        if face is None:
            return
        cw, ch = self.viewport()
        x0, y0, x1, y1 = self.to_canvas(face.box)
        if max(x1 - x0, y1 - y0) < MIN_SELECTED_PX:
            target = min(cw, ch) / 3 / max(face.box.w, face.box.h)
            self.scale = min(max(target, self.fit_scale()), self.fit_scale() * MAX_ZOOM)
            self.fitted = False
            x0, y0, x1, y1 = self.to_canvas(face.box)
        if self.fitted:  # the whole photo is on screen and the face big enough: nothing to move
            self.redraw()
            return
        margin = min(40.0, cw / 8, ch / 8)
        if x0 < margin or y0 < margin or x1 > cw - margin or y1 > ch - margin:
            self.ox += cw / 2 - (x0 + x1) / 2
            self.oy += ch / 2 - (y0 + y1) / 2
        self.clamp()
        self.redraw()

    def _face(self, index: int | None) -> Any:
        return next((f for f in self.faces if f.number == index), None)

    # ------------------------------------------------------------------ drawing

    def redraw(self) -> None:
        c = self.canvas
        c.delete("all")
        cw, ch = self.viewport()
        if self.base is not None and cw > 1 and ch > 1:
            if self.fitted:
                w, h = self.size
                self.scale = self.fit_scale()
                self.ox, self.oy = (cw - w * self.scale) / 2, (ch - h * self.scale) / 2
            self._draw_photo(cw, ch)
            self._draw_faces(cw, ch)
        if self.message:
            self._draw_message(cw, ch, centred=self.base is None)

    def _draw_photo(self, cw: int, ch: int) -> None:
        assert self.base is not None
        w, h = self.size
        s = self.scale
        # Visible part of the photo, in canvas pixels, and the matching box in the display copy's pixels.
        vx0, vy0 = max(0.0, self.ox), max(0.0, self.oy)
        vx1, vy1 = min(float(cw), self.ox + w * s), min(float(ch), self.oy + h * s)
        if vx1 - vx0 < 1 or vy1 - vy0 < 1:
            return
        src = self.base
        if self.full is not None and s > self.base.width / w and self.base.width < w:
            if self._full_image is None:  # zoomed in past the display copy: use the photo's own pixels
                self._full_image = Image.fromarray(self.full)
            src = self._full_image
        k = src.width / w
        box = ((vx0 - self.ox) / s * k, (vy0 - self.oy) / s * k, (vx1 - self.ox) / s * k, (vy1 - self.oy) / s * k)
        dw, dh = max(1, round(vx1 - vx0)), max(1, round(vy1 - vy0))
        shrink = (box[2] - box[0]) / dw
        resample = Image.Resampling.LANCZOS if 1 < shrink < 2 else Image.Resampling.BILINEAR
        if shrink <= 1 and s / k > 3:
            resample = Image.Resampling.NEAREST  # far zoomed in: show the pixels rather than a blur
        shown = src.resize((dw, dh), resample, box=box, reducing_gap=2.0 if shrink > 2 else None)
        self._tk_photo = ImageTk.PhotoImage(shown, master=self.canvas)
        self.canvas.create_image(round(vx0), round(vy0), image=self._tk_photo, anchor=tk.NW, tags=("photo",))

    def _prefix(self, face: Any) -> str:
        return number_prefix(face, len(self.faces) > 1)

    def _sizes(self, face: Any) -> tuple[Any, Any]:
        """(tag sizes, full-label sizes) in canvas pixels for app.outputs._placement."""
        f = self.font
        line_h = f.metrics("linespace")
        tag = ((f.measure(tag_text(face)) + 8, line_h + 2), (f.measure(tag_text(face, True)) + 8, line_h + 2))
        parts = self.parts(face)
        if not parts:
            return tag, None
        widths = [f.measure(t) for t, _ in parts]
        widths[0] += f.measure(self._prefix(face))
        one = sum(widths) + f.measure(SEP) * (len(parts) - 1) + 8
        stacked = max(widths) + 8
        return tag, ((one, line_h + 4), (stacked, line_h * len(parts) + 4))

    def _draw_faces(self, cw: int, ch: int) -> None:
        boxes = [self.to_canvas(f.box) for f in self.faces]
        sizes = [self._sizes(f) for f in self.faces]
        key = (tuple(boxes), tuple(sizes), cw, ch)
        if key != self._layout_key:  # hover and selection redraw often; the layout changes only with the view
            self.placements = place_labels(boxes, [s[0] for s in sizes], [s[1] for s in sizes], (0, 0, cw, ch))
            self._layout_key = key
        c = self.canvas
        for face, box, pl in zip(self.faces, boxes, self.placements, strict=True):
            tag = f"face{face.number}"
            col = hex_color(face.label.label)
            selected = face.number == self.selected
            c.create_rectangle(*box, outline=SELECTED if selected else "black", width=7 if selected else 5,
                               tags=(tag, "box", "halo"))
            c.create_rectangle(*box, outline=col, width=3, tags=(tag, "box"))
            c.create_rectangle(*pl.tag, fill=col, outline=SELECTED if selected else "", width=2, tags=(tag, "tag"))
            c.create_text(pl.tag[0] + 4, pl.tag[1] + 1, text=tag_text(face, pl.short), anchor=tk.NW,
                          font=self.font, fill=_hex(text_color(color(face.label.label))), tags=(tag, "tagtext"))
            if pl.full is not None and face.number not in (self.selected, self.hover):
                self._draw_full(face, pl.full, pl.stacked, pl.leader, ("fixed",))
        for index in (self.hover, self.selected):  # on top of everything, where it fits or next to the box
            face = self._face(index)
            if face is None:
                continue
            i = self.faces.index(face)
            pl, full_sizes = self.placements[i], sizes[i][1]
            if pl.full is not None:
                self._draw_full(face, pl.full, pl.stacked, pl.leader, ("popup",))
            elif full_sizes is not None:
                others = boxes[:i] + boxes[i + 1:]
                rect, stacked, leader = place_popup(boxes[i], pl.tag, full_sizes, others, (0, 0, cw, ch))
                self._draw_full(face, rect, stacked, leader, ("popup",))

    def _draw_full(self, face: Any, rect: tuple[float, ...], stacked: bool, leader: Any, extra: tuple[str, ...]):
        c = self.canvas
        tag = f"face{face.number}"
        col = hex_color(face.label.label)
        if leader is not None:
            c.create_line(*leader, fill=col, width=2, tags=(tag, *extra))
        c.create_rectangle(*rect, fill=_hex(LABEL_BG), outline=col, tags=(tag, "full", *extra))
        parts = self.parts(face)
        lines = [[p] for p in parts] if stacked else [parts]
        f = self.font
        y = rect[1] + 2
        for n, line in enumerate(lines):
            x = rect[0] + 4
            if n == 0 and self._prefix(face):
                c.create_text(x, y, text=self._prefix(face), anchor=tk.NW, font=f, fill=col, tags=(tag, *extra))
                x += f.measure(self._prefix(face))
            for k, (text, label) in enumerate(line):
                if k:
                    c.create_text(x, y, text=SEP, anchor=tk.NW, font=f, fill=_hex(SEP_COLOR), tags=(tag, *extra))
                    x += f.measure(SEP)
                c.create_text(x, y, text=text, anchor=tk.NW, font=f, fill=hex_color(label),
                              tags=(tag, "boxlabel", *extra))
                x += f.measure(text)
            y += f.metrics("linespace")

    def _draw_message(self, cw: int, ch: int, centred: bool) -> None:
        c = self.canvas
        width = max(200, min(cw - 60, 640))
        y = ch // 2 if centred else 16
        t = c.create_text(cw // 2, y, text=self.message, fill="white", width=width,
                          anchor=tk.CENTER if centred else tk.N, justify=tk.CENTER, font=self.message_font,
                          tags=("message",))
        x0, y0, x1, y1 = c.bbox(t)
        r = c.create_rectangle(x0 - 12, y0 - 10, x1 + 12, y1 + 10, fill="#5a1e1e", outline="#c0504d", width=2,
                               tags=("message",))
        c.tag_lower(r, t)

    # ------------------------------------------------------------------ mouse

    def face_at(self, x: float, y: float) -> int | None:
        """Index of the face whose box (smallest first) or tag/label is under canvas point (x, y)."""
        hits = []
        for face, pl in zip(self.faces, self.placements, strict=False):
            x0, y0, x1, y1 = self.to_canvas(face.box)
            if x0 <= x <= x1 and y0 <= y <= y1:
                hits.append(((x1 - x0) * (y1 - y0), face.number))
            elif any(r is not None and r[0] <= x <= r[2] and r[1] <= y <= r[3] for r in (pl.tag, pl.full)):
                hits.append((0.0, face.number))
        return min(hits)[1] if hits else None

    def _on_press(self, e: tk.Event) -> None:
        self.canvas.focus_set()
        self._press = (e.x, e.y)
        self._dragged = False

    def _on_drag(self, e: tk.Event) -> None:
        if self._press is None or self.base is None:
            return
        dx, dy = e.x - self._press[0], e.y - self._press[1]
        if not self._dragged and max(abs(dx), abs(dy)) < DRAG_PX:
            return
        self._dragged = True
        self.canvas.configure(cursor="fleur")
        self._press = (e.x, e.y)
        self.pan(dx, dy)

    def _on_release(self, e: tk.Event) -> None:
        if self._press is not None and not self._dragged:
            self.on_select(self.face_at(e.x, e.y))
        self._press = None
        self._dragged = False
        self.canvas.configure(cursor="")

    def _on_motion(self, e: tk.Event) -> None:
        if self._press is None:
            self._set_hover(self.face_at(e.x, e.y))

    def _set_hover(self, index: int | None) -> None:
        if index != self.hover:
            self.hover = index
            self.redraw()

    def _on_wheel(self, e: tk.Event) -> str | None:
        """Ctrl+wheel zooms around the pointer; the plain wheel scrolls a zoomed photo up and down."""
        up = getattr(e, "num", None) == 4 or getattr(e, "delta", 0) > 0
        if int(getattr(e, "state", 0)) & 0x4:  # Control held
            self.zoom_by(ZOOM_STEP if up else 1 / ZOOM_STEP, e.x, e.y)
        elif not self.fitted:
            self.pan(0, 60 if up else -60)
        return "break"
