"""``python -m app.batch photos/ --out results/ --cluster ADDRESS``: label on a Dask distributed cluster, write here.

The work goes out as Dask tasks (``Client.submit``, with ``retries``); the outputs never leave this process.
Photos travel in chunks (:data:`DEFAULT_CHUNK` paths per task, ``--cluster-chunk``); each worker process
keeps one :class:`~app.models.Labeler` per (zoo, threads, provider) as an attribute of its
``distributed`` worker, so the models load once per worker, not once per task. Results come back as tasks
finish and are handed to :func:`app.batch._cli.label_items` **in input order**, exactly like ``--workers``'s
(``app.batch._workers.label_chunk`` is the same code that labels an image locally), so labels.csv, the
``.progress.jsonl`` journal, ``--resume`` and Ctrl+C are the local run's own: a chunk is yielded once, after
it finished, and the client alone writes it.

A worker lost mid-task (killed, out of memory, its machine gone) is Dask's to handle: the scheduler runs the
task again on another worker. A chunk that keeps killing workers (Dask gives up with ``KilledWorker`` after
``distributed.scheduler.allowed-failures`` deaths) is split into one task per image, and an image that still
kills its worker is reported as locally (``app.batch._workers.CRASHED``), but only after a confirmation run alone: Dask
blames every task its worker held when it died, so an innocent image that shared a worker with the culprit can
reach ``KilledWorker`` too. The confirmation waits until none of this run's other tasks is out, then sends that
image by itself; only a death there is its own. Any other task failure, after
:data:`RETRIES` retries elsewhere, is an environment problem (a worker cannot open the zoo...) and stops the
run with one line; what was written stays valid for ``--resume``.

Workers read the inputs from the paths the client sees (a shared file system) unless ``send_bytes``
(``--cluster-send-bytes``): then the client reads each file and sends its bytes with the task, and ships the
model zoo once to every worker (``Client.scatter(broadcast=True)``). ``--annotate`` and ``--explain``
pictures are drawn on the worker into a scratch folder and come back as bytes that the client writes.

Videos up to ``segment_s`` seconds long (``--cluster-segment``, default
:data:`app.batch._segments.DEFAULT_SEGMENT_S`; 0: every video) run as whole-video tasks: a worker labels the
whole video (tracking and smoothing exactly as a local run, so frames.csv and tracks.csv rows are identical)
and returns its frames.csv rows, tracks and charts. A longer video is split at keyframes into segments of at
most ``segment_s`` seconds, one task each, so one long video keeps every worker busy (app.batch._segments: each
segment warms up on a few seconds before it and writes only its own frames). The client lists the keyframes
from the packets (no decoding), gathers the segments in order, stitches their track numbers, appends the rows
and builds tracks.csv, the charts and any annotated copy from them with the local run's code
(``app.batch._videos.write_video_outputs``; the annotated copy of a segmented video is encoded here). Its rows
equal a local run's except in the first frames after each segment boundary, as app.batch._segments says. A
segment that fails as a video (a damaged file) has the video labelled whole instead, so errors read as locally.
The client appends videos in input order; a run stopped mid-video labels that video again from its start on
``--resume``. Videos need a shared path (``--cluster-send-bytes`` does not send them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.batch._journal import UsageError
from app.batch._scan import Item
from app.batch._workers import CRASHED, Options, annotated_path, explained_path, label_chunk
from app.core import key, shown
from app.outputs import TRACKS, VIDEO_PROGRESS, VIDEOS, FramesAppender

if TYPE_CHECKING:
    from app.batch._segments import Segment, SegmentResult
    from app.batch._videos import VideoOutputs
    from app.models import Labeler
    from app.video import FrameTable, VideoInfo, VideoOptions

LOCAL = "local:"
DEFAULT_CHUNK = 8  # photos per task: ~0.4 s of work at ~46 ms a photo, so a task's ~1-2 ms overhead is noise
RETRIES = 2  # a task that raised is tried this many more times, on any worker, before the run stops
CONNECT_TIMEOUT_S = 20.0
INSTALL = "pip install 'emotionlens[cluster]'"
Result = tuple[dict, list[list[Any]], str | None]


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to build its Labeler; the cache key of that Labeler on the worker."""

    zoo_dir: str
    threads: int = 1
    provider: str = "cpu"
    batch_faces: bool = False


