"""Offline augmentation: exactly 4x, deterministic per seed, transforms are what they claim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fer_synth import make_fer, write_csv
from training import augment

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_four_copies_per_image_with_labels_and_provenance():
    data = make_fer(21)
    aug = augment.augment(data.train.images, data.train.labels, seed=3)
    assert len(aug) == 4 * 21 == aug.images.shape[0]
    assert aug.images.dtype == np.uint8 and aug.images.shape[1:] == (48, 48)
    np.testing.assert_array_equal(aug.labels, np.repeat(data.train.labels, 4))
    np.testing.assert_array_equal(aug.source_index, np.repeat(np.arange(21), 4))
    np.testing.assert_array_equal(aug.images[0::4], data.train.images)
    np.testing.assert_array_equal(aug.images[1::4], data.train.images[:, :, ::-1])
    assert [augment.TRANSFORMS[t] for t in aug.transform[:4]] == ["original", "mirror", "rotate_ccw", "rotate_cw"]
    assert np.all((aug.angle[2::4] >= 10) & (aug.angle[2::4] <= 15))
    assert np.all((aug.angle[3::4] <= -10) & (aug.angle[3::4] >= -15))
    # rotations really change the image, and reflect the border rather than leaving black corners
    assert not np.array_equal(aug.images[2::4], data.train.images)
    assert aug.images[2::4, 0, 0].min() > 0 or data.train.images[:, 0, 0].min() == 0


def test_deterministic_per_seed():
    data = make_fer(14)
    a = augment.augment(data.train.images, data.train.labels, seed=7)
    b = augment.augment(data.train.images, data.train.labels, seed=7)
    c = augment.augment(data.train.images, data.train.labels, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.angle, c.angle)


def test_bad_angles_rejected():
    data = make_fer(7)
    with pytest.raises(ValueError, match="min_angle <= max_angle"):
        augment.augment(data.train.images, data.train.labels, min_angle=20, max_angle=5)


def test_cli_writes_archive_and_leaves_val_test_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    data = make_fer(28, 14, 14)
    csv_path = write_csv(data, tmp_path / "fer.csv")
    out = tmp_path / "aug.npz"
    assert augment.main(["--data", str(csv_path), "--out", str(out), "--seed", "1"]) == 0
    assert "112 training images" in capsys.readouterr().out
    loaded = augment.load(out)
    assert len(loaded) == 112
    first = out.read_bytes()
    assert augment.main(["--data", str(csv_path), "--out", str(out), "--seed", "1"]) == 0
    np.testing.assert_array_equal(augment.load(out).images, loaded.images)
    assert len(first) > 0
    assert augment.main(["--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err


def _damaged_archives(tmp_path: Path) -> list[Path]:
    """An archive of other arrays, then an empty file, text, half an archive and one with a flipped byte."""
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    whole = tmp_path / "whole.npz"
    np.savez_compressed(whole, a=np.random.default_rng(0).random((200, 50)))
    blob = whole.read_bytes()
    variants = {"empty": b"", "text": b"hello", "half": blob[: len(blob) // 2],
                "flipped": blob[:900] + bytes([blob[900] ^ 0xFF]) + blob[901:]}
    paths = [other]
    for name, data in variants.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
        paths.append(tmp_path / f"{name}.npz")
    return paths


@pytest.mark.parametrize("k", range(5))
def test_load_rejects_other_and_damaged_files(tmp_path, k):
    """Whatever np.load raises for a bad file (EOFError, BadZipFile, zlib.error...) becomes one ValueError."""
    with pytest.raises(ValueError, match="not an augmented archive"):
        augment.load(_damaged_archives(tmp_path)[k])


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "fer2013").is_dir(), reason="../shared/data/fer2013 not present")
def test_full_fer2013_expands_to_114836(tmp_path):
    assert augment.main(["--data", str(SHARED / "fer2013"), "--out", str(tmp_path / "a.npz")]) == 0
    assert len(augment.load(tmp_path / "a.npz")) == 114_836
