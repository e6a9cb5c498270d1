"""What the window does with a video: the player and the track table in place of the photo and its faces,
the analysis with its progress and Cancel in the status bar, and the export.

Why it is built this way:

* Opening is two steps off the Tk thread: :func:`app.video.probe` (a damaged file answers with a message, not
  a frozen window), then the analysis (app.gui.video.analysis), which starts once the models are loaded and runs
  while the user already plays the video (:mod:`app.gui.video.player`).
* Everything reaches the Tk thread through one queue, polled with ``after``; a message whose ``generation``
  is not the open video's (the user opened another meanwhile) is dropped, except an export's, which reports
  the files it wrote whatever is on screen.
* The headless methods (:meth:`open`, :meth:`cancel_analysis`, :meth:`export`, :meth:`select_track`,
  :meth:`track_rows`) are what the menus call, minus the dialogs, so tests drive the same code.
"""

from __future__ import annotations

import queue
import threading
import time
import tkinter as tk
import traceback
from pathlib import Path
from tkinter import ttk
from typing import Any

from app.gui.host import ModeHost
from app.gui.messages import Message, unreadable_video
from app.gui.video.analysis import Analysis, VideoStore
from app.gui.video.player import Player
from app.gui.video.track_panel import TrackPanel, clock
from app.gui.video.video_export import export_results
from app.outputs import FRAMES, TRACKS
from app.video import VideoError, VideoInfo, VideoOptions, probe

POLL_MS = 40
PANEL_S = 0.3  # the track table and timeline follow the analysis at most this often
TRACK_HINT = ("One row per face the tracker follows through the video. Click a row or a box to see that face's "
              "emotions over time below the video. Space plays and pauses, ← → step a frame, N / P pick a track.")


