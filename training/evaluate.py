"""Score a model on a FER2013 split: accuracy, optional flip TTA, report, confusion matrix, ROC, metrics.json.

Works on an exported ONNX file (what the app ships, so the numbers users see are the ones measured) or on a
training checkpoint (``.pt``). Example::

    python -m training.evaluate models_zoo/cnn.onnx --data ../shared/data/fer2013 --split val --tta --out /tmp/ev
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.core import EMOTIONS
from app.models import ModelInfo
from app.models._labeler import softmax, weighted_mean

Predictor = Callable[[np.ndarray], np.ndarray]  # float32 [N,1,48,48] in [0,1] -> logits [N,7]


def onnx_predictor(path: str | Path, threads: int | None = None) -> Predictor:
    """Run an exported model with onnxruntime, exactly as the app does; a missing, corrupt or foreign file is a
    ``ValueError`` naming it (the app's own contract check, ``app.models._sessions.open_model``)."""
    import onnxruntime as ort

    from app.core import CROP_SIZE
    from app.models._sessions import open_model

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess, _ = open_model(ort, Path(path), Path(path).stem, opts, CROP_SIZE, len(EMOTIONS))
    return lambda x: sess.run(["logits"], {"input": x.astype(np.float32)})[0]


def torch_predictor(model, device="cpu") -> Predictor:  # noqa: ANN001 - torch types imported lazily
    """Run a torch model in eval mode and fp32 (the exported graph's precision) on ``device``."""
    import torch

    model = model.to(device).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

    return run


def ensemble_predictor(predictors: list[Predictor], weights: list[float] | None = None) -> Predictor:
    """Weighted mean (equal by default) of the models' probabilities, returned as log-probabilities so argmax
    and softmax still apply; the same rule as the app's ``Labeler.classify``."""
    w = np.ones(len(predictors)) if weights is None else weights

    def run(x: np.ndarray) -> np.ndarray:
        probs = weighted_mean([softmax(p(x)) for p in predictors], w)
        return np.log(np.clip(probs, 1e-12, None)).astype(np.float32)

    return run


def zoo_models(zoo_dir: str | Path) -> list[ModelInfo]:
    """The models of a zoo's manifest, in manifest order, read and validated exactly as the app reads them."""
    from app.models import ZooError, load_manifest

    try:
        return load_manifest(zoo_dir)[1]
    except ZooError as e:
        raise ValueError(str(e)) from None


def predict_logits(predict: Predictor, images: np.ndarray, tta: bool = False, batch: int = 512) -> np.ndarray:
    """Logits for uint8 images (N,48,48); with ``tta`` the mean of the image's and its mirror's logits."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch, None].astype(np.float32) / 255.0
        logits = predict(x)
        if tta:
            logits = (logits + predict(np.ascontiguousarray(x[..., ::-1]))) / 2
        out.append(logits)
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)


def score(
    predict: Predictor, images: np.ndarray, labels: np.ndarray, out_dir: str | Path | None = None,
    tta: bool = False, title: str = "", votes_dist: np.ndarray | None = None,
) -> dict:
    """Accuracy, mean class recall and macro-F1 (with and without TTA when ``tta``) and, when ``out_dir`` is
    given, the report files. With ``votes_dist`` (the FER+ vote distributions of the same faces, row for row:
    training.ferplus.truth_distribution) also ``kl`` (KL(votes || predicted)) and ``ece`` (of the confidence
    max softmax against argmax == label), single pass (``_tta`` keys for the flip-averaged pass)."""
    from sklearn.metrics import classification_report, confusion_matrix, roc_auc_score, roc_curve

    from training.metrics import summary

    def balanced(logits: np.ndarray, suffix: str = "") -> dict:
        s = summary(labels, softmax(logits), votes_dist)
        return {f"{k}{suffix}": s[k] for k in ("mean_class_recall", "macro_f1", "kl", "ece") if k in s}

    if votes_dist is not None and len(votes_dist) != len(labels):
        raise ValueError(f"{len(votes_dist)} vote distributions for {len(labels)} faces")
    logits = predict_logits(predict, images, tta=False)
    metrics = {"n": int(len(labels)), "accuracy": float((logits.argmax(1) == labels).mean()), **balanced(logits)}
    if tta:
        logits = predict_logits(predict, images, tta=True)
        metrics["accuracy_tta"] = float((logits.argmax(1) == labels).mean())
        metrics.update(balanced(logits, "_tta"))
    probs = softmax(logits)
    pred = probs.argmax(1)
    classes = list(EMOTIONS)
    cm = confusion_matrix(labels, pred, labels=range(len(classes)))
    metrics["confusion_matrix"] = cm.tolist()
    metrics["per_class_recall"] = {
        c: float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None for i, c in enumerate(classes)
    }
    present = [i for i in range(len(classes)) if 0 < (labels == i).sum() < len(labels)]
    curves = {}
    for i in present:
        fpr, tpr, _ = roc_curve(labels == i, probs[:, i])
        curves[classes[i]] = (fpr, tpr, float(roc_auc_score(labels == i, probs[:, i])))
    metrics["roc_auc"] = {k: v[2] for k, v in curves.items()}
    if out_dir is not None:
        from training.plots import plot_confusion, plot_roc

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report = classification_report(
            labels, pred, labels=range(len(classes)), target_names=classes, digits=4, zero_division=0
        )
        suffix = " (flip TTA)" if tta else ""
        (out / "classification_report.txt").write_text(f"{title}{suffix}\n\n{report}")
        plot_confusion(cm, classes, out / "confusion_matrix.png", title=f"{title}{suffix}")
        plot_roc(curves, out / "roc.png", title=f"ROC {title}{suffix}")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def score_line(m: dict, truth: str) -> str:
    """``accuracy 0.8728, mean class recall 0.7310, macro-F1 0.7512 on 3579 images (FER+ majority), KL 0.2900,
    ECE 0.1900`` (KL and ECE when scored against the votes), then the flip-TTA scores when measured."""
    line = (f"accuracy {m['accuracy']:.4f}, mean class recall {m['mean_class_recall']:.4f}, macro-F1 "
            f"{m['macro_f1']:.4f} on {m['n']} images ({truth})")
    if "kl" in m:
        line += f", KL {m['kl']:.4f}, ECE {m['ece']:.4f}"
    if "accuracy_tta" in m:
        line += (f"; with flip TTA accuracy {m['accuracy_tta']:.4f}, mean class recall "
                 f"{m['mean_class_recall_tta']:.4f}, macro-F1 {m['macro_f1_tta']:.4f}")
        if "kl_tta" in m:
            line += f", KL {m['kl_tta']:.4f}, ECE {m['ece_tta']:.4f}"
    return line


def record_ensemble(zoo_dir: str | Path, models: list[str], split: str, metrics: dict, truth: str = "fer2013",
                    per_model: dict[str, dict] | None = None) -> None:
    """Store the ensemble's measured accuracy in the manifest, beside the per-model metrics and its weights.

    ``truth`` ``ferplus`` records ``ferplus_<split>_accuracy`` keys (the FER+ majority), and then also each
    model's own FER+ scores from ``per_model`` (a zoo trained before FER+ existed gains them this way)."""
    from training.datasets import SPLIT_OF_USAGE
    from training.manifest import read_manifest, write_manifest

    key = {"val": "public_test", "test": "private_test", "train": "train"}[SPLIT_OF_USAGE.get(split, split)]
    if truth == "ferplus":
        key = f"ferplus_{key}"
    manifest = read_manifest(zoo_dir)
    ens = manifest.get("ensemble", {})
    if ens.get("models") != models:
        ens = {"models": models, "method": "mean of probabilities"}

    def put(into: dict, m: dict) -> None:
        into[f"{key}_accuracy"] = round(m["accuracy"], 4)
        if "accuracy_tta" in m:
            into[f"{key}_accuracy_tta"] = round(m["accuracy_tta"], 4)

    put(ens, metrics)
    for entry in manifest.get("models", []):
        if per_model and entry.get("name") in per_model:
            put(entry.setdefault("metrics", {}), per_model[entry["name"]])
    manifest["ensemble"] = ens
    write_manifest(zoo_dir, manifest)


def explain_grids(files: list[Path], zoo_dir: str | None, images: np.ndarray, labels: np.ndarray, per_class: int,
                  out_dir: str | Path) -> list[Path]:
    """``saliency_<model>.png`` per model: ``per_class`` faces of each class with the model's saliency map for
    its predicted class (``app.outputs._saliency_pictures.class_grid``). The maps come from the app's own code, so
    each model must sit in a zoo folder whose manifest lists it (``--zoo``, or the folder of the ``.onnx`` file)."""
    import copy

    import cv2

    from app.models import Labeler, ZooError
    from app.outputs._saliency_pictures import class_grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        zoo = Path(zoo_dir) if zoo_dir else f.parent
        try:
            labeler = Labeler(zoo)
        except ZooError as e:
            raise ValueError(f"--explain needs the model's zoo folder with manifest.json ({e})") from None
        match = [m for m in labeler.models if m.file == f.resolve()]
        if not match:
            raise ValueError(f"--explain: {f} is not listed in {zoo / 'manifest.json'}")
        single = copy.copy(labeler)
        single.models = match
        grid = class_grid(single, match[0].name, images, labels, per_class)
        path = out / f"saliency_{match[0].name}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate an ONNX model or a training checkpoint on a FER2013 split and write report files "
        "(classification_report.txt, confusion_matrix.png, roc.png, metrics.json).",
        epilog="examples:\n  python -m training.evaluate models_zoo/cnn.onnx --data ../shared/data/fer2013 "
        "--split test --tta --out logs/eval-cnn\n"
        "  python -m training.evaluate --zoo models_zoo --data ../shared/data/fer2013 --split val "
        "--ferplus ../shared/data/ferplus/ferplus_votes.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="*", help="exported .onnx file(s) or a checkpoint (.pt) written by training.train; "
                   "several files are scored as an ensemble (mean of probabilities)")
    p.add_argument("--zoo", help="score the ensemble of every model in this zoo's manifest.json (e.g. models_zoo), "
                   "weighted as the manifest says (see training.ensemble), as the app does")
    p.add_argument("--record", action="store_true", help="with --zoo: write the ensemble's accuracy for this split "
                   "into the manifest under 'ensemble'")
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/")
    p.add_argument("--split", default="val", choices=["train", "val", "test", "Training", "PublicTest", "PrivateTest"],
                   help="which split to score: val = PublicTest (model selection), test = PrivateTest "
                        "(final numbers only) (default: %(default)s)")
    p.add_argument("--tta", action="store_true", help="also score with horizontal-flip test-time augmentation")
    p.add_argument("--ferplus", metavar="PATH", help="also score against the FER+ ten-person majority (the faces "
                   "that have one), from ferplus_votes.csv (image folders) or fer2013new.csv (fer2013.csv), e.g. "
                   "../shared/data/ferplus/ferplus_votes.csv; its report files go to --out/ferplus/")
    p.add_argument("--out", help="folder for the report files (default: print metrics only)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--explain", type=int, default=0, metavar="N",
                   help="also write --out/saliency_<model>.png: N faces of each class of the split with the "
                   "model's saliency map for the class it predicted, as papers show Grad-CAM (.onnx models in a "
                   "zoo folder; example: --explain 4 --out logs/eval-cnn)")
    p.add_argument("--device", default="auto",
                   help="where checkpoints (.pt) run: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps, "
                   "e.g. --device cuda:1; .onnx files always run on onnxruntime's CPU provider, as the app runs "
                   "them (default: %(default)s)")
    args = p.parse_args(argv)

    from training.datasets import DatasetError, load_fer2013

    try:
        zoo = zoo_models(args.zoo) if args.zoo else []
        files = [Path(m) for m in args.model] + [m.file for m in zoo]
        weights = [1.0] * len(args.model) + [m.ensemble_weight for m in zoo]
        if not files:
            raise ValueError("give a model file or --zoo DIR")
        if args.record and (not args.zoo or args.model):
            raise ValueError("--record scores a zoo as the app runs it: give --zoo and no model files")
        if args.explain and (not args.out or any(f.suffix != ".onnx" for f in files) or args.explain < 0):
            raise ValueError("--explain N needs --out DIR and exported .onnx models (N > 0)")
        split = load_fer2013(args.data).split(args.split)
        device = None
        if any(f.suffix != ".onnx" for f in files):
            from training.device import resolve_device

            device = resolve_device(args.device)  # DeviceError (a ValueError) for a missing device: exit 2
        predictors = []
        for f in files:
            if f.suffix == ".onnx":
                predictors.append(onnx_predictor(f, args.threads))
            else:
                from training.checkpoint import load_model

                predictors.append(torch_predictor(load_model(f), device))
        predict = predictors[0] if len(predictors) == 1 else ensemble_predictor(predictors, weights)
        name = files[0].name if len(files) == 1 else "ensemble of " + " + ".join(f.stem for f in files)
        metrics = score(predict, split.images, split.labels, args.out, tta=args.tta,
                        title=f"{name} on {args.split}")
        fp_metrics = None
        if args.ferplus:
            from training.ferplus import read_votes, truth_distribution, truth_split

            votes = read_votes(args.ferplus)
            fp = truth_split(split, votes)
            fp_out = None if args.out is None else Path(args.out) / "ferplus"
            fp_metrics = score(predict, fp.images, fp.labels, fp_out, tta=args.tta,
                               title=f"{name} on {args.split}, FER+ majority",
                               votes_dist=truth_distribution(split, votes))
        if args.record:
            record_ensemble(args.zoo, [m.name for m in zoo], args.split, metrics)
            if fp_metrics is not None:
                per_model = {m.name: score(pr, fp.images, fp.labels, tta=args.tta)
                             for m, pr in zip(zoo, predictors, strict=True)}
                record_ensemble(args.zoo, [m.name for m in zoo], args.split, fp_metrics, "ferplus", per_model)
        if args.explain:
            for path in explain_grids(files, args.zoo, split.images, split.labels, args.explain, args.out):
                print(f"saliency grid: {path}")
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for truth, m in (("FER2013 labels", metrics), ("FER+ majority", fp_metrics)):
        if m is None:
            continue
        print(f"{args.split}: {score_line(m, truth)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
