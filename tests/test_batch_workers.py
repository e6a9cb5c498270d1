"""--workers: the same labels.csv whatever N; a real kill -9 then --resume labels every image exactly once; a
worker that dies on one file costs that file only; and the CSV's columns are the Labeler's own answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from app.batch import _cli as batch
from app.batch import _journal as journal
from app.batch import _workers as workers
from app.batch._cli import main
from app.batch._scan import Item

REPO = Path(__file__).resolve().parents[1]


def _run(*args, zoo, n: int) -> int:
    return main([*map(str, args), "--zoo", str(zoo), "--threads", "1", "--workers", str(n)])


def _folder(root: Path, sample_photo: Path, bad_images: dict[str, Path], n_good: int = 6) -> Path:
    """Faces, a no-face image and broken files, small so the test stays fast."""
    src = root / "in"
    src.mkdir()
    small = Image.open(sample_photo).convert("RGB").resize((256, 256))
    for i in range(n_good):
        small.save(src / f"{i:02d}.jpg", quality=90)
    Image.new("RGB", (200, 150), (90, 120, 150)).save(src / "03_wall.png")
    shutil.copy(bad_images["truncated_jpg"], src / "04_broken.jpg")
    shutil.copy(bad_images["text_as_jpg"], src / "05_text.jpg")
    return src


def test_labels_identical_whatever_the_number_of_workers(tmp_path, sample_photo, bad_images, tiny_zoo):
    src = _folder(tmp_path, sample_photo, bad_images)
    outs = {n: tmp_path / f"out{n}" for n in (1, 2, 3)}
    for n, out in outs.items():
        assert _run(src, "--out", out, "--annotate", zoo=tiny_zoo, n=n) == 0
    csvs = {n: (out / "labels.csv").read_bytes() for n, out in outs.items()}
    assert csvs[1] == csvs[2] == csvs[3] and csvs[1].count(b"\n") == 1 + 6
    summaries = {n: json.loads((out / "summary.json").read_text()) for n, out in outs.items()}
    for n, s in summaries.items():
        assert s["workers"] == n and s["detector"] == "haar"
        assert (s["images"], s["faces"], len(s["errors"]), len(s["no_face"])) == (9, 6, 2, 1)
        assert sorted(p.name for p in (outs[n] / "annotated").iterdir()) == sorted(
            p.name for p in (outs[1] / "annotated").iterdir())


def _start_batch(tmp_path: Path, sample_photo: Path, zoo: Path, n_images: int, wait_for: int, **popen):
    """A real ``python -m app.batch --workers 2`` in its own process group over ``n_images`` portraits, returned
    once ``wait_for`` images are journalled (mid-batch). Returns (process, input folder, output folder)."""
    src = tmp_path / "in"
    src.mkdir()
    small = Image.open(sample_photo).convert("RGB").resize((256, 256))
    for i in range(n_images):
        small.save(src / f"{i:02d}.jpg", quality=90)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "app.batch", str(src), "--out", str(out), "--zoo", str(zoo), "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, **popen)
    progress = out / journal.JOURNAL
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.is_file() and progress.read_bytes().count(b"\n") >= wait_for:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    return proc, src, out


def test_kill_9_mid_batch_then_resume_labels_every_image_once(tmp_path, sample_photo, tiny_zoo):
    n_images = 24
    proc, src, out = _start_batch(tmp_path, sample_photo, tiny_zoo, n_images, wait_for=3,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-write or not
    proc.wait(30)
    progress = out / journal.JOURNAL
    assert proc.returncode == -signal.SIGKILL
    done_before = journal.read_journal(progress)
    assert 3 <= len(done_before) < n_images

    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo, n=2) == 0
    rows = journal.read_rows(out / "labels.csv")
    names = [Path(r[0]).name for r in rows[1:]]
    assert sorted(names) == [f"{i:02d}.jpg" for i in range(n_images)]  # each once: none lost, none twice
    assert all(len(r) == len(rows[0]) for r in rows)
    s = json.loads((out / "summary.json").read_text())
    assert s["done"] == s["images"] == n_images and s["faces"] == n_images and s["resumed"] == len(done_before)
    assert s["interrupted"] is False


def crash_on_marked_files(it: Item, out_dir: Path, opts: workers.Options):
    """A worker task that dies like a crashing native decoder on files named *crash*."""
    if "crash" in it.path.name:
        os._exit(139)
    return workers._work(it, out_dir, opts)


def test_a_file_that_kills_its_worker_costs_only_that_file(tmp_path, sample_photo, tiny_zoo):
    from app.models import Labeler

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.jpg", "b_crash.jpg", "c.jpg", "d.jpg"):
        Image.open(sample_photo).convert("RGB").resize((200, 200)).save(src / name)
    items = [Item(p, Path(p.name)) for p in sorted(src.iterdir())]
    labeler = Labeler(tiny_zoo, threads=1)
    got = list(workers.ordered_results(items, labeler, workers=2, out_dir=tmp_path, opts=workers.Options(),
                                       share=False, work=crash_on_marked_files))
    assert [it.path.name for it, *_ in got] == ["a.jpg", "b_crash.jpg", "c.jpg", "d.jpg"]
    recs = {it.path.name: rec for it, rec, _rows, _note in got}
    assert recs["b_crash.jpg"]["error"] == workers.CRASHED
    assert all(recs[n]["faces"] == 1 and not recs[n]["error"] for n in ("a.jpg", "c.jpg", "d.jpg"))


def test_resume_retries_the_images_that_failed(tmp_path, sample_photo, bad_images, tiny_zoo):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(sample_photo, src / "a.jpg")
    shutil.copy(bad_images["truncated_jpg"], src / "b.jpg")  # an interrupted copy...
    out = tmp_path / "out"
    assert _run(src, "--out", out, zoo=tiny_zoo, n=1) == 0
    assert [Path(e["image"]).name for e in json.loads((out / "summary.json").read_text())["errors"]] == ["b.jpg"]
    shutil.copy(sample_photo, src / "b.jpg")  # ...finished later
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo, n=1) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["errors"] == [] and s["faces"] == 2
    assert [Path(r[0]).name for r in journal.read_rows(out / "labels.csv")[1:]] == ["a.jpg", "b.jpg"]


def test_every_model_column_is_that_models_own_answer(tmp_path, zoo_factory, two_faces_photo):
    """Models with different answers, so a label or confidence written under another model's column shows."""
    from app.core import load_image
    from app.models import Labeler

    zoo = zoo_factory(("cnn", "ff", "resnet18"))
    out = tmp_path / "out"
    assert _run(two_faces_photo, "--out", out, zoo=zoo, n=1) == 0
    header, *rows = journal.read_rows(out / "labels.csv")
    labeler = Labeler(zoo, threads=1)
    result = labeler.label_image(load_image(two_faces_photo))
    assert len(rows) == len(result.faces) >= 2
    differ = False
    for row, face in zip(rows, result.faces, strict=True):
        assert [int(v) for v in row[2:6]] == [face.box.x, face.box.y, face.box.w, face.box.h]
        answers = {m.name: face.predictions[m.name] for m in labeler.models} | {"ensemble": face.ensemble}
        for name, p in answers.items():
            assert row[header.index(f"{name}_label")] == p.label
            assert float(row[header.index(f"{name}_confidence")]) == pytest.approx(p.confidence, abs=5e-5)
        differ |= len({round(p.confidence, 3) for p in answers.values()}) > 1
    assert differ, "the models agree exactly: a swapped column would go unnoticed"


