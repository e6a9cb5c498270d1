"""Training anywhere: device selection with a one-line error, and two CPU processes (torchrun, gloo) that train
the same model a single process trains, resume a run and export a valid ONNX file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fer_synth import make_fer, write_csv
from tests.kill import fit_killed_at_epoch
from training import checkpoint, train
from training.device import DeviceError, resolve_device
from training.precision import FP32, choose_precision, cpu_has_native_bf16
from training.train import TrainConfig, fit

REPO = Path(__file__).resolve().parents[1]


def test_auto_and_cpu_resolve_and_missing_devices_raise_one_line():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        for spec in ("cuda", "cuda:3", "mps"):
            with pytest.raises(DeviceError) as e:
                resolve_device(spec)
            assert "\n" not in str(e.value) and "--device cpu" in str(e.value)
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_precision_follows_the_device():
    cpu = torch.device("cpu")
    assert choose_precision(cpu, mixed=False) is FP32
    assert choose_precision(cpu).name == ("bf16 autocast" if cpu_has_native_bf16() else "fp32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cli_missing_gpu_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "training.train", "--model", "ff", "--data", str(tmp_path / "absent.csv"),
         "--device", "cuda", "--log-root", str(tmp_path / "logs"), "--out", str(tmp_path / "zoo")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: --device cuda")
    assert not (tmp_path / "logs").exists()  # fails before any run folder or data is touched


# ------------------------------------------------------------------------------------- two processes

# SGD, fp32, no dropout: the only differences left between 2 processes and 1 are float rounding, so a tight
# tolerance is honest. (Adam would amplify the rounding noise of gradients that are exactly zero in theory,
# e.g. a bias right before BatchNorm; dropout masks cannot match; maxpool ties on the synthetic faces' flat
# squares flip with rounding, so the check uses the ff model.) Class weights + label smoothing + shift +
# erase exercise the loss scaling and the sharded augmentation.
ARGS = ["--model", "ff", "--dropout", "0", "--batch-size", "32", "--optimizer", "sgd", "--lr", "0.05",
        "--no-amp", "--erase", "0.5", "--class-weighted", "--label-smoothing", "0.1", "--device", "cpu",
        "--quiet"]


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMOTIONLENS_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.train", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _single(csv: Path, run_dir: Path, epochs: int) -> TrainConfig:
    args = train.build_parser().parse_args([*ARGS, "--data", str(csv), "--epochs", str(epochs)])
    return train.config_from_args(args)


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k].double(), wb[k].double(), rtol=1e-4, atol=2e-5, msg=k)


@pytest.fixture()
def fer_csv(tmp_path):
    return write_csv(make_fer(256, 28, 14), tmp_path / "fer.csv")


def test_two_gloo_processes_train_like_one_and_export(tmp_path, fer_csv, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    logs, zoo = tmp_path / "logs", tmp_path / "zoo"
    proc = _torchrun([*ARGS, "--data", str(fer_csv), "--epochs", "1", "--log-root", str(logs), "--out", str(zoo)],
                     tmp_path)
    assert "2 processes (gloo)" in proc.stdout and proc.stdout.count("exported") == 1
    (run,) = logs.iterdir()  # rank 1 wrote no run folder of its own
    history = json.loads((run / "history.json").read_text())
    assert history[0]["processes"] == 2 and history[0]["device"] == "cpu"

    data = train.load_fer2013(fer_csv)
    torch.set_num_threads(1)
    single = fit(_single(fer_csv, tmp_path / "single", 1), data, tmp_path / "single", progress=False,
                 tensorboard=False)
    assert history[0]["train_loss"] == pytest.approx(single.history[0]["train_loss"], rel=1e-5)
    assert history[0]["val_loss"] == pytest.approx(single.history[0]["val_loss"], rel=1e-4)
    _assert_same_weights(run / "last.pt", tmp_path / "single" / "last.pt")  # after its 8 SGD steps

    entry = json.loads((zoo / "manifest.json").read_text())["models"][0]
    assert entry["training"]["processes"] == 2 and entry["training"]["device"] == "cpu"
    sess = ort.InferenceSession(str(zoo / "ff.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(["logits"], {"input": np.random.default_rng(0).random((3, 1, 48, 48), np.float32)})[0]
    assert out.shape == (3, 7) and np.isfinite(out).all()


def test_distributed_resume_continues_a_killed_run(tmp_path, fer_csv, monkeypatch):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    data = train.load_fer2013(fer_csv)
    cfg = _single(fer_csv, tmp_path, 2)
    fit(cfg, data, tmp_path / "whole", progress=False, tensorboard=False)

    fit_killed_at_epoch(monkeypatch, cfg, data, tmp_path / "logs" / "ff-cut")
    _torchrun(["--resume", str(tmp_path / "logs" / "ff-cut"), "--data", str(fer_csv), "--device", "cpu",
               "--quiet", "--no-export"], tmp_path)
    history = json.loads((tmp_path / "logs" / "ff-cut" / "history.json").read_text())
    assert [h["processes"] for h in history] == [1, 2]
    _assert_same_weights(tmp_path / "logs" / "ff-cut" / "last.pt", tmp_path / "whole" / "last.pt")
