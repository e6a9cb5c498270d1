"""Read FER2013 from the Kaggle CSV or the Kaggle image folders into compact uint8 arrays.

Both layouts give the same three canonical splits (Training, PublicTest = validation, PrivateTest = test)
with labels in the order of ``app.core.EMOTIONS``. Parsing 35,887 rows or JPEGs takes tens of seconds, so
the result is cached as an ``.npz`` keyed on the input's path, size and modification time; a second run starts
in about a second.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core import EMOTIONS, atomic_path

SIDE = 48
USAGES = ("Training", "PublicTest", "PrivateTest")
SPLIT_OF_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
CACHE_VERSION = 3  # bump when the arrays' content or order changes, so stale caches are not reused
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


class DatasetError(ValueError):
    """Malformed or missing FER2013 input; the message is one line naming the file (and row)."""


@dataclass(frozen=True)
class Split:
    """One split: ``images`` (N, 48, 48) uint8 and ``labels`` (N,) int64 in canonical class order.

    ``keys`` (N,) names where each row came from, so a second label source (FER+ votes, training.ferplus)
    can be attached to it: ``row:<n>`` (0-based data row of ``fer2013.csv``) or the file's path relative to
    the image folder (``train/angry/Training_10118481.jpg``). None for arrays made in memory.
    """

    images: np.ndarray
    labels: np.ndarray
    keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None): cheap runs on a fixed, reproducible subset."""
        return self if n is None else self.take(slice(0, n))

    def take(self, rows) -> Split:  # noqa: ANN001 - a slice, index array or boolean mask
        """The rows ``rows`` (a slice, indices or a boolean mask), keys kept in step."""
        return Split(self.images[rows], self.labels[rows], None if self.keys is None else self.keys[rows])


@dataclass(frozen=True)
class FER2013:
    train: Split
    val: Split
    test: Split
    source: str

    def split(self, name: str) -> Split:
        """``train``/``val``/``test`` or the Kaggle names ``Training``/``PublicTest``/``PrivateTest``."""
        key = SPLIT_OF_USAGE.get(name, name)
        if key not in ("train", "val", "test"):
            raise DatasetError(f"unknown split {name!r}; use one of train, val, test")
        return getattr(self, key)


def _cache_path(source: Path) -> Path:
    base = Path(os.environ.get("EMOTIONLENS_CACHE", Path.home() / ".cache" / "emotionlens"))
    st = source.stat()
    if source.is_dir():  # a folder's own mtime misses edits inside class folders; include them
        stamps = [(p.name, p.stat().st_mtime_ns) for p in sorted(source.glob("*/*")) if p.is_dir()]
    else:
        stamps = [(st.st_size, st.st_mtime_ns)]
    key = hashlib.sha1(repr((CACHE_VERSION, str(source.resolve()), stamps)).encode()).hexdigest()[:16]
    return base / f"fer2013-{key}.npz"


# What np.load raises for a file that is not a whole .npz archive: empty (EOFError), not a zip (ValueError,
# BadZipFile), a torn or bit-flipped member (BadZipFile "Bad CRC-32", zlib.error), a missing array (KeyError).
NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)

def load_fer2013(path: str | os.PathLike, cache: bool = True) -> FER2013:
    """Load FER2013 from a ``fer2013.csv`` file or a Kaggle ``train/``+``test/`` folder, using the cache."""
    source = Path(path)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder (expected fer2013.csv or a folder with train/ and test/)")
    cache_file = _cache_path(source) if cache else None
    if cache_file is not None and cache_file.exists():
        try:
            with np.load(cache_file) as z:
                return FER2013(
                    *(Split(z[f"{s}_images"], z[f"{s}_labels"], z[f"{s}_keys"]) for s in ("train", "val", "test")),
                    source=str(source),
                )
        except Exception:  # a torn cache file is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    data = read_csv(source) if source.is_file() else read_folder(source)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            f"{s}_{k}": getattr(getattr(data, s), k)
            for s in ("train", "val", "test")
            for k in ("images", "labels", "keys")
        }
        # A unique temp name: two trainings started together both build the cache; neither may rename the
        # other's half-written file.
        with atomic_path(cache_file) as tmp:
            np.savez(tmp, **arrays)
    return data


def _splits(parts: dict[str, tuple[list, list, list]], source: Path) -> FER2013:
    out = {}
    for usage in USAGES:
        images, labels, keys = parts[usage]
        arr = np.stack(images).astype(np.uint8) if images else np.zeros((0, SIDE, SIDE), np.uint8)
        out[SPLIT_OF_USAGE[usage]] = Split(arr, np.asarray(labels, dtype=np.int64), np.asarray(keys, dtype=str))
    if len(out["train"]) == 0:
        raise DatasetError(f"{source}: no Training images found")
    return FER2013(out["train"], out["val"], out["test"], source=str(source))


