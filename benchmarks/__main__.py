"""``python -m benchmarks``: how fast EmotionLens trains, labels and starts on this machine, as one table.

The numbers in docs/benchmarks.md come from here (``--update-readme``), never typed by hand, and every row names
what it ran (config, photo, threads) so a reader can reproduce it. Training rows need torch; the others need
only the app, so the table can be made on a user's machine too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import Row, log, machine_line, markdown_table

PARTS = ("train", "label", "engine", "video", "saliency", "startup", "bundle")
README_BLOCK = "bench"


def build_parser() -> argparse.ArgumentParser:
    """The command line, separate so tests and docs can show the help text."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure training images/s per model, labelling ms per face (each model and the ensemble), "
        "detection + labelling ms per photo at 240p/720p/1080p (Haar and MTCNN), the ensemble's cost over its "
        "models' and app.batch's ms per photo with 1 and 2 workers (engine), the saliency maps' ms per face on and "
        "their cost off (saliency), video frames/s from decoding to frames.csv (video), app start-up and the bundle "
        "size on this machine, and print them as a Markdown "
        "table of medians over repeated runs.",
        epilog="examples:\n"
        "  OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks --threads 1\n"
        "  python -m benchmarks --only label --only startup --quick --zoo models_zoo\n"
        "  python -m benchmarks --only train --device cuda   # training images/s on the GPU\n"
        "  python -m benchmarks --update-readme      # table into docs/benchmarks.md (bench markers)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", action="append", choices=PARTS, metavar="{" + ",".join(PARTS) + "}",
                   help="run only this part; repeat for several (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer repeats: a rough table in about a minute")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for torch and onnxruntime (default: each one's own, as training and the app use)")
    p.add_argument("--zoo", metavar="DIR",
                   help="model folder with manifest.json (default: $EMOTIONLENS_ZOO, else models_zoo/)")
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="where the training rows train: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps; "
                   "e.g. --device cuda --only train (default: auto)")
    p.add_argument("--compile", action="store_true", help="training rows with torch.compile (slower start)")
    p.add_argument("--models", default="cnn,ff,resnet18", metavar="LIST",
                   help="comma-separated models for the training rows (default: cnn,ff,resnet18)")
    p.add_argument("--photo", type=Path, metavar="FILE",
                   help="photo with faces for the 240p/720p/1080p rows (default: ../shared/data/photos/"
                   "two_people.jpg or obama.jpg, else the bundled sample on a larger canvas)")
    p.add_argument("--update-readme", action="store_true",
                   help=f"also write the table into docs/benchmarks.md between <!-- {README_BLOCK}:start --> and "
                   f"<!-- {README_BLOCK}:end -->")
    p.add_argument("--readme", type=Path, default=None, help=argparse.SUPPRESS)  # default: the page with the block
    return p


def run(args: argparse.Namespace) -> list[Row]:
    """Every selected part in a fixed order, cheapest-to-skip first, so the table's row order is stable."""
    parts = args.only or list(PARTS)
    rows: list[Row] = []
    if "train" in parts:
        from benchmarks.train_speed import MODELS, train_rows

        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
        rows += train_rows(models, quick=args.quick, threads=args.threads, device=args.device,
                           compile_model=args.compile)
    if "label" in parts:
        from benchmarks.label_speed import label_rows

        rows += label_rows(args.zoo, threads=args.threads, quick=args.quick, photo=args.photo)
    if "engine" in parts:  # the ensemble's cost ratios and end-to-end batch speed (issue 14)
        from benchmarks.batch_speed import batch_rows
        from benchmarks.label_speed import ensemble_cost_rows

        rows += ensemble_cost_rows(args.zoo, quick=args.quick) + batch_rows(quick=args.quick)
    if "video" in parts:  # video labelling frames/s against per-frame photo labelling (issue 26)
        from benchmarks.video_speed import video_rows

        rows += video_rows(args.zoo, quick=args.quick, threads=args.threads)
    if "saliency" in parts:  # the maps' cost, on and off (issue 16)
        from benchmarks.saliency_speed import saliency_rows

        rows += saliency_rows(args.zoo, quick=args.quick)
    if "startup" in parts:
        from benchmarks.startup import startup_rows

        rows += startup_rows(args.zoo, quick=args.quick)
    if "bundle" in parts:
        from benchmarks.bundle import bundle_rows

        rows += bundle_rows()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run, print ``Measured on`` plus the table on stdout, optionally write README; exit 2 on bad input."""
    args = build_parser().parse_args(argv)
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    if args.photo is not None and not args.photo.is_file():
        print(f"error: {args.photo}: photo not found", file=sys.stderr)
        return 2
    try:
        rows = run(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = machine_line(args.threads) + "\n\n" + markdown_table(rows)
    print(text)
    if args.update_readme:
        from training.report import block_file, replace_block

        try:
            args.readme = args.readme or block_file(README_BLOCK)
            replace_block(args.readme, README_BLOCK, text)
            log(f"table written into {args.readme}")
        except (OSError, ValueError) as e:
            log(f"README not updated: {' '.join(str(e).split())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
