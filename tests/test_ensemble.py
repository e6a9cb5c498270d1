"""Ensemble weights: chosen on PublicTest by grid search, written to the manifest, used by evaluate and the app."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.models import Labeler
from tests.fer_synth import make_fer, write_csv
from training import ensemble, evaluate

torch.set_num_threads(1)


def test_weight_grid_covers_the_simplex():
    grid = ensemble.weight_grid(3, 0.5)
    assert sorted(map(tuple, grid)) == sorted([(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.5, 0, 0.5),
                                               (0, 0.5, 0.5)])
    grid = ensemble.weight_grid(3, 0.05)
    assert len(grid) == 231 and np.allclose(grid.sum(1), 1)


def test_fit_weights_drops_a_model_that_only_hurts():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 400)
    good = np.eye(7)[labels] * 0.6 + rng.random((400, 7)) * 0.5  # right most of the time
    noise = rng.random((400, 7)) * 3  # confident and random: it drags an equal mean down
    probs = [p / p.sum(1, keepdims=True) for p in (good, noise)]
    weights, acc = ensemble.fit_weights(probs, labels, step=0.1)
    equal = (np.mean(probs, axis=0).argmax(1) == labels).mean()
    assert acc > equal and weights[0] > weights[1]
    assert acc == pytest.approx((probs[0].argmax(1) == labels).mean(), abs=0.02)


def test_fit_weights_prefers_the_even_split_among_ties():
    labels = np.array([0, 1, 2])
    same = np.eye(7)[labels]
    weights, acc = ensemble.fit_weights([same, same, same], labels, step=0.25)
    assert acc == 1.0
    np.testing.assert_allclose(weights, [0.25, 0.25, 0.5])  # one of the three most even points of that grid


@pytest.fixture
def zoo(exported_zoo):
    return exported_zoo


def test_cli_writes_weights_that_evaluate_and_the_app_use(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    data = make_fer(14, 21, 21)
    csv_path = write_csv(data, tmp_path / "fer.csv")
    assert evaluate.main(["--zoo", str(zoo), "--data", str(csv_path), "--split", "test", "--record"]) == 0
    assert ensemble.main(["--zoo", str(zoo), "--data", str(csv_path), "--step", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "equal weights: PublicTest" in out and "chosen weights: cnn" in out
    ens = json.loads((zoo / "manifest.json").read_text())["ensemble"]
    assert ens["models"] == ["cnn", "ff"] and sum(ens["weights"].values()) == pytest.approx(1)
    assert "private_test_accuracy" not in ens  # scored with other weights: stale, so dropped
    assert ens["selection"]["public_test_accuracy_chosen_weights"] >= ens["selection"][
        "public_test_accuracy_equal_weights"]
    # evaluate --zoo scores exactly the weighted mean the app computes, and --record keeps the weights
    assert evaluate.main(["--zoo", str(zoo), "--data", str(csv_path), "--split", "val", "--record"]) == 0
    ens = json.loads((zoo / "manifest.json").read_text())["ensemble"]
    assert ens["public_test_accuracy"] == ens["selection"]["public_test_accuracy_chosen_weights"]
    lab = Labeler(zoo, threads=1)
    assert [m.ensemble_weight for m in lab.models] == [ens["weights"]["cnn"], ens["weights"]["ff"]]
    _, app_probs = lab.classify(data.val.images)
    assert (app_probs.argmax(1) == data.val.labels).mean() == pytest.approx(ens["public_test_accuracy"], abs=1e-4)


def test_cli_errors_are_one_line(zoo, tmp_path, capsys):
    assert ensemble.main(["--zoo", str(zoo), "--data", str(tmp_path / "none.csv")]) == 2
    assert ensemble.main(["--zoo", str(zoo), "--data", "x", "--step", "0"]) == 2
    assert ensemble.main(["--zoo", str(tmp_path / "nozoo"), "--data", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "--step must be" in err and "model zoo folder not found" in err


def test_cli_chooses_weights_against_the_ferplus_majority(zoo, tmp_path, monkeypatch, capsys):
    """--ferplus: the weights are fitted to the FER+ majority of the PublicTest faces that have one (here a
    different emotion from FER2013's label on half of them, and a tie, so no majority, on every fifth)."""
    import csv

    from training.ferplus import VOTE_COLUMNS, read_votes, truth_split

    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    data = make_fer(14, 21, 21)
    csv_path = write_csv(data, tmp_path / "fer.csv")
    from tests.fer_synth import PREFIX as order  # write_csv's row order
    ferplus_of = [3, 0, 2, 1, 4, 5, 6]  # VOTE_COLUMNS index of each EMOTIONS class (neutral is column 0)
    with open(tmp_path / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for split, usage in order.items():
            for i, label in enumerate(data.split(split).labels):
                v = [0] * 10
                if i % 5 == 4:
                    v[ferplus_of[0]] = v[ferplus_of[3]] = 5  # a tie: no majority
                else:
                    v[ferplus_of[(int(label) + i % 2) % 7]] = 10
                w.writerow([usage, f"fer{i:07d}.png", *v])
    assert ensemble.main(["--zoo", str(zoo), "--data", str(csv_path), "--step", "0.25",
                          "--ferplus", str(tmp_path / "fer2013new.csv")]) == 0
    out = capsys.readouterr().out
    from training.datasets import load_fer2013

    truth = truth_split(load_fer2013(csv_path).split("val"), read_votes(tmp_path / "fer2013new.csv"))
    assert len(truth) == 21 - 21 // 5 and f"truth: FER+ majority, {len(truth)} PublicTest faces" in out
    ens = json.loads((zoo / "manifest.json").read_text())["ensemble"]
    assert ens["weights_truth"] == "ferplus" and "FER+ majority" in ens["method"]
    _, probs = Labeler(zoo, threads=1).classify(truth.images)
    assert (probs.argmax(1) == truth.labels).mean() == pytest.approx(
        ens["selection"]["public_test_accuracy_chosen_weights"], abs=1e-4)
