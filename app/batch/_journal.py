"""The batch's outputs and how they survive a crash: labels.csv, the resume journal and summary.json.

Each image's rows are appended to labels.csv and flushed to the OS before its line is appended to the
journal (``.progress.jsonl``), so a kill (even ``kill -9``) at any moment leaves every finished image both
in labels.csv and in the journal, and at most the image in progress with rows but no journal line; on
``--resume`` those rows are dropped and the image is labelled again: every image exactly once. A write that
fails (disk full) is rolled back to the image's start before the error propagates, so what was written
before stays valid. summary.json is replaced atomically.

File names are arbitrary bytes on POSIX: Python hands names that are not UTF-8 over as lone surrogates
("surrogateescape"), which labels.csv stores back as the original bytes (so ``csv.reader`` with
``errors="surrogateescape"`` gives the same path back) and the JSON files store as ``\\udcXX`` escapes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.batch._scan import ANNOTATED, EXPLAINED, Scan
from app.core import EmotionLensError, key, write_all, write_bytes, write_text
from app.detect import DETECTORS
from app.outputs import ENCODING, ERRORS, JOURNAL, LABELS, SUMMARY, csv_text, json_text, read_rows

if TYPE_CHECKING:
    from app.models import Labeler

FSYNC_EVERY_S = 2.0  # flush to the OS per image (enough for a kill); to the disk (power loss) this often


class UsageError(EmotionLensError):
    """A problem with the command line or its environment (missing zoo, bad --out): exit status 2."""












def read_journal(path: Path) -> dict[str, dict]:
    """Finished images by key from a previous run's journal; a torn last line (killed mid-write) is ignored."""
    done: dict[str, dict] = {}
    try:
        lines = path.read_text(encoding=ENCODING, errors=ERRORS).splitlines()
    except FileNotFoundError:
        return done
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "key" in rec:
            done[rec["key"]] = rec
    return done


# The options that change labels: one labels.csv must not mix two ways of labelling. key -> (flag, what).
RESUME_SETTINGS = {"eye_check": "the eye check", "tta": "flip TTA", "detector": "the detector",
                   "detect_every": "--detect-every", "smooth_s": "--smooth", "fps": "--fps"}


