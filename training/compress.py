"""Smaller ONNX files for the bundle, kept only when PublicTest accuracy holds.

Two formats, chosen by measurement on this project's models:

* ``fp16``: weights stored as float16 and cast back to float32 once, when onnxruntime loads the model (it folds
  the Cast nodes into constants), so inference runs in fp32 at fp32 speed from a file half the size.
* ``int8``: onnxruntime's dynamic quantization, per channel. It suits the fully connected ``ff`` (4x smaller and
  faster), but its integer convolutions ran 5x slower than fp32 for the CNN and ResNet18 here, so use ``fp16``
  for those. Its activation scale comes from the whole batch, so a face's logits depend slightly on the other
  faces in its batch; the shipped zoo uses fp16 for that reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from app.core import atomic_path

FORMATS = ("fp32", "fp16", "int8")
MIN_ELEMENTS = 1024  # small tensors (biases, BatchNorm) stay fp32: no size to win, only precision to lose


def to_fp16_weights(src: str | Path, dst: str | Path) -> Path:
    """Store large float32 initializers as float16 with a Cast back to float32 in front of their users."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= MIN_ELEMENTS:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


def to_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic per-channel int8 quantization of the weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    return Path(dst)


def compress(src: str | Path, fmt: str, dst: str | Path | None = None) -> Path:
    """Write ``src`` in ``fmt`` to ``dst`` (default: replace ``src`` atomically)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown weights format {fmt!r}; choose from {', '.join(FORMATS)}")
    src = Path(src)
    target = Path(dst) if dst else src
    if fmt == "fp32":
        if target != src:
            target.write_bytes(src.read_bytes())
        return target
    with atomic_path(target) as tmp:
        (to_fp16_weights if fmt == "fp16" else to_int8)(src, tmp)
    return target
