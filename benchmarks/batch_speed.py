"""End-to-end batch speed: ms per photo for ``app.batch``'s labelling loop over a folder, decoding included.

Three folders are generated from a real photo: 40 small one-face portraits (256x256, the sample), and 40
frames each at 1080p and 240p (``label_speed.frame``). Each is labelled by ``app.batch._cli.label_items`` (the
loop the CLI and the GUI run: decode, detect, crop, label, write labels.csv and the journal) with one worker
(in this process) and with ``--workers 2`` (worker processes, their start-up included).

``python -m benchmarks.batch_speed --baseline DIR`` also times another checkout of this repository (e.g. the
main branch before a change) on the same folders, interleaved round by round with this one, so the machine's
load hits both alike; it prints both and their ratio. Each timing runs in a fresh subprocess that imports
the checkout's own ``app``, loads the models, labels one image untimed (lazy loading), then times the loop.

``--update-docs`` (with ``--one-thread``) writes docs/batch.md's speed table, between its ``batch-speed``
markers: per folder, 1 worker, the cores it keeps busy, 2 workers, 1 worker on one thread (the CPU work a photo
costs) and the best any split of that work could reach on this machine's cores, with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, Row, log

N_PHOTOS = 40
FOLDERS = {"portrait 256x256": (256, 256), "1080p": (1920, 1080), "240p": (426, 240)}

# Runs inside the checkout being timed; prints {"seconds": ..., "cpu_seconds": ..., "photos": ..., "faces": ...}.
# threads 1: OpenCV and ONNX Runtime on one thread each, so CPU time = wall time = the work a photo costs.
_TIMER = r"""
import json, sys, time, tempfile
from pathlib import Path
import cv2
try:  # app/ as packages (issue 38)
    from app.batch import _cli as batch
    from app.models import Labeler
    from app.outputs import labels_header
except ImportError:  # an older checkout, timed for a before/after comparison: the flat app/
    from app import batch
    from app.labeler import Labeler
    from app.labels_csv import labels_header
folder, workers, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if threads == 1:
    cv2.setNumThreads(1)
labeler = Labeler(None, threads=threads or None)
with tempfile.TemporaryDirectory() as out:
    out = Path(out)
    scan = batch.scan_inputs([folder], out, False)
    labeler.label_file(scan.items[0].path)  # lazy cascade loading and first-run allocations, untimed
    done = batch.prepare_outputs(out, labels_header(labeler.models), False)
    kw = {"workers": workers} if workers > 1 else {}
    if kw and "workers" not in batch.label_items.__code__.co_varnames:
        print(json.dumps({"unsupported": True}))
        sys.exit(0)
    t, cpu = time.perf_counter(), time.process_time()
    recs, _ = batch.label_items(labeler, scan.items, out, annotate=False, done=done, **kw)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "photos": len(recs), "faces": sum(r["faces"] for r in recs)}))
