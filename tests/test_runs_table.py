"""The documentation's run tables are rendered from run folders, never typed (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import runs_table
from training.report import replace_block


def fake_run(root: Path, name: str, accs: list[float], seconds: list[float], raw: list[float] | None = None,
             private: tuple[float, float] | None = None, **cfg) -> Path:
    """A run folder as training.train leaves it: config.json, history.json and, once scored, metrics.json."""
    run = root / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "ff", "epochs": len(accs), "weight_decay": 1e-4, **cfg}))
    history = [{"epoch": i + 1, "val_acc": a, "seconds": s, "images_per_second": 1000.0 + i, "device_name": "CPU X"}
               for i, (a, s) in enumerate(zip(accs, seconds, strict=True))]
    for h, r in zip(history, raw or [], strict=False):
        h["val_acc_raw"] = r
    (run / "history.json").write_text(json.dumps(history))
    if private:
        split = {"n": 400, "accuracy": private[0], "accuracy_tta": private[1]}
        (run / "metrics.json").write_text(json.dumps({"public_test": dict(split), "private_test": split,
                                                      "manifest_metrics": {"weights": "fp16"}}))
    return run


def test_scores_table_reads_history_and_metrics(tmp_path):
    plain = fake_run(tmp_path, "ff-1", [0.40, 0.45, 0.45], [60, 60, 60], private=(0.4412, 0.4567))
    kd = fake_run(tmp_path, "ff-2", [0.50], [30], private=(0.5, 0.51), distill="t.npz", ema=0.999,
                  weight_decay=1e-3)
    table = runs_table.scores_table([plain, kd]).splitlines()
    assert table[2] == "| `ff-1` | ff | plain | 3/3 | 3 | 45.00% (2) | 44.12% | 45.67% | fp16 |"
    assert table[3].startswith("| `ff-2` | ff | weight decay 0.001 (first row 0.0001), distillation (alpha 0.5, T 2, "
                               "teachers all), EMA 0.999 | 1/1 | 0 | 50.00% (1) | 50.00% | 51.00% |")
    assert table[-1].endswith("sqrt(0.25 / 400) = 2.50 points.")


def test_epoch_times_table_gives_pace_alone(tmp_path):
    run = fake_run(tmp_path, "cnn-1", [0.5] * 4, [900, 360, 300, 420], model="cnn")
    row = runs_table.epoch_times_table([run]).splitlines()[2]
    assert row == "| `cnn-1` | cnn | CPU X | 4 | 33 | 300 | 390 | 900 | 1002 | 0.3 | 0.4 |"


def test_lead_and_averaging_tables(tmp_path):
    base = fake_run(tmp_path, "a", [0.30, 0.40, 0.50], [1, 1, 1])
    run = fake_run(tmp_path, "b", [0.35, 0.38, 0.55], [1, 1, 1], raw=[0.20, 0.39, 0.54])
    lead = runs_table.lead_table([(base, run)], epochs=(1, 3)).splitlines()[2]
    assert lead == "| `b` | `a` | 2 of 3 | 35.00% vs 30.00% | 55.00% vs 50.00% |"
    avg = runs_table.averaging_table([run], last=2).splitlines()[2]
    assert avg == "| `b` | 2 of 3 | +15.0 | -1.0 to +1.0 |"
    with pytest.raises(ValueError, match="val_acc_raw"):
        runs_table.averaging_table([base])


def test_label_ablation_table_shows_both_truths(tmp_path):
    def scored(run: Path, own: float, ferplus: float) -> Path:
        for sub, acc, n in (("publictest", own, 400), ("publictest/ferplus", ferplus, 380)):
            (run / sub).mkdir(parents=True)
            (run / sub / "metrics.json").write_text(json.dumps({"n": n, "accuracy": acc}))
        return run

    soft = scored(fake_run(tmp_path, "ff-1", [0.6, 0.7], [1, 1], labels="ferplus-soft", ferplus="v.csv",
                           contempt="disgust"), 0.47, 0.68)
    old = scored(fake_run(tmp_path, "ff-2", [0.5], [1], labels="fer2013", ferplus="v.csv", keep_nonfaces=True),
                 0.52, 0.61)
    rows = runs_table.label_ablation_table([soft, old]).splitlines()
    assert rows[2] == ("| `ff-1` | ff | ferplus-soft | disgust | dropped | 2/2 | 47.00% (400 faces) "
                       "| 68.00% (380 faces) |")
    assert rows[3] == "| `ff-2` | ff | fer2013 | — | kept | 1/1 | 52.00% (400 faces) | 61.00% (380 faces) |"
    assert rows[-1].endswith("sqrt(0.25 / 380) = 2.56 points.")
    with pytest.raises(ValueError, match="no metrics.json"):
        runs_table.label_ablation_table([fake_run(tmp_path, "ff-3", [0.5], [1])])


def test_missing_files_and_cli(tmp_path, capsys):
    run = fake_run(tmp_path, "ff-1", [0.4], [10])
    with pytest.raises(ValueError, match="metrics.json"):
        runs_table.scores_table([run])
    assert runs_table.main(["--table", "epoch-times", str(run)]) == 0
    assert "| `ff-1` | ff | CPU X | 1 |" in capsys.readouterr().out
    assert runs_table.main(["--table", "scores", str(run)]) == 2
    with pytest.raises(SystemExit):
        runs_table.main(["--table", "scores"])


def test_every_block_renders_from_the_committed_run_folders(tmp_path, monkeypatch):
    """The blocks the pages hold come from logs/ as committed; writing them twice changes nothing."""
    page = tmp_path / "page.md"
    page.write_text("".join(f"<!-- {n}:start -->\nold\n<!-- {n}:end -->\n" for n in runs_table.BLOCKS))
    monkeypatch.setattr(runs_table, "block_file", lambda name: page)
    assert runs_table.main(["--update-docs"]) == 0
    once = page.read_text()
    assert "old" not in once and "| `cnn-20261124-164241` |" in once
    replace_block(page, "run-scores", "old")
    assert runs_table.main(["--update-docs", "--block", "run-scores"]) == 0
    assert page.read_text() == once
