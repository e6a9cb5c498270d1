"""The window's dialogs: every ``ask_*`` handler of the menus, toolbar and shortcuts, and the Details box.

Kept apart from the shell (app.gui.window) so that everything a test can drive headless lives there and
everything that waits for a person lives here: each handler only asks (a file, a folder, a camera) and
then calls the headless method that does the work (``open_image``, ``open_video``, ``open_folder``,
``save_annotated``, ``export_video``, ``start_webcam``).
"""

from __future__ import annotations

import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, simpledialog, ttk

from app.core import IMAGE_SUFFIXES
from app.gui.folders import OutputFolderDialog
from app.gui.messages import default_output_folder
from app.outputs import FRAMES, TRACKS
from app.video import VIDEO_SUFFIXES, is_video


def _patterns(suffixes: frozenset[str] | set[str]) -> str:
    kinds = " ".join(f"*{s}" for s in sorted(suffixes))
    return kinds + " " + kinds.upper()


class Dialogs:
    """Mixed into :class:`app.gui.window.App`; uses its widgets and headless methods."""

    def ask_open_image(self) -> None:
        """File > Open: pick a photo or a video with a dialog."""
        if str(self.open_btn.cget("state")) == tk.DISABLED:
            return
        name = filedialog.askopenfilename(
            parent=self.root,
            title="Open image or video",
            filetypes=[("Images and videos", _patterns(IMAGE_SUFFIXES | VIDEO_SUFFIXES)),
                       ("Images", _patterns(IMAGE_SUFFIXES)), ("Videos", _patterns(VIDEO_SUFFIXES)),
                       ("All files", "*")],
            initialdir=str(self.path.parent) if self.path else None,
        )
        if name:
            self.open_video(name) if is_video(name) else self.open_image(name)

    def ask_open_folder(self) -> None:
        """File > Open folder: pick a folder of photos, confirm (or change) the new folder for the results."""
        if str(self.folder_btn.cget("state")) == tk.DISABLED:
            return
        src = filedialog.askdirectory(parent=self.root, title="Label every photo in this folder", mustexist=True)
        if not src:
            return
        out = OutputFolderDialog(self.root, Path(src), default_output_folder(src)).run()
        if out is not None:
            self.open_folder(src, out, confirmed=True)  # the dialog asked before accepting a folder with files

    def ask_save(self) -> None:
        """File > Save annotated image: pick a file name; the original photo is never overwritten. With a
        video open (the button reads "Export results…"), the video's export instead."""
        if self.video.active:
            self.ask_export_video()
            return
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
            self.status_var.set(f"Could not save {Path(name).name}: {' '.join(str(e).split())}")

    def show_details(self) -> None:
        """The technical detail of the last problem, selectable so it can be copied into a bug report."""
        top = tk.Toplevel(self.root)
        top.title("Details")
        top.transient(self.root)
        text = tk.Text(top, wrap=tk.WORD, width=70, height=8, font=self.fonts["small"])
        text.insert("1.0", self.detail or "No details.")
        text.configure(state=tk.DISABLED)
        text.pack(fill=tk.BOTH, expand=True, padx=8, pady=8)
        ttk.Button(top, text="Close", command=top.destroy).pack(pady=(0, 8))
        top.bind("<Escape>", lambda _e: top.destroy())


    def show_about(self) -> None:
        """Help > About: the version, the zoo and what its models were trained to agree with."""
        messagebox.showinfo("About EmotionLens", self.about(), parent=self.root)

    def ask_export_video(self) -> None:
        """File > Export video results: pick a folder for frames.csv, tracks.csv, timelines/ and the MP4."""
        why = self.video.export_refusal()
        if why:
            self.status_var.set(why)
            return
        video = self.video.path
        name = filedialog.askdirectory(parent=self.root, title=f"Export the results of {video.name} into",
                                       initialdir=str(video.parent), mustexist=False)
        if not name:
            return
        out = Path(name)
        if any((out / f).exists() for f in (FRAMES, TRACKS)) and not messagebox.askyesno(
                "Replace results?", f"{out.name} already holds {FRAMES} or {TRACKS}.\n\nReplace them with the "
                f"results of {video.name}? The video itself is never changed.", parent=self.root):
            return
        self.export_video(out)

    def ask_webcam(self) -> None:
        """File > Webcam: which camera (a number, a device name, or a video file to play live)."""
        spec = simpledialog.askstring(
            "Webcam", "Camera number (0 is the first camera), a device name,\nor a video file to play as if live:",
            initialvalue="0", parent=self.root)
        if spec is None or not spec.strip():
            return
        spec = spec.strip()
        self.start_webcam(int(spec) if spec.isdigit() else spec)
