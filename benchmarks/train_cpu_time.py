"""CPU seconds per training image: a before/after measure that other programs' load does not distort.

Wall-clock images/s (``python -m benchmarks``) is what a user sees, but on a shared machine it swings 2x
with the load. The CPU time a single-threaded run spends per image barely moves, so comparing two
checkouts, or channels_last and torch.compile on and off, is done with this: one thread, the model's
config from ``training/configs``, random faces, median over the timed epochs after a warm-up (which also
absorbs torch.compile's compile time). Run it against any checkout (``--repo``), e.g.::

    python benchmarks/train_cpu_time.py --model cnn --repo ../main      # before
    python benchmarks/train_cpu_time.py --model cnn                     # after (this checkout)
    python benchmarks/train_cpu_time.py --model cnn --no-channels-last
    python benchmarks/train_cpu_time.py --model cnn --compile
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/train_cpu_time.py", description=__doc__.split("\n\n")[0],
                                epilog="example: python benchmarks/train_cpu_time.py --model cnn --repo ../main")
    p.add_argument("--model", default="cnn", choices=["cnn", "ff", "resnet18"], help="which config (default: cnn)")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                   help="the checkout whose training code to time (default: this one)")
    p.add_argument("--batches", type=int, default=4, help="batches per epoch (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=4, help="epochs; the first is a warm-up (default: %(default)s)")
    p.add_argument("--no-channels-last", action="store_true", help="contiguous tensors instead of channels_last")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (needs this checkout's fit)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(args.repo).resolve()))
    import torch

    torch.set_num_threads(1)
    import training.train as tt
    from benchmarks.train_speed import load_config, synthetic_fer

    d, _ = load_config(args.model, Path(args.repo) / "training" / "configs")
    d.update(augmented=None, limit=None, epochs=args.epochs, patience=10**6)
    if args.no_channels_last:
        d["channels_last"] = False
    cfg = tt.TrainConfig.from_dict(d)
    cpu: list[float] = []
    real = tt.train_epoch

    def timed(*a):  # noqa: ANN002, ANN202
        start = time.process_time()
        out = real(*a)
        cpu.append(time.process_time() - start)
        return out

    tt.train_epoch = timed
    kw = {"compile_model": True} if args.compile else {}
    if args.compile and "compile_model" not in inspect.signature(tt.fit).parameters:
        p.error(f"{args.repo}: this checkout's fit() has no torch.compile option")
    with tempfile.TemporaryDirectory() as tmp:
        tt.fit(cfg, synthetic_fer(cfg.batch_size * args.batches), Path(tmp), progress=False, tensorboard=False, **kw)
    per_image = statistics.median(cpu[1:]) / (cfg.batch_size * args.batches)
    print(f"{args.model} ({tt.__file__}): {1 / per_image:.1f} images per CPU-second, 1 thread, "
          f"channels_last={cfg.channels_last}, compile={args.compile}, {len(cpu) - 1} timed epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
