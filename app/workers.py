"""One image's unit of work (:func:`label_one`), and a pool of worker processes that runs it in parallel.

A photo costs tens of milliseconds of Haar detection (OpenCV), decoding (Pillow) and three small networks
(ONNX Runtime), much of it single-threaded, so one process cannot keep several cores busy. ``--workers N``
starts N processes, each with its own :class:`~app.labeler.Labeler` (single-threaded: N busy processes
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

from app.detect import DETECTORS
from app.imageio import IMAGE_SUFFIXES, ImageError, load_image
from app.journal import key, shown
from app.scan import ANNOTATED, Item

if TYPE_CHECKING:
    from app.labeler import Labeler

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


def default_workers() -> int:
    """One worker per core, at most :data:`MAX_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def annotated_path(out_dir: Path, item: Item) -> Path:
    rel = item.rel
    if rel.suffix.lower() in ANNOTATED_AS_PNG or rel.suffix.lower() not in IMAGE_SUFFIXES:
        rel = rel.with_name(rel.name + ".png")
    return out_dir / ANNOTATED / rel


def _fmt(p: float) -> str:
    return f"{p:.4f}"


def label_one(it: Item, labeler: Labeler, out_dir: Path, opts: Options) -> tuple[dict, list[list[Any]], str | None]:
    """Label one image: its journal record, its labels.csv rows, and a line to log (None when all went well).

    Never raises for a bad input: an unreadable image becomes an error record; so does any other failure,
    because one odd file must never stop a batch of thousands (the record names the exception).
    """
    rec: dict = {"key": key(it.path), "image": str(it.path), "faces": 0, "error": None}
    try:
        rgb = load_image(it.path)
        result = labeler.label_image(rgb, eye_check=opts.eye_check, path=it.path, tta=opts.tta,
                                     detector=opts.detector)
    except ImageError as e:
        rec["error"] = e.reason
    except MemoryError:
        rec["error"] = "not enough memory to label this image"
    except Exception as e:  # a bug or a library's surprise on this file: report it, keep the batch going
        rec["error"] = f"internal error while labelling ({type(e).__name__}: {' '.join(str(e).split())[:160]})"
    if rec["error"]:
        return rec, [], f"skipped: {shown(it.path)}: {rec['error']}"
    note = None
    if opts.annotate:
        from app import annotate as ann

        target = annotated_path(out_dir, it)
        try:
            ann.save_image(ann.annotate(rgb, result, {m.name: m.display_name for m in labeler.models}), target)
        except (OSError, ValueError) as e:
            rec["annotate_error"] = f"cannot write {shown(target)} ({getattr(e, 'strerror', None) or e})"
            note = f"warning: {shown(it.path)}: {rec['annotate_error']}"
    rows: list[list[Any]] = []
    for f in result.faces:
        b = f.box
        row: list[Any] = [str(it.path), f.index, b.x, b.y, b.w, b.h]
        for m in labeler.models:
            p = f.predictions[m.name]
            row += [p.label, _fmt(p.confidence)]
        rows.append(row + [f.ensemble.label, _fmt(f.ensemble.confidence)])
    rec["faces"] = len(result.faces)
    rec["seconds"] = round(result.seconds, 4)
    return rec, rows, note


# ---------------------------------------------------------------------------------------- worker processes

_worker_labeler: Labeler | None = None


def _init_worker(zoo_dir: str, threads: int) -> None:
    """Runs once in each worker: Ctrl+C is the parent's to handle; one thread each for OpenCV and ORT."""
    global _worker_labeler
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)  # N single-threaded workers on N cores; OpenCV's pool would only add contention
    from app.labeler import Labeler

    _worker_labeler = Labeler(zoo_dir, threads=threads)


def _work(it: Item, out_dir: Path, opts: Options) -> tuple[dict, list[list[Any]], str | None]:
    assert _worker_labeler is not None
    return label_one(it, _worker_labeler, out_dir, opts)


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` where it exists (Linux): workers fork from a server that imported the heavy modules
    once, without inheriting the parent's threads; ``spawn`` elsewhere (Windows, macOS, frozen builds)."""
    if sys.platform.startswith("linux") and not getattr(sys, "frozen", False):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["app.labeler", "onnxruntime", "PIL.Image"])
        return ctx
    return multiprocessing.get_context("spawn")


def _stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    procs = list(getattr(pool, "_processes", {}).values()) if kill else []
    pool.shutdown(wait=not kill, cancel_futures=True)
    for p in procs:  # Ctrl+C twice: do not wait for the images in flight
        if p.is_alive():
            p.kill()


def ordered_results(
    todo: Iterable[Item],
    *,
    workers: int,
    zoo_dir: str | os.PathLike,
    out_dir: Path,
    opts: Options,
    should_stop: Callable[[], bool] = lambda: False,
    threads: int = 1,
) -> Iterator[tuple[Item, dict, list[list[Any]], str | None]]:
    """``label_one`` over ``todo`` in ``workers`` processes; yields in ``todo``'s order.

    At most ``2 * workers`` images are in flight, so a stop (``should_stop`` true) or a crash wastes little:
    after a stop no new image starts and the ones in flight are finished and yielded. Breaking out of the
    loop (or KeyboardInterrupt) kills the workers.
    """
    items = iter(todo)
    retry: deque[Item] = deque()  # in flight when a worker died: run again, one at a time
    solo = 0  # how many of the next images run alone, to find which one kills its worker
    pending: deque[tuple[Item, Future]] = deque()
    ctx = _context()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(str(zoo_dir), threads))

    pool = new_pool()
    finished = False
    try:
        while True:
            limit = 1 if solo else 2 * workers
            while len(pending) < limit and not should_stop():
                it = retry.popleft() if retry else next(items, None)
                if it is None:
                    break
                pending.append((it, pool.submit(_work, it, out_dir, opts)))
            if not pending:
                break
            it, fut = pending[0]
            try:
                rec, rows, note = fut.result()
            except BrokenProcessPool:
                _stop_pool(pool, kill=True)
                pool = new_pool()
                if solo and len(pending) == 1:  # it alone killed a fresh worker: that file is the culprit
                    pending.popleft()
                    solo -= 1
                    rec = {"key": key(it.path), "image": str(it.path), "faces": 0, "error": CRASHED}
                    yield it, rec, [], f"skipped: {shown(it.path)}: {CRASHED}"
                    continue
                retry.extendleft(reversed([i for i, _ in pending]))
                solo = max(solo, len(retry))
                pending.clear()
                continue
            pending.popleft()
            if solo:
                solo -= 1
            yield it, rec, rows, note
        finished = True
    finally:
        _stop_pool(pool, kill=not finished)