@dataclass(frozen=True)
class ZooFiles:
    """A model zoo's files, sent once to every worker when they do not share the client's file system."""

    digest: str
    files: dict[str, bytes] = field(repr=False)


def zoo_files(zoo_dir: Path) -> ZooFiles:
    """Every file under ``zoo_dir`` by relative path (the manifest, the models, their explainers)."""
    files = {p.relative_to(zoo_dir).as_posix(): p.read_bytes()
             for p in sorted(zoo_dir.rglob("*")) if p.is_file()}
    h = hashlib.sha256()
    for name, blob in files.items():
        h.update(name.encode() + b"\0" + hashlib.sha256(blob).digest())
    return ZooFiles(h.hexdigest()[:16], files)


# ------------------------------------------------------------------------------------------- worker side

_lock = threading.Lock()


def _materialise(zoo: ZooFiles) -> Path:
    """The shipped zoo as a folder in the worker's temp dir (written once per machine, atomically)."""
    folder = Path(tempfile.gettempdir()) / f"emotionlens-zoo-{zoo.digest}"
    if not (folder / "manifest.json").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        for name, blob in zoo.files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(blob)
        try:
            os.replace(tmp, folder)
        except OSError:  # another worker on this machine got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def worker_labeler(setup: WorkerSetup, zoo: ZooFiles | None = None) -> Labeler:
    """This worker's Labeler for ``setup``, loaded by the first task that needs it and kept on the worker."""
    from distributed import get_worker

    worker = get_worker()
    with _lock:
        cache = getattr(worker, "emotionlens_labelers", None)
        if cache is None:
            cache = {}
            worker.emotionlens_labelers = cache
        ident = (setup, zoo.digest if zoo is not None else None)
        if ident not in cache:
            import cv2

            from app.models import Labeler

            cv2.setNumThreads(setup.threads)  # the worker's tasks are its parallelism, as with --workers
            zoo_dir = _materialise(zoo) if zoo is not None else setup.zoo_dir
            cache[ident] = Labeler(zoo_dir, threads=setup.threads, provider=setup.provider)
        return cache[ident]


def _scratch_files(scratch: Path, paths: list[Path]) -> dict[str, bytes]:
    return {p.relative_to(scratch).as_posix(): p.read_bytes() for p in paths if p.is_file()}


def photo_task(items: list[Item], data: list[bytes | str | None] | None, out_dir: str, opts: Options,
               setup: WorkerSetup, zoo: ZooFiles | None) -> list[tuple[dict, list[list[Any]], str | None, dict]]:
    """One chunk of photos on a worker: ``label_chunk``'s results plus each image's pictures as bytes."""
    labeler = worker_labeler(setup, zoo)
    if not (opts.annotate or opts.explain):
        return [(*r, {}) for r in label_chunk(items, labeler, Path(out_dir), opts, data=data,
                                              batch_faces=setup.batch_faces)]
    scratch = Path(tempfile.mkdtemp(prefix="emotionlens-out-"))
    try:
        got = label_chunk(items, labeler, scratch, opts, data=data, batch_faces=setup.batch_faces)
        out = []
        for it, (rec, rows, note) in zip(items, got, strict=True):
            paths = [annotated_path(scratch, it)] if opts.annotate else []
            paths += [explained_path(scratch, it, i) for i in range(1, rec["faces"] + 1)] if opts.explain else []
            out.append((_unscratch(rec, scratch, out_dir), rows, _unscratch(note, scratch, out_dir),
                        _scratch_files(scratch, paths)))
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unscratch(obj: Any, scratch: Path, out_dir: str) -> Any:
    """Messages name the client's output folder, not the worker's scratch one."""
    if isinstance(obj, str):
        return obj.replace(shown(scratch), shown(out_dir))
    if isinstance(obj, dict):
        return {k: _unscratch(v, scratch, out_dir) for k, v in obj.items()}
    return obj


