"""Balanced label objectives (issue 34): logit adjustment and class-balanced target re-weighting are the plain
loss under a uniform prior or at 0, move the optimum toward rare classes under a skewed one, and a training run
leaves what the ablation table needs (prior.json, the best epoch's PublicTest logits, the new history keys)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.losses import Targets, batch_loss, class_prior, reweight_distribution

torch.set_num_threads(1)

SKEWED = torch.tensor([0.02, 0.05, 0.08, 0.30, 0.15, 0.10, 0.30])  # FER+-like: happy and neutral dominate
UNIFORM = torch.full((7,), 1 / 7)


def _cfg(**kw) -> TrainConfig:
    base = {"model": "ff", "model_params": {"hidden": [64, 32]}, "epochs": 2, "batch_size": 16, "lr": 3e-3,
            "patience": 99, "seed": 1}
    base.update(kw)
    return TrainConfig.from_dict(base)


def _batch(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 7, generator=g) * 2
    y = torch.randint(0, 7, (n,), generator=g)
    dist = torch.distributions.Dirichlet(torch.ones(7)).sample((n,))
    perm = torch.randperm(n, generator=g)
    return logits, y, dist, perm


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_uniform_prior_gives_exactly_the_plain_loss(soft, mixed, smoothing):
    logits, y, dist, perm = _batch()
    kw = {"dist": dist if soft else None, "perm": perm if mixed else None, "lam": 0.7 if mixed else 1.0}
    plain = batch_loss(logits, Targets(y, y, **kw), _cfg(label_smoothing=smoothing))
    for balanced in ({"logit_adjust": 1.0}, {"logit_adjust": 0.5}, {"target_reweight": 0.5},
                     {"logit_adjust": 1.0, "target_reweight": 1.0}):
        cfg = _cfg(label_smoothing=smoothing, **balanced)
        assert torch.allclose(batch_loss(logits, Targets(y, y, prior=UNIFORM, **kw), cfg), plain), balanced


@pytest.mark.parametrize("soft", [False, True])
def test_zero_tau_and_beta_are_the_plain_loss_whatever_the_prior(soft):
    logits, y, dist, _ = _batch(seed=1)
    t = Targets(y, y, dist=dist if soft else None, prior=SKEWED)
    plain = batch_loss(logits, Targets(y, y, dist=dist if soft else None), _cfg())
    assert torch.equal(batch_loss(logits, t, _cfg(logit_adjust=0.0, target_reweight=0.0)), plain)
    # and a skewed prior does change the loss once switched on
    assert not torch.allclose(batch_loss(logits, t, _cfg(logit_adjust=1.0)), plain)
    assert not torch.allclose(batch_loss(logits, t, _cfg(target_reweight=0.5)), plain)


def _optimum(cfg: TrainConfig, targets: Targets, steps: int = 400) -> torch.Tensor:
    """softmax of the constant logit vector that minimises the batch loss, by gradient descent."""
    z = torch.zeros(7, requires_grad=True)
    opt = torch.optim.SGD([z], lr=2.0)
    n = len(targets.y)
    for _ in range(steps):
        opt.zero_grad()
        batch_loss(z.expand(n, 7), targets, cfg).backward()
        opt.step()
    return torch.softmax(z.detach(), 0)


def test_the_adjusted_optimum_moves_toward_rare_classes():
    # targets whose mean is the prior: the plain optimum predicts the prior itself
    n = 400
    g = torch.Generator().manual_seed(3)
    y = torch.multinomial(SKEWED, n, replacement=True, generator=g)
    dist = torch.nn.functional.one_hot(y, 7).float()
    prior = dist.mean(0)
    t = Targets(y, y, dist=dist, prior=prior)
    plain = _optimum(_cfg(), t)
    assert torch.allclose(plain, prior, atol=1e-3)
    # logit adjustment: softmax(z + tau log prior) = prior at the optimum, so softmax(z) = prior^(1 - tau), normalised
    for tau in (0.5, 1.0):
        adjusted = _optimum(_cfg(logit_adjust=tau), t)
        expected = prior ** (1 - tau) / (prior ** (1 - tau)).sum()
        assert torch.allclose(adjusted, expected, atol=2e-3), tau
        rare = prior.argmin()
        assert adjusted[rare] > plain[rare] and adjusted[prior.argmax()] < plain[prior.argmax()]
    assert torch.allclose(_optimum(_cfg(logit_adjust=1.0), t), UNIFORM, atol=2e-3)  # balanced softmax
    # hard labels re-weighted by prior^-beta: each class's share of the weight is prior^(1 - beta), normalised
    reweighted = _optimum(_cfg(target_reweight=0.5), Targets(y, y, prior=prior))
    assert torch.allclose(reweighted, prior**0.5 / (prior**0.5).sum(), atol=2e-3)
    # soft targets are re-weighted within each row and renormalised: a unanimous (one-hot) face is unchanged,
    # a split one moves its mass toward its rarer classes
    assert torch.allclose(_optimum(_cfg(target_reweight=0.5), t), plain, atol=1e-3)
    other = torch.multinomial(SKEWED, n, replacement=True, generator=g)
    split = 0.6 * dist + 0.4 * torch.nn.functional.one_hot(other, 7).float()
    ts = Targets(y, y, dist=split, prior=prior)
    plain_split, reweighted_split = _optimum(_cfg(), ts), _optimum(_cfg(target_reweight=0.5), ts)
    assert torch.allclose(reweighted_split, reweight_distribution(split, prior, 0.5).mean(0), atol=2e-3)
    assert reweighted_split[prior.argmin()] > plain_split[prior.argmin()]
    assert reweighted_split[prior.argmax()] < plain_split[prior.argmax()]


def test_reweighted_distribution_rows_sum_to_one_and_favour_rare_classes():
    dist = torch.tensor([[0.5, 0, 0, 0, 0, 0, 0.5], [0, 0, 0, 1.0, 0, 0, 0], [0.0] * 7])
    out = reweight_distribution(dist, SKEWED, 1.0)
    assert torch.allclose(out[:2].sum(1), torch.ones(2)) and torch.equal(out[2], torch.zeros(7))
    assert out[0, 0] == pytest.approx(0.30 / 0.32)  # angry (prior 0.02) against neutral (0.30): 1/0.02 vs 1/0.30
    assert torch.equal(out[1], dist[1])  # a one-hot row stays one-hot


def test_hard_label_weights_are_normalised_to_mean_one_over_the_batch():
    logits, y, _, _ = _batch(seed=4)
    beta = 0.5
    w = SKEWED.pow(-beta)[y]
    per_row = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    expected = (w / w.mean() * per_row).mean()
    got = batch_loss(logits, Targets(y, y, prior=SKEWED), _cfg(target_reweight=beta))
    assert torch.allclose(got, expected)


def test_a_balanced_loss_without_the_prior_is_an_error():
    logits, y, _, _ = _batch()
    with pytest.raises(ValueError, match="prior"):
        batch_loss(logits, Targets(y, y), _cfg(logit_adjust=1.0))


@pytest.mark.parametrize("bad", [{"logit_adjust": -0.5}, {"target_reweight": -1.0}, {"logit_adjust": float("inf")},
                                 {"target_reweight": 0.5, "class_weighted": True}])
def test_config_rejects_negative_or_conflicting_values(bad):
    with pytest.raises(ValueError):
        _cfg(**bad)


def test_class_prior_from_distributions_or_labels():
    dist = np.array([[1, 0, 0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0, 0, 0.5]], np.float32)
    np.testing.assert_allclose(class_prior(np.array([0, 6]), dist)[[0, 6]], [0.75, 0.25], atol=1e-5)
    p = class_prior(np.array([3, 3, 3, 6]))
    assert p.sum() == pytest.approx(1.0) and p[3] == pytest.approx(0.75, abs=1e-5)
    assert (p > 0).all()  # absent classes floored: log and powers stay finite


def test_a_run_saves_prior_publictest_logits_and_balanced_history(tmp_path):
    from tests.fer_synth import make_fer
    from training.train import fit

    data = make_fer(112, 35, 7)
    result = fit(_cfg(epochs=3, online_aug="none", logit_adjust=1.0), data, tmp_path / "run", progress=False,
                 tensorboard=False)
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert {"val_mean_recall", "val_macro_f1"} <= set(history[0])
    assert all(0 <= h["val_mean_recall"] <= 1 and 0 <= h["val_macro_f1"] <= 1 for h in history)
    prior = json.loads((run / "prior.json").read_text())
    assert prior["classes"][0] == "angry" and sum(prior["prior"]) == pytest.approx(1.0, abs=1e-6)
    assert prior["source"] == "training label frequencies"
    logits = np.load(run / "publictest_logits.npy")
    info = json.loads((run / "publictest.json").read_text())
    assert logits.shape == (35, 7) and logits.dtype == np.float32
    assert info["rows"] is None and info["epoch"] == result.best_epoch and info["n"] == 35
    # the saved logits are the best epoch's: their accuracy is its validation accuracy
    assert (logits.argmax(1) == data.val.labels).mean() == pytest.approx(result.best_val_accuracy)
    best = history[result.best_epoch - 1]
    from training.metrics import confusion, mean_class_recall

    assert mean_class_recall(confusion(data.val.labels, logits.argmax(1))) == pytest.approx(best["val_mean_recall"])


def test_validation_rows_with_ferplus_labels_are_the_faces_with_a_majority():
    from training.batches import validation_rows, validation_split
    from training.datasets import FER2013, Split
    from training.ferplus import Votes

    keys = np.array([f"row:{i}" for i in range(4)])
    val = Split(np.arange(4, dtype=np.uint8)[:, None, None].repeat(48, 1).repeat(48, 2), np.zeros(4, np.int64),
                keys)
    data = FER2013(val, val, val, source="synthetic")
    votes = Votes({"row:0": np.array([6, 0, 0, 4, 0, 0, 0, 0, 0, 0], np.float32),   # angry
                   "row:1": np.array([5, 0, 0, 5, 0, 0, 0, 0, 0, 0], np.float32),   # tie: no majority
                   "row:3": np.array([0, 0, 0, 0, 0, 0, 10, 0, 0, 0], np.float32)},  # neutral; row 2 unlabelled
                  "test")
    cfg = _cfg(labels="ferplus-soft", ferplus="votes.csv")
    rows = validation_rows(cfg, data, votes)
    assert rows.tolist() == [0, 3]
    np.testing.assert_array_equal(validation_split(cfg, data, votes).images, val.images[rows])
    assert validation_rows(_cfg(), data, votes) is None  # FER2013 labels: every row, in order


# --------------------------------------------------------------------------- python -m training.label_ablation


def _ferplus_csv(tmp_path, seed: int = 0):
    """fer2013.csv of learnable synthetic faces and a fer2013new.csv whose votes lean on each face's label."""
    import csv

    from tests.fer_synth import make_fer, write_csv
    from training.ferplus import EMOTION_COLUMN, VOTE_COLUMNS

    data = make_fer(140, 42, 14)
    write_csv(data, tmp_path / "fer2013.csv")
    column_of = {idx: VOTE_COLUMNS.index(col) for col, idx in EMOTION_COLUMN.items()}
    rng = np.random.default_rng(seed)
    with open(tmp_path / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        n = 0
        for split, usage in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
            for label in data.split(split).labels:
                v = [0] * 10
                v[column_of[int(label)]] += 7
                v[int(rng.integers(0, 7))] += 3  # sometimes the label itself: unanimous faces too
                w.writerow([usage, f"fer{n:07d}.png", *v])
                n += 1
    cfg = {"model": "ff", "model_params": {"hidden": [64, 32]}, "epochs": 2, "batch_size": 16, "lr": 3e-3,
           "patience": 99, "seed": 1, "labels": "ferplus-soft", "ferplus": str(tmp_path / "fer2013new.csv"),
           "online_aug": "none", "augmented": "data/missing-archive.npz"}  # the driver trains on the originals
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    return ["--config", str(tmp_path / "cfg.json"), "--data", str(tmp_path / "fer2013.csv"), "--out",
            str(tmp_path / "abl"), "--threads", "1", "--quiet"]


def test_label_ablation_resumes_skips_and_tabulates(tmp_path, monkeypatch, capsys):
    from tests.kill import Kill
    from training import label_ablation, train

    args = _ferplus_csv(tmp_path)
    out = tmp_path / "abl"
    real_epoch = train.train_epoch
    calls = {"n": 0}

    def dying_epoch(*a):  # killed as the logit-adjusted arm (the second) starts its second epoch
        calls["n"] += 1
        if calls["n"] == 4:
            raise Kill
        return real_epoch(*a)

    monkeypatch.setattr(train, "train_epoch", dying_epoch)
    with pytest.raises(Kill):
        label_ablation.main(args)
    monkeypatch.setattr(train, "train_epoch", real_epoch)
    assert (out / "plain" / "done.json").exists() and not list((out / "plain").glob("*.pt"))
    assert (out / "logit-adjusted" / "last.pt").exists() and not (out / "logit-adjusted" / "done.json").exists()
    assert label_ablation.main([*args, "--epochs", "3"]) == 2  # the unfinished arm's schedule was for 2 epochs
    assert "another config" in capsys.readouterr().err

    assert label_ablation.main(args) == 0
    for arm in label_ablation.ARMS:
        history = json.loads((out / arm / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2], arm
        assert not list((out / arm).glob("*.pt")) and (out / arm / "publictest_logits.npy").exists()
        cfg = json.loads((out / arm / "config.json").read_text())
        assert cfg["augmented"] is None and cfg["epochs"] == 2
    assert json.loads((out / "logit-adjusted" / "config.json").read_text())["logit_adjust"] == 1.0
    assert json.loads((out / "reweighted" / "config.json").read_text())["target_reweight"] == 0.5
    capsys.readouterr()
    assert label_ablation.main(args) == 0
    assert capsys.readouterr().out.count("skipped") == 3

    assert label_ablation.main([*args, "--table", "--ferplus", str(tmp_path / "fer2013new.csv")]) == 0
    text = capsys.readouterr().out
    for row in ("| plain |", "| logit-adjusted |", "| reweighted |", "| plain, prior correction tau 0.25 |",
                "| plain, prior correction tau 1 |", "By the rule in docs/results.md"):
        assert row in text
    assert (out / "label-ablation.md").read_text().strip() == text.strip()


def test_label_ablation_rejects_unknown_arms_and_fer2013_labels(tmp_path, capsys):
    from training import label_ablation

    args = _ferplus_csv(tmp_path)
    assert label_ablation.main([*args, "--arms", "plain,balanced"]) == 2
    assert "unknown arm(s) balanced" in capsys.readouterr().err
    (tmp_path / "fer.json").write_text(json.dumps({"model": "ff", "labels": "fer2013"}))
    assert label_ablation.main(["--config", str(tmp_path / "fer.json"), "--data", "x.csv"]) == 2
    assert "FER+" in capsys.readouterr().err


def test_help_explains_every_option_with_examples(capsys):
    from training import label_ablation

    with pytest.raises(SystemExit):
        label_ablation.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--config", "--data", "--arms", "--epochs", "--augmented", "--threads", "--device", "--table",
                   "--ferplus", "--out", "--limit", "examples:", "logit_adjust"):
        assert option in text


def test_the_rule_takes_recall_within_a_point_of_the_best_accuracy_and_ties_to_the_simpler():
    from training.label_ablation import Candidate, choose

    def c(name, kind, acc, mcr):
        return Candidate(name, kind, {"accuracy": acc, "mean_class_recall": mcr})

    plain = c("plain", "plain", 0.870, 0.720)
    corrected = c("tau 0.5", "prior correction", 0.862, 0.760)
    loss = c("logit-adjusted", "changed loss", 0.858, 0.790)  # 1.2 points below the best: out
    assert choose([plain, corrected, loss]).name == "tau 0.5"
    near = c("reweighted", "changed loss", 0.865, 0.7625)  # within 0.3 of the prior correction's recall: simpler wins
    assert choose([plain, corrected, near]).name == "tau 0.5"
    better = c("reweighted", "changed loss", 0.865, 0.7700)  # a full point of recall more: it wins
    assert choose([plain, corrected, better]).name == "reweighted"
    assert choose([plain]).name == "plain"
