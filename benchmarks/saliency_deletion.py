"""How faithful each saliency method is: the deletion curve on FER2013 PublicTest faces, and README's figures.

A map is faithful when the pixels it calls important are the ones the model needs. The deletion test (Petsiuk et
al., 2018) measures that: remove the most salient pixels first (set to FER2013's mean grey) and watch accuracy
fall; the faster it falls, the better the map. Random order is the baseline every method must beat. Each model is
scored with its map for the class it predicted on the intact face (what the app shows by default), for the
method the app ships for it (Grad-CAM or input gradient), occlusion (what any model gets without the extra
outputs) and random order. The table gives accuracy at each deleted fraction and the area under the curve (mean
accuracy over the fractions, trapezoid rule; lower = more faithful). Example::

    nice python -m benchmarks.saliency_deletion --data ../shared/data/fer2013 --n 1000 --update-docs

writes ``docs/saliency/deletion.png`` (the curves), ``docs/saliency/deletion.json`` (every number, and the machine
that timed the maps) and ``docs/saliency/faces.png`` (the maps of a few faces, one per class), and with
``--update-docs`` the table into docs/saliency.md between the ``saliency`` markers.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

from app.models import METHOD_TITLES
from benchmarks.common import ROOT, log, machine_line

FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75)
FILL = 129  # FER2013's mean pixel (0.5077 * 255), as occlusion greys its patches
FILLS = ("grey", "blur")
OUT = ROOT / "docs" / "saliency"
METHOD_NAMES = {**METHOD_TITLES, "random": "random pixel order", "random blocks": "random 8x8 block order"}


def fill_values(images: np.ndarray, fill: str) -> np.ndarray:
    """What a deleted pixel becomes: FER2013's mean grey, or the face blurred (Gaussian, sigma 5 px, as Petsiuk
    et al.'s insertion test), which removes a pixel's detail without the salt-and-pepper edges grey dots make."""
    if fill == "grey":
        return np.full_like(images, FILL)
    import cv2

    return np.stack([cv2.GaussianBlur(im, (0, 0), 5) for im in images])


def delete_top(images: np.ndarray, maps: np.ndarray, fraction: float, fill: np.ndarray, seed: int = 0) -> np.ndarray:
    """``images`` (N, H, W) uint8 with the ``fraction`` most salient pixels of each replaced by ``fill``'s.

    Ties (flat regions of an upsampled map) are broken at random, so a coarse map is not favoured by scan order."""
    n = len(images)
    flat = images.reshape(n, -1).copy()
    k = int(round(fraction * flat.shape[1]))
    if k == 0:
        return images.copy()
    jitter = np.random.default_rng(seed).random(flat.shape, dtype=np.float32) * 1e-6
    order = np.argsort(-(maps.reshape(n, -1) + jitter), axis=1)[:, :k]
    np.put_along_axis(flat, order, np.take_along_axis(fill.reshape(n, -1), order, axis=1), axis=1)
    return flat.reshape(images.shape)


def random_blocks(shape: tuple[int, ...], block: int = 8, seed: int = 2) -> np.ndarray:
    """Random order of ``block``-px squares: the baseline for maps that mark regions, not pixels (a random pixel
    order scatters grey dots over the whole face, which hurts every model far more than losing one region)."""
    n, h, w = shape
    cells = np.random.default_rng(seed).random((n, -(-h // block), -(-w // block)), dtype=np.float32)
    return np.repeat(np.repeat(cells, block, axis=1), block, axis=2)[:, :h, :w]


def deletion_curves(labeler, images: np.ndarray, labels: np.ndarray, chunk: int = 50,  # noqa: ANN001
                    done: dict | None = None) -> dict:
    """``{model: {method: {"grey"/"blur": {"accuracy": [...], "auc": x}, "ms_per_face": t}}}`` for one zoo;
    ``done`` holds results of an earlier run on the same faces, kept instead of measured again."""
    from tqdm import tqdm

    results: dict[str, dict] = {}
    fills = {fill: fill_values(images, fill) for fill in FILLS}
    for m in labeler.models:
        single = copy.copy(labeler)  # shares the loaded sessions; runs this model only
        single.models = [m]
        probs, _ = single.classify(images)
        pred = probs[m.name].argmax(1)
        methods = [*single.saliency_methods(m.name), "random blocks", "random"]
        results[m.name] = {}
        for method in methods:
            if done and method in done.get(m.name, {}):
                results[m.name][method] = done[m.name][method]
                continue
            maps = np.zeros(images.shape, np.float32)
            t0 = time.perf_counter()
            if method == "random":
                maps = np.random.default_rng(1).random(images.shape, dtype=np.float32)
            elif method == "random blocks":
                maps = random_blocks(images.shape)
            else:
                for s in tqdm(range(0, len(images), chunk), desc=f"{m.name} {method}", file=sys.stderr, leave=False):
                    part = single.explain(images[s:s + chunk], method=method)
                    maps[s:s + chunk] = part[m.name][np.arange(len(part[m.name])), pred[s:s + chunk]]
            ms = 1000 * (time.perf_counter() - t0) / len(images)
            entry: dict = {"ms_per_face": None if method.startswith("random") else ms}
            for fill in FILLS:
                acc = []
                for f in FRACTIONS:
                    p, _ = single.classify(delete_top(images, maps, f, fills[fill]))
                    acc.append(float((p[m.name].argmax(1) == labels).mean()))
                auc = float(np.trapezoid(acc, FRACTIONS) / (FRACTIONS[-1] - FRACTIONS[0]))
                entry[fill] = {"accuracy": acc, "auc": auc}
                log(f"{m.name} {method} ({fill}): AUC {auc:.3f}, accuracy {[round(a, 3) for a in acc]}")
            results[m.name][method] = entry
    return results


def markdown(results: dict, display: dict[str, str], n: int, machine: str | None = None) -> str:
    """The table of accuracies, areas and map costs; ``machine`` (the ``Measured on`` line of the run, which the ms
    column depends on) goes under it when the run recorded one."""
    head = ("| model | method | deleted pixels become | " + " | ".join(f"{int(100 * f)}%" for f in FRACTIONS)
            + " | area under curve (lower = more faithful) | map ms per face (batches of 50) |")
    lines = [f"Accuracy on {n} FER2013 PublicTest faces as the given share of pixels is deleted, most salient "
             f"first (`python -m benchmarks.saliency_deletion --n {n}`):", "", head,
             "|" + "---|" * (len(FRACTIONS) + 5)]
    for name, methods in results.items():
        for method, r in methods.items():
            ms = "—" if r["ms_per_face"] is None else f"{r['ms_per_face']:.1f}"
            for fill in FILLS:
                lines.append(f"| {display.get(name, name)} | {METHOD_NAMES.get(method, method)} | {fill} | "
                             + " | ".join(f"{100 * a:.1f}%" for a in r[fill]["accuracy"])
                             + f" | {r[fill]['auc']:.3f} | {ms} |")
    if machine:
        lines += ["", f"Map ms timed in batches of 50. {machine}"]
    return "\n".join(lines)


def plot(results: dict, display: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(FILLS), len(results), figsize=(3.6 * len(results), 3.0 * len(FILLS)),
                             sharey=True, squeeze=False)
    styles = {"random": dict(color="grey", linestyle="--"), "random blocks": dict(color="grey", linestyle=":"),
              "occlusion": dict(color="tab:orange"), "hirescam": dict(color="tab:green"),
              "grad-cam": dict(color="tab:blue"), "cam": dict(color="tab:blue"),
              "input-gradient": dict(color="tab:purple")}
    for row, fill in enumerate(FILLS):
        for ax, (name, methods) in zip(axes[row], results.items(), strict=True):
            for method, r in methods.items():
                ax.plot([100 * f for f in FRACTIONS], [100 * a for a in r[fill]["accuracy"]], marker="o",
                        markersize=3, label=f"{METHOD_NAMES.get(method, method)} ({r[fill]['auc']:.3f})",
                        **styles.get(method, {}))
            ax.set_title(f"{display.get(name, name)}, deleted = {fill}", fontsize=10)
            ax.set_xlabel("pixels deleted, most salient first (%)", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="method (AUC)", title_fontsize=7)
        axes[row][0].set_ylabel("PublicTest accuracy (%)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def faces_figure(labeler, images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 1) -> None:  # noqa: ANN001
    """The first correctly-labelled-by-the-ensemble PublicTest face of each class, with every model's map for the
    class it predicted: one row per face (crop, then one panel per model)."""
    from PIL import Image

    from app.core import EMOTIONS
    from app.outputs._saliency_pictures import stack

    probs, ens = labeler.classify(images[:400])  # the first 400 hold every class; fewer keeps ORT's memory small
    picks = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero((labels[:len(ens)] == c) & (ens.argmax(1) == c))[:per_class]
        picks += list(idx)
    rows = face_rows(labeler, images[picks], [EMOTIONS[labels[i]] for i in picks])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stack(rows)).quantize(colors=256, method=2).save(path, optimize=True)  # ~1/3 the bytes


def face_rows(labeler, crops: np.ndarray, truths: list[str] | None = None, scale: int = 3) -> list[np.ndarray]:  # noqa: ANN001
    """One strip per crop: the crop, then each model's map for its predicted class."""
    from app.outputs import face_strip

    probs, _ = labeler.classify(crops)
    maps = labeler.explain(crops)
    return [face_strip(labeler, crop, {k: v[i] for k, v in probs.items()}, {k: v[i] for k, v in maps.items()},
                       (f"true: {truths[i]}" if truths else "face", ""), scale=scale)
            for i, crop in enumerate(crops)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.saliency_deletion",
        description="Deletion curves of each model's saliency methods on FER2013 PublicTest faces (accuracy as "
        "the most salient pixels are greyed first, against random order), written to docs/saliency/ with a "
        "figure of maps for one face per class.",
        epilog="example: nice python -m benchmarks.saliency_deletion --data ../shared/data/fer2013 --n 1000 "
        "--update-docs",
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013"),
                   help="FER2013 (CSV or Kaggle folder) (default: %(default)s)")
    p.add_argument("--zoo", help="model folder (default: $EMOTIONLENS_ZOO, else models_zoo/)")
    p.add_argument("--n", type=int, default=1000, help="PublicTest faces, a fixed random subset (default: 1000)")
    p.add_argument("--out", type=Path, default=OUT, help="folder for the figures and JSON (default: docs/saliency)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads per model (default: up to 4)")
    p.add_argument("--figure-only", action="store_true", help="only redraw faces.png (seconds, not minutes)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the results OUT/deletion.json already has for these faces (same --n); measure only "
                   "methods it lacks")
    p.add_argument("--update-docs", "--update-readme", dest="update_docs", action="store_true",
                   help="write the table into its page (docs/saliency.md) between <!-- saliency:start --> and "
                   "<!-- saliency:end --> (example: --n 1000 --update-docs on an idle machine; --update-readme is "
                   "its old name)")
    args = p.parse_args(argv)

    from app.models import Labeler, ZooError
    from training.datasets import DatasetError, load_fer2013

    try:
        labeler = Labeler(args.zoo, threads=args.threads)
        val = load_fer2013(args.data).val
    except (ZooError, DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    idx = np.sort(np.random.default_rng(0).permutation(len(val))[: args.n])
    images, labels = val.images[idx], val.labels[idx]
    display = {m.name: m.display_name for m in labeler.models}
    args.out.mkdir(parents=True, exist_ok=True)
    faces_figure(labeler, val.images, val.labels, args.out / "faces.png")
    if args.figure_only:
        return 0
    done, machine = None, None
    if args.reuse and (args.out / "deletion.json").is_file():
        old = json.loads((args.out / "deletion.json").read_text())
        if old.get("n") == len(images) and old.get("fractions") == list(FRACTIONS):
            done, machine = old["results"], old.get("machine")
    results = deletion_curves(labeler, images, labels, done=done)
    if done is None or any(m not in done.get(k, {}) for k, v in results.items() for m in v):
        machine = machine_line(args.threads)  # some map was timed here, now
    record = {"n": int(len(images)), "fractions": list(FRACTIONS), "fill": FILL, "results": results}
    (args.out / "deletion.json").write_text(json.dumps({**record, "machine": machine}, indent=2) + "\n")
    plot(results, display, args.out / "deletion.png")
    table = markdown(results, display, len(images), machine)
    print(table)
    if args.update_docs:
        from training.report import block_file, replace_block

        page = block_file("saliency")
        replace_block(page, "saliency", table)
        log(f"table written into {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