def video_task(item: Item, opts: VideoOptions, annotate: bool, setup: WorkerSetup,
               out_dir: str) -> tuple[dict, bytes, dict]:
    """One whole video on a worker, into a scratch folder: its record, frames.csv rows and other files."""
    from app.batch._videos import label_one_video, prepare_videos
    from app.outputs import FRAMES

    labeler = worker_labeler(setup)
    scratch = Path(tempfile.mkdtemp(prefix="emotionlens-video-"))
    try:
        outs = prepare_videos(scratch, labeler, resume=False)
        start = (scratch / FRAMES).stat().st_size
        rec = label_one_video(labeler, item, outs, opts, annotate)
        assert rec is not None  # nothing asks it to stop
        rows = (scratch / FRAMES).read_bytes()[start:int(rec.get("frames_end", start))]
        skip = {FRAMES, TRACKS, VIDEOS, VIDEO_PROGRESS}
        made = [p for p in scratch.rglob("*") if p.relative_to(scratch).as_posix() not in skip]
        files = _scratch_files(scratch, made)
        return _unscratch(rec, scratch, out_dir), rows, files
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def segment_task(item: Item, opts: VideoOptions, seg: Segment, setup: WorkerSetup) -> SegmentResult:
    """One segment of a long video on a worker (app.batch._segments.run_segment)."""
    from app.batch._segments import run_segment

    return run_segment(worker_labeler(setup), item.path, opts, seg)


# ------------------------------------------------------------------------------------------- client side


def _wait_any(futures: list, timeout: float = 0.5) -> None:
    """Until one of ``futures`` finishes or ``timeout`` passes (so the caller checks ``should_stop`` often)."""
    from distributed import wait

    with contextlib.suppress(TimeoutError):
        wait([f for f in futures if not f.done()], timeout=timeout, return_when="FIRST_COMPLETED")


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Worker processes started meanwhile inherit SIGINT ignored: Ctrl+C in the terminal reaches the whole
    process group, and stopping is the client's decision (finish the chunks in flight, save, exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def worker_threads(spec: str, threads: int | None = None) -> int:
    """Threads per worker task, as ``--workers`` has them: ``threads`` if given; on ``local:N`` the cores divided
    by N (one process may use every core: OpenCV's detector and ONNX Runtime are threaded; measured with
    benchmarks/cluster_speed.py, local:1 with one thread labelled a portrait 1.45x slower than --workers 1);
    on a remote cluster 1 (``dask worker --nthreads 1 --nworkers <cores>`` is the documented set-up)."""
    if threads:
        return threads
    n_local = parse_cluster(spec)
    return max(1, (os.cpu_count() or 1) // n_local) if n_local else 1


def parse_cluster(spec: str) -> int | None:
    """``local:N`` -> N worker processes; an address -> None. Raises UsageError for ``local:`` without N >= 1."""
    if not spec.startswith(LOCAL):
        return None
    try:
        n = int(spec[len(LOCAL):])
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"--cluster {spec}: expected local:N with N >= 1 worker processes, e.g. local:2")
    return n


@dataclass
class _Video:
    """A video out on the cluster: one whole-video future, or one future per segment of ``plan``."""

    item: Item
    futures: list
    plan: list[Segment] = field(default_factory=list)
    info: VideoInfo | None = None
    table: FrameTable | None = None


@dataclass
class _Slot:
    items: list[Item]
    future: Any
    split: bool = False  # a retry of one image of a chunk that kept killing its workers
    resent: int = 0  # times sent again after the scheduler cancelled it
    confirm: bool = False  # one image sent alone, to tell the culprit from a neighbour that died with it


