"""Print (and optionally write into its documentation page) the results table of the bundled models.

Every number comes from ``models_zoo/manifest.json`` (written by the evaluation code) or is measured here
(ONNX size, ms per face), so the README never carries a hand-typed metric. Example::

    python -m training.report --update-readme
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.models import label_source
from app.models._zoo import LABEL_SOURCES

ROOT = Path(__file__).resolve().parents[1]


def ms_per_face(onnx_path: Path, repeats: int = 50) -> float:
    """Median latency of one 48x48 face through onnxruntime on one thread (what a laptop core gives)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 1, 48, 48), dtype=np.float32)
    for _ in range(5):
        sess.run(["logits"], {"input": x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(["logits"], {"input": x})
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def trained_on(training: dict) -> str:
    """Where a model trained, from its manifest record (training.summary writes device, device_name, processes):
    its training time means little without it."""
    device = str(training.get("device") or "")
    if not device:
        return "—"
    kind = "CPU" if device.startswith("cpu") else "GPU" if device.startswith("cuda") else device
    text = f"{kind} ({training['device_name']})" if training.get("device_name") else kind
    processes = training.get("processes") or 1
    return text + (f", {processes} processes" if processes > 1 else "")


# Published results against the FER+ majority, shown beside ours. Reported by the paper, not rerun here: VGG13
# on 64x64 FER+ faces, eight classes (contempt kept), the FER+ test split (PrivateTest), each the mean of
# several runs. Barsoum, Zhang, Canton Ferrer, Zhang: "Training Deep Networks for Facial Expression Recognition
# with Crowd-Sourced Label Distribution", ICMI 2016, arXiv:1608.01041, Table 2: the worst scheme (majority voting)
# and the best (probabilistic label drawing; the abstract: the two schemes that use the whole vote distribution,
# label drawing and cross-entropy, beat majority voting). Their other two schemes lie between these.
PUBLISHED = [
    ("VGG13, majority voting (Barsoum et al., ICMI 2016)", 0.8385),
    ("VGG13, probabilistic label drawing (Barsoum et al., ICMI 2016)", 0.8499),
]


def manifest_label_source(manifest: dict) -> str:
    """:func:`app.models.label_source` of a manifest read as JSON, whose model files may be gone (old versions read
    back from git by training.zoo_history): ``"FER+ votes"``, or each model's source when they differ."""
    return label_source([SimpleNamespace(name=m["name"], labels=m.get("labels", "fer2013"))
                         for m in manifest["models"]])


def results_table(zoo_dir: Path = ROOT / "models_zoo", prefix: str = "", root: Path = ROOT) -> str:
    """The zoo's results table against both truths, FER2013's own labels (all 3,589 faces of each test split)
    and the FER+ ten-person majority (the faces that have one; contempt dropped), then the published FER+
    results and the figures; ``prefix`` goes before the figures' repository-relative links (link_prefix)."""
    manifest = json.loads((zoo_dir / "manifest.json").read_text())
    rows = [
        "| model | trained against | PublicTest, FER2013 labels | PrivateTest, FER2013 labels | PrivateTest, "
        "flip TTA | PublicTest, FER+ majority | PrivateTest, FER+ majority | PrivateTest, FER+ majority, flip TTA "
        "| epochs | training time | trained on "
        "| images/s | parameters | ONNX size | weights | ms per face | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in manifest["models"]:
        met, tr = m["metrics"], m["training"]
        path = zoo_dir / m["file"]
        rows.append(
            f"| {m['display_name']} | {LABEL_SOURCES.get(m.get('labels', 'fer2013'), m.get('labels'))} "
            f"| {_pct(met.get('public_test_accuracy'))} | {_pct(met.get('private_test_accuracy'))} "
            f"| {_pct(met.get('private_test_accuracy_tta'))} | {_pct(met.get('ferplus_public_test_accuracy'))} "
            f"| {_pct(met.get('ferplus_private_test_accuracy'))} "
            f"| {_pct(met.get('ferplus_private_test_accuracy_tta'))} "
            f"| {tr.get('epochs', '—')} "
            f"| {tr.get('seconds', 0) / 60:.0f} min | {trained_on(tr)} | {tr.get('images_per_second', 0):.0f} "
            f"| {tr.get('parameters', 0) / 1e6:.2f} M | {path.stat().st_size / 2**20:.1f} MB "
            f"| {met.get('weights', 'fp32')} | {ms_per_face(path):.2f} | {tr.get('status', 'finished')} |"
        )
    ens = manifest.get("ensemble")
    if ens:
        w = ens.get("weights")
        members = " + ".join(f"{w[n]:.2f} {n}" if w else n for n in ens["models"])
        rows.append(
            f"| ensemble ({members}) | | {_pct(ens.get('public_test_accuracy'))} "
            f"| {_pct(ens.get('private_test_accuracy'))} | {_pct(ens.get('private_test_accuracy_tta'))} "
            f"| {_pct(ens.get('ferplus_public_test_accuracy'))} | {_pct(ens.get('ferplus_private_test_accuracy'))} "
            f"| {_pct(ens.get('ferplus_private_test_accuracy_tta'))} | | | | | | | | | |"
        )
    for name, acc in PUBLISHED:
        rows.append(f"| {name}, published | FER+ | | | | | {_pct(acc)} | | | | | | | | | | |")
    return "\n".join(rows) + "\n\n" + figures_table(manifest, prefix, root)


def figures_table(manifest: dict, prefix: str = "", root: Path = ROOT) -> str:
    """Each model's training curves and PrivateTest confusion matrices, linked from its manifest log folder
    (``root``-relative); the FER+ matrix only where the run folder has one (runs exported before FER+ do not)."""
    models = [m for m in manifest["models"] if m["training"].get("log_dir")]
    if not models:
        return ""
    rows = ["| | " + " | ".join(m["display_name"] for m in models) + " |", "|---|" + "---|" * len(models)]
    figures = [("training curves", "curves.png"), ("confusion matrix (PrivateTest, FER2013 labels)",
                                                   "confusion_matrix.png")]
    ferplus = "ferplus/confusion_matrix.png"  # training.export writes the FER+ truth's report files here
    has = {m["name"]: (root / m["training"]["log_dir"] / ferplus).is_file() for m in models}
    if any(has.values()):
        figures.append(("confusion matrix (PrivateTest, FER+ majority)", ferplus))
    for title, png in figures:
        cells = (f"![{m['display_name']} {title}]({prefix}{m['training']['log_dir']}/{png})"
                 if png != ferplus or has[m["name"]] else "—" for m in models)
        rows.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def headline(zoo_dir: Path = ROOT / "models_zoo") -> str:
    """README's one paragraph of results: how often the shipped ensemble agrees with each truth on PrivateTest,
    beside the published FER+ results, from the manifest (issue 25: README names the zoo's label source)."""
    manifest = json.loads((zoo_dir / "manifest.json").read_text())
    ens = manifest.get("ensemble", {})
    published = " to ".join(_pct(acc) for _, acc in PUBLISHED)
    text = (f"The shipped models (`{zoo_dir.name}/`) are trained on {manifest_label_source(manifest)}. On FER2013's "
            f"PrivateTest split, scored once, their ensemble agrees with the majority of ten FER+ labellers on "
            f"{_pct(ens.get('ferplus_private_test_accuracy'))} of faces (the published FER+ models score "
            f"{published}, Barsoum et al., ICMI 2016, on eight classes with contempt, so not like for like) and "
            f"with FER2013's own single labels on {_pct(ens.get('private_test_accuracy'))}; the two truths "
            "disagree on about a third of the faces.")
    return text


def anneal_table(run_dir: Path) -> str:
    """A search's trials.csv as Markdown, plus the command that produced it (from trials.json settings)."""
    import csv

    with open(run_dir / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    fixed = {"iteration", "status", "temperature", "val_accuracy", "acceptance_probability", "accepted",
             "best_so_far", "seconds", "epochs_run", "reason", "device"}
    params = [k for k in trials[0] if k not in fixed] if trials else []
    cols = ["trial", "T", *params, "val acc", "accepted", "best so far", "seconds"]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for t in trials:
        acc = t["val_accuracy"] or f"failed: {t['reason']}"
        accepted = "yes" if t["accepted"] in ("1", "True", "true") else "no"
        cells = [t["iteration"], t["temperature"], *(t[p] for p in params), acc, accepted, t["best_so_far"],
                 f"{float(t['seconds']):.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    total = sum(float(t["seconds"]) for t in trials)
    rows.append(f"\n{len(trials)} trials, {total / 60:.1f} min of training; run folder `{run_dir.name}`.")
    return "\n".join(rows)


def ablation_table(run_dirs: list[Path]) -> str:
    """The with/without-augmentation tables written by ``training.ablation``, one per run, with its config."""
    parts = []
    for run_dir in run_dirs:
        table = (run_dir / "ablation.md").read_text().strip()
        parts.append(f"Run folder `{run_dir.name}`:\n\n{table}")
    return "\n\n".join(parts)


def _ingredients(cfg: dict, base: dict | None = None) -> str:
    """What a run added to the plain recipe, in words, from its config.json; ``base`` is the config of the
    model's first row, against which a changed weight decay is named."""
    parts = []
    if base is not None and cfg.get("weight_decay") != base.get("weight_decay"):
        parts.append(f"weight decay {cfg.get('weight_decay', 0):g} (first row {base.get('weight_decay', 0):g})")
    if cfg.get("distill"):
        parts.append(f"distillation (alpha {cfg.get('distill_alpha', 0.5):g}, T {cfg.get('distill_temperature', 2):g}, "
                     f"teachers {cfg.get('distill_teachers', 'all')})")
    if cfg.get("ema"):
        parts.append(f"EMA {cfg['ema']:g}")
    if cfg.get("mix", "none") != "none":
        parts.append(f"{cfg['mix']} (alpha {cfg.get('mix_alpha', 0.2):g})")
    if cfg.get("model_params", {}).get("per_image"):
        parts.append("per-image standardisation")
    return ", ".join(parts) or "plain"


def recipe_table(run_dirs: list[Path]) -> str:
    """One row per training run folder: its ingredients, epochs, best PublicTest accuracy (and, with weight
    averaging, the raw weights' best), and the gain over the first folder given of the same model (its
    baseline)."""
    rows = ["| run | model | ingredients | epochs | best PublicTest | raw weights' best | vs the model's first row "
            "| minutes |", "|---|---|---|---|---|---|---|---|"]
    first: dict[str, tuple[float, dict]] = {}  # per model: the first row's best accuracy and config
    for run_dir in run_dirs:
        if not (run_dir / "config.json").is_file() or not (run_dir / "history.json").is_file():
            raise ValueError(f"{run_dir}: not a training run folder (needs config.json and history.json)")
        cfg = json.loads((run_dir / "config.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        if not history:
            raise ValueError(f"{run_dir}: history.json has no finished epoch yet")
        best = max(h["val_acc"] for h in history)
        raw = max((h["val_acc_raw"] for h in history if "val_acc_raw" in h), default=None)
        base_best, base_cfg = first.setdefault(cfg["model"], (best, cfg))
        minutes = sum(h["seconds"] for h in history) / 60
        what = _ingredients(cfg, base_cfg)
        rows.append(f"| `{run_dir.name}` | {cfg['model']} | {what} | {len(history)}/{cfg['epochs']} "
                    f"| {_pct(best)} | {_pct(raw)} | {100 * (best - base_best):+.2f} | {minutes:.0f} |")
    return "\n".join(rows)


DOC_FILES = ("README.md", "docs/*.md")  # where generated blocks may live


def block_file(name: str, root: Path = ROOT) -> Path:
    """The Markdown file (README.md or a page under docs/) holding the ``<!-- name:start -->`` block."""
    for pattern in DOC_FILES:
        for path in sorted(root.glob(pattern)):
            if f"<!-- {name}:start -->" in path.read_text():
                return path
    raise ValueError(f"no <!-- {name}:start --> block in README.md or docs/*.md")


def link_prefix(page: Path, root: Path = ROOT) -> str:
    """What repository-relative links need in front to work from ``page`` ("../" for a page under docs/)."""
    rel = Path(os.path.relpath(root, page.parent)).as_posix()
    return "" if rel == "." else rel + "/"


def replace_block(path: Path, name: str, text: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a Markdown file."""
    content = path.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(content):
        raise ValueError(f"{path}: no <!-- {name}:start --> ... <!-- {name}:end --> block")
    path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), content))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.report",
        description="Print the results table of the models in a zoo from its manifest, measuring ONNX size and "
        "ms per face here. --update-readme also writes README's headline paragraph from the same manifest.",
        epilog="examples:\n  python -m training.report --update-readme\n"
        "  python -m training.report --zoo models_zoo_fer2013 --block results-fer2013 --update-readme",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--zoo", default=str(ROOT / "models_zoo"), help="zoo folder (default: models_zoo/)")
    p.add_argument("--anneal", metavar="RUN_DIR", help="instead: the trials table of an annealing run folder")
    p.add_argument("--ablation", metavar="RUN_DIR", nargs="+",
                   help="instead: the tables of training.ablation run folders")
    p.add_argument("--recipe", metavar="RUN_DIR", nargs="+",
                   help="instead: what each training ingredient added, one row per run folder, the first being "
                   "the baseline, e.g. --recipe logs/ff-A logs/ff-B")
    p.add_argument("--block", default="results",
                   help="with --update-readme: the marker name the zoo's table goes into (default: results; "
                   "e.g. --zoo models_zoo_fer2013 --block results-fer2013)")
    p.add_argument("--update-readme", action="store_true",
                   help="also write the table into the page holding its results (or anneal-table, ablation, "
                   "recipe) markers")
    args = p.parse_args(argv)
    try:
        if args.anneal:
            table, block = anneal_table(Path(args.anneal)), "anneal-table"
        elif args.ablation:
            table, block = ablation_table([Path(d) for d in args.ablation]), "ablation"
        elif args.recipe:
            table, block = recipe_table([Path(d) for d in args.recipe]), "recipe"
        else:
            block = args.block
            table = results_table(Path(args.zoo), link_prefix(block_file(block)) if args.update_readme else "")
            if args.update_readme and block == "results":
                replace_block(block_file("headline"), "headline", headline(Path(args.zoo)))
        if args.update_readme:
            replace_block(block_file(block), block, table)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
