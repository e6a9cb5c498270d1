"""FER+ votes (Barsoum et al., ICMI 2016): ten people's labels for every FER2013 image, as a second truth and
as a training target.

FER2013's own label is one person's guess; on PrivateTest it equals the ten-person FER+ majority on only
65.6% of the faces that have one. This module reads the votes in either published form and turns them into
what training and evaluation need, always in the app's seven-class order (``app.core.EMOTIONS``):

- ``ferplus_votes.csv`` (``file,usage,ferplus_image,match_distance,<10 vote columns>``): the votes attached
  to the files of the Kaggle image-folder layout; files with no match have no FER+ label.
- ``fer2013new.csv`` (``Usage,Image name,<10 vote columns>``): Microsoft's file as published, whose rows line
  up one to one with Kaggle's ``fer2013.csv``; rows with an empty ``Image name`` are FER+'s not-a-face images.

Rules (``majority``), the issue's definition: the top vote among all ten columns must be one of the seven
emotions and unique; faces whose top vote is contempt, unknown or not-a-face, or a tie for the top, have no
majority and are left out of training and evaluation alike. ``contempt="disgust"`` folds contempt votes into
disgust first (the alternative measured against dropping them). The evaluation truth is always the issue's
definition (contempt dropped), so two trainings that treat contempt differently are scored on the same faces.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core import EMOTIONS
from training.datasets import DatasetError, Split

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                "NF")
# FER+ column -> index in EMOTIONS, for the seven columns FER2013 also has.
EMOTION_COLUMN = {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5, "neutral": 6}
CONTEMPT, UNKNOWN, NOT_FACE = 7, 8, 9  # indices of the other columns in canonical vote order (below)
LABEL_SOURCES = ("fer2013", "ferplus-majority", "ferplus-soft")
CONTEMPT_RULES = ("drop", "disgust")
LABELS_HELP = ("fer2013 (the original one-person labels), ferplus-majority (the FER+ ten-person majority; faces "
               "without one are left out) or ferplus-soft (the FER+ vote distribution as the target)")


def canonical(votes_in_file_order: np.ndarray) -> np.ndarray:
    """Votes reordered to EMOTIONS' seven columns, then contempt, unknown, not-a-face (float32 [N,10])."""
    v = np.asarray(votes_in_file_order, dtype=np.float32)
    out = np.zeros_like(v)
    for col, idx in EMOTION_COLUMN.items():
        out[:, idx] = v[:, VOTE_COLUMNS.index(col)]
    out[:, CONTEMPT] = v[:, VOTE_COLUMNS.index("contempt")]
    out[:, UNKNOWN] = v[:, VOTE_COLUMNS.index("unknown")]
    out[:, NOT_FACE] = v[:, VOTE_COLUMNS.index("NF")]
    return out


@dataclass(frozen=True)
class Votes:
    """Votes keyed as ``Split.keys`` are (``row:<n>`` or a relative file path); a key absent has no label."""

    by_key: dict[str, np.ndarray]  # key -> float32 [10] in canonical order; all zeros when FER+ has no label
    source: str

    def for_split(self, split: Split) -> np.ndarray:
        """float32 [N,10] canonical votes for the split's rows; all zeros where FER+ has no label."""
        if split.keys is None:
            raise DatasetError("this data has no row keys to attach FER+ votes to (load it with "
                               "training.datasets.load_fer2013)")
        out = np.zeros((len(split), 10), np.float32)
        found = 0
        for i, key in enumerate(split.keys):
            v = self.by_key.get(str(key))
            if v is not None:
                out[i] = v
                found += 1
        if len(split) and found == 0:
            kind = "fer2013.csv rows" if str(split.keys[0]).startswith("row:") else "image files"
            raise DatasetError(f"{self.source}: no FER+ votes match these {kind}; use fer2013new.csv with "
                               "fer2013.csv and ferplus_votes.csv with the image-folder layout")
        return out


