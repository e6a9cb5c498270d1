"""Size of the built PyInstaller folder, the number a download page and the 250 MB budget are about."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import ROOT, Row

DIST = ROOT / "dist" / "EmotionLens"


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes on disk, files) under ``folder``; allocated blocks like ``du -s`` where the OS reports them."""
    total, files = 0, 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
            files += 1
    return total, files


def bundle_rows(dist: Path = DIST) -> list[Row]:
    """One row with the bundle's size, or a skipped row saying how to build it."""
    what = "bundle size, dist/EmotionLens"
    if not dist.is_dir():
        return [Row(what, None, "MB", "", "skipped: not built (pyinstaller --noconfirm build.spec)")]
    total, files = folder_size(dist)
    return [Row(what, total / 2**20, "MB", "1", f"{files} files, on disk like du -s; MB = 2^20 bytes")]
