"""The side panel: a sortable table with one row per face, and the selected face's card with its charts.

Why: a 24-face photo drawn as 24 cards of ~330 px is 8,000 px of scrolling; a table row per face shows every
face at once (sortable to find "all the angry ones"), and the full card (crop, every model's 7-bar chart)
is drawn only for the face the user picked on the photo, in the table or with the keys.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

import numpy as np
from PIL import Image, ImageTk

from app.core import EMOTIONS
from app.gui.photo_view import hex_color
from app.models import METHOD_TITLES
from app.outputs import overlay

CHART_MIN_W = 185  # the card lays out as many chart columns as fit this width
THUMB = 96  # px at 96 DPI; grows with the font on high-DPI screens
PREDICTED = "predicted class"  # the class picker's first choice: each model's own top class


def percent(p: float) -> str:
    """Confidence as a whole percent, the precision a person reads at a glance."""
    return f"{100.0 * float(p):.0f}%"


def scrolled_table(parent: tk.Misc) -> tuple[ttk.Frame, ttk.Treeview]:
    """A frame holding a one-selection table with both scroll bars: a narrow window scrolls the model columns
    sideways. The face table and the video's track table are both one."""
    top = ttk.Frame(parent)
    tree = ttk.Treeview(top, show="headings", selectmode="browse", height=6)
    scroll = ttk.Scrollbar(top, orient=tk.VERTICAL, command=tree.yview)
    xscroll = ttk.Scrollbar(top, orient=tk.HORIZONTAL, command=tree.xview)
    tree.configure(yscrollcommand=scroll.set, xscrollcommand=xscroll.set)
    top.columnconfigure(0, weight=1)
    top.rowconfigure(0, weight=1)
    tree.grid(row=0, column=0, sticky="nsew")
    scroll.grid(row=0, column=1, sticky="ns")
    xscroll.grid(row=1, column=0, sticky="ew")
    return top, tree


