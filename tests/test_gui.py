"""Drive the real Tk window under a private Xvfb: open, label, toggle, save, fail, batch, cancel, and a
24-face photo with clicks, keys, zoom and pan (real Tk events).

The window is driven through App's headless methods (open_image, wait_idle, face_rows, ...), i.e. the same
code paths the buttons call minus the file dialogs, and what is asserted is read back from the canvases.
"""

from __future__ import annotations

import contextlib
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

from app.core import Box
from app.detect import DETECTORS, reading_order
from app.outputs._placement import overlaps

pytestmark = pytest.mark.gui

tk = pytest.importorskip("tkinter")

WAIT = 90.0  # generous: CI shares 2 cores with whatever else runs


def _start_xvfb(*extra: str) -> tuple[subprocess.Popen, str]:
    """Start a private Xvfb (``extra``: more server options); skip cleanly where it is not installed."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb) - the GUI tests need a virtual display")
    num = next(n for n in range(99, 160) if not Path(f"/tmp/.X{n}-lock").exists())
    proc = subprocess.Popen(
        [xvfb, f":{num}", "-nolisten", "tcp", *(extra or ("-screen", "0", "1400x900x24"))],
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
    return proc, f":{num}"


@pytest.fixture(scope="session")
def xdisplay():
    """A private X server, kept until the session ends: Tk keeps its display connections open after the last
    window is destroyed, so a server stopped while another module (tests/test_gui_video.py imports this
    fixture) still runs Tk would make Xlib end the whole test process."""
    proc, display = _start_xvfb()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
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


TECHNICAL_WORDS = ("python", "training.export", "--zoo", "manifest", "onnx", "ZooError", "Traceback")


def _end_user_words(text: str) -> None:
    for word in TECHNICAL_WORDS:
        assert word.lower() not in text.lower(), f"{word!r} in a message for end users: {text!r}"


def test_missing_zoo_shows_message_then_retries(make_app, tiny_zoo, sample_photo, tmp_path):
    zoo = tmp_path / "zoo"
    app = make_app(zoo_dir=zoo)
    assert app.zoo_error and app.status().startswith("Models not loaded")
    message = app.message_text()
    assert "cannot find its emotion models" in message and "File > Reload models" in message
    assert str(zoo) in message  # where to put them
    _end_user_words(message.replace(str(zoo), ""))
    _end_user_words(app.status())
    # The technical line is one click away.
    assert app.details_btn.winfo_manager() == "pack" and "not found" in app.detail
    app.details_btn.invoke()
    details = [w for w in app.root.winfo_children() if isinstance(w, tk.Toplevel)]
    assert details and "not found" in details[-1].winfo_children()[0].get("1.0", "end")
    details[-1].destroy()
    # Opening a photo still shows it, with the message instead of labels.
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    assert app.status().startswith("Models not loaded") and app.face_rows() == []
    assert app.canvas.find_withtag("photo")
    _end_user_words(app.message_text().replace(str(zoo), ""))
    # The user copies the models in; the next open retries and labels.
    shutil.copytree(tiny_zoo, zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    assert len(app.face_rows()) == 1 and app.zoo_error is None
    assert app.details_btn.winfo_manager() == ""


def test_empty_zoo_folder_says_what_to_do(make_app, tmp_path):
    """An empty model folder used to say "export models with python -m training.export"."""
    zoo = tmp_path / "models"
    zoo.mkdir()
    app = make_app(zoo_dir=zoo)
    message = app.message_text()
    assert "cannot find its emotion models" in message
    _end_user_words(message.replace(str(zoo), ""))
    assert "training.export" in app.detail or "manifest" in app.detail  # the developer's hint, behind Details


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
    # Zoomed in far, the view comes from the photo's own 4000 px, not the 2560 px display copy.
    assert app.photo._full_image is None
    app.photo.zoom_by(8)
    assert app.photo._full_image is not None and app.photo._full_image.size == (4000, 3000)
    assert app.canvas.find_withtag("photo") and len(app.canvas.find_withtag("box")) == 2
    app.photo.fit()
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
    assert app.status().startswith("Models not loaded") and "damaged" in app.status()
    assert "ff.onnx" in app.detail and "\n" not in app.status()
    _end_user_words(app.message_text().replace(str(zoo_copy), ""))
    app.open_image(sample_photo)  # retries, fails the same way, still no exception
    assert app.wait_idle(WAIT)
    assert app.face_rows() == [] and "ff.onnx" in app.detail


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
    app.set_detector(DETECTORS[-1])  # the folder is labelled with the detector the menu shows
    used = app.open_folder(src, src)
    assert app.wait_idle(WAIT)
    assert used != src and used.parent == src
    assert json.loads((used / "summary.json").read_text())["detector"] == DETECTORS[-1]
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


# --- a crowded photo: 24 faces ---
# A 6 x 4 collage of the sample portrait (heads at uneven heights); the detector is replaced by one that
# returns the tiles in reading order, so the tests know every face's box without ../shared (the models are the
# tiny test zoo). With ../shared, the real 24-face collage is walked as well (slow).

COLS, ROWS, SIDE, GAP = 6, 4, 150, 40


def _tile_boxes() -> list[Box]:
    boxes = []
    for r in range(ROWS):
        for c in range(COLS):
            jitter = (c % 3) * 12  # heads are never level in a real group photo
            boxes.append(Box(GAP + c * (SIDE + GAP), GAP + r * (SIDE + GAP) + jitter, SIDE, SIDE, eyes=2))
    return boxes


@pytest.fixture
def collage(tmp_path, sample_photo, monkeypatch):
    """(path, boxes in reading order, detectors asked for): the collage and a detector that knows its faces."""
    boxes = _tile_boxes()
    face = Image.open(sample_photo).convert("RGB").resize((SIDE, SIDE))
    w, h = COLS * (SIDE + GAP) + GAP, ROWS * (SIDE + GAP) + GAP + 30
    img = Image.new("RGB", (w, h), (70, 80, 90))
    for b in boxes:
        img.paste(face, (b.x, b.y))
    path = tmp_path / "collage.jpg"
    img.save(path, quality=90)
    ordered = [boxes[i] for i in reading_order([(b.x, b.y, b.w, b.h) for b in boxes])]
    asked: list[str] = []

    def fake_detect(rgb, eye_check=True, detector="haar", **_kw):
        asked.append(detector)
        return list(ordered)

    monkeypatch.setattr("app.detect._faces.detect_faces", fake_detect)
    return path, ordered, asked


def _open(make_app, tiny_zoo, path, geometry="720x480"):
    app = make_app(zoo_dir=tiny_zoo)
    app.root.geometry(geometry)
    app.open_image(path)
    assert app.wait_idle(WAIT)
    _settle(app)
    return app


def _settle(app, seconds=0.3):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.root.update()
        time.sleep(0.02)
    assert app.wait_idle(WAIT)


def _click(widget, x, y):
    for seq in ("<Motion>", "<ButtonPress-1>", "<ButtonRelease-1>"):
        widget.event_generate(seq, x=int(x), y=int(y), warp=False)
    widget.update()


def _key(widget, keysym):
    widget.event_generate("<KeyPress>", keysym=keysym)
    widget.update()


def _labels_clear_of_other_boxes(app) -> int:
    """Every tag and fixed full label on the canvas is clear of every other face's box; returns how many.

    Except a number-only tag inside its own box that is larger than the box: a face a few pixels wide on the
    canvas with neighbours all round (MTCNN finds a 9 px one in the collage at small window sizes) has no
    room, and the layout then takes the inside corner covering the least of the neighbours."""
    c = app.canvas
    boxes = {f.index: app.photo.to_canvas(f.box) for f in app.result.faces}
    checked = 0
    for item in c.find_withtag("tag") + c.find_withtag("fixed"):
        if c.type(item) != "rectangle":
            continue
        owner = next(int(t[4:]) for t in c.gettags(item) if t.startswith("face"))
        r = c.coords(item)
        for index, b in boxes.items():
            own = boxes[owner]
            cramped = overlaps(tuple(r), own) and (r[2] - r[0] > own[2] - own[0] or r[3] - r[1] > own[3] - own[1])
            if index != owner and not cramped:
                shrunk = (b[0] + 1, b[1] + 1, b[2] - 1, b[3] - 1)  # outlines may touch
                assert not overlaps(tuple(r), shrunk), f"label of face {owner} covers face {index}"
        checked += 1
    return checked


@pytest.mark.parametrize("geometry", ["720x480", "1600x1000"])
def test_collage_table_in_reading_order_and_labels_clear(make_app, tiny_zoo, collage, geometry):
    path, ordered, _ = collage
    app = _open(make_app, tiny_zoo, path, geometry)
    faces = app.result.faces
    assert len(faces) == 24 and "24 faces" in app.status()
    assert app.panel.order() == list(range(1, 25))  # the table lists every face in face-number order
    centres = [(f.box.x, f.box.y, f.box.w, f.box.h) for f in faces]
    assert reading_order(centres) == list(range(24))  # numbers follow rows, then left to right
    assert len(app.face_rows()) == 24
    assert _labels_clear_of_other_boxes(app) >= 24  # at least every tag
    assert len(app.canvas.find_withtag("tag")) == 24


def test_click_box_selects_card_and_row(make_app, tiny_zoo, collage):
    path, _, _ = collage
    app = _open(make_app, tiny_zoo, path)
    last = app.result.faces[-1]
    x0, y0, x1, y1 = app.photo.to_canvas(last.box)
    _click(app.canvas, (x0 + x1) / 2, (y0 + y1) / 2)
    assert app.selected == last.index == 24
    assert app.panel.tree.selection() == ("24",)
    app.root.update_idletasks()
    assert app.panel.row_visible(24), "the table did not scroll to the selected row"
    assert "Face 24 of 24" in app.panel_text()
    assert app.status().startswith("Face 24 of 24")
    halo = [i for i in app.canvas.find_withtag("face24") if "halo" in app.canvas.gettags(i)]
    assert halo and app.canvas.itemcget(halo[0], "outline") == "#ffffff"  # highlighted on the photo
    # A row picked in the table selects the face on the photo.
    app.panel.tree.selection_set(("3",))
    app.panel.tree.event_generate("<<TreeviewSelect>>")
    app.root.update()
    assert app.selected == 3 and "Face 3 of 24" in app.panel_text()
    # Hover shows a face's full line even where it had no room.
    f5 = app.result.faces[4]
    x0, y0, x1, y1 = app.photo.to_canvas(f5.box)
    app.canvas.event_generate("<Motion>", x=int((x0 + x1) / 2), y=int((y0 + y1) / 2))
    app.root.update()
    assert app.photo.hover == 5 and any(t.startswith("CNN ") for t in _texts(app, "face5"))


def _texts(app, tag):
    c = app.canvas
    return [c.itemcget(i, "text") for i in c.find_withtag(tag) if c.type(i) == "text"]


def test_keyboard_only_walk_through_all_faces(make_app, tiny_zoo, collage):
    path, _, _ = collage
    app = _open(make_app, tiny_zoo, path)
    app.root.focus_force()
    app.open_btn.focus_set()
    app.root.update()
    for _ in range(12):  # Tab from the toolbar reaches the photo
        if app.root.focus_get() is app.canvas:
            break
        _key(app.root.focus_get(), "Tab")
    assert app.root.focus_get() is app.canvas
    n = len(app.result.faces)
    for k in range(1, n + 1):
        _key(app.canvas, "n")
        assert app.selected == k and app.status().startswith(f"Face {k} of {n}:"), app.status()
        assert app.panel.row_visible(k)
        box = app.photo.to_canvas(app.result.faces[k - 1].box)
        cw, ch = app.photo.viewport()
        assert box[0] >= -1 and box[1] >= -1 and box[2] <= cw + 1 and box[3] <= ch + 1  # in view
    _key(app.canvas, "n")
    assert app.selected == n  # stays on the last
    for keysym, expected in (("Home", 1), ("Right", 2), ("Down", 3), ("Left", 2), ("End", n), ("p", n - 1)):
        _key(app.canvas, keysym)
        assert app.selected == expected, keysym
    _key(app.canvas, "Prior")  # a page of table rows up, then down again
    assert app.selected < n - 2
    _key(app.canvas, "Next")
    assert app.selected == n - 1
    # Tab moves into the table; its keys walk the same faces.
    _key(app.canvas, "Tab")
    assert app.root.focus_get() is app.panel.tree
    _key(app.panel.tree, "Home")
    assert app.selected == 1 and app.panel.tree.selection() == ("1",)
    _key(app.panel.tree, "Down")
    assert app.selected == 2 and app.status().startswith("Face 2 of")
    _key(app.panel.tree, "Next")
    assert app.selected > 3
    _key(app.panel.tree, "ISO_Left_Tab")  # Shift+Tab on X11: back to the photo
    assert app.root.focus_get() is app.canvas


def test_zoom_with_ctrl_wheel_and_pan_by_drag(make_app, tiny_zoo, collage):
    path, _, _ = collage
    app = _open(make_app, tiny_zoo, path, "1000x700")
    c = app.canvas
    assert app.photo.fitted and abs(app.photo.zoom - 1) < 1e-6
    for _ in range(4):
        c.event_generate("<Button-4>", x=100, y=100, state=0x4)  # Ctrl + wheel up on X11
    app.root.update()
    assert app.photo.zoom > 2
    ox, oy = app.photo.ox, app.photo.oy
    c.event_generate("<ButtonPress-1>", x=200, y=200)
    c.event_generate("<Motion>", x=240, y=230, state=0x100)  # dragging with button 1 held
    c.event_generate("<ButtonRelease-1>", x=240, y=230)
    app.root.update()
    assert (app.photo.ox, app.photo.oy) != (ox, oy) and app.selected is None  # a drag pans, never selects
    assert _labels_clear_of_other_boxes(app) >= 1
    _key(c, "0")
    assert app.photo.fitted


def test_detector_menu_lists_detectors_and_relabels(make_app, tiny_zoo, collage, monkeypatch):
    path, _, asked = collage
    monkeypatch.setattr("app.gui.window.DETECTORS", ("haar", "other"))
    monkeypatch.setattr("app.gui.menus.DETECTORS", ("haar", "other"))  # the menu is built there
    app = _open(make_app, tiny_zoo, path)
    menu = app.detector_menu
    labels = [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)]
    assert labels == ["haar", "other"] and all(menu.type(i) == "radiobutton" for i in range(2))
    assert "detector haar" in app.status() and asked[-1] == "haar"
    menu.invoke(1)  # Detector > other
    assert app.wait_idle(WAIT)
    assert asked[-1] == "other" and "detector other" in app.status()


def test_saved_image_draws_tags_in_screen_colours(make_app, tiny_zoo, collage, tmp_path):
    path, _, _ = collage
    app = _open(make_app, tiny_zoo, path)
    out = app.save_annotated(tmp_path / "out.png")
    saved = np.asarray(Image.open(out).convert("RGB")).astype(int)
    from app.outputs import color

    for f in app.result.faces:  # the box outline is drawn in the ensemble emotion's colour
        b = f.box
        assert tuple(saved[b.y + b.h // 2, b.x + 1]) == color(f.ensemble.label)


# --- folder labelling: where results go ---


def test_folder_default_output_is_a_new_folder_beside_the_input(make_app, tiny_zoo, sample_photo, tmp_path):
    import shutil

    data = tmp_path / "data"
    src = data / "Holiday"
    src.mkdir(parents=True)
    shutil.copy(sample_photo, src / "a.jpg")
    (data / "other.txt").write_text("the user's data folder")
    app = make_app(zoo_dir=tiny_zoo)
    used = app.open_folder(src)
    assert app.wait_idle(WAIT)
    assert used == (data / "Holiday labels").resolve()
    assert sorted(p.name for p in data.iterdir()) == ["Holiday", "Holiday labels", "other.txt"]
    assert (used / "labels.csv").is_file() and (used / "annotated" / "a.jpg").is_file()
    # Again: the first results folder now holds files, so the next proposal is a fresh one.
    from app.gui.messages import default_output_folder

    assert default_output_folder(src) == (data / "Holiday labels 2").resolve()
    # A folder that holds files is refused unless the user confirmed it.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("precious")
    assert app.open_folder(src, busy) is None and "already holds files" in app.status()
    assert sorted(p.name for p in busy.iterdir()) == ["thesis.docx"]
    assert app.open_folder(src, busy, confirmed=True) == busy
    assert app.wait_idle(WAIT) and (busy / "labels.csv").is_file() and (busy / "thesis.docx").is_file()


def test_open_folder_dialog_proposes_new_folder(make_app, tiny_zoo, sample_photo, tmp_path, monkeypatch):
    import shutil

    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(sample_photo, src / "a.jpg")
    app = make_app(zoo_dir=tiny_zoo)
    monkeypatch.setattr("app.gui.dialogs.filedialog.askdirectory", lambda **_kw: str(src))
    seen: list[str] = []

    def press_enter():
        dialogs = [w for w in app.root.winfo_children() if isinstance(w, tk.Toplevel)]
        assert dialogs
        seen.append(dialogs[-1].title())
        seen.append(_all_text(dialogs[-1]))
        dialogs[-1].event_generate("<Return>")

    app.root.after(300, press_enter)
    app.ask_open_folder()
    assert app.wait_idle(WAIT)
    assert seen[0] == "Label a folder of photos" and "photos labels" in seen[1]
    assert (tmp_path / "photos labels" / "labels.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "photos labels"]


def _all_text(widget) -> str:
    out = []
    for w in widget.winfo_children():
        with contextlib.suppress(tk.TclError):
            out.append(str(w.cget("text")))
        out.append(_all_text(w))
    return "\n".join(out)


# --- the real 24-face collage, when ../shared is there ---


@pytest.mark.slow
@pytest.mark.parametrize("detector", DETECTORS)
def test_real_collage_keyboard_walk(make_app, tiny_zoo, shared_dir, detector):
    photo = Path(shared_dir) / "data" / "group_photos" / "bald_guys.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    app = make_app(zoo_dir=tiny_zoo, detector=detector)
    app.root.geometry("720x480")
    app.open_image(photo)
    assert app.wait_idle(WAIT)
    _settle(app)
    n = len(app.result.faces)
    assert n >= 20, app.status()
    assert _labels_clear_of_other_boxes(app) >= n
    app.canvas.focus_force()
    for k in range(1, n + 1):
        _key(app.canvas, "n")
        assert app.selected == app.panel.order()[k - 1] and app.status().startswith(f"Face {app.selected} of {n}")


def test_table_sorts_by_column_and_keys_follow_it(make_app, tiny_zoo, collage):
    path, _, _ = collage
    app = _open(make_app, tiny_zoo, path)
    tree = app.panel.tree
    tree.tk.call(tree.heading("ensemble", "command"))  # what a click on the "Ensemble" heading runs
    by_ensemble = {f.index: (f.ensemble.label, -f.ensemble.confidence, f.index) for f in app.result.faces}
    assert app.panel.order() == sorted(by_ensemble, key=by_ensemble.get)
    tree.tk.call(tree.heading("ensemble", "command"))  # again: reversed
    assert app.panel.order() == sorted(by_ensemble, key=by_ensemble.get, reverse=True)
    app.canvas.focus_force()  # key events go to the focus window
    app.root.update()
    _key(app.canvas, "Home")
    assert app.selected == app.panel.order()[0]
    _key(app.canvas, "n")
    assert app.selected == app.panel.order()[1]
    tree.tk.call(tree.heading("face", "command"))
    assert app.panel.order() == list(range(1, 25))


_DPI_PROBE = """
import sys, tkinter as tk
from app.gui import App
root = tk.Tk()
app = App(root, zoo_dir=sys.argv[1])
assert app.wait_idle(60)
root.update()
print(app.label_font.metrics("linespace"), root.winfo_width())
app.quit()
"""


def test_fonts_and_window_scale_on_a_high_dpi_screen(tiny_zoo):
    """The same window on a 96 DPI and a 192 DPI 4K screen: text twice as tall, window twice as wide."""
    seen = {}
    for dpi in (96, 192):
        proc, display = _start_xvfb("-screen", "0", "3840x2160x24", "-dpi", str(dpi))
        try:
            r = subprocess.run([sys.executable, "-c", _DPI_PROBE, str(tiny_zoo)], capture_output=True, text=True,
                               timeout=120, env={**os.environ, "DISPLAY": display},
                               cwd=Path(__file__).resolve().parents[1])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        assert r.returncode == 0, r.stderr
        seen[dpi] = [int(v) for v in r.stdout.split()]
    (line96, width96), (line192, width192) = seen[96], seen[192]
    assert 1.7 < line192 / line96 < 2.3, seen
    assert width192 >= 1.8 * width96, seen


def test_detector_menu_runs_every_shipped_detector(make_app, tiny_zoo, sample_photo):
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    menu = app.detector_menu
    assert [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)] == list(DETECTORS)
    for i, name in enumerate(DETECTORS):
        menu.invoke(i)
        assert app.wait_idle(WAIT)
        assert f"detector {name}" in app.status() and len(app.face_rows()) == 1, app.status()


# ---------------------------------------------------------------- saliency maps (issue 16)


def _map_captions(app) -> list[str]:
    c = app.panel.card
    return [c.itemcget(i, "text") for i in c.find_withtag("map_caption")]


def test_maps_toggle_and_class_picker(make_app, tiny_zoo, sample_photo):
    app = make_app(zoo_dir=tiny_zoo)
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT)
    app.select_face(1)
    app.root.update()
    assert not app.panel.card.find_withtag("map") and not app.panel.maps_bar.winfo_ismapped()
    app.set_maps(True)
    app.root.update()
    assert len(app.panel.card.find_withtag("map")) == len(app.labeler.models)
    assert app.panel.maps_bar.winfo_ismapped()
    face = app.result.faces[0]
    want = [f"why {face.predictions[m.name].label}: occlusion" for m in app.labeler.models]  # tiny zoo: no record
    assert _map_captions(app) == want
    app.set_map_class("angry")
    app.root.update()
    assert _map_captions(app) == ["why angry: occlusion"] * len(app.labeler.models)
    app.select_face(None)
    app.select_face(1)  # cached: the same maps again
    app.root.update()
    assert len(app.panel.card.find_withtag("map")) == len(app.labeler.models)
    app.set_maps(False)
    app.root.update()
    assert not app.panel.card.find_withtag("map") and not app.panel.maps_bar.winfo_ismapped()


def test_models_menu_switches_zoo_and_about_names_it(make_app, tiny_zoo, zoo_factory, sample_photo):
    """Models menu (issue 25: the zoo is chosen in the window) and Help > About (issue 27: version, label source)."""
    from app import __version__

    two = zoo_factory(("cnn", "ff"), folder="two")
    app = make_app(zoo_dir=tiny_zoo)
    about = app.about()
    assert about.startswith(f"EmotionLens {__version__}") and "Trained on: FER2013 labels" in about
    assert str(tiny_zoo) in about
    app.open_image(sample_photo)
    assert app.wait_idle(WAIT) and len(app.face_rows()[0]) == 4  # three models + ensemble
    app.set_zoo(two)  # Models > another zoo
    assert app.wait_idle(WAIT)
    assert app.zoo_var.get() == str(two) and str(two) in app.about()
    assert len(app.face_rows()[0]) == 3, app.panel_text()  # relabelled with the two models
