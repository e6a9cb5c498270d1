"""Export a trained model to ONNX per the app's contract and record it in ``models_zoo/manifest.json``.

Contract: input ``input`` float32 ``[N, 1, H, W]`` (dynamic N) in ``[0, 1]``; first output ``logits`` float32
``[N, 7]`` in ``app.core.EMOTIONS`` order. Normalisation is inside the graph. After scoring, the saliency
maps' extra outputs and explainer graph are added (``training.saliency_export``). Example::

    python -m training.export logs/cnn-20261123-2330/best.pt --name cnn --data ../shared/data/fer2013
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import torch

from app.core import atomic_path
from training.compress import FORMATS
from training.evaluate import onnx_predictor, score
from training.manifest import manifest_entry, read_manifest, update_manifest, write_manifest
from training.models import DISPLAY_NAMES

__all__ = ["export_onnx", "export_and_register", "read_manifest", "write_manifest", "update_manifest",
           "manifest_entry"]

OPSET = 17


def export_onnx(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int] = (48, 48)) -> Path:
    """Write ``model`` as ONNX (fp32, eval mode) atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval().to(memory_format=torch.contiguous_format)
    example = torch.rand(2, 1, *input_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns about its own deprecation on every call
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def export_and_register(
    model: torch.nn.Module, name: str, zoo_dir: str | Path, data, training: dict, eval_dir: str | Path | None,
    weights_format: str = "fp32", tolerance: float = 0.003, votes=None, labels: str = "fer2013",  # noqa: ANN001
) -> dict:
    """Export, then score the exported ONNX file itself on PublicTest and PrivateTest, and record the manifest.

    Scoring the ONNX file (not the torch model) means the manifest states what the app will actually do.
    PrivateTest is scored here and only here: once per final model. With ``weights_format`` fp16/int8 the
    smaller file replaces the fp32 one only if its PublicTest accuracy is within ``tolerance`` of fp32's.

    With FER+ ``votes`` (training.ferplus) both splits are scored against both truths (``ferplus_*`` metrics,
    the FER+ report files under ``<eval_dir>/ferplus/``); ``labels`` is the model's label source, recorded in
    the manifest, and its truth is the one the weight-format tolerance is judged on.
    """
    from training.ferplus import truth_distribution, truth_split

    fp_val = fp_test = None
    if votes is not None:
        fp_val, fp_test = truth_split(data.val, votes), truth_split(data.test, votes)
        dist_val, dist_test = truth_distribution(data.val, votes), truth_distribution(data.test, votes)
    judged = fp_val if (fp_val is not None and labels != "fer2013") else data.val
    from training.compress import compress

    zoo_dir = Path(zoo_dir)
    onnx_path = export_onnx(model, zoo_dir / f"{name}.onnx")
    predict = onnx_predictor(onnx_path)
    judged_val = score(predict, judged.images, judged.labels)
    weights = {"weights": "fp32"}
    if weights_format != "fp32":
        small = compress(onnx_path, weights_format, onnx_path.with_name(f".{name}.{weights_format}.onnx"))
        small_val = score(onnx_predictor(small), judged.images, judged.labels)
        drop = judged_val["accuracy"] - small_val["accuracy"]
        if drop <= tolerance:
            os.replace(small, onnx_path)
            key = "fp32_ferplus_public_test_accuracy" if judged is fp_val else "fp32_public_test_accuracy"
            weights = {"weights": weights_format, key: round(judged_val["accuracy"], 4)}
            predict = onnx_predictor(onnx_path)
        else:
            small.unlink()
            weights["weights_note"] = (f"{weights_format} rejected: PublicTest {100 * drop:.2f} points below fp32 "
                                       f"(tolerance {100 * tolerance:.2f})")
    val = score(predict, data.val.images, data.val.labels, tta=True)
    test_dir = None if eval_dir is None else Path(eval_dir)
    shown = DISPLAY_NAMES.get(name, name)
    test = score(predict, data.test.images, data.test.labels, test_dir, tta=True, title=f"{shown} on PrivateTest")
    metrics = {
        "public_test_accuracy": round(val["accuracy"], 4),
        "private_test_accuracy": round(test["accuracy"], 4),
        "tta": False,
        "public_test_accuracy_tta": round(val["accuracy_tta"], 4),
        "private_test_accuracy_tta": round(test["accuracy_tta"], 4),
        **weights,
    }
    full = {"public_test": val, "private_test": test}
    if fp_val is not None:
        fval = score(predict, fp_val.images, fp_val.labels, tta=True, votes_dist=dist_val)
        ftest = score(predict, fp_test.images, fp_test.labels, None if test_dir is None else test_dir / "ferplus",
                      tta=True, title=f"{shown} on PrivateTest, FER+ majority", votes_dist=dist_test)
        metrics.update({
            "ferplus_public_test_accuracy": round(fval["accuracy"], 4),
            "ferplus_private_test_accuracy": round(ftest["accuracy"], 4),
            "ferplus_public_test_accuracy_tta": round(fval["accuracy_tta"], 4),
            "ferplus_private_test_accuracy_tta": round(ftest["accuracy_tta"], 4),
        })
        full.update({"ferplus_public_test": fval, "ferplus_private_test": ftest})
    entry = manifest_entry(name, onnx_path.name, metrics, training)
    entry["labels"] = labels
    update_manifest(zoo_dir, entry)
    from training.saliency_export import prepare_zoo

    prepare_zoo(zoo_dir, [name])  # the saliency maps' extra outputs and explainer (the logits are unchanged)
    if test_dir is not None:
        (test_dir / "metrics.json").write_text(json.dumps({**full, "manifest_metrics": metrics}, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Export a training checkpoint to models_zoo/<name>.onnx, score the ONNX file on PublicTest and "
        "PrivateTest, and record it in models_zoo/manifest.json.",
        epilog="example: python -m training.export logs/cnn-20261123-2330/best.pt --name cnn "
        "--data ../shared/data/fer2013",
    )
    p.add_argument("checkpoint", help="best.pt (or last.pt) from a training run folder")
    p.add_argument("--name", help="model name in the manifest (default: the checkpoint's model)")
    p.add_argument("--data", required=True, help="FER2013 (CSV or folder) for the metrics written to the manifest")
    p.add_argument("--out", default="models_zoo", help="zoo folder (default: %(default)s)")
    p.add_argument("--weights-format", choices=FORMATS, default="fp32",
                   help="store weights smaller if PublicTest accuracy stays within 0.3 points of fp32: fp16 (half "
                        "size, fp32 speed; for cnn/resnet18) or int8 (quarter size; for ff) (default: %(default)s)")
    p.add_argument("--ferplus", metavar="PATH", help="FER+ votes to score against as well (ferplus_votes.csv or "
                   "fer2013new.csv; default: the run config's own, if any)")
    p.add_argument("--eval-dir", help="where to write the PrivateTest report files (default: the checkpoint's folder)")
    args = p.parse_args(argv)

    from training.checkpoint import load as load_ckpt
    from training.checkpoint import model_from
    from training.datasets import DatasetError, load_fer2013

    try:
        ckpt = load_ckpt(args.checkpoint)
        model = model_from(ckpt, args.checkpoint)
        name = args.name or ckpt["model_name"]
        data = load_fer2013(args.data)
        run_dir = Path(args.checkpoint).parent
        eval_dir = args.eval_dir or run_dir
        if not (run_dir / "last.pt").exists():
            raise ValueError(f"{run_dir}: no last.pt beside the checkpoint, so the training record is unknown")
        from training.summary import training_summary

        training = training_summary(run_dir, data)
        cfg = ckpt.get("config", {})
        ferplus = args.ferplus or cfg.get("ferplus")
        votes = None
        if ferplus:
            from training.ferplus import read_votes

            votes = read_votes(ferplus)
        metrics = export_and_register(model, name, args.out, data, training, eval_dir, args.weights_format,
                                      votes=votes, labels=cfg.get("labels", "fer2013"))
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.out}/{name}.onnx: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
