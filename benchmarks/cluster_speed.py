"""What the Dask path costs: ms per photo with ``--cluster local:N`` against ``--workers N`` on the same folder.

One folder (``--folder``, else ``--photos`` variants of the bundled sample portrait at 256x256: enough photos
that a pool's start-up is not the measurement, which the 7 photos of ``../shared/data/photos`` would be)
is labelled with ``--workers 1``, ``--workers 2``, ``--cluster local:1`` and
``--cluster local:2``, interleaved round by round so the machine's load hits every setting alike. Each timing
runs in a fresh subprocess through ``app.batch._cli.label_items`` (decode, detect, label, write labels.csv and the
journal), as ``benchmarks/batch_speed.py`` does.

What is timed: the labelling loop. For ``--workers`` that includes starting the worker pool (its parent labels
meanwhile, so little is lost). For ``--cluster`` the LocalCluster's start and each worker's model loading are
once per run, not per photo, and are reported apart ("start-up s"): the workers are warmed with one task each
before the clock starts. The last column is the cluster's ms/photo over ``--workers`` with the same number of
processes (issue 28's target: at most 1.05). ``--update-docs`` writes the table, with the command and the
machine, between the ``cluster-speed`` markers of docs/batch.md.
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

from benchmarks.common import ROOT, log

N_PHOTOS = 40
SETTINGS = ("workers 1", "workers 2", "cluster local:1", "cluster local:2")
DOCS_BLOCK = "cluster-speed"

# Runs in a fresh process; prints {"seconds", "startup_s", "photos", "faces"}.
_TIMER = r"""
import json, sys, time, tempfile
from pathlib import Path
from app.batch import _cli as batch
from app.models import Labeler
from app.outputs import labels_header
folder, mode, n, chunk = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
labeler = Labeler(None)  # the CLI's defaults: one process may use every core; several use one each
cluster, startup = None, 0.0
if mode == "cluster":
    from app.batch._cluster import Cluster, WorkerSetup, worker_labeler, worker_threads
    t = time.perf_counter()
    setup = WorkerSetup(str(labeler.zoo_dir.resolve()), threads=worker_threads(f"local:{n}"), batch_faces=True)
    cluster = Cluster(f"local:{n}", setup, chunk=chunk)
    cluster.threads()
    warm = [cluster.client.submit(lambda s: worker_labeler(s) is not None, cluster.setup, workers=[w], pure=False)
            for w in cluster.client.scheduler_info()["workers"]]
    cluster.client.gather(warm)
    startup = time.perf_counter() - t
with tempfile.TemporaryDirectory() as out:
    out = Path(out)
    scan = batch.scan_inputs([folder], out, False)
    labeler.label_file(scan.items[0].path)  # lazy cascade loading, untimed
    done = batch.prepare_outputs(out, labels_header(labeler.models), False)
    t = time.perf_counter()
    recs, _ = batch.label_items(labeler, scan.items, out, annotate=False, done=done, threads=1,
                                workers=n if mode == "workers" else 1, cluster=cluster)
    seconds = time.perf_counter() - t
if cluster is not None:
    cluster.close()
print(json.dumps({"seconds": seconds, "startup_s": startup, "photos": len(recs),
                  "faces": sum(r["faces"] for r in recs)}))
