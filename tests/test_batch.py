"""The batch CLI: outputs and their schema, bad inputs, originals untouched, resume, interrupts, exit codes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.batch import _cli as batch
from app.batch._cli import main

REPO = Path(__file__).resolve().parents[1]
HEADER = [
    "image", "face", "x", "y", "w", "h",
    "cnn_label", "cnn_confidence", "ff_label", "ff_confidence", "resnet18_label", "resnet18_confidence",
    "ensemble_label", "ensemble_confidence",
]  # fmt: skip


def _rows(out: Path) -> list[list[str]]:
    with open(out / "labels.csv", encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(*args, zoo, workers: int = 1) -> int:
    """In-process by default (tests patch the per-image step); the worker pool has its own tests."""
    return main([*map(str, args), "--zoo", str(zoo), "--threads", "1", "--workers", str(workers)])


@pytest.fixture
def photos(tmp_path, sample_photo, bad_images):
    """in/: two good photos (one in a subfolder), a no-face image, bad files, a text file."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(sample_photo, src / "a.jpg")
    shutil.copy(bad_images["cmyk_jpg"], src / "sub" / "b.jpg")
    from PIL import Image

    Image.new("RGB", (320, 240), (200, 190, 180)).save(src / "wall.png")
    shutil.copy(bad_images["truncated_jpg"], src / "broken.jpg")
    shutil.copy(bad_images["text_as_jpg"], src / "notes.jpg")
    shutil.copy(bad_images["zero_byte"], src / "empty.png")
    (src / "readme.txt").write_text("not an image")
    return src


def test_csv_schema_summary_and_bad_files(photos, tmp_path, tiny_zoo, capsys):
    out = tmp_path / "out"
    assert _run(photos, "--out", out, "--recursive", zoo=tiny_zoo) == 0
    rows = _rows(out)
    assert rows[0] == HEADER
    assert [(Path(r[0]).name, r[1]) for r in rows[1:]] == [("a.jpg", "1"), ("b.jpg", "1")]
    for r in rows[1:]:
        assert all(r[i].isdigit() for i in range(1, 6))
        assert r[6] in batch_emotions() and 0 < float(r[7]) <= 1 and r[12] in batch_emotions()
    s = _summary(out)
    assert s["images"] == 6 and s["labelled"] == 2 and s["faces"] == 2
    assert [Path(p).name for p in s["no_face"]] == ["wall.png"]
    reasons = {Path(e["image"]).name: e["reason"] for e in s["errors"]}
    assert set(reasons) == {"broken.jpg", "notes.jpg", "empty.png"}
    assert "truncated" in reasons["broken.jpg"] and "not an image file" in reasons["notes.jpg"]
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert [Path(e["path"]).name for e in s["skipped"]] == ["readme.txt"]
    assert s["models"] == ["cnn", "ff", "resnet18"] and s["eye_check"] is True and s["seconds"] > 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(line.startswith("skipped: ") and "broken.jpg: truncated" in line for line in err.splitlines())


def batch_emotions() -> set[str]:
    from app.core import EMOTIONS

    return set(EMOTIONS)


def test_not_recursive_by_default(photos, tmp_path, tiny_zoo):
    out = tmp_path / "out"
    assert _run(photos, "--out", out, zoo=tiny_zoo) == 0
    assert [Path(r[0]).name for r in _rows(out)[1:]] == ["a.jpg"]
    assert _summary(out)["images"] == 5  # sub/ not entered


def test_annotate_inside_input_folder_never_touches_originals(photos, tiny_zoo):
    before = _tree_hashes(photos)
    out = photos / "results"  # --out inside the folder being labelled
    for _ in range(2):  # the second run must not pick up the first run's annotated copies
        assert _run(photos, "--out", out, "--recursive", "--annotate", zoo=tiny_zoo) == 0
        s = _summary(out)
        assert s["images"] == 6 and s["faces"] == 2
    after = _tree_hashes(photos)
    assert {k: v for k, v in after.items() if not k.startswith("results")} == before
    ann = out / "annotated"
    assert sorted(str(p.relative_to(ann)) for p in ann.rglob("*") if p.is_file()) == [
        "a.jpg", "sub/b.jpg", "wall.png"
    ]  # mirrors the input tree; no-face images are copied too (unannotated) for a complete set
    assert not list(out.rglob("*.tmp*"))