class VideoMode:
    """The window's video mode; built on first use (``player``, ``tracks`` are None until then)."""

    def __init__(self, app: ModeHost) -> None:
        self.app = app
        self.player: Player | None = None
        self.tracks: TrackPanel | None = None
        self.active = False
        self.path: Path | None = None
        self.info: VideoInfo | None = None
        self.store = VideoStore()
        self.generation = 0
        self.results: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.analysis: Analysis | None = None
        self.selected: int | None = None
        self._picked = False  # the user chose a track: the automatic choice (the longest in view) stops
        self.summary = ""  # the last analysis's or export's outcome, one line
        self.exported: Any = None  # the last export's app.gui.video.video_export.Exported
        self._opening = False
        self._exporting = False
        self._wants_analysis = False
        self._analysis_t0 = 0.0
        self._panel_at = 0.0
        self._panel_version = -1
        self._poll_after: str | None = None
        self._closed = False

    # ------------------------------------------------------------------ building and switching

    def _build(self) -> None:
        if self.player is not None:
            return
        app = self.app
        self.player = Player(app.body, app.fonts, app.label_font, app.dpi_scale, self.select_track, self._on_frame,
                             self._on_play_problem)
        self.player.faces_at = self._faces_at
        self.player.view.parts = app._label_parts  # each model's label of the frame, in the full line
        self.player.index_at = lambda t: self.store.index_at(t)
        self.player.time_of = lambda i: self.store.time_of(i)
        self.tracks = TrackPanel(app.body, app.fonts, self.select_track)
        self.player.bind_keys(self.tracks.tree)
        status = app.status_label.master
        self.progress = ttk.Progressbar(status, length=160, mode="determinate")
        self.cancel_btn = ttk.Button(status, text="Cancel", command=self.cancel_analysis)
        self._poll_after = app.root.after(POLL_MS, self._poll)

    def _enter(self) -> None:
        self._build()
        assert self.player is not None and self.tracks is not None
        if not self.active:
            self.active = True
            self.app.show_panes(self.player.frame, self.tracks.frame)
            self.app.save_btn.configure(text="Export results…")
        self._update_export_state()

    def close(self) -> None:
        """Back to photos: stop the analysis and the player (an export in progress finishes)."""
        if not self.active:
            return
        self._stop_threads()
        self.generation += 1
        assert self.player is not None
        self.player.unload()
        self.active = False
        self.app.show_panes(self.app.canvas, self.app.panel.frame)
        self.app.save_btn.configure(text="Save annotated…")
        self.app.update_save_state()

    def stop(self) -> None:
        """The window closes: stop every thread and timer of the video mode."""
        self._closed = True
        self._stop_threads()
        if self.player is not None:
            self.player.unload()
        if self._poll_after is not None:
            self.app.root.after_cancel(self._poll_after)
            self._poll_after = None

    def _stop_threads(self) -> None:
        if self.analysis is not None:
            self.analysis.cancel()
        self.analysis = None
        self._wants_analysis = self._opening = False
        self._hide_progress()

    # ------------------------------------------------------------------ public API (tests drive these)

    def open(self, path: str | Path) -> None:
        """Show ``path`` in the player and analyse it in the background."""
        p = Path(path)
        self._enter()
        self._stop_threads()
        self.generation += 1
        self.path, self.info, self.store, self.selected, self._picked = p, None, VideoStore(), None, False
        self.summary, self._panel_version = "", -1
        assert self.player is not None and self.tracks is not None
        self.player.unload()
        self.player.view.set_photo(None, (0, 0))
        self._show_problem(Message(f"Opening {p.name}…"))
        self.tracks.set_models(self.app.models(), TRACK_HINT)
        self.player.timeline.set_series(None, (0.0, 1.0), hint="The selected face's emotions over time appear "
                                        "here as the video is analysed; click the chart to go to that moment.")
        self.app.status_var.set(f"Opening {p.name}…")
        self._opening = True
        threading.Thread(target=self._probe, args=(p, self.generation), name="emotionlens-probe",
                         daemon=True).start()
        self._update_export_state()

    def restart_analysis(self) -> None:
        """Analyse the open video again (an option changed): the old results go, playback stays."""
        if not self.active or self.info is None or self.path is None:
            return
        self._stop_threads()
        self.generation += 1
        self.store, self._panel_version = VideoStore(self.info.fps), -1
        assert self.tracks is not None
        self.tracks.set_models(self.app.models(), TRACK_HINT)
        self._wants_analysis = True
        self._start_analysis()

    def cancel_analysis(self) -> None:
        """Stop the analysis after the current frame; what was analysed stays (boxes, table, export)."""
        if self.analysis is not None and self.analysis.running:
            self.analysis.cancel()
            self.app.status_var.set("Analysis: cancelling…")

    @property
    def busy(self) -> bool:
        """Opening, analysing or exporting (what App.wait_idle waits for)."""
        waiting = self._wants_analysis and self.app.zoo_error is None  # for the models to load
        return self._opening or waiting or self.analysis is not None or self._exporting

    def export(self, out_dir: str | Path, annotate: bool = True) -> bool:
        """Write frames.csv, tracks.csv, timelines/ and the annotated MP4 into ``out_dir`` in the background;
        False (with the reason in the status bar) when there is nothing to export yet."""
        out = Path(out_dir)
        why = self.export_refusal()
        if why:
            self.app.status_var.set(why)
            return False
        assert self.path is not None and self.player is not None
        labeler, video = self.app.labeler, self.path
        records = list(self.store.records)
        span = (0.0, max(self.player.duration, self.store.analysed_s))
        thumbs = {k: t.thumbnail for k, t in self.store.tracks.items() if t.thumbnail is not None}
        self._exporting = True
        self._update_export_state()
        self.app.set_busy(f"Exporting the results of {self.path.name} to {out}…")

        def run() -> None:
            try:
                done = export_results(out, video, records, labeler, span, thumbs, annotate=annotate)
                self.results.put(("exported", 0, done))
            except OSError as e:
                self.results.put(("export_failed", 0, Message(
                    f"Could not export to {out}: {e.strerror or e}. Choose another folder.", str(e))))
            except VideoError as e:
                self.results.put(("export_failed", 0, Message(
                    f"The CSV files and charts are in {out}, but the annotated video could not be made: {e.reason}",
                    str(e))))
            except Exception as e:  # a bug: the window stays, Details has the line
                traceback.print_exc()
                self.results.put(("export_failed", 0, Message("Something went wrong while exporting: see Details.",
                                                              f"{type(e).__name__}: {' '.join(str(e).split())}")))

        threading.Thread(target=run, name="emotionlens-export", daemon=True).start()
        return True

    def export_refusal(self) -> str:
        """Why an export cannot start now, in the status bar's words ("" when it can)."""
        if not self.active or self.path is None or self.info is None:
            return "Nothing to export: open a video first (Ctrl+O)."
        if self._exporting:
            return "An export is already running."
        if self.analysis is not None:
            return ("Still analysing: export when it has finished, or press Cancel to export the part analysed so "
                    "far.")
        if not self.store.records:
            if self.app.labeler is None:
                return "Nothing to export: the emotion models are not loaded (see the message over the video)."
            return "Nothing analysed to export yet."
        return ""

    def select_track(self, track: int | None, announce: bool = True, auto: bool = False) -> None:
        """Select ``track`` (None: none): its box, its row, its card and its timeline. Until the user picks
        one (``auto`` False), the track longest in view is selected as the analysis goes."""
        self._picked = self._picked or not auto
        if track is not None and track not in self.store.tracks:
            track = None
        self.selected = track
        assert self.player is not None and self.tracks is not None
        self.player.view.selected = track
        self.player.view.redraw()
        self.tracks.select(track)
        self._update_timeline(force=True)
        if announce and track is not None:
            info = self.store.tracks[track]
            fs = self.store.frame_s
            self.app.status_var.set(f"Track {track}: in view {clock(info.in_view_s(fs))}, mostly "
                                    f"{info.dominant(fs)} (from {clock(info.stats.first_s)} to "
                                    f"{clock(info.stats.last_s)})")

    def on_nav_key(self, key: str) -> str:
        """N/P (and the table's arrows, which the player takes) pick the next or previous track."""
        assert self.tracks is not None
        order = self.tracks.order()
        if order and key in ("n", "p"):
            pos = order.index(self.selected) if self.selected in order else (-1 if key == "n" else len(order))
            self.select_track(order[min(max(pos + (1 if key == "n" else -1), 0), len(order) - 1)])
        return "break"

    def track_rows(self) -> list[list[str]]:
        """The track table, one list of cell texts per track (track, in view, dominant, each model's label)."""
        return self.tracks.rows() if self.tracks is not None else []

    # ------------------------------------------------------------------ threads

    def _probe(self, path: Path, generation: int) -> None:
        try:
            self.results.put(("info", generation, probe(path)))
        except VideoError as e:
            self.results.put(("open_error", generation, e))
        except Exception as e:  # PyAV surprising us on a hostile file: still a message
            self.results.put(("open_error", generation, VideoError(f"{path}: {e}", path=str(path),
                                                                   reason=f"cannot read it ({type(e).__name__})")))

    def _start_analysis(self) -> None:
        if not self._wants_analysis or self.path is None or self.info is None:
            return
        labeler = self.app.labeler
        if labeler is None:
            if self.app.zoo_error:
                msg = self.app.models_message(self.app.zoo_error)
                self._show_problem(Message("The video plays, but without expressions.\n\n" + msg.text, msg.detail))
            return  # models still loading (or to be reloaded): the poll tries again
        self._wants_analysis = False
        self._show_problem(None)
        assert self.tracks is not None
        if [m.name for m in self.tracks.models] != [m.name for m in labeler.models]:
            # opened before the models had loaded (a video given at start): the model columns come now
            self.tracks.set_models(list(labeler.models), TRACK_HINT)
        eye, tta, det = self.app.options()
        opts = VideoOptions(eye_check=eye, tta=tta, detector=det)
        self.analysis = Analysis(labeler, self.path, opts, self.results, self.generation).start()
        self._analysis_t0 = time.monotonic()
        self.progress.configure(value=0, maximum=max(1, self.info.frames or 1))
        self.cancel_btn.pack(side=tk.RIGHT, padx=(6, 0))
        self.progress.pack(side=tk.RIGHT)
        self._progress_text()
        self._update_export_state()

    # ------------------------------------------------------------------ Tk thread: results

    def _poll(self) -> None:
        if self._closed:
            return
        try:
            while True:
                kind, generation, payload = self.results.get_nowait()
                if kind in ("exported", "export_failed"):
                    self._on_export(kind, payload)
                elif generation == self.generation and self.active:
                    getattr(self, f"_on_{kind}")(payload)
        except queue.Empty:
            pass
        if self.active:
            self._start_analysis()
            if self.store.version != self._panel_version and time.monotonic() - self._panel_at >= PANEL_S:
                self._update_panel()
        self._poll_after = self.app.root.after(POLL_MS, self._poll)

    def _on_info(self, info: VideoInfo) -> None:
        assert self.player is not None and self.path is not None
        self._opening = False
        self.info = info
        self.store = VideoStore(info.fps)
        self._show_problem(None)
        self.player.load(self.path, info)
        length = f"{clock(self.player.duration)}" if self.player.duration else "unknown length"
        self.app.status_var.set(f"{self.path.name}: {info.source_width}×{info.source_height}, {length}, "
                                f"{info.fps:.3g} frames/s ({info.codec})")
        self._wants_analysis = True
        self._start_analysis()

    def _on_open_error(self, e: VideoError) -> None:
        assert self.path is not None and self.tracks is not None
        self._opening = False
        name = self.path.name
        self._show_problem(unreadable_video(name, e.reason, str(e)))
        self.app.status_var.set(f"Cannot open {name}: {e.reason}")
        self.tracks.set_models(self.app.models(), "")
        self._update_export_state()

    def _on_frames(self, payload: tuple[list, dict]) -> None:
        assert self.player is not None
        records, thumbs = payload
        before = self.store.analysed_s
        self.store.add(records, thumbs)
        self.player.extend(self.store.analysed_s)
        self.progress.configure(value=len(self.store))
        self._progress_text()
        cur = self.player.current
        if cur is not None and before < cur.time_s + 1e-6 <= self.store.analysed_s + 1e-6 and not self.player.playing:
            self.player.refresh()  # paused on a frame the analysis just reached: draw its boxes

    def _progress_text(self) -> None:
        assert self.path is not None and self.info is not None
        n, total = len(self.store), self.info.frames
        part = f"{n}/{total} frames ({100 * n / total:.0f}%)" if total else f"{n} frames"
        tracks = len(self.store.tracks)
        self.app.status_var.set(f"Analysing {self.path.name}: {part} · {tracks} track{'s' if tracks != 1 else ''}")

    def _on_done(self, payload: tuple[bool, str | None]) -> None:
        assert self.path is not None
        cancelled, reason = payload
        self.analysis = None
        self._hide_progress()
        self._update_panel()
        n, secs = len(self.store), time.monotonic() - self._analysis_t0
        tracks = len(self.store.tracks)
        what = f"{tracks} track{'s' if tracks != 1 else ''} in {n} frames"
        if reason:
            self.summary = f"{self.path.name} is damaged: {reason}. The part before it is analysed ({what})."
        elif cancelled:
            self.summary = (f"Analysis cancelled at {clock(max(0.0, self.store.analysed_s))}: {what}. Boxes and "
                            "File > Export cover the part analysed.")
        else:
            self.summary = f"{self.path.name}: {what}, analysed in {secs:.1f} s ({n / max(secs, 1e-6):.0f} frames/s)."
        self.app.status_var.set(self.summary)
        self._update_export_state()
        if self.player is not None:
            self.player.refresh()

    def _on_crash(self, detail: str) -> None:
        self.analysis = None
        self._hide_progress()
        self.app.set_detail(detail)
        self.summary = "Something went wrong while analysing the video: see Details. It still plays."
        self.app.status_var.set(self.summary)
        self._update_export_state()

    def _on_export(self, kind: str, payload: Any) -> None:
        self._exporting = False
        self.app.set_idle()
        self._update_export_state()
        if kind == "export_failed":
            self.app.set_detail(payload.detail)
            self.summary = payload.text
        else:
            self.exported = payload
            parts = [FRAMES, TRACKS]
            if payload.charts:
                parts.append(f"{payload.charts} charts in timelines/")
            if payload.video is not None:
                parts.append(payload.video.name)
            sound = ""
            if payload.video is not None and self.info is not None and not self.info.has_audio:
                sound = " (the video has no sound to copy)"
            elif payload.note:
                sound = f" ({payload.note})"
            elif payload.video is not None:
                sound = " (with the video's sound)"
            self.summary = f"Exported to {payload.folder}: {', '.join(parts)}{sound}."
        self.app.status_var.set(self.summary)

    def _on_play_problem(self, text: str) -> None:
        self.app.status_var.set(text)

    # ------------------------------------------------------------------ views

    def _faces_at(self, time_s: float) -> list[Any]:
        """The boxes to draw at ``time_s``: each track numbered by its track, tagged by its smoothed label (what
        app.outputs.annotate draws), each model's label of this frame in the full line."""
        rec = self.store.at(time_s)
        return [] if rec is None else [f.shown() for f in rec.faces]

    def _on_frame(self, frame: Any) -> None:
        assert self.tracks is not None
        rec = self.store.at(frame.time_s)
        self.tracks.set_current(list(rec.faces) if rec is not None else [])

    def _update_panel(self) -> None:
        assert self.tracks is not None
        self._panel_at, self._panel_version = time.monotonic(), self.store.version
        self.tracks.update_tracks(self.store.tracks, self.store.frame_s)
        longest = max(self.store.tracks.values(), key=lambda t: t.stats.frames, default=None)
        if not self._picked and longest is not None and longest.track != self.selected:
            self.select_track(longest.track, announce=False, auto=True)
        else:
            self._update_timeline()

    def _update_timeline(self, force: bool = False) -> None:
        assert self.player is not None
        info = self.store.tracks.get(self.selected) if self.selected is not None else None
        span = (0.0, max(self.player.duration, self.store.analysed_s, 1e-3))
        hint = "No face tracked yet." if not self.store.tracks else "Select a track to see its emotions over time."
        title = f"Track {info.track}: smoothed emotions over time (click to go there)" if info else ""
        self.player.timeline.set_series(info.series() if info else None, span, title, hint, force=force)

    def _show_problem(self, msg: Message | None) -> None:
        assert self.player is not None
        self.player.view.message = msg.text if msg else ""
        self.app.set_detail(msg.detail if msg else "")
        self.player.view.redraw()

    def message_text(self) -> str:
        """The message drawn over the video ("" when none)."""
        return self.player.view.message if self.player is not None else ""

    def _hide_progress(self) -> None:
        if self.player is not None:
            self.cancel_btn.pack_forget()
            self.progress.pack_forget()

    def _update_export_state(self) -> None:
        if self.active:
            ok = not self.export_refusal() or self.analysis is not None  # enabled while analysing: it explains
            self.app.save_btn.configure(state=tk.NORMAL if ok else tk.DISABLED)

