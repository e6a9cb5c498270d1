"""Shared pieces of ``python -m benchmarks``: a result row, medians, the Markdown table and the machine line.

Every benchmark returns :class:`Row` objects instead of printing, so one run yields one table that can be
printed and written into README.md unchanged, and a benchmark that cannot run says why in its row.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_EXE = ".exe" if os.name == "nt" else ""
DIST = ROOT / "dist" / "EmotionLens"  # pyinstaller --noconfirm build.spec
FROZEN = DIST / f"EmotionLens{_EXE}"
ONEFILE = ROOT / "dist" / f"EmotionLens-onefile{_EXE}"  # EMOTIONLENS_ONEFILE=1 pyinstaller build.spec
HEADER = ("benchmark", "median", "unit", "runs", "notes")


@dataclass(frozen=True)
class Row:
    """One line of the table; ``value`` None means skipped or failed, and ``notes`` says which and why."""

    what: str
    value: float | None
    unit: str
    runs: str = ""
    notes: str = ""

    def cells(self) -> list[str]:
        return [self.what, format_value(self.value), self.unit, self.runs, self.notes]


def format_value(v: float | None) -> str:
    """About three significant digits (never exponent notation), so the table reads at a glance and parses."""
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1 or v == 0:
        return f"{v:.2f}"
    return f"{v:.{2 - math.floor(math.log10(abs(v)))}f}"


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def markdown_table(rows: list[Row]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside a cell is escaped so a note cannot break the layout."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |")
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's marketing name where the OS tells it (Linux /proc/cpuinfo), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def machine_line(threads: int | None) -> str:
    """One line naming what the numbers were measured on: they mean little without it."""
    parts = [
        f"{cpu_name()}, {os.cpu_count()} logical cores",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
    ]
    for dist in ("onnxruntime", "opencv-python-headless", "torch"):
        v = _version(dist)
        if v:
            parts.append(f"{dist} {v}")
    parts.append(f"threads: {threads}" if threads else "threads: each component's default")
    if hasattr(os, "getloadavg"):  # other work on the machine halves numbers: say how busy it was
        parts.append(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return "Measured on: " + "; ".join(parts) + "."


def log(msg: str) -> None:
    """Progress goes to stderr so stdout stays exactly the table."""
    print(f"benchmarks: {msg}", file=sys.stderr, flush=True)
