"""The augmentation comparison trains both arms on the same number of images and reports both."""

from __future__ import annotations

import json

import torch

from tests.fer_synth import make_fer, write_csv
from training import ablation, augment
from training.train import TrainConfig

torch.set_num_threads(1)


def test_arms_see_equal_images():
    a, b = ablation.arms(TrainConfig(model="ff", epochs=30), "aug.npz", 2).values()
    assert (a.augmented, a.epochs) == ("aug.npz", 2) and (b.augmented, b.epochs) == (None, 8)


def test_cli_runs_both_arms(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(64, 14, 7), tmp_path / "fer.csv")
    assert augment.main(["--data", str(csv_path), "--out", str(tmp_path / "aug.npz")]) == 0
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": "ff", "model_params": {"hidden": [16]}, "batch_size": 16}))
    rc = ablation.main(["--config", str(cfg), "--data", str(csv_path), "--augmented", str(tmp_path / "aug.npz"),
                        "--aug-epochs", "1", "--log-root", str(tmp_path / "logs")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| offline-augmented (4x) | 256 | 1 | 256 |" in out
    assert "| originals only | 64 | 4 | 256 |" in out
    (run,) = (tmp_path / "logs").iterdir()
    assert (run / "ablation.md").exists() and not list(run.rglob("*.pt"))
