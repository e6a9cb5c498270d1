"""What the saliency maps cost: ms per face with the maps on, and labelling with them off against a zoo without
the maps' extra graph outputs (the issue's budget: off costs what it did, on at most 30 ms per face for the three
models). Both measured interleaved in one run (``label_speed._block_medians``), so load from elsewhere on the
machine hits every variant alike and the ratio stays meaningful.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Row, format_value, log
from benchmarks.label_speed import _block_medians, _face_crop

TARGET_MS = 30.0


def _stripped_zoo(zoo: Path, dest: Path) -> Path:
    """A copy of ``zoo`` whose model files have only the ``logits`` output (as before the maps existed)."""
    import onnx

    shutil.copytree(zoo, dest)
    for f in dest.glob("*.onnx"):
        model = onnx.load(str(f))
        keep = [o for o in model.graph.output if o.name == "logits"]
        del model.graph.output[:]
        model.graph.output.extend(keep)
        onnx.save(model, str(f))
    return dest


def saliency_rows(zoo: str | os.PathLike | None = None, quick: bool = False) -> list[Row]:
    """Maps on: ``Labeler.explain`` ms per face (1 and 8 faces per call). Maps off: classify on this zoo ÷ on
    the same zoo stripped of the extra outputs."""
    from app.models import Labeler, ZooError

    try:
        labeler = Labeler(zoo, threads=None)
    except ZooError as e:
        return [Row("saliency maps", None, "ms/face", "", f"skipped: {' '.join(str(e).split())}")]
    repeats = 20 if quick else 100
    one = _face_crop()[None]
    eight = np.repeat(one, 8, axis=0)
    methods = ", ".join(f"{m.display_name} {labeler.saliency_method(m.name)}" for m in labeler.models)
    threads = f"onnxruntime {labeler.threads} thread{'s' if labeler.threads != 1 else ''}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fns = {"explain1": lambda: labeler.explain(one), "explain8": lambda: labeler.explain(eight),
               "classify1": lambda: labeler.classify(one)}
        try:
            stripped = Labeler(_stripped_zoo(labeler.zoo_dir, Path(tmp) / "zoo"), threads=labeler.threads)
            fns["plain1"] = lambda: stripped.classify(one)
            fns["plain8"] = lambda: stripped.classify(eight)
            fns["classify8"] = lambda: labeler.classify(eight)
        except ImportError:
            stripped = None
            log("saliency: the onnx package is missing, so the maps-off comparison is skipped")
        log(f"saliency: timing {methods}")
        med = _block_medians(fns, repeats)
    per_model = []
    for m in labeler.models:
        single = copy.copy(labeler)
        single.models = [m]
        t = _block_medians({"e": lambda s=single: s.explain(one)}, max(10, repeats // 2))["e"]
        per_model.append(f"{m.display_name} {1000 * t:.1f}")
    rows.append(Row("saliency maps on: all models, every class (Labeler.explain)", 1000 * med["explain1"],
                    "ms/face", str(repeats),
                    f"target <= {TARGET_MS:.0f}; 1 face per call, on top of labelling ({1000 * med['classify1']:.2f} "
                    f"ms/face); {format_value(1000 * med['explain8'] / 8)} ms/face in a batch of 8; per model "
                    f"{', '.join(per_model)} ms; {methods}; {threads}"))
    if stripped is not None:
        ratio1 = med["classify1"] / med["plain1"]
        ratio8 = med["classify8"] / med["plain8"]
        rows.append(Row("saliency maps off: labelling with the maps' extra outputs ÷ without", ratio1, "x",
                        str(repeats), f"target ~1.00; 1 face per call {1000 * med['classify1']:.2f} against "
                        f"{1000 * med['plain1']:.2f} ms; batch of 8: {ratio8:.2f}x; interleaved in one run"))
    return rows
