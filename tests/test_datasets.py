"""FER2013 readers: both Kaggle layouts agree, the cache is used, and malformed input gives one-line errors."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.fer_synth import make_fer, write_csv, write_folder
from training import datasets
from training.datasets import DatasetError, load_fer2013

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))


def _sorted_split(s):
    """Order-independent view of a split: (pixel hash, label) pairs."""
    pairs = zip(s.images, s.labels, strict=True)
    return sorted((hashlib.sha1(img.tobytes()).hexdigest(), int(lab)) for img, lab in pairs)


def test_csv_and_folder_give_identical_splits(tmp_path):
    data = make_fer(35, 14, 14)
    from_csv = load_fer2013(write_csv(data, tmp_path / "fer.csv"))
    from_dir = load_fer2013(write_folder(data, tmp_path / "fer"))
    for name in ("train", "val", "test"):
        assert len(from_csv.split(name)) == len(data.split(name))
        assert _sorted_split(from_csv.split(name)) == _sorted_split(from_dir.split(name))
        assert from_csv.split(name).images.dtype == np.uint8
    np.testing.assert_array_equal(from_csv.train.images, data.train.images)  # CSV keeps row order
    assert from_csv.split("PrivateTest") is from_csv.test


def test_second_load_uses_cache(tmp_path, monkeypatch):
    path = write_csv(make_fer(14, 7, 7), tmp_path / "fer.csv")
    first = load_fer2013(path)
    monkeypatch.setattr(datasets, "read_csv", lambda p: pytest.fail("cache not used"))
    second = load_fer2013(path)
    np.testing.assert_array_equal(first.train.images, second.train.images)


def test_cache_is_rebuilt_when_torn(tmp_path):
    path = write_csv(make_fer(14, 7, 7), tmp_path / "fer.csv")
    load_fer2013(path)
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(b"torn")
    assert len(load_fer2013(path).train) == 14


def test_two_loads_building_the_cache_at_once_both_succeed(tmp_path, monkeypatch):
    """Two trainings started together both build the cache; a shared temp name made one of them crash."""
    path = write_csv(make_fer(14, 7, 7), tmp_path / "fer.csv")
    both_writing = threading.Barrier(2, timeout=10)
    real_savez = np.savez

    def savez_together(file, **arrays):
        real_savez(file, **arrays)
        both_writing.wait()  # both have written their temp file; now both rename

    monkeypatch.setattr(np, "savez", savez_together)
    results, errors = [], []

    def load():
        try:
            results.append(load_fer2013(path))
        except Exception as e:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    (cache,) = (tmp_path / "cache").glob("*")  # one cache file, no temp file left behind
    assert len(load_fer2013(path).train) == 14


def _csv(tmp_path, rows, header="emotion,pixels,Usage"):
    p = tmp_path / "bad.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


PIX = " ".join(["7"] * 2304)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([f"0,{' '.join(['1'] * 100)},Training"], "bad.csv:2: expected 2304 pixels, got 100"),
        ([f"0,{PIX},Training", f"9,{PIX},Training"], "bad.csv:3: unknown emotion label '9'"),
        ([f"0,{PIX},Validation"], "bad.csv:2: unknown Usage 'Validation'"),
        ([f"0,{PIX.replace('7', 'x', 1)},Training"], "bad.csv:2: pixels must be integers"),
        ([f"0,{PIX.replace('7', '300', 1)},Training"], "bad.csv:2: pixel values must be 0-255"),
        ([f"0,{PIX}"], "bad.csv:2: expected 3 columns"),
        ([f"0,{PIX},PublicTest"], "no Training images"),
    ],
)
def test_csv_errors_name_file_and_row(tmp_path, rows, message):
    with pytest.raises(DatasetError) as e:
        load_fer2013(_csv(tmp_path, rows), cache=False)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_csv_bad_header_and_empty_and_binary(tmp_path):
    with pytest.raises(DatasetError, match="header must contain emotion,pixels,Usage"):
        load_fer2013(_csv(tmp_path, [], header="a,b,c"), cache=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match="empty.csv: file is empty"):
        load_fer2013(empty, cache=False)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(DatasetError, match="bin.csv"):
        load_fer2013(binary, cache=False)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_fer2013(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="expected a train/ folder"):
        load_fer2013(tmp_path / "empty")
    root = write_folder(make_fer(14, 7, 7), tmp_path / "fer")
    bad = root / "train" / "happy" / "Training_broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"Training_broken\.jpg: not a readable image"):
        load_fer2013(root, cache=False)
    bad.unlink()
    (root / "train" / "bored").mkdir()
    with pytest.raises(DatasetError, match=r"bored: unknown emotion folder"):
        load_fer2013(root, cache=False)


def test_folder_without_train_images(tmp_path):
    for e in ("happy", "sad"):
        (tmp_path / "fer" / "train" / e).mkdir(parents=True)
    with pytest.raises(DatasetError, match="no Training images found"):
        load_fer2013(tmp_path / "fer", cache=False)


def test_cli_prints_counts_and_errors(tmp_path, capsys):
    path = write_csv(make_fer(14, 7, 7), tmp_path / "fer.csv")
    assert datasets.main([str(path)]) == 0
    assert "train     14" in capsys.readouterr().out
    assert datasets.main([str(tmp_path / "nope.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "fer2013").is_dir(), reason="../shared/data/fer2013 not present")
def test_real_fer2013_sizes_and_sample_csv_matches_folder():
    full = load_fer2013(SHARED / "fer2013")
    assert (len(full.train), len(full.val), len(full.test)) == (28709, 3589, 3589)
    sample = load_fer2013(SHARED / "fer2013_sample.csv")
    # Every sample row is the same image (exact pixels) in the same split of the folder layout.
    for name in ("train", "val", "test"):
        folder = {hashlib.sha1(i.tobytes()).hexdigest() for i in full.split(name).images}
        hashes = [hashlib.sha1(i.tobytes()).hexdigest() for i in sample.split(name).images]
        assert all(h in folder for h in hashes), name


def test_folder_order_mixes_classes_so_limit_sees_every_class(tmp_path):
    data = make_fer(70, 7, 7)
    loaded = load_fer2013(write_folder(data, tmp_path / "fer"), cache=False)
    # write_folder numbers files in CSV order, so name order == the original (class-mixed) order
    np.testing.assert_array_equal(loaded.train.labels, data.train.labels)
    assert len(set(loaded.train.head(14).labels)) >= 5
