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


def _fake_build(root: Path) -> tuple[Path, Path, dict[str, Path]]:
    """A folder shaped like PyInstaller's (_internal/ with av/, av.libs/, PIL/, a small cv2, a model) and the
    installed packages it was built from: what benchmarks.bundle compares."""
    def put(path: Path, mb: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(int(mb * 2**20)))  # random bytes: no sparse files, so du-like sizes hold

    internal = root / "dist" / "EmotionLens" / "_internal"
    put(internal / "av" / "codec.abi3.so", 1)
    put(internal / "av.libs" / "libx265-abc.so.216", 2)
    put(internal / "av.libs" / "libSvtAv1Enc-abc.so.4", 1)
    put(internal / "PIL" / "_imaging.so", 0.25)
    put(internal / "cv2.cpython-311-x86_64-linux-gnu.so", 1)
    put(internal / "models_zoo" / "resnet18.onnx", 2)
    (internal / "libx265-abc.so.216").symlink_to("av.libs/libx265-abc.so.216")  # as PyInstaller links them
    site = root / "site"
    put(site / "av" / "codec.abi3.so", 4)
    put(site / "av" / "unbundled.abi3.so", 8)  # not in the bundle: must not count as stripped
    put(site / "PIL" / "_imaging.so", 1)
    put(site / "yaml" / "__init__.py", 1)
    put(site / "cv2" / "cv2.abi3.so", 3)
    put(site / "opencv_python_headless.libs" / "libavcodec.so", 5)
    onefile = root / "dist" / "EmotionLens-onefile"
    put(onefile, 3)
    dirs = {"av": site / "av", "PIL": site / "PIL", "yaml": site / "yaml", "cv2": site / "cv2",
            "opencv_python_headless.libs": site / "opencv_python_headless.libs"}
    return internal.parent, onefile, dirs


def test_bundle_size_table_into_its_block(tmp_path, monkeypatch):
    """``python -m benchmarks.bundle --update-docs`` writes the size table and its note into the bundle-size block
    of the page, and nothing else: stripped modules are matched file by file, symlinks count once, the budget is
    tests/test_bundle.py's constant."""
    from benchmarks import bundle

    dist, onefile, dirs = _fake_build(tmp_path)
    monkeypatch.setattr(bundle, "installed", lambda m: dirs.get(m))
    page = tmp_path / "packaging.md"
    page.write_text("# P\n\nbefore\n<!-- bundle-size:start -->\nold\n<!-- bundle-size:end -->\nafter\n")
    assert bundle.main(["--dist", str(dist), "--onefile", str(onefile), "--update-docs", "--page", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# P\n\nbefore\n<!-- bundle-size:start -->\n| what | MB | how |")
    assert text.endswith("<!-- bundle-size:end -->\nafter\n") and "\nold\n" not in text
    assert f"`python -m benchmarks.bundle --dist {dist} --onefile {onefile} --update-docs`: sizes on disk" in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| what")}
    budget = bundle.constant(bundle.BUDGET_TEST, "MAX_BUNDLE_MB")
    assert float(rows["the budget, `MAX_BUNDLE_MB` in tests/test_bundle.py"][0]) == budget
    assert float(rows["the folder, dist/EmotionLens (what `build.spec` builds)"][0]) == pytest.approx(7.25, abs=0.1)
    assert float(rows["of which libx265 (HEVC encoder)"][0]) == pytest.approx(2, abs=0.05)
    assert float(rows["av and PIL extension modules, as installed (with debug info)"][0]) == pytest.approx(5, abs=0.1)
    assert float(rows["the same, stripped by `build.spec`"][0]) == pytest.approx(1.25, abs=0.05)
    assert rows["cv2 in the folder"][1].startswith("one module")
    zoo = rows["the emotion models in the folder: models_zoo/ without detectors/"]
    assert float(zoo[0]) == pytest.approx(2, abs=0.05)  # what a second zoo would add, against the headroom
    left = float(zoo[1].split("would leave ")[1].split(" MB")[0])
    assert zoo[1].startswith("1 files;") and left == pytest.approx(budget - 7.25 - 2, abs=0.5)  # 3 significant figures
    assert float(rows["estimate: the folder with the wheel's cv2"][0]) == pytest.approx(7.25 - 1 + 8, abs=0.2)


def test_bundle_script_without_a_build_exits_2(tmp_path, capsys):
    from benchmarks.bundle import main

    assert main(["--dist", str(tmp_path / "none")]) == 2
    assert "not built" in capsys.readouterr().err


def test_bundle_trims_named_as_build_spec_has_them():
    """The size table's trim rows describe build.spec's own lists, so a changed spec cannot leave them wrong."""
    from benchmarks import bundle

    excludes = bundle.constant(bundle.SPEC, "EXCLUDES")
    assert set(bundle.LEFT_OUT) <= set(excludes)
    assert set(bundle.constant(bundle.SPEC, "STRIP_PACKAGES")) == {"av", "PIL"}
