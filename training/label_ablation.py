"""Which label objective stops the FER+ models leaning on the big classes? (issue 34)

Trains named arms of one base config one after another in one process, each in its own folder under ``--out``,
and renders their comparison from the files the runs leave (no checkpoint needed): every arm's best-epoch
PublicTest logits (``publictest_logits.npy``), and for the plain arm also inference-time prior correction,
``logits - tau * log(prior)`` with the training prior it saved (``prior.json``), at several tau. Each row is
scored under the FER+ majority with training.metrics: accuracy, mean class recall, macro-F1, KL(votes ||
predicted) and the ECE of the confidence (max softmax). The rule that picks among them is fixed in
docs/results.md ("Choosing the label objective") and applied by :func:`choose`. PrivateTest is never read.

The run is resumable by rerunning the same command: a finished arm (``done.json``, or a history as long as
its epochs) is skipped, an unfinished one continues from its ``last.pt``; an arm's checkpoints are deleted
only once it has finished. Examples::

    python -m training.label_ablation --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 \\
        --epochs 6 --threads 1
    python -m training.label_ablation --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 \\
        --table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from training.config import ROOT, TrainConfig, read_config_file
from training.device import DEVICE_HELP, DeviceError, resolve_device

# Each arm: TrainConfig fields changed from the base config. "plain" is today's soft-target loss.
ARMS: dict[str, dict] = {
    "plain": {},
    "logit-adjusted": {"logit_adjust": 1.0},
    "reweighted": {"target_reweight": 0.5},
}
PRIOR_TAUS = (0.25, 0.5, 0.75, 1.0)  # inference-time prior correction of the plain arm's logits
DEFAULT_FERPLUS = "../shared/data/ferplus/ferplus_votes.csv"
# The selection rule of docs/results.md, in points (percent of faces).
ACCURACY_WINDOW, RECALL_TIE = 1.0, 0.3
SIMPLER = {"plain": 0, "prior correction": 1, "changed loss": 2}  # a candidate's kind -> how simple it is


def arm_configs(base: TrainConfig, names: list[str], epochs: int | None, augmented: str | None,
                limit: int | None = None) -> dict[str, TrainConfig]:
    """Each named arm's config: the base with the arm's overrides, the run's epochs and training set."""
    out = {}
    for name in names:
        d = {**dataclasses.asdict(base), **ARMS[name], "augmented": augmented}
        if epochs is not None:
            d["epochs"] = epochs
        if limit is not None:
            d["limit"] = limit
        out[name] = TrainConfig.from_dict(d)
    return out


