"""The public Python API (issue 27): the short import, constructor options, path-or-array input, the CSV row
helpers the batch command uses, the zoo's label source, ``--version``, and the docstring examples run as
doctests against the shipped zoo."""

from __future__ import annotations

import csv
import doctest
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import app
from tests.conftest import REPO, SAMPLE


def test_short_import_names_every_public_type():
    from app import Labeler, PhotoResult, VideoOptions, labels_header, photo_rows  # noqa: F401

    assert set(app.__all__) <= set(dir(app))
    for name in app.__all__:
        assert getattr(app, name) is not None
    with pytest.raises(AttributeError):
        app.NoSuchThing  # noqa: B018


def test_importing_app_does_not_load_onnxruntime_or_opencv():
    code = "import sys, app; print('onnxruntime' in sys.modules, 'cv2' in sys.modules, app.__version__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["False", "False"], out.stdout


def test_label_image_takes_a_path_or_an_array_with_the_constructor_options(tiny_zoo):
    from app import Labeler
    from app.core import load_image

    labeler = Labeler(tiny_zoo, threads=1, eye_check=False)
    by_path = labeler.label_image(SAMPLE)
    by_array = labeler.label_image(load_image(SAMPLE))
    assert by_path.path == str(SAMPLE) and by_array.path is None
    assert [f.box for f in by_path.faces] == [f.box for f in by_array.faces] and by_path.faces
    for a, b in zip(by_path.faces, by_array.faces, strict=True):
        np.testing.assert_array_equal(a.ensemble.probs, b.ensemble.probs)
    # a per-call option still overrides the constructor's; the constructor's is the default
    flipped = labeler.label_image(SAMPLE, tta=True).faces[0].ensemble.probs
    assert flipped.tolist() != by_path.faces[0].ensemble.probs.tolist()
    with pytest.raises(ValueError, match="unknown detector"):
        Labeler(tiny_zoo, detector="nope")


def test_video_options_follow_the_labeler(tiny_zoo):
    from app import Labeler

    labeler = Labeler(tiny_zoo, threads=1, eye_check=False, tta=True, detector="haar")
    opts = labeler.video_options(fps=5)
    assert (opts.eye_check, opts.tta, opts.detector, opts.fps) == (False, True, "haar", 5)


def test_photo_rows_are_the_rows_the_batch_command_writes(tiny_zoo, tmp_path):
    from app import Labeler, labels_header, photo_rows
    from app.batch._cli import main

    photos = tmp_path / "in"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(SAMPLE.read_bytes())
    assert main([str(photos), "--out", str(tmp_path / "out"), "--zoo", str(tiny_zoo), "--workers", "1"]) == 0
    with open(tmp_path / "out" / "labels.csv", newline="", encoding="utf-8") as f:
        written = list(csv.reader(f))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["trained_on"] == "FER2013 labels" and summary["zoo"] == str(tiny_zoo)
    labeler = Labeler(tiny_zoo, threads=1)
    mine = [labels_header(labeler.models)]
    mine += [[str(c) for c in row] for row in photo_rows(photos / "a.jpg", labeler.label_image(photos / "a.jpg"),
                                                           labeler.models)]
    assert written == mine


def test_label_source_names_the_training_target(tmp_path, tiny_zoo):
    import shutil

    from app.models import label_source, load_manifest

    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, zoo)
    assert label_source(load_manifest(zoo)[1]) == "FER2013 labels"  # manifests from before FER+ have none
    manifest = json.loads((zoo / "manifest.json").read_text())
    for m in manifest["models"]:
        m["labels"] = "ferplus-soft"
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    assert label_source(load_manifest(zoo)[1]) == "FER+ votes"
    manifest["models"][0]["labels"] = "fer2013"
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    assert label_source(load_manifest(zoo)[1]) == "cnn: FER2013 labels, ff: FER+ votes, resnet18: FER+ votes"


