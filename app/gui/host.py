"""What the window offers the modes it hosts (the video player, the webcam): :class:`ModeHost`.

The modes are built by the window and drive parts of it (the status bar, the side panel, the Save button);
typing them against this protocol instead of :class:`app.gui.window.App` keeps the dependency one way, window
-> modes, and lists in one place everything a mode may touch.
"""

from __future__ import annotations

import tkinter as tk
from typing import Any, Protocol

from app.gui.messages import Message


class ModeHost(Protocol):
    """The window as a mode sees it; :class:`app.gui.window.App` implements it."""

    root: tk.Tk
    canvas: tk.Canvas
    panel: Any  # app.gui.face_panel.FacePanel: the photo's side panel, hidden while a mode shows its own
    save_btn: Any  # ttk.Button
    status_var: tk.StringVar
    labeler: Any  # app.models.Labeler, or None while the models load (or when they failed: zoo_error)
    zoo_error: str | None

    def show_panes(self, picture: tk.Misc, side: tk.Misc) -> None:
        """Put ``picture`` and its ``side`` panel in the window's body."""

    def models(self) -> list[Any]:
        """The loaded zoo's models (empty while loading)."""

    def models_message(self, error: str) -> Message:
        """What to tell the user when the models cannot be used."""

    def options(self) -> tuple[bool, bool, str]:
        """The labelling options of the menus and toolbar: (eye check, flip TTA, detector)."""

    def set_busy(self, text: str) -> None:
        """Show ``text`` and the progress bar."""

    def set_idle(self) -> None:
        """Hide the progress bar."""

    def set_detail(self, detail: str) -> None:
        """The text behind the status bar's Details button ("" hides it)."""

    def update_save_state(self) -> None:
        """Enable Save annotated when there is something to save."""
