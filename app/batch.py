"""Label every face in files and folders of photos: ``python -m app.batch INPUT... --out DIR``.

Writes ``DIR/labels.csv`` (one row per face), ``DIR/summary.json`` and, with ``--annotate``, annotated copies
under ``DIR/annotated/`` mirroring the input tree. Built for long unattended runs: a bad file costs one line
of output, never the run; labels.csv grows image by image so a kill loses at most the image in progress, and
``--resume`` picks up where the last run stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from app.atomic import write_text
from app.imageio import IMAGE_SUFFIXES, ImageError, load_image
from app.zoo import ZOO_ENV, ModelInfo, ZooError

PROG = "python -m app.batch"
LABELS = "labels.csv"
SUMMARY = "summary.json"
ANNOTATED = "annotated"
JOURNAL = ".progress.jsonl"  # one line per finished image; what --resume trusts
# Annotated copies keep the original's format, except where saving that format would lose colour or fail.
ANNOTATED_AS_PNG = {".gif", ".pgm", ".ppm"}

if TYPE_CHECKING:
    from app.labeler import Labeler

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


class UsageError(Exception):
    """A problem with the command line or its environment (missing zoo, bad --out): exit status 2."""


@dataclass
class Item:
    """One image to label: ``path`` as the user will recognise it, ``rel`` its place under annotated/."""

    path: Path
    rel: Path


@dataclass
class Scan:
    items: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # non-image files: {path, reason}
    errors: list[dict[str, str]] = field(default_factory=list)  # unreadable folders: {image, reason}


def csv_header(models: Iterable[ModelInfo]) -> list[str]:
    """``image, face, x, y, w, h``, then ``<model>_label, <model>_confidence`` per model, then the ensemble."""
    cols = ["image", "face", "x", "y", "w", "h"]
    for m in models:
        cols += [f"{m.name}_label", f"{m.name}_confidence"]
    return cols + ["ensemble_label", "ensemble_confidence"]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def scan_inputs(inputs: list[Path], out_dir: Path, recursive: bool) -> Scan:
    """Expand files and folders into images (sorted, deduplicated), never descending into ``out_dir``.

    ``out_dir`` may sit inside an input folder (or be it): its annotated/ copies must never be re-labelled.
    """
    scan = Scan()
    seen: set[Path] = set()
    used_rels: set[Path] = set()
    out_res = out_dir.resolve()
    skip_dirs = {out_res / ANNOTATED}

    def add(path: Path, rel: Path, root_name: str) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        if rel in used_rels:  # two inputs with the same relative layout: keep their copies apart
            rel = Path(root_name) / rel
            n = 2
            while rel in used_rels:
                rel = rel.with_name(f"{rel.stem} ({n}){rel.suffix}")
                n += 1
        used_rels.add(rel)
        scan.items.append(Item(path, rel))

    for inp in inputs:
        if inp.is_dir():
            stack = [inp]
            while stack:
                folder = stack.pop()
                try:
                    entries = sorted(folder.iterdir(), key=lambda p: p.name)
                except OSError as e:
                    reason = "cannot list folder (permission denied)" if isinstance(e, PermissionError) else (
                        f"cannot list folder ({e.strerror or e})"
                    )
                    scan.errors.append({"image": str(folder), "reason": reason})
                    continue
                subdirs = []
                for p in entries:
                    try:
                        is_dir = p.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        res = p.resolve()
                        if res == out_res or res in skip_dirs or p.is_symlink():
                            continue  # our own output, or a link that could loop
                        if recursive:
                            subdirs.append(p)
                        continue
                    if folder.resolve() == out_res and p.name in (LABELS, SUMMARY):
                        continue  # our own outputs, when --out is the input folder itself
                    if p.suffix.lower() in IMAGE_SUFFIXES:
                        add(p, p.relative_to(inp), inp.name or "input")
                    elif not p.name.startswith("."):
                        reason = f"not an image type ({p.suffix or 'no suffix'})"
                        scan.skipped.append({"path": str(p), "reason": reason})
                stack.extend(reversed(subdirs))
        else:  # an explicit file is tried whatever its suffix: load_image says clearly if it is not an image
            add(inp, Path(inp.name), inp.parent.name or "input")
    return scan


def annotated_path(out_dir: Path, item: Item) -> Path:
    rel = item.rel
    if rel.suffix.lower() in ANNOTATED_AS_PNG or rel.suffix.lower() not in IMAGE_SUFFIXES:
        rel = rel.with_name(rel.name + ".png")
    return out_dir / ANNOTATED / rel


def _read_journal(path: Path) -> dict[str, dict]:
    """Finished images by key from a previous run's journal; a torn last line (killed mid-write) is ignored."""
    done: dict[str, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
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


def _key(path: Path | str) -> str:
    return os.path.abspath(os.fspath(path))


def _csv_text(rows: list[list[str]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def check_resume_settings(out_dir: Path, settings: dict[str, bool]) -> None:
    """Refuse to resume a run labelled with other options: one labels.csv must not mix two ways of labelling.

    The earlier run's options come from its summary.json (written at the end and on Ctrl+C); without one there
    is nothing to compare, and the resume goes ahead as before.
    """
    try:
        previous = json.loads((out_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(previous, dict):
        return
    described = {"eye_check": "the eye check", "tta": "flip TTA"}  # the options --no-eye-check and --tta
    for key, what in described.items():
        if key in previous and previous[key] != settings[key]:
            raise UsageError(
                f"--resume: {out_dir} was labelled with {what} {'on' if previous[key] else 'off'}, this run has it "
                f"{'on' if settings[key] else 'off'}; resume with the same options, or choose another --out"
            )


def prepare_outputs(out_dir: Path, header: list[str], resume: bool) -> dict[str, dict]:
    """Start labels.csv and the journal afresh, or on resume keep what the last run finished; return that.

    Each image's rows are appended and flushed before its journal line, so an image with rows but no journal
    line was cut off mid-write: on resume its rows are dropped and it is labelled again. Failed images are
    dropped from the journal too, so a resumed run tries them again.
    """
    labels, journal = out_dir / LABELS, out_dir / JOURNAL
    done: dict[str, dict] = {}
    kept: list[list[str]] = [header]
    if resume:
        rows: list[list[str]] = []
        if labels.exists():
            try:
                with open(labels, encoding="utf-8", newline="") as f:
                    rows = list(csv.reader(f))
            except (OSError, UnicodeDecodeError, csv.Error) as e:
                raise UsageError(f"{labels}: cannot read it to resume ({e})") from None
            if rows and rows[0] != header:
                raise UsageError(
                    f"{labels}: written with other models ({', '.join(rows[0][6:-2:2])}); resume with the same "
                    "--zoo or choose a new --out"
                )
        complete = [r for r in rows[1:] if len(r) == len(header)]
        if journal.exists():
            done = {k: v for k, v in _read_journal(journal).items() if not v.get("error")}
        else:  # labels.csv without a journal (written by another tool): trust its complete rows
            for r in complete:
                rec = done.setdefault(_key(r[0]), {"key": _key(r[0]), "image": r[0], "faces": 0, "error": None})
                rec["faces"] += 1
        kept += [r for r in complete if _key(r[0]) in done]
    write_text(labels, _csv_text(kept))
    write_text(journal, "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in done.values()))
    return done


_TMP_NAME = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp(\.[^.]+)?$")  # what app.atomic leaves


def remove_stale_temp_files(out_dir: Path) -> int:
    """Delete temp files a killed run left in DIR and DIR/annotated/ (never anything else)."""
    n = 0
    candidates = list(out_dir.glob(".*.tmp*"))
    if (out_dir / ANNOTATED).is_dir():
        candidates += list((out_dir / ANNOTATED).rglob(".*.tmp*"))
    for p in candidates:
        if p.is_file() and _TMP_NAME.match(p.name):
            p.unlink(missing_ok=True)
            n += 1
    return n


def _fmt(p: float) -> str:
    return f"{p:.4f}"


class _StopFlag:
    """First Ctrl+C: finish the current image, save, stop. Second Ctrl+C: stop at once (still saving)."""

    def __init__(self) -> None:
        self.stop = False
        self._old = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\nstopping after the current image (Ctrl+C again to stop now)…", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run(args: argparse.Namespace) -> int:
    """The batch job; raises UsageError for problems that make the run impossible before it starts."""
    t_start = time.perf_counter()
    inputs = [Path(p) for p in args.inputs]
    missing = [str(p) for p in inputs if not os.path.lexists(p)]
    if missing:
        raise UsageError(f"input not found: {', '.join(missing)}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out_dir}: cannot create folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: folder is not writable")

    from app.labeler import Labeler  # after the cheap checks: loading the models takes a moment

    try:
        labeler = Labeler(zoo_dir=args.zoo, threads=args.threads)
    except ZooError as e:
        raise UsageError(str(e)) from None
    header = csv_header(labeler.models)

    scan = scan_inputs(inputs, out_dir, args.recursive)
    if args.annotate:
        originals = {it.path.resolve() for it in scan.items}
        for it in scan.items:
            target = annotated_path(out_dir, it).resolve()
            if target in originals:
                raise UsageError(
                    f"--out {out_dir}: the annotated copy of {it.path} would overwrite the input image {target}; "
                    "choose another --out"
                )
    if not args.resume and (out_dir / LABELS).is_file() and (out_dir / LABELS).stat().st_size > 0:
        print(f"note: starting {out_dir / LABELS} afresh (add --resume to continue it instead)", file=sys.stderr)
    remove_stale_temp_files(out_dir)
    if args.resume:
        check_resume_settings(out_dir, {"eye_check": not args.no_eye_check, "tta": args.tta})
    done = prepare_outputs(out_dir, header, args.resume)
    resumed = sum(1 for it in scan.items if _key(it.path) in done)
    to_go = len(scan.items) - resumed

    for e in scan.errors:
        print(f"skipped: {e['image']}: {e['reason']}", file=sys.stderr)
    if scan.skipped:
        print(f"skipped {len(scan.skipped)} non-image file(s); listed in {out_dir / SUMMARY}", file=sys.stderr)
    if resumed:
        print(f"resuming: {resumed} image(s) already done, {to_go} to go", file=sys.stderr)

    from tqdm import tqdm

    with (
        _StopFlag() as flag,
        tqdm(total=to_go, unit="img", desc="labelling", file=sys.stderr, dynamic_ncols=True) as bar,
    ):
        this_run, interrupted = label_items(
            labeler, scan.items, out_dir,
            eye_check=not args.no_eye_check,
            tta=args.tta,
            annotate=args.annotate,
            done=done,
            should_stop=lambda: flag.stop,
            progress=lambda i, n, name: bar.update(i - bar.n),
            log=lambda msg: bar.write(msg, file=sys.stderr),
        )
    summary = write_summary(out_dir, scan, done, this_run, labeler, args, time.perf_counter() - t_start, interrupted)
    print(
        f"{summary['labelled']} of {summary['images']} image(s) labelled, {summary['faces']} face(s); "
        f"{len(summary['no_face'])} without a face, {len(summary['errors'])} error(s) -> {out_dir / LABELS}"
    )
    if interrupted:
        print(f"interrupted: rerun the same command with --resume to label the remaining "
              f"{summary['images'] - summary['done']} image(s)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def label_items(
    labeler: Labeler,
    items: Iterable[Item],
    out_dir: Path,
    *,
    eye_check: bool = True,
    tta: bool = False,
    annotate: bool = True,
    done: Mapping[str, dict] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int, str], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict], bool]:
    """Label ``items`` into ``out_dir``'s labels.csv and journal (both made by ``prepare_outputs``, appended to).

    The one labelling loop of the batch CLI and the GUI's folder batch. Items already in ``done`` (a resumed
    run) are skipped. ``should_stop`` is asked before each image; ``progress(i, n, name)`` is told before each
    image and once at the end (``name`` ""); ``log`` gets one line per skipped image or failed annotated copy.
    A KeyboardInterrupt mid-image drops that image's rows and stops. Returns this run's journal records and
    whether it stopped before the end.
    """
    todo = [it for it in items if not done or _key(it.path) not in done]
    display_names = {m.name: m.display_name for m in labeler.models}
    records: list[dict] = []
    stopped = False
    with (
        open(out_dir / LABELS, "a", encoding="utf-8", newline="") as labels_f,
        open(out_dir / JOURNAL, "a", encoding="utf-8") as journal_f,
    ):
        writer = csv.writer(labels_f, lineterminator="\n")
        pending: int | None = None  # labels.csv size before the image in progress
        try:
            for i, it in enumerate(todo):
                if should_stop():
                    stopped = True
                    break
                if progress is not None:
                    progress(i, len(todo), it.path.name)
                pending = labels_f.tell()
                rec = _label_one(
                    it, labeler, out_dir, writer, labels_f,
                    eye_check=eye_check, tta=tta, annotate=annotate, display_names=display_names, log=log,
                )
                journal_f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                journal_f.flush()
                pending = None
                records.append(rec)
        except KeyboardInterrupt:
            stopped = True
            if pending is not None:  # drop the half-written image's rows; --resume redoes it
                labels_f.flush()
                labels_f.truncate(pending)
    if progress is not None:
        progress(len(records), len(todo), "")
    return records, stopped


def _label_one(
    it: Item,
    labeler: Labeler,
    out_dir: Path,
    writer: Any,
    labels_f: TextIO,
    *,
    eye_check: bool,
    tta: bool,
    annotate: bool,
    display_names: dict[str, str],
    log: Callable[[str], None] | None,
) -> dict:
    """Label one image and append its rows; an ImageError becomes an error record, not an exception."""
    say = log or (lambda _msg: None)
    rec: dict = {"key": _key(it.path), "image": str(it.path), "faces": 0, "error": None}
    try:
        rgb = load_image(it.path)
        result = labeler.label_image(rgb, eye_check=eye_check, path=it.path, tta=tta)
    except ImageError as e:
        rec["error"] = e.reason
        say(f"skipped: {it.path}: {e.reason}")
        return rec
    except MemoryError:
        rec["error"] = "not enough memory to label this image"
        say(f"skipped: {it.path}: {rec['error']}")
        return rec
    if annotate:
        from app import annotate as ann

        target = annotated_path(out_dir, it)
        try:
            ann.save_image(ann.annotate(rgb, result, display_names), target)
        except (OSError, ValueError) as e:
            rec["annotate_error"] = f"cannot write {target} ({getattr(e, 'strerror', None) or e})"
            say(f"warning: {it.path}: {rec['annotate_error']}")
    for f in result.faces:
        b = f.box
        row = [str(it.path), f.index, b.x, b.y, b.w, b.h]
        for m in labeler.models:
            p = f.predictions[m.name]
            row += [p.label, _fmt(p.confidence)]
        writer.writerow(row + [f.ensemble.label, _fmt(f.ensemble.confidence)])
    labels_f.flush()
    os.fsync(labels_f.fileno())
    rec["faces"] = len(result.faces)
    rec["seconds"] = round(result.seconds, 4)
    return rec


def write_summary(
    out_dir: Path,
    scan: Scan,
    done: dict[str, dict],
    this_run: list[dict],
    labeler: Labeler,
    args: argparse.Namespace,
    seconds: float,
    interrupted: bool,
) -> dict:
    """summary.json over everything labelled in this folder (earlier resumed runs included), atomically."""
    current = {_key(it.path) for it in scan.items}
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
        "resumed": len([k for k in done if k in current]),
        "interrupted": interrupted,
        "seconds": round(seconds, 3),
        "eye_check": not args.no_eye_check,
        "tta": bool(getattr(args, "tta", False)),
        "models": [m.name for m in labeler.models],
        "zoo": str(labeler.zoo_dir),
    }
    write_text(out_dir / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find every face in photos and label its emotion with every model of the zoo and their ensemble.\n"
            "Writes DIR/labels.csv, one row per face: image, face, x, y, w, h, then <model>_label,\n"
            "<model>_confidence for each model, then ensemble_label, ensemble_confidence; and\n"
            "DIR/summary.json: counts, images without a face, errors with their reasons."
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} holiday/ --out labelled/ --recursive --annotate\n"
            f"  {PROG} a.jpg b.png --out out/ --no-eye-check\n"
            f"  {PROG} holiday/ --out labelled/ --recursive --resume    # continue after Ctrl+C or a crash\n\n"
            "Bad or non-image files are skipped with a one-line reason (also listed in summary.json).\n"
            "Exit status: 0 when every input was labelled or reported, 2 for usage errors (e.g. no model zoo),\n"
            "1 when the outputs cannot be written, 130 when stopped with Ctrl+C (what was done is saved;\n"
            "use --resume). DIR/.progress.jsonl records finished images for --resume."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images "
                   f"({' '.join(sorted(s.lstrip('.') for s in IMAGE_SUFFIXES))})")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder for labels.csv, summary.json and annotated/ (created if missing); "
                   "example: --out results/")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also label images in subfolders of INPUT folders (example: %(prog)s photos/ -r --out o/)")
    p.add_argument("--annotate", action="store_true",
                   help="also save a copy of each photo with numbered boxes and labels under DIR/annotated/, "
                   "mirroring the input folders; originals are never modified (example: --annotate)")
    p.add_argument("--no-eye-check", action="store_true",
                   help="keep faces even when no eye is found in them: finds more turned/occluded faces but "
                   "also more false faces (example: --no-eye-check)")
    p.add_argument("--tta", action="store_true",
                   help="flip test-time augmentation: label each face and its mirror image and combine them; "
                   "slightly more accurate (README's results table, 'flip TTA' column), labelling takes about "
                   "twice as long; summary.json records it (example: --tta)")
    p.add_argument("--resume", action="store_true",
                   help="skip images already labelled in DIR/labels.csv by an earlier (interrupted) run of the "
                   "same command; images that failed are tried again (example: rerun the command + --resume)")
    p.add_argument("--zoo", metavar="DIR", default=None,
                   help=f"model zoo folder with manifest.json (default: ${ZOO_ENV} or models_zoo/ beside the app; "
                   "example: --zoo models_zoo/)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads per model (default: up to 4); example: --threads 1 on a busy machine")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m app.batch`` and ``emotionlens-batch``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        return run(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl+C while loading models or scanning: nothing written yet worth keeping
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # the output folder filled up or vanished mid-run; what was written stays valid
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"{PROG}: error: cannot write outputs{where} ({e.strerror or e}); rerun with --resume", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
