"""The PyInstaller bundle: build.spec's logic without building (fast), and the built folder (opt-in, slow).

The fast tests run build.spec's code with PyInstaller's spec globals stubbed out, so a wrong data path, a
dropped exclude or a zoo that would be bundled broken shows up in the ordinary test run, in seconds.

The built-folder tests need ``pyinstaller --noconfirm build.spec`` first and run only with
EMOTIONLENS_TEST_BUNDLE=1: a dist/ left over from an older checkout would otherwise fail (or pass) for
reasons that have nothing to do with the code under test. CI builds and runs the bundle's self-test itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "build.spec"
DIST = REPO / "dist" / "EmotionLens"
EXE = DIST / ("EmotionLens.exe" if os.name == "nt" else "EmotionLens")
# The whole folder's budget, models included. Issue 5 set 250 MB; video (PyAV and the FFmpeg libraries in its wheel)
# does not fit in it, so the budget is 300 MB, the most the video issue allows. Measured (Linux x86-64, du -s,
# build.spec's header has the details): 204 MB before video; 304 MB with PyAV as its wheel ships it (av/ 30 MB of
# debug-info modules + av.libs 72 MB); 271 MB after stripping PyAV's and Pillow's modules and leaving out PyYAML,
# numpy.random and numpy.fft. The 29 MB of headroom is about one more ResNet18-sized model.
MAX_BUNDLE_MB = 300
# The self-test's last line: the bundled clip labelled as a video (app/__main__.py clip_self_test).
CLIP_LINE = re.compile(r"^clip sample_clip\.mp4 \(320x240\): 45 frames, \d+ tracks?: track 1 \w+ \d+% smoothed "
                       r"\(\d+ frames\).* in \d+ ms$")
NEVER_BUNDLED = ("torch", "torchvision", "tensorboardX", "matplotlib", "sklearn", "scipy", "pandas", "IPython",
                 "dask", "distributed")


def run_spec(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Execute build.spec with recording stand-ins for Analysis/PYZ/EXE/COLLECT/BUNDLE; returns their kwargs."""
    calls: dict[str, Any] = {}

    def analysis(scripts: list[str], **kw: Any) -> SimpleNamespace:
        calls["Analysis"] = {"scripts": scripts, **kw}
        return SimpleNamespace(binaries=[], datas=kw.get("datas", []), pure=[], scripts=[])

    def recorder(name: str):  # noqa: ANN202
        def record(*args: Any, **kw: Any) -> SimpleNamespace:
            calls[name] = {"args": args, **kw}
            return SimpleNamespace()

        return record

    ns: dict[str, Any] = {
        "SPECPATH": str(REPO), "workpath": str(tmp_path / "work"), "Analysis": analysis,
        **{n: recorder(n) for n in ("PYZ", "EXE", "COLLECT", "BUNDLE")},
    }
    saved = dict(os.environ)
    try:
        os.environ.pop("EMOTIONLENS_ZOO", None)
        os.environ.pop("EMOTIONLENS_ONEFILE", None)
        os.environ.setdefault("EMOTIONLENS_OPENCV", "wheel")  # the tests below choose; a local build must not
        os.environ.update(env or {})
        exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), ns)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return calls


def _datas(calls: dict[str, Any]) -> list[tuple[str, str]]:
    return [(Path(src).relative_to(REPO).as_posix() if REPO in Path(src).parents else src, dest)
            for src, dest in calls["Analysis"]["datas"]]


def test_spec_excludes_training_stack(tmp_path, tiny_zoo):
    calls = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo)})
    excludes = set(calls["Analysis"]["excludes"])
    assert set(NEVER_BUNDLED) <= excludes
    assert {"onnx", "training", "benchmarks", "tests"} <= excludes
    assert not {"onnxruntime", "cv2", "numpy", "PIL", "tkinter"} & excludes  # what the app runs on


def test_spec_bundles_cascades_and_sample(tmp_path, tiny_zoo):
    from app.detect._haar import EYE_CASCADE, EYE_FALLBACK_CASCADES, FACE_CASCADE

    datas = _datas(run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo)}))
    for name in (FACE_CASCADE, EYE_CASCADE, *EYE_FALLBACK_CASCADES):
        assert (f"haarcascades/{name}", "haarcascades") in datas
    assert ("app/assets/sample.jpg", "app/assets") in datas
    assert ("app/assets/sample_clip.mp4", "app/assets") in datas  # the self-test's video (app/__main__.py)
    for src, _ in datas:
        assert Path(src if Path(src).is_absolute() else REPO / src).is_file(), src


def test_spec_bundles_the_mtcnn_detector_with_its_licence(tmp_path, tiny_zoo):
    from app.detect._mtcnn import DETECTOR_DIR, FILES

    folder = "/".join(DETECTOR_DIR)
    datas = _datas(run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo)}))
    for name in (*FILES.values(), "LICENSE", "mtcnn.provenance.json"):
        assert (f"{folder}/{name}", folder) in datas


