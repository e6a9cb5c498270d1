"""The training recipe's ingredients: distillation targets and loss, mixing, weight averaging, and a run that
uses all three resuming exactly after a kill."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import build_zoo
from tests.fer_synth import make_fer, write_csv
from tests.kill import fit_killed_at_epoch
from training import checkpoint, distill, train
from training.averaging import WeightAverage
from training.batches import mix_batch
from training.config import TrainConfig
from training.losses import Targets, batch_loss, soft_loss
from training.train import fit

torch.set_num_threads(1)


def _cfg(**kw) -> TrainConfig:
    base = {"model": "ff", "model_params": {"hidden": [64, 32]}, "epochs": 3, "batch_size": 16, "lr": 3e-3,
            "patience": 99, "seed": 1}
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_teacher_probs_weigh_models_and_soften_with_temperature():
    a = np.array([[4.0, 0.0, 0.0]], np.float32)
    b = np.array([[0.0, 4.0, 0.0]], np.float32)
    p = distill.teacher_probs({"a": a, "b": b}, {"a": 3.0, "b": 1.0}, 1.0, ["a", "b"])
    assert p.sum() == pytest.approx(1.0) and p[0, 0] > p[0, 1] > p[0, 2]
    only_a = distill.teacher_probs({"a": a, "b": b}, {"a": 3.0, "b": 1.0}, 1.0, ["a"])
    hot = distill.teacher_probs({"a": a}, {}, 4.0, ["a"])
    assert hot[0, 0] < only_a[0, 0]  # a higher temperature is softer
    assert distill.choose_teachers(["cnn", "ff", "resnet18"], "others", "ff") == ["cnn", "resnet18"]
    assert distill.choose_teachers(["cnn", "ff"], "all", "ff") == ["cnn", "ff"]
    with pytest.raises(ValueError, match="resnet18 not in the teacher archive"):
        distill.choose_teachers(["cnn", "ff"], "resnet18", "ff")


def test_soft_loss_is_zero_at_the_teacher_and_grows_away_from_it():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    teacher = torch.softmax(logits / 2, dim=1)
    assert soft_loss(logits, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_loss(logits.flip(1), teacher, 2.0).item() > 0.1


def test_batch_loss_terms():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 7), torch.randint(0, 7, (8,))
    soft = torch.softmax(torch.randn(8, 7), 1)
    hard = torch.nn.functional.cross_entropy(logits, y)
    assert batch_loss(logits, Targets(y, y), _cfg()).item() == pytest.approx(hard.item())
    cfg = _cfg(distill="x.npz", distill_alpha=0.25, distill_temperature=2.0)
    mixed = batch_loss(logits, Targets(y, y, soft), cfg).item()
    assert mixed == pytest.approx(0.75 * hard.item() + 0.25 * soft_loss(logits, soft, 2.0).item(), rel=1e-6)
    perm = torch.arange(7, -1, -1)
    half = batch_loss(logits, Targets(y, y, None, perm, 0.5), _cfg()).item()
    other = torch.nn.functional.cross_entropy(logits, y[perm]).item()
    assert half == pytest.approx(0.5 * hard.item() + 0.5 * other, rel=1e-6)


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mix_batch_is_deterministic_and_lam_is_the_own_share(mix):
    x = torch.rand(6, 1, 48, 48)
    cfg = _cfg(mix=mix, mix_alpha=1.0)
    a, perm, lam = mix_batch(x, cfg, epoch=2, step=5)
    b, perm2, lam2 = mix_batch(x, cfg, epoch=2, step=5)
    assert torch.equal(a, b) and torch.equal(perm, perm2) and lam == lam2 and 0 <= lam <= 1
    if mix == "cutmix":  # lam is exactly the share of each row's own pixels left
        own = (a == x).float().mean().item()
        partner_same = (x == x[perm]).float().mean().item()
        assert own == pytest.approx(lam + (1 - lam) * partner_same, abs=1e-6)
    else:
        torch.testing.assert_close(a, lam * x + (1 - lam) * x[perm])
    assert mix_batch(x, _cfg(), 1, 1) == (x, None, 1.0)


def test_weight_average_tracks_the_weights_and_round_trips():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    for _ in range(200):
        avg.update(net)
    torch.testing.assert_close(avg.model[0].weight, net[0].weight)
    assert avg.model[1].num_batches_tracked == net[1].num_batches_tracked
    with torch.no_grad():
        net[0].weight.fill_(3.0)
    avg.update(net)  # one step moves it 10% of the way at decay 0.9
    assert avg.model[0].weight.mean().item() == pytest.approx(1.2, rel=1e-5)
    other = WeightAverage(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)), 0.9)
    other.load_state_dict(avg.state_dict())
    assert other.updates == 201 and torch.equal(other.model[0].weight, avg.model[0].weight)


@pytest.fixture
def teacher_archive(tmp_path):
    data = make_fer(64, 14, 7)
    zoo = build_zoo(tmp_path / "zoo")
    logits, weights = distill.compute_teacher_logits(zoo, data.train.images, progress=False)
    path = tmp_path / "teacher.npz"
    distill.save(path, logits, weights, distill.images_digest(data.train.images), {"teacher_sha256": {"cnn": "ab"}})
    return data, path


def test_run_with_distillation_mixing_and_averaging_resumes_exactly(tmp_path, monkeypatch, teacher_archive):
    data, archive = teacher_archive
    cfg = _cfg(distill=str(archive), distill_teachers="others", ema=0.9, mix="cutmix", mix_alpha=1.0)
    whole = fit(cfg, data, tmp_path / "whole", progress=False, tensorboard=False)
    assert {"val_acc_raw", "val_loss_raw"} <= set(whole.history[0])

    fit_killed_at_epoch(monkeypatch, cfg, data, tmp_path / "cut")
    resumed = fit(cfg, data, tmp_path / "cut", resume=True, progress=False, tensorboard=False)
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_acc"] == b["val_acc"]
    ema1 = checkpoint.load(tmp_path / "whole" / "last.pt")["average"]["model"]
    ema2 = checkpoint.load(tmp_path / "cut" / "last.pt")["average"]["model"]
    for k in ema1:
        torch.testing.assert_close(ema1[k], ema2[k], rtol=1e-5, atol=1e-6)
    # best.pt holds the averaged weights, the ones validated
    best = checkpoint.load(tmp_path / "whole" / "best.pt")
    top = max(whole.history, key=lambda h: h["val_acc"])
    assert best["epoch"] == top["epoch"]
    from training.summary import training_summary

    assert training_summary(tmp_path / "whole", data)["teacher"]["teacher_sha256"] == {"cnn": "ab"}


def test_distillation_refuses_an_archive_of_other_images(tmp_path, teacher_archive):
    _, archive = teacher_archive
    other = make_fer(64, 14, 7, seed=5)
    with pytest.raises(ValueError, match="computed on other training images"):
        fit(_cfg(distill=str(archive)), other, tmp_path / "r", progress=False, tensorboard=False)


def test_distill_cli_writes_an_archive_training_accepts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(70, 28, 28), tmp_path / "fer.csv")
    zoo = build_zoo(tmp_path / "zoo")
    out = tmp_path / "t.npz"
    assert distill.main(["--zoo", str(zoo), "--data", str(csv_path), "--out", str(out), "--quiet"]) == 0
    info, logits = distill.load(out)
    assert info["models"] == ["cnn", "ff", "resnet18"] and logits["cnn"].shape == (70, 7)
    assert set(info["train_accuracy"]) == {"cnn", "ff", "resnet18", "ensemble"}
    assert set(info["teacher_sha256"]) == {"cnn", "ff", "resnet18"}
    common = ["--data", str(csv_path), "--log-root", str(tmp_path / "logs"), "--quiet", "--threads", "1",
              "--no-export"]
    assert train.main(["--model", "ff", "--epochs", "1", "--batch-size", "16", "--distill", str(out),
                       "--ema", "0.99", "--mix", "mixup", *common]) == 0
    (run,) = (tmp_path / "logs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["distill"] == str(out) and config["ema"] == 0.99 and config["mix"] == "mixup"
    assert distill.main(["--zoo", str(tmp_path / "nope"), "--data", str(csv_path), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err


def test_resume_may_raise_the_patience_of_an_early_stopped_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(48, 14, 7), tmp_path / "fer.csv")
    common = ["--data", str(csv_path), "--log-root", str(tmp_path / "logs"), "--quiet", "--threads", "1",
              "--no-export"]
    assert train.main(["--model", "cnn", "--width", "4", "--epochs", "5", "--batch-size", "16", "--lr", "1e-9",
                       "--scheduler", "none", "--patience", "1", *common]) == 0
    (run,) = (tmp_path / "logs").iterdir()
    stopped = len(json.loads((run / "history.json").read_text()))
    assert stopped < 5
    assert train.main(["--resume", str(run), "--patience", "99", *common]) == 0
    assert len(json.loads((run / "history.json").read_text())) == 5
    assert checkpoint.load(run / "last.pt")["config"]["patience"] == 99


@pytest.mark.parametrize("k", range(5))
def test_a_damaged_teacher_archive_is_a_one_line_error(tmp_path, k):
    from tests.test_augment import _damaged_archives

    with pytest.raises(ValueError, match="not a teacher archive"):
        distill.load(_damaged_archives(tmp_path)[k])