def test_version_names_the_version_and_the_zoo(tiny_zoo, tmp_path):
    run = [sys.executable, "-m", "app", "--version", "--zoo"]
    out = subprocess.run([*run, str(tiny_zoo)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"emotionlens {app.__version__} · zoo {tiny_zoo}: CNN, FF, ResNet18 trained on " \
                                 "FER2013 labels"
    bad = subprocess.run([*run, str(tmp_path / "none")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 0 and "zoo unusable: " in bad.stdout and "not found" in bad.stdout


def test_version_matches_the_package_metadata():
    text = (REPO / "pyproject.toml").read_text()
    assert 'version = { attr = "app.__version__" }' in text
    changelog = (REPO / "CHANGELOG.md").read_text()
    released = app.__version__.split(".dev")[0]
    assert f"## [{released}]" in changelog or "## [Unreleased]" in changelog


@pytest.mark.skipif(not (REPO / "models_zoo" / "manifest.json").is_file(), reason="no shipped zoo")
@pytest.mark.parametrize("module", ["app.models._labeler", "app.outputs._labels_csv"])
def test_docstring_examples_run_on_the_shipped_zoo(module):
    """The examples in the API reference (docs/api.md renders these docstrings) are real."""
    import importlib

    from app import Labeler
    from app.video import sample_clip

    mod = importlib.import_module(module)
    globs = {"labeler": Labeler(threads=1), "sample_photo": SAMPLE, "sample_clip": sample_clip(), **vars(mod)}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, globs=globs) if t.examples]
    assert tests, f"{module} has no examples"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {module} failed (see output above)"


def test_package_has_no_stray_public_names():
    assert Path(app.__file__).name == "__init__.py"
    assert app.__version__[0].isdigit()


def test_video_helpers_give_the_rows_the_batch_command_writes(tiny_zoo, tmp_path):
    """frames.csv and tracks.csv written from Labeler.label_video with the helpers equal the batch's files."""
    import shutil

    from app import Labeler, frame_rows, frames_header, track_rows, tracks_header, video_series
    from app.batch._cli import main
    from app.video import sample_clip

    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    shutil.copy(sample_clip(), clip)
    assert main([str(clip), "--out", str(tmp_path / "out"), "--zoo", str(tiny_zoo), "--workers", "1"]) == 0

    def read(name: str) -> list[list[str]]:
        with open(tmp_path / "out" / name, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    frames_csv, tracks_csv = read("frames.csv"), read("tracks.csv")
    video = frames_csv[1][0]
    labeler = Labeler(tiny_zoo, threads=1)
    frames = list(labeler.label_video(clip))
    mine = [frames_header(labeler.models)]
    for vf in frames:
        mine += [[str(c) for c in row] for row in frame_rows(video, vf, labeler.models)]
    assert mine == frames_csv and len(mine) > 10
    assert [tracks_header(), *[[str(c) for c in r] for r in track_rows(video, video_series(frames))]] == tracks_csv


def test_available_zoos_lists_the_chosen_then_the_shipped_then_its_siblings(tmp_path, tiny_zoo, monkeypatch):
    import shutil

    from app.models import _zoo as zoo_mod

    for name in ("models_zoo", "models_zoo_fer2013", "models_zoo_empty"):
        (tmp_path / name).mkdir()
    for name in ("models_zoo", "models_zoo_fer2013"):
        for f in tiny_zoo.iterdir():
            shutil.copy(f, tmp_path / name / f.name)
    monkeypatch.setattr(zoo_mod, "resource_path", lambda *parts: tmp_path.joinpath(*parts))
    monkeypatch.delenv(zoo_mod.ZOO_ENV, raising=False)
    assert zoo_mod.available_zoos() == [tmp_path / "models_zoo", tmp_path / "models_zoo_fer2013"]
    assert zoo_mod.available_zoos(tiny_zoo) == [tiny_zoo, tmp_path / "models_zoo", tmp_path / "models_zoo_fer2013"]
    assert zoo_mod.zoo_title(tmp_path / "models_zoo_fer2013") == "models_zoo_fer2013 (FER2013 labels)"
    assert zoo_mod.zoo_title(tmp_path / "models_zoo_empty") == "models_zoo_empty (unusable)"
