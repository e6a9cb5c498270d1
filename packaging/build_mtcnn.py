"""Build the MTCNN detector files of ``--detector mtcnn`` from facenet-pytorch 2.6.0's published weights.

Why this route: MTCNN's three nets are small (2 MB together), give five landmarks for alignment, and their
weights ship inside the facenet-pytorch wheel on PyPI under the MIT licence, so anyone can check where every
byte came from. The package itself is never installed (it pins an old torch): the wheel is downloaded with
``pip download --no-deps``, its sha256 checked against the index's (the helper packaging/build_opencv.py uses
for OpenCV's sdist), and the three state dicts inside are loaded into the same nets rebuilt with our torch
(training/mtcnn_nets.py). Each net is exported to ONNX (P-Net with dynamic height and width), then the ONNX
files and the torch nets are run on the same real inputs: every pyramid level and every R-Net/O-Net crop the
app's pipeline (app/detect/_mtcnn.py) produces on ../shared/data/photos (or the bundled sample photo without it).
The largest difference goes into the provenance file; over ``TOLERANCE`` nothing is written.

Output, committed with the repository: ``models_zoo/detectors/`` mtcnn_{pnet,rnet,onet}.onnx, LICENSE
(facenet-pytorch's MIT licence) and mtcnn.provenance.json (wheel URL and sha256, export date, torch, onnx and
onnxruntime versions, file hashes, the differences). A rerun with the same wheel and intact files does nothing.

Needs the training extra (torch, onnx): ``pip install -e .[train]``.

Example:
    python packaging/build_mtcnn.py            # download, export, check, write (about 30 s)
    python packaging/build_mtcnn.py --force    # rebuild even when the files are up to date
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import io
import json
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))

from build_opencv import INDEX, index_file, sha256  # noqa: E402

DIST = "facenet-pytorch"
VERSION = "2.6.0"
WHEEL = f"facenet_pytorch-{VERSION}-py3-none-any.whl"
WEIGHTS = {"pnet": "facenet_pytorch/data/pnet.pt", "rnet": "facenet_pytorch/data/rnet.pt",
           "onet": "facenet_pytorch/data/onet.pt"}
LICENSE_IN_WHEEL = f"facenet_pytorch-{VERSION}.dist-info/LICENSE.md"
OUT = ROOT / "models_zoo" / "detectors"
CACHE = ROOT / "build" / "mtcnn"
PROVENANCE = "mtcnn.provenance.json"
OPSET = 17
# float32 ONNX vs torch on the same inputs: measured differences are ~1e-6 on probabilities and ~1e-5 on
# offsets; anything near this would be a wrong graph, not rounding.
TOLERANCE = 1e-3
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def fail(msg: str) -> SystemExit:
    return SystemExit(f"build_mtcnn: {msg}")


def fetch_wheel(index: str, cache: Path, wheel: Path | None) -> tuple[Path, str, str]:
    """(wheel path, its URL, its sha256) with the hash checked against the index; pip downloads it once."""
    url, digest = index_file(DIST, WHEEL, index, tool="build_mtcnn")
    if wheel is None:
        wheel = cache / WHEEL
        if not (wheel.is_file() and sha256(wheel) == digest):
            cache.mkdir(parents=True, exist_ok=True)
            print(f"build_mtcnn: pip download --no-deps {DIST}=={VERSION}", flush=True)
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                "--index-url", index, "--dest", str(cache), f"{DIST}=={VERSION}"],
                               capture_output=True, text=True)
            if r.returncode != 0 or not wheel.is_file():
                last = (r.stderr.strip().splitlines() or ["no wheel written"])[-1]
                raise fail(f"pip download {DIST}=={VERSION} failed: {last}")
    if not wheel.is_file():
        raise fail(f"{wheel}: no such file")
    if sha256(wheel) != digest:
        raise fail(f"{wheel}: sha256 does not match the index's {digest}; delete it and rerun")
    return wheel, url, digest


def torch_nets(wheel: Path) -> dict:
    """The three nets with the wheel's weights (loaded from memory: nothing of the package is installed)."""
    import torch

    from training.mtcnn_nets import NETS

    nets = {}
    with zipfile.ZipFile(wheel) as z:
        for name, member in WEIGHTS.items():
            state = torch.load(io.BytesIO(z.read(member)), map_location="cpu", weights_only=True)
            net = NETS[name]()
            net.load_state_dict(state, strict=True)
            nets[name] = net.float().eval()
    return nets