def test_spec_entry_is_the_app_main(tmp_path, tiny_zoo):
    calls = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo)})
    (script,) = calls["Analysis"]["scripts"]
    assert "from app.__main__ import main" in Path(script).read_text(encoding="utf-8")
    assert calls["EXE"]["name"] == "EmotionLens" and calls["COLLECT"]["name"] == "EmotionLens"


def test_spec_bundles_exactly_the_manifest_models(tmp_path, zoo_copy):
    (zoo_copy / "stray.onnx.tmp").write_bytes(b"half an export")
    datas = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(zoo_copy)})["Analysis"]["datas"]
    zoo = sorted(Path(src).name for src, dest in datas if dest == "models_zoo")
    assert zoo == ["cnn.onnx", "ff.onnx", "manifest.json", "resnet18.onnx"]


def test_spec_refuses_a_zoo_with_a_missing_model(tmp_path, zoo_copy):
    (zoo_copy / "ff.onnx").unlink()
    with pytest.raises(SystemExit, match="ff.onnx"):
        run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(zoo_copy)})


def test_spec_without_manifest_warns_and_bundles_no_models(tmp_path, capsys):
    empty = tmp_path / "empty_zoo"
    empty.mkdir()
    datas = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(empty)})["Analysis"]["datas"]
    assert not [d for d in datas if d[1].startswith("models_zoo") and d[1] != "models_zoo/detectors"]
    assert "WARNING" in capsys.readouterr().err


def test_spec_prefers_the_small_opencv_build(tmp_path, tiny_zoo, capsys):
    folder = tmp_path / "opencv-minimal"
    folder.mkdir()
    (folder / ("cv2" + sysconfig.get_config_var("EXT_SUFFIX"))).write_bytes(b"")
    (folder / "build-info.json").write_text(json.dumps({"version": "4.99.0.1"}))
    analysis = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo), "EMOTIONLENS_OPENCV": str(folder)})["Analysis"]
    assert analysis["pathex"][0] == str(folder)  # ahead of site-packages and the repository
    assert [Path(p).name for p in analysis["hookspath"]] == ["hooks-opencv-minimal"]
    assert "bundling the minimal cv2" in capsys.readouterr().err


def test_spec_falls_back_to_the_wheel_with_a_warning(tmp_path, tiny_zoo, capsys):
    env = {"EMOTIONLENS_ZOO": str(tiny_zoo), "EMOTIONLENS_OPENCV": str(tmp_path / "not-built")}
    analysis = run_spec(tmp_path, env)["Analysis"]
    assert analysis["pathex"] == [str(REPO)] and analysis["hookspath"] == []
    assert "WARNING" in capsys.readouterr().err


def test_spec_onefile_variant(tmp_path, tiny_zoo):
    calls = run_spec(tmp_path, {"EMOTIONLENS_ZOO": str(tiny_zoo), "EMOTIONLENS_ONEFILE": "1"})
    assert calls["EXE"]["name"] == "EmotionLens-onefile" and "COLLECT" not in calls


# ------------------------------------------------------------------------------------ the built folder

built = pytest.mark.skipif(
    os.environ.get("EMOTIONLENS_TEST_BUNDLE") != "1",
    reason="set EMOTIONLENS_TEST_BUNDLE=1 after `pyinstaller --noconfirm build.spec` to check dist/EmotionLens",
)


@pytest.fixture(scope="module")
def dist() -> Path:
    if not EXE.is_file():
        pytest.fail(f"{EXE} not found: build it first with `pyinstaller --noconfirm build.spec`")
    return DIST


def _du_mb(folder: Path) -> float:
    total = 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total / 2**20


@pytest.mark.slow
@built
def test_bundle_has_no_training_stack(dist):
    names = {p.name for p in dist.rglob("*")}
    found = sorted(n for n in names if n.split(".")[0] in NEVER_BUNDLED or n.startswith("libtorch"))
    assert not found, f"bundled by mistake: {found}"


@pytest.mark.slow
@built
def test_bundle_has_models_cascades_and_sample(dist):
    internal = dist / "_internal" if (dist / "_internal").is_dir() else dist
    assert (internal / "models_zoo" / "manifest.json").is_file()
    assert (internal / "haarcascades" / "haarcascade_frontalface_alt2.xml").is_file()
    assert (internal / "app" / "assets" / "sample.jpg").is_file()
    assert (internal / "app" / "assets" / "sample_clip.mp4").is_file()
    assert (internal / "models_zoo" / "detectors" / "mtcnn_onet.onnx").is_file()


