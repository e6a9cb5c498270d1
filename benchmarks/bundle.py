"""Size of the built PyInstaller folder, the number a download page and the size budget (tests/test_bundle.py
``MAX_BUNDLE_MB``) are about, and where the size goes.

``python -m benchmarks.bundle --update-docs`` writes docs/packaging.md's size table (the ``bundle-size`` block):
the folder and the one-file build, the budget and its headroom, PyAV's share, and what each of build.spec's trims
saves, measured on the build in dist/ and on the packages installed in this Python (the ones the build took). It
reads files only, so it needs no idle machine; it is only right for a build made from this checkout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import importlib.util
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.common import DIST, ONEFILE, ROOT, Row, format_value

DOCS_BLOCK = "bundle-size"
SPEC = ROOT / "build.spec"
BUDGET_TEST = ROOT / "tests" / "test_bundle.py"
# build.spec leaves these out (EXCLUDES): installed, but nothing in the bundle imports them.
LEFT_OUT = ("yaml", "numpy.random", "numpy.fft")
# PyAV's wheel ships these two encoders, which the app never runs but libavcodec cannot be loaded without.
ENCODERS = {"libx265": "HEVC encoder", "libSvtAv1Enc": "AV1 encoder"}
# opencv-python-headless: its cv2 package and the libraries auditwheel put beside it.
OPENCV_WHEEL = ("cv2", "opencv_python_headless.libs")


def file_size(p: Path) -> int:
    """Bytes on disk: allocated blocks like ``du`` where the OS reports them, else the length."""
    st = p.stat()
    return getattr(st, "st_blocks", 0) * 512 or st.st_size


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes on disk, files) under ``folder``; allocated blocks like ``du -s`` where the OS reports them.

    Symbolic links are not counted (PyInstaller links av.libs' libraries into _internal/), as ``du`` counts
    each file once."""
    total, files = 0, 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += file_size(p)
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


