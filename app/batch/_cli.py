"""Label every face in files and folders of photos: ``python -m app.batch INPUT... --out DIR``.

Writes ``DIR/labels.csv`` (one row per face), ``DIR/summary.json``, with ``--explain`` one PNG of saliency maps
per face under ``DIR/explained/``, and with ``--annotate`` annotated copies
under ``DIR/annotated/`` mirroring the input tree. Built for long unattended runs: a bad file costs one line
of output, never the run; labels.csv grows image by image so a kill loses at most the images in progress,
and ``--resume`` picks up where the last run stopped.

This module is the command line and the labelling loop the GUI shares; the parts live beside it:
``app.batch._scan`` walks the inputs, ``app.batch._journal`` writes and resumes the outputs, ``app.batch._workers``
labels one image and runs the worker processes of ``--workers``, ``app.batch._cluster`` sends the work to a Dask cluster
(``--cluster``) and ``app.core._onnx`` picks ONNX Runtime's execution provider (``--provider``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from app.batch._journal import (
    LABELS,
    SUMMARY,
    OutputWriter,
    RunSettings,
    UsageError,
    check_resume_settings,
    prepare_outputs,
    remove_stale_temp_files,
    write_summary,
)
from app.batch._scan import EXPLAINED, Item, Scan, scan_inputs
from app.batch._workers import MAX_WORKERS, Options, annotated_path, default_workers, label_one, ordered_results
from app.core import PROVIDER_CHOICES, ProviderError, key, readable_formats, shown
from app.detect import DETECTORS, load_detector
from app.models import ZOO_ENV, ZooError
from app.outputs import labels_header
from app.video import DETECT_EVERY, SMOOTH_S

PROG = "python -m app.batch"

if TYPE_CHECKING:
    from app.batch._cluster import Cluster
    from app.models import Labeler

EXIT_OK, EXIT_WRITE_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _StopFlag:
    """First Ctrl+C: finish the current image, save, stop. Second Ctrl+C: stop at once (still saving)."""

    def __init__(self) -> None:
        self.stop = False
        self._old = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\nstopping after the current image (Ctrl+C again to stop now)…", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run(args: argparse.Namespace) -> int:
    """The batch job; raises UsageError for problems that make the run impossible before it starts."""
    t_start = time.perf_counter()
    inputs = [Path(p) for p in args.inputs]
    missing = [str(p) for p in inputs if not os.path.lexists(p)]
    if missing:
        raise UsageError(f"input not found: {', '.join(missing)}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out_dir}: cannot create folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: folder is not writable")

    from app.models import Labeler

    workers = args.workers or default_workers()
    if args.cluster and (args.workers is not None):
        raise UsageError("--workers and --cluster: choose one (--cluster local:N starts N worker processes here)")
    try:  # with worker processes this copy only checks the zoo and names the columns: one thread is plenty
        # On a cluster the provider is the workers' (they may have GPUs this machine lacks): checked there.
        labeler = Labeler(zoo_dir=args.zoo, threads=args.threads if workers == 1 and not args.cluster else 1,
                          provider="cpu" if args.cluster else args.provider)
    except (ZooError, ProviderError) as e:
        raise UsageError(str(e)) from None
    try:
        load_detector(args.detector)
    except RuntimeError as e:  # a missing or corrupt detector file: one line naming it, before any photo
        raise UsageError(str(e)) from None

    scan = scan_inputs(inputs, out_dir, args.recursive)
    if args.annotate:
        originals = {it.path.resolve() for it in scan.items}
        for it in scan.items:
            target = annotated_path(out_dir, it).resolve()
            if target in originals:
                raise UsageError(
                    f"--out {shown(out_dir)}: the annotated copy of {shown(it.path)} would overwrite the input "
                    f"image {shown(target)}; choose another --out"
                )
    if args.explain:
        explained = (out_dir / EXPLAINED).resolve()
        for it in scan.items:
            if explained in it.path.resolve().parents:
                raise UsageError(f"--out {shown(out_dir)}: the saliency maps would be written among the input images "
                                 f"under {shown(out_dir / EXPLAINED)}; choose another --out")
    if not args.resume and (out_dir / LABELS).is_file() and (out_dir / LABELS).stat().st_size > 0:
        print(f"note: starting {shown(out_dir / LABELS)} afresh (add --resume to continue it instead)", file=sys.stderr)
    remove_stale_temp_files(out_dir)
    if args.resume:
        check_resume_settings(out_dir, {"eye_check": not args.no_eye_check, "tta": args.tta,
                                        "detector": args.detector, **_video_settings(args)})
    from app.video import is_video

    videos = [it for it in scan.items if is_video(it.path)]
    scan.items = [it for it in scan.items if not is_video(it.path)]
    if videos and args.cluster and args.cluster_send_bytes:
        raise UsageError(f"--cluster-send-bytes sends photos only; {len(videos)} video(s) such as "
                         f"{shown(videos[0].path)} need a path the workers share (label them without this option)")
    cluster = _connect(args, labeler) if args.cluster else None
    try:
        return _run_batch(args, scan, videos, labeler, out_dir, workers, cluster, t_start)
    finally:
        if cluster is not None:
            cluster.close()


def _connect(args: argparse.Namespace, labeler: Labeler) -> Cluster:
    from app.batch._cluster import Cluster, WorkerSetup, worker_threads

    setup = WorkerSetup(zoo_dir=str(labeler.zoo_dir.resolve()), threads=worker_threads(args.cluster, args.threads),
                        provider=args.provider,
                        batch_faces=True)
    print(f"connecting to the Dask cluster {args.cluster}…", file=sys.stderr)
    return Cluster(args.cluster, setup, send_bytes=args.cluster_send_bytes, chunk=args.cluster_chunk,
                   segment_s=args.cluster_segment)


def _run_batch(args: argparse.Namespace, scan: Scan, videos: list[Item], labeler: Labeler, out_dir: Path,
               workers: int, cluster: Cluster | None, t_start: float) -> int:
    """The labelling and summary of :func:`run`, after its checks (and with its cluster connected)."""
    from app.batch._videos import prepare_videos, video_summary

    done = prepare_outputs(out_dir, labels_header(labeler.models), args.resume)
    vouts = prepare_videos(out_dir, labeler, args.resume) if videos or args.resume else None
    resumed = sum(1 for it in scan.items if key(it.path) in done)
    to_go = len(scan.items) - resumed

    for e in scan.errors:
        print(f"skipped: {shown(e['image'])}: {e['reason']}", file=sys.stderr)
    if scan.skipped:
        print(f"skipped {len(scan.skipped)} file(s) that are not images (or links to ones already listed); "
              f"listed in {shown(out_dir / SUMMARY)}", file=sys.stderr)
    if resumed:
        print(f"resuming: {resumed} image(s) already done, {to_go} to go", file=sys.stderr)

    from tqdm import tqdm

    with (
        _StopFlag() as flag,
        tqdm(total=to_go, unit="img", desc="labelling", file=sys.stderr, dynamic_ncols=True) as bar,
    ):
        this_run, interrupted = label_items(
            labeler, scan.items, out_dir,
            eye_check=not args.no_eye_check,
            tta=args.tta,
            annotate=args.annotate,
            explain=args.explain,
            detector=args.detector,
            workers=workers,
            threads=args.threads,
            done=done,
            should_stop=lambda: flag.stop,
            progress=lambda i, n, name: bar.update(i - bar.n),
            log=lambda msg: bar.write(msg, file=sys.stderr),
            cluster=cluster,
        ) if scan.items else ([], False)
        bar.close()
        if videos and not interrupted:
            interrupted = _label_videos(labeler, videos, vouts, args, flag, cluster)
    args.workers = workers if cluster is None else cluster.threads(0)
    extra = {"videos": video_summary(vouts, videos), **_video_settings(args)} if vouts else {}
    extra["provider"] = args.provider if cluster is not None else labeler.provider
    if cluster is not None:
        extra["cluster"] = args.cluster
    summary = write_summary(out_dir, scan, done, this_run, labeler, RunSettings.from_args(args),
                            time.perf_counter() - t_start, interrupted, extra)
    print(
        f"{summary['labelled']} of {summary['images']} image(s) labelled, {summary['faces']} face(s); "
        f"{len(summary['no_face'])} without a face, {len(summary['errors'])} error(s) -> {shown(out_dir / LABELS)}"
    )
    if videos:
        v = summary["videos"]
        print(f"{v['done']} of {v['videos']} video(s) labelled, {v['frames']} frame(s), {v['tracks']} track(s); "
              f"{len(v['errors'])} error(s) -> {shown(out_dir / 'frames.csv')}, {shown(out_dir / 'tracks.csv')}")
    if interrupted:
        print(f"interrupted: rerun the same command with --resume to label the remaining "
              f"{summary['images'] - summary['done']} image(s)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _video_settings(args: argparse.Namespace) -> dict:
    return {"detect_every": args.detect_every, "smooth_s": args.smooth, "fps": args.fps}


def _label_videos(labeler: Labeler, videos: list[Item], vouts, args: argparse.Namespace, flag: _StopFlag,  # noqa: ANN001
                  cluster: Cluster | None = None) -> bool:
    """The videos of the batch, one progress bar (frames, with ETA) each; returns whether it was interrupted."""
    from tqdm import tqdm

    from app.batch._videos import label_videos
    from app.video import VideoOptions

    opts = VideoOptions(detect_every=args.detect_every, smooth_s=args.smooth, fps=args.fps, detector=args.detector,
                        eye_check=not args.no_eye_check, tta=args.tta)
    if cluster is not None:  # one task per whole video: one bar over the videos
        with tqdm(total=len(videos), unit="video", desc="videos", file=sys.stderr, dynamic_ncols=True) as bar:
            _, stopped = cluster.label_videos(labeler, videos, vouts, opts, args.annotate, lambda: flag.stop,
                                              log=lambda msg: bar.write(msg, file=sys.stderr),
                                              finished=lambda it: bar.update(1))
        return stopped
    bars: list = []

    def started(it: Item) -> None:
        for b in bars:
            b.close()
        bars[:] = [tqdm(total=None, unit="frame", desc=it.path.name[:30], file=sys.stderr, dynamic_ncols=True)]

    def progress(done: int, total: int | None, t: float) -> None:
        bar = bars[0]
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        _, stopped = label_videos(labeler, videos, vouts, opts, args.annotate, lambda: flag.stop,
                                  log=lambda msg: print(msg, file=sys.stderr), progress=progress, started=started)
    except KeyboardInterrupt:
        stopped = True
    finally:
        for b in bars:
            b.close()
    return stopped


def label_items(
    labeler: Labeler,
    items: Iterable[Item],
    out_dir: Path,
    *,
    eye_check: bool = True,
    tta: bool = False,
    annotate: bool = True,
    explain: bool = False,
    detector: str = DETECTORS[0],
    workers: int = 1,
    threads: int | None = None,
    done: Mapping[str, dict] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int, str], None] | None = None,
    log: Callable[[str], None] | None = None,
    cluster: Cluster | None = None,
) -> tuple[list[dict], bool]:
    """Label ``items`` into ``out_dir``'s labels.csv and journal (both made by ``prepare_outputs``, appended to).

    The one labelling loop of the batch CLI and the GUI's folder batch. Items already in ``done`` (a resumed
    run) are skipped. ``workers`` > 1 labels in that many processes (``app.batch._workers``); rows still come out in
    ``items`` order. ``should_stop`` is asked before each image starts; ``progress(i, n, name)`` is told as
    images finish and once at the end (``name`` ""); ``log`` gets one line per skipped image or failed
    annotated copy. A KeyboardInterrupt stops at once, keeping every image already written. Returns this run's
    journal records and whether it stopped before the end. ``cluster`` (an :class:`app.batch._cluster.Cluster`)
    labels on a Dask cluster instead of ``workers``, yielding the same results in the same order.
    """
    todo = [it for it in items if not done or key(it.path) not in done]
    opts = Options(eye_check=eye_check, tta=tta, annotate=annotate, detector=detector, explain=explain)
    records: list[dict] = []
    stopped = False
    if cluster is not None:
        results = cluster.ordered_results(todo, out_dir, opts, should_stop)
    elif workers > 1 and len(todo) > 1:
        results = ordered_results(todo, labeler, workers=min(workers, len(todo)), out_dir=out_dir, opts=opts,
                                  should_stop=should_stop, threads=threads or 1)
    else:
        results = _in_process(todo, labeler, out_dir, opts, should_stop)
    with OutputWriter(out_dir) as writer:
        try:
            if progress is not None and todo:
                progress(0, len(todo), todo[0].path.name)
            for it, rec, rows, note in results:
                if note and log is not None:
                    log(note)
                if it is None:
                    continue
                writer.add(rec, rows)
                records.append(rec)
                if progress is not None and len(records) < len(todo):
                    progress(len(records), len(todo), todo[len(records)].path.name)
        except KeyboardInterrupt:
            stopped = True
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # kills the workers if we stopped early
    stopped = stopped or len(records) < len(todo)
    if progress is not None:
        progress(len(records), len(todo), "")
    return records, stopped


def _in_process(todo: list[Item], labeler: Labeler, out_dir: Path, opts: Options, should_stop: Callable[[], bool]):
    """``label_one`` in this process, one image after the other: the GUI's way and ``--workers 1``."""
    for it in todo:
        if should_stop():
            return
        yield (it, *_label_one(it, labeler, out_dir, opts))