def test_annotated_copy_never_overwrites_an_input(tmp_path, sample_photo, tiny_zoo, capsys):
    # --out is the parent of an input folder named "annotated": copies would land on the originals.
    src = tmp_path / "annotated"
    src.mkdir()
    shutil.copy(sample_photo, src / "a.jpg")
    before = _tree_hashes(src)
    assert _run(src, "--out", tmp_path, "--annotate", zoo=tiny_zoo) == 2
    assert "would overwrite the input image" in capsys.readouterr().err
    assert _tree_hashes(src) == before


def test_resume_skips_done_images(tmp_path, sample_photo, tiny_zoo, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a", "b"):
        shutil.copy(sample_photo, src / f"{n}.jpg")
    out = tmp_path / "out"
    assert _run(src, "--out", out, zoo=tiny_zoo) == 0
    shutil.copy(sample_photo, src / "c.jpg")
    seen: list[str] = []
    real = batch._label_one

    def spy(it, *a, **k):
        seen.append(it.path.name)
        return real(it, *a, **k)

    monkeypatch.setattr(batch, "_label_one", spy)
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo) == 0
    assert seen == ["c.jpg"]
    assert [Path(r[0]).name for r in _rows(out)[1:]] == ["a.jpg", "b.jpg", "c.jpg"]
    s = _summary(out)
    assert s["images"] == 3 and s["faces"] == 3 and s["resumed"] == 2
    seen.clear()
    assert _run(src, "--out", out, zoo=tiny_zoo) == 0  # without --resume: a fresh run
    assert seen == ["a.jpg", "b.jpg", "c.jpg"] and len(_rows(out)) == 4


