"""FER+ label sources (training.ferplus): the vote rules, both published file forms, the soft-target loss, and
training end to end with each source on a tiny data set made here (no ../shared needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core import EMOTIONS
from training import ferplus
from training.config import TrainConfig
from training.datasets import load_fer2013, read_csv
from training.ferplus import VOTE_COLUMNS, distribution, majority, not_a_face, read_votes, targets, truth_split
from training.losses import Targets, batch_loss, distribution_loss, hard_loss

# One row per case, votes in FER+'s file order: neutral, happiness, surprise, sadness, anger, disgust, fear,
# contempt, unknown, NF; then the expected majority (EMOTIONS name, or None) with contempt dropped / folded.
CASES = [
    ((0, 9, 0, 0, 0, 0, 0, 0, 1, 0), "happy", "happy"),
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "neutral", "neutral"),
    ((5, 5, 0, 0, 0, 0, 0, 0, 0, 0), None, None),  # a tie for the top
    ((2, 0, 0, 0, 1, 3, 0, 4, 0, 0), None, "disgust"),  # contempt on top: dropped, or 3+4 folded into disgust
    ((0, 0, 0, 0, 2, 3, 0, 3, 2, 0), None, "disgust"),  # disgust ties contempt: no majority unless folded
    ((1, 0, 0, 0, 0, 0, 0, 0, 6, 3), None, None),  # unknown on top
    ((0, 0, 0, 0, 0, 0, 0, 0, 0, 10), None, None),  # not a face
    ((0, 0, 0, 0, 0, 0, 0, 0, 0, 0), None, None),  # no FER+ label at all
    ((0, 0, 1, 0, 0, 0, 6, 0, 0, 3), "fear", "fear"),
]


def canonical_votes() -> np.ndarray:
    return ferplus.canonical(np.array([c[0] for c in CASES], np.float32))


@pytest.mark.parametrize("contempt,column", [("drop", 1), ("disgust", 2)])
def test_majority_rules(contempt, column):
    got = majority(canonical_votes(), contempt)
    want = [EMOTIONS.index(c[column]) if c[column] else -1 for c in CASES]
    assert got.tolist() == want


def test_not_a_face_and_distribution():
    v = canonical_votes()
    assert not_a_face(v).tolist() == [False] * 6 + [True, True, False]
    d = distribution(v, "drop")
    assert np.allclose(d[0], np.eye(7)[EMOTIONS.index("happy")])  # unknown's vote is not an emotion
    assert np.allclose(d[:6].sum(1), 1) and np.allclose(d[6:8], 0)
    assert d[3, EMOTIONS.index("disgust")] == pytest.approx(3 / 6)  # contempt's 4 votes left out
    assert distribution(v, "disgust")[3, EMOTIONS.index("disgust")] == pytest.approx(7 / 10)


def test_soft_targets_keep_a_nonface_with_emotion_votes_only_when_asked(tmp_path):
    # not-a-face on top (6 votes) but 4 for neutral: the only kind of not-a-face image a soft target can use
    votes = [CASES[0][0], (4, 0, 0, 0, 0, 0, 0, 0, 0, 6)]
    _write_votes_by_file(tmp_path / "votes.csv", ["train/happy/a.jpg", "train/happy/b.jpg"], votes)
    import cv2

    for n in ("train/happy/a.jpg", "train/happy/b.jpg"):
        (tmp_path / "fer" / n).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "fer" / n), np.full((48, 48), 128, np.uint8))
    data = load_fer2013(tmp_path / "fer", cache=False)
    v = read_votes(tmp_path / "votes.csv")
    assert targets(data.train, v, "ferplus-soft").keep.tolist() == [True, False]
    kept = targets(data.train, v, "ferplus-soft", drop_nonfaces=False)
    assert kept.keep.tolist() == [True, True] and kept.labels[1] == EMOTIONS.index("neutral")
    assert targets(data.train, v, "ferplus-majority", drop_nonfaces=False).keep.tolist() == [True, False]


def _write_votes_by_file(path: Path, keys: list[str], votes: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "usage", "ferplus_image", "match_distance", *VOTE_COLUMNS])
        for i, (k, v) in enumerate(zip(keys, votes, strict=True)):
            matched = any(v)
            w.writerow([k, "Training", f"fer{i:07d}.png" if matched else "", "0.4" if matched else "",
                        *(v if matched else [""] * 10)])


def _synthetic_csv(path: Path, rows: list[tuple[int, str]]) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for label, usage in rows:
            w.writerow([label, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])


def test_fer2013new_rows_line_up_with_fer2013_csv(tmp_path):
    """fer2013new.csv is keyed by row: the n-th data row of fer2013.csv gets the n-th row's votes, whatever its
    split, and a row with an empty Image name (FER+'s not-a-face) has no label."""
    usages = ["Training", "PublicTest", "Training", "PrivateTest", "Training", "PublicTest"]
    _synthetic_csv(tmp_path / "fer2013.csv", [(i % 7, u) for i, u in enumerate(usages)])
    votes = [CASES[0][0], CASES[1][0], CASES[8][0], CASES[6][0], CASES[3][0], CASES[0][0]]
    with open(tmp_path / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for i, (u, v) in enumerate(zip(usages, votes, strict=True)):
            w.writerow([u, "" if v == CASES[6][0] else f"fer{i:07d}.png", *v])
    data = read_csv(tmp_path / "fer2013.csv")
    assert data.train.keys.tolist() == ["row:0", "row:2", "row:4"]
    assert data.val.keys.tolist() == ["row:1", "row:5"] and data.test.keys.tolist() == ["row:3"]
    v = read_votes(tmp_path / "fer2013new.csv")
    assert majority(v.for_split(data.train)).tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("fear"), -1]
    assert majority(v.for_split(data.val)).tolist() == [EMOTIONS.index("neutral"), EMOTIONS.index("happy")]
    assert not_a_face(v.for_split(data.test)).tolist() == [True]
    assert len(truth_split(data.test, v)) == 0


def test_votes_by_file_attach_to_the_image_folder(tmp_path):
    import cv2

    root = tmp_path / "fer"
    names = ["train/happy/Training_1.jpg", "train/sad/Training_2.jpg", "test/angry/PublicTest_3.jpg",
             "test/fear/PrivateTest_4.jpg"]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / n), np.full((48, 48), 128, np.uint8))
    _write_votes_by_file(tmp_path / "votes.csv", names, [CASES[0][0], CASES[7][0], CASES[1][0], CASES[2][0]])
    data = load_fer2013(root, cache=False)
    v = read_votes(tmp_path / "votes.csv")
    t = targets(data.train, v, "fer2013")  # the unmatched file is not a face: it leaves the training set
    assert t.keep.tolist() == [True, False]
    assert targets(data.train, v, "fer2013", drop_nonfaces=False).keep.tolist() == [True, True]
    assert truth_split(data.val, v).labels.tolist() == [EMOTIONS.index("neutral")]
    assert len(truth_split(data.test, v)) == 0  # a tie has no majority


