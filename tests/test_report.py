"""README tables are rendered from files, never typed: the manifest table and the annealing trials table."""

from __future__ import annotations

import csv

import pytest
import torch

from training import export, report
from training.models import build_model

torch.set_num_threads(1)


def test_results_table_reads_manifest_and_measures(tmp_path):
    path = export.export_onnx(build_model("ff", hidden=(8,)).eval(), tmp_path / "ff.onnx")
    metrics = {"public_test_accuracy": 0.5123, "private_test_accuracy": 0.5012, "tta": False,
               "private_test_accuracy_tta": 0.51}
    training = {"epochs": 3, "seconds": 600, "images_per_second": 4000, "parameters": 18_000}
    export.update_manifest(tmp_path, export.manifest_entry("ff", path.name, metrics, training))
    table = report.results_table(tmp_path)
    row = table.splitlines()[2]
    assert row.startswith("| FF | FER2013 labels | 51.23% | 50.12% | 51.00% | — | — | — | 3 | 10 min | — | 4000 "
                          "| 0.02 M |")
    assert row.endswith("| fp32 | " + row.split("|")[-3].strip() + " | finished |")
    assert float(row.split("|")[-3]) > 0  # ms per face measured, not copied
    assert "![FF" not in table  # no log folder recorded, so no figure links to dead files
    assert "| VGG13, majority voting (Barsoum et al., ICMI 2016), published | FER+ |" in table


def test_results_table_shows_both_truths(tmp_path):
    path = export.export_onnx(build_model("ff", hidden=(8,)).eval(), tmp_path / "ff.onnx")
    metrics = {"public_test_accuracy": 0.47, "private_test_accuracy": 0.46, "ferplus_public_test_accuracy": 0.6856,
               "ferplus_private_test_accuracy": 0.6643}
    entry = export.manifest_entry("ff", path.name, metrics, {"epochs": 3})
    entry["labels"] = "ferplus-soft"
    export.update_manifest(tmp_path, entry)
    row = report.results_table(tmp_path).splitlines()[2]
    assert row.startswith("| FF | FER+ votes | 47.00% | 46.00% | — | 68.56% | 66.43% | — | 3 |"), row