def read_csv(path: str | os.PathLike) -> FER2013:
    """Parse Kaggle's ``fer2013.csv`` (``emotion,pixels,Usage``)."""
    path = Path(path)
    parts: dict[str, tuple[list, list, list]] = {u: ([], [], []) for u in USAGES}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: file is empty")
            cols = [h.strip() for h in header]
            if not {"emotion", "pixels", "Usage"} <= set(cols):
                raise DatasetError(f"{path}: header must contain emotion,pixels,Usage (got {','.join(cols)})")
            ie, ip, iu = cols.index("emotion"), cols.index("pixels"), cols.index("Usage")
            data_row = -1  # 0-based row among the data rows: fer2013new.csv (FER+) lines up with it
            for row_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                data_row += 1
                where = f"{path}:{row_no}"
                if len(row) < len(cols):
                    raise DatasetError(f"{where}: expected {len(cols)} columns, got {len(row)}")
                label, usage = row[ie].strip(), row[iu].strip()
                if usage not in parts:
                    raise DatasetError(f"{where}: unknown Usage {usage!r}; expected one of {', '.join(USAGES)}")
                if not label.isdigit() or int(label) >= len(EMOTIONS):
                    raise DatasetError(f"{where}: unknown emotion label {label!r}; expected 0-{len(EMOTIONS) - 1}")
                try:
                    pixels = np.array(row[ip].split(), dtype=np.int32)
                except ValueError:
                    raise DatasetError(f"{where}: pixels must be integers 0-255") from None
                if pixels.size != SIDE * SIDE:
                    raise DatasetError(f"{where}: expected {SIDE * SIDE} pixels, got {pixels.size}")
                if pixels.min() < 0 or pixels.max() > 255:
                    raise DatasetError(f"{where}: pixel values must be 0-255")
                parts[usage][0].append(pixels.reshape(SIDE, SIDE))
                parts[usage][1].append(int(label))
                parts[usage][2].append(f"row:{data_row}")
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text CSV file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    return _splits(parts, path)


def decode_gray(path: Path) -> np.ndarray:
    """Decode one face image to a 48x48 uint8 array; resizes other sizes, raises DatasetError if unreadable."""
    import cv2

    try:
        buf = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode handles unicode paths
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    if img.shape != (SIDE, SIDE):
        img = cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    return img


def _usage_of(name: str, top: str) -> str | None:
    for usage in USAGES:
        if name.startswith(usage + "_"):
            return usage
    # Files without a Kaggle prefix: train/ is Training; test/ cannot be split, so it is the test split.
    return {"train": "Training", "test": "PrivateTest"}.get(top)


def read_folder(root: str | os.PathLike) -> FER2013:
    """Read the Kaggle image-folder layout ``{train,test}/<emotion>/*.jpg``.

    ``test/`` files named ``PublicTest_*`` are validation and ``PrivateTest_*`` the test split, as in the CSV.
    """
    root = Path(root)
    tops = [d for d in ("train", "test") if (root / d).is_dir()]
    if "train" not in tops:
        raise DatasetError(f"{root}: expected a train/ folder (Kaggle layout train/<emotion>/*.jpg)")
    entries: list[tuple[str, Path, int, str]] = []
    for top in tops:
        try:
            class_dirs = sorted(p for p in (root / top).iterdir() if p.is_dir())
        except OSError as e:
            raise DatasetError(f"{root / top}: cannot list ({e.strerror or e})") from None
        for d in class_dirs:
            if d.name.lower() not in EMOTIONS:
                raise DatasetError(f"{d}: unknown emotion folder; expected one of {', '.join(EMOTIONS)}")
        for d in class_dirs:
            label = EMOTIONS.index(d.name.lower())
            try:
                files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as e:
                raise DatasetError(f"{d}: cannot list ({e.strerror or e})") from None
            entries += [(f.name, f, label, _usage_of(f.name, top)) for f in files]
    # Sort by file name across classes: Kaggle's names carry random ids, so any prefix (--limit N) holds every
    # class in its natural proportion instead of N angry faces, as a class-by-class order would give.
    parts: dict[str, tuple[list, list, list]] = {u: ([], [], []) for u in USAGES}
    for _, f, label, usage in sorted(entries, key=lambda e: (e[0], e[2])):
        parts[usage][0].append(decode_gray(f))
        parts[usage][1].append(label)
        parts[usage][2].append(f.relative_to(root).as_posix())
    return _splits(parts, root)


def main(argv: list[str] | None = None) -> int:
    """Print split sizes and class counts: a quick check that a data path is readable."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m training.datasets",
        description="Read FER2013 (CSV or Kaggle folders), cache it, and print split sizes and class counts.",
        epilog="example: python -m training.datasets ../shared/data/fer2013",
    )
    p.add_argument("data", help="fer2013.csv or a folder with train/<emotion>/ and test/<emotion>/")
    p.add_argument("--no-cache", action="store_true", help="parse the source again instead of using the .npz cache")
    args = p.parse_args(argv)
    try:
        data = load_fer2013(args.data, cache=not args.no_cache)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name in ("train", "val", "test"):
        s = data.split(name)
        counts = np.bincount(s.labels, minlength=len(EMOTIONS))
        print(f"{name:5s} {len(s):6d}  " + "  ".join(f"{e}={c}" for e, c in zip(EMOTIONS, counts, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
