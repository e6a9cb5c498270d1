"""The window's one background thread: loads the models, labels photos and folders, never touches Tk.

Results go back through ``results`` as ``(kind, request, payload)`` for the Tk thread to poll (Tk is not
thread-safe). A label job whose request was superseded before it started (the user opened another photo
meanwhile) comes back empty, so a slow photo can never overwrite a newer one.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.core import ImageError, load_image, one_line
from app.detect import DETECTORS
from app.gui.folders import label_folder
from app.gui.messages import models_status

DISPLAY_MAX_SIDE = 2560  # photos larger than this are pre-shrunk once so zooming and resizing stay fast


@dataclass
class Job:
    """One unit of work; ``request`` orders label jobs so stale ones can be dropped."""

    kind: str  # "models" | "label" | "batch"
    request: int
    path: Path | None = None
    rgb: np.ndarray | None = None
    eye_check: bool = True
    tta: bool = False
    detector: str = DETECTORS[0]
    out_dir: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Loaded:
    """What a label job hands back to the Tk thread."""

    path: Path | None
    rgb: np.ndarray | None = None
    base: Image.Image | None = None  # display copy, at most DISPLAY_MAX_SIDE per side
    result: Any = None  # PhotoResult
    error: str | None = None
    reason: str | None = None
    zoo_error: bool = False


class Worker:
    """Owns the thread, the job and result queues and the labeler (made by ``labeler_factory``)."""

    def __init__(self, labeler_factory: Callable[[], Any]) -> None:
        self.labeler_factory = labeler_factory
        self.labeler: Any = None
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.results: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.latest_request = 0  # the newest label request; older ones are skipped
        self.pending = 0  # jobs submitted whose result the Tk thread has not taken yet
        self.thread = threading.Thread(target=self._loop, name="emotionlens-worker", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        self.pending += 1
        self.jobs.put(job)

    def stop(self) -> None:
        """Let the thread end after the current job (it is a daemon, so a long job cannot hold the exit)."""
        self.jobs.put(None)

    def _ensure_labeler(self) -> Any:
        """The labeler, loading it now if start-up failed (the user may have added the models since)."""
        if self.labeler is None:
            self.labeler = self.labeler_factory()
        return self.labeler

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                if job.kind == "models":
                    self.results.put(("models", 0, self._run_models()))
                elif job.kind == "label":
                    if job.request != self.latest_request:  # superseded before it started
                        self.results.put(("label", job.request, None))
                    else:
                        self.results.put(("label", job.request, self._run_label(job)))
                elif job.kind == "batch":
                    self.results.put(("batch", 0, self._run_batch(job)))
            except Exception as e:  # a bug, not a user error: keep the window alive and say what happened
                traceback.print_exc()
                self.results.put(("crash", job.request, f"{type(e).__name__}: {one_line(e, limit=None)}"))

    def _run_models(self) -> str | None:
        from app.models import ZooError

        try:
            self.labeler = self.labeler_factory()  # one assignment: the Tk thread never sees it half-made
            return None
        except ZooError as e:
            self.labeler = None  # what the message says: the next open retries rather than using old models
            return one_line(e, limit=None)

    def _run_label(self, job: Job) -> Loaded:
        from app.models import ZooError

        out = Loaded(path=job.path)
        try:
            rgb = job.rgb if job.rgb is not None else load_image(job.path)  # type: ignore[arg-type]
        except ImageError as e:
            out.error = one_line(e, limit=None)  # "<path>: <reason>", for the Details button
            out.reason = one_line(e.reason, limit=None)  # the status bar names the file already
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
            out.error = one_line(e, limit=None)
            out.zoo_error = True
            return out
        out.result = labeler.label_image(rgb, eye_check=job.eye_check, path=job.path, tta=job.tta,
                                         detector=job.detector)
        return out

    def _run_batch(self, job: Job) -> tuple[str, str]:
        """Label a folder; progress goes through the results queue. Returns (summary line, detail)."""
        assert job.path is not None and job.out_dir is not None
        from app.models import ZooError

        try:
            labeler = self._ensure_labeler()
        except ZooError as e:
            return "Folder not labelled: " + models_status(str(e)), one_line(e, limit=None)
        try:
            s = label_folder(
                labeler, job.path, job.out_dir, eye_check=job.eye_check, tta=job.tta, cancel=job.cancel,
                progress=lambda i, n, name: self.results.put(("progress", 0, (i, n, name))),
                detector=job.detector,
            )
        except OSError as e:
            where = getattr(e, "filename", None) or job.out_dir
            return f"Folder labelling stopped: cannot write the results ({e.strerror or e}).", f"{where}: {e}"
        if s["images"] == 0:
            return f"Batch: no images in {job.path}", ""
        what = "cancelled after" if s["interrupted"] else "done:"
        return (
            f"Batch {what} {s['done']} of {s['images']} images: {s['faces']} faces, "
            f"{len(s['no_face'])} without a face, {len(s['errors'])} unreadable → {job.out_dir}",
            "",
        )