"""


def make_folders(root: Path, n: int = N_PHOTOS) -> dict[str, Path]:
    """The three benchmark folders of ``n`` JPEGs each (quality 90, like a camera's), under ``root``."""
    from PIL import Image

    from app.core import load_image
    from benchmarks.label_speed import SAMPLE, default_photo, frame

    folders = {}
    for name, size in FOLDERS.items():
        src = SAMPLE if size[0] <= 256 else default_photo()
        rgb = load_image(src)
        img = frame(rgb, size, upscale=src.resolve() != SAMPLE.resolve() or size[0] <= 256)
        folder = root / name.split()[0]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(img).save(folder / f"{i:03d}.jpg", quality=90)
        folders[name] = folder
    return folders


def time_folder(checkout: Path, folder: Path, workers: int, threads: int = 0) -> dict:
    """One timing in a fresh subprocess running ``checkout``'s code."""
    env = dict(os.environ, PYTHONPATH=str(checkout), EMOTIONLENS_ZOO=str(checkout / "models_zoo"))
    r = subprocess.run([sys.executable, "-c", _TIMER, str(folder), str(workers), str(threads)], cwd=checkout,
                       env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{checkout}: timing failed ({tail})")
    return json.loads(r.stdout.strip().splitlines()[-1])


DOCS_BLOCK = "batch-speed"
ONE_THREAD = "1, one thread"  # the setting that measures what a photo costs: 1 worker, OpenCV and ORT on one thread


def _setting(workers: int | str) -> tuple[int, int]:
    """(workers, threads) for the timer: threads 0 is each component's default."""
    return (1, 1) if workers == ONE_THREAD else (int(workers), 0)


def measure(checkouts: dict[str, Path], rounds: int, workers: tuple[int | str, ...] = (1, 2),
            n: int = N_PHOTOS) -> dict[tuple[str, str, int | str], list[dict]]:
    """Interleaved timings: every round times each (folder, workers, checkout) once, in that nesting order.

    A ``workers`` entry is a worker count or ``ONE_THREAD``."""
    results: dict[tuple[str, str, int | str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_folders(Path(tmp), n)
        for r in range(rounds):
            for fname, folder in folders.items():
                for w in workers:
                    for cname, checkout in checkouts.items():
                        res = time_folder(checkout, folder, *_setting(w))
                        if res.get("unsupported"):
                            continue  # a baseline without --workers
                        results.setdefault((cname, fname, w), []).append(res)
                        log(f"round {r + 1}: {cname} {fname} workers={w}: {1000 * res['seconds'] / res['photos']:.1f}"
                            f" ms/photo, {res['faces']} faces")
    return results


def _ms(runs: list[dict]) -> float:
    return 1000 * statistics.median(r["seconds"] / r["photos"] for r in runs)


def cores_busy(runs: list[dict]) -> float | None:
    """Median CPU seconds per wall second of the timed process's own threads (a 1-worker run: all the labelling
    is in it; worker processes' CPU is not counted). None for a checkout that does not report CPU time."""
    if not all("cpu_seconds" in r for r in runs):
        return None
    return statistics.median(r["cpu_seconds"] / r["seconds"] for r in runs)


def batch_rows(quick: bool = False) -> list[Row]:
    """ms per photo with 1 and 2 workers for each folder, the 2-worker speed-up, and its ceiling.

    The ceiling: with 1 worker on one thread a photo's wall time is the CPU work it costs (checked: CPU time /
    wall time ~1.00), and on ``cores`` cores no way of sharing that work out (threads or processes) can label
    faster than that work / ``cores``."""
    rounds = 1 if quick else 3
    try:
        res = measure({"this": ROOT}, rounds, workers=(1, 2, ONE_THREAD))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        return [Row("batch labelling", None, "ms/photo", "", f"skipped: {' '.join(str(e).split())[:200]}")]
    rows = []
    cores = os.cpu_count() or 1
    for fname in FOLDERS:
        one, two, work = (_ms(res[("this", fname, w)]) for w in (1, 2, ONE_THREAD))
        faces = res[("this", fname, 1)][0]["faces"]
        busy = cores_busy(res[("this", fname, 1)])
        rows.append(Row(f"batch, {N_PHOTOS} photos {fname}, 1 worker", one, "ms/photo", str(rounds),
                        f"app.batch loop: decode + detect + label + write; {faces} faces found"
                        + (f"; {busy:.2f} of {cores} cores busy" if busy else "")))
        rows.append(Row(f"batch, {N_PHOTOS} photos {fname}, --workers 2", two, "ms/photo", str(rounds),
                        f"{one / two:.2f}x the 1-worker speed; worker start-up included"))
        rows.append(Row(f"batch, {N_PHOTOS} photos {fname}, 1 worker on one thread", work, "ms/photo", str(rounds),
                        f"OpenCV and ONNX Runtime on one thread: the CPU work a photo costs; on {cores} cores no "
                        f"split of it beats {work / cores:.1f} ms/photo, {one / (work / cores):.2f}x the 1-worker "
                        "speed"))
    return rows


def docs_table(res: dict[tuple[str, str, int | str], list[dict]], n: int, cores: int) -> str:
    """docs/batch.md's speed table from :func:`measure`'s results for this checkout with 1, 2 and ONE_THREAD.

    "best possible": the one-thread CPU work per photo shared perfectly over ``cores`` cores, and how many times
    faster than 1 worker that would be: the ceiling of any number of workers."""
    lines = [f"| {n} photos | 1 worker | cores busy | 2 workers | 1 worker on one thread | best possible on {cores} "
             "cores |", "|---|---|---|---|---|---|"]
    for fname in FOLDERS:
        if not all(("this", fname, w) in res for w in (1, 2, ONE_THREAD)):
            continue
        one, two, work = (_ms(res[("this", fname, w)]) for w in (1, 2, ONE_THREAD))
        busy = cores_busy(res[("this", fname, 1)])
        best = work / cores
        lines.append(f"| {fname} | {one:.1f} ms/photo | {'—' if busy is None else f'{busy:.2f}'} | {two:.1f} ms/photo "
                     f"| {work:.1f} ms/photo | {best:.1f} ms/photo ({one / best:.2f}x) |")
    return "\n".join(lines)


def update_docs(text: str, command: str, machine: str) -> Path:
    """Write ``text`` and a note naming ``command`` and ``machine`` (``machine_line``, taken before the timings, so
    its load average is the machine's own) between docs/batch.md's batch-speed markers."""
    from training.report import block_file, replace_block

    page = block_file(DOCS_BLOCK)
    replace_block(page, DOCS_BLOCK, f"{text}\n\n`{command}`: medians of the interleaved rounds. {machine}")
    return page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.batch_speed",
        description="Time app.batch's labelling loop per photo on generated folders (256x256 portraits, 1080p, "
        "240p), with 1 and 2 workers; with --baseline, also another checkout, interleaved, and the ratios.",
        epilog="examples:\n  nice -n 5 python -m benchmarks.batch_speed --baseline ../main --rounds 3\n"
        "  python -m benchmarks.batch_speed --rounds 3 --one-thread --update-docs   # idle machine: docs/batch.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--baseline", type=Path, metavar="DIR", help="another checkout to compare with (its app/ is used; "
                   "example: --baseline ../main)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3; "
                   "example: --rounds 5)")
    p.add_argument("--photos", type=int, default=N_PHOTOS, help=f"photos per folder (default {N_PHOTOS}; example: "
                   "--photos 2 for a quick check that it runs)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time (default 1 2; "
                   "example: --workers 1 2 4)")
    p.add_argument("--one-thread", action="store_true",
                   help="also time 1 worker with OpenCV and ONNX Runtime on one thread each: the CPU work a photo "
                   "costs, which bounds what any number of workers can reach (example: --one-thread)")
    p.add_argument("--update-docs", action="store_true",
                   help=f"with --one-thread and workers 1 and 2: also write the speed table between the {DOCS_BLOCK} "
                   "markers of docs/batch.md (example: --rounds 3 --one-thread --update-docs on an idle machine)")
    args = p.parse_args(argv)
    if args.update_docs and not (args.one_thread and {1, 2} <= set(args.workers)):
        p.error("--update-docs needs --one-thread and --workers 1 2 (the table's columns)")
    from benchmarks.common import machine_line

    machine = machine_line(None)  # before the timings: the load average it gives is other work's, not ours
    checkouts = {"this": ROOT}
    if args.baseline is not None:
        checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
    settings: tuple[int | str, ...] = (*args.workers, *((ONE_THREAD,) if args.one_thread else ()))
    res = measure(checkouts, args.rounds, settings, args.photos)
    print("| folder | workers | " + " | ".join(f"{c} ms/photo" for c in checkouts) + " | faces | cores busy (this) |"
          + (" baseline / this |" if args.baseline else ""))
    print("|---|---|" + "---|" * len(checkouts) + "---|---|" + ("---|" if args.baseline else ""))
    for fname in FOLDERS:
        for w in settings:
            ms = {c: _ms(res[(c, fname, w)]) if (c, fname, w) in res else None for c in checkouts}
            faces = "/".join(str(res[(c, fname, w)][0]["faces"]) for c in checkouts if (c, fname, w) in res)
            cells = " | ".join("—" if v is None else f"{v:.1f}" for v in ms.values())
            busy = cores_busy(res[("this", fname, w)]) if w in (1, ONE_THREAD) and ("this", fname, w) in res else None
            line = f"| {fname} | {w} | {cells} | {faces} | {'—' if busy is None else f'{busy:.2f}'} |"
            if args.baseline:
                ratio = ms["baseline"] / ms["this"] if ms.get("baseline") and ms.get("this") else None
                line += f" {ratio:.2f}x |" if ratio else " — |"
            print(line)
    if args.update_docs:
        text = docs_table(res, args.photos, os.cpu_count() or 1)
        command = " ".join(["python -m benchmarks.batch_speed",
                            *[a for a in (argv if argv is not None else sys.argv[1:]) if a != "--update-docs"]])
        print(f"wrote the {DOCS_BLOCK} block of {update_docs(text, command, machine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
