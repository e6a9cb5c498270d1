"""The app shell: menus, toolbar, status bar, the results of the worker thread, and the face selection.

Design notes (why it is built this way):

* Detection and labelling run on one worker thread (app.gui.worker); the Tk thread only draws. Results
  come back through a queue polled with ``after`` (Tk is not thread-safe), and a result whose request was
  superseded by a newer one (the user opened another photo meanwhile) is dropped, so a slow photo can never
  overwrite a newer one.
* One selected face at a time, set from a click on its box (photo_view), a table row (face_panel) or the keys
  (N/P, arrows, Page Up/Down, Home/End on the photo or the table): :meth:`App.select_face` highlights both,
  scrolls the table and the photo to it and announces it in the status bar.
* Every failure the user can cause (unreadable file, no face, missing models) becomes a message in the
  window, never a traceback, in plain words (app.gui.messages); the technical line is behind "Details…".
* A video (app.gui.video.video_mode) or a camera (app.gui.video.webcam) takes the photo's place: :meth:`App.show_panes`
  swaps the body's two panes (the picture, its side panel), and each mode keeps its own threads and timer.
* Dialogs live only in the ``ask_*`` handlers (app.gui.dialogs); ``open_image``, ``open_video``,
  ``open_folder``, ``save_annotated``, ``export_video``, ``start_webcam``, ``set_eye_check``, ``set_tta``,
  ``set_detector``, ``select_face``, ``wait_idle`` and ``face_rows`` let tests (and scripts) drive the window
  headless.
"""

from __future__ import annotations

import os
import queue
import sys
import time
import tkinter as tk
import traceback
from collections.abc import Callable
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

import numpy as np

from app.detect import DETECTORS
from app.gui.dialogs import Dialogs
from app.gui.face_panel import FacePanel, percent
from app.gui.menus import about_text, build_menu
from app.gui.messages import (
    Message,
    default_output_folder,
    models_problem,
    models_status,
    output_folder_question,
    unreadable_photo,
)
from app.gui.photo_view import PhotoView
from app.gui.video.video_mode import VideoMode
from app.gui.video.webcam import WebcamMode
from app.gui.worker import Job, Loaded, Worker
from app.models import default_zoo_dir
from app.outputs import label_parts
from app.video import is_video

APP_NAME = "EmotionLens"
PANEL_WIDTH = 420  # side panel at start; the user can drag the divider
PANEL_FRACTION = 0.4  # at most this share of a narrow window, so the photo stays the main thing
PANEL_SHARE = 0.33  # on wide windows the panel grows to this share, so the table shows every model's column
RESIZE_DEBOUNCE_MS = 120
POLL_MS = 30
BASE_DPI = 96.0  # Tk's pixel-sized fonts are meant for this; larger screens scale them up
NAV_KEYS = ("n", "p", "Next", "Prior", "Home", "End", "Down", "Up", "Right", "Left")


def scale_fonts(root: tk.Misc) -> float:
    """Scale Tk's named fonts for the screen's DPI (X11 reports sizes in pixels, which shrink on 4K)."""
    factor = max(1.0, root.winfo_fpixels("1i") / BASE_DPI)
    if factor > 1.05:
        for name in tkfont.names(root):
            f = tkfont.nametofont(name, root=root)
            size = int(f.cget("size"))
            if size < 0:  # pixels; point sizes already follow Tk's own scaling
                f.configure(size=round(size * factor))
    return factor


