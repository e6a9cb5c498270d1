"""App start-up: process start to a labelled sample (``--self-test`` done), and to the window on screen.

Measured from outside, as a user waits for it: interpreter (or frozen bootloader) start, imports, loading
every model, detecting and labelling the sample photo. Each run is a fresh process, so nothing is cached
in-process; the OS file cache is warm after the first run, as it is for a user who opens the app twice.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.common import FROZEN, ONEFILE, ROOT, Row, log

TIMEOUT = 120.0
SAMPLE = ROOT / "app" / "assets" / "sample.jpg"


def launchers() -> list[tuple[str, list[str]]]:
    """(label, command) for the source checkout and, if built, the PyInstaller folder and one-file builds."""
    out = [("python -m app", [sys.executable, "-m", "app"])]
    for exe in (FROZEN, ONEFILE):
        if exe.is_file():
            out.append((f"frozen {exe.relative_to(ROOT).as_posix()}", [str(exe)]))
    return out


def _env(display: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    if not display:
        env.pop("DISPLAY", None)
    return env


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines[-1].split()) if lines else "no output"


def selftest_row(label: str, cmd: list[str], zoo: str | None, repeats: int) -> Row:
    """Median wall-clock seconds from spawning ``cmd --self-test SAMPLE`` to its exit; a failed run fails the row.

    The sample photo is named so that the self-test labels it alone: without a photo it goes on to label the
    sample clip as a video (app/__main__.py), which is a test of the video stack, not start-up."""
    args = [*cmd, "--self-test", str(SAMPLE), *(["--zoo", str(zoo)] if zoo else [])]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = subprocess.run(args, cwd=ROOT, env=_env(False), capture_output=True, encoding="utf-8",
                           errors="replace", timeout=TIMEOUT)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            return Row(f"start-up to labelled sample, {label}", None, "s", "",
                       f"failed (exit {r.returncode}): {_last_line(r.stderr or r.stdout)}")
        times.append(dt)
    return Row(f"start-up to labelled sample, {label}", statistics.median(times), "s", str(repeats),
               f"process start to --self-test done; {_last_line(r.stdout)}")


def window_row(label: str, cmd: list[str], zoo: str | None, repeats: int) -> Row:
    """Median seconds from spawning the GUI to its window being mapped (xdotool), on the current DISPLAY.

    The window appears before the models finish loading in the background, so this is time to a responsive
    window, not to labels.
    """
    what = f"start-up to window shown, {label}" if cmd else "start-up to window shown"
    xdotool = shutil.which("xdotool")
    if not os.environ.get("DISPLAY") or xdotool is None:
        return Row(what, None, "s", "", "skipped: needs DISPLAY (e.g. under Xvfb) and xdotool")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.Popen([*cmd, *(["--zoo", str(zoo)] if zoo else [])], cwd=ROOT, env=_env(True),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # By WM_CLASS: Tk sets no _NET_WM_PID, so --pid finds nothing. Close other EmotionLens windows first.
            found = subprocess.run([xdotool, "search", "--sync", "--onlyvisible", "--class", "EmotionLens"],
                                   capture_output=True, timeout=TIMEOUT)
            dt = time.perf_counter() - t
        except subprocess.TimeoutExpired:
            found, dt = None, 0.0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if found is None or found.returncode != 0:
            return Row(what, None, "s", "", f"failed: no window within {TIMEOUT:.0f} s")
        times.append(dt)
    return Row(what, statistics.median(times), "s", str(repeats), f"process start to window mapped; {xdotool}")


def startup_rows(zoo: str | None = None, quick: bool = False) -> list[Row]:
    """Self-test start-up for the checkout and the bundle; window start-up where a display exists."""
    repeats = 3 if quick else 5
    rows = []
    for label, cmd in launchers():
        log(f"start-up: {label} --self-test x{repeats}")
        rows.append(selftest_row(label, cmd, zoo, repeats))
    if not os.environ.get("DISPLAY"):
        return [*rows, window_row("no display", [], zoo, repeats)]  # one skipped row says why
    for label, cmd in launchers():
        log(f"start-up: {label} window x{repeats}")
        rows.append(window_row(label, cmd, zoo, repeats))
    return rows