def check_resume_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse to resume a run labelled with other options (--tta, --no-eye-check, --detector).

    The earlier run's options come from its summary.json (written at the end and on Ctrl+C); without one there
    is nothing to compare, and the resume goes ahead as before.
    """
    try:
        previous = json.loads((out_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(previous, dict):
        return

    def say(v: object) -> str:
        return ("on" if v else "off") if isinstance(v, bool) else repr(v)

    for k, what in RESUME_SETTINGS.items():
        if k in previous and k in settings and previous[k] != settings[k]:
            raise UsageError(
                f"--resume: {out_dir} was labelled with {what} {say(previous[k])}, this run has it "
                f"{say(settings[k])}; resume with the same options, or choose another --out"
            )


def prepare_outputs(out_dir: Path, header: list[str], resume: bool) -> dict[str, dict]:
    """Start labels.csv and the journal afresh, or on resume keep what the last run finished; return that.

    An image with rows but no journal line was cut off mid-write: on resume its rows are dropped and it is
    labelled again. Failed images are dropped from the journal too, so a resumed run tries them again.
    """
    labels, journal = out_dir / LABELS, out_dir / JOURNAL
    done: dict[str, dict] = {}
    kept: list[list[str]] = [header]
    if resume:
        rows: list[list[str]] = []
        if labels.exists():
            try:
                rows = read_rows(labels)
            except OSError as e:
                raise UsageError(f"{labels}: cannot read it to resume ({e.strerror or e})") from None
            if rows and rows[0] != header:
                raise UsageError(
                    f"{labels}: written with other models ({', '.join(rows[0][6:-2:2])}); resume with the same "
                    "--zoo or choose a new --out"
                )
        complete = [r for r in rows[1:] if len(r) == len(header)]
        if journal.exists():
            done = {k: v for k, v in read_journal(journal).items() if not v.get("error")}
        else:  # labels.csv without a journal (written by another tool): trust its complete rows
            for r in complete:
                rec = done.setdefault(key(r[0]), {"key": key(r[0]), "image": r[0], "faces": 0, "error": None})
                rec["faces"] += 1
        kept += [r for r in complete if key(r[0]) in done]
    write_bytes(labels, csv_text(kept).encode(ENCODING, ERRORS))
    write_bytes(journal, "".join(json.dumps(v) + "\n" for v in done.values()).encode("ascii"))
    return done






class OutputWriter:
    """Appends finished images to labels.csv and the journal (both made by :func:`prepare_outputs`).

    Unbuffered file descriptors: each image costs two ``write`` calls, and a failed write can be rolled back
    with ``ftruncate`` (which frees space and never needs it) without a buffer trying to flush first.
    """

    def __init__(self, out_dir: Path) -> None:
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
        self._labels = os.open(out_dir / LABELS, flags)
        try:
            self._journal = os.open(out_dir / JOURNAL, flags)
        except BaseException:
            os.close(self._labels)
            raise
        self._synced = time.monotonic()

    def add(self, rec: dict, rows: list[list[Any]]) -> None:
        """Rows then journal line; on any failure both files are cut back to where this image began."""
        start_l, start_j = os.fstat(self._labels).st_size, os.fstat(self._journal).st_size
        try:
            write_all(self._labels, csv_text(rows).encode(ENCODING, ERRORS))
            write_all(self._journal, (json.dumps(rec) + "\n").encode("ascii"))
        except BaseException:
            for fd, start in ((self._labels, start_l), (self._journal, start_j)):
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
            raise
        if time.monotonic() - self._synced > FSYNC_EVERY_S:
            self.sync()

    def sync(self) -> None:
        for fd in (self._labels, self._journal):
            os.fsync(fd)
        self._synced = time.monotonic()

    def close(self) -> None:
        try:
            self.sync()
        finally:
            for fd in (self._labels, self._journal):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # already failing: close without raising a second error over the first
            with contextlib.suppress(OSError):
                self.close()


_TMP_NAME = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp(\.[^.]+)?$")  # what app.core._atomic leaves


def remove_stale_temp_files(out_dir: Path) -> int:
    """Delete temp files a killed run left in DIR, DIR/annotated/ and DIR/explained/ (never anything else)."""
    n = 0
    candidates = list(out_dir.glob(".*.tmp*"))
    for sub in (ANNOTATED, EXPLAINED):
        if (out_dir / sub).is_dir():
            candidates += list((out_dir / sub).rglob(".*.tmp*"))
    for p in candidates:
        if p.is_file() and _TMP_NAME.match(p.name):
            p.unlink(missing_ok=True)
            n += 1
    return n


@dataclass(frozen=True)
class RunSettings:
    """How a run labelled, as summary.json records it: the batch command's options, or the window's."""

    eye_check: bool = True
    tta: bool = False
    explain: bool = False
    detector: str = DETECTORS[0]
    workers: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings of ``python -m app.batch``'s parsed command line."""
        return cls(eye_check=not args.no_eye_check, tta=bool(args.tta), explain=bool(args.explain),
                   detector=args.detector or DETECTORS[0], workers=int(args.workers or 1))


def write_summary(
    out_dir: Path,
    scan: Scan,
    done: dict[str, dict],
    this_run: list[dict],
    labeler: Labeler,
    settings: RunSettings,
    seconds: float,
    interrupted: bool,
    extra: dict | None = None,
) -> dict:
    """summary.json over everything labelled in this folder (earlier resumed runs included), atomically."""
    current = {key(it.path) for it in scan.items}
    records = {k: v for k, v in done.items() if k in current}
    records.update({r["key"]: r for r in this_run})
    ok = [r for r in records.values() if not r.get("error")]
    summary = {
        "images": len(scan.items),
        "done": len(records),
        "labelled": sum(1 for r in ok if r["faces"] > 0),
        "faces": sum(r["faces"] for r in ok),
        "no_face": sorted(r["image"] for r in ok if r["faces"] == 0),
        "errors": [{"image": r["image"], "reason": r["error"]} for r in records.values() if r.get("error")]
        + scan.errors,
        "skipped": scan.skipped,
        "annotate_errors": [{"image": r["image"], "reason": r["annotate_error"]} for r in ok if "annotate_error" in r],
        "explain_errors": [{"image": r["image"], "reason": r["explain_error"]} for r in ok if "explain_error" in r],
        "resumed": len([k for k in done if k in current]),
        "interrupted": interrupted,
        "seconds": round(seconds, 3),
        **dataclasses.asdict(settings),
        "models": [m.name for m in labeler.models],
        "zoo": str(labeler.zoo_dir),
        "trained_on": labeler.label_source,  # which truth the labels follow: FER2013's labels or the FER+ votes
        **(extra or {}),
    }
    write_text(out_dir / SUMMARY, json_text(summary, indent=2) + "\n")
    return summary
