"""packaging/build_opencv.py without compiling: the module list, the download check and the up-to-date shortcut.

The compile itself (about 10 minutes) runs in CI before the bundle is built; tests/test_bundle.py then checks
that the frozen app with the small cv2 finds the same faces as ``python -m app`` with the wheel.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_opencv", REPO / "packaging" / "build_opencv.py")
build_opencv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_opencv)


def cv2_names_in_app() -> set[str]:
    """Every ``cv2.<name>`` the app's code touches (docstrings and comments do not count)."""
    names = set()
    for path in (REPO / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cv2":
                names.add(node.attr)
    return names


def test_app_uses_exactly_what_the_build_checks():
    # cv2.data exists only in the wheel; app/detect/_haar.py guards it with hasattr and bundles its own cascades.
    assert cv2_names_in_app() - {"data"} == set(build_opencv.APP_USES)


def test_installed_wheel_has_everything_the_build_checks():
    import cv2

    assert [n for n in build_opencv.APP_USES if not hasattr(cv2, n)] == []


def test_cmake_builds_objdetect_without_video_codecs_or_downloads(tmp_path):
    args = build_opencv.cmake_args(tmp_path / "src", tmp_path / "build")
    modules = next(a for a in args if a.startswith("-DBUILD_LIST=")).split("=", 1)[1].split(",")
    assert {"core", "imgproc", "objdetect", "python3"} <= set(modules)
    assert not {"videoio", "imgcodecs", "dnn", "highgui"} & set(modules)
    for flag in ("WITH_FFMPEG", "WITH_IPP", "WITH_LAPACK", "BUILD_SHARED_LIBS"):
        assert f"-D{flag}=OFF" in args
    assert "-DOPENCV_SKIP_PYTHON_LOADER=ON" in args  # one module file, no loader package


def _sdist(tmp_path: Path, version: str = "4.99.0.1") -> Path:
    """A stand-in sdist: the OpenCV tree plus the wheel's build scripts, which extraction must leave out."""
    top = f"opencv_python_headless-{version}"
    path = tmp_path / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"{top}/opencv/CMakeLists.txt", b"project(x)\n"), (f"{top}/setup.py", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_source_unpacks_only_the_opencv_tree(tmp_path):
    src = build_opencv.extract_source(_sdist(tmp_path), tmp_path / "src")
    assert (src / "CMakeLists.txt").read_text() == "project(x)\n"
    assert not (src.parent / "setup.py").exists()


def test_fetch_sdist_verifies_the_index_hash(tmp_path, monkeypatch):
    sdist = _sdist(tmp_path)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    cache = tmp_path / "cache"

    monkeypatch.setattr(build_opencv, "sdist_url", lambda v, i: (sdist.as_uri(), "0" * 64))
    with pytest.raises(SystemExit, match="sha256 does not match"):
        build_opencv.fetch_sdist("4.99.0.1", "unused", cache)
    assert list(cache.iterdir()) == []  # the bad download is not kept

    monkeypatch.setattr(build_opencv, "sdist_url", lambda v, i: (sdist.as_uri(), digest))
    got = build_opencv.fetch_sdist("4.99.0.1", "unused", cache)
    assert got.read_bytes() == sdist.read_bytes()


def test_build_is_skipped_when_the_module_is_up_to_date(tmp_path, monkeypatch):
    (tmp_path / build_opencv.module_name()).write_bytes(b"")
    (tmp_path / build_opencv.INFO).write_text(json.dumps({"version": "4.99.0.1"}))

    def no_compiling(*a, **kw):
        raise AssertionError(f"ran {a}")

    monkeypatch.setattr(subprocess, "run", no_compiling)
    assert build_opencv.build("4.99.0.1", tmp_path, "unused", None, 1, force=False).parent == tmp_path
    # another release, or --force, rebuilds
    with pytest.raises(AssertionError, match="ran"):
        build_opencv.build("4.99.0.1", tmp_path, "unused", _sdist(tmp_path), 1, force=True)


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        build_opencv.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--version", "--out", "--sdist", "--index", "--jobs", "--force", "example:"):
        assert option in out


def test_a_module_that_fails_its_check_is_not_installed(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def fake_compile(args, check):  # cmake configure and build: leave a "built" module behind
        lib = out / "cmake-build" / "lib" / "python3"
        lib.mkdir(parents=True, exist_ok=True)
        (lib / build_opencv.module_name()).write_bytes(b"broken")

    def failing_check(folder, version):
        raise SystemExit("build_opencv: the built module fails its check: ImportError")

    monkeypatch.setattr(subprocess, "run", fake_compile)
    monkeypatch.setattr(build_opencv, "check_module", failing_check)
    with pytest.raises(SystemExit, match="fails its check"):
        build_opencv.build("4.99.0.1", out, "unused", _sdist(tmp_path), 1, force=False)
    assert not (out / build_opencv.module_name()).exists()  # build.spec falls back to the wheel
    assert not (out / build_opencv.INFO).exists()
