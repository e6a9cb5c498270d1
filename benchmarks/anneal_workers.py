"""Wall time of the same annealing search with ``--workers 1`` and ``--workers N``: what parallel trials buy.

Each run is the real command (``python -m training.anneal``) in a fresh run folder under a temporary log root,
timed from process start to exit, so start-up, data loading and worker spawning are all counted. Runs are
interleaved (1, N, N, 1, 1, N, ...) so a machine whose load drifts treats both settings alike; the load average
is printed before and after. Note that the two settings run *different* searches (N trials per temperature
step is another chain than one), with the same total trial count. Example::

    nice -n 5 python -m benchmarks.anneal_workers --data ../shared/data/fer2013 --iterations 4 --subset 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT


def load_line() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} logical cores"


def time_search(data: str, model: str, iterations: int, subset: int, workers: int, seed: int, log_root: Path,
                extra: list[str]) -> float:
    """Seconds one complete search takes; raises RuntimeError with the command's last error line if it fails."""
    cmd = [sys.executable, "-m", "training.anneal", "--model", model, "--data", data, "--iterations",
           str(iterations), "--subset", str(subset), "--workers", str(workers), "--seed", str(seed), "--fresh",
           "--quiet", "--no-tensorboard", "--device", "cpu", "--log-root", str(log_root), *extra]
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {last}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.anneal_workers",
        description="Time the same annealing search (same trial count) with --workers 1 and --workers N, "
        "interleaved, and print each run's wall time, the medians and their ratio.",
        epilog="example:\n  nice -n 5 python -m benchmarks.anneal_workers --data ../shared/data/fer2013 "
        "--iterations 4 --subset 1000 --repeats 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013"), metavar="PATH",
                   help="FER2013 folder or csv, e.g. ../shared/data/fer2013 (default: that path)")
    p.add_argument("--model", default="ff", help="model to tune, e.g. cnn (default: ff)")
    p.add_argument("--iterations", type=int, default=4, metavar="N", help="trials per search (default: 4)")
    p.add_argument("--subset", type=int, default=1000, metavar="N", help="training images per trial (default: 1000)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="the parallel setting to compare with 1 "
                   "(default: 2)")
    p.add_argument("--repeats", type=int, default=1, metavar="N", help="runs of each setting, interleaved "
                   "(default: 1)")
    p.add_argument("--seed", type=int, default=1, help="search seed (default: 1)")
    p.add_argument("extra", nargs="*", help="more training.anneal options after --, e.g. -- --max-epochs 4")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.data).exists():
        print(f"error: no data at {args.data}; give --data PATH", file=sys.stderr)
        return 2
    order = [w for k in range(args.repeats) for w in ((1, args.workers) if k % 2 == 0 else (args.workers, 1))]
    times: dict[int, list[float]] = {1: [], args.workers: []}
    print(f"before: {load_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="anneal-workers-") as tmp:
        # one untimed load so that neither setting pays for building the dataset cache
        warm = f"from training.datasets import load_fer2013; load_fer2013({args.data!r})"
        subprocess.run([sys.executable, "-c", warm], cwd=ROOT, check=True)
        for w in order:
            t = time_search(args.data, args.model, args.iterations, args.subset, w, args.seed, Path(tmp), args.extra)
            times[w].append(t)
            print(f"--workers {w}: {t:.1f} s", flush=True)
    print(f"after: {load_line()}")
    one, many = statistics.median(times[1]), statistics.median(times[args.workers])
    print(f"\n{args.model}, {args.iterations} trials on {args.subset} images, {args.repeats} run(s) each: "
          f"median --workers 1 {one:.1f} s, --workers {args.workers} {many:.1f} s, "
          f"--workers {args.workers} takes {many / one:.2f}x the wall time of --workers 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
