"""Size of the built PyInstaller folder, the number a download page and the size budget (tests/test_bundle.py
``MAX_BUNDLE_MB``) are about."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import DIST, ONEFILE, Row


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes on disk, files) under ``folder``; allocated blocks like ``du -s`` where the OS reports them."""
    total, files = 0, 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
            files += 1
    return total, files


def bundle_rows(dist: Path = DIST, onefile: Path = ONEFILE) -> list[Row]:
    """The folder's size (or a skipped row saying how to build it), and the one-file build's if it exists."""
    what = "bundle size, dist/EmotionLens"
    if not dist.is_dir():
        rows = [Row(what, None, "MB", "", "skipped: not built (pyinstaller --noconfirm build.spec)")]
    else:
        total, files = folder_size(dist)
        rows = [Row(what, total / 2**20, "MB", "1", f"{files} files, on disk like du -s; MB = 2^20 bytes")]
    if onefile.is_file():
        rows.append(Row(f"bundle size, dist/{onefile.name}", onefile.stat().st_size / 2**20, "MB", "1",
                        "one compressed executable (EMOTIONLENS_ONEFILE=1); unpacks itself on each start"))
    return rows
