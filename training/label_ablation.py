"""Which label objective stops the FER+ models leaning on the big classes? (issue 34)

Trains named arms of one base config one after another in one process, each in its own folder under ``--out``,
and renders their comparison from the files the runs leave (no checkpoint needed): every arm's best-epoch
PublicTest logits (``publictest_logits.npy``), and for the plain arm also inference-time prior correction,
``logits - tau * log(prior)`` with the training prior it saved (``prior.json``), at several tau. Each row is
scored under the FER+ majority with training.metrics: accuracy, mean class recall, macro-F1, KL(votes ||
predicted) and the ECE of the confidence (max softmax). The rule that picks among them is fixed in
docs/results.md ("Choosing the label objective") and applied by :func:`choose`. PrivateTest is never read.

The augmentation stage (issue 34, item 3) uses the same driver: its arms (``AUG_ARMS``, folders ``aug-*``) are
the loss stage's winner, ``--base-arm`` (its overrides), plus one augmentation at probability 0.5 each
(photometric, geometric, crop jitter, occlusion), all four at 0.5, mixup or cutmix. ``--table`` lists them in a
second table against the base arm's own folder (the control, no added augmentation), under the same rule with
the base simplest, then one augmentation, then all four; a row whose config differs from the base's by more
than its augmentation says so.

The run is resumable by rerunning the same command: a finished arm (``done.json``, or a history as long as
its epochs) is skipped, an unfinished one continues from its ``last.pt``; an arm's checkpoints are deleted
only once it has finished. Examples::

    python -m training.label_ablation --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 \\
        --epochs 6 --threads 1
    python -m training.label_ablation --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 \\
        --table
    python -m training.label_ablation --config training/configs/cnn-ferplus.json --data ../shared/data/fer2013 \\
        --epochs 7 --threads 1 --base-arm plain --arms aug-photometric,aug-geometric
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
# The augmentation stage's arms, each on top of the --base-arm's overrides; folder names apart from the loss arms'.
AUG_P = 0.5
AUG_ARMS: dict[str, dict] = {
    "aug-photometric": {"photometric": AUG_P},
    "aug-geometric": {"geometric": AUG_P},
    "aug-crop-jitter": {"crop_jitter": AUG_P},
    "aug-occlusion": {"occlusion": AUG_P},
    "aug-all": {"photometric": AUG_P, "geometric": AUG_P, "crop_jitter": AUG_P, "occlusion": AUG_P},
    "aug-mixup": {"mix": "mixup", "mix_alpha": 0.2},
    "aug-cutmix": {"mix": "cutmix", "mix_alpha": 0.2},
}
ARM_GROUPS = {"loss": list(ARMS), "aug": list(AUG_ARMS)}  # shorthands accepted by --arms
PRIOR_TAUS = (0.25, 0.5, 0.75, 1.0)  # inference-time prior correction of the plain arm's logits
DEFAULT_FERPLUS = "../shared/data/ferplus/ferplus_votes.csv"
# The selection rule of docs/results.md, in points (percent of faces).
ACCURACY_WINDOW, RECALL_TIE = 1.0, 0.3
# a candidate's kind -> how simple it is; the augmentation table's kinds rank the same way among themselves
SIMPLER = {"plain": 0, "prior correction": 1, "changed loss": 2, "base": 0, "augmentation": 1, "augmentations": 2}


def arm_overrides(name: str, base_arm: str = "plain") -> dict:
    """TrainConfig fields an arm changes from the base config: a loss arm's own, or an augmentation arm's on
    top of the ``base_arm``'s."""
    if name in ARMS:
        return dict(ARMS[name])
    return {**ARMS[base_arm], **AUG_ARMS[name]}


def parse_arms(text: str | None, table: bool = False) -> list[str]:
    """--arms: names and the group shorthands ``loss`` and ``aug``, in order, each once; unset, the loss arms
    to train, or every arm for --table."""
    if text is None:
        return [*ARMS, *AUG_ARMS] if table else list(ARMS)
    names: list[str] = []
    for n in (n.strip() for n in text.split(",")):
        for name in ARM_GROUPS.get(n, [n] if n else []):
            if name not in names:
                names.append(name)
    unknown = [n for n in names if n not in ARMS and n not in AUG_ARMS]
    if unknown or not names:
        raise ValueError(f"unknown arm(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join([*ARMS, *AUG_ARMS])} (or the groups loss, aug)")
    return names