def export(nets: dict, folder: Path) -> dict[str, Path]:
    import torch

    from app.detect._mtcnn import FILES
    from training.mtcnn_nets import INPUT_SIDE, Exported, output_names

    paths = {}
    for name, net in nets.items():
        side = INPUT_SIDE[name]
        dims = {"image": {0: "N"}}
        example = torch.rand(2, 3, side, side) * 255
        if name == "pnet":
            dims = {"image": {0: "N", 2: "H", 3: "W"}}
            example = torch.rand(1, 3, 37, 53) * 255  # odd sizes: the exported graph must not bake one in
        for out in output_names(name):
            dims[out] = {0: "N"}
        paths[name] = folder / FILES[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter warns about its own deprecation
            torch.onnx.export(Exported(net).eval(), (example,), str(paths[name]), input_names=["image"],
                              output_names=output_names(name), dynamic_axes=dims, opset_version=OPSET,
                              dynamo=False)
    return paths


def check_photos(photos_dir: Path) -> list[Path]:
    if photos_dir.is_dir():
        found = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if found:
            return found
    return [ROOT / "app" / "assets" / "sample.jpg"]


def compare(nets: dict, paths: dict[str, Path], photos: list[Path]) -> dict[str, dict[str, float]]:
    """Largest |ONNX - torch| per net output over every input the app's pipeline feeds the nets on ``photos``."""
    import numpy as np
    import torch

    from app.core import load_image
    from app.detect import _mtcnn as mtcnn
    from training.mtcnn_nets import Exported, output_names

    worst: dict[str, dict[str, float]] = {n: dict.fromkeys(output_names(n), 0.0) for n in nets}
    calls = dict.fromkeys(nets, 0)

    def recording(name: str, run):  # noqa: ANN001, ANN202
        wrapped = Exported(nets[name]).eval()

        def both(x):  # noqa: ANN001, ANN202
            got = run(x)
            with torch.no_grad():
                want = [t.numpy() for t in wrapped(torch.from_numpy(np.ascontiguousarray(x)))]
            for key, a, b in zip(output_names(name), got, want, strict=True):
                worst[name][key] = max(worst[name][key], float(np.max(np.abs(a - b), initial=0.0)))
            calls[name] += 1
            return got

        return both

    runners = {n: recording(n, mtcnn.load_runner(n, p)) for n, p in paths.items()}
    for photo in photos:
        mtcnn.detect(load_image(photo), runners=runners)
    if not all(calls.values()):
        raise fail(f"the check photos never reached every net ({calls}): no face found in {photos[0].parent}")
    return worst


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "python": sys.version.split()[0]}


def up_to_date(out: Path, digest: str) -> bool:
    from app.detect._mtcnn import FILES

    info_path = out / PROVENANCE
    if not info_path.is_file():
        return False
    info = json.loads(info_path.read_text(encoding="utf-8"))
    files = info.get("files", {})
    return info.get("wheel", {}).get("sha256") == digest and set(files) == set(FILES.values()) and all(
        (out / f).is_file() and sha256(out / f) == h for f, h in files.items())


def build(out: Path, index: str, cache: Path, wheel: Path | None, photos_dir: Path, force: bool) -> Path:
    from app.core import write_text
    from app.detect._mtcnn import FILES

    wheel, url, digest = fetch_wheel(index, cache, wheel)
    if not force and up_to_date(out, digest):
        print(f"build_mtcnn: {out} is up to date ({WHEEL}); --force rebuilds")
        return out
    nets = torch_nets(wheel)
    photos = check_photos(photos_dir)
    with tempfile.TemporaryDirectory(prefix="mtcnn-") as tmp:
        paths = export(nets, Path(tmp))
        print(f"build_mtcnn: checking ONNX against torch on {len(photos)} photo(s) from {photos[0].parent}",
              flush=True)
        diffs = compare(nets, paths, photos)
        worst = max(v for d in diffs.values() for v in d.values())
        if worst > TOLERANCE:
            raise fail(f"ONNX and torch outputs differ by up to {worst:.2e} (> {TOLERANCE}): {diffs}")
        out.mkdir(parents=True, exist_ok=True)
        for path in paths.values():
            (out / path.name).write_bytes(path.read_bytes())
    with zipfile.ZipFile(wheel) as z:
        licence = z.read(LICENSE_IN_WHEEL).decode("utf-8")
    write_text(out / "LICENSE", f"The MTCNN weights in this folder ({', '.join(FILES.values())}) are facenet-pytorch "
               f"{VERSION}'s\n({url}), exported to ONNX by packaging/build_mtcnn.py. Their licence:\n\n{licence}")
    info = {
        "about": "MTCNN face detector for --detector mtcnn (app/detect/_mtcnn.py); rebuild: "
                 "python packaging/build_mtcnn.py",
        "wheel": {"name": WHEEL, "url": url, "sha256": digest, "index": index,
                  "weights": list(WEIGHTS.values()), "licence": "MIT (LICENSE)"},
        "exported": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "opset": OPSET,
        "versions": _versions(),
        "files": {p.name: sha256(out / p.name) for p in paths.values()},
        "sizes_kb": {p.name: round((out / p.name).stat().st_size / 1024) for p in paths.values()},
        "check": {"photos": [p.name for p in photos], "max_abs_diff": diffs, "tolerance": TOLERANCE},
    }
    write_text(out / PROVENANCE, json.dumps(info, indent=2) + "\n")
    print(f"build_mtcnn: wrote {', '.join(sorted(info['files']))} to {out}; largest ONNX-torch difference "
          f"{worst:.1e}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python packaging/build_mtcnn.py && python -m app --self-test --detector mtcnn",
    )
    p.add_argument("--out", type=Path, default=OUT, help="where the detector files go (default: models_zoo/detectors)")
    p.add_argument("--cache", type=Path, default=CACHE, help="where the wheel is downloaded (default: build/mtcnn)")
    p.add_argument("--wheel", type=Path, help=f"use this downloaded {WHEEL} (its sha256 is still checked)")
    p.add_argument("--index", default=INDEX, help=f"package index (default: {INDEX})")
    p.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos",
                   help="photos for the ONNX-vs-torch check (default: ../shared/data/photos, else the sample)")
    p.add_argument("--force", action="store_true", help="rebuild even if the files are up to date")
    args = p.parse_args(argv)
    try:
        importlib.metadata.version("torch")
        importlib.metadata.version("onnx")
    except importlib.metadata.PackageNotFoundError as e:
        p.error(f"{e.name} is not installed: pip install -e .[train]")
    build(args.out.resolve(), args.index, args.cache.resolve(), args.wheel, args.photos, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
