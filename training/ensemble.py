"""Choose the ensemble's per-model weights on PublicTest and record them in the zoo's manifest.

An equal mean lets a weak model (the feed-forward net is ~20 points behind the CNN) pull the ensemble below
its best member. A grid search over weights on the validation split (never PrivateTest) fixes that with two
free numbers for three models, too few to overfit 3,589 faces. The app and ``training.evaluate --zoo`` read
the weights from the manifest, so the ensemble users see is the one measured. With ``--ferplus`` the weights
are chosen against the FER+ ten-person majority (the PublicTest faces that have one) instead of FER2013's own
labels: the truth a FER+-trained zoo is meant to agree with. Example::

    python -m training.ensemble --zoo models_zoo --data ../shared/data/fer2013 \
        --ferplus ../shared/data/ferplus/ferplus_votes.csv
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from app.models._labeler import softmax, weighted_mean


def weight_grid(n_models: int, step: float) -> np.ndarray:
    """Every weight vector on the simplex with entries in multiples of ``step`` (rows sum to 1)."""
    ticks = round(1 / step)
    rows = [c for c in itertools.product(range(ticks + 1), repeat=n_models) if sum(c) == ticks]
    return np.array(rows, dtype=np.float64) / ticks


def fit_weights(probs: list[np.ndarray], labels: np.ndarray, step: float = 0.05) -> tuple[np.ndarray, float]:
    """The grid weights with the best accuracy; among ties the most even ones (closest to the equal mean)."""
    grid = weight_grid(len(probs), step)
    accs = np.array([(weighted_mean(probs, w).argmax(1) == labels).mean() for w in grid])
    best = np.flatnonzero(np.isclose(accs, accs.max()))
    even = np.linalg.norm(grid[best] - 1 / len(probs), axis=1)
    i = best[np.argmin(even)]
    return grid[i], float(accs[i])


def record_weights(zoo_dir: str | Path, names: list[str], weights: np.ndarray, equal: float, chosen: float,
                   step: float, truth: str = "fer2013") -> None:
    """Write the weights into the manifest's ensemble entry; its old accuracies are stale, so they go."""
    from training.manifest import read_manifest, write_manifest

    manifest = read_manifest(zoo_dir)
    against = "the FER+ majority" if truth == "ferplus" else "FER2013's labels"
    manifest["ensemble"] = {
        "models": names,
        "method": f"weighted mean of probabilities, weights chosen on PublicTest against {against} "
                  f"(grid step {step})",
        "weights_truth": truth,
        "weights": {n: round(float(w), 4) for n, w in zip(names, weights, strict=True)},
        "selection": {"public_test_accuracy_equal_weights": round(equal, 4),
                      "public_test_accuracy_chosen_weights": round(chosen, 4)},
    }
    write_manifest(zoo_dir, manifest)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.ensemble",
        description="Choose the ensemble weights of a zoo's models by grid search on PublicTest (the validation "
        "split; PrivateTest is never read) and write them into its manifest.json, where the app and "
        "training.evaluate --zoo pick them up. Re-score the ensemble afterwards with training.evaluate --zoo "
        "--record.",
        epilog="example: python -m training.ensemble --zoo models_zoo --data ../shared/data/fer2013 --ferplus "
        "../shared/data/ferplus/ferplus_votes.csv",
    )
    p.add_argument("--zoo", default="models_zoo", help="zoo folder with manifest.json (default: %(default)s)")
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/")
    p.add_argument("--step", type=float, default=0.05,
                   help="grid step of the weights, 0 < step <= 0.5 (default: %(default)s)")
    p.add_argument("--ferplus", metavar="PATH",
                   help="choose the weights against the FER+ majority (the PublicTest faces that have one) rather "
                   "than FER2013's labels, from ferplus_votes.csv (image folders) or fer2013new.csv (fer2013.csv); "
                   "example: --ferplus ../shared/data/ferplus/ferplus_votes.csv")
    p.add_argument("--dry-run", action="store_true", help="print the weights without writing the manifest")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime (default: all)")
    args = p.parse_args(argv)

    from training.datasets import DatasetError, load_fer2013
    from training.evaluate import onnx_predictor, predict_logits, zoo_models

    try:
        if not 0 < args.step <= 0.5:
            raise ValueError(f"--step must be in (0, 0.5], got {args.step}")
        models = zoo_models(args.zoo)
        if len(models) < 2:
            raise ValueError(f"{args.zoo}: an ensemble needs at least two models")
        val = load_fer2013(args.data).split("val")
        if args.ferplus:
            from training.ferplus import read_votes, truth_split

            val = truth_split(val, read_votes(args.ferplus))
        probs = [softmax(predict_logits(onnx_predictor(m.file, args.threads), val.images)) for m in models]
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    weights, chosen = fit_weights(probs, val.labels, args.step)
    equal = float((weighted_mean(probs, np.ones(len(probs))).argmax(1) == val.labels).mean())
    for m, pr in zip(models, probs, strict=True):
        print(f"{m.name:>10}: PublicTest {(pr.argmax(1) == val.labels).mean():.4f}")
    truth = "FER+ majority" if args.ferplus else "FER2013 labels"
    print(f"truth: {truth}, {len(val.labels)} PublicTest faces")
    print(f"equal weights: PublicTest {equal:.4f}")
    print("chosen weights: " + ", ".join(f"{m.name} {w:.2f}" for m, w in zip(models, weights, strict=True))
          + f": PublicTest {chosen:.4f}")
    if not args.dry_run:
        record_weights(args.zoo, [m.name for m in models], weights, equal, chosen, args.step,
                       "ferplus" if args.ferplus else "fer2013")
        print(f"wrote the weights into {Path(args.zoo) / 'manifest.json'}; now re-score with "
              f"python -m training.evaluate --zoo {args.zoo} --data {args.data} --split val --tta --record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