class FacePanel:
    """``frame`` holds the table (top) and the card (below); ``on_select(index)`` fires on a row pick."""

    def __init__(self, parent: tk.Misc, fonts: dict[str, Any], on_select: Callable[[int | None], None]):
        self.fonts = fonts
        self.on_select = on_select
        self.frame = ttk.PanedWindow(parent, orient=tk.VERTICAL)
        top, self.tree = scrolled_table(self.frame)
        self.tree.bind("<<TreeviewSelect>>", self._on_tree_select)
        bottom = ttk.Frame(self.frame)
        self.maps_bar = ttk.Frame(bottom, padding=(6, 4))  # shown while maps are on
        ttk.Label(self.maps_bar, text="Maps for:").pack(side=tk.LEFT, padx=(0, 6))
        self.class_var = tk.StringVar(master=bottom, value=PREDICTED)
        self.class_pick = ttk.Combobox(self.maps_bar, textvariable=self.class_var, state="readonly", width=16,
                                       values=[PREDICTED, *EMOTIONS])
        self.class_pick.pack(side=tk.LEFT)
        self.class_var.trace_add("write", lambda *_: self.draw_card())
        self.card = tk.Canvas(bottom, bg="white", highlightthickness=0, width=380)
        cscroll = self._card_scroll = ttk.Scrollbar(bottom, orient=tk.VERTICAL, command=self.card.yview)
        self.card.configure(yscrollcommand=cscroll.set)
        cscroll.pack(side=tk.RIGHT, fill=tk.Y)
        self.card.pack(side=tk.LEFT, fill=tk.BOTH, expand=True)
        self.card.bind("<Configure>", lambda _e: self.draw_card())
        for seq in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            self.card.bind(seq, self._on_wheel)
        self.frame.add(top, weight=1)
        self.frame.add(bottom, weight=2)
        self.faces: list[Any] = []
        self.models: list[Any] = []
        self.classes: list[str] = list(EMOTIONS)
        self.selected: int | None = None
        self.hint = ""
        self._images: list[ImageTk.PhotoImage] = []
        self._sort: tuple[str, bool] = ("face", False)
        self._quiet = False  # set while the window moves the selection, so it does not echo back
        self.show_maps = False
        # Set by the window: face -> {model: (classes, H, W) maps} (None when the models cannot), and a model's
        # method name for the caption.
        self.explain: Callable[[Any], dict[str, np.ndarray] | None] = lambda _face: None
        self.method_of: Callable[[str], str] = lambda _name: ""
        self._maps: dict[int, dict[str, np.ndarray] | None] = {}

    # ------------------------------------------------------------------ content

    def set_faces(self, faces: list[Any], models: list[Any], classes: list[str] | None, hint: str = "") -> None:
        """Show ``faces`` (one table row each); ``hint`` fills the card area when no face is selected."""
        self.faces, self.models = list(faces), list(models)
        if classes:
            self.classes = list(classes)
            self.class_pick.configure(values=[PREDICTED, *self.classes])
        self._maps.clear()
        self.selected = None
        self.hint = hint
        columns = ["face", "ensemble", *[m.name for m in self.models]]
        self._quiet = True
        self.tree.delete(*self.tree.get_children())
        self.tree.configure(columns=columns)
        f = self.fonts["body"]
        for col, title in zip(columns, ["Face", "Ensemble", *[m.display_name for m in self.models]], strict=True):
            self.tree.heading(col, text=title, command=lambda c=col: self.sort_by(c, toggle=True))
            width = f.measure("Face") + 18 if col == "face" else f.measure("surprise 100%") + 12
            self.tree.column(col, width=width, minwidth=width, stretch=False, anchor=tk.E if col == "face" else tk.W)
        for face in self.faces:
            self.tree.insert("", tk.END, iid=str(face.index), values=self._values(face))
        self._quiet = False
        self.sort_by(self._sort[0] if self._sort[0] in columns else "face", toggle=False)
        self.draw_card()

    def _values(self, face: Any) -> list[str]:
        preds = [face.ensemble, *[face.predictions.get(m.name) for m in self.models]]
        return [str(face.index)] + ["" if p is None else f"{p.label} {percent(p.confidence)}" for p in preds]

    def sort_by(self, column: str, toggle: bool) -> None:
        """Sort rows by ``column`` (face number, or emotion then confidence); a second click reverses."""
        col, reverse = self._sort
        reverse = (not reverse if column == col else False) if toggle else (reverse if column == col else False)
        self._sort = (column, reverse)
        by_index = {str(f.index): f for f in self.faces}

        def key(iid: str) -> tuple:
            face = by_index[iid]
            if column == "face":
                return (face.index,)
            p = face.ensemble if column == "ensemble" else face.predictions.get(column)
            return ("", 0.0, face.index) if p is None else (p.label, -p.confidence, face.index)

        for pos, iid in enumerate(sorted(self.tree.get_children(), key=key, reverse=reverse)):
            self.tree.move(iid, "", pos)

    def order(self) -> list[int]:
        """Face numbers in the table's current (sorted) order."""
        return [int(i) for i in self.tree.get_children()]

    def rows(self) -> list[list[str]]:
        """Per face (in face-number order): ``"CNN happy 91%"`` per model, then ``"ensemble happy 88%"``."""
        out = []
        for face in sorted(self.faces, key=lambda f: f.index):
            values = self.tree.item(str(face.index), "values")
            names = [m.display_name for m in self.models]
            out.append([f"{n} {v}" for n, v in zip(names, values[2:], strict=False) if v] + [f"ensemble {values[1]}"])
        return out

    def select(self, index: int | None) -> None:
        """Highlight ``index``'s row, scroll it into view and draw its card (None: clear)."""
        self.selected = index
        self._quiet = True
        if index is None:
            self.tree.selection_set(())
        else:
            iid = str(index)
            self.tree.selection_set((iid,))
            self.tree.focus(iid)
            self.tree.see(iid)
        self.tree.update_idletasks()
        self._quiet = False
        self.draw_card()

    def row_visible(self, index: int) -> bool:
        """True when the row of face ``index`` is inside the table's visible area."""
        return bool(self.tree.bbox(str(index)))

    def _on_tree_select(self, _e: tk.Event) -> None:
        if self._quiet:
            return
        sel = self.tree.selection()
        index = int(sel[0]) if sel else None
        if index != self.selected:
            self.on_select(index)

    def _on_wheel(self, event: tk.Event) -> None:
        up = getattr(event, "num", None) == 4 or getattr(event, "delta", 0) > 0
        self.card.yview_scroll(-3 if up else 3, "units")

    def set_maps(self, on: bool) -> None:
        """Show (or hide) each model's saliency map over the crop in the card, and the class picker."""
        self.show_maps = bool(on)
        if self.show_maps:
            self.maps_bar.pack(side=tk.TOP, fill=tk.X, before=self._card_scroll)
        else:
            self.maps_bar.pack_forget()
        self.draw_card()

    def maps_for(self, face: Any) -> dict[str, np.ndarray] | None:
        """The face's maps, computed on first use and kept until the faces change."""
        if face.index not in self._maps:
            self._maps[face.index] = self.explain(face)
        return self._maps[face.index]

    def target_class(self, pred: Any) -> int:
        """Index of the class the maps explain: the picked one, or the model's top class."""
        picked = self.class_var.get()
        if picked in self.classes:
            return self.classes.index(picked)
        return int(np.argmax(np.asarray(pred.probs)))

    # ------------------------------------------------------------------ the card

    def draw_card(self) -> None:
        p = self.card
        p.delete("all")
        self._images.clear()
        pw = max(p.winfo_width(), 200)
        face = next((f for f in self.faces if f.index == self.selected), None)
        if face is None:
            p.create_text(pw // 2, 30, text=self.hint, width=pw - 30, fill="#666666", justify=tk.CENTER,
                          font=self.fonts["body"], anchor=tk.N, tags=("hint",))
            p.configure(scrollregion=(0, 0, pw, 100))
            return
        bottom = self._draw_face_card(face, 8, pw)
        p.configure(scrollregion=(0, 0, pw, bottom + 10))
        p.yview_moveto(0)

    def _draw_face_card(self, face: Any, y: int, pw: int) -> int:
        """Thumbnail, summary and one probability chart per model plus the ensemble; returns the new y."""
        p = self.card
        tag = f"face{face.index}"
        bold, small = self.fonts["bold"], self.fonts["small"]
        top = y
        side = max(THUMB, round(THUMB * bold.metrics("linespace") / 17))  # 17 px: the bold font's line at 96 DPI
        crop = np.asarray(face.crop, dtype=np.uint8)
        thumb = Image.fromarray(crop if crop.ndim == 2 else crop[..., 0], "L").resize((side, side), Image.NEAREST)
        img = ImageTk.PhotoImage(thumb, master=p)
        self._images.append(img)
        p.create_image(10, y, image=img, anchor=tk.NW, tags=(tag,))
        e, b = face.ensemble, face.box
        x = side + 20
        wrap = max(60, pw - x - 10)
        t = p.create_text(x, y + 2, text=f"Face {face.index} of {len(self.faces)}", anchor=tk.NW, font=bold,
                          tags=(tag, "title"))
        y2 = p.bbox(t)[3] + 2
        t = p.create_text(x, y2, text=f"{e.label} {percent(e.confidence)}", anchor=tk.NW, font=bold,
                          fill=hex_color(e.label), width=wrap, tags=(tag,))
        y2 = p.bbox(t)[3] + 2
        t = p.create_text(x, y2, text=f"ensemble of {len(self.models)} models\n{b.w}×{b.h} px at ({b.x}, {b.y})",
                          anchor=tk.NW, font=small, fill="#666666", width=wrap, tags=(tag,))
        y = max(y + side, p.bbox(t)[3]) + 8
        charts = [(m.display_name, face.predictions[m.name], m.name) for m in self.models
                  if m.name in face.predictions]
        charts.append(("ensemble", face.ensemble, None))
        maps = self.maps_for(face) if self.show_maps else None
        ncols = max(1, min(len(charts), (pw - 20) // CHART_MIN_W))
        col_w = (pw - 20) // ncols
        row_bottom = y
        for k, (name, pred, model) in enumerate(charts):
            cx = 10 + (k % ncols) * col_w
            if k % ncols == 0:
                y = row_bottom
            heat = maps.get(model) if maps is not None and model is not None else None
            bottom = self._draw_chart(name, pred, cx, y, col_w - 8, tag, heat, face.crop, model)
            row_bottom = max(row_bottom, bottom)
        p.create_rectangle(4, top - 4, pw - 4, row_bottom + 2, outline="#cccccc", tags=(tag,))
        return row_bottom

    def _draw_map(self, heat: np.ndarray, crop: Any, model: str, pred: Any, x: int, y: int, w: int, tag: str) -> int:
        """The crop with the model's map for the target class over it, and what it shows; returns the new y."""
        p = self.card
        small = self.fonts["small"]
        c = self.target_class(pred)
        side = max(48, min(w, round(THUMB * self.fonts["bold"].metrics("linespace") / 17)))
        pic = Image.fromarray(overlay(np.asarray(crop, np.uint8), heat[c], scale=4)).resize((side, side),
                                                                                             Image.BILINEAR)
        img = ImageTk.PhotoImage(pic, master=p)
        self._images.append(img)
        p.create_image(x, y, image=img, anchor=tk.NW, tags=(tag, "map"))
        cls = self.classes[c] if c < len(self.classes) else str(c)
        method = METHOD_TITLES.get(self.method_of(model), self.method_of(model))
        t = p.create_text(x, y + side + 2, text=f"why {cls}: {method}", anchor=tk.NW, font=small, fill="#555555",
                          width=w, tags=(tag, "map_caption"))
        return p.bbox(t)[3] + 4

    def _draw_chart(self, name: str, pred: Any, x: int, y: int, w: int, tag: str, heat: np.ndarray | None = None,
                    crop: Any = None, model: str | None = None) -> int:
        """A 7-bar horizontal chart; the top class in its colour and bold, the rest grey; with ``heat`` (the
        model's maps, ``(classes, H, W)``), the crop with the map above the bars."""
        p = self.card
        bold, small, small_bold = self.fonts["bold"], self.fonts["small"], self.fonts["small_bold"]
        probs = np.asarray(pred.probs, dtype=float)
        title = f"{name} {pred.label} {percent(pred.confidence)}"
        title_font = bold if bold.measure(title) <= w else small_bold
        t = p.create_text(x, y, text=title, anchor=tk.NW, font=title_font, fill=hex_color(pred.label),
                          width=w, tags=(tag, "row"))  # a very long model name wraps instead of overlapping
        y = p.bbox(t)[3] + 2
        if heat is not None and model is not None:
            y = self._draw_map(heat, crop, model, pred, x, y, w, tag)
        name_w = max(small.measure(c) for c in self.classes) + 8
        pct_w = small.measure("100%") + 6
        row_h = max(13, bold.metrics("linespace"))
        bar_w = max(20, w - name_w - pct_w)
        classes = self.classes if len(self.classes) == len(probs) else [str(i) for i in range(len(probs))]
        best = int(np.argmax(probs))
        for i, (cls, pr) in enumerate(zip(classes, probs, strict=False)):
            is_top = i == best
            font = bold if is_top else small
            fill = hex_color(cls) if is_top else "#b8b8b8"
            ink = "black" if is_top else "#555555"
            p.create_text(x + name_w - 4, y + row_h // 2, text=cls, anchor=tk.E, font=font, fill=ink, tags=(tag,))
            p.create_rectangle(x + name_w, y + 2, x + name_w + bar_w, y + row_h - 2, fill="#f0f0f0", outline="",
                               tags=(tag,))
            if pr > 0.002:
                p.create_rectangle(x + name_w, y + 2, x + name_w + max(1, pr * bar_w), y + row_h - 2, fill=fill,
                                   outline="", tags=(tag,))
            p.create_text(x + name_w + bar_w + 3, y + row_h // 2, text=percent(pr), anchor=tk.W, font=font,
                          fill=ink, tags=(tag,))
            y += row_h
        return y + 6
