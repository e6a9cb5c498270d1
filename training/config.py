"""What defines a training run: :class:`TrainConfig`, saved in every checkpoint and read back from JSON.

Kept apart from the training loop so export, the annealing search and the benchmarks can read and validate a
config without importing the loop (and so the loop, the export and the evaluation do not import each other).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from training.ferplus import CONTEMPT_RULES, LABEL_SOURCES
from training.models import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]
# TrainConfig's robustness augmentations, each a probability (training.batches.online_augment).
AUGMENTATION_PROBABILITIES = ("photometric", "geometric", "crop_jitter", "occlusion")


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in every checkpoint and accepted back as ``--config FILE``.

    ``batch_size`` and ``lr`` are global: with N processes each takes ``batch_size / N`` images per step and
    the gradients are averaged, so a config means the same on one CPU, one GPU or eight. ``bf16`` (name kept
    for old configs) switches the device's mixed precision on: bf16 autocast, or fp16 with a gradient scaler
    on GPUs without bf16 (training.precision).
    """

    model: str = "cnn"
    model_params: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adamw"  # adam | adamw | sgd (with momentum)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "onecycle"  # onecycle | cosine | none
    label_smoothing: float = 0.0
    class_weighted: bool = False
    online_aug: str = "shift"  # none | flip | shift (flip + random shift) on top of any offline augmentation
    shift: int = 4
    erase: float = 0.0  # probability of random erasing per image
    patience: int = 10
    seed: int = 0
    limit: int | None = None
    augmented: str | None = None
    bf16: bool = True
    channels_last: bool = True
    # Knowledge distillation (training.distill): a teacher archive, the weight of its KL term against the
    # hard-label loss, the softening temperature, and which of its models teach ("all", "others", or names).
    distill: str | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    distill_teachers: str = "all"
    # Exponential moving average of the weights, validated and exported instead of the raw weights (0 = off).
    ema: float = 0.0
    # Mixing augmentation per batch: mixup (blend two faces) or cutmix (paste a box of one into the other);
    # the loss mixes both faces' targets by the same share. ``mix_alpha`` is the Beta(a, a) of that share.
    mix: str = "none"
    mix_alpha: float = 0.2
    # What the model learns (training.ferplus): FER2013's own labels, the FER+ ten-person majority, or the FER+
    # vote distribution; ``ferplus`` is the votes file (ferplus_votes.csv or fer2013new.csv). With votes given,
    # images FER+ marks as not a face leave the training set unless ``keep_nonfaces``; validation is scored
    # against the FER+ majority whenever the labels are FER+'s.
    labels: str = "fer2013"
    ferplus: str | None = None
    contempt: str = "drop"  # drop | disgust: FER+'s eighth emotion, left out or folded into disgust
    keep_nonfaces: bool = False
    # Balanced objectives (training.losses, issue 34), both through the training set's class prior: the label
    # loss on logits + tau * log(prior) (logit adjustment; tau 1 = balanced softmax), and the targets
    # re-weighted by prior**(-beta) per class (renormalised per row; per-row weights for hard labels).
    # 0 = the plain loss; inference always uses the plain logits.
    logit_adjust: float = 0.0
    target_reweight: float = 0.0
    # Robustness augmentations (training.batches.online_augment, issue 34), each a probability per training image
    # (photometric: per sub-change), 0 = off: camera/processing changes (blur, contrast, gamma, noise, JPEG),
    # rotation/scale/shift, re-framing as the app's face detectors crop, and a glasses- or hand-like occluder.
    photometric: float = 0.0
    geometric: float = 0.0
    crop_jitter: float = 0.0
    occlusion: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks = [
            (self.model in MODEL_NAMES, f"model must be one of {', '.join(MODEL_NAMES)}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.lr > 0 and math.isfinite(self.lr), "lr must be > 0"),
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be adam, adamw or sgd"),
            (self.scheduler in ("onecycle", "cosine", "none"), "scheduler must be onecycle, cosine or none"),
            (self.online_aug in ("none", "flip", "shift"), "online_aug must be none, flip or shift"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.limit is None or self.limit >= 1, "limit must be >= 1"),
            (0 <= self.distill_alpha <= 1, "distill_alpha must be in [0, 1]"),
            (self.distill_temperature > 0, "distill_temperature must be > 0"),
            (0 <= self.ema < 1, "ema must be in [0, 1): the decay per step, 0 = off"),
            (self.mix in ("none", "mixup", "cutmix"), "mix must be none, mixup or cutmix"),
            (self.mix_alpha > 0, "mix_alpha must be > 0"),
            (self.labels in LABEL_SOURCES, f"labels must be one of {', '.join(LABEL_SOURCES)}"),
            (self.labels == "fer2013" or self.ferplus, f"labels {self.labels} need the FER+ votes (--ferplus PATH)"),
            (self.contempt in CONTEMPT_RULES, f"contempt must be one of {', '.join(CONTEMPT_RULES)}"),
            (not (self.class_weighted and self.labels == "ferplus-soft"),
             "class_weighted does not apply to ferplus-soft's vote distributions"),
            (self.logit_adjust >= 0 and math.isfinite(self.logit_adjust), "logit_adjust must be >= 0 (tau; 0 = off)"),
            (self.target_reweight >= 0 and math.isfinite(self.target_reweight),
             "target_reweight must be >= 0 (beta; 0 = off)"),
            (not (self.class_weighted and self.target_reweight),
             "class_weighted and target_reweight both re-weight by class: choose one"),
            *((isinstance(getattr(self, name), int | float) and 0 <= getattr(self, name) <= 1,
               f"{name} must be a probability in [0, 1] (0 = off)") for name in AUGMENTATION_PROBABILITIES),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def read_config_file(path: str | os.PathLike) -> dict:
    """TrainConfig fields from JSON: a bare config, or one wrapped as ``{"config": ..., "search": ...}``
    (an annealing ``best.json``)."""
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read config ({e})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a JSON object of TrainConfig fields")
    return dict(loaded.get("config", loaded))
