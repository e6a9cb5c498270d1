"""One image's unit of work (:func:`label_one`), and a pool of worker processes that runs it in parallel.

A photo costs tens of milliseconds of Haar detection (OpenCV), decoding (Pillow) and three small networks
(ONNX Runtime), much of it single-threaded, so one process cannot keep several cores busy. ``--workers N``
starts N processes, each with its own :class:`~app.models.Labeler` (single-threaded: N busy processes
already fill N cores, and more threads per process only fight), and hands results back **in input order**,
so labels.csv is the same whatever N is. The parent alone writes the outputs.

A worker that dies (a native decoder crashing on a hostile file, the OS killing it for memory) must not
stop the batch: the images that were in flight are re-run one at a time in a fresh pool, and the one that
kills its worker again gets an error record instead of a label.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.batch._scan import ANNOTATED, EXPLAINED, Item
from app.core import IMAGE_SUFFIXES, ImageError, key, load_image, shown
from app.detect import DETECTORS
from app.outputs import photo_rows

if TYPE_CHECKING:
    from app.models import Labeler

# Annotated copies keep the original's format, except where saving that format would lose colour or fail.
ANNOTATED_AS_PNG = {".gif", ".pgm", ".ppm", ".heic", ".heif", ".hif", ".avif"}
# Each worker holds its own models (~150 MB resident); past 8 processes the models' memory grows faster than
# the speed, and a laptop with 16 logical cores has fewer physical ones.
MAX_WORKERS = 8
CRASHED = "the decoder or labeller crashed on this file (its worker process died); the batch went on without it"


@dataclass(frozen=True)
class Options:
    """How every image of a batch is labelled; recorded in summary.json and compared by --resume."""

    eye_check: bool = True
    tta: bool = False
    annotate: bool = False
    detector: str = DETECTORS[0]
    explain: bool = False  # one PNG of saliency maps per face under explained/


def default_workers() -> int:
    """One worker per core, at most :data:`MAX_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def annotated_path(out_dir: Path, item: Item) -> Path:
    rel = item.rel
    if rel.suffix.lower() in ANNOTATED_AS_PNG or rel.suffix.lower() not in IMAGE_SUFFIXES:
        rel = rel.with_name(rel.name + ".png")
    return out_dir / ANNOTATED / rel


def explained_path(out_dir: Path, item: Item, face: int) -> Path:
    """``DIR/explained/<rel>.face<N>.png``: the full file name is kept so a.jpg and a.png never share a PNG."""
    return out_dir / EXPLAINED / item.rel.with_name(f"{item.rel.name}.face{face}.png")


def save_explained(it: Item, result: Any, labeler: Labeler, out_dir: Path) -> None:
    """Write each face's crop and every model's saliency map for its predicted class (see app/models/_saliency.py)."""
    import numpy as np

    from app.outputs import _annotate as ann
    from app.outputs import face_strip

    if not result.faces:
        return
    maps = labeler.explain(np.stack([f.crop for f in result.faces]))
    for i, f in enumerate(result.faces):
        probs = {m.name: f.predictions[m.name].probs for m in labeler.models}
        title = (f"face {f.index}", f"{f.ensemble.label} {100 * f.ensemble.confidence:.0f}%")
        pic = face_strip(labeler, f.crop, probs, {k: v[i] for k, v in maps.items()}, title)
        ann.save_image(pic, explained_path(out_dir, it, f.index))


def label_one(it: Item, labeler: Labeler, out_dir: Path, opts: Options) -> tuple[dict, list[list[Any]], str | None]:
    """Label one image: its journal record, its labels.csv rows, and a line to log (None when all went well).

    Never raises for a bad input: an unreadable image becomes an error record; so does any other failure,
    because one odd file must never stop a batch of thousands (the record names the exception).
    """
    return label_chunk([it], labeler, out_dir, opts)[0]


def label_chunk(
    items: list[Item], labeler: Labeler, out_dir: Path, opts: Options, *,
    data: list[bytes | str | None] | None = None, batch_faces: bool = False,
) -> list[tuple[dict, list[list[Any]], str | None]]:
    """:func:`label_one` over ``items``, one result each in their order; the task of a ``--cluster`` worker.

    ``data`` (``--cluster-send-bytes``) gives each image's file contents as read by the client, or the
    reason the client could not read it (a ``str``); None reads ``it.path`` here. ``batch_faces`` labels the
    faces of all the images in one model run per model (:meth:`Labeler.label_detections`) instead of one run
    per image; a failure in that shared run is retried image by image, so it is blamed on the right file.
    """
    data = data if data is not None else [None] * len(items)
    recs: list[dict] = []
    found: list[tuple[int, Any, Any]] = []  # (index, detection, rgb for --annotate)
    for i, (it, blob) in enumerate(zip(items, data, strict=True)):
        recs.append({"key": key(it.path), "image": str(it.path), "faces": 0, "error": None})
        try:
            rgb = _load(it.path, blob)
            det = labeler.detect_image(rgb, eye_check=opts.eye_check, detector=opts.detector)
            found.append((i, det, rgb if opts.annotate else None))
        except Exception as e:  # never raises for a bad input: see label_one
            recs[i]["error"] = _failure(e)
    results: dict[int, Any] = {}
    if batch_faces and len(found) > 1:
        try:
            got = labeler.label_detections([d for _, d, _ in found], tta=opts.tta,
                                           paths=[items[i].path for i, _, _ in found])
            results = {i: r for (i, _, _), r in zip(found, got, strict=True)}
        except Exception:  # labelled again one by one below, where the error is attributed to its image
            results = {}
    for i, det, _ in found:
        if i not in results:
            try:
                results[i] = labeler.label_detections([det], tta=opts.tta, paths=[items[i].path])[0]
            except Exception as e:
                recs[i]["error"] = _failure(e)
    out: list[tuple[dict, list[list[Any]], str | None]] = [
        (rec, [], f"skipped: {shown(it.path)}: {rec['error']}") for it, rec in zip(items, recs, strict=True)]
    for i, _, rgb in found:
        if i in results:
            out[i] = _finish(items[i], rgb, results[i], recs[i], labeler, out_dir, opts)
    return out


def _load(path: Path, blob: bytes | str | None) -> Any:
    """The image as RGB: read from ``path`` here, decoded from the bytes the client sent, or the client's error."""
    if blob is None:
        return load_image(path)
    if isinstance(blob, str):
        raise ImageError(f"{path}: {blob}", path=str(path), reason=blob)
    return load_image(path, data=blob)


def _failure(e: Exception) -> str:
    """An image's error reason for an exception met while decoding or labelling it."""
    if isinstance(e, ImageError):
        return e.reason
    if isinstance(e, MemoryError):
        return "not enough memory to label this image"
    # A bug or a library's surprise on this file: report it, keep the batch going.
    return f"internal error while labelling ({type(e).__name__}: {' '.join(str(e).split())[:160]})"


def _finish(it: Item, rgb: Any, result: Any, rec: dict, labeler: Labeler, out_dir: Path,
            opts: Options) -> tuple[dict, list[list[Any]], str | None]:
    """A labelled image's optional pictures, rows and record."""
    note = None
    if opts.annotate:
        from app.outputs import _annotate as ann

        target = annotated_path(out_dir, it)
        try:
            ann.save_image(ann.annotate(rgb, result.shown(), {m.name: m.display_name for m in labeler.models}), target)
        except (OSError, ValueError) as e:
            rec["annotate_error"] = f"cannot write {shown(target)} ({getattr(e, 'strerror', None) or e})"
            note = f"warning: {shown(it.path)}: {rec['annotate_error']}"
    if opts.explain:
        try:
            save_explained(it, result, labeler, out_dir)
        except (OSError, ValueError) as e:
            rec["explain_error"] = f"cannot write the saliency maps ({getattr(e, 'strerror', None) or e})"
            note = f"warning: {shown(it.path)}: {rec['explain_error']}"
    rows = photo_rows(str(it.path), result, labeler.models)
    rec["faces"] = len(result.faces)
    rec["seconds"] = round(result.seconds, 4)
    return rec, rows, note


# ---------------------------------------------------------------------------------------- worker processes

_worker_labeler: Labeler | None = None


def _init_worker(zoo_dir: str, threads: int, provider: str = "cpu") -> None:
    """Runs once in each worker: Ctrl+C is the parent's to handle; one thread each for OpenCV and ORT."""
    global _worker_labeler
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)  # N single-threaded workers on N cores; OpenCV's pool would only add contention
    from app.models import Labeler

    _worker_labeler = Labeler(zoo_dir, threads=threads, provider=provider)


def _work(it: Item, out_dir: Path, opts: Options) -> tuple[dict, list[list[Any]], str | None]:
    assert _worker_labeler is not None
    return label_one(it, _worker_labeler, out_dir, opts)


def _ready() -> bool:
    """A no-op task: its result says a worker has started and loaded its models."""
    return True


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` where it exists (Linux): workers fork from a server that imported the heavy modules
    once, without inheriting the parent's threads; ``spawn`` elsewhere (Windows, macOS, frozen builds)."""
    if sys.platform.startswith("linux") and not getattr(sys, "frozen", False):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["app.models", "onnxruntime", "PIL.Image"])
        return ctx
    return multiprocessing.get_context("spawn")


