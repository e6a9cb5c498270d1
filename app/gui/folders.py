"""Folder labelling from the window: the "where do results go" dialog and the run through app.batch's loop."""

from __future__ import annotations

import threading
import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, messagebox, ttk
from typing import Any

from app.detect import DETECTORS
from app.gui.messages import output_folder_question
from app.outputs import labels_header


def label_folder(
    labeler: Any,
    folder: Path,
    out_dir: Path,
    eye_check: bool = True,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    tta: bool = False,
    detector: str = DETECTORS[0],
) -> dict[str, Any]:
    """Label the images directly in ``folder`` into ``out_dir`` exactly as ``python -m app.batch --annotate``.

    Same files (labels.csv, summary.json, annotated/ copies, the resume journal) from app.batch's own loop,
    ``batch.label_items``, so a GUI run and a CLI run are interchangeable and ``app.batch --resume`` can finish
    a cancelled GUI run; only the stop signal (``cancel``) and the progress report differ from the CLI's.
    Returns app.batch's summary dict.
    """
    from app.batch import RunSettings, label_items, prepare_outputs, scan_inputs, write_summary

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = scan_inputs([folder], out_dir, recursive=False)
    done = prepare_outputs(out_dir, labels_header(labeler.models), resume=False)
    this_run, cancelled = label_items(
        labeler, scan.items, out_dir,
        eye_check=eye_check,
        tta=tta,
        annotate=True,
        done=done,
        should_stop=cancel.is_set if cancel is not None else lambda: False,
        progress=progress,
        detector=detector,
    )
    settings = RunSettings(eye_check=eye_check, tta=tta, detector=detector)
    return write_summary(out_dir, scan, done, this_run, labeler, settings, time.perf_counter() - t0, cancelled)


class OutputFolderDialog:
    """Modal: "Label the photos in A, results into the new folder B" with Change…, Start and Cancel.

    ``result`` is the folder to write to, or None when cancelled. A folder picked with Change… that already
    holds files needs a yes to a plain question first.
    """

    def __init__(self, root: tk.Misc, src: Path, proposed: Path) -> None:
        self.result: Path | None = None
        self.src, self.out = src, proposed
        top = self.top = tk.Toplevel(root)
        top.title("Label a folder of photos")
        top.transient(root)
        top.resizable(True, False)
        body = ttk.Frame(top, padding=12)
        body.pack(fill=tk.BOTH, expand=True)
        ttk.Label(body, text=f"Label every photo in:\n{src}", justify=tk.LEFT, wraplength=520).pack(anchor=tk.W)
        self.out_label = ttk.Label(body, justify=tk.LEFT, wraplength=520)
        self.out_label.pack(anchor=tk.W, pady=(10, 0))
        ttk.Label(body, text="Your photos are not changed; a table (labels.csv) and labelled copies are written.",
                  justify=tk.LEFT, wraplength=520, foreground="#555555").pack(anchor=tk.W, pady=(10, 0))
        buttons = ttk.Frame(body)
        buttons.pack(fill=tk.X, pady=(12, 0))
        self.start_btn = ttk.Button(buttons, text="Start", command=self.start, default=tk.ACTIVE)
        self.start_btn.pack(side=tk.RIGHT)
        ttk.Button(buttons, text="Cancel", command=self.cancel).pack(side=tk.RIGHT, padx=6)
        ttk.Button(buttons, text="Change folder…", command=self.change).pack(side=tk.LEFT)
        top.bind("<Return>", lambda _e: self.start())
        top.bind("<Escape>", lambda _e: self.cancel())
        top.protocol("WM_DELETE_WINDOW", self.cancel)
        self._show()
        self.start_btn.focus_set()

    def _show(self) -> None:
        what = "the new folder" if not self.out.exists() else "the folder"
        self.out_label.configure(text=f"Results go into {what}:\n{self.out}")

    def change(self) -> None:
        name = filedialog.askdirectory(parent=self.top, title="Folder for the results",
                                       initialdir=str(self.out.parent), mustexist=False)
        if not name:
            return
        out = Path(name)
        question = output_folder_question(out)
        if question is not None:
            if out.exists() and not out.is_dir():
                messagebox.showerror("Not a folder", question, parent=self.top)
                return
            if not messagebox.askyesno("Folder not empty", question, parent=self.top, default=messagebox.NO):
                return
        self.out = out
        self._show()

    def start(self) -> None:
        self.result = self.out
        self.top.destroy()

    def cancel(self) -> None:
        self.result = None
        self.top.destroy()

    def run(self) -> Path | None:
        """Show modally and return the chosen folder (None: cancelled)."""
        self.top.grab_set()
        self.top.wait_window()
        return self.result
