"""Drive the real Tk window under a private Xvfb: open, label, toggle, save, fail, batch, cancel.

The window is driven through App's headless methods (open_image, wait_idle, face_rows, ...), i.e. the same
code paths the buttons call minus the file dialogs, and what is asserted is read back from the canvases.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.gui

tk = pytest.importorskip("tkinter")

WAIT = 90.0  # generous: CI shares 2 cores with whatever else runs


@pytest.fixture(scope="module")
def xdisplay():
    """A private X server for this module; skip cleanly where Xvfb is not installed."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb) - the GUI tests need a virtual display")
    num = next(n for n in range(99, 160) if not Path(f"/tmp/.X{n}-lock").exists())
    proc = subprocess.Popen(
        [xvfb, f":{num}", "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = Path(f"/tmp/.X11-unix/X{num}")
    deadline = time.monotonic() + 10
    while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not sock.exists():
        proc.kill()
        pytest.skip(f"Xvfb :{num} did not start")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{num}"
    yield f":{num}"
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def make_app(xdisplay):
    """Factory for App windows; every window is destroyed at the end of the test."""
    from app.gui import App

    apps = []

    def make(**kwargs):
        root = tk.Tk()
        app = App(root, **kwargs)
        apps.append(app)
        assert app.wait_idle(WAIT), "model loading did not finish"
        return app

    yield make
    for app in apps:
        app.quit()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_names(app) -> list[str]:
    return [m.display_name for m in app.labeler.models]


def _photo_inside_canvas(app) -> None:
    """The scaled photo fits the canvas and fills it along one side (scale-to-fit, both ways)."""
    c = app.canvas
    x0, y0, x1, y1 = c.bbox("photo")
    cw, ch = c.winfo_width(), c.winfo_height()
    assert x0 >= -1 and y0 >= -1 and x1 <= cw + 1 and y1 <= ch + 1
    assert (x1 - x0) >= cw - 3 or (y1 - y0) >= ch - 3


def _scene(size: tuple[int, int], face_side: int, sample: Path, bg=(90, 110, 130)) -> Image.Image:
    """A synthetic frame of ``size`` with the sample portrait scaled to ``face_side`` in the middle."""
    w, h = size
    img = Image.new("RGB", (w, h), bg)
    face = Image.open(sample).convert("RGB").resize((face_side, face_side), Image.Resampling.LANCZOS)
    img.paste(face, ((w - face_side) // 2, (h - face_side) // 2))
    return img


def test_open_sample_lists_each_model_and_ensemble(make_app, tiny_zoo, sample_photo):
    app = make_app(zoo_dir=tiny_zoo)
    assert app.status().startswith("Ready")
    app.open_image(sample_photo)
    assert "sample.jpg" in app.root.title()
    assert app.wait_idle(WAIT)
    rows = app.face_rows()
    names = _model_names(app)
    assert len(rows) == 1, app.panel_text()
    assert len(rows[0]) == len(names) + 1
    for name, line in zip(names, rows[0], strict=False):
        assert line.startswith(f"{name} ") and line.endswith("%")
    assert rows[0][-1].startswith("ensemble ")
    # The labels drawn beside the box on the photo: one per model, in manifest order.
    labels = app.canvas_labels()
    assert [t.split()[0] for t in labels] == names
    assert "1 face" in app.status() and "ms" in app.status()
    assert len(app.canvas.find_withtag("box")) == 2  # halo + coloured outline of face 1
    _photo_inside_canvas(app)
    assert str(app.save_btn.cget("state")) == "normal"


def test_eye_check_toggle_relabels(make_app, tiny_zoo, false_positive_photo):
    """The portrait plus a drawn cartoon face: the eye check removes the cartoon."""
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(false_positive_photo)
    assert app.wait_idle(WAIT)
    assert len(app.face_rows()) == 1 and "eye check on" in app.status()
    app.set_eye_check(False)  # what the checkbox and the Options menu do
    assert app.wait_idle(WAIT)
    assert "eye check off" in app.status()
    assert len(app.face_rows()) == 2 and len(app.canvas_labels()) == 2 * len(app.labeler.models)
    app.set_eye_check(True)
    assert app.wait_idle(WAIT)
    assert "eye check on" in app.status() and len(app.face_rows()) == 1
    result = app.result
    app.set_eye_check(True)  # unchanged: no pointless re-labelling
    assert app.wait_idle(WAIT) and app.result is result


def test_tta_option_relabels_with_the_mirror_view(make_app, tiny_zoo, sample_photo):
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    plain = app.result.faces[0].ensemble.probs
    assert "flip TTA" not in app.status()
    app.set_tta(True)  # what Options > Flip test-time augmentation does
    assert app.wait_idle(WAIT)
    assert "flip TTA" in app.status() and len(app.face_rows()) == 1
    expected = app.labeler.classify(app.result.faces[0].crop, tta=True)[1][0]
    np.testing.assert_allclose(app.result.faces[0].ensemble.probs, expected, atol=1e-6)
    assert not np.allclose(plain, expected, atol=1e-4)
    app.set_tta(False)
    assert app.wait_idle(WAIT)
    np.testing.assert_allclose(app.result.faces[0].ensemble.probs, plain, atol=1e-6)


def test_save_annotated_writes_full_resolution_copy(make_app, tiny_zoo, sample_photo, tmp_path):
    app = make_app(zoo_dir=tiny_zoo)
    before = _sha(sample_photo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    out = app.save_annotated(tmp_path / "labelled.png")
    assert out.is_file()
    saved = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(sample_photo).convert("RGB"))
    assert saved.shape == original.shape
    assert np.abs(saved.astype(int) - original.astype(int)).max() > 50  # boxes/labels were drawn
    assert _sha(sample_photo) == before
    assert "Saved" in app.status()


def test_corrupt_file_shows_message_not_traceback(make_app, tiny_zoo, sample_photo, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    app.open_image(bad)
    assert app.wait_idle(WAIT)
    assert app.status().startswith("Cannot open broken.jpg")
    assert "\n" not in app.status()
    messages = [app.canvas.itemcget(i, "text") for i in app.canvas.find_withtag("message")
                if app.canvas.type(i) == "text"]
    assert messages and "broken.jpg" in messages[0]
    assert app.face_rows() == [] and app.result is None
    assert str(app.save_btn.cget("state")) == "disabled"  # nothing stale can be saved
    assert "broken.jpg" in app.root.title()


def test_not_an_image_and_missing_file(make_app, tiny_zoo, tmp_path):
    app = make_app(zoo_dir=tiny_zoo)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    for path in (text, tmp_path / "nope.jpg"):
        app.open_image(path)
        assert app.wait_idle(WAIT)
        assert app.status().startswith(f"Cannot open {path.name}")


def test_missing_zoo_shows_message_then_retries(make_app, tiny_zoo, sample_photo, tmp_path):
    zoo = tmp_path / "zoo"
    app = make_app(zoo_dir=zoo)
    assert app.zoo_error and app.status().startswith("Models not loaded")
    messages = [app.canvas.itemcget(i, "text") for i in app.canvas.find_withtag("message")
                if app.canvas.type(i) == "text"]
    assert messages and "Models could not be loaded" in messages[0]
    # Opening a photo still shows it, with the message instead of labels.
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    assert app.status().startswith("Models not loaded") and app.face_rows() == []
    assert app.canvas.find_withtag("photo")
    # The user copies the models in; the next open retries and labels.
    shutil.copytree(tiny_zoo, zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    assert len(app.face_rows()) == 1 and app.zoo_error is None


def test_reload_models_after_copying_them_in(make_app, tiny_zoo, tmp_path):
    zoo = tmp_path / "zoo"
    app = make_app(zoo_dir=zoo)
    assert app.labeler is None and app.status().startswith("Models not loaded")
    shutil.copytree(tiny_zoo, zoo)
    app.reload_models()  # File > Reload models
    assert app.wait_idle(WAIT)
    assert app.labeler is not None and app.status().startswith("Ready: 3 models (CNN, FF, ResNet18)")
    assert not app.canvas.find_withtag("message")


def test_large_photo_and_small_frame(make_app, tiny_zoo, sample_photo, tmp_path):
    big = tmp_path / "big_4000x3000.jpg"
    _scene((4000, 3000), 2000, sample_photo).save(big, quality=90)  # face ~370 px wide
    small = tmp_path / "frame_240p.png"
    _scene((426, 240), 220, sample_photo).save(small)  # face ~45 px wide
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(big)
    assert app.wait_idle(WAIT)
    assert "4000×3000" in app.status()
    assert len(app.face_rows()) == 1, app.status()
    _photo_inside_canvas(app)
    # Box drawn inside the displayed photo.
    px0, py0, px1, py1 = app.canvas.bbox("photo")
    bx0, by0, bx1, by1 = app.canvas.bbox("box")
    assert px0 - 3 <= bx0 < bx1 <= px1 + 3 and py0 - 3 <= by0 < by1 <= py1 + 3
    app.open_image(small)
    assert app.wait_idle(WAIT)
    assert "426×240" in app.status() and len(app.face_rows()) == 1, app.status()
    _photo_inside_canvas(app)  # upscaled to fit


def test_resize_refits_photo(make_app, tiny_zoo, sample_photo):
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    for geometry in ("900x560", "1300x850"):
        app.root.geometry(geometry)
        app.root.update()
        time.sleep(0.3)  # let the debounce fire
        assert app.wait_idle(WAIT)
        _photo_inside_canvas(app)
        assert len(app.canvas_labels()) == len(app.labeler.models)


def test_superseded_request_is_dropped(make_app, tiny_zoo, sample_photo, tmp_path):
    big = tmp_path / "big.jpg"
    _scene((4000, 3000), 1400, sample_photo).save(big, quality=90)
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(big)
    app.root.update()
    assert app.busy and app.progress.winfo_manager() == "pack"  # the busy indicator is showing
    assert str(app.root.cget("cursor")) == "watch"
    app.open_image(sample_photo)  # the user changed their mind before the first finished
    assert app.wait_idle(WAIT)
    assert Path(app.path).name == "sample.jpg" and app.rgb.shape[:2] == (512, 512)
    assert "sample.jpg" in app.status() and "sample.jpg" in app.root.title()
    assert not app.busy and app.progress.winfo_manager() == "" and str(app.root.cget("cursor")) == ""


def test_eye_toggle_while_a_new_photo_loads_labels_the_new_photo(make_app, tiny_zoo, sample_photo, tmp_path):
    big = tmp_path / "big.jpg"
    _scene((4000, 3000), 2000, sample_photo).save(big, quality=90)
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    app.open_image(big)
    app.set_eye_check(False)  # before the big photo is labelled
    assert app.wait_idle(WAIT)
    assert Path(app.path).name == "big.jpg" and app.rgb.shape[:2] == (3000, 4000)
    assert "big.jpg (4000×3000)" in app.status() and "eye check off" in app.status()


def test_any_number_of_models_in_manifest_order(make_app, zoo_factory, sample_photo):
    zoo = zoo_factory(("resnet18", "cnn", "extra", "ff"))
    app = make_app(zoo_dir=zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    (rows,) = app.face_rows()
    assert [r.split()[0] for r in rows] == ["ResNet18", "CNN", "EXTRA", "FF", "ensemble"]
    assert [t.split()[0] for t in app.canvas_labels()] == ["ResNet18", "CNN", "EXTRA", "FF"]


def test_corrupt_model_at_start_shows_message(make_app, zoo_copy, sample_photo):
    (zoo_copy / "ff.onnx").write_bytes(b"not a model")
    app = make_app(zoo_dir=zoo_copy)
    assert app.status().startswith("Models not loaded") and "ff.onnx" in app.status()
    assert "\n" not in app.status()
    app.open_image(sample_photo)  # retries, fails the same way, still no exception
    assert app.wait_idle(WAIT)
    assert app.face_rows() == [] and "ff.onnx" in app.status()


def test_batch_folder_writes_copies_and_csv(make_app, tiny_zoo, sample_photo, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        shutil.copy(sample_photo, src / f"p{i}.jpg")
    (src / "broken.jpg").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored: not an image suffix")
    hashes = {p.name: _sha(p) for p in src.iterdir()}
    out = tmp_path / "out"
    app = make_app(zoo_dir=tiny_zoo)
    used = app.open_folder(src, out)
    assert used == out
    assert app.wait_idle(WAIT)
    assert "4 of 4 images: 3 faces" in app.status() and "1 unreadable" in app.status(), app.status()
    assert {p.name: _sha(p) for p in src.iterdir()} == hashes  # originals untouched
    # The batch CLI's layout: labels.csv (one row per face), summary.json, annotated/ copies.
    assert sorted(p.name for p in (out / "annotated").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    with open(out / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:6] == ["image", "face", "x", "y", "w", "h"] and rows[0][-2:] == ["ensemble_label",
                                                                                     "ensemble_confidence"]
    assert sorted(Path(r[0]).name for r in rows[1:]) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(e["image"]).name for e in summary["errors"]] == ["broken.jpg"]
    assert [Path(e["path"]).name for e in summary["skipped"]] == ["notes.txt"]
    assert summary["interrupted"] is False and summary["eye_check"] is True
    assert str(app.open_btn.cget("state")) == "normal"


def test_batch_into_source_folder_never_overwrites(make_app, tiny_zoo, sample_photo, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(sample_photo, src / "a.jpg")
    before = _sha(src / "a.jpg")
    app = make_app(zoo_dir=tiny_zoo)
    used = app.open_folder(src, src)
    assert app.wait_idle(WAIT)
    assert used != src and used.parent == src
    assert _sha(src / "a.jpg") == before and (used / "annotated" / "a.jpg").is_file()
    assert sorted(p.name for p in src.iterdir()) == ["a.jpg", "labelled"]


def test_batch_cancel_stops_early(make_app, tiny_zoo, sample_photo, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    n = 12
    for i in range(n):
        shutil.copy(sample_photo, src / f"img{i:02d}.jpg")
    out = tmp_path / "out"
    app = make_app(zoo_dir=tiny_zoo)
    app.open_folder(src, out)
    assert app.cancel_btn.winfo_manager() == "pack"  # Cancel is visible while the batch runs
    deadline = time.monotonic() + WAIT
    while "Batch: 2/" not in app.status() and time.monotonic() < deadline:
        app.root.update()
        time.sleep(0.005)
    app.cancel_batch()
    assert app.wait_idle(WAIT)
    assert "cancelled" in app.batch_summary, app.batch_summary
    copies = list((out / "annotated").iterdir())
    assert 1 <= len(copies) < n
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["done"] == len(copies)
    assert len((out / "labels.csv").read_text().splitlines()) == 1 + len(copies)
    # The batch CLI picks up where the cancelled GUI run stopped.
    r = subprocess.run(
        [sys.executable, "-m", "app.batch", str(src), "--out", str(out), "--annotate", "--resume", "--zoo",
         str(tiny_zoo), "--threads", "1"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == len(copies) and summary["done"] == n and summary["faces"] == n
    assert len((out / "labels.csv").read_text().splitlines()) == 1 + n
    assert app.cancel_btn.winfo_manager() == ""  # hidden again
    # The window is usable afterwards.
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT) and len(app.face_rows()) == 1


def test_shortcuts_bound(make_app, tiny_zoo):
    app = make_app(zoo_dir=tiny_zoo)
    for seq in ("<Control-o>", "<Control-O>", "<Control-s>", "<Control-q>"):
        assert app.root.bind_all(seq), seq