class Cluster:
    """A connection to a Dask cluster (or a LocalCluster it started) that labels batches for :mod:`app.batch`."""

    def __init__(self, spec: str, setup: WorkerSetup, *, send_bytes: bool = False, chunk: int = DEFAULT_CHUNK,
                 timeout: float = CONNECT_TIMEOUT_S, segment_s: float | None = None) -> None:
        try:
            import distributed
        except ImportError:
            if getattr(sys, "frozen", False):
                raise UsageError("--cluster runs from a Python install, not the desktop bundle (Dask workers import "
                                 f"the app's modules): {INSTALL}") from None
            raise UsageError(f"--cluster needs Dask distributed: {INSTALL}") from None
        n_local = parse_cluster(spec)
        self.spec, self.setup, self.send_bytes, self.chunk = spec, setup, send_bytes, max(1, chunk)
        if segment_s is None:
            from app.batch._segments import DEFAULT_SEGMENT_S

            segment_s = DEFAULT_SEGMENT_S
        self.segment_s = segment_s
        self._local = None
        try:
            if n_local is not None:
                import logging

                with _sigint_ignored():
                    self._local = distributed.LocalCluster(n_workers=n_local, threads_per_worker=1, processes=True,
                                                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
                self.client = distributed.Client(self._local, timeout=timeout)
            else:
                self.client = distributed.Client(spec, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as e:
            self.close()
            raise UsageError(f"--cluster {spec}: cannot reach a Dask scheduler there ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:120]}); start one with 'dask scheduler' and workers with "
                             "'dask worker ADDRESS --nthreads 1', or use --cluster local:N") from None
        self._zoo = None
        if send_bytes:
            self._zoo = self.client.scatter(zoo_files(Path(setup.zoo_dir)), broadcast=True, hash=False)

    def threads(self, wait_s: float = 10.0) -> int:
        """Tasks the cluster runs at once: its workers' threads, summed (waits up to ``wait_s`` for a first one)."""
        deadline = time.monotonic() + wait_s
        while not self.client.nthreads() and time.monotonic() < deadline:
            time.sleep(0.1)
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        return f"{self.spec} ({self.threads(0)} worker thread(s))"

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if self._local is not None:
            with contextlib.suppress(Exception):
                self._local.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- photos

    def _submit(self, items: list[Item], out_dir: Path, opts: Options) -> Any:
        data = [self._read(it) for it in items] if self.send_bytes else None
        return self.client.submit(photo_task, items, data, str(out_dir), opts, self.setup, self._zoo, pure=False,
                                  retries=RETRIES, key=f"emotionlens-photos-{uuid.uuid4().hex}")

    @staticmethod
    def _read(it: Item) -> bytes | str:
        from app.core import ImageError, read_image_bytes

        try:
            return read_image_bytes(it.path)
        except ImageError as e:
            return e.reason

    def ordered_results(self, todo: list[Item], out_dir: Path, opts: Options,
                        should_stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[Item, dict, list, Any]]:
        """``todo`` labelled on the cluster, yielded as ``app.batch._workers.ordered_results`` does: in order, as
        ``(item, record, rows, line to log or None)``, each image once, its pictures already written.

        At most twice the cluster's threads chunks run at once and a few more wait finished, so memory stays
        bounded and a stop is quick: after ``should_stop`` no chunk is sent, the ones sent are finished and
        yielded. Closing the generator early (Ctrl+C twice) cancels what is still out.
        """
        chunks = iter([todo[i:i + self.chunk] for i in range(0, len(todo), self.chunk)])
        threads = self.threads()
        running_cap, ahead_cap = 2 * threads, 8 * threads + 8
        pending: deque[_Slot] = deque()
        stopping = False
        try:
            while True:
                confirming = any(s.confirm for s in pending)  # nothing new goes out until the image is judged
                while not stopping and not confirming and len(pending) < ahead_cap and sum(
                        1 for s in pending if not s.future.done()) < running_cap:
                    if should_stop():
                        stopping = True
                        break
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    pending.append(_Slot(chunk, self._submit(chunk, out_dir, opts)))
                if not pending:
                    return
                head = pending[0]
                if head.confirm and head.future is None:  # send it alone, once everything else of ours is back
                    others = [s.future for s in pending if s.future is not None and not s.future.done()]
                    if others:
                        _wait_any(others)
                        continue
                    head.future = self._submit(head.items, out_dir, opts)
                if not head.future.done():
                    _wait_any([s.future for s in pending if s.future is not None])
                    continue
                pending.popleft()
                if head.future.status == "error":
                    yield from self._failed(head, pending, out_dir, opts)
                    continue
                if head.future.status == "cancelled":  # the scheduler lost it: send it again, same place
                    if head.resent >= RETRIES:
                        raise UsageError(f"--cluster {self.spec}: the scheduler keeps cancelling the tasks (did it "
                                         "restart or lose this client?); what was labelled is saved, rerun with "
                                         "--resume")
                    pending.appendleft(_Slot(head.items, self._submit(head.items, out_dir, opts), head.split,
                                             head.resent + 1, head.confirm))
                    continue
                for it, (rec, rows, note, files) in zip(head.items, head.future.result(), strict=True):
                    note = self._write_pictures(it, rec, files, out_dir) or note
                    yield it, rec, rows, note
                head.future.release()
        finally:
            if any(s.future is not None for s in pending):
                with contextlib.suppress(Exception):
                    self.client.cancel([s.future for s in pending if s.future is not None])

    def _failed(self, slot: _Slot, pending: deque[_Slot], out_dir: Path, opts: Options) -> Iterator:
        from distributed import KilledWorker

        exc = slot.future.exception()
        if not isinstance(exc, KilledWorker):
            raise UsageError(f"--cluster {self.spec}: a worker failed ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]}); what was labelled is saved, fix the "
                             "workers and rerun with --resume") from None
        if len(slot.items) > 1:  # one of these images kills its worker: find which, one task per image
            for it in reversed(slot.items):
                pending.appendleft(_Slot([it], self._submit([it], out_dir, opts), split=True))
            return
        if not slot.confirm:  # maybe it only shared a worker with the culprit: judge it alone
            pending.appendleft(_Slot(slot.items, None, split=True, confirm=True))
            return
        it = slot.items[0]
        rec = {"key": key(it.path), "image": str(it.path), "faces": 0, "error": CRASHED}
        yield it, rec, [], f"skipped: {shown(it.path)}: {CRASHED}"

    @staticmethod
    def _write_pictures(it: Item, rec: dict, files: dict[str, bytes], out_dir: Path) -> str | None:
        """The annotated copy and saliency maps a worker drew, written here; a failure is the image's
        ``annotate_error``/``explain_error``, worded as a local run's."""
        from app.core import atomic_path

        note = None
        for rel, blob in files.items():
            target = out_dir / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp, open(tmp, "xb") as f:
                    f.write(blob)
            except OSError as e:
                if rel.startswith("annotated/"):
                    rec["annotate_error"] = f"cannot write {shown(target)} ({e.strerror or e})"
                    note = f"warning: {shown(it.path)}: {rec['annotate_error']}"
                else:
                    rec["explain_error"] = f"cannot write the saliency maps ({e.strerror or e})"
                    note = f"warning: {shown(it.path)}: {rec['explain_error']}"
        return note

    # ---------------------------------------------------------------------------------------- videos

    def label_videos(self, labeler: Labeler, items: list[Item], outs: VideoOutputs, opts: VideoOptions,
                     annotate: bool, should_stop: Callable[[], bool], log: Callable[[str], None] | None = None,
                     finished: Callable[[Item], None] | None = None) -> tuple[list[dict], bool]:
        """``app.batch._videos.label_videos`` on the cluster: one task per video, or per segment of a video longer
        than ``segment_s``; about the cluster's threads tasks out at once; finished videos appended to frames.csv
        in input order. A stop (``should_stop``) cancels the videos still out: with no checkpoint inside a task,
        ``--resume`` labels them from their start. Returns this run's records and whether it stopped early."""
        from app.batch._videos import finish_video
        from app.outputs import FRAMES

        todo = [it for it in items if key(it.path) not in outs.done]
        frames_csv = outs.out_dir / FRAMES
        if outs.progress is not None:  # a local run stopped inside a video: that video is redone whole here
            size = frames_csv.stat().st_size
            start = int(outs.progress.get("start_bytes", size))
            if start < size:
                os.truncate(frames_csv, start)
            outs.progress = None
            with contextlib.suppress(FileNotFoundError):
                (outs.out_dir / VIDEO_PROGRESS).unlink()
        videos = iter(todo)
        pending: deque[_Video] = deque()
        records: list[dict] = []
        cap = self.threads()
        try:
            while True:
                # Videos cannot checkpoint: on a stop the ones out are dropped, and redone on --resume.
                if len(records) < len(todo) and should_stop():
                    return records, True
                while len(pending) < cap and sum(not f.done() for v in pending for f in v.futures) < cap:
                    it = next(videos, None)
                    if it is None:
                        break
                    pending.append(self._submit_video(it, opts, annotate, outs.out_dir))
                if not pending:
                    break
                head = pending[0]
                if not all(f.done() for f in head.futures):
                    _wait_any([f for v in pending for f in v.futures])
                    continue
                failed = next((f for f in head.futures if f.status == "error"), None)
                if failed is not None:
                    exc = failed.exception()
                    raise UsageError(f"--cluster {self.spec}: a worker failed on {shown(head.item.path)} "
                                     f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); rerun with "
                                     "--resume")
                if head.plan:
                    rec = self._stitched(head, labeler, outs, opts, annotate)
                    if rec is None:  # a segment failed as a video: label it whole, where errors read as locally
                        pending[0] = self._submit_video(head.item, opts, annotate, outs.out_dir, whole=True)
                        continue
                else:
                    rec, rows, files = head.futures[0].result()
                    with FramesAppender(frames_csv) as out:
                        out.write(rows)
                        out.sync()
                        rec["frames_end"] = out.size()
                    self._write_files(outs.out_dir, files)
                pending.popleft()
                for f in head.futures:
                    f.release()
                it = head.item
                if rec.get("error") and log is not None:
                    log(f"{'skipped' if rec.get('retry') else 'stopped early'}: {shown(it.path)}: {rec['error']}")
                finish_video(outs, rec)
                records.append(rec)
                if finished is not None:
                    finished(it)
        except KeyboardInterrupt:
            return records, True
        finally:
            if pending:
                with contextlib.suppress(Exception):
                    self.client.cancel([f for v in pending for f in v.futures])
        return records, len(records) < len(todo)

    def _submit_video(self, it: Item, opts: VideoOptions, annotate: bool, out_dir: Path,
                      whole: bool = False) -> _Video:
        """The video as one task, or, when longer than ``segment_s`` and splittable, one task per segment."""
        planned = None if whole else self._plan(it, opts)
        if planned is None:
            return _Video(it, [self.client.submit(video_task, it, opts, annotate, self.setup, str(out_dir), pure=False,
                                                  retries=RETRIES, key=f"emotionlens-video-{uuid.uuid4().hex}")])
        info, table, plan = planned
        futures = [self.client.submit(segment_task, it, opts, seg, self.setup, pure=False, retries=RETRIES,
                                      key=f"emotionlens-segment-{uuid.uuid4().hex}") for seg in plan]
        return _Video(it, futures, plan, info, table)

    def _plan(self, it: Item, opts: VideoOptions) -> tuple[VideoInfo, FrameTable, list[Segment]] | None:
        """The segments of a video longer than ``segment_s``; None to label it whole (short, unreadable, or
        without keyframes or timestamps to split it by)."""
        from app.batch._segments import plan_segments, warmup_s
        from app.video import VideoError, frame_table, probe

        if self.segment_s <= 0:
            return None
        try:
            info = probe(it.path, max_side=opts.max_side)
        except VideoError:
            return None
        if not info.duration_s or info.duration_s <= self.segment_s:
            return None
        table = frame_table(it.path)
        if table is None:
            return None
        every = None if opts.fps is None else 1.0 / opts.fps
        plan = plan_segments(table, self.segment_s, warmup_s(opts, info.fps), every)
        return (info, table, plan) if len(plan) > 1 else None

    def _stitched(self, video: _Video, labeler: Labeler, outs: VideoOutputs, opts: VideoOptions,
                  annotate: bool) -> dict | None:
        """A segmented video's stitched rows appended to frames.csv, its thumbnails, tracks and charts written;
        its record, or None when a segment does not fit the packet table (then nothing was written)."""
        from app.batch._segments import check_segment, stitch
        from app.batch._videos import save_thumbnail, timelines_dir, write_video_outputs
        from app.outputs import FRAMES
        from app.video import sampled

        assert video.info is not None and video.table is not None
        results = [f.result() for f in video.futures]
        taken = sampled(video.table.times_s, None if opts.fps is None else 1.0 / opts.fps)
        if not all(check_segment(r, s, video.table, taken) for r, s in zip(results, video.plan, strict=True)):
            return None
        it, info, done = video.item, video.info, stitch(results)
        frames_csv = outs.out_dir / FRAMES
        start = frames_csv.stat().st_size
        rec: dict[str, Any] = {"key": key(it.path), "video": str(it.path), "frames": done.frames, "tracks": [],
                               "error": None, "width": info.source_width, "height": info.source_height,
                               "duration_s": info.duration_s, "fps": info.fps, "segments": len(video.plan)}
        with FramesAppender(frames_csv) as out:
            out.append(done.rows)
            out.sync()
            rec["frames_end"] = out.size()
        for track, png in sorted(done.thumbs.items()):
            save_thumbnail(timelines_dir(outs.out_dir, it), track, png)
        write_video_outputs(labeler, it, outs.out_dir, rec, info.duration_s, start, opts, annotate)
        rec["seconds"] = done.seconds
        return rec

    @staticmethod
    def _write_files(out_dir: Path, files: dict[str, bytes]) -> None:
        from app.core import atomic_path

        for rel, blob in files.items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, open(tmp, "xb") as f:
                f.write(blob)