@pytest.fixture
def two_faces_photo(tmp_path, sample_photo) -> Path:
    im = Image.open(sample_photo).convert("RGB")
    canvas = Image.new("RGB", (1024, 512), (128, 128, 128))
    canvas.paste(im, (0, 0))
    canvas.paste(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    p = tmp_path / "two.png"
    canvas.save(p)
    return p


def test_detector_is_recorded_and_resume_refuses_another(tmp_path, sample_photo, tiny_zoo, capsys):
    out = tmp_path / "out"
    assert _run(sample_photo, "--out", out, "--detector", "haar", zoo=tiny_zoo, n=1) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["detector"] == "haar"
    summary["detector"] = "other"  # as if an earlier run had used another detector
    (out / "summary.json").write_text(json.dumps(summary))
    assert _run(sample_photo, "--out", out, "--resume", zoo=tiny_zoo, n=1) == 2
    assert "labelled with the detector 'other', this run has it 'haar'" in capsys.readouterr().err


def test_workers_option_validated_and_default_capped():
    assert 1 <= workers.default_workers() <= workers.MAX_WORKERS
    with pytest.raises(SystemExit):
        batch.build_parser().parse_args(["x", "--out", "o", "--detector", "nonsense"])


def test_workers_zero_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["x.jpg", "--out", "o", "--workers", "0"])
    assert e.value.code == 2 and "--workers must be at least 1" in capsys.readouterr().err


def test_ctrl_c_with_workers_saves_then_resume(tmp_path, sample_photo, tiny_zoo):
    """A real SIGINT to the whole process group, as a terminal sends it: exit 130, what was done is saved."""
    n_images = 24
    proc, src, out = _start_batch(tmp_path, sample_photo, tiny_zoo, n_images, wait_for=2,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-800:]
    assert "Traceback" not in stderr and "--resume" in stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] is True and 2 <= s["done"] < n_images and s["workers"] == 2
    assert len(journal.read_rows(out / "labels.csv")) - 1 == s["done"]
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo, n=2) == 0
    names = [Path(r[0]).name for r in journal.read_rows(out / "labels.csv")[1:]]
    assert names == [f"{i:02d}.jpg" for i in range(n_images)]