def test_kill_mid_image_loses_only_that_image(tmp_path, sample_photo, tiny_zoo, monkeypatch):
    """Simulate a kill after b.jpg's rows were written but before it was journalled: resume redoes b only."""
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(sample_photo, src / f"{n}.jpg")
    out = tmp_path / "out"
    assert _run(src, "--out", out, zoo=tiny_zoo) == 0
    journal = out / ".progress.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text(lines[0] + "\n" + lines[1][:15])  # b's journal line torn, c never reached
    rows = (out / "labels.csv").read_text().splitlines()
    (out / "labels.csv").write_text("\n".join(rows[:3]) + "\n" + rows[3][:20])  # c's row torn mid-write
    (out / "annotated").mkdir()
    stale = out / "annotated" / ".b.4242-0123abcd.tmp.jpg"  # a killed save_image leaves this behind
    stale.write_bytes(b"partial")
    keep = out / "annotated" / ".user-notes.txt"
    keep.write_text("not ours")
    seen: list[str] = []
    real = batch._label_one
    monkeypatch.setattr(batch, "_label_one", lambda it, *a, **k: (seen.append(it.path.name), real(it, *a, **k))[1])
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo) == 0
    assert seen == ["b.jpg", "c.jpg"]
    assert [Path(r[0]).name for r in _rows(out)[1:]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert not stale.exists() and keep.exists()


def test_ctrl_c_saves_progress_then_resume(tmp_path, sample_photo, tiny_zoo, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(sample_photo, src / f"{n}.jpg")
    out = tmp_path / "out"
    real = batch._label_one

    def interrupt_on_b(it, *a, **k):
        if it.path.name == "b.jpg":
            raise KeyboardInterrupt
        return real(it, *a, **k)

    monkeypatch.setattr(batch, "_label_one", interrupt_on_b)
    assert _run(src, "--out", out, zoo=tiny_zoo) == 130
    s = _summary(out)
    assert s["interrupted"] is True and s["done"] == 1 and s["images"] == 3
    assert [Path(r[0]).name for r in _rows(out)[1:]] == ["a.jpg"]
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(batch, "_label_one", real)
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo) == 0
    s = _summary(out)
    assert s["interrupted"] is False and s["done"] == 3 and s["faces"] == 3


def test_eye_check_switch_changes_count(false_positive_photo, tmp_path, tiny_zoo):
    on, off = tmp_path / "on", tmp_path / "off"
    assert _run(false_positive_photo, "--out", on, zoo=tiny_zoo) == 0
    assert _run(false_positive_photo, "--out", off, "--no-eye-check", zoo=tiny_zoo) == 0
    assert _summary(on)["faces"] == 1 and _summary(off)["faces"] == 2
    assert _summary(off)["eye_check"] is False


def test_tta_switch_is_recorded_and_labels_like_the_labeler(sample_photo, tmp_path, tiny_zoo):
    from app.core import load_image
    from app.models import Labeler

    plain, tta = tmp_path / "plain", tmp_path / "tta"
    assert _run(sample_photo, "--out", plain, zoo=tiny_zoo) == 0
    assert _run(sample_photo, "--out", tta, "--tta", zoo=tiny_zoo) == 0
    assert _summary(plain)["tta"] is False and _summary(tta)["tta"] is True
    header, row = _rows(tta)
    expected = Labeler(tiny_zoo, threads=1).label_image(load_image(sample_photo), tta=True).faces[0]
    assert row[header.index("ensemble_label")] == expected.ensemble.label
    assert float(row[header.index("ensemble_confidence")]) == pytest.approx(expected.ensemble.confidence, abs=1e-3)
    assert _rows(plain)[1] != row


def test_all_awkward_formats_are_labelled(bad_images, tmp_path, tiny_zoo):
    keys = ["png16", "cmyk_jpg", "exif_rotated_jpg", "rgba_png", "palette_png", "unicode_name"]
    out = tmp_path / "out"
    assert _run(*(bad_images[k] for k in keys), "--out", out, zoo=tiny_zoo) == 0
    s = _summary(out)
    assert s["labelled"] == len(keys) and s["faces"] == len(keys) and not s["errors"], s
    assert any(r[0].endswith("фото_日本語_é.jpg") for r in _rows(out))


def test_explicit_non_image_file_reported(tmp_path, tiny_zoo):
    p = tmp_path / "data.csv"
    p.write_text("a,b\n1,2\n")
    out = tmp_path / "out"
    assert _run(p, "--out", out, zoo=tiny_zoo) == 0
    assert _summary(out)["errors"][0]["reason"].startswith("not an image file")


def test_usage_errors_exit_2_with_one_line(tmp_path, sample_photo, zoo_copy, capsys):
    out = tmp_path / "out"
    assert _run(sample_photo, "--out", out, zoo=tmp_path / "no_zoo") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model zoo folder not found" in err
    (zoo_copy / "ff.onnx").unlink()
    assert _run(sample_photo, "--out", out, zoo=zoo_copy) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ff.onnx" in err
    assert _run(tmp_path / "missing.jpg", "--out", out, zoo=zoo_copy) == 2
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert _run(sample_photo, "--out", tmp_path / "file", zoo=zoo_copy) == 2


def test_resume_with_other_models_refused(tmp_path, sample_photo, tiny_zoo, zoo_factory, capsys):
    out = tmp_path / "out"
    assert _run(sample_photo, "--out", out, zoo=tiny_zoo) == 0
    assert _run(sample_photo, "--out", out, "--resume", zoo=zoo_factory(("cnn",))) == 2
    assert "other models" in capsys.readouterr().err


def test_resume_with_other_options_refused(tmp_path, sample_photo, tiny_zoo, capsys):
    out = tmp_path / "out"
    assert _run(sample_photo, "--out", out, "--tta", zoo=tiny_zoo) == 0
    before = _rows(out)
    assert _run(sample_photo, "--out", out, "--resume", zoo=tiny_zoo) == 2
    assert "labelled with flip TTA on, this run has it off" in capsys.readouterr().err
    assert _run(sample_photo, "--out", out, "--resume", "--tta", "--no-eye-check", zoo=tiny_zoo) == 2
    assert "the eye check on, this run has it off" in capsys.readouterr().err
    assert _rows(out) == before  # nothing touched
    assert _run(sample_photo, "--out", out, "--resume", "--tta", zoo=tiny_zoo) == 0


def test_cli_help_and_missing_zoo_subprocess(tmp_path, sample_photo):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    r = subprocess.run([sys.executable, "-m", "app.batch", "--help"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0
    for opt in ("--out", "--recursive", "--annotate", "--no-eye-check", "--resume", "--zoo", "example"):
        assert opt in r.stdout
    r = subprocess.run([sys.executable, "-m", "app.batch", str(sample_photo), "--out", str(tmp_path / "o"),
                        "--zoo", str(tmp_path / "none")], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_shared_photos_batch(shared_dir, tmp_path, tiny_zoo):
    """The acceptance run: every shared photo gets a face count within faces.json's [faces, max]."""
    folder = shared_dir / "data" / "photos"
    truth = {k: v for k, v in json.loads((folder / "faces.json").read_text()).items() if not k.startswith("_")}
    before = _tree_hashes(folder)
    out = tmp_path / "out"
    assert _run(folder, "--out", out, "--annotate", zoo=tiny_zoo) == 0
    counts = {k: 0 for k in truth}
    for r in _rows(out)[1:]:
        counts[Path(r[0]).name] += 1
    wrong = {k: n for k, n in counts.items() if not truth[k]["faces"] <= n <= truth[k]["max"]}
    assert not wrong, wrong
    assert len(list((out / "annotated").iterdir())) == len(truth)
    assert _tree_hashes(folder) == before
