"""ONNX export contract, torch/onnxruntime parity, and the manifest schema."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.core import EMOTIONS
from tests.fer_synth import make_fer
from training import export
from training.models import MODEL_NAMES, build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_contract_and_parity(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    # make BatchNorm statistics non-trivial so parity checks the real inference graph
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = export.export_onnx(model, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "input" and inp.type == "tensor(float)" and inp.shape[1:] == [1, 48, 48]
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert out.name == "logits" and out.shape[1] == 7
    for n in (1, 5):
        x = np.random.default_rng(n).random((n, 1, 48, 48), dtype=np.float32)
        got = sess.run(["logits"], {"input": x})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == (n, 7) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def _validate_manifest(manifest: dict) -> None:
    assert manifest["classes"] == list(EMOTIONS)
    for m in manifest["models"]:
        assert set(m) >= {"name", "display_name", "file", "input_size", "metrics", "training"}
        assert m["input_size"] == [48, 48]
        assert {"public_test_accuracy", "private_test_accuracy", "tta"} <= set(m["metrics"])
        assert {"config", "epochs", "train_images", "seconds", "log_dir"} <= set(m["training"])


def test_export_and_register_writes_measured_metrics(tmp_path):
    data = make_fer(14, 21, 28)
    model = build_model("ff", hidden=(32,)).eval()
    training = {"config": {}, "epochs": 1, "train_images": 14, "seconds": 1.0, "log_dir": "logs/x"}
    metrics = export.export_and_register(model, "ff", tmp_path / "zoo", data, training, tmp_path / "eval")
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    _validate_manifest(manifest)
    entry = manifest["models"][0]
    assert entry["file"] == "ff.onnx" and (tmp_path / "zoo" / "ff.onnx").exists()
    # the recorded accuracy is what onnxruntime gives on the test split
    sess = ort.InferenceSession(str(tmp_path / "zoo" / "ff.onnx"), providers=["CPUExecutionProvider"])
    x = data.test.images[:, None].astype(np.float32) / 255
    acc = float((sess.run(["logits"], {"input": x})[0].argmax(1) == data.test.labels).mean())
    assert entry["metrics"]["private_test_accuracy"] == pytest.approx(acc, abs=1e-4) == metrics["private_test_accuracy"]
    for f in ("confusion_matrix.png", "roc.png", "classification_report.txt", "metrics.json"):
        assert (tmp_path / "eval" / f).stat().st_size > 0


def test_update_manifest_replaces_and_orders(tmp_path):
    for name in ("resnet18", "ff", "cnn", "ff"):
        export.update_manifest(tmp_path, export.manifest_entry(name, f"{name}.onnx", {"v": name}, {}))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["cnn", "ff", "resnet18"]
    assert [m["display_name"] for m in manifest["models"]] == ["CNN", "FF", "ResNet18"]


def test_manifest_with_other_classes_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": ["a"], "models": []}))
    with pytest.raises(ValueError, match="classes differ"):
        export.update_manifest(tmp_path, export.manifest_entry("ff", "ff.onnx", {}, {}))