def finished(arm_dir: Path, cfg: TrainConfig) -> bool:
    """The arm ran to its end: ``done.json`` written, or (a run killed before writing it) a full history."""
    if (arm_dir / "done.json").exists():
        return True
    try:
        history = json.loads((arm_dir / "history.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return len(history) >= cfg.epochs


def check_same_config(arm_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume an arm folder made with another config (other epochs change the schedule)."""
    path = arm_dir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = dataclasses.asdict(cfg)
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{arm_dir} was started with another config ({', '.join(diff)} differ); rerun with the "
                         "same options or choose another --out")


def run_arms(configs: dict[str, TrainConfig], data, out: Path, device, progress: bool = True) -> None:  # noqa: ANN001
    """Train the arms in order, skipping finished ones and resuming interrupted ones."""
    from training.train import fit

    out.mkdir(parents=True, exist_ok=True)
    for name, cfg in configs.items():
        arm_dir = out / name
        if finished(arm_dir, cfg):
            print(f"{name}: finished earlier ({arm_dir}), skipped", flush=True)
        else:
            check_same_config(arm_dir, cfg)
            print(f"{name}: training in {arm_dir} ({cfg.epochs} epochs, overrides {ARMS[name] or 'none'})",
                  flush=True)
            result = fit(cfg, data, arm_dir, resume=True, progress=progress, tensorboard=False, device=device)
            (arm_dir / "done.json").write_text(json.dumps({
                "arm": name, "overrides": ARMS[name], "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
                "minutes": round(result.seconds / 60, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }, indent=2))
            print(f"{name}: best PublicTest accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}, "
                  f"{result.seconds / 60:.1f} min", flush=True)
        for pt in arm_dir.glob("*.pt"):  # only now: an unfinished arm keeps last.pt to resume from
            pt.unlink()


# ------------------------------------------------------------------------------------------ the table


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def publictest_truth(arm_dir: Path, data, votes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """(logits, FER+ majority labels, FER+ vote distributions) of an arm's saved PublicTest rows."""
    from training.ferplus import distribution, majority

    try:
        logits = np.load(arm_dir / "publictest_logits.npy")
        info = json.loads((arm_dir / "publictest.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{arm_dir}: no saved PublicTest outputs ({e}); was it trained by this version?") from None
    if not info.get("truth", "").startswith("FER+"):
        raise ValueError(f"{arm_dir}: validated on {info.get('truth')}, not the FER+ majority")
    v = votes.for_split(data.val)
    rows = np.arange(len(data.val)) if info["rows"] is None else np.asarray(info["rows"], np.int64)
    labels, dist = majority(v, "drop")[rows], distribution(v, "drop")[rows]
    if len(rows) != len(logits) or (labels < 0).any():
        raise ValueError(f"{arm_dir}: its PublicTest rows do not match these votes and data")
    return logits, labels, dist


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    kind: str  # plain | prior correction | changed loss
    scores: dict  # training.metrics.summary with kl and ece
    note: str = ""


def candidates(out: Path, names: list[str], data, votes) -> list[Candidate]:  # noqa: ANN001
    """Every arm found under ``out`` and the plain arm's prior-corrected logits, scored under the FER+ majority."""
    from training.metrics import summary

    found = []
    for name in names:
        arm_dir = out / name
        if not (arm_dir / "publictest_logits.npy").exists():
            continue
        logits, labels, dist = publictest_truth(arm_dir, data, votes)
        history = json.loads((arm_dir / "history.json").read_text())
        best = json.loads((arm_dir / "publictest.json").read_text())["epoch"]
        done = "" if (arm_dir / "done.json").exists() else ", unfinished"
        note = f"epoch {best} of {len(history)}{done}"
        found.append(Candidate(name, "plain" if not ARMS.get(name) else "changed loss",
                               summary(labels, _softmax(logits), dist), note))
        if name == "plain":
            prior = np.asarray(json.loads((arm_dir / "prior.json").read_text())["prior"], np.float64)
            for tau in PRIOR_TAUS:
                corrected = logits - tau * np.log(prior)
                found.append(Candidate(f"plain, prior correction tau {tau:g}", "prior correction",
                                       summary(labels, _softmax(corrected), dist), note))
    return found


def choose(found: list[Candidate]) -> Candidate:
    """docs/results.md's rule: among candidates within ACCURACY_WINDOW points of the best accuracy, the highest
    mean class recall; candidates within RECALL_TIE points of that recall go to the simplest (plain < prior
    correction < a changed loss; the higher recall among equally simple ones)."""
    if not found:
        raise ValueError("no candidates")
    best_acc = max(c.scores["accuracy"] for c in found)
    eligible = [c for c in found if 100 * (best_acc - c.scores["accuracy"]) <= ACCURACY_WINDOW + 1e-9]
    top = max(c.scores["mean_class_recall"] for c in eligible)
    near = [c for c in eligible if 100 * (top - c.scores["mean_class_recall"]) <= RECALL_TIE + 1e-9]
    return min(near, key=lambda c: (SIMPLER[c.kind], -c.scores["mean_class_recall"]))


def table(found: list[Candidate]) -> str:
    """Markdown: one row per candidate, percentages for accuracy, recall and F1, then the rule's choice."""
    rows = ["| candidate | best epoch | accuracy | mean class recall | macro-F1 | KL(votes ‖ p) | ECE |",
            "|---|---|---|---|---|---|---|"]
    for c in found:
        s = c.scores
        rows.append(f"| {c.name} | {c.note} | {100 * s['accuracy']:.2f}% | {100 * s['mean_class_recall']:.2f}% "
                    f"| {100 * s['macro_f1']:.2f}% | {s['kl']:.4f} | {s['ece']:.4f} |")
    n = found[0].scores["n"] if found else 0
    text = "\n".join(rows) + (f"\n\nPublicTest, {n} faces with a FER+ majority (contempt dropped); ECE over 15 "
                              "equal-width bins of the max softmax.")
    if found:
        text += f" By the rule in docs/results.md: **{choose(found).name}**."
    return text


# -------------------------------------------------------------------------------------------- the CLI


def build_parser() -> argparse.ArgumentParser:
    arms = "\n".join(f"  {k:<15} {', '.join(f'{f}={v}' for f, v in o.items()) or 'the config as it is'}"
                     for k, o in ARMS.items())
    about = textwrap.fill(
        "Issue 34's loss ablation: train the arms below of one base config one after another, each in "
        "<out>/<arm>/, validating on PublicTest under the FER+ majority; rerun the same command to continue "
        "after a kill. With --table, score the arms' saved PublicTest logits, and the plain arm's with "
        f"inference-time prior correction (logits - tau * log prior, tau {', '.join(f'{t:g}' for t in PRIOR_TAUS)}),"
        " and print a Markdown table (also written to <out>/label-ablation.md). PrivateTest is never read.", 100)
    p = argparse.ArgumentParser(
        prog="python -m training.label_ablation",
        description=f"{about}\n\narms:\n{arms}",
        epilog="examples:\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --epochs 6 --threads 1\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --arms plain,logit-adjusted --device cuda\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--config", required=True, help="the base TrainConfig JSON every arm shares, with FER+ labels, e.g. "
      "training/configs/cnn-ferplus.json")
    a("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/, e.g. "
      "../shared/data/fer2013")
    a("--arms", default=",".join(ARMS), help="comma-separated arms to train or tabulate, in this order "
      "(default: %(default)s)")
    a("--epochs", type=int, help="epochs of every arm, replacing the config's (the onecycle schedule stretches to "
      "it); keep it the same on a rerun (default: the config's)")
    a("--augmented", default=None, help="offline-augmented archive from training.augment to train on, e.g. "
      "data/fer2013-aug.npz (default: none, the 28,709 original training faces, whatever the config says)")
    a("--limit", type=int, help="train on the first N training images only, for a quick check of the speed or "
      "the code (default: all)")
    a("--out", help="folder of the arm folders (default: logs/label-ablation-<model of --config>)")
    a("--threads", type=int, help="torch CPU threads, e.g. 1 to leave the other cores free (default: all cores)")
    a("--device", default="auto", help=DEVICE_HELP)
    a("--quiet", action="store_true", help="no progress bars (the per-epoch lines stay)")
    a("--table", action="store_true", help="train nothing: print the Markdown table of the arms found under --out")
    a("--ferplus", default=DEFAULT_FERPLUS, help="with --table: the FER+ votes the table is scored against "
      "(default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from training.datasets import DatasetError, load_fer2013

    try:
        base = TrainConfig.from_dict(read_config_file(args.config))
        names = [n.strip() for n in args.arms.split(",") if n.strip()]
        unknown = [n for n in names if n not in ARMS]
        if unknown or not names:
            raise ValueError(f"unknown arm(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ARMS)}")
        if base.labels == "fer2013":
            raise ValueError(f"{args.config}: the ablation is scored under the FER+ majority; use a config with FER+ "
                             "labels (ferplus-soft or ferplus-majority)")
        if args.epochs is not None and args.epochs < 1:
            raise ValueError("--epochs must be >= 1")
        out = Path(args.out) if args.out else ROOT / "logs" / f"label-ablation-{base.model}"
        if args.table:
            from training.ferplus import read_votes

            data, votes = load_fer2013(args.data), read_votes(args.ferplus)
            found = candidates(out, names, data, votes)
            if not found:
                raise ValueError(f"{out}: no arm folder with publictest_logits.npy yet")
            text = f"Arms under `{out.name}`:\n\n" + table(found)
            (out / "label-ablation.md").write_text(text + "\n")
            print(text)
            return 0
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        configs = arm_configs(base, names, args.epochs, args.augmented, args.limit)
        data = load_fer2013(args.data)
        print(f"label ablation: arms {', '.join(names)} in {out}, device {device}, "
              f"{torch.get_num_threads()} thread(s)", flush=True)
        run_arms(configs, data, out, device, progress=not args.quiet)
    except (OSError, ValueError, DatasetError, DeviceError, RuntimeError) as e:  # RuntimeError: a diverged arm
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    print(f"done; the table: python -m training.label_ablation --config {args.config} --data {args.data} --table"
          + (f" --out {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