def arm_configs(base: TrainConfig, names: list[str], epochs: int | None, augmented: str | None,
                limit: int | None = None, base_arm: str = "plain") -> dict[str, TrainConfig]:
    """Each named arm's config: the base with the arm's overrides (an augmentation arm's on top of
    ``base_arm``'s), the run's epochs and training set."""
    out = {}
    for name in names:
        d = {**dataclasses.asdict(base), **arm_overrides(name, base_arm), "augmented": augmented}
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


def saved_config(arm_dir: Path) -> dict | None:
    """An arm folder's config.json with the fields it predates at their defaults (all "off"), or None."""
    path = arm_dir / "config.json"
    if not path.exists():
        return None
    return {**dataclasses.asdict(TrainConfig()), **json.loads(path.read_text())}


def check_same_config(arm_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume an arm folder made with another config (other epochs change the schedule). A field the
    folder's config predates counts as its default."""
    old = saved_config(arm_dir)
    if old is None:
        return
    new = dataclasses.asdict(cfg)
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{arm_dir} was started with another config ({', '.join(diff)} differ); rerun with the "
                         "same options or choose another --out")


def run_arms(configs: dict[str, TrainConfig], data, out: Path, device, progress: bool = True,  # noqa: ANN001
             base_arm: str = "plain") -> None:
    """Train the arms in order, skipping finished ones and resuming interrupted ones."""
    from training.train import fit

    out.mkdir(parents=True, exist_ok=True)
    for name, cfg in configs.items():
        arm_dir = out / name
        if finished(arm_dir, cfg):
            print(f"{name}: finished earlier ({arm_dir}), skipped", flush=True)
        else:
            check_same_config(arm_dir, cfg)
            overrides = arm_overrides(name, base_arm)
            print(f"{name}: training in {arm_dir} ({cfg.epochs} epochs, overrides {overrides or 'none'})",
                  flush=True)
            result = fit(cfg, data, arm_dir, resume=True, progress=progress, tensorboard=False, device=device)
            (arm_dir / "done.json").write_text(json.dumps({
                "arm": name, "overrides": overrides, **({} if name in ARMS else {"base_arm": base_arm}),
                "epochs_run": result.epochs_run,
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
        if name in AUG_ARMS or not (arm_dir / "publictest_logits.npy").exists():
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


def _scored(arm_dir: Path, data, votes) -> tuple[dict, str]:  # noqa: ANN001
    """(training.metrics.summary, "epoch B of N[, unfinished]") of an arm folder's saved PublicTest logits."""
    from training.metrics import summary

    logits, labels, dist = publictest_truth(arm_dir, data, votes)
    history = json.loads((arm_dir / "history.json").read_text())
    best = json.loads((arm_dir / "publictest.json").read_text())["epoch"]
    done = "" if (arm_dir / "done.json").exists() else ", unfinished"
    return summary(labels, _softmax(logits), dist), f"epoch {best} of {len(history)}{done}"


def aug_candidates(out: Path, names: list[str], base_arm: str, data, votes) -> list[Candidate]:  # noqa: ANN001
    """The augmentation arms found under ``out`` and, first, the ``base_arm``'s folder as the control, scored
    like :func:`candidates`. An arm whose config is not the base's plus its augmentation (other epochs, say, or
    another base) has the differing fields in its note."""
    arms = [n for n in names if n in AUG_ARMS and (out / n / "publictest_logits.npy").exists()]
    if not arms:
        return []
    base_dir = out / base_arm
    base_cfg = saved_config(base_dir)
    found = []
    if (base_dir / "publictest_logits.npy").exists():
        scores, note = _scored(base_dir, data, votes)
        found.append(Candidate(f"{base_arm} (base: no added augmentation)", "base", scores, note))
    for name in arms:
        scores, note = _scored(out / name, data, votes)
        if base_cfg is not None:
            own = saved_config(out / name) or {}
            want = {**base_cfg, **AUG_ARMS[name]}
            diff = sorted(k for k in set(own) | set(want) if own.get(k) != want.get(k))
            if diff:
                note += f"; config differs from {base_arm}'s in {', '.join(diff)}"
        kind = "augmentations" if name == "aug-all" else "augmentation"
        found.append(Candidate(name, kind, scores, note))
    return found


def choose(found: list[Candidate]) -> Candidate:
    """docs/results.md's rule: among candidates within ACCURACY_WINDOW points of the best accuracy, the highest
    mean class recall; candidates within RECALL_TIE points of that recall go to the simplest (plain < prior
    correction < a changed loss; for augmentations, the base < one augmentation or mixing < all four; the
    higher recall among equally simple ones)."""
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
    aug_arms = "\n".join(f"  {k:<15} the --base-arm's overrides + {', '.join(f'{f}={v}' for f, v in o.items())}"
                         for k, o in AUG_ARMS.items())
    about = textwrap.fill(
        "Issue 34's loss ablation: train the arms below of one base config one after another, each in "
        "<out>/<arm>/, validating on PublicTest under the FER+ majority; rerun the same command to continue "
        "after a kill. With --table, score the arms' saved PublicTest logits, and the plain arm's with "
        f"inference-time prior correction (logits - tau * log prior, tau {', '.join(f'{t:g}' for t in PRIOR_TAUS)}),"
        " and print a Markdown table (also written to <out>/label-ablation.md). PrivateTest is never read.", 100)
    about_aug = textwrap.fill(
        "The augmentation stage: the aug-* arms below train the loss stage's winner (--base-arm) with one "
        "augmentation more each (training.train's --photometric, --geometric, --crop-jitter, --occlusion at "
        f"{AUG_P:g}, all four, or mixup / cutmix); --table adds their table, against the base arm's folder as the "
        "control (also written to <out>/augmentation-ablation.md). Give them the loss stage's --epochs so the "
        "control compares. Two processes may train different arms into the same --out at once.", 100)
    p = argparse.ArgumentParser(
        prog="python -m training.label_ablation",
        description=f"{about}\n\narms:\n{arms}\n\n{about_aug}\n\naugmentation arms:\n{aug_arms}",
        epilog="examples:\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --epochs 6 --threads 1\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --arms plain,logit-adjusted --device cuda\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --epochs 7 --threads 1 --base-arm plain "
        "--arms aug-photometric,aug-geometric,aug-crop-jitter,aug-occlusion\n"
        "  python -m training.label_ablation --config training/configs/cnn-ferplus.json "
        "--data ../shared/data/fer2013 --table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--config", required=True, help="the base TrainConfig JSON every arm shares, with FER+ labels, e.g. "
      "training/configs/cnn-ferplus.json")
    a("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/, e.g. "
      "../shared/data/fer2013")
    a("--arms", help="comma-separated arms to train or tabulate, in this order; 'loss' and 'aug' stand for the "
      f"groups (default: train the loss arms {','.join(ARMS)}; tabulate every arm found)")
    a("--base-arm", default="plain", choices=list(ARMS), help="the loss arm the aug-* arms build on, the loss "
      "stage's winner (for a prior correction, plain), and the control of their table (default: %(default)s)")
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
        names = parse_arms(args.arms, args.table)
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
            found_aug = aug_candidates(out, names, args.base_arm, data, votes)
            if not found and not found_aug:
                raise ValueError(f"{out}: no arm folder with publictest_logits.npy yet")
            parts = [f"Arms under `{out.name}`:\n\n" + table(found)] if found else []
            if found_aug:
                aug_text = (f"Augmentation arms under `{out.name}`, each {args.base_arm}'s config with one change:"
                            "\n\n" + table(found_aug))
                if not any(c.kind == "base" for c in found_aug):
                    aug_text += (f" No folder of the base arm {args.base_arm} with PublicTest outputs under "
                                 f"`{out.name}`: no control row.")
                (out / "augmentation-ablation.md").write_text(aug_text + "\n")
                parts.append(aug_text)
            text = "\n\n".join(parts)
            (out / "label-ablation.md").write_text(text + "\n")
            print(text)
            return 0
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        configs = arm_configs(base, names, args.epochs, args.augmented, args.limit, args.base_arm)
        data = load_fer2013(args.data)
        print(f"label ablation: arms {', '.join(names)} in {out}, device {device}, "
              f"{torch.get_num_threads()} thread(s)", flush=True)
        run_arms(configs, data, out, device, progress=not args.quiet, base_arm=args.base_arm)
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
