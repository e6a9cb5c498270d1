"""Training loop: it learns, logs what it promises, resumes exactly after a mid-epoch kill, and exports."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from tests.fer_synth import make_fer, write_csv
from training import checkpoint, train
from training.train import TrainConfig, TrainingDiverged, fit

torch.set_num_threads(1)

SMALL = {"cnn": {"width": 8, "fc": 32}, "ff": {"hidden": [64, 32]}, "resnet18": {}}


def _cfg(model="ff", **kw) -> TrainConfig:
    base = {"model": model, "model_params": dict(SMALL[model]), "epochs": 3, "batch_size": 16, "lr": 3e-3,
            "patience": 99, "seed": 1}
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_ff_learns_synthetic_faces(tmp_path):
    data = make_fer(210, 70, 14)
    result = fit(_cfg(epochs=6, online_aug="none"), data, tmp_path / "run", progress=False)
    assert result.best_val_accuracy > 0.6  # chance is 1/7
    assert result.epochs_run == 6 and len(result.history) == 6
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_second"} <= set(history[0])
    for f in ("curves.png", "config.json", "best.pt", "last.pt"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    if importlib.util.find_spec("tensorboardX"):  # optional: the GPU machines run without it
        assert list((tmp_path / "run").glob("events.out.tfevents.*"))


class _Kill(BaseException):
    """Stands in for SIGKILL: nothing after the raise runs, only files already on disk survive."""


@pytest.mark.parametrize("model", ["cnn", "ff", "resnet18"])
def test_resume_after_mid_epoch_kill_matches_uninterrupted_run(tmp_path, monkeypatch, model):
    data = make_fer(64, 14, 7)
    cfg = _cfg(model, epochs=3, online_aug="shift", erase=0.5)
    whole = fit(cfg, data, tmp_path / "whole", progress=False, tensorboard=False)

    real_augment = train.online_augment
    calls = {"n": 0}

    def dying_augment(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # 4 batches per epoch: this is the middle of epoch 2
            raise _Kill
        return real_augment(*a, **k)

    monkeypatch.setattr(train, "online_augment", dying_augment)
    with pytest.raises(_Kill):
        fit(cfg, data, tmp_path / "cut", progress=False, tensorboard=False)
    assert checkpoint.load(tmp_path / "cut" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train, "online_augment", real_augment)
    resumed = fit(cfg, data, tmp_path / "cut", resume=True, progress=False, tensorboard=False)

    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_acc"] == b["val_acc"]
    w1 = checkpoint.load(tmp_path / "whole" / "last.pt")["model"]
    w2 = checkpoint.load(tmp_path / "cut" / "last.pt")["model"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-5, atol=1e-6)


def test_early_stopping(tmp_path):
    data = make_fer(64, 14, 7)
    result = fit(_cfg(epochs=8, lr=1e-9, patience=2, scheduler="none"), data, tmp_path / "r", progress=False,
                 tensorboard=False)
    assert result.epochs_run < 8


def test_divergence_is_reported(tmp_path):
    data = make_fer(64, 14, 7)
    with pytest.raises(TrainingDiverged, match="loss became"):
        fit(_cfg(optimizer="sgd", lr=1e12, scheduler="none", bf16=False), data, tmp_path / "r", progress=False,
            tensorboard=False)


def test_online_augment_is_deterministic_and_shape_preserving():
    x = torch.rand(8, 1, 48, 48)
    cfg = TrainConfig(erase=0.5)
    a = train.online_augment(x, torch.Generator().manual_seed(3), cfg)
    b = train.online_augment(x, torch.Generator().manual_seed(3), cfg)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(train.online_augment(x, torch.Generator(), TrainConfig(online_aug="none")), x)


def test_class_weights_favour_rare_classes():
    w = train.class_weights(np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6]))
    assert w[1] > w[0] and w.mean() == pytest.approx(1.0)


def test_config_validation_and_best_json_form(tmp_path):
    with pytest.raises(ValueError, match="unknown config keys: colour"):
        TrainConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig.from_dict({"optimizer": "lbfgs"})
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"config": {"model": "ff", "lr": 0.01, "epochs": 4}, "search": {"acc": 0.5}}))
    args = train.build_parser().parse_args(["--config", str(best), "--data", "x", "--epochs", "2"])
    cfg = train.config_from_args(args)
    assert (cfg.model, cfg.lr, cfg.epochs) == ("ff", 0.01, 2)  # command line beats the file
    args = train.build_parser().parse_args(["--model", "ff", "--width", "8", "--data", "x"])
    with pytest.raises(ValueError, match="model ff has no parameter"):
        train.config_from_args(args)


def test_cli_trains_exports_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(70, 28, 28), tmp_path / "fer.csv")
    common = ["--data", str(csv_path), "--out", str(tmp_path / "zoo"), "--log-root", str(tmp_path / "logs"),
              "--quiet", "--threads", "1"]
    assert train.main(["--model", "ff", "--epochs", "2", "--batch-size", "16", *common]) == 0
    (run,) = (tmp_path / "logs").iterdir()
    for f in ("history.json", "curves.png", "confusion_matrix.png", "roc.png", "classification_report.txt",
              "metrics.json", "config.json"):
        assert (run / f).stat().st_size > 0, f
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    entry = manifest["models"][0]
    assert entry["name"] == "ff" and entry["training"]["epochs"] == 2
    assert entry["training"]["status"] == "finished" and entry["training"]["train_images"] == 70
    assert 0 <= entry["metrics"]["private_test_accuracy"] <= 1
    assert "exported" in capsys.readouterr().out
    # --resume on a finished run trains no more epochs and re-exports
    assert train.main(["--model", "ff", "--resume", *common]) == 0
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert train.main(["--model", "cnn", "--resume", *common]) == 2
    assert "no run of cnn" in capsys.readouterr().err


def test_export_cli_marks_an_unfinished_run_as_interim(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    data = make_fer(64, 14, 14)
    csv_path = write_csv(data, tmp_path / "fer.csv")
    calls = {"n": 0}
    real_augment = train.online_augment

    def dying_augment(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise _Kill
        return real_augment(*a, **k)

    monkeypatch.setattr(train, "online_augment", dying_augment)
    with pytest.raises(_Kill):
        fit(_cfg(epochs=3), data, tmp_path / "run", progress=False, tensorboard=False)
    from training import export

    zoo = tmp_path / "zoo"
    assert export.main([str(tmp_path / "run" / "best.pt"), "--data", str(csv_path), "--out", str(zoo)]) == 0
    entry = json.loads((zoo / "manifest.json").read_text())["models"][0]
    assert entry["training"]["status"] == "interim: epoch 1 of 3, still training"
    assert entry["training"]["epochs"] == 1 and entry["training"]["train_images"] == 64
    assert {"config", "seconds", "log_dir", "parameters"} <= set(entry["training"])
    assert (tmp_path / "run" / "confusion_matrix.png").exists()


def test_runs_without_tensorboardx(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    result = fit(_cfg(epochs=1), make_fer(32, 14, 7), tmp_path / "r", progress=True)
    assert result.epochs_run == 1 and (tmp_path / "r" / "history.json").exists()
    assert not list((tmp_path / "r").glob("events.out.tfevents.*"))
    assert "tensorboardX is not installed" in capsys.readouterr().out