"""


def make_folder(root: Path, n: int) -> Path:
    """``n`` variants of the sample portrait (256x256, slightly rotated and lit apart: not byte-equal copies)."""
    from PIL import Image, ImageEnhance

    from benchmarks.label_speed import SAMPLE

    src = Image.open(SAMPLE).convert("RGB").resize((256, 256))
    folder = root / "portraits"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = ImageEnhance.Brightness(src.rotate((i % 7) - 3, fillcolor=(128, 128, 128))).enhance(0.9 + 0.01 * (i % 20))
        im.save(folder / f"{i:03d}.jpg", quality=90)
    return folder


def time_setting(folder: Path, setting: str, chunk: int) -> dict:
    """One timing of ``setting`` ("workers N" or "cluster local:N") in a fresh subprocess."""
    mode, n = setting.split()[0], setting.split(":")[-1].split()[-1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", _TIMER, str(folder), mode, n, str(chunk)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{setting}: timing failed ({tail})")
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(folder: Path, rounds: int, settings: tuple[str, ...], chunk: int) -> dict[str, list[dict]]:
    """Interleaved timings: every round times each setting once, in order."""
    results: dict[str, list[dict]] = {}
    for r in range(rounds):
        for s in settings:
            res = time_setting(folder, s, chunk)
            results.setdefault(s, []).append(res)
            log(f"round {r + 1}: {s}: {1000 * res['seconds'] / res['photos']:.1f} ms/photo, {res['faces']} faces, "
                f"start-up {res['startup_s']:.1f} s")
    return results


def _ms(runs: list[dict]) -> float:
    return 1000 * statistics.median(r["seconds"] / r["photos"] for r in runs)


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| setting | ms/photo (median) | start-up s | ms/photo with start-up | photos | faces "
             "| cluster / --workers, same processes |",
             "|---|---|---|---|---|---|---|"]
    for s, runs in results.items():
        ratio = "—"
        if s.startswith("cluster"):
            twin = f"workers {s.split(':')[-1]}"
            if twin in results:
                ratio = f"{_ms(runs) / _ms(results[twin]):.3f}"
        startup = statistics.median(r["startup_s"] for r in runs)
        whole = 1000 * statistics.median((r["seconds"] + r["startup_s"]) / r["photos"] for r in runs)
        lines.append(f"| {s} | {_ms(runs):.1f} | {startup:.1f} | {whole:.1f} | {runs[0]['photos']} | "
                     f"{runs[0]['faces']} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster_speed",
        description="Time app.batch per photo with --workers 1/2 and --cluster local:1/2 (Dask LocalCluster) on one "
        "folder, interleaved, and print the medians and the cluster / --workers ratio.",
        epilog="examples:\n"
        "  nice -n 5 python -m benchmarks.cluster_speed --rounds 3\n"
        "  python -m benchmarks.cluster_speed --folder ../shared/data/photos --rounds 5 --chunk 16\n"
        "  python -m benchmarks.cluster_speed --photos 8 --rounds 1   # a quick check that it runs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="photos to label (default: --photos generated portraits); example: --folder "
                   "../shared/data/photos")
    p.add_argument("--photos", type=int, default=N_PHOTOS, metavar="N",
                   help=f"generated portraits when there is no --folder (default {N_PHOTOS}); example: --photos 80")
    p.add_argument("--rounds", type=int, default=3, metavar="N",
                   help="interleaved rounds; medians are reported (default 3; example: --rounds 5)")
    p.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="--cluster-chunk: photos per task (default: app.batch._cluster's, 8; example: --chunk 16)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), metavar="S",
                   help="what to time, each 'workers N' or 'cluster local:N' (default: all four; example: "
                   "--settings 'workers 2' 'cluster local:2')")
    p.add_argument("--update-docs", action="store_true",
                   help=f"also write the table between the {DOCS_BLOCK} markers of docs/batch.md (example: "
                   "--rounds 5 --update-docs on an idle machine)")
    args = p.parse_args(argv)
    from app.batch._cluster import DEFAULT_CHUNK

    chunk = args.chunk or DEFAULT_CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or make_folder(Path(tmp), args.photos)
        log(f"folder: {folder}")
        results = measure(folder, args.rounds, tuple(args.settings), chunk)
    text = table(results)
    print(text)
    if args.update_docs:
        from benchmarks.common import cpu_name
        from training.report import block_file, replace_block

        what = f"--folder {args.folder}" if args.folder else f"--photos {args.photos}"
        note = (f"\n\n`python -m benchmarks.cluster_speed {what} --rounds {args.rounds} --chunk {chunk}`: medians "
                f"of {args.rounds} interleaved rounds, {cpu_name()}, {os.cpu_count()} logical cores.")
        replace_block(block_file(DOCS_BLOCK), DOCS_BLOCK, text + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