@pytest.mark.slow
@built
def test_bundle_has_pyav_and_ffmpeg(dist):
    """PyAV's modules and the FFmpeg libraries they load (av.libs on Linux) came along."""
    internal = dist / "_internal" if (dist / "_internal").is_dir() else dist
    assert list((internal / "av").glob("_core*")), "PyAV's av/_core extension is missing"
    if sys.platform.startswith("linux"):
        libs = {p.name.split("-")[0] for p in internal.rglob("libav*.so*")}
        assert {"libavcodec", "libavformat", "libavutil"} <= libs, libs


@pytest.mark.slow
@built
def test_bundle_size(dist):
    mb = _du_mb(dist)
    assert mb < MAX_BUNDLE_MB, f"{dist} is {mb:.0f} MB, over the {MAX_BUNDLE_MB} MB budget"


def _self_test(cmd: list[str], cwd: Path, *args: str) -> list[str]:
    """stdout lines of ``cmd --self-test [args]``, asserting exit 0; the bundled zoo unless a test passes --zoo."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "EMOTIONLENS_ZOO")}
    r = subprocess.run([*cmd, "--self-test", *args], cwd=cwd, env=env, capture_output=True, encoding="utf-8",
                       errors="replace", timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()


@pytest.mark.slow
@built
def test_bundle_self_test(dist, tmp_path):
    lines = _self_test([str(EXE)], tmp_path)
    assert re.match(r"^face 1 \(x=\d+,y=\d+,w=\d+,h=\d+\): .* · ensemble \w+ \d+%$", lines[0]), lines
    assert re.match(r"^\d+ faces? in sample\.jpg \(512x512\) with \d+ models", lines[-2]), lines
    assert CLIP_LINE.match(lines[-1]), lines  # the frozen app decoded, tracked and labelled the sample clip


@pytest.mark.slow
@built
def test_bundle_labels_the_clip_like_the_source(dist, tmp_path):
    """The frozen PyAV decodes the sample clip to the same frames, tracks and labels as ``python -m app``."""
    zoo = ["--zoo", os.environ["EMOTIONLENS_ZOO"]] if os.environ.get("EMOTIONLENS_ZOO") else []
    frozen = _found(_self_test([str(EXE)], tmp_path))[-1]
    source = _found(_self_test([sys.executable, "-m", "app", *zoo], REPO))[-1]
    assert frozen.startswith("clip ") and _percent_close(frozen, source), (frozen, source)


@pytest.mark.slow
@built
def test_bundle_self_test_with_the_dnn_detector(dist, tmp_path):
    """The frozen app runs MTCNN (onnxruntime on the bundled detector files) and finds the sample's face."""
    lines = _self_test([str(EXE)], tmp_path, "--detector", "mtcnn")
    assert re.match(r"^face 1 \(x=\d+,y=\d+,w=\d+,h=\d+\): .* · ensemble \w+ \d+%$", lines[0]), lines
    assert re.match(r"^1 face in sample\.jpg \(512x512\) with \d+ models", lines[-2]), lines
    assert lines[-1].startswith("clip sample_clip.mp4 "), lines
    source = _found(_self_test([sys.executable, "-m", "app", "--detector", "mtcnn"], REPO))
    assert len(source) == len(lines) and all(map(_percent_close, _found(lines), source)), (lines, source)


def _found(lines: list[str]) -> list[str]:
    """Self-test lines without their timings: the photo's ("...: load 251 ms, detection 86 ms, ...") and the
    clip's ("... in 640 ms")."""
    return [re.sub(r" in \d+ ms$", "", line.split(": load ")[0]) for line in lines]


def _percent_close(frozen: str, source: str) -> bool:
    """Same text except that each percentage may differ by 1 (rounding of near-identical probabilities)."""
    num = re.compile(r"(\d+)%")
    if num.sub("%", frozen) != num.sub("%", source):
        return False
    return all(abs(int(a) - int(b)) <= 1 for a, b in zip(num.findall(frozen), num.findall(source), strict=True))


@pytest.mark.slow
@built
def test_bundle_finds_the_same_faces_as_the_source(dist, tmp_path):
    """The bundle may carry packaging/build_opencv.py's small cv2 instead of the wheel the tests run with:
    on every photo at hand it must find the same boxes and give the same labels as ``python -m app``."""
    photos = [REPO / "app" / "assets" / "sample.jpg"]
    shared = REPO.parent / "shared" / "data" / "photos"
    if shared.is_dir():
        photos += sorted(p for p in shared.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    # The zoo the bundle was built with (CI bundles a generated one when no trained models are committed).
    zoo = ["--zoo", os.environ["EMOTIONLENS_ZOO"]] if os.environ.get("EMOTIONLENS_ZOO") else []
    for photo in photos:
        frozen = _found(_self_test([str(EXE)], tmp_path, str(photo)))
        source = _found(_self_test([sys.executable, "-m", "app", *zoo], REPO, str(photo)))
        assert len(frozen) == len(source) and all(map(_percent_close, frozen, source)), (photo.name, frozen, source)
