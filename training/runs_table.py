"""Tables of finished training runs, rendered from their committed run folders into the documentation.

A run folder (``logs/<model>-<time>/``) keeps what the run measured: ``config.json``, one ``history.json`` row
per epoch (wall seconds, images/s, PublicTest accuracy, the raw weights' accuracy beside the averaged ones),
and, once exported and scored, ``metrics.json`` (PrivateTest, single pass and flip TTA). Rendering the pages'
run tables from those files needs no retraining and gives the same text every time, so the documentation
carries no hand-typed score or epoch time. Example::

    python -m training.runs_table --update-docs
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from training.report import ROOT, _ingredients, _pct, block_file, replace_block


def _load(run_dir: Path, name: str) -> dict | list:
    path = run_dir / name
    if not path.is_file():
        raise ValueError(f"{run_dir}: no {name} (a training run folder keeps config.json and history.json, "
                         "and metrics.json once exported)")
    return json.loads(path.read_text())


def _history(run_dir: Path) -> list[dict]:
    history = _load(run_dir, "history.json")
    if not history:
        raise ValueError(f"{run_dir}: history.json has no finished epoch yet")
    return history


def _best(history: list[dict]) -> dict:
    """The epoch the run kept: the highest PublicTest accuracy, the earliest of ties (as training keeps it)."""
    return max(history, key=lambda h: (h["val_acc"], -h["epoch"]))


def _run_facts(history: list[dict], metrics: dict) -> tuple[dict, float, str]:
    """A finished run's best epoch, its minutes of training and how its exported weights are stored."""
    minutes = sum(h["seconds"] for h in history) / 60
    return _best(history), minutes, metrics.get("manifest_metrics", {}).get("weights", "fp32")


def _standard_error(n: int, what: str) -> str:
    """The note under a scores table: the largest standard error of an accuracy over ``n`` faces."""
    return (f"\nOne standard error of an accuracy measured on {n:,} faces ({what}) is at most "
            f"sqrt(0.25 / {n:,}) = {100 * math.sqrt(0.25 / n):.2f} points.")


def scores_table(run_dirs: list[Path]) -> str:
    """One row per run: recipe, best PublicTest epoch (from history.json) and the exported model's PrivateTest
    scores (metrics.json), then the standard error that says which differences the splits can tell apart."""
    rows = ["| run | model | recipe | epochs | minutes | best PublicTest (epoch) | PrivateTest | PrivateTest, flip TTA "
            "| exported weights |", "|---|---|---|---|---|---|---|---|---|"]
    sizes = set()
    first: dict[str, dict] = {}  # per model: the first row's config, against which a changed weight decay is named
    for run_dir in run_dirs:
        cfg, history = _load(run_dir, "config.json"), _history(run_dir)
        metrics = _load(run_dir, "metrics.json")
        private = metrics["private_test"]
        sizes.update({private["n"], metrics.get("public_test", private)["n"]})
        recipe = _ingredients(cfg, first.setdefault(cfg["model"], cfg))
        best, minutes, weights = _run_facts(history, metrics)
        rows.append(f"| `{run_dir.name}` | {cfg['model']} | {recipe} | {len(history)}/{cfg['epochs']} "
                    f"| {minutes:.0f} | {_pct(best['val_acc'])} ({best['epoch']}) | {_pct(private['accuracy'])} "
                    f"| {_pct(private.get('accuracy_tta'))} | {weights} |")
    rows.append(_standard_error(min(sizes), "each split's size"))
    return "\n".join(rows)


