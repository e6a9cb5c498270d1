"""Simulated-annealing search: the Metropolis rule, the schedule, moves, reproducibility and kill/resume.

Most tests drive the pure core with a cheap fake objective; the rest train real (tiny) ff trials on synthetic
48x48 faces written as a fer2013.csv, so nothing here needs ../shared and the whole file runs in well under a
minute on one thread.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from training import anneal as an
from training import train
from training.anneal import (
    Outcome,
    ResumeMismatch,
    Schedule,
    acceptance_probability,
    anneal,
)
from training.datasets import FER2013, Split
from training.search_space import DEFAULT_SPACES, SpaceError, build_space, default_space, load_space, neighbour

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ helpers


def fake_objective(calls: list | None = None, fail_at: set[int] = frozenset(), interrupt_at: int | None = None):
    """A smooth function of the parameters with an optimum inside the space: cheap, deterministic."""

    def objective(req: an.TrialRequest):
        if calls is not None:
            calls.append(req.iteration)
        if req.iteration == interrupt_at:
            raise KeyboardInterrupt
        if req.iteration in fail_at:
            raise train.TrainingDiverged("loss became nan at epoch 1, step 3")
        p = {"lr": 1e-3, "epochs": 12, "optimizer": "adamw", "dropout": 0.3, "batch_size": 128, "weight_decay": 1e-4,
             **req.params}
        score = 0.5 - 0.05 * (math.log10(p["lr"]) + 2.5) ** 2 - 0.002 * abs(p["epochs"] - 15)
        score += {"adam": 0.0, "adamw": 0.01, "sgd": -0.02}[p["optimizer"]] - 0.05 * abs(p["dropout"] - 0.2)
        score += 0.005 * math.log2(p["batch_size"] / 32) - 0.01 * abs(math.log10(p["weight_decay"]) + 4)
        return Outcome(score, {"n": req.iteration})

    return objective


def strip(trials: list[dict]) -> list[dict]:
    """Trial records without wall-clock seconds, which never repeat exactly."""
    return [{k: v for k, v in t.items() if k not in ("seconds", "info")} for t in trials]


def synthetic_fer(n_train: int = 280, n_val: int = 84, n_test: int = 28, seed: int = 0) -> FER2013:
    """Random 48x48 faces with a faint class-dependent square and some wrong labels: learnable but not
    perfectly, so trials with different hyper-parameters reach different accuracies."""
    splits = []
    for k, n in enumerate((n_train, n_val, n_test)):
        rng = np.random.default_rng(seed + k)
        labels = rng.permutation(np.arange(n) % 7).astype(np.int64)
        images = rng.integers(0, 160, size=(n, 48, 48), dtype=np.uint8)
        for i, c in enumerate(labels):
            y, x = 4 + 12 * (c // 3), 4 + 14 * (c % 3)
            images[i, y : y + 10, x : x + 10] //= 2
            images[i, y : y + 10, x : x + 10] += 70
        noisy = rng.random(n) < 0.25
        labels[noisy] = rng.integers(0, 7, noisy.sum())
        splits.append(Split(images, labels))
    return FER2013(*splits, source="synthetic")


def write_csv(data: FER2013, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for split, usage in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
            s = data.split(split)
            for img, lab in zip(s.images, s.labels, strict=True):
                w.writerow([int(lab), " ".join(map(str, img.reshape(-1))), usage])
    return path


TINY_CONFIG = {"model": "ff", "model_params": {"hidden": [32]}, "patience": 99, "online_aug": "none", "seed": 3}
TINY_SPACE = {"epochs": {"low": 1, "high": 3, "step": 1, "start": 2}, "batch_size": {"values": [16, 32], "start": 32},
              "weight_decay": None, "lr": {"low": 1e-3, "high": 3e-2, "start": 3e-3}}


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """Files for a real CLI search on synthetic data; returns a function giving the argv for a log root."""
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    data = write_csv(synthetic_fer(), tmp_path / "fer2013.csv")
    (tmp_path / "base.json").write_text(json.dumps(TINY_CONFIG))
    (tmp_path / "space.json").write_text(json.dumps(TINY_SPACE))

    def argv(log_root: Path, *extra: str) -> list[str]:
        return ["--data", str(data), "--config", str(tmp_path / "base.json"), "--space", str(tmp_path / "space.json"),
                "--iterations", "6", "--seed", "5", "--threads", "1", "--quiet", "--log-root", str(log_root), *extra]

    return argv


def run_dirs(log_root: Path) -> list[Path]:
    return sorted(log_root.glob("anneal-ff-*"))


# ------------------------------------------------------------------------------ acceptance + schedule


def test_acceptance_probability_is_metropolis():
    assert acceptance_probability(0.40, 0.45, 0.01) == 1.0  # better: always
    assert acceptance_probability(0.40, 0.40, 0.01) == 1.0  # equal: always
    assert acceptance_probability(0.40, 0.38, 0.02) == pytest.approx(math.exp(-1))
    assert acceptance_probability(0.40, 0.30, 0.0) == 0.0
    rng = np.random.default_rng(0)
    for _ in range(500):
        cur, cand = rng.uniform(0, 1, 2)
        t1, t2 = sorted(rng.uniform(1e-4, 0.1, 2))
        p1, p2 = acceptance_probability(cur, cand, t1), acceptance_probability(cur, cand, t2)
        assert 0.0 <= p1 <= p2 <= 1.0  # hotter never accepts less
        assert acceptance_probability(cur, cand - 0.01, t1) <= p1  # a worse candidate never more


def test_metropolis_acceptance_rate_matches_probability():
    # A constant objective 0.5 then 0.48 each time: worse by 0.02 at T=0.02 is accepted with p = 1/e.
    space = default_space("ff")
    accepted = 0
    n = 400
    for seed in range(n):
        values = iter([0.5, 0.48])
        r = anneal(space, lambda req, v=values: next(v), schedule=Schedule(0.02, 0.02, 2), seed=seed)
        accepted += r.trials[1]["accepted"]
    assert abs(accepted / n - math.exp(-1)) < 0.07


def test_geometric_schedule():
    s = Schedule(0.05, 0.005, 11)
    temps = [s.temperature(i) for i in range(1, 12)]
    assert temps[0] == pytest.approx(0.05) and temps[-1] == pytest.approx(0.005)
    ratios = [b / a for a, b in zip(temps, temps[1:], strict=False)]
    assert all(r == pytest.approx(0.1 ** 0.1) for r in ratios)  # constant factor per trial
    assert s.step_scale(1) == 1.0 and s.step_scale(11) == pytest.approx(math.sqrt(0.1))


def test_linear_and_degenerate_schedules():
    s = Schedule(0.04, 0.01, 4, "linear")
    assert [round(s.temperature(i), 6) for i in range(1, 5)] == [0.04, 0.03, 0.02, 0.01]
    assert Schedule(0.03, 0.003, 1).temperature(1) == 0.03
    assert Schedule(0.02, 0.02, 5).temperature(3) == pytest.approx(0.02)
    for bad in [dict(start=0.0), dict(start=0.01, end=0.02), dict(iterations=0), dict(kind="cubic"),
                dict(end=float("nan"))]:
        with pytest.raises(ValueError):
            Schedule(**{"start": 0.03, "end": 0.003, "iterations": 5, **bad})


# ------------------------------------------------------------------------------------------- moves


@pytest.mark.parametrize("model", list(DEFAULT_SPACES))
def test_neighbour_moves_stay_inside_bounds_and_move(model):
    space = default_space(model)
    for seed in range(300):
        rng = np.random.default_rng(seed)
        point = space.start_point()
        for step in range(20):  # walk, so points at and near the bounds get moved too
            scale = float(rng.choice([1.0, 0.5, 0.1, 0.01]))
            new = neighbour(space, point, rng, scale)
            assert space.contains(new), (seed, step, new)
            assert new != point  # every move changes something
            assert isinstance(new["epochs"], int) and not isinstance(new["epochs"], bool)
            point = new


def test_neighbour_at_the_bounds_and_in_narrow_ranges():
    space = build_space("ff", {"lr": {"low": 1e-3, "high": 1e-3 * 1.001, "start": 1e-3},
                               "epochs": {"low": 3, "high": 4, "start": 3}, "dropout": {"low": 0.5, "high": 0.5}})
    for seed in range(200):
        rng = np.random.default_rng(seed)
        new = neighbour(space, space.start_point(), rng, 1.0)
        assert space.contains(new)
    p = space["epochs"]
    assert {p.perturb(3, np.random.default_rng(s), 1.0) for s in range(50)} == {4}
    assert {p.perturb(4, np.random.default_rng(s), 1.0) for s in range(50)} == {3}


def test_hot_moves_are_bigger_than_cold_ones():
    p = default_space("ff")["lr"]

    def spread(scale):
        return np.std([math.log10(p.perturb(1e-3, np.random.default_rng(s), scale)) for s in range(400)])

    assert spread(1.0) > 2 * spread(0.2)


def test_categorical_and_ordered_choices():
    space = default_space("ff")
    opt, batch = space["optimizer"], space["batch_size"]
    assert not opt.ordered and batch.ordered
    assert {opt.perturb("adamw", np.random.default_rng(s), 0.1) for s in range(60)} == {"adam", "sgd"}
    small = {batch.perturb(128, np.random.default_rng(s), 0.3) for s in range(60)}
    assert small == {64, 256}  # a cold move on an ordered choice goes to a neighbouring size


# --------------------------------------------------------------------------------------- the space


def test_space_overrides_merge_remove_and_add(tmp_path):
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"lr": {"high": 0.01}, "dropout": None,
                             "label_smoothing": {"type": "float", "low": 0, "high": 0.2, "step": 0.05}}))
    space = load_space(f, "ff")
    assert space.names == ["lr", "epochs", "batch_size", "optimizer", "weight_decay", "label_smoothing"]
    assert space["lr"].high == 0.01 and space["lr"].low == 1e-4 and space["lr"].step == 0.5
    assert space["label_smoothing"].start == 0.0  # the base config's value, inside the range
    f.write_text(json.dumps({"ff": {"epochs": {"high": 8}, "per_image": {"type": "choice", "values": [False, True]}},
                             "cnn": {"width": {"type": "int", "low": 8, "high": 64}}}))
    ff_space = load_space(f, "ff")
    assert ff_space["epochs"].high == 8 and ff_space["per_image"].start is False
    assert not ff_space["per_image"].ordered
    assert ff_space.apply(train.TrainConfig(model="ff"), {**ff_space.start_point(), "per_image": True}).model_params[
        "per_image"] is True
    assert load_space(f, "cnn")["width"].start == 36


def test_space_start_prefers_user_config():
    base = train.TrainConfig(model="cnn", lr=5e-3, batch_size=64, model_params={"dropout": 0.45})
    start = build_space("cnn", {}, base=base).start_point()
    assert (start["lr"], start["batch_size"], start["dropout"]) == (5e-3, 64, 0.45)
    assert default_space("cnn").start_point()["lr"] == 2e-3


@pytest.mark.parametrize("content, message", [
    ('{"lr": {"low": 0}}', "lr.low must be > 0"),
    ('{"lr": {"hi": 0.1}}', "unknown key(s) hi"),
    ('{"lr": {"low": 0.1, "high": 0.01}}', "must not exceed high"),
    ('{"lr": {"start": 0.5}}', "lr.start must be a number within"),
    ('{"lr": {"step": -1}}', "step must be a number > 0"),
    ('{"lr": {"type": "gaussian"}}', "lr.type must be one of"),
    ('{"lr": "fast"}', "lr must be an object"),
    ('{"epochs": {"low": 2.5}}', "whole number"),
    ('{"epochs": {"type": "float", "low": 1, "high": 9, "step": 1}}', "integer parameter needs type int"),
    ('{"batch_size": {"values": [1, 64]}}', "rejected by TrainConfig (batch_size must be >= 2)"),
    ('{"batch_size": {"values": []}}', "non-empty list"),
    ('{"batch_size": {"values": [64, 64]}}', "duplicates"),
    ('{"optimizer": {"values": ["adam", "rmsprop"]}}', "optimizer must be adam, adamw or sgd"),
    ('{"optimizer": {"type": "log", "low": 1, "high": 2, "step": 1}}', "can only be searched with type choice"),
    ('{"dropout": {"high": 1.2}}', "dropout must be in [0, 1)"),
    ('{"width": {"type": "int", "low": 8, "high": 64}}', "not a searchable parameter of ff"),
    ('{"limit": {"type": "int", "low": 8, "high": 64}}', "not a searchable parameter"),
    ('{"hidden": {"type": "choice", "values": [[64], []]}}', "non-empty list of layer widths"),
    ('{"per_image": {"type": "choice", "values": [0, 1]}}', "not a valid bool"),
    ('[1, 2]', "expected a JSON object"),
    ('{"lr": ', "not valid JSON"),
])
def test_bad_space_file_one_line_error(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(SpaceError) as e:
        load_space(f, "ff")
    assert message in str(e.value) and "\n" not in str(e.value) and str(f) in str(e.value)


def test_bad_space_cli_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained despite a bad space"))
    (tmp_path / "bad.json").write_text('{"lr": {"low": -1}}')
    code = an.main(["--model", "ff", "--data", "nowhere", "--space", str(tmp_path / "bad.json"),
                    "--log-root", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "lr.low must be > 0" in err
    assert not (tmp_path / "logs").exists()


def test_help_explains_every_option_with_examples(capsys):
    parser = an.build_parser()
    for action in parser._actions:
        assert action.help, action.option_strings
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--iterations 8 --subset 4000 --seed 1" in text and "--space FILE maps" in text


def test_parse_duration():
    assert an.parse_duration("90m") == 5400 and an.parse_duration("1.5h") == 5400
    assert an.parse_duration("3600") == 3600 and an.parse_duration("1h30m") == 5400
    assert an.parse_duration("45s") == 45
    for bad in ("", "m", "5x", "1h 3"):
        with pytest.raises(Exception, match="duration"):
            an.parse_duration(bad)


# -------------------------------------------------------------------------------- the core search


def test_same_seed_same_sequence_other_seed_differs():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 25)
    a = anneal(space, fake_objective(), schedule=sched, seed=7)
    b = anneal(space, fake_objective(), schedule=sched, seed=7)
    c = anneal(space, fake_objective(), schedule=sched, seed=8)
    assert strip(a.trials) == strip(b.trials)
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]
    assert a.trials[0]["params"] == space.start_point() and a.trials[0]["accepted"]
    assert a.complete and a.stopped == "completed" and len(a.trials) == 25


def test_search_tracks_best_and_improves():
    space = build_space("ff", {"lr": {"start": 1e-4}, "optimizer": {"start": "sgd"}, "dropout": {"start": 0.6}})
    r = anneal(space, fake_objective(), schedule=Schedule(0.03, 0.001, 40), seed=1)
    accs = [t["val_accuracy"] for t in r.trials]
    assert [t["best_so_far"] for t in r.trials] == list(np.maximum.accumulate(accs))
    assert r.best["val_accuracy"] == max(accs) > accs[0]
    assert any(not t["accepted"] for t in r.trials) and sum(t["accepted"] for t in r.trials) > 3
    temps = [t["temperature"] for t in r.trials]
    assert temps == sorted(temps, reverse=True)
    assert len({json.dumps(t["params"], sort_keys=True) for t in r.trials}) == 40  # no trial spent on a repeat


def test_interrupt_in_trial_5_then_rerun_matches_uninterrupted_run():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 8)
    whole = anneal(space, fake_objective(), schedule=sched, seed=3)

    saved: list[dict] = []  # what the CLI writes to trials.json after every trial
    with pytest.raises(KeyboardInterrupt):
        anneal(space, fake_objective(interrupt_at=5), schedule=sched, seed=3,
               on_trial=lambda trials: saved.__setitem__(slice(None), json.loads(json.dumps(trials))))
    assert [t["iteration"] for t in saved] == [1, 2, 3, 4]

    calls: list[int] = []
    resumed = anneal(space, fake_objective(calls), schedule=sched, seed=3, history=saved)
    assert calls == [5, 6, 7, 8]  # trials 1-4 are not scored again
    assert strip(resumed.trials) == strip(whole.trials)
    assert resumed.best["iteration"] == whole.best["iteration"]


def test_resume_with_other_seed_or_space_is_refused():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 6)
    done = anneal(space, fake_objective(), schedule=sched, seed=3).trials[:3]
    with pytest.raises(ResumeMismatch, match="seed 4 proposes"):
        anneal(space, fake_objective(), schedule=sched, seed=4, history=done)
    other = build_space("ff", {"lr": {"start": 2e-3}})
    with pytest.raises(ResumeMismatch):
        anneal(other, fake_objective(), schedule=sched, seed=3, history=done)


def test_failed_trials_are_recorded_rejected_and_the_search_goes_on():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 8)
    r = anneal(space, fake_objective(fail_at={1, 4}), schedule=sched, seed=2)
    assert len(r.trials) == 8 and r.complete
    for i in (0, 3):
        t = r.trials[i]
        assert t["status"] == "failed" and t["val_accuracy"] is None and t["objective"] == 0.0
        assert not t["accepted"] and t["reason"] == "TrainingDiverged: loss became nan at epoch 1, step 3"
    assert r.trials[0]["best_so_far"] is None and r.trials[1]["accepted"]  # anything beats a failed start
    assert r.best["status"] == "ok"


def test_repeated_proposals_reuse_the_result():
    space = build_space("ff", {"lr": None, "weight_decay": None, "dropout": None, "epochs": None,
                               "optimizer": {"values": ["adam", "adamw"]}, "batch_size": {"values": [64, 128]}})
    calls: list[int] = []
    r = anneal(space, fake_objective(calls), schedule=Schedule(0.03, 0.003, 8), seed=0)
    assert len(calls) == len({json.dumps(t["params"], sort_keys=True) for t in r.trials}) <= 4
    cached = [t for t in r.trials if t["status"] == "cached"]
    assert cached and all(r.trials[t["info"]["cached_from"] - 1]["params"] == t["params"] for t in cached)
    assert all(t["status"] != "failed" for t in r.trials)


def test_time_budget_stops_cleanly_and_resume_finishes_identically():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 8)
    whole = anneal(space, fake_objective(), schedule=sched, seed=9)
    now = [0.0]

    def slow(req):
        now[0] += 10.0  # each trial "takes" 10 s
        return fake_objective()(req)

    part = anneal(space, slow, schedule=sched, seed=9, deadline=35.0, clock=lambda: now[0])
    assert len(part.trials) == 4 and not part.complete and part.stopped == "time budget"

    def cut(req):  # a trial that runs out of budget mid-way is not recorded
        raise an.BudgetExhausted("out of time")

    part2 = anneal(space, cut, schedule=sched, seed=9, history=part.trials)
    assert len(part2.trials) == 4 and part2.stopped == "time budget"
    rest = anneal(space, fake_objective(), schedule=sched, seed=9, history=part.trials)
    assert strip(rest.trials) == strip(whole.trials)


# ------------------------------------------------------------------------------- trial configuration


def test_trial_and_full_configs():
    base = train.TrainConfig(model="ff", epochs=30, model_params={"hidden": [64]})
    space = default_space("ff", base)
    point = {**space.start_point(), "epochs": 21, "dropout": 0.25}
    cfg = an.trial_config(space, base, point, subset=4000, epochs_scale=0.5, max_epochs=8)
    assert (cfg.epochs, cfg.limit, cfg.model_params) == (8, 4000, {"hidden": [64], "dropout": 0.25})
    assert an.trial_config(space, base, point, None, 0.5, None).epochs == 10  # round(10.5) -> banker's 10
    full = an.full_config(space, base, point)
    assert (full.epochs, full.limit) == (21, None)


def test_search_data_hides_privatetest_and_shuffles_subset():
    sorted_train = Split(np.zeros((70, 48, 48), np.uint8), np.repeat(np.arange(7), 10))
    data = FER2013(sorted_train, Split(np.zeros((7, 48, 48), np.uint8), np.arange(7)),
                   Split(np.ones((7, 48, 48), np.uint8), np.arange(7)), source="x")
    seen = an.search_data(data, subset=14)
    assert len(seen.test) == 0 and len(seen.val) == 7
    assert len(np.unique(seen.train.labels[:14])) >= 4  # not the first two classes only
    assert np.array_equal(an.search_data(data, subset=14).train.labels, seen.train.labels)  # fixed order
    assert np.array_equal(an.search_data(data, subset=None).train.labels, data.train.labels)


# -------------------------------------------------------------------------- real tiny trials (CLI)


def test_cli_real_search_files_and_reproducibility(tiny_run, tmp_path, capsys):
    assert an.main(tiny_run(tmp_path / "a")) == 0
    out = capsys.readouterr().out
    assert "| trial | T |" in out and "train it on the full data: python -m training.train --config" in out
    assert an.main(tiny_run(tmp_path / "b", "--no-tensorboard")) == 0
    (a,), (b,) = run_dirs(tmp_path / "a"), run_dirs(tmp_path / "b")
    sa, sb = an.read_state(a), an.read_state(b)
    assert sa["complete"] and len(sa["trials"]) == 6
    assert strip(sa["trials"]) == strip(sb["trials"])  # same seed: same proposals AND same accuracies
    assert len({json.dumps(t["params"]) for t in sa["trials"]}) > 1
    assert all(t["status"] in ("ok", "cached") for t in sa["trials"])

    for f in ("trials.csv", "trials.json", "best.json", "search.png"):
        assert (a / f).stat().st_size > 0
    if importlib.util.find_spec("tensorboardX"):  # optional: the GPU machines run without it
        assert list(a.glob("events.out.tfevents.*")) and list(a.glob("trials/trial-001/events.out.tfevents.*"))
    assert not list(a.rglob("*.pt")) and len(list(a.glob("trials/trial-*/history.json"))) >= 1
    rows = list(csv.DictReader((a / "trials.csv").open()))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 7))
    assert {"temperature", "lr", "epochs", "batch_size", "optimizer", "dropout", "val_accuracy", "accepted",
            "best_so_far", "seconds", "status", "reason"} <= set(rows[0])

    best = json.loads((a / "best.json").read_text())
    assert best["config"]["limit"] is None and best["search"]["val_accuracy"] == sa["best"]["val_accuracy"]
    args = train.build_parser().parse_args(["--config", str(a / "best.json"), "--data", "x", "--epochs", "2"])
    cfg = train.config_from_args(args)  # what python -m training.train --config best.json does
    assert cfg.model == "ff" and cfg.lr == sa["best"]["params"]["lr"] and cfg.epochs == 2
    assert cfg.model_params["dropout"] == sa["best"]["params"]["dropout"] and cfg.model_params["hidden"] == [32]



def test_search_runs_without_tensorboardx(tiny_run, tmp_path, monkeypatch, capsys):
    """The GPU machines lack tensorboardX: the search still runs and writes its own files, after one note."""
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    assert an.main(tiny_run(tmp_path / "a")) == 0
    assert "tensorboardX is not installed" in capsys.readouterr().out
    (a,) = run_dirs(tmp_path / "a")
    assert an.read_state(a)["complete"] and (a / "search.png").stat().st_size > 0
    assert not list(a.rglob("events.out.tfevents.*"))

def test_cli_interrupt_in_trial_5_same_command_continues(tiny_run, tmp_path, monkeypatch, capsys):
    assert an.main(tiny_run(tmp_path / "whole", "--no-tensorboard")) == 0
    real_fit = train.fit
    calls: list[str] = []
    interrupted: list[bool] = []

    def fit(cfg, data, run_dir, **kw):
        calls.append(Path(run_dir).name)
        assert len(data.test) == 0  # PrivateTest is never handed to a trial
        if Path(run_dir).name == "trial-005" and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        return real_fit(cfg, data, run_dir, **kw)

    monkeypatch.setattr(train, "fit", fit)
    root = tmp_path / "killed"
    assert an.main(tiny_run(root)) == 130
    assert len(an.read_state(run_dirs(root)[0])["trials"]) == 4
    calls.clear()
    assert an.main(tiny_run(root)) == 0  # the same command again
    assert "continuing the unfinished search" in capsys.readouterr().out
    assert len(run_dirs(root)) == 1
    fresh = [t["iteration"] for t in an.read_state(run_dirs(root)[0])["trials"] if t["status"] == "ok"]
    assert calls == [f"trial-{i:03d}" for i in fresh if i >= 5]  # trials 1-4 are not retrained
    whole, resumed = an.read_state(run_dirs(tmp_path / "whole")[0]), an.read_state(run_dirs(root)[0])
    assert resumed["complete"] and strip(resumed["trials"]) == strip(whole["trials"])


def test_cli_kill_mid_trial_resumes_that_trial_from_its_last_epoch(tiny_run, tmp_path, monkeypatch):
    assert an.main(tiny_run(tmp_path / "whole", "--no-tensorboard")) == 0
    whole = an.read_state(run_dirs(tmp_path / "whole")[0])
    victim = next(t["iteration"] for t in whole["trials"] if t["iteration"] > 1 and t["params"]["epochs"] >= 2
                  and t["status"] == "ok")
    real_fit, real_epoch = train.fit, train.train_epoch
    epochs: list[tuple[str, int]] = []
    trial = [""]
    killed: list[bool] = []

    def fit(cfg, data, run_dir, **kw):
        trial[0] = Path(run_dir).name
        return real_fit(cfg, data, run_dir, **kw)

    def train_epoch(*args):
        epoch = args[7]
        epochs.append((trial[0], epoch))
        if trial[0] == f"trial-{victim:03d}" and epoch == 2 and not killed:
            killed.append(True)
            raise KeyboardInterrupt  # after epoch 1's last.pt was written
        return real_epoch(*args)

    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setattr(train, "train_epoch", train_epoch)
    root = tmp_path / "killed"
    assert an.main(tiny_run(root, "--no-tensorboard")) == 130
    (run,) = run_dirs(root)
    assert (run / "trials" / f"trial-{victim:03d}" / "last.pt").exists()
    epochs.clear()
    assert an.main(tiny_run(root, "--no-tensorboard")) == 0
    assert epochs[0] == (f"trial-{victim:03d}", 2)  # epoch 1 of the interrupted trial is not trained again
    assert strip(an.read_state(run)["trials"]) == strip(whole["trials"])
    assert not list(run.rglob("*.pt"))


def test_cli_diverging_trial_is_recorded_failed(tiny_run, tmp_path, monkeypatch):
    real_fit = train.fit

    def fit(cfg, data, run_dir, **kw):
        if Path(run_dir).name == "trial-002":
            real_fit(cfg, data, run_dir, **kw)  # leaves checkpoints behind, which must still be cleaned up
            raise train.TrainingDiverged("loss became nan at epoch 2, step 5")
        return real_fit(cfg, data, run_dir, **kw)

    monkeypatch.setattr(train, "fit", fit)
    assert an.main(tiny_run(tmp_path / "logs", "--no-tensorboard", "--iterations", "3")) == 0
    (run,) = run_dirs(tmp_path / "logs")
    t2 = an.read_state(run)["trials"][1]
    assert t2["status"] == "failed" and not t2["accepted"] and "loss became nan" in t2["reason"]
    assert "failed" in (run / "trials.csv").read_text() and not list(run.rglob("*.pt"))


def test_cli_time_budget_then_resume(tiny_run, tmp_path, monkeypatch):
    clock = [0.0]
    real_fit = train.fit

    def fit(cfg, data, run_dir, **kw):
        clock[0] += 100.0
        return real_fit(cfg, data, run_dir, **kw)

    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    root = tmp_path / "logs"
    assert an.main(tiny_run(root, "--no-tensorboard", "--time-budget", "250s")) == 0
    (run,) = run_dirs(root)
    state = an.read_state(run)
    assert not state["complete"] and state["stopped"] == "time budget" and 3 <= len(state["trials"]) < 6
    assert an.main(tiny_run(root, "--no-tensorboard", "--resume", str(run))) == 0
    assert an.read_state(run)["complete"]


def test_cli_subprocess_sigkill_then_rerun(tiny_run, tmp_path):
    """A real SIGKILL (no Python cleanup at all) in the middle of the search, then the same command again."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    whole_root, killed_root = tmp_path / "whole", tmp_path / "killed"
    cmd = [sys.executable, "-m", "training.anneal"]
    r = subprocess.run([*cmd, *tiny_run(whole_root, "--no-tensorboard")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([*cmd, *tiny_run(killed_root, "--no-tensorboard")], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = run_dirs(killed_root)
            if runs and (runs[0] / "trials.json").exists() and len(an.read_state(runs[0])["trials"]) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    done_before = len(an.read_state(run_dirs(killed_root)[0])["trials"])
    assert done_before < 6
    r = subprocess.run([*cmd, *tiny_run(killed_root, "--no-tensorboard")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{done_before} trial(s) already recorded" in r.stdout
    whole = an.read_state(run_dirs(whole_root)[0])
    resumed = an.read_state(run_dirs(killed_root)[0])
    assert strip(resumed["trials"]) == strip(whole["trials"])