def constant(path: Path, name: str) -> object:
    """A module-level constant of a Python file (build.spec, a test) read without running the file."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path.name}: no {name} = ... constant")


def installed(module: str) -> Path | None:
    """Where an installed package or subpackage (``numpy.random``) or a wheel's library folder (``av.libs``,
    found beside its package) lives, without importing anything: cv2 and av load native libraries on import."""
    top, *rest = module.split(".")
    libs = rest == ["libs"]
    if libs:  # "opencv_python_headless.libs" has no package of its name: look where the packages live
        spec = importlib.util.find_spec("av") or importlib.util.find_spec("numpy")
    else:
        spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base.parent / module if libs else base.joinpath(*rest)
    return path if path.is_dir() else None


def size_mb(path: Path | None) -> float:
    """A file's or a folder's size on disk in MB (2^20 bytes); 0 when it does not exist."""
    if path is None or not path.exists():
        return 0.0
    return (file_size(path) if path.is_file() else folder_size(path)[0]) / 2**20


@dataclass(frozen=True)
class Part:
    """One row of the size table; ``mb`` None when the part is missing here, and ``note`` says how it was taken."""

    what: str
    mb: float | None
    note: str = ""


def _stripped(internal: Path, packages: tuple[str, ...]) -> tuple[float, float, int]:
    """(MB as installed, MB in the bundle, files) of the extension modules build.spec stripped of debug info,
    matched file by file, so modules the bundle left out do not count."""
    before = after = 0.0
    n = 0
    for pkg in packages:
        source = installed(pkg)
        if source is None or not (internal / pkg).is_dir():
            continue
        for f in (internal / pkg).rglob("*"):
            twin = source / f.relative_to(internal / pkg)
            if f.is_file() and not f.is_symlink() and twin.is_file():
                before += file_size(twin) / 2**20
                after += file_size(f) / 2**20
                n += 1
    return before, after, n


def size_parts(dist: Path = DIST, onefile: Path = ONEFILE) -> list[Part]:
    """Where the folder's size goes and what build.spec's trims save; raises FileNotFoundError when not built."""
    if not dist.is_dir():
        raise FileNotFoundError(f"{dist} is not built (pyinstaller --noconfirm build.spec)")
    internal = dist / "_internal" if (dist / "_internal").is_dir() else dist
    total, files = folder_size(dist)
    folder = total / 2**20
    parts = [Part(f"the folder, dist/{dist.name} (what `build.spec` builds)", folder, f"{files} files")]
    if onefile.is_file():
        parts.append(Part(f"the one-file build, dist/{onefile.name}", size_mb(onefile), "one compressed executable"))
    budget = constant(BUDGET_TEST, "MAX_BUNDLE_MB")
    models = sorted(internal.glob("models_zoo/*.onnx"), key=lambda p: p.stat().st_size)
    note = f"headroom {format_value(budget - folder)} MB"
    if models:
        big = models[-1]
        note += (f", {format_value((budget - folder) / size_mb(big))} times the largest model file "
                 f"({big.name}, {format_value(size_mb(big))} MB)")
    parts.append(Part("the budget, `MAX_BUNDLE_MB` in tests/test_bundle.py", float(budget), note))
    zoo_files = [f for f in (internal / "models_zoo").glob("*") if f.is_file()]
    zoo_mb = sum(map(size_mb, zoo_files))
    parts.append(Part("the emotion models in the folder: models_zoo/ without detectors/", zoo_mb or None,
                      f"{len(zoo_files)} files; a second zoo would leave {format_value(budget - folder - zoo_mb)} MB "
                      "of headroom" if zoo_files else ""))

    av_libs = internal / "av.libs"
    parts.append(Part("PyAV in the folder: av/ and av.libs/", size_mb(internal / "av") + size_mb(av_libs)))
    parts.append(Part("av.libs/: FFmpeg's libraries and what they link", size_mb(av_libs) if av_libs.is_dir() else None,
                      "as the wheel ships them"))
    for prefix, role in ENCODERS.items():
        found = sorted(av_libs.glob(f"{prefix}*")) if av_libs.is_dir() else []
        parts.append(Part(f"of which {prefix} ({role})", sum(map(size_mb, found)) if found else None))

    strip = tuple(constant(SPEC, "STRIP_PACKAGES"))
    before, after, n = _stripped(internal, strip)
    names = " and ".join(strip)
    parts.append(Part(f"{names} extension modules, as installed (with debug info)", before or None, f"{n} files"))
    parts.append(Part("the same, stripped by `build.spec`", after or None,
                      f"saves {format_value(before - after)} MB"))
    left_out = {m: installed(m) for m in LEFT_OUT}
    left_mb = sum(size_mb(p) for p in left_out.values())
    parts.append(Part(f"left out by `build.spec`: {', '.join(LEFT_OUT)}, as installed", left_mb or None,
                      ", ".join(f"{m} {format_value(size_mb(p))}" for m, p in left_out.items() if p)))

    cv2_here = sorted(internal.glob("cv2*"))
    cv2_mb = sum(map(size_mb, cv2_here))
    small = len(cv2_here) == 1 and cv2_here[0].is_file()
    parts.append(Part("cv2 in the folder", cv2_mb or None,
                      "one module, `packaging/build_opencv.py`'s" if small else "the opencv-python-headless wheel's"))
    wheel = {m: installed(m) for m in OPENCV_WHEEL}
    wheel_mb = sum(size_mb(p) for p in wheel.values())
    parts.append(Part("cv2 of the opencv-python-headless wheel, as installed", wheel_mb or None,
                      ", ".join(f"{m}/ {format_value(size_mb(p))}" for m, p in wheel.items() if p)))

    parts.append(Part("estimate: the folder with PyAV and the rest untrimmed", folder + (before - after) + left_mb,
                      "the folder plus what stripping and leaving out saved"))
    if small and wheel_mb:
        parts.append(Part("estimate: the folder with the wheel's cv2", folder - cv2_mb + wheel_mb,
                          "the folder less its cv2 plus the wheel's"))
    return parts


def machine_note(dist: Path, command: str = "python -m benchmarks.bundle --update-docs") -> str:
    """The command, the build's date and what the sizes depend on: the platform and the packages' versions."""
    built = datetime.datetime.fromtimestamp((dist / "_internal").stat().st_mtime if (dist / "_internal").exists()
                                            else dist.stat().st_mtime).strftime("%Y-%m-%d")
    versions = []
    for dist_name in ("av", "pillow", "opencv-python-headless", "numpy", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            versions.append(f"{dist_name} {version(dist_name)}")
    return (f"`{command}`: sizes on disk like `du -s` (MB = 2^20 bytes) of the "
            f"build in dist/ (built {built}) and of the packages installed beside it; {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}, {', '.join(versions)}.")


def size_table(parts: list[Part]) -> str:
    """The parts as a Markdown table."""
    lines = ["| what | MB | how |", "|---|---|---|"]
    lines += [f"| {p.what} | {format_value(p.mb)} | {p.note} |" for p in parts]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the size table; with --update-docs write it, with its note, into docs/packaging.md."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bundle",
        description="Measure the built bundle (dist/EmotionLens, and dist/EmotionLens-onefile if built) and where "
        "its size goes: PyAV's share, what build.spec's stripping and exclusions save, the small cv2 against the "
        "wheel's, and the headroom under tests/test_bundle.py's MAX_BUNDLE_MB. Reads files only: no idle machine "
        "needed, but build from this checkout first.",
        epilog="examples:\n"
        "  python -m benchmarks.bundle                 # print the table\n"
        "  python -m benchmarks.bundle --update-docs   # and write it into docs/packaging.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dist", type=Path, default=DIST, metavar="DIR",
                   help="the built folder (default: dist/EmotionLens; example: --dist /tmp/dist/EmotionLens)")
    p.add_argument("--onefile", type=Path, default=ONEFILE, metavar="FILE",
                   help="the one-file build, left out when missing (default: dist/EmotionLens-onefile; example: "
                   "--onefile /tmp/dist/EmotionLens-onefile)")
    p.add_argument("--update-docs", action="store_true",
                   help=f"also write the table and a note naming the command and machine between the "
                   f"<!-- {DOCS_BLOCK}:start --> and <!-- {DOCS_BLOCK}:end --> markers of docs/packaging.md "
                   "(example: --update-docs after pyinstaller --noconfirm build.spec)")
    p.add_argument("--page", type=Path, default=None, help=argparse.SUPPRESS)  # default: the page with the block
    args = p.parse_args(argv)
    try:
        parts = size_parts(args.dist, args.onefile)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m benchmarks.bundle"
    if args.dist.resolve() != DIST:
        command += f" --dist {args.dist}"
    if args.onefile.resolve() != ONEFILE:
        command += f" --onefile {args.onefile}"
    text = size_table(parts) + "\n\n" + machine_note(args.dist, command + " --update-docs")
    print(text)
    if args.update_docs:
        from training.report import block_file, replace_block

        page = args.page or block_file(DOCS_BLOCK)
        replace_block(page, DOCS_BLOCK, text)
        print(f"benchmarks: table written into {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
