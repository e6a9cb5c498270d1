"""training.metrics on fixtures whose answers are worked out by hand, and against sklearn on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    confusion,
    expected_calibration_error,
    kl_votes,
    macro_f1,
    mean_class_recall,
    per_class_recall,
    reliability,
    summary,
)


def _leaning():
    """Ten faces: eight of class 0, all right; two of class 1, both called class 0.
    Accuracy 8/10 = 0.8, recalls (1, 0) -> mean class recall 0.5. F1: class 0 has P = 0.8, R = 1,
    F1 = 2 * 8 / (8 + 10) = 8/9; class 1 has F1 = 0 -> macro-F1 4/9."""
    labels = np.array([0] * 8 + [1] * 2)
    pred = np.zeros(10, np.int64)
    return labels, pred


def test_confusion_accuracy_high_mean_class_recall_low():
    labels, pred = _leaning()
    cm = confusion(labels, pred)
    assert cm.shape == (7, 7) and cm[0, 0] == 8 and cm[1, 0] == 2 and cm.sum() == 10
    assert np.trace(cm) / cm.sum() == pytest.approx(0.8)
    recall = per_class_recall(cm)
    assert recall[0] == 1.0 and recall[1] == 0.0 and np.isnan(recall[2:]).all()  # absent classes: no recall
    assert mean_class_recall(cm) == pytest.approx(0.5)
    assert macro_f1(cm) == pytest.approx(4 / 9)


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError):
        confusion([0, 1], [0])
    with pytest.raises(ValueError):
        confusion([0, 7], [0, 0])


def test_a_class_only_predicted_counts_in_macro_f1_not_in_mean_class_recall():
    labels, pred = np.array([0, 0, 0, 0]), np.array([0, 0, 0, 2])  # class 2 never true, predicted once
    cm = confusion(labels, pred)
    assert mean_class_recall(cm) == pytest.approx(0.75)  # class 0 alone
    assert macro_f1(cm) == pytest.approx((2 * 3 / 7 + 0) / 2)  # class 0: P 1, R 3/4, F1 6/7; class 2: 0


def test_agrees_with_sklearn_on_random_data():
    from sklearn.metrics import f1_score, recall_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.integers(0, 7, 500)
        pred = np.where(rng.random(500) < 0.5, labels, rng.integers(0, 7, 500))
        cm = confusion(labels, pred)
        assert mean_class_recall(cm) == pytest.approx(recall_score(labels, pred, average="macro"))
        assert macro_f1(cm) == pytest.approx(f1_score(labels, pred, average="macro"))
        np.testing.assert_allclose(per_class_recall(cm), recall_score(labels, pred, average=None))


def test_ece_of_perfectly_calibrated_bins_is_zero():
    # 10 faces at confidence 0.9 (9 right) and 10 at 0.6 (6 right): every bin's accuracy is its confidence
    conf = np.array([0.9] * 10 + [0.6] * 10)
    correct = np.array([1] * 9 + [0] + [1] * 6 + [0] * 4, bool)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_known_value_and_reliability_bins():
    # bin (0.8667, 0.9333]: 4 faces at 0.9, 2 right (gap 0.4); bin (0.4667, 0.5333]: 4 faces at 0.5, 2 right (gap 0)
    conf = np.array([0.9] * 4 + [0.5] * 4)
    correct = np.array([1, 1, 0, 0, 1, 0, 1, 0], bool)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.5 * 0.4)
    mean_conf, acc, count = reliability(conf, correct)
    assert count.sum() == 8 and count[13] == 4 and count[7] == 4  # 0.9 * 15 = 13.5 -> bin 13; 7.5 -> bin 7
    assert mean_conf[13] == pytest.approx(0.9) and acc[13] == pytest.approx(0.5)
    assert np.isnan(acc[0]) and count[0] == 0  # empty bins: no accuracy
    # the edges: confidence 1 falls in the last bin, 0 in the first
    _, _, count = reliability(np.array([0.0, 1.0]), np.array([0, 1]), bins=4)
    assert count.tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError):
        reliability(np.array([1.5]), np.array([1]))


def test_kl_of_identical_distributions_is_zero_and_a_two_class_value():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(7), 20)
    assert kl_votes(p, p) == pytest.approx(0.0, abs=1e-12)
    votes = np.zeros((1, 7))
    votes[0, :2] = [0.5, 0.5]  # the other five emotions: nobody voted, 0 log 0 = 0
    pred = np.zeros((1, 7))
    pred[0, :2] = [0.25, 0.75]
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # 0.1438 nats
    assert kl_votes(votes, pred) == pytest.approx(expected)
    # a class the votes hold but the model calls impossible costs log(1 / eps), not infinity
    assert math.isfinite(kl_votes(np.eye(7)[:1], np.eye(7)[1:2]))


def test_summary_names_classes_and_adds_kl_and_ece_with_votes():
    labels, _ = _leaning()
    probs = np.zeros((10, 7))
    probs[:, 0], probs[:, 1] = 0.8, 0.2  # every face called class 0 at confidence 0.8
    s = summary(labels, probs)
    assert s["accuracy"] == pytest.approx(0.8) and s["mean_class_recall"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(4 / 9) and s["n"] == 10
    assert list(s["per_class_recall"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert s["per_class_recall"]["angry"] == 1.0 and s["per_class_recall"]["fear"] is None
    assert "kl" not in s and "ece" not in s
    s = summary(labels, probs, votes_dist=probs)
    assert s["kl"] == pytest.approx(0.0, abs=1e-12)
    assert s["ece"] == pytest.approx(0.0, abs=1e-12)  # confidence 0.8, 8 of 10 right
    with pytest.raises(ValueError):
        summary(labels, probs[:, :6])


def test_evaluate_score_carries_the_balanced_metrics_and_kl_ece_with_votes():
    from training.evaluate import score, score_line

    labels = np.array([0] * 8 + [1] * 2)
    images = np.zeros((10, 48, 48), np.uint8)
    logits = np.log(np.array([[0.8, 0.2, 0, 0, 0, 0, 0]]) + 1e-12).astype(np.float32)
    m = score(lambda x: np.repeat(logits, len(x), axis=0), images, labels, tta=True,
              votes_dist=np.tile(np.array([0.8, 0.2, 0, 0, 0, 0, 0]), (10, 1)))
    assert m["accuracy"] == pytest.approx(0.8) and m["mean_class_recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(4 / 9) and m["mean_class_recall_tta"] == pytest.approx(0.5)
    assert m["kl"] == pytest.approx(0.0, abs=1e-5) and m["ece"] == pytest.approx(0.0, abs=1e-5)
    assert {"confusion_matrix", "per_class_recall", "roc_auc", "accuracy_tta"} <= set(m)  # the old keys stay
    line = score_line(m, "FER+ majority")
    assert line.startswith("accuracy 0.8000, mean class recall 0.5000, macro-F1 0.4444 on 10 images (FER+ majority), "
                           "KL 0.0000, ECE 0.0000")
    assert "kl" not in score(lambda x: np.repeat(logits, len(x), axis=0), images, labels)


def test_truth_distribution_is_aligned_with_truth_split():
    from training.datasets import Split
    from training.ferplus import Votes, truth_distribution, truth_split

    # canonical vote columns: the seven emotions, contempt, unknown, not-a-face
    votes = {"row:0": [6, 0, 0, 4, 0, 0, 0, 0, 0, 0],  # angry majority
             "row:1": [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],  # a tie: no majority, leaves both
             "row:2": [0, 0, 0, 1, 0, 0, 7, 2, 0, 0]}  # neutral; contempt dropped from the distribution
    v = Votes({k: np.array(x, np.float32) for k, x in votes.items()}, "test")
    split = Split(np.zeros((3, 48, 48), np.uint8), np.zeros(3, np.int64), np.array(list(votes)))
    kept = truth_split(split, v)
    dist = truth_distribution(split, v)
    assert kept.labels.tolist() == [0, 6] and dist.shape == (2, 7)
    np.testing.assert_allclose(dist[0], [0.6, 0, 0, 0.4, 0, 0, 0])
    np.testing.assert_allclose(dist[1], [0, 0, 0, 1 / 8, 0, 0, 7 / 8])
