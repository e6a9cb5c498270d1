"""Evaluation: single models, ensembles of a zoo, and the ensemble metric recorded in the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.fer_synth import make_fer, write_csv
from training import evaluate, export

torch.set_num_threads(1)


@pytest.fixture
def zoo(exported_zoo):
    return exported_zoo


def test_ensemble_is_mean_of_probabilities(zoo):
    preds = [evaluate.onnx_predictor(m.file) for m in evaluate.zoo_models(zoo)]
    x = np.random.default_rng(0).random((4, 1, 48, 48), dtype=np.float32)
    want = (evaluate.softmax(preds[0](x)) + evaluate.softmax(preds[1](x))) / 2
    got = evaluate.softmax(evaluate.ensemble_predictor(preds)(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_cli_scores_zoo_and_records_ensemble(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(14, 21, 21), tmp_path / "fer.csv")
    rc = evaluate.main(["--zoo", str(zoo), "--data", str(csv_path), "--split", "test", "--tta", "--record",
                        "--out", str(tmp_path / "ev")])
    assert rc == 0
    assert "test: accuracy" in capsys.readouterr().out
    manifest = json.loads((zoo / "manifest.json").read_text())
    ens = manifest["ensemble"]
    assert ens["models"] == ["cnn", "ff"] and 0 <= ens["private_test_accuracy"] <= 1
    assert "private_test_accuracy_tta" in ens
    assert (tmp_path / "ev" / "confusion_matrix.png").exists()
    # replacing a model makes the recorded ensemble stale, so it is dropped
    export.update_manifest(zoo, export.manifest_entry("ff", "ff.onnx", {}, {}))
    assert "ensemble" not in json.loads((zoo / "manifest.json").read_text())


def test_weighted_ensemble_and_zoo_weights(zoo):
    models = evaluate.zoo_models(zoo)
    assert [m.name for m in models] == ["cnn", "ff"] and [m.ensemble_weight for m in models] == [1.0, 1.0]
    preds = [evaluate.onnx_predictor(m.file) for m in models]
    x = np.random.default_rng(0).random((4, 1, 48, 48), dtype=np.float32)
    want = 0.8 * evaluate.softmax(preds[0](x)) + 0.2 * evaluate.softmax(preds[1](x))
    got = evaluate.softmax(evaluate.ensemble_predictor(preds, [4, 1])(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_record_needs_a_zoo_alone(zoo, tmp_path, capsys):
    rc = evaluate.main([str(zoo / "cnn.onnx"), "--zoo", str(zoo), "--record", "--data", str(tmp_path / "x.csv")])
    assert rc == 2 and "--record scores a zoo" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert evaluate.main(["--data", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("kind", ["missing", "truncated", "not_onnx"])
def test_bad_model_file_is_one_line_error_naming_it(zoo, tmp_path, monkeypatch, capsys, kind):
    """A missing, truncated or foreign .onnx gets the app's own one-line contract error, not ORT's traceback."""
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(14, 21, 21), tmp_path / "fer.csv")
    bad = tmp_path / "model.onnx"
    if kind == "truncated":
        bad.write_bytes((zoo / "cnn.onnx").read_bytes()[:3000])
    elif kind == "not_onnx":
        bad.write_text("hello")
    rc = evaluate.main([str(bad), "--data", str(csv_path), "--split", "val"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"error: {bad}")