def test_trained_on_names_the_device_from_the_manifest():
    assert report.trained_on({"device": "cpu", "device_name": "AMD EPYC", "processes": 1}) == "CPU (AMD EPYC)"
    assert report.trained_on({"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "processes": 4}) == (
        "GPU (NVIDIA H100 80GB HBM3), 4 processes")
    assert report.trained_on({"device": "mps"}) == "mps"
    assert report.trained_on({}) == "—"  # an older manifest that did not record it


def test_results_table_shows_each_models_curves_and_confusion_matrix(tmp_path):
    path = export.export_onnx(build_model("ff", hidden=(8,)).eval(), tmp_path / "ff.onnx")
    training = {"epochs": 3, "seconds": 600, "images_per_second": 4000, "parameters": 18_000,
                "log_dir": "logs/ff-1"}
    export.update_manifest(tmp_path, export.manifest_entry("ff", path.name, {"tta": False}, training))
    table = report.results_table(tmp_path)
    assert "| training curves | ![FF training curves](logs/ff-1/curves.png) |" in table
    assert "![FF confusion matrix (PrivateTest, FER2013 labels)](logs/ff-1/confusion_matrix.png)" in table
    assert "FER+ majority)" not in table  # no FER+ score recorded, so no link to a FER+ matrix that is not there


def test_ferplus_zoo_links_both_confusion_matrices_and_writes_the_headline(tmp_path):
    path = export.export_onnx(build_model("ff", hidden=(8,)).eval(), tmp_path / "ff.onnx")
    metrics = {"private_test_accuracy": 0.46, "ferplus_private_test_accuracy": 0.6643}
    entry = export.manifest_entry("ff", path.name, metrics, {"epochs": 3, "log_dir": "logs/ff-2"})
    entry["labels"] = "ferplus-soft"
    export.update_manifest(tmp_path, entry)
    assert "FER+ majority)" not in report.results_table(tmp_path, root=tmp_path)  # no matrix file, no link
    (tmp_path / "logs" / "ff-2" / "ferplus").mkdir(parents=True)
    (tmp_path / "logs" / "ff-2" / "ferplus" / "confusion_matrix.png").write_bytes(b"png")
    table = report.results_table(tmp_path, root=tmp_path)
    assert "![FF confusion matrix (PrivateTest, FER+ majority)](logs/ff-2/ferplus/confusion_matrix.png)" in table
    manifest = tmp_path / "manifest.json"
    import json
    m = json.loads(manifest.read_text())
    m["ensemble"] = {"models": ["ff"], "private_test_accuracy": 0.5, "ferplus_private_test_accuracy": 0.8321}
    manifest.write_text(json.dumps(m))
    text = report.headline(tmp_path)
    assert f"(`{tmp_path.name}/`) are trained on FER+ votes" in text
    assert "ten FER+ labellers on 83.21% of faces" in text and "single labels on 50.00%" in text
    assert "the published FER+ models score 83.85% to 84.99%" in text


def test_anneal_table_and_replace_block(tmp_path):
    fields = ["iteration", "status", "temperature", "lr", "val_accuracy", "acceptance_probability", "accepted",
              "best_so_far", "seconds", "epochs_run", "reason"]
    with open(tmp_path / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerow({"iteration": 1, "status": "ok", "temperature": 0.03, "lr": 0.001, "val_accuracy": 0.4,
                    "acceptance_probability": 1, "accepted": 1, "best_so_far": 0.4, "seconds": 60, "epochs_run": 2})
        w.writerow({"iteration": 2, "status": "failed", "temperature": 0.02, "lr": 9, "val_accuracy": "",
                    "acceptance_probability": 0, "accepted": 0, "best_so_far": 0.4, "seconds": 30,
                    "reason": "loss became nan"})
    table = report.anneal_table(tmp_path)
    assert "| 1 | 0.03 | 0.001 | 0.4 | yes | 0.4 | 60 |" in table
    assert "failed: loss became nan | no" in table
    assert "2 trials, 1.5 min" in table
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n")
    report.replace_block(readme, "x", "new")
    assert readme.read_text() == "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"
    with pytest.raises(ValueError, match="no <!-- y:start -->"):
        report.replace_block(readme, "y", "z")


def test_ablation_tables_from_run_folders(tmp_path):
    for name in ("ablation-cnn-1", "ablation-ff-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "ablation.md").write_text(f"| training set |\n|---|\n| {name} |\n")
    text = report.ablation_table([tmp_path / "ablation-cnn-1", tmp_path / "ablation-ff-2"])
    assert text.startswith("Run folder `ablation-cnn-1`:\n\n| training set |")
    assert "Run folder `ablation-ff-2`:\n\n| training set |\n|---|\n| ablation-ff-2 |" in text
    with pytest.raises(OSError):
        report.ablation_table([tmp_path / "missing"])


def test_recipe_table_says_what_each_ingredient_added(tmp_path):
    import json

    def run(name, acc, raw=None, **cfg):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model": "ff", "epochs": 2, **cfg}))
        rows = [{"val_acc": a, "seconds": 60, **({"val_acc_raw": raw} if raw else {})} for a in (acc - 0.01, acc)]
        (d / "history.json").write_text(json.dumps(rows))
        return d

    base = run("ff-base", 0.50, weight_decay=0.0005)
    kd = run("ff-kd", 0.53, raw=0.52, distill="t.npz", distill_alpha=0.7, distill_temperature=4, ema=0.999,
             weight_decay=0.005)
    mix = run("ff-mix", 0.51, mix="mixup", mix_alpha=0.2, model_params={"per_image": True}, weight_decay=0.0005)
    lines = report.recipe_table([base, kd, mix]).splitlines()
    assert lines[2] == "| `ff-base` | ff | plain | 2/2 | 50.00% | — | +0.00 | 2 |"
    assert "| mixup (alpha 0.2), per-image standardisation | 2/2 | 51.00% |" in lines[4]
    assert ("| weight decay 0.005 (first row 0.0005), distillation (alpha 0.7, T 4, teachers all), EMA 0.999 |"
            in lines[3])
    assert "| 53.00% | 52.00% | +3.00 |" in lines[3]


def test_recipe_table_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "empty-run").mkdir()
    assert report.main(["--recipe", str(tmp_path / "empty-run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a training run folder" in err
    started = tmp_path / "started-run"
    started.mkdir()
    (started / "config.json").write_text('{"model": "ff", "epochs": 2}')
    (started / "history.json").write_text("[]")
    assert report.main(["--recipe", str(started)]) == 2
    assert "no finished epoch" in capsys.readouterr().err
