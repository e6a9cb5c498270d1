"""Expand the batch's INPUT files and folders into the images to label, whatever the file system holds.

A folder walk meets more than photos: symbolic-link loops, dangling links, links to folders already walked,
FIFOs (opening one for reading blocks forever), device files, folders without read permission, names with
newlines or bytes that are not UTF-8, paths longer than the system allows, and the batch's own output
folder. None of them may stop the batch or label an image twice: each is listed with a one-line reason
(``Scan.skipped`` for what is not an image, ``Scan.errors`` for what could not be read) and the walk goes on.

Folders are identified by (device, inode), not by name, so a link to a folder already walked (or to one
of its parents: a loop) is recognised without resolving paths, and links to new folders are followed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from app.core import IMAGE_SUFFIXES, file_kind, os_reason
from app.outputs import ANNOTATED, EXPLAINED, OWN_FILES, TIMELINES
from app.video import VIDEO_SUFFIXES

# Names inside the output folder that the batch writes itself (never inputs).


@dataclass
class Item:
    """One image to label: ``path`` as the user will recognise it, ``rel`` its place under annotated/."""

    path: Path
    rel: Path


@dataclass
class Scan:
    items: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # not images: {path, reason}
    errors: list[dict[str, str]] = field(default_factory=list)  # could not be read: {image, reason}


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _claim_folders(folder: Path, entries: list[os.DirEntry], seen_dirs: set, skip_dirs: set) -> dict[str, str]:
    """Which subfolders to walk ("walk"), which lead to a folder already walked ("seen") or to our own
    output ("own"); real folders are claimed before links, so the real path is the one labelled."""
    verdicts: dict[str, str] = {}
    for entry in entries:
        try:
            st = os.stat(Path(folder) / entry.name)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in skip_dirs:
            verdicts[entry.name] = "own"
        elif ident in seen_dirs:
            verdicts[entry.name] = "seen"
        else:
            seen_dirs.add(ident)
            verdicts[entry.name] = "walk"
    return verdicts


def scan_inputs(inputs: list[Path], out_dir: Path, recursive: bool) -> Scan:
    """Images and videos under ``inputs`` in a stable order (each folder's files by name, then subfolders), each once.

    ``out_dir`` may sit inside an input folder (or be it): its annotated/ copies and its labels.csv and
    summary.json are never taken as inputs. Explicit files are taken whatever their suffix (``load_image``
    says clearly if one is not an image); inside folders only image suffixes are.
    """
    scan = Scan()
    seen_files: set[tuple[int, int] | str] = set()
    seen_dirs: set[tuple[int, int]] = set()
    used_rels: set[Path] = set()
    out_id = _identity(out_dir)
    skip_dirs = {i for i in (out_id, *(_identity(out_dir / d) for d in (ANNOTATED, EXPLAINED, TIMELINES)))
                 if i is not None}

    def add(path: Path, rel: Path, root_name: str, ident: tuple[int, int] | None, linked: bool) -> None:
        key = ident if ident is not None else os.path.abspath(path)
        if key in seen_files:  # a hard or symbolic link to an image already listed: label it once
            if linked:
                scan.skipped.append({"path": str(path), "reason": "link to an image already listed"})
            return
        seen_files.add(key)
        if rel in used_rels:  # two inputs with the same relative layout: keep their copies apart
            rel = Path(root_name) / rel
            n = 2
            while rel in used_rels:
                rel = rel.with_name(f"{rel.stem} ({n}){rel.suffix}")
                n += 1
        used_rels.add(rel)
        scan.items.append(Item(path, rel))

    for inp in inputs:
        try:
            st = os.stat(inp)
        except OSError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino) if st is not None else None
            add(inp, Path(inp.name), inp.parent.name or "input", ident, linked=False)
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue  # the same folder given twice
        seen_dirs.add((st.st_dev, st.st_ino))
        _walk(inp, inp, scan, recursive, seen_dirs, skip_dirs, out_id, add)
    return scan


def _walk(inp, start, scan, recursive, seen_dirs, skip_dirs, out_id, add) -> None:  # noqa: ANN001, PLR0913
    """Depth-first over ``start``; an explicit stack, so a tree a thousand folders deep cannot overflow."""
    stack = [start]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            scan.errors.append({"image": str(folder), "reason": os_reason(e, "list folder")})
            continue
        # Real folders are claimed before links at the same level, so a link to a sibling is the one reported.
        claimed = _claim_folders(folder, sorted(entries, key=lambda e: (_is_link(e), e.name)), seen_dirs,
                                 skip_dirs) if recursive else {}
        in_out_dir = out_id is not None and _identity(folder) == out_id
        subdirs: list[Path] = []
        for entry in entries:
            path = Path(folder) / entry.name
            try:
                linked = entry.is_symlink()
            except OSError:
                linked = False
            try:
                st = os.stat(path)  # follows links: what the name leads to
            except FileNotFoundError:
                if linked:
                    scan.skipped.append({"path": str(path), "reason": "broken symbolic link (its target is missing)"})
                continue  # else: deleted while we looked
            except OSError as e:
                if e.errno == errno.ELOOP:  # a link that leads back to itself: not an image, nothing lost
                    scan.skipped.append({"path": str(path), "reason": os_reason(e)})
                else:
                    scan.errors.append({"image": str(path), "reason": os_reason(e)})
                continue
            if stat.S_ISDIR(st.st_mode):
                verdict = claimed.get(entry.name)
                if verdict == "walk":
                    subdirs.append(path)
                elif verdict == "seen" and linked:
                    scan.skipped.append({"path": str(path), "reason": "link to a folder already scanned "
                                         "(a loop, or a second way to the same photos)"})
                continue
            if in_out_dir and entry.name in OWN_FILES:
                continue
            if not stat.S_ISREG(st.st_mode):
                scan.skipped.append({"path": str(path), "reason": f"{file_kind(st.st_mode)}, not an image"})
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES or path.suffix.lower() in VIDEO_SUFFIXES:
                add(path, path.relative_to(inp), inp.name or "input", (st.st_dev, st.st_ino), linked)
            elif not entry.name.startswith("."):
                scan.skipped.append({"path": str(path), "reason": f"not an image type ({path.suffix or 'no suffix'})"})
        stack.extend(reversed(subdirs))