def read_votes(path: str | os.PathLike) -> Votes:
    """Read ``ferplus_votes.csv`` or ``fer2013new.csv`` (told apart by their header)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise DatasetError(f"{path}: file is empty")
            missing = [c for c in VOTE_COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"{path}: not a FER+ votes file (no column {', '.join(missing)})")
            vote_idx = [header.index(c) for c in VOTE_COLUMNS]
            if "file" in header:  # ferplus_votes.csv: keyed by file, the FER+ image name empty when unmatched
                key_idx, name_idx, by_row = header.index("file"), header.index("ferplus_image"), False
            elif "Image name" in header:  # fer2013new.csv: keyed by row, the image name empty for non-faces
                key_idx, name_idx, by_row = -1, header.index("Image name"), True
            else:
                raise DatasetError(f"{path}: expected a 'file' column (ferplus_votes.csv) or 'Image name' "
                                   "(fer2013new.csv)")
            keys, rows = [], []
            for n, row in enumerate(reader):
                where = f"{path}:{n + 2}"
                if len(row) < len(header):
                    raise DatasetError(f"{where}: expected {len(header)} columns, got {len(row)}")
                if not row[name_idx].strip():
                    rows.append([0.0] * len(VOTE_COLUMNS))  # no FER+ label (FER+ found no face): known, no votes
                else:
                    try:
                        rows.append([float(row[i]) for i in vote_idx])
                    except ValueError:
                        raise DatasetError(f"{where}: vote counts must be numbers") from None
                keys.append(f"row:{n}" if by_row else row[key_idx].strip())
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text CSV file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    votes = canonical(np.array(rows, np.float32).reshape(-1, len(VOTE_COLUMNS)))
    return Votes(dict(zip(keys, votes, strict=True)), str(path))


def has_label(votes: np.ndarray) -> np.ndarray:
    """Rows FER+ labelled at all (unmatched files and FER+'s own not-a-face rows have no votes)."""
    return votes.sum(axis=1) > 0


def not_a_face(votes: np.ndarray) -> np.ndarray:
    """Rows FER+ marks as not a face: no FER+ label at all, or not-a-face holds the most votes (ties included)."""
    return ~has_label(votes) | (votes[:, NOT_FACE] >= votes.max(axis=1))


def _fold(votes: np.ndarray, contempt: str) -> np.ndarray:
    if contempt not in CONTEMPT_RULES:
        raise ValueError(f"contempt must be one of {', '.join(CONTEMPT_RULES)}")
    if contempt == "drop":
        return votes
    out = votes.copy()
    out[:, EMOTIONS.index("disgust")] += out[:, CONTEMPT]
    out[:, CONTEMPT] = 0
    return out


def majority(votes: np.ndarray, contempt: str = "drop") -> np.ndarray:
    """The majority label (int64 [N]) in EMOTIONS order, -1 where there is none (top vote not one of the
    seven emotions, a tie for the top, or no votes)."""
    v = _fold(votes, contempt)
    top = v.max(axis=1, keepdims=True)
    unique = (v == top).sum(axis=1) == 1
    arg = v.argmax(axis=1)
    ok = unique & (arg < len(EMOTIONS)) & (top[:, 0] > 0)
    return np.where(ok, arg, -1).astype(np.int64)


def distribution(votes: np.ndarray, contempt: str = "drop") -> np.ndarray:
    """The vote distribution over the seven emotions (float32 [N,7], rows summing to 1; zeros where no one
    voted for any of the seven): Barsoum et al.'s "probability" target."""
    v = _fold(votes, contempt)[:, : len(EMOTIONS)]
    total = v.sum(axis=1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0).astype(np.float32)


@dataclass(frozen=True)
class Targets:
    """A split's training or validation targets under one label source: the rows kept (bool [N]), their hard
    labels (int64 [N], -1 where not kept) and, for ``ferplus-soft``, the vote distribution (float32 [N,7])."""

    keep: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None = None


def targets(split: Split, votes: Votes | None, source: str = "fer2013", contempt: str = "drop",
            drop_nonfaces: bool = True) -> Targets:
    """What a split is trained (or validated) against.

    ``fer2013`` keeps the original labels; with FER+ votes given, images FER+ marks as not a face leave the
    set unless ``drop_nonfaces`` is False. ``ferplus-majority`` keeps the faces with a majority. ``ferplus-soft``
    keeps every face with emotion votes and adds their vote distributions as soft targets.
    """
    if source not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_SOURCES)}")
    if votes is None:
        if source != "fer2013":
            raise ValueError(f"labels {source} need the FER+ votes (--ferplus PATH)")
        return Targets(np.ones(len(split), bool), split.labels.astype(np.int64))
    v = votes.for_split(split)
    if source == "fer2013":
        keep = ~not_a_face(v) if drop_nonfaces else np.ones(len(split), bool)
        return Targets(keep, np.where(keep, split.labels, -1).astype(np.int64))
    if source == "ferplus-majority":
        hard = majority(v, contempt)
        return Targets(hard >= 0, hard)
    # Soft targets keep every face with emotion votes, ties and an "unknown" top included: their distribution
    # is still a target, which is the point of the probability scheme. The hard label is its top class.
    soft = distribution(v, contempt)
    keep = soft.sum(axis=1) > 0
    if drop_nonfaces:
        keep &= ~not_a_face(v)
    return Targets(keep, np.where(keep, soft.argmax(axis=1), -1).astype(np.int64), soft)


def truth(split: Split, votes: Votes) -> np.ndarray:
    """The FER+ evaluation truth of a split: the majority with contempt dropped (-1 where none)."""
    return majority(votes.for_split(split), "drop")


def truth_split(split: Split, votes: Votes) -> Split:
    """The split's faces that have a FER+ majority, labelled with it: what "accuracy against FER+" counts."""
    y = truth(split, votes)
    kept = split.take(y >= 0)
    return Split(kept.images, y[y >= 0], kept.keys)


def truth_distribution(split: Split, votes: Votes) -> np.ndarray:
    """The vote distributions (float32 [M,7], contempt dropped) of :func:`truth_split`'s faces, row for row:
    what KL(votes || predicted) is measured against."""
    v = votes.for_split(split)
    return distribution(v, "drop")[majority(v, "drop") >= 0]