def _label_one(it: Item, labeler: Labeler, out_dir: Path, opts: Options):  # noqa: ANN202 - see label_one
    """Indirection the tests patch to watch (or interrupt) the in-process loop image by image."""
    return label_one(it, labeler, out_dir, opts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find every face in photos and label its emotion with every model of the zoo and their ensemble.\n"
            "Writes DIR/labels.csv, one row per face: image, face, x, y, w, h, then <model>_label,\n"
            "<model>_confidence for each model, then ensemble_label, ensemble_confidence; and\n"
            "DIR/summary.json: counts, images without a face, errors with their reasons."
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} holiday/ --out labelled/ --recursive --annotate\n"
            f"  {PROG} a.jpg b.png --out out/ --no-eye-check\n"
            f"  {PROG} holiday/ --out labelled/ --recursive --resume    # continue after Ctrl+C or a crash\n"
            f"  {PROG} holiday/ --out labelled/ --workers 2 --detector mtcnn   # two processes, same labels.csv\n"
            f"  {PROG} class_photo.jpg --out why/ --explain    # why/explained/: each face's saliency maps\n"
            f"  {PROG} interview.mp4 --out results/ --annotate   # frames.csv, tracks.csv, timelines/, annotated/\n"
            f"  {PROG} lectures/ --out results/ --fps 5 --resume   # long videos: 5 frames a second, resumable\n"
            f"  {PROG} affectnet/ --out labelled/ -r --cluster tcp://10.0.0.5:8786   # a Dask cluster\n"
            f"  {PROG} holiday/ --out labelled/ --cluster local:2 --provider auto   # a LocalCluster, GPU if any\n\n"
            "Videos (mp4, mov, m4v, avi, mkv, webm) write DIR/frames.csv (one row per tracked face per analysed\n"
            "frame: video, frame, time_s, track, box, each model's label, the ensemble's, the smoothed label and\n"
            "its seven probabilities), DIR/tracks.csv (one row per track: first/last second, dominant emotion,\n"
            "share of time per emotion) and DIR/timelines/<video>/ (a chart per track and an overview).\n\n"
            "Bad or non-image files (corrupt or truncated images, links that loop or lead nowhere, FIFOs,\n"
            "device files, unreadable folders) are skipped with a one-line reason, also listed in summary.json;\n"
            "they never stop the batch. labels.csv is the same, row for row, whatever --workers is.\n"
            "Exit status: 0 when every input was labelled or reported, 2 for usage errors (e.g. no model zoo),\n"
            "1 when the outputs cannot be written (disk full; what was written stays valid, use --resume),\n"
            "130 when stopped with Ctrl+C (what was done is saved; use --resume). DIR/.progress.jsonl records\n"
            "finished images for --resume; a run killed even with kill -9 resumes with every image labelled once."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image and video files and/or folders of them "
                   f"(this installation reads {', '.join(readable_formats())}; videos: mp4, mov, m4v, avi, mkv, "
                   "webm)")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder for labels.csv, summary.json and annotated/ (created if missing); "
                   "example: --out results/")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also label images in subfolders of INPUT folders (example: %(prog)s photos/ -r --out o/)")
    p.add_argument("--annotate", action="store_true",
                   help="also save a copy of each photo with numbered boxes and labels under DIR/annotated/, "
                   "mirroring the input folders; originals are never modified (example: --annotate)")
    p.add_argument("--explain", action="store_true",
                   help="also save one PNG per face under DIR/explained/ (<image name>.face<N>.png): the face's "
                   "crop and each model's saliency map for the class it predicted, side by side (README, 'Why this "
                   "label'); costs one more run of each model per face (example: --explain)")
    p.add_argument("--no-eye-check", action="store_true",
                   help="keep faces even when no eye is found in them: finds more turned/occluded faces but "
                   "also more false faces (example: --no-eye-check)")
    p.add_argument("--tta", action="store_true",
                   help="flip test-time augmentation: label each face and its mirror image and combine them; "
                   "slightly more accurate (README's results table, 'flip TTA' column), labelling takes about "
                   "twice as long; summary.json records it (example: --tta)")
    p.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                   help=f"face detector (default: {DETECTORS[0]}); summary.json records it and --resume refuses "
                   f"to mix detectors (example: --detector {DETECTORS[-1]})")
    p.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                   help=f"label in N worker processes, each with its own models (default: the number of cores, "
                   f"at most {MAX_WORKERS}; here {default_workers()}); rows come out in the same order whatever N "
                   "is; 1 labels in this process (example: --workers 1 on a busy machine)")
    p.add_argument("--detect-every", type=int, default=DETECT_EVERY, metavar="N",
                   help=f"videos: run the face detector on every N-th analysed frame and follow faces with the "
                   f"tracker in between (default: {DETECT_EVERY}, chosen by benchmarks/tracking.py; 1 detects on "
                   "every frame; example: --detect-every 1)")
    p.add_argument("--smooth", type=float, default=SMOOTH_S, metavar="SECONDS",
                   help=f"videos: time constant of each track's smoothed labels (frames.csv smooth_label and p_*; "
                   f"the raw labels stay beside them); 0 = off (default: {SMOOTH_S}; example: --smooth 1)")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="videos: analyse F frames per second instead of every frame, for long videos "
                   "(example: --fps 5)")
    p.add_argument("--resume", action="store_true",
                   help="skip images already labelled in DIR/labels.csv by an earlier (interrupted) run of the "
                   "same command; images that failed are tried again (example: rerun the command + --resume)")
    p.add_argument("--zoo", metavar="DIR", default=None,
                   help=f"model zoo folder with manifest.json (default: ${ZOO_ENV} or models_zoo/ beside the app; "
                   "example: --zoo models_zoo/)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads per model in each process (default: up to 4 with one worker, 1 per worker "
                   "with several; on --cluster local:N the cores divided by N, on a remote cluster 1 per task); "
                   "example: --threads 1 on a busy machine")
    p.add_argument("--provider", choices=PROVIDER_CHOICES, default="cpu",
                   help="ONNX Runtime execution provider for the emotion models (detectors stay on the CPU): cpu "
                   "(default), cuda (needs onnxruntime-gpu), coreml (macOS), directml (Windows, "
                   "onnxruntime-directml), or auto = the first of cuda, directml, coreml installed, else cpu; one "
                   "that is not installed is an error naming what is; with --cluster it is checked on the workers "
                   "(example: --provider cuda)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="label on a Dask distributed cluster (pip install 'emotionlens[cluster]'): the scheduler's "
                   "address, e.g. tcp://10.0.0.5:8786 (start it with 'dask scheduler', workers with 'dask worker "
                   "ADDRESS --nthreads 1'), or local:N for N single-threaded worker processes on this machine. "
                   "Photos go in chunks of --cluster-chunk; each worker loads the models once; this machine alone "
                   "writes the outputs, the same rows in the same order as a local run, and --resume and Ctrl+C "
                   "work as locally; a task whose worker dies is run again on another. Videos: one whole video per "
                   "task, or one task per segment of a video longer than --cluster-segment; a video stopped "
                   "midway is labelled again from its start on --resume. --annotate/--explain pictures are drawn "
                   "on the workers and written here (example: --cluster local:2)")
    p.add_argument("--cluster-send-bytes", action="store_true",
                   help="with --cluster: the workers do not see this machine's files; send each photo's bytes "
                   "with its task and the model zoo once to every worker (videos are refused: they need a "
                   "shared path); example: --cluster tcp://gpu-box:8786 --cluster-send-bytes")
    p.add_argument("--cluster-chunk", type=int, default=None, metavar="N",
                   help="with --cluster: photos per task (default: 8); their faces are labelled in one model run "
                   "per model, larger chunks keep a GPU busier (example: --cluster-chunk 64 with --provider cuda)")
    p.add_argument("--cluster-segment", type=float, default=None, metavar="SECONDS",
                   help="with --cluster: a video longer than this is split at keyframes into segments of at most "
                   "SECONDS, one task each, so one long video uses every worker (default: 60; 0: whole videos "
                   "only, whose frames.csv and tracks.csv equal a local run's). Each segment first labels a few "
                   "seconds before it without writing them, and track numbers are stitched across boundaries; rows "
                   "can differ from a local run's only just after a boundary (smoothed probabilities in the last "
                   "decimal, a predicted box by a pixel; see the documentation). Example: --cluster local:4 "
                   "--cluster-segment 120")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m app.batch`` and ``emotionlens-batch``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.detect_every < 1:
        parser.error("--detect-every must be at least 1")
    if args.smooth < 0:
        parser.error("--smooth must be 0 or more seconds")
    if args.fps is not None and not args.fps > 0:
        parser.error("--fps must be more than 0")
    if args.cluster_chunk is not None and args.cluster_chunk < 1:
        parser.error("--cluster-chunk must be at least 1")
    if args.cluster_segment is not None and not args.cluster_segment >= 0:
        parser.error("--cluster-segment must be 0 or more seconds")
    if (args.cluster_send_bytes or args.cluster_chunk is not None or args.cluster_segment is not None) \
            and not args.cluster:
        parser.error("--cluster-send-bytes, --cluster-chunk and --cluster-segment need --cluster")
    if args.cluster_chunk is None:
        from app.batch._cluster import DEFAULT_CHUNK

        args.cluster_chunk = DEFAULT_CHUNK
    try:
        return run(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl+C while loading models or scanning: nothing written yet worth keeping
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # the output folder filled up or vanished mid-run; what was written stays valid
        where = f" {shown(e.filename)}" if getattr(e, "filename", None) else ""
        print(f"{PROG}: error: cannot write outputs{where} ({e.strerror or e}); rerun with --resume", file=sys.stderr)
        return EXIT_WRITE_FAILED

