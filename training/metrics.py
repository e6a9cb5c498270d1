"""Scores beyond accuracy (issue 34): per-class and mean class recall, macro-F1, the expected calibration error
of the shown confidence with its reliability bins, and KL(votes || predicted) against the FER+ vote shares.

Pure numpy, no torch and no app code, so evaluation, training logs and the ablation tables compute every number
the same way. Conventions:

- ``mean_class_recall`` is the mean of the recalls of the classes present in the truth (RAF-DB's "average
  accuracy"); a class nobody holds has no recall and does not count.
- ``macro_f1`` is sklearn's ``f1_score(average="macro")``: over the classes present in the truth or in the
  predictions, F1 = 0 where a class has no true positive.
- ``expected_calibration_error`` bins the confidence into ``bins`` equal-width bins over [0, 1] (right-closed,
  a confidence of 0 in the first bin) and sums, over bins, the bin's share of the faces times
  |accuracy - mean confidence| in it (Guo et al., ICML 2017).
- ``kl_votes`` is the mean over faces of sum_k v_k log(v_k / p_k) over the seven emotions, 0 log 0 = 0, with
  the predicted p clipped at ``eps`` below.
"""

from __future__ import annotations

import numpy as np

from training.ferplus import EMOTIONS  # the seven-class order of every array here (app.core.EMOTIONS)

N_CLASSES = len(EMOTIONS)


def confusion(labels: np.ndarray, pred: np.ndarray, n: int = N_CLASSES) -> np.ndarray:
    """int64 [n,n]: row = true class, column = predicted class."""
    labels = np.asarray(labels, np.int64).ravel()
    pred = np.asarray(pred, np.int64).ravel()
    if labels.shape != pred.shape:
        raise ValueError(f"{len(labels)} labels for {len(pred)} predictions")
    if len(labels) and (min(labels.min(), pred.min()) < 0 or max(labels.max(), pred.max()) >= n):
        raise ValueError(f"classes must be in 0..{n - 1}")
    return np.bincount(labels * n + pred, minlength=n * n).reshape(n, n)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """float64 [n]: each class's recall (diagonal / row sum); NaN for a class absent from the truth."""
    cm = np.asarray(cm, np.float64)
    support = cm.sum(axis=1)
    return np.divide(np.diag(cm), support, out=np.full(len(cm), np.nan), where=support > 0)


def mean_class_recall(cm: np.ndarray) -> float:
    """Mean of the recalls of the classes present in the truth (NaN when the truth is empty)."""
    r = per_class_recall(cm)
    r = r[~np.isnan(r)]
    return float(r.mean()) if len(r) else float("nan")


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the truth or the predictions (sklearn's macro-F1)."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    true, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (true + predicted) > 0
    if not present.any():
        return float("nan")
    f1 = np.divide(2 * tp, true + predicted, out=np.zeros(len(cm)), where=present)  # = 2PR / (P + R)
    return float(f1[present].mean())


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    if bins < 1:
        raise ValueError("bins must be >= 1")
    c = np.asarray(confidence, np.float64).ravel()
    if len(c) and (c.min() < 0 or c.max() > 1 or np.isnan(c).any()):
        raise ValueError("confidences must lie in [0, 1]")
    return np.clip(np.ceil(c * bins).astype(np.int64) - 1, 0, bins - 1)  # (lo, hi], 0 in the first bin


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin over [0, 1]: (mean confidence, accuracy, count), for a reliability diagram; the mean
    confidence and accuracy of an empty bin are NaN."""
    idx = _bin_index(confidence, bins)
    c = np.asarray(confidence, np.float64).ravel()
    ok = np.asarray(correct, np.float64).ravel()
    if len(ok) != len(c):
        raise ValueError(f"{len(c)} confidences for {len(ok)} correctness flags")
    count = np.bincount(idx, minlength=bins)
    conf_sum = np.bincount(idx, weights=c, minlength=bins)
    ok_sum = np.bincount(idx, weights=ok, minlength=bins)
    mean_conf = np.divide(conf_sum, count, out=np.full(bins, np.nan), where=count > 0)
    acc = np.divide(ok_sum, count, out=np.full(bins, np.nan), where=count > 0)
    return mean_conf, acc, count


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Sum over equal-width bins of (bin's share of the faces) * |accuracy - mean confidence|."""
    mean_conf, acc, count = reliability(confidence, correct, bins)
    total = count.sum()
    if not total:
        return float("nan")
    filled = count > 0
    return float((count[filled] / total * np.abs(acc[filled] - mean_conf[filled])).sum())


def kl_votes(votes_dist: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean over faces of KL(votes || predicted) over the seven emotions (nats; 0 log 0 = 0)."""
    v = np.asarray(votes_dist, np.float64)
    p = np.asarray(probs, np.float64)
    if v.shape != p.shape:
        raise ValueError(f"vote distributions {v.shape} and predictions {p.shape} differ in shape")
    if not len(v):
        return float("nan")
    logs = np.log(np.where(v > 0, v, 1.0)) - np.log(np.clip(p, eps, None))
    return max(0.0, float(np.where(v > 0, v * logs, 0.0).sum(axis=1).mean()))  # no rounding below 0


def summary(labels: np.ndarray, probs: np.ndarray, votes_dist: np.ndarray | None = None, bins: int = 15) -> dict:
    """accuracy, mean_class_recall, macro_f1 and per_class_recall (by class name, EMOTIONS order, None where a
    class is absent); with ``votes_dist`` (aligned with ``labels``) also ``kl`` and ``ece`` of the confidence
    max(probs) against argmax == labels."""
    labels = np.asarray(labels, np.int64)
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape != (len(labels), N_CLASSES):
        raise ValueError(f"probabilities must be [{len(labels)},{N_CLASSES}], got {list(probs.shape)}")
    pred = probs.argmax(axis=1)
    cm = confusion(labels, pred)
    recalls = per_class_recall(cm)
    out = {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()) if len(labels) else float("nan"),
        "mean_class_recall": mean_class_recall(cm),
        "macro_f1": macro_f1(cm),
        "per_class_recall": {c: None if np.isnan(r) else float(r) for c, r in zip(EMOTIONS, recalls, strict=True)},
    }
    if votes_dist is not None:
        out["kl"] = kl_votes(votes_dist, probs)
        out["ece"] = expected_calibration_error(probs.max(axis=1), pred == labels, bins)
    return out
