"""The EmotionLens desktop window: open a photo, see every face boxed and labelled by each model.

Design notes (why it is built this way):

* Detection and labelling run on one worker thread; the Tk thread only draws. Results come back through a
  queue polled with ``after`` (Tk is not thread-safe), and a result whose request was superseded by a newer
  one (the user opened another photo meanwhile) is dropped, so a slow photo can never overwrite a newer one.
* Boxes and labels are drawn as canvas items over the scaled photo, not baked into the bitmap, so they stay
  crisp at any window size; only the photo itself is resampled, debounced on resize.
* Every failure the user can cause (unreadable file, no face, missing models) becomes a message in the
  window, never a traceback: ``ImageError`` and ``ZooError`` carry one-line messages made for this.
* Dialogs live only in the button/menu handlers; ``open_image``, ``open_folder``, ``save_annotated``,
  ``set_eye_check``, ``set_tta``, ``wait_idle`` and ``face_rows`` let tests (and scripts) drive the window headless.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import tkinter as tk
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tkinter import filedialog, ttk
from tkinter import font as tkfont
from typing import Any

import numpy as np
from PIL import Image, ImageTk

from app.emotions import COLORS, EMOTIONS
from app.imageio import IMAGE_SUFFIXES, ImageError, load_image

APP_NAME = "EmotionLens"
PANEL_WIDTH = 420  # side panel at start: two charts side by side; the user can drag the divider
CHART_MIN_W = 185  # the panel lays out as many chart columns as fit this width
DISPLAY_MAX_SIDE = 2560  # photos larger than this are pre-shrunk once so live resizes stay fast
RESIZE_DEBOUNCE_MS = 120
POLL_MS = 30
CANVAS_BG = "#2b2b2b"
LABEL_BG = "#1c1c1c"


def hex_color(label: str) -> str:
    """Tk colour string for an emotion (grey for anything unknown, e.g. a future extra class)."""
    r, g, b = COLORS.get(label, (160, 160, 160))
    return f"#{r:02x}{g:02x}{b:02x}"


def percent(p: float) -> str:
    """Confidence as a whole percent, the precision a person reads at a glance."""
    return f"{100.0 * float(p):.0f}%"


@dataclass
class _Job:
    """One unit of work for the worker thread; ``request`` orders label jobs so stale ones can be dropped."""

    kind: str  # "models" | "label" | "batch"
    request: int
    path: Path | None = None
    rgb: np.ndarray | None = None
    eye_check: bool = True
    tta: bool = False
    out_dir: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Loaded:
    """What a label job hands back to the Tk thread."""

    path: Path | None
    rgb: np.ndarray | None = None
    base: Image.Image | None = None  # display copy, at most DISPLAY_MAX_SIDE per side
    result: Any = None  # PhotoResult
    error: str | None = None
    reason: str | None = None
    zoo_error: bool = False


class App:
    """The main window. Create with a Tk root (or let it make one) and call ``root.mainloop()``."""

    def __init__(
        self,
        root: tk.Tk | None = None,
        zoo_dir: str | os.PathLike | None = None,
        eye_check: bool = True,
        labeler_factory: Callable[[], Any] | None = None,
        tta: bool = False,
    ) -> None:
        self.root = root if root is not None else tk.Tk()
        self.zoo_dir = Path(zoo_dir) if zoo_dir is not None else None
        self._labeler_factory = labeler_factory or self._default_labeler_factory
        self.labeler: Any = None
        self.zoo_error: str | None = None

        # State of the photo on screen.
        self.path: Path | None = None
        self.rgb: np.ndarray | None = None
        self.result: Any = None
        self._base: Image.Image | None = None
        self._tk_photo: ImageTk.PhotoImage | None = None
        self._panel_images: list[ImageTk.PhotoImage] = []
        self.message: str = ""

        # Worker plumbing.
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._results: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self._latest_request = 0
        self._shown_request = 0  # request whose result is on screen
        self._open_path: Path | None = None  # latest file asked for, and its request
        self._open_request = 0
        self._pending = 0
        self._batch_job: _Job | None = None
        self.batch_summary: str = ""
        self._resize_after: str | None = None
        self._poll_after: str | None = None
        self._closed = False

        self._build_ui(eye_check, tta)
        self._worker = threading.Thread(target=self._worker_loop, name="emotionlens-worker", daemon=True)
        self._worker.start()
        self._poll_after = self.root.after(POLL_MS, self._poll)
        self._submit(_Job("models", 0))

    # ------------------------------------------------------------------ UI construction

    def _build_ui(self, eye_check: bool, tta: bool) -> None:
        root = self.root
        root.title(APP_NAME)
        # 1280x800, or less on a small screen (leaving room for a taskbar and the title bar).
        w = min(1280, root.winfo_screenwidth() - 40)
        h = min(800, root.winfo_screenheight() - 100)
        root.geometry(f"{max(w, 720)}x{max(h, 480)}")
        root.minsize(720, 480)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.report_callback_exception = self._report_callback_exception  # type: ignore[method-assign]
        style = ttk.Style(root)
        if "clam" in style.theme_names() and style.theme_use() == "default":
            style.theme_use("clam")  # X11's "default" theme looks dated; Windows/macOS keep their native one

        self.bold = tkfont.nametofont("TkDefaultFont").copy()
        self.bold.configure(weight="bold")
        self.small = tkfont.nametofont("TkDefaultFont").copy()
        self.small.configure(size=max(8, int(self.small.cget("size")) - 1))
        self.small_bold = self.small.copy()
        self.small_bold.configure(weight="bold")
        self.label_font = tkfont.nametofont("TkDefaultFont").copy()
        self.label_font.configure(weight="bold")

        self.eye_var = tk.BooleanVar(master=root, value=eye_check)
        self.tta_var = tk.BooleanVar(master=root, value=tta)
        self._options_applied = self._options()
        for var in (self.eye_var, self.tta_var):
            var.trace_add("write", lambda *_: self._on_option_toggle())
        self.status_var = tk.StringVar(master=root, value="Loading models…")

        # Menu.
        menubar = tk.Menu(root)
        filemenu = tk.Menu(menubar, tearoff=False)
        filemenu.add_command(label="Open image…", accelerator="Ctrl+O", command=self.ask_open_image)
        filemenu.add_command(label="Open folder…", accelerator="Ctrl+Shift+O", command=self.ask_open_folder)
        filemenu.add_command(label="Save annotated image…", accelerator="Ctrl+S", command=self.ask_save)
        filemenu.add_separator()
        filemenu.add_command(label="Reload models", command=self.reload_models)
        filemenu.add_separator()
        filemenu.add_command(label="Quit", accelerator="Ctrl+Q", command=self.quit)
        menubar.add_cascade(label="File", menu=filemenu)
        optmenu = tk.Menu(menubar, tearoff=False)
        optmenu.add_checkbutton(label="Verify eyes (fewer false faces)", variable=self.eye_var)
        optmenu.add_checkbutton(label="Flip test-time augmentation (more accurate, labelling 2× slower)",
                                variable=self.tta_var)
        menubar.add_cascade(label="Options", menu=optmenu)
        root.configure(menu=menubar)
        self.filemenu = filemenu

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
        self.open_btn = ttk.Button(bar, text="Open image…", command=self.ask_open_image)
        self.folder_btn = ttk.Button(bar, text="Open folder…", command=self.ask_open_folder)
        self.save_btn = ttk.Button(bar, text="Save annotated…", command=self.ask_save, state=tk.DISABLED)
        self.eye_chk = ttk.Checkbutton(bar, text="Verify eyes", variable=self.eye_var)
        for w in (self.open_btn, self.folder_btn, self.save_btn, self.eye_chk):
            w.pack(side=tk.LEFT, padx=(0, 6))

        # Status bar (packed before the body so it keeps its height when the window shrinks).
        status = ttk.Frame(root, padding=(6, 2))
        status.pack(side=tk.BOTTOM, fill=tk.X)
        self.status_label = ttk.Label(status, textvariable=self.status_var, anchor=tk.W)
        self.status_label.pack(side=tk.LEFT, fill=tk.X, expand=True)
        self.cancel_btn = ttk.Button(status, text="Cancel", command=self.cancel_batch)
        self.progress = ttk.Progressbar(status, length=180, mode="indeterminate")  # shown only while busy

        # Body: photo canvas and the scrollable face panel, with a draggable divider between them.
        body = ttk.PanedWindow(root, orient=tk.HORIZONTAL)
        body.pack(side=tk.TOP, fill=tk.BOTH, expand=True)
        self.canvas = tk.Canvas(body, bg=CANVAS_BG, highlightthickness=0, width=400, height=300)
        self.canvas.bind("<Configure>", self._on_canvas_resize)
        side = ttk.Frame(body)
        self.panel = tk.Canvas(side, width=PANEL_WIDTH - 16, bg="white", highlightthickness=0)
        scroll = ttk.Scrollbar(side, orient=tk.VERTICAL, command=self.panel.yview)
        self.panel.configure(yscrollcommand=scroll.set)
        scroll.pack(side=tk.RIGHT, fill=tk.Y)
        self.panel.pack(side=tk.LEFT, fill=tk.BOTH, expand=True)
        self.panel.bind("<Configure>", self._on_panel_resize)
        for seq in ("<MouseWheel>", "<Button-4>", "<Button-5>"):
            self.panel.bind(seq, self._on_wheel)
        body.add(self.canvas, weight=1)
        body.add(side, weight=0)
        self.body = body
        self._sash_moved_by_user = False
        body.bind("<ButtonRelease-1>", lambda _e: setattr(self, "_sash_moved_by_user", True))
        body.bind("<Configure>", self._on_body_resize)
        self._panel_width = 0
        self._panel_after: str | None = None

    # ------------------------------------------------------------------ public API (tests drive these)

    def open_image(self, path: str | os.PathLike) -> int:
        """Load and label ``path`` off the UI thread; returns the request id. Supersedes older requests."""
        p = Path(path)
        self._latest_request += 1
        self._open_path, self._open_request = p, self._latest_request
        self.root.title(f"{p.name} — {APP_NAME}")
        self._set_busy(f"Labelling {p.name}…")
        self._submit(_Job("label", self._latest_request, path=p, eye_check=self.eye_var.get(),
                          tta=self.tta_var.get()))
        return self._latest_request

    def relabel(self) -> int | None:
        """Label the current photo again (after an option changed), without re-reading the file."""
        if self._open_path is not None and self._shown_request < self._open_request:
            return self.open_image(self._open_path)  # a newer photo is still on its way: redo that one
        if self.rgb is None:
            return None
        self._latest_request += 1
        self._set_busy(f"Labelling {self.path.name if self.path else 'photo'}…")
        job = _Job("label", self._latest_request, path=self.path, rgb=self.rgb, eye_check=self.eye_var.get(),
                   tta=self.tta_var.get())
        self._submit(job)
        return self._latest_request

    def set_eye_check(self, on: bool) -> None:
        """Turn eye verification on/off; re-labels the current photo like the checkbox does."""
        self.eye_var.set(bool(on))

    def set_tta(self, on: bool) -> None:
        """Turn flip test-time augmentation on/off; re-labels the current photo like the menu item does."""
        self.tta_var.set(bool(on))

    def reload_models(self) -> None:
        """Try loading the model zoo again (after the user copied the models in)."""
        self._set_busy("Loading models…")
        self._submit(_Job("models", 0))

    def save_annotated(self, path: str | os.PathLike) -> Path:
        """Write the current photo with numbered boxes and labels baked in (full resolution)."""
        from app.annotate import annotate, save_image

        if self.rgb is None or self.result is None:
            raise RuntimeError("no labelled photo to save")
        names = self._display_names()
        out = Path(path)
        save_image(annotate(self.rgb, self.result, names), out)
        self.status_var.set(f"Saved {out}")
        return out

    def open_folder(self, folder: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
        """Label every image directly in ``folder`` into ``out_dir`` in the background, like the batch CLI.

        ``out_dir`` gets labels.csv, summary.json and annotated/ copies; originals are never written. An output
        folder equal to the input gets a ``labelled`` sub-folder so the photo folder stays clean. Returns the
        output folder actually used.
        """
        src = Path(folder)
        out = Path(out_dir) if out_dir is not None else src.with_name(src.name + "_labelled")
        if out.resolve() == src.resolve():
            out = src / "labelled"
        self.cancel_batch()
        job = _Job("batch", 0, path=src, out_dir=out, eye_check=self.eye_var.get(), tta=self.tta_var.get())
        self._batch_job = job
        self.batch_summary = ""
        self.progress.stop()
        self.progress.configure(mode="determinate", value=0, maximum=1)
        self.cancel_btn.pack(side=tk.RIGHT, padx=(6, 0))
        self.progress.pack(side=tk.RIGHT)
        self.status_var.set(f"Batch: listing {src}…")
        self._set_open_state(tk.DISABLED)
        self._submit(job)
        return out

    def cancel_batch(self) -> None:
        """Ask the running batch to stop after the current file (files already written are kept)."""
        if self._batch_job is not None:
            self._batch_job.cancel.set()
            self.status_var.set("Batch: cancelling…")

    @property
    def busy(self) -> bool:
        """True while any job (models, labelling, batch) is queued or running."""
        return self._pending > 0

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Pump the Tk loop until every job finished and the view is drawn; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.root.update()
            if self._pending == 0 and self._resize_after is None and self._panel_after is None:
                self.root.update_idletasks()
                return True
            time.sleep(0.01)
        return False

    def face_rows(self) -> list[list[str]]:
        """Text of the side panel, one list per face: each model's top class, then the ensemble's.

        Read back from the canvas items themselves, so a test sees what the user sees.
        """
        rows: dict[int, list[str]] = {}
        for item in self.panel.find_withtag("row"):
            face = next(int(t[4:]) for t in self.panel.gettags(item) if t.startswith("face") and t != "face")
            rows.setdefault(face, []).append(self.panel.itemcget(item, "text"))
        return [rows[k] for k in sorted(rows)]

    def panel_text(self) -> str:
        """All text in the side panel, in drawing order (for tests and debugging)."""
        return "\n".join(
            self.panel.itemcget(i, "text") for i in self.panel.find_all() if self.panel.type(i) == "text"
        )

    def canvas_labels(self) -> list[str]:
        """The label texts drawn beside the boxes on the photo."""
        return [self.canvas.itemcget(i, "text") for i in self.canvas.find_withtag("boxlabel")]

    def status(self) -> str:
        """The status bar's text."""
        return self.status_var.get()

    def quit(self) -> None:
        """Stop the worker (it is a daemon, so a running job cannot hold the exit) and close the window."""
        if self._closed:
            return
        self._closed = True
        if self._batch_job is not None:
            self._batch_job.cancel.set()
        self._jobs.put(None)
        for after_id in (self._poll_after, self._resize_after, self._panel_after):  # else Tk reports them
            if after_id is not None:
                self.root.after_cancel(after_id)
        self.progress.stop()
        self.root.destroy()

    # ------------------------------------------------------------------ dialogs (handlers only)

    def ask_open_image(self) -> None:
        """File > Open image: pick a photo with a dialog."""
        if str(self.open_btn.cget("state")) == tk.DISABLED:
            return
        kinds = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        name = filedialog.askopenfilename(
            parent=self.root,
            title="Open image",
            filetypes=[("Images", kinds + " " + kinds.upper()), ("All files", "*")],
            initialdir=str(self.path.parent) if self.path else None,
        )
        if name:
            self.open_image(name)

    def ask_open_folder(self) -> None:
        """File > Open folder: pick a folder of photos, then where to write the labelled copies."""
        if str(self.folder_btn.cget("state")) == tk.DISABLED:
            return
        src = filedialog.askdirectory(parent=self.root, title="Label every image in folder", mustexist=True)
        if not src:
            return
        out = filedialog.askdirectory(
            parent=self.root,
            title="Folder for labels.csv, summary.json and annotated/ copies",
            initialdir=str(Path(src).parent),
            mustexist=False,
        )
        if out:
            self.open_folder(src, out)

    def ask_save(self) -> None:
        """File > Save annotated image: pick a file name; the original photo is never overwritten."""
        if self.result is None or self.path is None:
            self.status_var.set("Nothing to save yet: open a photo first (Ctrl+O).")
            return
        suffix = self.path.suffix.lower() if self.path.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        name = filedialog.asksaveasfilename(
            parent=self.root,
            title="Save annotated image",
            initialdir=str(self.path.parent),
            initialfile=f"{self.path.stem}_labelled{suffix}",
            defaultextension=suffix,
            filetypes=[("JPEG", "*.jpg *.jpeg"), ("PNG", "*.png")],
        )
        if not name:
            return
        if Path(name).resolve() == self.path.resolve():
            self.status_var.set("Not saved: choose another name, the original photo is never overwritten.")
            return
        try:
            self.save_annotated(name)
        except (OSError, ValueError) as e:
            self.status_var.set(f"Could not save {name}: {' '.join(str(e).split())}")

    # ------------------------------------------------------------------ worker thread

    def _default_labeler_factory(self) -> Any:
        from app.labeler import Labeler

        return Labeler(zoo_dir=self.zoo_dir)

    def _submit(self, job: _Job) -> None:
        self._pending += 1
        self._jobs.put(job)

    def _ensure_labeler(self) -> Any:
        """The labeler, loading it now if start-up failed (the user may have added the models since)."""
        if self.labeler is None:
            self.labeler = self._labeler_factory()
        return self.labeler

    def _worker_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if job.kind == "models":
                    self._results.put(("models", 0, self._run_models()))
                elif job.kind == "label":
                    if job.request != self._latest_request:  # superseded before it started
                        self._results.put(("label", job.request, None))
                    else:
                        self._results.put(("label", job.request, self._run_label(job)))
                elif job.kind == "batch":
                    self._results.put(("batch", 0, self._run_batch(job)))
            except Exception as e:  # a bug, not a user error: keep the window alive and say what happened
                traceback.print_exc()
                self._results.put(("crash", job.request, f"{type(e).__name__}: {' '.join(str(e).split())}"))

    def _run_models(self) -> str | None:
        from app.zoo import ZooError

        try:
            self.labeler = self._labeler_factory()  # one assignment: the Tk thread never sees it half-made
            return None
        except ZooError as e:
            self.labeler = None  # what the message says: the next open retries rather than using old models
            return " ".join(str(e).split())

    def _run_label(self, job: _Job) -> _Loaded:
        from app.zoo import ZooError

        out = _Loaded(path=job.path)
        try:
            rgb = job.rgb if job.rgb is not None else load_image(job.path)  # type: ignore[arg-type]
        except ImageError as e:
            out.error = " ".join(str(e).split())  # "<path>: <reason>", for the message in the window
            out.reason = " ".join(str(e.reason).split())  # the status bar names the file already
            return out
        out.rgb = rgb
        if job.rgb is None:
            base = Image.fromarray(rgb)
            if max(base.size) > DISPLAY_MAX_SIDE:
                base.thumbnail((DISPLAY_MAX_SIDE,) * 2, Image.Resampling.BILINEAR, reducing_gap=2.0)
            out.base = base
        try:
            labeler = self._ensure_labeler()
        except ZooError as e:
            out.error = " ".join(str(e).split())
            out.zoo_error = True
            return out
        out.result = labeler.label_image(rgb, eye_check=job.eye_check, path=job.path, tta=job.tta)
        return out

    def _run_batch(self, job: _Job) -> str:
        """Label a folder; progress goes through the results queue. Returns the summary line."""
        assert job.path is not None and job.out_dir is not None
        from app.zoo import ZooError

        try:
            labeler = self._ensure_labeler()
        except ZooError as e:
            return "Batch not started: " + " ".join(str(e).split())
        try:
            s = label_folder(
                labeler, job.path, job.out_dir, eye_check=job.eye_check, tta=job.tta, cancel=job.cancel,
                progress=lambda i, n, name: self._results.put(("progress", 0, (i, n, name))),
            )
        except OSError as e:
            return f"Batch failed: {getattr(e, 'filename', None) or job.out_dir}: {e.strerror or e}"
        if s["images"] == 0:
            return f"Batch: no images in {job.path}"
        what = "cancelled after" if s["interrupted"] else "done:"
        return (
            f"Batch {what} {s['done']} of {s['images']} images: {s['faces']} faces, "
            f"{len(s['no_face'])} without a face, {len(s['errors'])} unreadable → {job.out_dir}"
        )

    # ------------------------------------------------------------------ Tk thread: results

    def _poll(self) -> None:
        if self._closed:
            return
        try:
            while True:
                kind, request, payload = self._results.get_nowait()
                if kind == "progress":
                    self._on_progress(*payload)
                    continue
                self._pending -= 1
                if kind == "models":
                    self._on_models(payload)
                elif kind == "label":
                    if payload is not None and request == self._latest_request:
                        self._shown_request = request
                        self._on_label(payload)
                elif kind == "batch":
                    self._on_batch_done(payload)
                elif kind == "crash":
                    self._show_message(f"Something went wrong: {payload}")
                    self.status_var.set(f"Error: {payload}")
                if self._pending == 0:
                    self._set_idle()
        except queue.Empty:
            pass
        self._poll_after = self.root.after(POLL_MS, self._poll)

    def _on_models(self, error: str | None) -> None:
        had_error = self.zoo_error is not None
        self.zoo_error = error
        if error:
            self._show_message(
                f"Models could not be loaded.\n\n{error}\n\n"
                "Put the trained models (manifest.json + .onnx files) in the model folder or start with "
                "--zoo DIR, then use File > Reload models or open an image to try again."
            )
            self.status_var.set(f"Models not loaded: {error}")
            return
        names = ", ".join(m.display_name for m in self.labeler.models)
        if self.rgb is not None:
            self.status_var.set(f"Models loaded ({names}).")
            self.relabel()
            return
        if had_error or self.path is None:
            self._show_message("")  # the models message; a bad file's message stays until the next open
        self.status_var.set(f"Ready: {len(self.labeler.models)} models ({names}). Open a photo with Ctrl+O.")

    def _on_label(self, loaded: _Loaded) -> None:
        name = loaded.path.name if loaded.path else "photo"
        if loaded.rgb is None:  # unreadable file: clear the view so nothing stale can be saved
            self.path, self.rgb, self.result, self._base = loaded.path, None, None, None
            self._draw_panel()
            self._show_message(f"Cannot open this file.\n\n{loaded.error}")
            self.status_var.set(f"Cannot open {name}: {loaded.reason or loaded.error}")
            self._update_save_state()
            return
        self.path, self.rgb = loaded.path, loaded.rgb
        if loaded.base is not None:
            self._base = loaded.base
        self.result = loaded.result
        self._update_save_state()
        if loaded.zoo_error:
            self.zoo_error = loaded.error
            self.result = None
            self._draw_panel()
            self._show_message(f"Models could not be loaded, so no labels.\n\n{loaded.error}")
            self.status_var.set(f"Models not loaded: {loaded.error}")
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
        eyes = "eye check on" if self.eye_var.get() else "eye check off"
        if self.tta_var.get():
            eyes += " · flip TTA"
        if n == 0:
            hint = (
                "Try turning off 'Verify eyes'." if self.eye_var.get()
                else "Only upright, roughly frontal faces are found; small faces in large photos may be missed."
            )
            self.message = f"No face found in {name}. {hint}"
            self.status_var.set(f"{name} ({w}×{h}): no face found · {timing} · {eyes}")
        else:
            self.message = ""
            self.status_var.set(f"{name} ({w}×{h}): {n} face{'s' if n != 1 else ''} · {timing} · {eyes}")
        self._draw_panel()
        self._redraw()

    def _on_progress(self, i: int, n: int, name: str) -> None:
        if self._batch_job is None:
            return
        self.progress.configure(maximum=max(n, 1), value=i)
        self.status_var.set(f"Batch: {i}/{n} {name}")

    def _on_batch_done(self, summary: str) -> None:
        self._batch_job = None
        self.batch_summary = summary
        self.cancel_btn.pack_forget()
        self.progress.configure(mode="indeterminate", value=0)
        if self._pending == 0:
            self.progress.pack_forget()
        self._set_open_state(tk.NORMAL)
        self.status_var.set(summary)

    # ------------------------------------------------------------------ drawing: photo canvas

    def _on_canvas_resize(self, _event: tk.Event) -> None:
        if self._resize_after is not None:
            self.root.after_cancel(self._resize_after)
        self._resize_after = self.root.after(RESIZE_DEBOUNCE_MS, self._redraw)

    def _show_message(self, text: str) -> None:
        self.message = text
        self._redraw()

    def _fit(self) -> tuple[float, int, int, int, int]:
        """Scale and offset that fit the photo in the canvas (upscaling small frames too)."""
        cw, ch = max(self.canvas.winfo_width(), 1), max(self.canvas.winfo_height(), 1)
        assert self.rgb is not None
        h, w = self.rgb.shape[:2]
        s = min(cw / w, ch / h)
        dw, dh = max(1, round(w * s)), max(1, round(h * s))
        return s, (cw - dw) // 2, (ch - dh) // 2, dw, dh

    def _redraw(self) -> None:
        self._resize_after = None
        c = self.canvas
        c.delete("all")
        cw, ch = c.winfo_width(), c.winfo_height()
        if self.rgb is not None and self._base is not None and cw > 1 and ch > 1:
            s, ox, oy, dw, dh = self._fit()
            resample = Image.Resampling.BILINEAR if s >= 1 else Image.Resampling.LANCZOS
            if s < 0.5:
                resample = Image.Resampling.BILINEAR  # big reductions: speed matters more than the last bit
            shown = self._base.resize((dw, dh), resample, reducing_gap=2.0 if s < 1 else None)
            self._tk_photo = ImageTk.PhotoImage(shown, master=self.root)
            c.create_image(ox, oy, image=self._tk_photo, anchor=tk.NW, tags=("photo",))
            if self.result is not None:
                for face in self.result.faces:
                    self._draw_face(face, s, ox, oy, cw, ch)
        if self.message:
            self._draw_message(cw, ch, centred=self.rgb is None)

    def _draw_message(self, cw: int, ch: int, centred: bool) -> None:
        c = self.canvas
        width = max(200, min(cw - 60, 640))
        y = ch // 2 if centred else 16
        anchor = tk.CENTER if centred else tk.N
        t = c.create_text(
            cw // 2, y, text=self.message, fill="white", width=width, anchor=anchor,
            justify=tk.CENTER, font=self.bold, tags=("message",),
        )
        x0, y0, x1, y1 = c.bbox(t)
        r = c.create_rectangle(x0 - 12, y0 - 10, x1 + 12, y1 + 10, fill="#5a1e1e", outline="#c0504d",
                               width=2, tags=("message",))
        c.tag_lower(r, t)

    def _label_parts(self, face: Any) -> list[tuple[str, str]]:
        """(text, emotion) per model, in manifest order: ``("CNN happy 91%", "happy")``."""
        parts = []
        for m in self._models():
            p = face.predictions.get(m.name)
            if p is not None:
                parts.append((f"{m.display_name} {p.label} {percent(p.confidence)}", p.label))
        return parts

    def _draw_face(self, face: Any, s: float, ox: int, oy: int, cw: int, ch: int) -> None:
        c = self.canvas
        b = face.box
        x0, y0 = ox + b.x * s, oy + b.y * s
        x1, y1 = ox + (b.x + b.w) * s, oy + (b.y + b.h) * s
        color = hex_color(face.ensemble.label)
        tag = f"face{face.index}"
        c.create_rectangle(x0, y0, x1, y1, outline="black", width=5, tags=(tag, "box"))
        c.create_rectangle(x0, y0, x1, y1, outline=color, width=3, tags=(tag, "box"))
        # Number badge in the box's top-left corner.
        num = c.create_text(x0 + 4, y0 + 3, text=str(face.index), anchor=tk.NW, font=self.label_font,
                            fill="black", tags=(tag, "number"))
        bx0, by0, bx1, by1 = c.bbox(num)
        c.tag_lower(c.create_rectangle(bx0 - 3, by0 - 1, bx1 + 3, by1 + 1, fill=color, outline="",
                                       tags=(tag,)), num)

        # Label segments, one colour per model's emotion; one line if it fits, else one line per model.
        parts = self._label_parts(face)
        if not parts:
            return
        sep = " · "
        f = self.label_font
        line_h = f.metrics("linespace") + 2
        widths = [f.measure(t) for t, _ in parts]
        one_line = sum(widths) + f.measure(sep) * (len(parts) - 1)
        lines = [parts] if one_line + 8 <= cw else [[p] for p in parts]
        block_w = (one_line if len(lines) == 1 else max(widths)) + 8
        block_h = line_h * len(lines) + 4
        # Above the box if there is room, else below, else inside the top of the box.
        if y0 - block_h - 2 >= 0:
            ly = y0 - block_h - 2
        elif y1 + block_h + 2 <= ch:
            ly = y1 + 2
        else:
            ly = max(0, y0 + 2)
        lx = min(max(0, x0 - 1), max(0, cw - block_w))
        c.create_rectangle(lx, ly, lx + block_w, ly + block_h, fill=LABEL_BG, outline=color, tags=(tag,))
        y = ly + 2
        for line in lines:
            x = lx + 4
            for k, (text, label) in enumerate(line):
                if k:
                    c.create_text(x, y, text=sep, anchor=tk.NW, font=f, fill="#bbbbbb", tags=(tag,))
                    x += f.measure(sep)
                c.create_text(x, y, text=text, anchor=tk.NW, font=f, fill=hex_color(label),
                              tags=(tag, "boxlabel"))
                x += f.measure(text)
            y += line_h

    # ------------------------------------------------------------------ drawing: side panel

    def _models(self) -> list[Any]:
        return list(self.labeler.models) if self.labeler is not None else []

    def _display_names(self) -> dict[str, str]:
        return {m.name: m.display_name for m in self._models()}

    def _on_wheel(self, event: tk.Event) -> None:
        if getattr(event, "num", None) == 4 or getattr(event, "delta", 0) > 0:
            self.panel.yview_scroll(-3, "units")
        else:
            self.panel.yview_scroll(3, "units")

    def _on_body_resize(self, event: tk.Event) -> None:
        """Keep the panel at most 40% of a narrow window, so the photo stays the main thing (until dragged)."""
        if self._sash_moved_by_user or event.width < 50:
            return
        side = min(PANEL_WIDTH, int(0.4 * event.width))
        self.body.sashpos(0, max(100, event.width - side))

    def _on_panel_resize(self, event: tk.Event) -> None:
        if event.width == self._panel_width:
            return
        self._panel_width = event.width
        if self._panel_after is not None:
            self.root.after_cancel(self._panel_after)
        self._panel_after = self.root.after(RESIZE_DEBOUNCE_MS, self._draw_panel)

    def _draw_panel(self) -> None:
        self._panel_after = None
        p = self.panel
        p.delete("all")
        self._panel_images.clear()
        pw = max(self._panel_width or int(p.cget("width")), 200)
        y = 8
        if self.result is None:
            text = "Faces appear here with each model's probabilities." if not self.zoo_error else ""
            p.create_text(pw // 2, 40, text=text, width=pw - 30, fill="#666666", justify=tk.CENTER)
            p.configure(scrollregion=(0, 0, pw, 100))
            return
        if not self.result.faces:
            p.create_text(pw // 2, 40, text=self.message or "No face found.", width=pw - 30, fill="#a33",
                          justify=tk.CENTER, font=self.bold)
            p.configure(scrollregion=(0, 0, pw, 100))
            return
        models = self._models()
        for face in self.result.faces:
            y = self._draw_face_card(face, models, y, pw) + 14
        p.configure(scrollregion=(0, 0, pw, y))
        p.yview_moveto(0)

    def _draw_face_card(self, face: Any, models: list[Any], y: int, pw: int) -> int:
        """Thumbnail, summary and one probability chart per model plus the ensemble; returns the new y."""
        p = self.panel
        tag = f"face{face.index}"
        top = y
        crop = np.asarray(face.crop, dtype=np.uint8)
        thumb = Image.fromarray(crop if crop.ndim == 2 else crop[..., 0], "L").resize((96, 96), Image.NEAREST)
        img = ImageTk.PhotoImage(thumb, master=self.root)
        self._panel_images.append(img)
        p.create_image(10, y, image=img, anchor=tk.NW, tags=(tag,))
        e = face.ensemble
        b = face.box
        p.create_text(116, y + 2, text=f"Face {face.index}", anchor=tk.NW, font=self.bold, tags=(tag,))
        wrap = max(60, pw - 126)
        p.create_text(116, y + 24, text=f"{e.label} {percent(e.confidence)}", anchor=tk.NW,
                      font=self.bold, fill=hex_color(e.label), width=wrap, tags=(tag,))
        p.create_text(116, y + 46, text=f"ensemble of {len(models)} models\n{b.w}×{b.h} px at ({b.x}, {b.y})",
                      anchor=tk.NW, font=self.small, fill="#666666", width=wrap, tags=(tag,))
        y += 104
        charts = [(m.display_name, face.predictions[m.name]) for m in models if m.name in face.predictions]
        charts.append(("ensemble", face.ensemble))
        ncols = max(1, min(len(charts), (pw - 20) // CHART_MIN_W))
        col_w = (pw - 20) // ncols
        row_bottom = y
        for k, (name, pred) in enumerate(charts):
            cx = 10 + (k % ncols) * col_w
            if k % ncols == 0:
                y = row_bottom
            row_bottom = max(row_bottom, self._draw_chart(name, pred, cx, y, col_w - 8, tag))
        p.create_rectangle(4, top - 4, pw - 4, row_bottom + 2, outline="#cccccc", tags=(tag,))
        return row_bottom

    def _draw_chart(self, name: str, pred: Any, x: int, y: int, w: int, tag: str) -> int:
        """A 7-bar horizontal chart; the top class in its colour and bold, the rest grey."""
        p = self.panel
        probs = np.asarray(pred.probs, dtype=float)
        title = f"{name} {pred.label} {percent(pred.confidence)}"
        title_font = self.bold if self.bold.measure(title) <= w else self.small_bold
        t = p.create_text(x, y, text=title, anchor=tk.NW, font=title_font, fill=hex_color(pred.label),
                          width=w, tags=(tag, "row"))  # a very long model name wraps instead of overlapping
        y = p.bbox(t)[3] + 2
        name_w, pct_w, row_h = 66, 36, max(13, self.small.metrics("linespace"))
        bar_w = max(20, w - name_w - pct_w)
        classes = list(EMOTIONS) if len(probs) == len(EMOTIONS) else [str(i) for i in range(len(probs))]
        known = getattr(self.labeler, "classes", None)
        if known is not None and len(known) == len(probs):
            classes = list(known)
        top = int(np.argmax(probs))
        for i, (cls, pr) in enumerate(zip(classes, probs, strict=False)):
            is_top = i == top
            font = self.bold if is_top else self.small
            fill = hex_color(cls) if is_top else "#b8b8b8"
            p.create_text(x + name_w - 4, y + row_h // 2, text=cls, anchor=tk.E, font=font,
                          fill="black" if is_top else "#555555", tags=(tag,))
            p.create_rectangle(x + name_w, y + 2, x + name_w + bar_w, y + row_h - 2, fill="#f0f0f0",
                               outline="", tags=(tag,))
            if pr > 0.002:
                p.create_rectangle(x + name_w, y + 2, x + name_w + max(1, pr * bar_w), y + row_h - 2,
                                   fill=fill, outline="", tags=(tag,))
            p.create_text(x + name_w + bar_w + 3, y + row_h // 2, text=percent(pr), anchor=tk.W, font=font,
                          fill="black" if is_top else "#555555", tags=(tag,))
            y += row_h
        return y + 6

    # ------------------------------------------------------------------ small state helpers

    def _set_busy(self, text: str) -> None:
        self.status_var.set(text)
        if self._batch_job is None:
            self.progress.configure(mode="indeterminate")
            self.progress.pack(side=tk.RIGHT)
            self.progress.start(12)
        self.root.configure(cursor="watch")

    def _set_idle(self) -> None:
        self.progress.stop()
        self.progress.pack_forget()
        self.root.configure(cursor="")

    def _set_open_state(self, state: str) -> None:
        for w in (self.open_btn, self.folder_btn):
            w.configure(state=state)

    def _update_save_state(self) -> None:
        self.save_btn.configure(state=tk.NORMAL if self.result is not None else tk.DISABLED)

    def _options(self) -> tuple[bool, bool]:
        """The labelling options the menu and toolbar set: (eye check, flip TTA)."""
        return self.eye_var.get(), self.tta_var.get()

    def _on_option_toggle(self) -> None:
        if self._options() != self._options_applied:  # a Tk variable fires on every set, changed or not
            self._options_applied = self._options()
            self.relabel()

    def _report_callback_exception(self, exc: type[BaseException], val: BaseException, tb: Any) -> None:
        """A bug in a Tk callback: print it for the developer, show one line to the user, keep running."""
        traceback.print_exception(exc, val, tb, file=sys.stderr)
        self.status_var.set(f"Error: {exc.__name__}: {' '.join(str(val).split())}")


def label_folder(
    labeler: Any,
    folder: Path,
    out_dir: Path,
    eye_check: bool = True,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    tta: bool = False,
) -> dict[str, Any]:
    """Label the images directly in ``folder`` into ``out_dir`` exactly as ``python -m app.batch --annotate``.

    Same files (labels.csv, summary.json, annotated/ copies, the resume journal) from app.batch's own loop,
    ``batch.label_items``, so a GUI run and a CLI run are interchangeable and ``app.batch --resume`` can finish
    a cancelled GUI run; only the stop signal (``cancel``) and the progress report differ from the CLI's.
    Returns app.batch's summary dict.
    """
    import argparse

    from app import batch

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = batch.scan_inputs([folder], out_dir, recursive=False)
    done = batch.prepare_outputs(out_dir, batch.csv_header(labeler.models), resume=False)
    this_run, cancelled = batch.label_items(
        labeler, scan.items, out_dir,
        eye_check=eye_check,
        tta=tta,
        annotate=True,
        done=done,
        should_stop=cancel.is_set if cancel is not None else lambda: False,
        progress=progress,
    )
    args = argparse.Namespace(no_eye_check=not eye_check, tta=tta)
    return batch.write_summary(out_dir, scan, done, this_run, labeler, args, time.perf_counter() - t0, cancelled)


def run(image: str | os.PathLike | None = None, zoo_dir: str | os.PathLike | None = None,
        eye_check: bool = True, tta: bool = False) -> int:
    """Open the window (optionally with a photo) and run the Tk main loop; returns the exit code."""
    try:
        root = tk.Tk(className=APP_NAME)
    except tk.TclError as e:
        print(f"emotionlens: cannot open a window ({e}); is a display available? Try --self-test.",
              file=sys.stderr)
        return 1
    app = App(root, zoo_dir=zoo_dir, eye_check=eye_check, tta=tta)
    if image is not None:
        app.open_image(image)
    root.mainloop()
    return 0
