"""``python -m app --self-test``: the no-display smoke test a user (or a frozen build) runs first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FACE_LINE = re.compile(
    r"^face 1 \(x=\d+,y=\d+,w=\d+,h=\d+\): "
    r"CNN \w+ \d+% · FF \w+ \d+% · ResNet18 \w+ \d+% · ensemble \w+ \d+%$"
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
    assert re.match(r"^1 face in sample\.jpg \(512x512\) with 3 models: load \d+ ms, detection \d+ ms, "
                    r"labelling \d+ ms, total \d+ ms$", lines[-1]), lines
    assert "Traceback" not in r.stderr


def test_selftest_with_flip_tta(tiny_zoo):
    plain = _run("--self-test", "--zoo", tiny_zoo)
    r = _run("--self-test", "--zoo", tiny_zoo, "--tta")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert FACE_LINE.match(lines[0]) and " with 3 models (flip TTA): load " in lines[-1], lines
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


def test_window_without_display_exits_1_with_hint(tmp_path):
    r = _run(tmp_path / "any.jpg")  # DISPLAY removed by _run
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "--self-test" in err, r.stderr
