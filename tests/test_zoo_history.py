"""The zoo history table is read from git, one row per shipped zoo (issue 27)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from training import zoo_history

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _manifest(ff_run: str, ensemble: dict | None, note: str = "") -> dict:
    models = [{"name": "cnn", "training": {"log_dir": "logs/cnn-1"}, "metrics": {"weights": "fp16"}},
              {"name": "ff", "training": {"log_dir": f"logs/{ff_run}", "status": "interim: epoch 2 of 9"},
               "metrics": {}}]
    return {"models": models, "ensemble": ensemble, "note": note}


def test_history_table_one_row_per_zoo(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "models_zoo").mkdir()
    ens = {"weights": {"cnn": 0.6, "ff": 0.4}, "public_test_accuracy": 0.7, "private_test_accuracy": 0.71,
           "private_test_accuracy_tta": 0.7234}
    for manifest in (_manifest("ff-1", None), _manifest("ff-1", None, "only other fields changed"),
                     _manifest("ff-2", ens)):
        (tmp_path / "models_zoo" / "manifest.json").write_text(json.dumps(manifest))
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "zoo"], check=True)
    versions = zoo_history.manifest_versions(tmp_path)
    assert len(versions) == 3
    rows = zoo_history.history_table(versions, models=("cnn", "ff")).splitlines()
    assert len(rows) == 4  # header, rule, two zoos: the commit that changed only a note gives no row
    assert rows[2].endswith("| FER2013 labels | `cnn-1` (fp16) | `ff-1` (fp32, interim) | — | — | — | — | — |")
    assert rows[3].endswith("| `ff-2` (fp32, interim) | 0.60 / 0.40 | 70.00% | 71.00% | 72.34% | — |")
    since = zoo_history.manifest_versions(tmp_path, since=versions[0][0])
    assert [c for c, _ in since] == [c for c, _ in versions[1:]]


def test_not_a_repository_is_one_line(tmp_path, capsys):
    assert zoo_history.main(["--repo", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: git")
