"""Build a small ``cv2`` for the desktop bundle from OpenCV's own source, with only the modules the app uses.

Why: the opencv-python-headless wheel puts about 150 MB into dist/EmotionLens, mostly FFmpeg, OpenBLAS and
image codecs that ``cv2`` links at load time. The app needs none of them: it decodes images with Pillow and
only resizes, converts colours, draws and runs Haar cascades. Built from the same release's source (the
wheel's sdist on PyPI, checked against the index's sha256) with core, imgproc and objdetect (plus calib3d,
features2d and flann, which objdetect requires), ``cv2`` is one self-contained extension module of a few MB.
build.spec bundles it instead of the wheel's when it exists; tests and ``python -m app`` keep using the wheel.

Needs a C++ compiler, CMake and Ninja or make (Debian: ``apt-get install g++ cmake ninja-build``). A rerun
continues an interrupted build, and returns at once when the module for this Python and version exists.
Measured on Linux x86-64 only; on Windows and macOS build.spec falls back to the wheel if this fails.

Example:
    python packaging/build_opencv.py       # about 10 min on 2 cores, once; then: pyinstaller build.spec
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "opencv-minimal"
INFO = "build-info.json"
DIST_NAME = "opencv-python-headless"
INDEX = "https://pypi.org/simple"
# objdetect needs calib3d, which needs features2d and flann; python3 makes the cv2 module.
MODULES = ("core", "imgproc", "features2d", "flann", "calib3d", "objdetect", "python3")
# Every cv2 name app/ uses (tests/test_build_opencv.py keeps this in step); the build checks each is there.
# cv2.data (the wheel's cascade folder) is not: app/detect/_haar.py reads the cascades from haarcascades/.
APP_USES = (
    "CascadeClassifier", "FileStorage", "FILE_STORAGE_READ", "FILE_STORAGE_MEMORY", "resize", "cvtColor",
    "copyMakeBorder", "INTER_AREA", "INTER_CUBIC", "INTER_LINEAR", "BORDER_REPLICATE", "COLOR_RGB2GRAY",
    "COLOR_RGBA2GRAY", "warpAffine", "invertAffineTransform", "setNumThreads", "getNumThreads",
    "COLOR_GRAY2RGB", "COLOR_RGB2HSV", "calcHist",  # the video player and app/video/_shots.py's cut detector
)
# Off: everything that would pull in a library or a download. IPP and its ICV binaries are fetched from the
# internet at configure time; the rest are codecs, video, GUI and parallel back-ends the app never touches.
OFF = (
    "BUILD_TESTS", "BUILD_PERF_TESTS", "BUILD_EXAMPLES", "BUILD_DOCS", "BUILD_opencv_apps", "BUILD_JAVA",
    "BUILD_SHARED_LIBS", "WITH_IPP", "WITH_ITT", "WITH_LAPACK", "WITH_EIGEN", "WITH_OPENCL", "WITH_FFMPEG",
    "WITH_GSTREAMER", "WITH_V4L", "WITH_GTK", "WITH_QT", "WITH_PROTOBUF", "WITH_QUIRC", "WITH_ADE", "WITH_TBB",
    "WITH_OPENMP", "WITH_VA", "WITH_VA_INTEL", "WITH_1394", "WITH_OBSENSOR", "WITH_FLATBUFFERS", "WITH_OPENJPEG",
    "WITH_JASPER", "WITH_OPENEXR", "WITH_WEBP", "WITH_TIFF", "WITH_PNG", "WITH_JPEG", "WITH_AVIF",
    "WITH_IMGCODEC_HDR", "WITH_VTK", "WITH_CUDA",
)
# x86-64: SSE3 everywhere, faster paths up to AVX2 picked at run time (the wheel also has AVX-512 paths).
X86_CPU = ("-DCPU_BASELINE=SSE3", "-DCPU_DISPATCH=SSE4_1;SSE4_2;AVX;FP16;AVX2")


def module_name() -> str:
    """File name of the extension module for the running Python, e.g. cv2.cpython-311-x86_64-linux-gnu.so."""
    return "cv2" + sysconfig.get_config_var("EXT_SUFFIX")


def installed_version() -> str:
    """The opencv-python-headless release tests run with, so the bundle runs the same OpenCV code."""
    try:
        return importlib.metadata.version(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"build_opencv: {DIST_NAME} is not installed; pass --version (e.g. 4.14.0.94)") from None


def index_file(dist: str, filename: str, index: str, tool: str = "build_opencv") -> tuple[str, str]:
    """(URL, sha256) of one file of ``dist`` as the package index lists it (JSON simple API, PEP 691).

    Shared with packaging/build_mtcnn.py: every download a build script uses is checked against this hash.
    """
    req = urllib.request.Request(f"{index.rstrip('/')}/{dist}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            files = json.load(r)["files"]
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"{tool}: cannot read {dist}'s file list from {index} ({e})") from None
    for f in files:
        if f["filename"] == filename:
            return f["url"], f["hashes"]["sha256"]
    raise SystemExit(f"{tool}: {filename} not found at {index}")


def sdist_url(version: str, index: str) -> tuple[str, str]:
    """(URL, sha256) of the release's source archive."""
    return index_file(DIST_NAME, f"{DIST_NAME.replace('-', '_')}-{version}.tar.gz", index)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(version: str, index: str, cache: Path) -> Path:
    """Download (once) and verify the sdist; a partial or tampered download is never used."""
    url, digest = sdist_url(version, index)
    target = cache / url.rsplit("/", 1)[-1].split("#")[0]
    if target.is_file() and sha256(target) == digest:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    print(f"build_opencv: downloading {url}", flush=True)
    with urllib.request.urlopen(url, timeout=600) as r, open(part, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
    if sha256(part) != digest:
        part.unlink()
        raise SystemExit(f"build_opencv: {url}: sha256 does not match the index's {digest}")
    part.replace(target)
    return target


def extract_source(sdist: Path, dest: Path) -> Path:
    """Unpack only the OpenCV tree of the sdist (the rest is the wheel's own build scripts)."""
    top = sdist.name.removesuffix(".tar.gz")
    src = dest / top / "opencv"
    if (src / "CMakeLists.txt").is_file():
        return src
    print(f"build_opencv: unpacking {sdist.name}", flush=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/opencv/")]
        tar.extractall(dest, members=members, filter="data")
    return src


def cmake_args(src: Path, build: Path) -> list[str]:
    import numpy  # the module is compiled against the numpy of the Python that builds (and bundles) it

    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    args = ["cmake", "-S", str(src), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release",
            f"-DBUILD_LIST={','.join(MODULES)}", "-DOPENCV_SKIP_PYTHON_LOADER=ON", "-DBUILD_opencv_python3=ON",
            f"-DPYTHON3_EXECUTABLE={sys.executable}",
            f"-DPYTHON3_INCLUDE_DIR={sysconfig.get_paths()['include']}",
            f"-DPYTHON3_NUMPY_INCLUDE_DIRS={numpy.get_include()}",
            "-DCMAKE_MODULE_LINKER_FLAGS=-s"]  # strip: symbols are most of an unstripped module
    args += [f"-D{flag}=OFF" for flag in OFF]
    if sysconfig.get_platform().endswith(("x86_64", "amd64")):
        args += X86_CPU
    return args


def check_module(folder: Path, version: str) -> None:
    """Import the new module in a fresh interpreter and look for everything the app calls."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cv2; from pathlib import Path\n"
        "assert Path(cv2.__file__).parent == Path(sys.argv[1]), cv2.__file__\n"
        "missing = [n for n in sys.argv[4:] if not hasattr(cv2, n)]\n"
        "assert not missing, f'missing: {missing}'\n"
        "assert sys.argv[2].startswith(cv2.__version__), (cv2.__version__, sys.argv[2])\n"
        "import numpy as np; c = cv2.CascadeClassifier(sys.argv[3]); assert not c.empty()\n"
        "assert len(c.detectMultiScale(np.zeros((64, 64), np.uint8))) == 0\n"
    )
    cascade = ROOT / "haarcascades" / "haarcascade_frontalface_alt2.xml"
    r = subprocess.run([sys.executable, "-c", code, str(folder), version, str(cascade), *APP_USES],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"build_opencv: the built module fails its check: {r.stderr.strip().splitlines()[-1]}")


def build(version: str, out: Path, index: str, sdist: Path | None, jobs: int, force: bool) -> Path:
    target = out / module_name()
    info_path = out / INFO
    if not force and target.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("version") == version:
            print(f"build_opencv: {target} is up to date (OpenCV {version}); --force rebuilds")
            return target
    t0 = time.monotonic()
    print("build_opencv: OpenCV's typing-stub generator may warn that it cannot find imread: harmless, this "
          "build leaves out imgcodecs (the app decodes with Pillow)", flush=True)
    sdist = sdist or fetch_sdist(version, index, out / "downloads")
    src = extract_source(sdist, out / "src")
    work = out / "cmake-build"
    subprocess.run(cmake_args(src, work), check=True)
    subprocess.run(["cmake", "--build", str(work), "--target", "opencv_python3", "--config", "Release",
                    "--parallel", str(jobs)], check=True)
    built = next((work / "lib").rglob("cv2*.so"), None) or next((work / "lib").rglob("cv2*.pyd"), None)
    if built is None:
        raise SystemExit(f"build_opencv: no cv2 module under {work / 'lib'}")
    staging = out / "staging"  # checked here first: build.spec never sees a module that failed its check
    staging.mkdir(exist_ok=True)
    shutil.copy2(built, staging / target.name)
    check_module(staging, version)
    info_path.unlink(missing_ok=True)
    (staging / target.name).replace(target)
    info = {"version": version, "sdist": sdist.name, "sha256": sha256(sdist), "modules": list(MODULES),
            "python": sys.version.split()[0], "module": target.name,
            "size_mb": round(target.stat().st_size / 2**20, 1), "build_s": round(time.monotonic() - t0)}
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"build_opencv: {target} ({info['size_mb']} MB) built in {info['build_s'] / 60:.1f} min")
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python packaging/build_opencv.py && pyinstaller --noconfirm build.spec",
    )
    p.add_argument("--version", help=f"OpenCV release as {DIST_NAME} numbers it (default: the installed one)")
    p.add_argument("--out", type=Path, default=OUT,
                   help="folder for the module, the download and the build tree (default: build/opencv-minimal, "
                        "where build.spec looks)")
    p.add_argument("--sdist", type=Path, help="use this downloaded opencv_python_headless-VERSION.tar.gz (offline)")
    p.add_argument("--index", default=INDEX, help=f"package index to download the sdist from (default: {INDEX})")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compile jobs (default: all cores)")
    p.add_argument("--force", action="store_true", help="rebuild even if the module is up to date")
    args = p.parse_args(argv)
    version = args.version or installed_version()
    if args.sdist and not args.sdist.is_file():
        p.error(f"{args.sdist}: no such file")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            p.error(f"{tool} not found: install a C++ compiler and CMake (Debian: apt-get install g++ cmake "
                    "ninja-build)")
    build(version, args.out.resolve(), args.index, args.sdist, args.jobs, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