def ferplus_scores_table(run_dirs: list[Path]) -> str:
    """One row per run trained on FER+ targets (issue 25): its best PublicTest epoch under the FER+ majority
    (the truth it validated on, history.json) and the exported model's PrivateTest scores under both truths
    (metrics.json's ``ferplus_private_test`` and ``private_test``)."""
    rows = ["| run | model | trained on | recipe | epochs | minutes | best PublicTest, FER+ majority (epoch) "
            "| PrivateTest, FER+ majority | PrivateTest, FER+ majority, flip TTA | PrivateTest, FER2013 labels "
            "| exported weights |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    sizes = set()
    for run_dir in run_dirs:
        cfg, history = _load(run_dir, "config.json"), _history(run_dir)
        metrics = _load(run_dir, "metrics.json")
        ferplus, own = metrics["ferplus_private_test"], metrics["private_test"]
        sizes.add(ferplus["n"])
        best, minutes, weights = _run_facts(history, metrics)
        rows.append(f"| `{run_dir.name}` | {cfg['model']} | {cfg.get('labels', 'fer2013')} | {_ingredients(cfg)} "
                    f"| {len(history)}/{cfg['epochs']} | {minutes:.0f} | {_pct(best['val_acc'])} ({best['epoch']}) "
                    f"| {_pct(ferplus['accuracy'])} | {_pct(ferplus.get('accuracy_tta'))} | {_pct(own['accuracy'])} "
                    f"| {weights} |")
    rows.append(_standard_error(min(sizes), "PrivateTest's faces with a FER+ majority"))
    return "\n".join(rows)


def _host(history: list[dict]) -> str:
    names = {h.get("device_name") for h in history} - {None}
    return ", ".join(sorted(names)) or "not recorded"


def epoch_times_table(run_dirs: list[Path]) -> str:
    """Each run's epoch wall times from history.json: total, fastest, median and slowest epoch, and what all its
    epochs take at the fastest and at the median pace (what the run costs alone, not beside other jobs)."""
    rows = ["| run | model | host | epochs | minutes | fastest epoch (s) | median epoch (s) | slowest epoch (s) "
            "| median images/s | all epochs at the fastest pace (hours) | all epochs at the median pace (hours) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run_dir in run_dirs:
        cfg, history = _load(run_dir, "config.json"), _history(run_dir)
        seconds = [h["seconds"] for h in history]
        fast, median = min(seconds), statistics.median(seconds)
        ips = statistics.median(h["images_per_second"] for h in history)
        rows.append(f"| `{run_dir.name}` | {cfg['model']} | {_host(history)} | {len(history)} "
                    f"| {sum(seconds) / 60:.0f} | {fast:.0f} | {median:.0f} | {max(seconds):.0f} | {ips:.0f} "
                    f"| {fast * cfg['epochs'] / 3600:.1f} | {median * cfg['epochs'] / 3600:.1f} |")
    return "\n".join(rows)


def _at(history: list[dict], epoch: int, key: str = "val_acc") -> float | None:
    return next((h[key] for h in history if h["epoch"] == epoch and key in h), None)


def lead_table(pairs: list[tuple[Path, Path]], epochs: tuple[int, ...] = (1, 10)) -> str:
    """Epoch by epoch, a run against its baseline on PublicTest: at how many shared epochs the run was ahead,
    and both accuracies after the given epochs (a lead from the first epoch is not a lucky best epoch)."""
    rows = ["| run | baseline | epochs the run led | " + " | ".join(f"after epoch {e}" for e in epochs) + " |",
            "|---|---|---|" + "---|" * len(epochs)]
    for base_dir, run_dir in pairs:
        base, run = _history(base_dir), _history(run_dir)
        shared = [(b["val_acc"], r["val_acc"]) for b, r in zip(base, run, strict=False)]
        led = sum(r > b for b, r in shared)
        cells = []
        for e in epochs:
            b, r = _at(base, e), _at(run, e)
            cells.append("—" if b is None or r is None else f"{_pct(r)} vs {_pct(b)}")
        rows.append(f"| `{run_dir.name}` | `{base_dir.name}` | {led} of {len(shared)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def averaging_table(run_dirs: list[Path], last: int = 5) -> str:
    """What weight averaging added in each run, epoch by epoch: the averaged weights' PublicTest accuracy minus
    the raw weights' (history.json's ``val_acc`` and ``val_acc_raw``)."""
    rows = [f"| run | epochs the averaged weights led | averaged minus raw after epoch 1 (points) "
            f"| averaged minus raw, last {last} epochs (points) |", "|---|---|---|---|"]
    for run_dir in run_dirs:
        gaps = [100 * (h["val_acc"] - h["val_acc_raw"]) for h in _history(run_dir) if "val_acc_raw" in h]
        if not gaps:
            raise ValueError(f"{run_dir}: history.json has no val_acc_raw (the run did not average its weights)")
        tail = gaps[-last:]
        rows.append(f"| `{run_dir.name}` | {sum(g > 0 for g in gaps)} of {len(gaps)} | {gaps[0]:+.1f} "
                    f"| {min(tail):+.1f} to {max(tail):+.1f} |")
    return "\n".join(rows)


# Where label_ablation_table reads each run's PublicTest scores under both truths, written by
# ``python -m training.evaluate RUN/best.pt --data DATA --split val --ferplus VOTES --out RUN/publictest``.
PUBLICTEST = "publictest"


def label_ablation_table(run_dirs: list[Path]) -> str:
    """One row per run of a label-source ablation (issue 25): what it was trained on (labels, contempt rule,
    not-a-face images kept or dropped) and its best epoch's PublicTest accuracy against both truths, FER2013's
    own labels (all faces) and the FER+ majority (the faces that have one), from ``RUN/publictest/``."""
    rows = ["| run | model | trained on | contempt | not-a-face images | epochs | PublicTest, FER2013 labels "
            "| PublicTest, FER+ majority |", "|---|---|---|---|---|---|---|---|"]
    sizes = set()
    for run_dir in run_dirs:
        cfg, history = _load(run_dir, "config.json"), _history(run_dir)
        own = _load(run_dir / PUBLICTEST, "metrics.json")
        ferplus = _load(run_dir / PUBLICTEST / "ferplus", "metrics.json")
        sizes.update({own["n"], ferplus["n"]})
        labels = cfg.get("labels", "fer2013")
        contempt = cfg.get("contempt", "drop") if labels != "fer2013" else "—"
        nonfaces = ("kept" if cfg.get("keep_nonfaces") else "dropped") if cfg.get("ferplus") else "kept (no votes)"
        rows.append(f"| `{run_dir.name}` | {cfg['model']} | {labels} | {contempt} | {nonfaces} "
                    f"| {len(history)}/{cfg['epochs']} | {_pct(own['accuracy'])} ({own['n']:,} faces) "
                    f"| {_pct(ferplus['accuracy'])} ({ferplus['n']:,} faces) |")
    rows.append(_standard_error(min(sizes), "the smaller truth's share of PublicTest"))
    return "\n".join(rows)


def _logs(*names: str) -> list[Path]:
    return [ROOT / "logs" / n for n in names]


# The documentation's run tables: block name -> (what renders it, from which committed run folders).
BLOCKS: dict[str, Callable[[], str]] = {
    "run-times": lambda: epoch_times_table(_logs(
        "cnn-20261123-232819", "cnn-20261124-164241", "ff-20261124-145615", "ff-20261124-165448",
        "resnet18-20261124-003121", "resnet18-20261124-223215", "resnet18-20261204-144107")),
    "run-scores": lambda: scores_table(_logs(
        "cnn-20261123-232819", "cnn-20261124-164241", "ff-20261124-002101", "ff-20261124-145615",
        "ff-20261124-165448", "resnet18-20261124-003121", "resnet18-20261204-144107", "resnet18-20261124-223215")),
    "run-leads": lambda: lead_table([
        (ROOT / "logs" / "cnn-20261123-232819", ROOT / "logs" / "cnn-20261124-164241"),
        (ROOT / "logs" / "resnet18-20261124-003121", ROOT / "logs" / "resnet18-20261124-223215")]),
    "run-averaging": lambda: averaging_table(_logs("cnn-20261124-164241", "resnet18-20261124-223215")),
    "ferplus-runs": lambda: ferplus_scores_table(_logs(
        "cnn-20261205-075350", "ff-20261205-130900", "resnet18-20261205-130857")),
    "label-ablations": lambda: label_ablation_table(_logs(
        "ff-20261205-141523", "ff-20261205-143120", "ff-20261205-144334", "ff-20261205-183742",
        "ff-20261205-183749")),
}
TABLES = {"scores": scores_table, "ferplus-scores": ferplus_scores_table, "epoch-times": epoch_times_table,
          "averaging": averaging_table,
          "labels": label_ablation_table}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.runs_table",
        description="Render the documentation's tables of finished training runs (scores, epoch times, "
        "epoch-by-epoch leads, what weight averaging added) from the committed run folders under logs/, "
        "without training anything. With no option, print every block.",
        epilog="examples:\n"
        "  python -m training.runs_table --update-docs            # rewrite every run table in docs/\n"
        "  python -m training.runs_table --block run-scores       # print one block\n"
        "  python -m training.runs_table --table scores logs/cnn-20261123-232819 logs/cnn-20261124-164241",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--block", choices=sorted(BLOCKS), action="append",
                   help="only this documentation block (repeatable), e.g. --block run-times (default: all)")
    p.add_argument("--table", choices=sorted(TABLES),
                   help="instead: print this table for the RUN_DIR folders given, e.g. --table epoch-times "
                   "logs/ff-20261124-165448 (writes nothing)")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", type=Path,
                   help="training run folders for --table, e.g. logs/cnn-20261124-164241")
    p.add_argument("--update-docs", action="store_true",
                   help="also write each block between its <!-- NAME:start --> and <!-- NAME:end --> markers in "
                   "README.md or docs/*.md, e.g. --update-docs --block run-leads")
    args = p.parse_args(argv)
    if bool(args.table) != bool(args.run_dirs):
        p.error("--table and RUN_DIR go together, e.g. --table scores logs/cnn-20261124-164241")
    if args.table and (args.block or args.update_docs):
        p.error("--table prints an ad hoc table; --block and --update-docs are for the documentation's blocks")
    try:
        if args.table:
            print(TABLES[args.table](args.run_dirs))
            return 0
        for name in args.block or BLOCKS:
            text = BLOCKS[name]()
            if args.update_docs:
                replace_block(block_file(name), name, text)
            print(f"<!-- {name} -->\n{text}\n")
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
