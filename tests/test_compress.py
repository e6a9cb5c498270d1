"""Smaller ONNX files keep the contract and the predictions, and are refused when accuracy drops."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.fer_synth import make_fer
from training import compress, export
from training.models import build_model

torch.set_num_threads(1)


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, out.name, out.type) == ("input", "tensor(float)", "logits", "tensor(float)")
    return sess.run(["logits"], {"input": x})[0]


@pytest.mark.parametrize("name, fmt, ratio", [("cnn", "fp16", 0.55), ("ff", "fp16", 0.55), ("ff", "int8", 0.3)])
def test_smaller_file_same_contract_close_outputs(tmp_path, name, fmt, ratio):
    torch.manual_seed(0)
    params = {"cnn": {"width": 8, "fc": 32}, "ff": {"hidden": (256, 64)}}[name]
    fp32 = export.export_onnx(build_model(name, **params).eval(), tmp_path / "m.onnx")
    small = compress.compress(fp32, fmt, tmp_path / f"m.{fmt}.onnx")
    assert small.stat().st_size < ratio * fp32.stat().st_size
    x = np.random.default_rng(0).random((6, 1, 48, 48), dtype=np.float32)
    a, b = _run(fp32, x), _run(small, x)
    assert b.shape == (6, 7)
    np.testing.assert_allclose(a, b, atol={"fp16": 0.02, "int8": 0.25}[fmt])
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.8


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown weights format"):
        compress.compress("x.onnx", "fp8")


def test_export_keeps_compressed_file_only_within_tolerance(tmp_path):
    data = make_fer(14, 70, 14)
    model = build_model("ff", hidden=(256,)).eval()
    kept = export.export_and_register(model, "ff", tmp_path / "a", data, {}, None, weights_format="fp16")
    assert kept["weights"] == "fp16" and "fp32_public_test_accuracy" in kept
    # a tolerance below zero can never hold: the fp32 file must stay
    refused = export.export_and_register(model, "ff", tmp_path / "b", data, {}, None, weights_format="int8",
                                         tolerance=-1.0)
    assert refused["weights"] == "fp32" and "int8 rejected" in refused["weights_note"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["ff.onnx", "ff.saliency.onnx", "manifest.json"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["models"][0]["metrics"]["weights"] == "fp32"


def test_zoo_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        data = make_fer(14, 14, 14)
        export.export_and_register(build_model("ff", hidden=(16,)).eval(), "ff", tmp_path, data, {}, None,
                                   weights_format="int8", tolerance=1.0)
    finally:
        os.umask(old)
    for f in ("ff.onnx", "manifest.json"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o644, f
