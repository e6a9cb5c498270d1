"""``python -m benchmarks``: quick smoke runs that check the table has its rows and its numbers parse.

Speeds themselves are not asserted (they depend on the machine and on what else runs on it); what is
checked is that each part runs through the app's real code paths and reports something readable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import Row, format_value, markdown_table

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str | os.PathLike, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    env.pop("DISPLAY", None)
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "benchmarks"]
    return subprocess.run([*head, *map(str, args)], cwd=REPO, env=env, capture_output=True, encoding="utf-8",
                          timeout=600)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """{benchmark: [median, unit, runs, notes]} from the Markdown table in the output."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("| ") and not line.startswith("| benchmark |"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_label_quick_on_tiny_zoo(tiny_zoo):
    r = _run("--only", "label", "--quick", "--threads", "1", "--zoo", tiny_zoo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Measured on: ")
    rows = table_rows(r.stdout)
    expected = [
        "labelling CNN", "labelling FF", "labelling ResNet18", "labelling ensemble (CNN + FF + ResNet18)",
        "labelling ensemble, flip TTA (--tta)",
        "detection + labelling, 240p (426x240)", "detection + labelling, 720p (1280x720)",
        "detection + labelling, 1080p (1920x1080)",
        "detection + labelling, 240p (426x240), --detector mtcnn",
        "detection + labelling, 720p (1280x720), --detector mtcnn",
        "detection + labelling, 1080p (1920x1080), --detector mtcnn",
    ]
    assert list(rows) == expected
    for name, (median, unit, runs, notes) in rows.items():
        assert float(median) > 0, name
        assert unit == ("ms/face" if name.startswith("labelling") else "ms/photo")
        assert int(runs) > 0
        if name.startswith("detection"):
            assert re.search(r"\d+ faces? found", notes) and not notes.split(", ")[1].startswith("0 faces"), notes
    assert "target: detection <= 60 ms" in rows["detection + labelling, 1080p (1920x1080), --detector mtcnn"][3]


def test_missing_zoo_is_a_skipped_row(tmp_path):
    r = _run("--only", "label", "--quick", "--zoo", tmp_path / "nowhere")
    assert r.returncode == 0, r.stderr
    (median, _unit, _runs, notes), = table_rows(r.stdout).values()
    assert median == "—" and notes.startswith("skipped:") and "nowhere" in notes


def test_training_rows_skip_without_torch():
    code = ("import sys; sys.modules['torch'] = None; from benchmarks.__main__ import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = _run("--only", "train", "--quick", code=code)
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert list(rows) == ["training cnn", "training ff", "training resnet18"]
    assert all(v[0] == "—" and "torch not installed" in v[3] for v in rows.values())


def test_training_quick_ff():
    pytest.importorskip("torch")
    r = _run("--only", "train", "--quick", "--threads", "1", "--models", "ff")
    assert r.returncode == 0, r.stderr
    (median, unit, runs, notes), = table_rows(r.stdout).values()
    assert float(median) > 0 and unit == "images/s" and "bf16 autocast" in notes, r.stdout


def test_update_readme_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# X\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n\nafter\n")
    r = _run("--only", "bundle", "--update-readme", "--readme", readme)
    assert r.returncode == 0, r.stderr
    text = readme.read_text()
    assert "old table" not in text and "| bundle size, dist/EmotionLens |" in text
    assert text.endswith("<!-- bench:end -->\n\nafter\n") and "Measured on: " in text


def test_update_readme_without_markers_only_prints(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# X\n")
    r = _run("--only", "bundle", "--update-readme", "--readme", readme)
    assert r.returncode == 0
    assert readme.read_text() == "# X\n"
    assert "| bundle size, dist/EmotionLens |" in r.stdout and "README not updated" in r.stderr


def test_bad_arguments_exit_2(tmp_path):
    assert _run("--threads", "0").returncode == 2
    assert _run("--only", "train", "--models", "vgg").returncode == 2
    assert _run("--photo", tmp_path / "missing.jpg").returncode == 2


def test_training_rows_on_a_missing_device_exit_2():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = _run("--only", "train", "--models", "ff", "--device", "cuda")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: --device cuda")


def test_table_format():
    text = markdown_table([Row("a", 1234.5, "ms", "3", "x | y"), Row("b", None, "s", "", "skipped: z")])
    assert text.splitlines() == [
        "| benchmark | median | unit | runs | notes |",
        "|---|---|---|---|---|",
        "| a | 1234 | ms | 3 | x \\| y |",
        "| b | — | s |  | skipped: z |",
    ]
    assert [format_value(v) for v in (0.0312, 0.5, 12.34, 0.0)] == ["0.0312", "0.500", "12.3", "0.00"]


def test_startup_measures_every_build_that_exists(tmp_path, monkeypatch):
    from benchmarks import startup

    monkeypatch.setattr(startup, "ROOT", tmp_path)
    monkeypatch.setattr(startup, "FROZEN", tmp_path / "dist" / "EmotionLens" / "EmotionLens")
    monkeypatch.setattr(startup, "ONEFILE", tmp_path / "dist" / "EmotionLens-onefile")
    assert [label for label, _ in startup.launchers()] == ["python -m app"]
    startup.ONEFILE.parent.mkdir(parents=True)
    startup.ONEFILE.write_bytes(b"")
    assert [label for label, _ in startup.launchers()] == ["python -m app", "frozen dist/EmotionLens-onefile"]


def test_bundle_rows_size_the_folder_and_the_one_file_build(tmp_path):
    from benchmarks.bundle import bundle_rows

    dist, onefile = tmp_path / "EmotionLens", tmp_path / "EmotionLens-onefile"
    rows = bundle_rows(dist, onefile)
    assert len(rows) == 1 and rows[0].value is None and "not built" in rows[0].notes
    (dist / "_internal").mkdir(parents=True)
    (dist / "_internal" / "lib.so").write_bytes(b"x" * 3 * 2**20)
    onefile.write_bytes(b"x" * 2**20)
    folder, single = bundle_rows(dist, onefile)
    assert folder.value >= 3 and "1 files" in folder.notes
    assert single.what == "bundle size, dist/EmotionLens-onefile" and single.value == 1
