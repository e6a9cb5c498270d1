"""Saliency maps: which pixels of the 48x48 crop made a model say what it said, with onnxruntime + numpy only.

The methods, per model by what its graph allows (``training/saliency_export.py`` prepares the zoo) and, where
there is a choice, by faithfulness and cost as ``benchmarks/saliency_deletion.py`` measured them:

* **HiResCAM** (Draelos and Carin, 2020) for the CNN: the gradient of the class logit with respect to the last
  conv feature map, times that map, summed over channels. The gradient runs back through the small head (Linear,
  BatchNorm and ReLU in eval mode are linear once it is known which units are on), so it is a few matrix
  products of the head's weights with its activations, which the model graph exposes as extra outputs;
  ``<model>.saliency.onnx`` does the products. **Grad-CAM** (Selvaraju et al., 2017), the channel-averaged
  version, is computed beside it as an alternative.
* **CAM** (Zhou et al., 2016) for the ResNet18: with a global-average-pool + FC head, Grad-CAM and HiResCAM
  both equal it; 3x3 cells at 48 px input.
* **Occlusion** (Zeiler and Fergus, 2014): the logit drop when an 8x8 patch is greyed, 121 patches per face in
  one batched run. Shown for the FF (more faithful than its **input gradient**, Simonyan et al., 2014, which
  the explainer also computes) and for any model the zoo has not prepared (an old manifest, an unknown graph).

Maps are computed for every class at once (the window's class picker then costs nothing) and normalised to
``[0, 1]`` per map; ``benchmarks/saliency_speed.py`` measures what they cost, and ``app/outputs/_saliency_pictures.py``
draws them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.core import EmotionLensError

OCCLUSION_PATCH, OCCLUSION_STRIDE = 8, 4
OCCLUSION_FILL = 0.5077  # FER2013's mean pixel (training.models.FER_MEAN): a patch becomes "average face grey"
METHOD_TITLES = {"hirescam": "HiResCAM", "grad-cam": "Grad-CAM", "cam": "CAM",
                 "input-gradient": "input gradient", "occlusion": "occlusion"}


class SaliencyUnavailable(EmotionLensError, ValueError):
    """The manifest's saliency record does not fit the model file; the one-line reason says why."""


@dataclass(frozen=True)
class Head:
    """A model's map recipe: its method, the extra outputs to fetch, and the explainer session that turns
    them (and, for a per-image-standardising FF, the input) into ``maps`` ``[N, classes, h, w]``."""

    method: str
    fetches: tuple[str, ...]
    explainer: object  # onnxruntime.InferenceSession
    needs_input: bool = False
    alternatives: tuple[str, ...] = ()  # other methods the explainer also computes (output ``maps:<method>``)

    def maps(self, x: np.ndarray, outputs: list[np.ndarray], method: str | None = None) -> np.ndarray:
        """Raw maps from the model input ``x`` and its extra outputs (in ``fetches`` order); ``method`` one of
        ``alternatives`` for that output instead of the shipped one."""
        feeds = dict(zip(self.fetches, outputs, strict=True))
        if self.needs_input:
            feeds["input"] = x
        name = f"maps:{method}" if method in self.alternatives else "maps"
        return self.explainer.run([name], feeds)[0]  # type: ignore[attr-defined]


def load_head(record: dict, folder: Path, model_bytes: bytes, output_names: list[str], opts) -> Head:  # noqa: ANN001
    """The :class:`Head` a manifest ``saliency`` record describes, checked against the loaded model."""
    import onnxruntime as ort

    try:
        method, file = record["method"], record["explainer"]
        features, acts = record.get("features"), list(record.get("activations") or ())
    except (KeyError, TypeError):
        raise SaliencyUnavailable("the manifest's saliency record lacks 'method' or 'explainer'") from None
    if method not in ("hirescam", "grad-cam", "cam", "input-gradient"):
        raise SaliencyUnavailable(f"unknown saliency method {method!r}")
    if record.get("model_sha256") and hashlib.sha256(model_bytes).hexdigest() != record["model_sha256"]:
        raise SaliencyUnavailable("the model file changed since its maps were prepared; run "
                                  "python -m training.saliency_export")
    fetches = ([features] if features else []) + acts
    missing = [n for n in fetches if n not in output_names]
    if missing:
        raise SaliencyUnavailable(f"the model lacks the outputs {missing}; run python -m training.saliency_export")
    path = folder / file
    try:
        sess = ort.InferenceSession(path.read_bytes(), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # a missing, unreadable or corrupt explainer costs the maps, never the labels
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise SaliencyUnavailable(f"{path}: cannot load ({first})") from None
    names, outs = [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    if set(names) - {*fetches, "input"} or not outs or outs[0] != "maps":
        raise SaliencyUnavailable(f"{path}: inputs {names} do not match the model's extra outputs")
    alternatives = tuple(o.split(":", 1)[1] for o in outs[1:] if o.startswith("maps:"))
    return Head(method, tuple(fetches), sess, "input" in names, alternatives)


def occlusion_maps(run_logits, x: np.ndarray, patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE,
                   fill: float = OCCLUSION_FILL, chunk: int = 512) -> np.ndarray:  # noqa: ANN001 - a callable
    """``[N, classes, H, W]``: the mean drop of each class logit when a ``patch`` square covering the pixel is
    set to ``fill``; every patch of every face goes through ``run_logits`` (``[B,1,H,W] -> [B,C]``) in chunks."""
    n, _, h, w = x.shape
    base = run_logits(x)
    spots = [(i, j) for i in range(0, h - patch + 1, stride) for j in range(0, w - patch + 1, stride)]
    batch = np.repeat(x[:, None], len(spots), axis=1)  # [N, P, 1, H, W]
    for p, (i, j) in enumerate(spots):
        batch[:, p, :, i:i + patch, j:j + patch] = fill
    flat = batch.reshape(-1, 1, h, w)
    logits = np.concatenate([run_logits(flat[s:s + chunk]) for s in range(0, len(flat), chunk)])
    drop = base[:, None, :] - logits.reshape(n, len(spots), -1)  # [N, P, C]
    heat = np.zeros((n, drop.shape[2], h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for p, (i, j) in enumerate(spots):
        heat[:, :, i:i + patch, j:j + patch] += drop[:, p, :, None, None]
        count[i:i + patch, j:j + patch] += 1
    return np.maximum(heat / np.maximum(count, 1), 0)


def finish(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``[N, C, h, w]`` maps to ``size`` (H, W), bilinearly, and scale each to ``[0, 1]`` (finite)."""
    raw = np.nan_to_num(np.asarray(raw, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    n, c = raw.shape[:2]
    hh, ww = size
    out = np.empty((n, c, hh, ww), np.float32)
    for i in range(n):
        for k in range(c):
            m = raw[i, k]
            out[i, k] = m if m.shape == (hh, ww) else cv2.resize(m, (ww, hh), interpolation=cv2.INTER_LINEAR)
    peak = out.reshape(n, c, -1).max(axis=2)[..., None, None]
    return np.where(peak > 0, np.clip(out, 0, None) / np.where(peak > 0, peak, 1), 0).astype(np.float32)