def test_votes_that_match_nothing_are_a_one_line_error(tmp_path):
    _synthetic_csv(tmp_path / "fer2013.csv", [(0, "Training")])
    _write_votes_by_file(tmp_path / "votes.csv", ["train/happy/x.jpg"], [CASES[0][0]])
    with pytest.raises(ValueError, match="no FER\\+ votes match"):
        read_votes(tmp_path / "votes.csv").for_split(read_csv(tmp_path / "fer2013.csv").train)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a FER\\+ votes file"):
        read_votes(tmp_path / "bad.csv")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_soft_loss_equals_hard_loss_on_one_hot_votes(smoothing):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, generator=g)
    y = torch.randint(0, 7, (16,), generator=g)
    cfg = TrainConfig(label_smoothing=smoothing)
    one_hot = torch.nn.functional.one_hot(y, 7).float()
    assert torch.allclose(distribution_loss(logits, one_hot, y, cfg, 1), hard_loss(logits, y, y, cfg, None, 1))
    perm = torch.randperm(16, generator=g)  # and inside a mixed batch, as batch_loss mixes them
    mixed_hard = batch_loss(logits, Targets(y, y, perm=perm, lam=0.7), cfg)
    mixed_soft = batch_loss(logits, Targets(y, y, perm=perm, lam=0.7, dist=one_hot), cfg)
    assert torch.allclose(mixed_hard, mixed_soft)
    # a real distribution gives a different, larger-entropy target: the loss is not the hard one
    spread = torch.full((16, 7), 1 / 7)
    assert not torch.allclose(distribution_loss(logits, spread, y, cfg, 1), hard_loss(logits, y, y, cfg, None, 1))


@pytest.mark.parametrize("source", ferplus.LABEL_SOURCES)
def test_training_runs_end_to_end_with_each_label_source(tmp_path, source):
    """A tiny fer2013.csv + fer2013new.csv: train one epoch, validate on the FER+ majority, export, and the
    manifest records both truths and the label source."""
    import json

    from training.train import main

    rng = np.random.default_rng(1)
    usages = ["Training"] * 96 + ["PublicTest"] * 24 + ["PrivateTest"] * 24
    _synthetic_csv(tmp_path / "fer2013.csv", [(int(rng.integers(0, 7)), u) for u in usages])
    with open(tmp_path / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for i, u in enumerate(usages):
            v = [0] * 10
            v[int(rng.integers(0, 7))] += 6
            v[int(rng.integers(0, 10))] += 4
            w.writerow([u, "" if i % 31 == 0 else f"fer{i:07d}.png", *v])
    zoo = tmp_path / "zoo"
    rc = main(["--model", "ff", "--data", str(tmp_path / "fer2013.csv"), "--epochs", "1", "--batch-size", "8",
               "--labels", source, "--ferplus", str(tmp_path / "fer2013new.csv"), "--out", str(zoo),
               "--log-root", str(tmp_path / "logs"), "--quiet", "--no-amp"])
    assert rc == 0
    entry = json.loads((zoo / "manifest.json").read_text())["models"][0]
    assert entry["labels"] == source
    assert {"private_test_accuracy", "ferplus_private_test_accuracy", "ferplus_public_test_accuracy"} <= set(
        entry["metrics"])
    run = next((tmp_path / "logs").iterdir())
    assert (run / "ferplus" / "confusion_matrix.png").exists() and (run / "confusion_matrix.png").exists()
