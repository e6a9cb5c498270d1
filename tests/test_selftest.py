"""``python -m app --self-test``: the no-display smoke test a user (or a frozen build) runs first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FACE_LINE = re.compile(
    r"^face 1 \(x=\d+,y=\d+,w=\d+,h=\d+\): "
    r"CNN \w+ \d+% · FF \w+ \d+% · ResNet18 \w+ \d+% · ensemble \w+ \d+%$"
)
# The sample clip's line, last (app/assets/sample_clip.mp4: 45 frames at 320x240, one face panned and zoomed).
CLIP_LINE = re.compile(
    r"^clip sample_clip\.mp4 \(320x240\): 45 frames, 1 track: track 1 \w+ \d+% smoothed \(\d+ frames\) in \d+ ms$"
)


def _run(*args: str | os.PathLike, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    env.pop("DISPLAY", None)  # the self-test must not need a display
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "app"]
    return subprocess.run(
        [*head, *map(str, args)], cwd=REPO, env=env, capture_output=True, encoding="utf-8", timeout=300
    )


def test_selftest_labels_sample(tiny_zoo):
    r = _run("--self-test", "--zoo", tiny_zoo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert FACE_LINE.match(lines[0]), lines
    assert re.match(r"^1 face in sample\.jpg \(512x512\) with 3 models trained on FER2013 labels: load \d+ ms, "
                    r"detection \d+ ms, labelling \d+ ms, total \d+ ms$", lines[-2]), lines
    assert CLIP_LINE.match(lines[-1]), lines
    assert "Traceback" not in r.stderr


def test_selftest_labels_the_sample_clip_with_one_track(tiny_zoo):
    """After the photo, the clip goes through Labeler.label_video: decoded, detected, tracked, smoothed."""
    r = _run("--self-test", "--zoo", tiny_zoo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("clip "), lines
    m = re.match(r"^clip .*: (\d+) frames, 1 track: track 1 \w+ \d+% smoothed \((\d+) frames\)", lines[-1])
    assert m and m.group(1) == "45" and int(m.group(2)) >= 40, lines  # the face is tracked through the clip


def test_selftest_with_an_image_labels_that_photo_only(tiny_zoo):
    r = _run(REPO / "app" / "assets" / "sample.jpg", "--self-test", "--zoo", tiny_zoo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("1 face in sample.jpg") and not any(ln.startswith("clip ") for ln in lines), lines


def _self_test_with_clip(monkeypatch, capsys, zoo, clip: Path) -> tuple[int, str, str]:
    import app.__main__ as entry

    monkeypatch.setattr(entry, "sample_clip_path", lambda: clip)
    rc = entry.main(["--self-test", "--zoo", str(zoo)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_selftest_undecodable_clip_exits_1(tiny_zoo, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "sample_clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    rc, out, err = _self_test_with_clip(monkeypatch, capsys, tiny_zoo, bad)
    assert rc == 1
    assert "1 face in sample.jpg" in out and "clip " not in out  # the photo lines still come first
    assert len(err.strip().splitlines()) == 1 and err.startswith("emotionlens: self-test failed:"), err
    assert "sample_clip.mp4" in err, err


def test_selftest_clip_without_a_face_exits_1(tiny_zoo, tmp_path, monkeypatch, capsys):
    from tests.video_synth import write_clip

    wall = [np.full((96, 128, 3), 190, np.uint8)] * 6
    clip = write_clip(tmp_path / "wall.mp4", wall, fps=30)
    rc, out, err = _self_test_with_clip(monkeypatch, capsys, tiny_zoo, clip)
    assert rc == 1 and "clip " not in out
    assert len(err.strip().splitlines()) == 1 and "no face tracked in" in err and "wall.mp4" in err, err


def test_selftest_with_flip_tta(tiny_zoo):
    plain = _run("--self-test", "--zoo", tiny_zoo)
    r = _run("--self-test", "--zoo", tiny_zoo, "--tta")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert FACE_LINE.match(lines[0]), lines
    assert " with 3 models trained on FER2013 labels (flip TTA): load " in lines[-2], lines
    assert CLIP_LINE.match(lines[-1]), lines
    assert lines[0] != plain.stdout.splitlines()[0]  # the mirror view changes the confidences


def test_selftest_missing_zoo_one_line(tmp_path):
    r = _run("--self-test", "--zoo", tmp_path / "no_such_zoo")
    assert r.returncode == 1
    assert r.stdout == ""
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("emotionlens: self-test failed:"), r.stderr


def test_selftest_no_face_exits_1(tiny_zoo, tmp_path):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (200, 190, 180)).save(blank)
    r = _run(blank, "--self-test", "--zoo", tiny_zoo)
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "no face found" in err, r.stderr


def test_selftest_unreadable_image_exits_1(tiny_zoo, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    r = _run(bad, "--self-test", "--zoo", tiny_zoo)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "bad.jpg" in r.stderr


def test_selftest_imports_neither_tkinter_nor_torch(tiny_zoo):
    code = (
        "import sys\n"
        "from app.__main__ import main\n"
        "rc = main(['--self-test', '--zoo', sys.argv[1]])\n"
        "print('RC', rc, 'tkinter' in sys.modules, 'torch' in sys.modules)\n"
    )
    r = _run(tiny_zoo, code=code)
    assert r.stdout.strip().splitlines()[-1] == "RC 0 False False", r.stdout + r.stderr


def test_help_lists_options():
    r = _run("--help")
    assert r.returncode == 0
    for opt in ("--zoo", "--no-eye-check", "--tta", "--self-test", "IMAGE".lower()):
        assert opt in r.stdout.lower()
    assert "sample photo and clip" in r.stdout


def test_window_without_display_exits_1_with_hint(tmp_path):
    r = _run(tmp_path / "any.jpg")  # DISPLAY removed by _run
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "--self-test" in err, r.stderr
