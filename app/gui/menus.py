"""The window's menu bar, and the About text (version, zoo, what its models were trained to agree with).

Kept apart from the shell (app.gui.window) because it is a plain list of commands bound to the window's
handlers; the About text is a pure function so tests and ``python -m app --version`` say the same thing.
"""

from __future__ import annotations

import tkinter as tk
from pathlib import Path
from typing import Any

from app import __version__
from app.detect import DETECTORS
from app.models import available_zoos, zoo_title


def about_text(labeler: Any, zoo_dir: Path | None, zoo_error: str | None = None) -> str:
    """``EmotionLens 0.2.0`` then the zoo folder, its label source and its models (or why it is unusable)."""
    lines = [f"EmotionLens {__version__}"]
    if labeler is not None:
        names = ", ".join(m.display_name for m in labeler.models)
        lines += [f"Models: {names} and their ensemble", f"Trained on: {labeler.label_source}",
                  f"Zoo: {labeler.zoo_dir}"]
    else:
        lines += [f"Zoo: {zoo_dir if zoo_dir is not None else 'the bundled one'}",
                  f"Models not loaded: {zoo_error or 'still loading'}"]
    lines.append("Documentation: docs/index.md in the source, or the documentation site")
    return "\n".join(lines)


def build_menu(win: Any) -> tuple[tk.Menu, tk.Menu]:
    """File, View, Options, Detector, Models (which zoo labels: :func:`app.models.available_zoos`) and Help menus
    bound to ``win``'s handlers; returns (File, Detector)."""
    root = win.root
    menubar = tk.Menu(root)
    filemenu = tk.Menu(menubar, tearoff=False)
    filemenu.add_command(label="Open image or video…", accelerator="Ctrl+O", command=win.ask_open_image)
    filemenu.add_command(label="Open folder…", accelerator="Ctrl+Shift+O", command=win.ask_open_folder)
    filemenu.add_command(label="Webcam…", command=win.ask_webcam)
    filemenu.add_command(label="Save annotated image…", accelerator="Ctrl+S", command=win.ask_save)
    filemenu.add_command(label="Export video results…", command=win.ask_export_video)
    filemenu.add_separator()
    filemenu.add_command(label="Reload models", command=win.reload_models)
    filemenu.add_separator()
    filemenu.add_command(label="Quit", accelerator="Ctrl+Q", command=win.quit)
    menubar.add_cascade(label="File", menu=filemenu)
    viewmenu = tk.Menu(menubar, tearoff=False)
    viewmenu.add_command(label="Next face", accelerator="N", command=lambda: win._on_nav_key("n"))
    viewmenu.add_command(label="Previous face", accelerator="P", command=lambda: win._on_nav_key("p"))
    viewmenu.add_separator()
    viewmenu.add_command(label="Zoom in", accelerator="Ctrl+wheel, +", command=lambda: win.view.zoom_by(1.25))
    viewmenu.add_command(label="Zoom out", accelerator="Ctrl+wheel, −", command=lambda: win.view.zoom_by(1 / 1.25))
    viewmenu.add_command(label="Fit to window", accelerator="0", command=lambda: win.view.fit())
    menubar.add_cascade(label="View", menu=viewmenu)
    optmenu = tk.Menu(menubar, tearoff=False)
    optmenu.add_checkbutton(label="Verify eyes (fewer false faces)", variable=win.eye_var)
    optmenu.add_checkbutton(label="Flip test-time augmentation (more accurate, labelling 2× slower)",
                            variable=win.tta_var)
    optmenu.add_checkbutton(label="Saliency maps (where each model looked)", variable=win.maps_var)
    menubar.add_cascade(label="Options", menu=optmenu)
    detmenu = tk.Menu(menubar, tearoff=False)
    for name in DETECTORS:
        detmenu.add_radiobutton(label=name, value=name, variable=win.detector_var)
    menubar.add_cascade(label="Detector", menu=detmenu)
    zoomenu = tk.Menu(menubar, tearoff=False)
    for zoo in available_zoos(win.zoo_dir):
        zoomenu.add_radiobutton(label=zoo_title(zoo), value=str(zoo), variable=win.zoo_var,
                                command=lambda z=zoo: win.set_zoo(z))
    menubar.add_cascade(label="Models", menu=zoomenu)
    helpmenu = tk.Menu(menubar, tearoff=False)
    helpmenu.add_command(label="About EmotionLens", command=win.show_about)
    menubar.add_cascade(label="Help", menu=helpmenu)
    root.configure(menu=menubar)
    return filemenu, detmenu