class App(Dialogs):
    """The main window. Create with a Tk root (or let it make one) and call ``root.mainloop()``."""

    def __init__(
        self,
        root: tk.Tk | None = None,
        zoo_dir: str | os.PathLike | None = None,
        eye_check: bool = True,
        labeler_factory: Callable[[], Any] | None = None,
        tta: bool = False,
        detector: str = DETECTORS[0],
    ) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r}: choose {', '.join(DETECTORS)}")
        self.root = root if root is not None else tk.Tk()
        self.zoo_dir = Path(zoo_dir) if zoo_dir is not None else None
        self.zoo_error: str | None = None
        self.detail = ""  # technical detail behind the Details button

        # State of the photo on screen.
        self.path: Path | None = None
        self.rgb: np.ndarray | None = None
        self.result: Any = None
        self.selected: int | None = None

        # Requests to the worker thread.
        self._shown_request = 0  # request whose result is on screen
        self._open_path: Path | None = None  # latest file asked for, and its request
        self._open_request = 0
        self._batch_job: Job | None = None
        self.batch_summary: str = ""
        self._resize_after: str | None = None
        self._poll_after: str | None = None
        self._closed = False

        self.worker = Worker(labeler_factory or self._default_labeler_factory)
        self._build_ui(eye_check, tta, detector)
        self.video, self.webcam = VideoMode(self), WebcamMode(self)
        self._poll_after = self.root.after(POLL_MS, self._poll)
        self.worker.submit(Job("models", 0))

    # ------------------------------------------------------------------ UI construction

    def _build_ui(self, eye_check: bool, tta: bool, detector: str) -> None:
        root = self.root
        root.title(APP_NAME)
        self.dpi_scale = scale_fonts(root)
        # 1280x800, or less on a small screen (leaving room for a taskbar and the title bar).
        w = min(round(1280 * self.dpi_scale), root.winfo_screenwidth() - 40)
        h = min(round(800 * self.dpi_scale), root.winfo_screenheight() - 100)
        root.geometry(f"{max(w, 720)}x{max(h, 480)}")
        root.minsize(720, 480)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.report_callback_exception = self._report_callback_exception  # type: ignore[method-assign]
        style = ttk.Style(root)
        if "clam" in style.theme_names() and style.theme_use() == "default":
            style.theme_use("clam")  # X11's "default" theme looks dated; Windows/macOS keep their native one
        base = tkfont.nametofont("TkDefaultFont", root=root)
        style.configure("Treeview", rowheight=base.metrics("linespace") + 6)

        def derived(**kw: Any) -> tkfont.Font:
            f = base.copy()
            f.configure(**kw)
            return f

        small_size = int(base.cget("size"))
        small_size = small_size + 1 if small_size < 0 else max(8, small_size - 1)
        self.fonts = {
            "body": base,
            "bold": derived(weight="bold"),
            "small": derived(size=small_size),
            "small_bold": derived(size=small_size, weight="bold"),
        }
        self.label_font = self.fonts["bold"]

        self.eye_var = tk.BooleanVar(master=root, value=eye_check)
        self.tta_var = tk.BooleanVar(master=root, value=tta)
        self.detector_var = tk.StringVar(master=root, value=detector)
        self.zoo_var = tk.StringVar(master=root, value=str(self.zoo_dir or default_zoo_dir()))
        self.maps_var = tk.BooleanVar(master=root, value=False)  # saliency maps in the card: no relabelling
        self.maps_var.trace_add("write", lambda *_: self.panel.set_maps(self.maps_var.get()))
        self._options_applied = self.options()
        for var in (self.eye_var, self.tta_var, self.detector_var):
            var.trace_add("write", lambda *_: self._on_option_toggle())
        self.status_var = tk.StringVar(master=root, value="Loading models…")

        self._build_menu()
        for seq, fn in (
            ("<Control-o>", self.ask_open_image),
            ("<Control-O>", self.ask_open_folder),  # Ctrl+Shift+O arrives as a capital O
            ("<Control-Shift-O>", self.ask_open_folder),
            ("<Control-s>", self.ask_save),
            ("<Control-q>", self.quit),
        ):
            root.bind_all(seq, lambda _e, fn=fn: (fn(), "break")[1])

        # Toolbar.
        bar = ttk.Frame(root, padding=(6, 4))
        bar.pack(side=tk.TOP, fill=tk.X)
        self.open_btn = ttk.Button(bar, text="Open…", command=self.ask_open_image)
        self.folder_btn = ttk.Button(bar, text="Open folder…", command=self.ask_open_folder)
        self.save_btn = ttk.Button(bar, text="Save annotated…", command=self.ask_save, state=tk.DISABLED)
        self.eye_chk = ttk.Checkbutton(bar, text="Verify eyes", variable=self.eye_var)
        self.maps_chk = ttk.Checkbutton(bar, text="Saliency maps", variable=self.maps_var)
        self.fit_btn = ttk.Button(bar, text="Fit", command=lambda: self.view.fit(), width=4)
        for wdg in (self.open_btn, self.folder_btn, self.save_btn, self.eye_chk, self.maps_chk):
            wdg.pack(side=tk.LEFT, padx=(0, 6))
        self.fit_btn.pack(side=tk.RIGHT)

        # Status bar (packed before the body so it keeps its height when the window shrinks).
        status = ttk.Frame(root, padding=(6, 2))
        status.pack(side=tk.BOTTOM, fill=tk.X)
        self.status_label = ttk.Label(status, textvariable=self.status_var, anchor=tk.W)
        self.status_label.pack(side=tk.LEFT, fill=tk.X, expand=True)
        self.details_btn = ttk.Button(status, text="Details…", command=self.show_details)
        self.cancel_btn = ttk.Button(status, text="Cancel", command=self.cancel_batch)
        self.progress = ttk.Progressbar(status, length=180, mode="indeterminate")  # shown only while busy
        self.status_label.bind("<Configure>", lambda e: self.status_label.configure(wraplength=max(200, e.width)))

        # Body: photo canvas and the side panel (table + card), with a draggable divider between them.
        body = ttk.PanedWindow(root, orient=tk.HORIZONTAL)
        body.pack(side=tk.TOP, fill=tk.BOTH, expand=True)
        self.photo = PhotoView(body, self.label_font, self.fonts["bold"], self._on_photo_select)
        self.canvas = self.photo.canvas
        self.canvas.bind("<Configure>", self._on_canvas_resize, add=True)
        self.panel = FacePanel(body, self.fonts, self._on_panel_select)
        self.panel.explain = self._explain_face
        self.panel.method_of = lambda name: self.labeler.saliency_method(name) if self.labeler is not None else ""
        body.add(self.canvas, weight=1)
        body.add(self.panel.frame, weight=0)
        self.body = body
        self._sash_moved_by_user = False
        body.bind("<ButtonRelease-1>", lambda _e: setattr(self, "_sash_moved_by_user", True))
        body.bind("<Configure>", self._on_body_resize)
        self._draw_panel()

        # Keys: on the photo and the table (Tab moves between them), N/P anywhere in the window.
        for widget in (self.canvas, self.panel.tree):
            for key in NAV_KEYS:
                widget.bind(f"<KeyPress-{key}>", lambda e, k=key: self._on_nav_key(k))
        for key, step in (("n", "n"), ("p", "p"), ("N", "n"), ("P", "p")):
            root.bind(f"<KeyPress-{key}>", lambda e, k=step: self._on_nav_key(k))

    def _build_menu(self) -> None:
        self.filemenu, self.detector_menu = build_menu(self)

    # ------------------------------------------------------------------ public API (tests drive these)

    def open_image(self, path: str | os.PathLike) -> int:
        """Load and label ``path`` off the UI thread; returns the request id. Supersedes older requests."""
        p = Path(path)
        self.video.close()
        self.webcam.close()
        self.worker.latest_request += 1
        self._open_path, self._open_request = p, self.worker.latest_request
        self.root.title(f"{p.name} — {APP_NAME}")
        self.set_busy(f"Labelling {p.name}…")
        self.worker.submit(self._label_job(path=p))
        return self.worker.latest_request

    def open_video(self, path: str | os.PathLike) -> None:
        """Show a video in the player and analyse it off the UI thread (app.gui.video.video_mode)."""
        self.webcam.close()
        self.root.title(f"{Path(path).name} — {APP_NAME}")
        self.video.open(path)

    def export_video(self, out_dir: str | os.PathLike) -> bool:
        """Write the open video's frames.csv, tracks.csv, timelines/ and annotated MP4 into ``out_dir`` in the
        background (wait_idle waits for it); False, with the reason in the status bar, when not possible."""
        return self.video.export(out_dir)

    def start_webcam(self, spec: int | str = 0, record: str | os.PathLike | None = None) -> bool:
        """Label camera ``spec`` (or a video file played live) in the window (app.gui.video.webcam)."""
        self.video.close()
        return self.webcam.start(spec, record)

    def show_panes(self, picture: tk.Misc, side: tk.Misc) -> None:
        """Put ``picture`` and its ``side`` panel in the body: the photo's, the video's or the camera's."""
        if [str(p) for p in self.body.panes()] == [str(picture), str(side)]:
            return
        pos = self.body.sashpos(0) if len(self.body.panes()) > 1 else None
        for pane in self.body.panes():
            self.body.forget(pane)
        self.body.add(picture, weight=1)
        self.body.add(side, weight=0)
        self.root.update_idletasks()
        if self._sash_moved_by_user and pos:
            self.body.sashpos(0, pos)  # where the user left the divider
        else:
            self._place_sash(self.body.winfo_width())

    def _label_job(self, path: Path | None, rgb: np.ndarray | None = None) -> Job:
        eye, tta, det = self.options()
        return Job("label", self.worker.latest_request, path=path, rgb=rgb, eye_check=eye, tta=tta, detector=det)

    def relabel(self) -> int | None:
        """Label the current photo again (after an option changed), without re-reading the file."""
        if self._open_path is not None and self._shown_request < self._open_request:
            return self.open_image(self._open_path)  # a newer photo is still on its way: redo that one
        if self.rgb is None:
            return None
        self.worker.latest_request += 1
        self.set_busy(f"Labelling {self.path.name if self.path else 'photo'}…")
        self.worker.submit(self._label_job(path=self.path, rgb=self.rgb))
        return self.worker.latest_request

    def set_eye_check(self, on: bool) -> None:
        """Turn eye verification on/off; re-labels the current photo like the checkbox does."""
        self.eye_var.set(bool(on))

    def set_tta(self, on: bool) -> None:
        """Turn flip test-time augmentation on/off; re-labels the current photo like the menu item does."""
        self.tta_var.set(bool(on))

    def set_maps(self, on: bool) -> None:
        """Show each model's saliency map in the selected face's card (no relabelling needed)."""
        self.maps_var.set(bool(on))

    def set_map_class(self, name: str) -> None:
        """Explain ``name`` (an emotion) in every model's map, or each model's own top class with "predicted"."""
        from app.gui.face_panel import PREDICTED

        self.panel.class_var.set(name if name in self.panel.classes else PREDICTED)

    def _explain_face(self, face: Any) -> dict[str, np.ndarray] | None:
        """Every model's maps of one face (the panel caches them); None, with a line in Details, on failure."""
        labeler = self.labeler
        if labeler is None or not hasattr(labeler, "explain"):
            return None
        try:
            maps = labeler.explain(np.asarray(face.crop, np.uint8)[None])
        except Exception as e:  # a broken explainer must cost the maps, never the window
            self.set_detail(f"saliency maps failed: {type(e).__name__}: {' '.join(str(e).split())}")
            return None
        return {name: m[0] for name, m in maps.items()}

    def set_detector(self, name: str) -> None:
        """Pick the face detector (one of app.detect.DETECTORS); re-labels like the Detector menu does."""
        if name not in DETECTORS:
            raise ValueError(f"unknown detector {name!r}: choose {', '.join(DETECTORS)}")
        self.detector_var.set(name)

    def set_zoo(self, zoo_dir: str | os.PathLike) -> None:
        """Label with another zoo (the Models menu): load it off the UI thread and relabel what is open."""
        self.zoo_dir = Path(zoo_dir)
        self.zoo_var.set(str(self.zoo_dir))
        self.reload_models()

    def reload_models(self) -> None:
        """Try loading the model zoo again (after the user copied the models in)."""
        self.set_busy("Loading models…")
        self.worker.submit(Job("models", 0))

    def save_annotated(self, path: str | os.PathLike) -> Path:
        """Write the current photo with numbered boxes and labels baked in (full resolution)."""
        from app.outputs import annotate, save_image

        if self.rgb is None or self.result is None:
            raise RuntimeError("no labelled photo to save")
        out = Path(path)
        save_image(annotate(self.rgb, self.result.shown(), self._display_names()), out)
        self.status_var.set(f"Saved {out}")
        return out

    def open_folder(self, folder: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                    confirmed: bool = False) -> Path | None:
        """Label every image directly in ``folder`` into ``out_dir`` in the background, like the batch CLI.

        ``out_dir`` gets labels.csv, summary.json and annotated/ copies; originals are never written. Without
        ``out_dir`` a new folder ``<folder> labels`` beside it is used; an output folder equal to the input
        gets a ``labelled`` sub-folder so the photo folder stays clean; a folder that already holds files is
        refused (None, with the reason in the status bar) unless ``confirmed``. Returns the folder used.
        """
        src = Path(folder)
        out = Path(out_dir) if out_dir is not None else default_output_folder(src)
        if out.resolve() == src.resolve():
            out = src / "labelled"  # results inside the photo folder, never beside the photos themselves
        question = output_folder_question(out)
        if question is not None and not (confirmed and out.is_dir()):
            self.status_var.set(f"Not started: {out.name} already holds files; choose an empty or new folder.")
            return None
        self.cancel_batch()
        eye, tta, det = self.options()
        job = Job("batch", 0, path=src, out_dir=out, eye_check=eye, tta=tta, detector=det)
        self._batch_job = job
        self.batch_summary = ""
        self.progress.stop()
        self.progress.configure(mode="determinate", value=0, maximum=1)
        self.cancel_btn.pack(side=tk.RIGHT, padx=(6, 0))
        self.progress.pack(side=tk.RIGHT)
        self.status_var.set(f"Labelling the photos in {src.name}…")
        self._set_open_state(tk.DISABLED)
        self.worker.submit(job)
        return out

    def cancel_batch(self) -> None:
        """Ask the running batch to stop after the current file (files already written are kept)."""
        if self._batch_job is not None:
            self._batch_job.cancel.set()
            self.status_var.set("Batch: cancelling…")

    def select_face(self, index: int | None, announce: bool = True, reveal: bool = True) -> None:
        """Select face ``index`` (None: none): highlight box and row, show its card, bring both into view."""
        faces = self.result.faces if self.result is not None else []
        if index is not None and not any(f.index == index for f in faces):
            index = None
        self.selected = index
        self.photo.selected = index
        self.panel.select(index)
        if index is not None and reveal:
            self.photo.show_face(index)
        else:
            self.photo.redraw()
        if announce and index is not None:
            face = next(f for f in faces if f.index == index)
            models = "; ".join(f"{t}" for t, _ in self._label_parts(face))
            e = face.ensemble
            self.status_var.set(f"Face {index} of {len(faces)}: {e.label} {percent(e.confidence)}"
                                f" (ensemble) · {models}")

    def step_face(self, key: str) -> int | None:
        """Move the selection as key ``key`` does (n/p, arrows, Next/Prior, Home/End), in the table's order."""
        order = self.panel.order()
        if not order:
            return None
        pos = order.index(self.selected) if self.selected in order else None
        page = max(1, int(self.panel.tree.cget("height")) - 1)
        if key in ("Home",):
            new = 0
        elif key == "End":
            new = len(order) - 1
        elif pos is None:
            new = 0 if key in ("n", "Down", "Right", "Next") else len(order) - 1
        elif key in ("n", "Down", "Right"):
            new = min(pos + 1, len(order) - 1)
        elif key in ("p", "Up", "Left"):
            new = max(pos - 1, 0)
        elif key == "Next":
            new = min(pos + page, len(order) - 1)
        else:  # Prior
            new = max(pos - page, 0)
        self.select_face(order[new])
        return order[new]

    def _on_nav_key(self, key: str) -> str:
        focus = self.root.focus_get()
        if key in ("n", "p") and isinstance(focus, (tk.Entry, ttk.Entry)):
            return ""  # typing in a field
        for mode in (self.video, self.webcam):
            if mode.active:
                return mode.on_nav_key(key)
        self.step_face(key)
        return "break"

    @property
    def busy(self) -> bool:
        """True while any job (models, labelling, batch, a video's analysis or export) is queued or running."""
        return self.worker.pending > 0 or self.video.busy

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Pump the Tk loop until every job finished and the view is drawn; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.root.update()
            if self.worker.pending == 0 and self._resize_after is None and not self.video.busy:
                self.root.update_idletasks()
                return True
            time.sleep(0.01)
        return False

    def face_rows(self) -> list[list[str]]:
        """The table, one list per face in face-number order: each model's label, then the ensemble's."""
        return self.panel.rows()

    def panel_text(self) -> str:
        """All text in the side panel's card, in drawing order (for tests and debugging)."""
        c = self.panel.card
        return "\n".join(c.itemcget(i, "text") for i in c.find_all() if c.type(i) == "text")

    def canvas_labels(self) -> list[str]:
        """The model label texts drawn on the photo (full lines that fit, plus a hovered or selected face's)."""
        return [self.canvas.itemcget(i, "text") for i in self.canvas.find_withtag("boxlabel")]

    def about(self) -> str:
        """The Help > About text (app.gui.menus.about_text)."""
        return about_text(self.labeler, self.zoo_dir, self.zoo_error)

    def status(self) -> str:
        """The status bar's text."""
        return self.status_var.get()

    def message_text(self) -> str:
        """The message drawn over the photo ("" when none)."""
        items = [i for i in self.canvas.find_withtag("message") if self.canvas.type(i) == "text"]
        return self.canvas.itemcget(items[0], "text") if items else ""

    def quit(self) -> None:
        """Stop the worker (it is a daemon, so a running job cannot hold the exit) and close the window."""
        if self._closed:
            return
        self._closed = True
        if self._batch_job is not None:
            self._batch_job.cancel.set()
        self.worker.stop()
        self.video.stop()
        self.webcam.close()
        for after_id in (self._poll_after, self._resize_after):  # else Tk reports them
            if after_id is not None:
                self.root.after_cancel(after_id)
        self.progress.stop()
        self.root.destroy()

    def _default_labeler_factory(self) -> Any:
        from app.models import Labeler

        return Labeler(zoo_dir=self.zoo_dir)

    @property
    def view(self) -> PhotoView:
        """The picture on screen: the photo's, the video player's or the camera's (Fit and zoom act on it)."""
        if self.video.active and self.video.player is not None:
            return self.video.player.view
        if self.webcam.active and self.webcam.view is not None:
            return self.webcam.view
        return self.photo

    @property
    def labeler(self) -> Any:
        """The loaded models (app.models.Labeler), or None while they are not loaded."""
        return self.worker.labeler

    # ------------------------------------------------------------------ Tk thread: results

    def _poll(self) -> None:
        if self._closed:
            return
        try:
            while True:
                kind, request, payload = self.worker.results.get_nowait()
                if kind == "progress":
                    self._on_progress(*payload)
                    continue
                self.worker.pending -= 1
                if kind == "models":
                    self._on_models(payload)
                elif kind == "label":
                    if payload is not None and request == self.worker.latest_request:
                        self._shown_request = request
                        self._on_label(payload)
                elif kind == "batch":
                    self._on_batch_done(*payload)
                elif kind == "crash":
                    self._show_problem(Message("Something went wrong inside EmotionLens. Your photo is not "
                                               "changed; try again, or see Details.", payload))
                    self.status_var.set("Something went wrong: see Details.")
                if self.worker.pending == 0:
                    self.set_idle()
        except queue.Empty:
            pass
        self._poll_after = self.root.after(POLL_MS, self._poll)

    def _show_problem(self, msg: Message | None) -> None:
        """Draw ``msg`` over the photo (None clears it) and offer its detail behind the Details button."""
        self.photo.message = msg.text if msg else ""
        self.set_detail(msg.detail if msg else "")
        self.photo.redraw()

    def set_detail(self, detail: str) -> None:
        self.detail = detail
        if detail:
            self.details_btn.pack(side=tk.RIGHT, padx=(6, 0))
        else:
            self.details_btn.pack_forget()

    def models_message(self, error: str) -> Message:

        return models_problem(error, self.zoo_dir if self.zoo_dir is not None else default_zoo_dir())

    def _on_models(self, error: str | None) -> None:
        had_error = self.zoo_error is not None
        self.zoo_error = error
        if error:
            self._show_problem(self.models_message(error))
            self.status_var.set(models_status(error))
            return
        names = ", ".join(m.display_name for m in self.labeler.models)
        if self.rgb is not None:
            self.status_var.set(f"Models loaded ({names}).")
            self.relabel()
            return
        if had_error or self.path is None:
            self._show_problem(None)  # the models message; a bad file's message stays until the next open
        self.status_var.set(f"Ready: {len(self.labeler.models)} models ({names}), trained on "
                            f"{self.labeler.label_source}. Open a photo with Ctrl+O.")

    def _on_label(self, loaded: Loaded) -> None:
        name = loaded.path.name if loaded.path else "photo"
        if loaded.rgb is None:  # unreadable file: clear the view so nothing stale can be saved
            self.path, self.rgb, self.result = loaded.path, None, None
            self.photo.set_photo(None, (0, 0))
            self._draw_panel()
            self._show_problem(unreadable_photo(name, loaded.reason or "", loaded.error or ""))
            self.status_var.set(f"Cannot open {name}: {loaded.reason or loaded.error}")
            self.update_save_state()
            return
        new_photo = loaded.base is not None
        self.path, self.rgb = loaded.path, loaded.rgb
        if new_photo:
            h, w = loaded.rgb.shape[:2]
            self.photo.set_photo(loaded.base, (w, h), full=loaded.rgb)
        self.result = loaded.result
        self.update_save_state()
        if loaded.zoo_error:
            self.zoo_error = loaded.error
            self.result = None
            self._draw_panel()
            msg = self.models_message(loaded.error or "")
            self._show_problem(Message("No expressions for this photo: " + msg.text[0].lower() + msg.text[1:],
                                       msg.detail))
            self.status_var.set(models_status(loaded.error or ""))
            return
        if self.zoo_error:
            self.zoo_error = None  # a retry succeeded
        r = self.result
        h, w = self.rgb.shape[:2]
        timing = (
            f"detection {1000 * r.detect_seconds:.0f} ms + labelling {1000 * r.label_seconds:.0f} ms"
            f" = {1000 * (r.detect_seconds + r.label_seconds):.0f} ms"
        )
        n = len(r.faces)
        eye, tta, det = self.options()
        opts = ("eye check on" if eye else "eye check off") + (" · flip TTA" if tta else "") + f" · detector {det}"
        if n == 0:
            hint = (
                "Try turning off 'Verify eyes'." if eye
                else "Only upright, roughly frontal faces are found; small faces in large photos may be missed."
            )
            self._show_problem(Message(f"No face found in {name}. {hint}"))
            self.status_var.set(f"{name} ({w}×{h}): no face found · {timing} · {opts}")
        else:
            self._show_problem(None)
            self.status_var.set(f"{name} ({w}×{h}): {n} face{'s' if n != 1 else ''} · {timing} · {opts}")
        self.photo.set_faces(r.shown(), self._label_parts)
        self._draw_panel()
        self.selected = None
        if n == 1:
            self.select_face(r.faces[0].index, announce=False, reveal=False)
        else:
            self.photo.redraw()

    def _on_progress(self, i: int, n: int, name: str) -> None:
        if self._batch_job is None:
            return
        self.progress.configure(maximum=max(n, 1), value=i)
        self.status_var.set(f"Batch: {i}/{n} {name}")

    def _on_batch_done(self, summary: str, detail: str) -> None:
        self._batch_job = None
        self.batch_summary = summary
        self.cancel_btn.pack_forget()
        self.progress.configure(mode="indeterminate", value=0)
        if self.worker.pending == 0:
            self.progress.pack_forget()
        self._set_open_state(tk.NORMAL)
        self.set_detail(detail)
        self.status_var.set(summary)

    # ------------------------------------------------------------------ layout and panel

    def _on_canvas_resize(self, _event: tk.Event) -> None:
        if self._resize_after is not None:
            self.root.after_cancel(self._resize_after)
        self._resize_after = self.root.after(RESIZE_DEBOUNCE_MS, self._on_resize_done)

    def _on_resize_done(self) -> None:
        self._resize_after = None
        if not self.photo.fitted:
            self.photo.clamp()
        self.photo.redraw()

    def _on_body_resize(self, event: tk.Event) -> None:
        """Keep the panel at most PANEL_FRACTION of a narrow window, so the photo stays the main thing."""
        if not self._sash_moved_by_user:
            self._place_sash(event.width)

    def _place_sash(self, width: int) -> None:
        if width < 50:
            return
        wanted = max(round(PANEL_WIDTH * self.dpi_scale), int(PANEL_SHARE * width))  # the table's columns
        side = min(wanted, int(PANEL_FRACTION * width))
        self.body.sashpos(0, max(100, width - side))

    def _on_photo_select(self, index: int | None) -> None:
        self.select_face(index, reveal=False)  # the user clicked it: it is on screen already

    def _on_panel_select(self, index: int | None) -> None:
        self.select_face(index)

    def _draw_panel(self) -> None:
        faces = self.result.faces if self.result is not None else []
        if self.result is None:
            hint = "" if self.zoo_error else "Faces appear here with each model's probabilities."
        elif not faces:
            hint = "No face found."
        else:
            hint = ("Click a face on the photo or a row above, or press N / P, to see its charts. "
                    "Ctrl+wheel zooms, dragging moves the photo.")
        self.panel.set_faces(faces, self.models(), getattr(self.labeler, "classes", None), hint)

    def models(self) -> list[Any]:
        return list(self.labeler.models) if self.labeler is not None else []

    def _display_names(self) -> dict[str, str]:
        return {m.name: m.display_name for m in self.models()}

    def _label_parts(self, face: Any) -> list[tuple[str, str]]:
        """(text, emotion) per model, in manifest order: ``("CNN happy 91%", "happy")``."""
        return label_parts(face, self._display_names())

    # ------------------------------------------------------------------ small state helpers

    def set_busy(self, text: str) -> None:
        self.status_var.set(text)
        if self._batch_job is None:
            self.progress.configure(mode="indeterminate")
            self.progress.pack(side=tk.RIGHT)
            self.progress.start(12)
        self.root.configure(cursor="watch")

    def set_idle(self) -> None:
        self.progress.stop()
        self.progress.pack_forget()
        self.root.configure(cursor="")

    def _set_open_state(self, state: str) -> None:
        for w in (self.open_btn, self.folder_btn):
            w.configure(state=state)

    def update_save_state(self) -> None:
        self.save_btn.configure(state=tk.NORMAL if self.result is not None else tk.DISABLED)

    def options(self) -> tuple[bool, bool, str]:
        """The labelling options the menus and toolbar set: (eye check, flip TTA, detector)."""
        return self.eye_var.get(), self.tta_var.get(), self.detector_var.get()

    def _on_option_toggle(self) -> None:
        if self.options() != self._options_applied:  # a Tk variable fires on every set, changed or not
            self._options_applied = self.options()
            self.video.restart_analysis() if self.video.active else self.relabel()

    def _report_callback_exception(self, exc: type[BaseException], val: BaseException, tb: Any) -> None:
        """A bug in a Tk callback: print it for the developer, show one line to the user, keep running."""
        traceback.print_exception(exc, val, tb, file=sys.stderr)
        self.set_detail(f"{exc.__name__}: {' '.join(str(val).split())}")
        self.status_var.set("Something went wrong: see Details.")


def run(image: str | os.PathLike | None = None, zoo_dir: str | os.PathLike | None = None,
        eye_check: bool = True, tta: bool = False, detector: str = DETECTORS[0], webcam: int | str | None = None,
        record: str | os.PathLike | None = None) -> int:
    """Open the window (optionally with a photo or a video, or straight on camera ``webcam`` with ``record`` a
    CSV to record to) and run the Tk main loop; returns the exit code."""
    try:
        root = tk.Tk(className=APP_NAME)
    except tk.TclError as e:
        print(f"emotionlens: cannot open a window ({e}); is a display available? Try --self-test.",
              file=sys.stderr)
        return 1
    app = App(root, zoo_dir=zoo_dir, eye_check=eye_check, tta=tta, detector=detector)
    if webcam is not None:
        app.start_webcam(webcam, record)
    elif image is not None:
        app.open_video(image) if is_video(image) else app.open_image(image)
    root.mainloop()
    return 0


run_gui = run  # the name app.__main__ looks for to open the window in webcam mode (--webcam)
