"""Knowledge distillation: the shipped zoo's predictions on the training set, learned as soft targets.

The teacher is run once, offline, with onnxruntime over every training image (flip TTA by default) and its
logits are stored per model in one ``.npz``; a run with ``distill`` in its config then mixes the hard-label
loss with the KL divergence to the teachers' softened probabilities (Hinton et al. 2015). Storing each model's
logits lets a student learn from all three or only from "others" (the two models it is not), the issue's
"each of the three students learns from the others", without running the teachers again. Example::

    python -m training.distill --zoo models_zoo --augmented data/fer2013-aug.npz --out data/fer2013-teacher.npz
    python -m training.train --config training/configs/ff.json --distill data/fer2013-teacher.npz ...

The archive records the SHA-256 of the image array it was computed on; training refuses an archive made from
other images (a different ``--augmented`` file or data folder), since its rows would not match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from training.datasets import NPZ_ERRORS

TEACHERS_HELP = "'all' (every model in the archive) or 'others' (all but the student's own model)"


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of a uint8 image array's bytes: identifies the exact training rows a teacher archive is for."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def full_training_images(augmented: str | None, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """(images, labels, source_index) of the whole training set a run draws from, before any ``limit``."""
    if augmented:
        from training.augment import load as load_augmented

        aug = load_augmented(augmented)
        return aug.images, aug.labels, aug.source_index
    return data.train.images, data.train.labels, np.arange(len(data.train), dtype=np.int32)


def compute_teacher_logits(zoo_dir: str | Path, images: np.ndarray, tta: bool = True,
                           progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each zoo model's logits for ``images`` (uint8 [N,48,48]) and the manifest's ensemble weights."""
    from tqdm import tqdm

    from training.evaluate import onnx_predictor, predict_logits, zoo_models

    models = zoo_models(zoo_dir)  # validated as the app reads it: a missing zoo is a one-line ValueError
    logits: dict[str, np.ndarray] = {}
    chunk = 4096
    for info in tqdm(models, desc="teachers", unit="model", disable=not progress):
        predict = onnx_predictor(info.file)
        parts = [predict_logits(predict, images[i : i + chunk], tta=tta)
                 for i in tqdm(range(0, len(images), chunk), desc=info.name, unit="chunk", leave=False,
                               disable=not progress)]
        logits[info.name] = np.concatenate(parts).astype(np.float32)
    return logits, {info.name: float(info.ensemble_weight) for info in models}


def save(path: str | Path, logits: dict[str, np.ndarray], weights: dict[str, float], digest: str,
         meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"models": list(logits), "weights": weights, "images_sha256": digest, **meta}
    np.savez(path, info=np.array(json.dumps(info)), **{f"logits_{n}": v for n, v in logits.items()})


def load(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(info, logits per model) of an archive written by :func:`save`; ValueError naming the file otherwise."""
    try:
        with np.load(path) as z:
            info = json.loads(str(z["info"]))
            return info, {n: z[f"logits_{n}"] for n in info["models"]}
    except NPZ_ERRORS as e:
        raise ValueError(f"{path}: not a teacher archive from training.distill ({e})") from None


def teacher_probs(logits: dict[str, np.ndarray], weights: dict[str, float], temperature: float,
                  models: list[str]) -> np.ndarray:
    """Weighted mean of the chosen models' probabilities at ``temperature`` (float32 [N,7])."""
    total = sum(weights.get(m, 1.0) for m in models)
    out = np.zeros_like(next(iter(logits.values())), dtype=np.float64)
    for m in models:
        z = logits[m].astype(np.float64) / temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        out += weights.get(m, 1.0) / total * p / p.sum(axis=1, keepdims=True)
    return out.astype(np.float32)


def choose_teachers(available: list[str], teachers: str, student: str) -> list[str]:
    if teachers == "all":
        chosen = list(available)
    elif teachers == "others":
        chosen = [m for m in available if m != student]
    else:
        chosen = [m.strip() for m in teachers.split(",") if m.strip()]
        missing = sorted(set(chosen) - set(available))
        if missing:
            raise ValueError(f"distill_teachers: {', '.join(missing)} not in the teacher archive "
                             f"(it has {', '.join(available)})")
    if not chosen:
        raise ValueError(f"distill_teachers={teachers!r} leaves no teacher for {student}")
    return chosen


def soft_targets(cfg, data, rows: np.ndarray | None = None) -> np.ndarray:  # noqa: ANN001 - TrainConfig, FER2013
    """The run's soft targets, one row per training row: ``rows`` of the whole pool (training.batches'
    TrainingSet.rows), or without it the same order and ``limit`` as training.batches."""
    info, logits = load(cfg.distill)
    images, _, source = full_training_images(cfg.augmented, data)
    if len(images) != len(next(iter(logits.values()))) or images_digest(images) != info["images_sha256"]:
        raise ValueError(f"{cfg.distill}: computed on other training images than this run's "
                         f"({cfg.augmented or 'the raw training split'}); rerun training.distill on them")
    probs = teacher_probs(logits, info["weights"], cfg.distill_temperature,
                          choose_teachers(info["models"], cfg.distill_teachers, cfg.model))
    if rows is not None:
        return probs[rows]
    if cfg.limit is None:
        return probs
    return probs[source < cfg.limit] if cfg.augmented else probs[: cfg.limit]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.distill",
        description="Run a zoo's models (onnxruntime, flip TTA) over the training set once and store each model's "
        "logits, the soft targets of training runs with --distill.",
        epilog="example:\n  python -m training.distill --zoo models_zoo --data ../shared/data/fer2013 "
        "--augmented data/fer2013-aug.npz --out data/fer2013-teacher.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--zoo", default="models_zoo", help="teacher zoo folder with manifest.json (default: %(default)s)")
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle folder (the raw training split)")
    p.add_argument("--augmented", help="the offline-augmented set (.npz from training.augment) the runs train on, "
                   "e.g. data/fer2013-aug.npz; without it, the raw 28,709 training images")
    p.add_argument("--no-tta", dest="tta", action="store_false", help="single pass instead of the mean of the "
                   "image's and its mirror's logits")
    p.add_argument("--out", default="data/fer2013-teacher.npz", help="archive to write (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)

    from training.datasets import DatasetError, load_fer2013
    from training.evaluate import zoo_models

    try:
        data = load_fer2013(args.data)
        images, labels, _ = full_training_images(args.augmented, data)
        logits, weights = compute_teacher_logits(args.zoo, images, tta=args.tta, progress=not args.quiet)
        acc = {m: round(float((v.argmax(1) == labels).mean()), 4) for m, v in logits.items()}
        ens = teacher_probs(logits, weights, 1.0, list(logits)).argmax(1)
        acc["ensemble"] = round(float((ens == labels).mean()), 4)
        files = {m.name: hashlib.sha256(m.file.read_bytes()).hexdigest() for m in zoo_models(args.zoo)}
        save(args.out, logits, weights, images_digest(images),
             {"zoo": str(args.zoo), "teacher_sha256": files, "tta": args.tta, "augmented": args.augmented,
              "train_accuracy": acc})
    except (DatasetError, ValueError, FileNotFoundError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(images)} rows; teachers' training-set accuracy {acc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