def _stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    procs = list(getattr(pool, "_processes", {}).values()) if kill else []
    pool.shutdown(wait=not kill, cancel_futures=True)
    for p in procs:  # Ctrl+C twice: do not wait for the images in flight
        if p.is_alive():
            p.kill()


@dataclass
class _Task:
    item: Item
    future: Future | None  # None: waiting to be re-run alone after its worker died
    in_pool: bool
    retried: bool = False
    crashed: bool = False  # killed a fresh worker when run alone: reported, not labelled

    def ready(self) -> bool:
        return self.crashed or (self.future is not None and self.future.done())


def ordered_results(
    todo: Iterable[Item],
    labeler: Labeler,
    *,
    workers: int,
    out_dir: Path,
    opts: Options,
    should_stop: Callable[[], bool] = lambda: False,
    threads: int = 1,
    share: bool = True,
    work: Callable[[Item, Path, Options], tuple[dict, list[list[Any]], str | None]] | None = None,
) -> Iterator[tuple[Item | None, dict, list[list[Any]], str | None]]:
    """``label_one`` over ``todo`` with ``workers`` labellers at once; yields in ``todo``'s order.

    Each yield is ``(item, record, rows, line to log or None)``; ``item`` None is only a line to log.
    ``share`` False leaves all the work to ``workers`` processes; ``work`` replaces what they run (tests).

    One labeller is this process's own ``labeler`` (in a thread: ONNX Runtime, OpenCV and Pillow release the
    GIL while they work), the others are ``workers - 1`` processes. This process starts labelling at once and
    the processes get images only once one of them has started and loaded its models (a no-op task tells),
    so no image waits behind their start-up: that is what makes two workers pay off even on a folder that
    takes a few seconds, and costs nothing on a folder of one or two photos. At most ``2 * (workers - 1)``
    images wait in the processes' queue; after a stop (``should_stop`` true) no new image starts and the
    ones in flight are finished and yielded.
    Breaking out of the loop (or KeyboardInterrupt) kills the processes.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    import cv2

    items = iter(todo)
    pending: deque[_Task] = deque()
    ctx = _context()
    processes = workers - 1 if share else workers
    queue_limit = 2 * processes
    work = work or _work

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_init_worker,
                                   initargs=(str(labeler.zoo_dir), threads, getattr(labeler, "provider", "cpu")))

    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # this process is one worker among N now
    here = ThreadPoolExecutor(max_workers=1, thread_name_prefix="label")
    pool = new_pool()
    warm: Future | None = pool.submit(_ready) if share else None  # None: send images to the pool now

    pool_ok = False  # has a worker ever returned a result? If not, a dying worker says nothing about the file
    pool_dead = False  # workers die even on their own: label the rest here

    def reap_broken() -> str | None:
        """A worker died: every image in the processes' queue failed with it. Rebuild the pool and re-run those
        images alone; an image that kills its worker when alone is the culprit. Returns a line to log."""
        nonlocal pool, pool_dead, warm
        broken, note = False, None
        if warm is not None and warm.done():
            if warm.exception() is not None:  # not one worker could start: not any file's fault
                pool_dead = broken = True
            warm = None
        for t in pending:
            died = t.in_pool and t.future is not None and t.future.done() and not t.crashed
            if died and isinstance(t.future.exception(), BrokenProcessPool):
                broken = True
                if t.retried and pool_ok:
                    t.crashed = True
                elif t.retried:  # workers that never worked: not this file's fault
                    pool_dead = True
                    t.future, t.in_pool = None, False
                else:
                    t.future = None
        if broken:
            _stop_pool(pool, kill=True)
            if pool_dead:
                note = "warning: the worker processes cannot start; labelling in this process only"
            else:
                pool = new_pool()
        return note

    finished = False
    try:
        while True:
            note = reap_broken()
            if note:
                yield None, {}, [], note
            retry = next((t for t in pending if t.future is None), None)
            if retry is not None and pool_dead:  # run it here, in order, when this thread is free
                if not any(not t.in_pool and not t.ready() for t in pending if t.future is not None):
                    retry.future = here.submit(label_one, retry.item, labeler, out_dir, opts)
            elif retry is not None:
                if not any(t.in_pool and not t.ready() for t in pending if t.future is not None):
                    retry.future = pool.submit(work, retry.item, out_dir, opts)
                    retry.retried = True
            else:
                while not should_stop():
                    busy_here = sum(1 for t in pending if not t.in_pool and not t.ready())
                    busy_pool = sum(1 for t in pending if t.in_pool and not t.ready())
                    use_here = not busy_here and (share or pool_dead)
                    if not use_here and (pool_dead or warm is not None or busy_pool >= queue_limit):
                        break
                    it = next(items, None)
                    if it is None:
                        break
                    if use_here:
                        pending.append(_Task(it, here.submit(label_one, it, labeler, out_dir, opts), in_pool=False))
                    else:
                        pending.append(_Task(it, pool.submit(work, it, out_dir, opts), in_pool=True))
            if not pending:
                break
            head = pending[0]
            if not head.ready():
                waiting = [t.future for t in pending if t.future is not None and not t.ready()]
                wait(waiting + ([warm] if warm is not None else []), return_when=FIRST_COMPLETED)
                continue
            if head.in_pool and not head.crashed and isinstance(head.future.exception(), BrokenProcessPool):
                continue  # reap_broken() handles it next round
            pending.popleft()
            if head.crashed:
                rec = {"key": key(head.item.path), "image": str(head.item.path), "faces": 0, "error": CRASHED}
                yield head.item, rec, [], f"skipped: {shown(head.item.path)}: {CRASHED}"
                continue
            rec, rows, note = head.future.result()
            pool_ok = pool_ok or head.in_pool
            yield head.item, rec, rows, note
        finished = True
    finally:
        if not pool_dead:
            _stop_pool(pool, kill=not finished)
        here.shutdown(wait=True, cancel_futures=True)  # at most the image in progress here
        cv2.setNumThreads(cv2_threads)
