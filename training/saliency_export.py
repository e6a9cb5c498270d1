"""Make exported models explainable by the app: extra graph outputs plus a small explainer graph, from ONNX alone.

The app has no torch and onnxruntime computes no gradients, yet Grad-CAM and input gradients need one: the
gradient of a logit with respect to the last convolutional features (or the pixels). For our heads that gradient
is a short chain of matrix products, ``W_last^T diag(bn_scale * act') W^T ...``, whose only per-face parts are
the activation derivatives. So this step (a) adds the last conv features and each hidden activation of the head
as extra outputs of the model graph and (b) writes ``<model>.saliency.onnx``, a graph holding the head's
constants that turns those outputs into maps for every class (``app/models/_saliency.py`` runs both). Why two graphs:

* onnxruntime computes every node of a graph whatever outputs are fetched (measured: an unfetched 20-MatMul
  branch still cost its full time), so the maps' arithmetic must not live in the model graph, or labelling with
  the maps off would pay for it; extra outputs of tensors the graph computes anyway cost nothing measurable
  (``python -m benchmarks --only saliency``), and labelling fetches only ``logits``.
* No model file is duplicated: the ResNet18's explainer holds only its FC layer (7 KB), the CNN's its two FC
  layers (3.5 MB as float16: HiResCAM needs the first one's weight for every position), the FF's every layer
  (6 MB as float16).

Idempotent: rerunning rewrites nothing that is already right. ``training.export`` runs it on every model it
exports. By hand (after replacing a model file some other way)::

    python -m training.saliency_export --zoo models_zoo
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from app.core import atomic_path
from training.manifest import read_manifest, write_manifest

LOGITS = "logits"
SUFFIX = ".saliency.onnx"
LINEAR_OPS = {"Gemm", "MatMul", "MatMulInteger"}
ACT_OPS = {"Relu", "LeakyRelu"}
# Which method the app shows by default, per explainer method, from benchmarks/saliency_deletion.py on 600
# PublicTest faces (README, "Why this label"): the FF's input gradient was less faithful than occlusion (deletion
# AUC 0.304 against 0.167 with grey fill, random order 0.395), and occlusion of a pixel MLP is cheap (121 runs of
# a 0.06 ms model); for the conv models occlusion costs 0.5-0.8 s per face, far over the 30 ms budget.
SHOWN = {"input-gradient": "occlusion"}
FP16_MIN = 1024  # larger constants are stored float16 (half the bytes; a map needs no more precision)


class NotExplainable(ValueError):
    """The graph is not one of the shapes this step knows (the app falls back to occlusion)."""


def _values(model) -> dict[str, np.ndarray]:  # noqa: ANN001 - onnx.ModelProto
    """Every constant tensor: initializers, Constant nodes, and Casts (fp16 weights) or Identities of those."""
    from onnx import numpy_helper

    vals = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            vals[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type in ("Cast", "Identity") and node.input[0] in vals:  # Identity: deduplicated constants
            vals[node.output[0]] = vals[node.input[0]].astype(np.float32)
    return vals


def _linear_weight(node, producer: dict, consumers: dict, vals: dict) -> np.ndarray:  # noqa: ANN001
    """The layer's weight as an ``[in, out]`` float32 matrix, dequantised for MatMulInteger."""
    if node.op_type == "MatMul":
        return vals[node.input[1]].astype(np.float32)
    if node.op_type == "Gemm":
        attrs = {a.name: a.i for a in node.attribute}
        w = vals[node.input[1]].astype(np.float32)
        return w.T if attrs.get("transB", 0) else w
    q = vals[node.input[1]].astype(np.float32)
    zp = vals[node.input[3]].astype(np.float32) if len(node.input) > 3 and node.input[3] in vals else 0.0
    # onnxruntime's dynamic quantisation: MatMulInteger -> Cast -> Mul(cast, Mul(x_scale, w_scale)).
    cast = consumers[node.output[0]][0]
    mul = consumers[cast.output[0]][0]
    scale_name = next(i for i in mul.input if i != cast.output[0])
    inner = producer.get(scale_name)
    scale = next(vals[i] for i in inner.input if i in vals) if inner is not None else vals[scale_name]
    return ((q - zp) * np.asarray(scale, np.float32)).astype(np.float32)


def analyse(model) -> dict:  # noqa: ANN001 - onnx.ModelProto
    """Find the map's ingredients: method, the tensors to expose, and the head's constants.

    The head is the chain of linear layers after the graph's last Flatten, each but the last followed by an
    optional BatchNormalization and a ReLU or LeakyReLU, ending in ``logits``. If the Flatten reads a pooled conv
    feature map (MaxPool or GlobalAveragePool), the method is Grad-CAM on the pool's input (for a GAP head that
    is exactly CAM); if the head reads the pixels, the input gradient.
    """
    nodes = list(model.graph.node)
    vals = _values(model)
    producer = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    flats = [i for i, n in enumerate(nodes) if n.op_type == "Flatten"]
    after = nodes[flats[-1] + 1:] if flats else nodes
    layers: list[dict] = []
    for n in after:  # topological order
        if n.op_type in LINEAR_OPS and n.input[1] in vals:
            layers.append({"w": _linear_weight(n, producer, consumers, vals), "scale": None, "act": None,
                           "slope": 0.0})
        elif n.op_type == "BatchNormalization" and layers:
            g, _, _, var = (vals[i].astype(np.float64) for i in n.input[1:5])
            eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
            layers[-1]["scale"] = (g / np.sqrt(var + eps)).astype(np.float32)
        elif n.op_type in ACT_OPS and layers and layers[-1]["act"] is None:
            layers[-1]["act"] = n.output[0]
            layers[-1]["slope"] = next((a.f for a in n.attribute if a.name == "alpha"),
                                       0.0 if n.op_type == "Relu" else 0.01)
    if not layers or any(x["act"] is None for x in layers[:-1]) or layers[-1]["act"] is not None:
        raise NotExplainable("the head is not linear layers with activations ending in logits")
    for a, b in zip(layers, layers[1:], strict=False):
        if a["w"].shape[1] != b["w"].shape[0]:
            raise NotExplainable("the head's layer sizes do not chain")
    pool = producer.get(nodes[flats[-1]].input[0]) if flats else None
    if pool is not None and pool.op_type == "MaxPool":
        attrs = {a.name: list(a.ints) for a in pool.attribute}
        kernel, strides = attrs.get("kernel_shape"), attrs.get("strides")
        if kernel == strides and not any(attrs.get("pads", [])) and len(kernel or []) == 2:
            # A Flatten head weighs every position differently: HiResCAM keeps that (Grad-CAM averages it away).
            return {"method": "hirescam", "features": pool.input[0], "layers": layers, "stride": kernel,
                    "alternatives": ["grad-cam"]}
        return {"method": "grad-cam", "features": pool.input[0], "layers": layers}
    if pool is not None and pool.op_type == "GlobalAveragePool":
        return {"method": "cam", "features": pool.input[0], "layers": layers}  # = Grad-CAM = HiResCAM here
    before = {n.op_type for n in nodes[:flats[0]]} if flats else {"?"}
    if layers[0]["w"].shape[0] >= 16 * 16 and before <= {"Sub", "Div", "Cast", "Identity", "Constant"}:
        # a pixel MLP: the first layer reads the flattened input, normalised by constants only
        per_image = any(n.op_type == "ReduceMean" for n in nodes)
        return {"method": "input-gradient", "features": None, "layers": layers, "per_image": per_image}
    raise NotExplainable("the head neither follows a pooled conv feature map nor reads the pixels")


def _shape(model, name: str) -> list[int | None]:  # noqa: ANN001
    """Static dims of tensor ``name`` from ONNX shape inference (None where symbolic)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        if vi.name == name:
            return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    raise NotExplainable(f"cannot infer the shape of {name}")


def explainer_graph(info: dict, feature_shape: list | None, input_hw: tuple[int, int]):  # noqa: ANN201
    """The maps as a small ONNX graph: inputs are the model's exposed tensors, output ``maps`` ``[N, C, h, w]``.

    The class gradient runs back through the head as ``G <- (G * act'(a) * bn_scale) @ W^T`` per hidden layer,
    starting from the logits layer's rows ``W_last^T`` (every class at once). Grad-CAM alone needs only each
    channel's gradient summed over the pooled positions, so there the first layer's weight ``[K*S, out]`` is
    summed over its S positions per channel to ``[K, out]``; HiResCAM keeps every position.
    Large weights are stored float16 with a Cast back (as ``training.compress`` does). onnxruntime runs it,
    not numpy: numpy's OpenBLAS threads spin against the other work on a busy machine (measured 23 ms against
    2 ms single-threaded for the FF's first product) where ORT's sleep (``app.core.session_options``).
    """
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name: str, arr: np.ndarray) -> str:
        arr = np.asarray(arr)
        if arr.dtype == np.float32 and arr.size >= FP16_MIN:
            inits.append(numpy_helper.from_array(arr.astype(np.float16), name + "_fp16"))
            nodes.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
        else:
            inits.append(numpy_helper.from_array(arr, name))
        return name

    layers = info["layers"]
    hidden = layers[:-1]
    inputs = []
    if info["features"]:
        inputs.append(helper.make_tensor_value_info(info["features"], TensorProto.FLOAT, ["N", *feature_shape[1:]]))
    for layer in hidden:
        inputs.append(helper.make_tensor_value_info(layer["act"], TensorProto.FLOAT, ["N", layer["w"].shape[1]]))
    g = const("w_last_t", np.ascontiguousarray(layers[-1]["w"].T, np.float32))  # [C, J]
    classes = layers[-1]["w"].shape[1]
    for i in reversed(range(len(hidden))):
        layer = hidden[i]
        scale = layer["scale"] if layer["scale"] is not None else np.ones(layer["w"].shape[1], np.float32)
        on = const(f"on{i}", scale.astype(np.float32))
        off = const(f"off{i}", (scale * layer["slope"]).astype(np.float32))
        zero = const(f"zero{i}", np.zeros((), np.float32))
        axis = const(f"axis{i}", np.array([1], np.int64))
        w = layer["w"]
        if i == 0 and info["method"] in ("grad-cam", "cam"):  # (HiResCAM keeps every position's weight)
            w = w.reshape(feature_shape[1], -1, w.shape[1]).sum(axis=1)  # [K, out]: summed over pooled positions
        wt = const(f"w{i}_t", np.ascontiguousarray(w.T, np.float32))  # [out, in]
        nodes += [
            helper.make_node("Greater", [layer["act"], zero], [f"pos{i}"]),
            helper.make_node("Where", [f"pos{i}", on, off], [f"d{i}"]),
            helper.make_node("Unsqueeze", [f"d{i}", axis], [f"du{i}"]),
            helper.make_node("Mul", [g, f"du{i}"], [f"gd{i}"]),
            helper.make_node("MatMul", [f"gd{i}", wt], [f"g{i}"]),
        ]
        g = f"g{i}"
    outputs = ["maps"]
    if info["method"] == "hirescam":
        # d logit / d A is d logit / d P routed to each pooling window's maximum; HiResCAM sums that times A
        # over channels per position (Draelos and Carin, 2020). Nearest-upsampling by the stride and a mask of
        # the window maxima do the routing. Grad-CAM, the channel-averaged version, is a second output.
        _, k, h, w = feature_shape
        sh, sw = info["stride"]
        ph, pw = h // sh, w // sw
        a = info["features"]
        up = const("up", np.ones((1, 1, 1, 1, sh, 1, sw), np.float32))
        nodes += [
            helper.make_node("Reshape", [g, const("gp_shape", np.array([-1, classes, k, ph, 1, pw, 1], np.int64))],
                             ["gp"]),
            helper.make_node("Mul", ["gp", up], ["gp_up"]),
            helper.make_node("Reshape", ["gp_up", const("gu_shape", np.array([-1, classes, k, h, w], np.int64))],
                             ["gu"]),
            helper.make_node("MaxPool", [a], ["pooled"], kernel_shape=[sh, sw], strides=[sh, sw]),
            helper.make_node("Reshape", ["pooled", const("p7_shape", np.array([-1, 1, k, ph, 1, pw, 1], np.int64))],
                             ["p7"]),
            helper.make_node("Mul", ["p7", up], ["p7_up"]),
            helper.make_node("Reshape", ["p7_up", const("pu_shape", np.array([-1, 1, k, h, w], np.int64))], ["pu"]),
            helper.make_node("Unsqueeze", [a, const("ax1", np.array([1], np.int64))], ["a5"]),
            helper.make_node("Equal", ["a5", "pu"], ["is_max"]),
            helper.make_node("Cast", ["is_max"], ["is_max_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["a5", "is_max_f"], ["a_max"]),
            helper.make_node("Mul", ["gu", "a_max"], ["contrib"]),
            helper.make_node("ReduceSum", ["contrib", const("ax2", np.array([2], np.int64))], ["hires"], keepdims=0),
            helper.make_node("Relu", ["hires"], ["maps"]),
            # Grad-CAM: alpha_k = the mean over positions of the same gradient.
            helper.make_node("ReduceSum", ["gp", const("ax3456", np.array([3, 4, 5, 6], np.int64))], ["gsum"],
                             keepdims=0),
            helper.make_node("Mul", ["gsum", const("inv_positions", np.float32(1.0 / (h * w)))], ["alpha"]),
            helper.make_node("Reshape", [a, const("flat_shape", np.array([0, k, h * w], np.int64))], ["feats_flat"]),
            helper.make_node("MatMul", ["alpha", "feats_flat"], ["cam_flat"]),
            helper.make_node("Relu", ["cam_flat"], ["cam_pos"]),
            helper.make_node("Reshape", ["cam_pos", const("map_shape", np.array([-1, classes, h, w], np.int64))],
                             ["maps:grad-cam"]),
        ]
        outputs.append("maps:grad-cam")
        out_hw = (h, w)
    elif info["method"] in ("grad-cam", "cam"):
        _, k, h, w = feature_shape
        nodes += [
            helper.make_node("Mul", [g, const("inv_positions", np.float32(1.0 / (h * w)))], ["alpha"]),
            helper.make_node("Reshape", [info["features"], const("flat_shape", np.array([0, k, h * w], np.int64))],
                             ["feats_flat"]),
            helper.make_node("MatMul", ["alpha", "feats_flat"], ["cam_flat"]),
            helper.make_node("Relu", ["cam_flat"], ["cam_pos"]),
            helper.make_node("Reshape", ["cam_pos", const("map_shape", np.array([-1, classes, h, w], np.int64))],
                             ["maps"]),
        ]
        out_hw = (h, w)
    else:
        hh, ww = input_hw
        if info.get("per_image"):  # back through (x - mean(x)) / std(x) per face: a projection
            inputs.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, hh, ww]))
            m = float(hh * ww)
            nodes += [
                helper.make_node("Reshape", ["input", const("px_shape", np.array([0, 1, -1], np.int64))], ["px"]),
                helper.make_node("ReduceMean", ["px"], ["px_mean"], axes=[2], keepdims=1),
                helper.make_node("Sub", ["px", "px_mean"], ["px_c"]),
                helper.make_node("Mul", ["px_c", "px_c"], ["px_sq"]),
                helper.make_node("ReduceSum", ["px_sq", const("ax2", np.array([2], np.int64))], ["px_ss"],
                                 keepdims=1),
                helper.make_node("Mul", ["px_ss", const("inv_m1", np.float32(1 / (m - 1)))], ["px_var"]),
                helper.make_node("Sqrt", ["px_var"], ["px_sd"]),
                helper.make_node("Max", ["px_sd", const("sd_min", np.float32(1e-3))], ["sd"]),
                helper.make_node("Div", ["px_c", "sd"], ["z"]),
                helper.make_node("ReduceMean", [g], ["g_mean"], axes=[2], keepdims=1),
                helper.make_node("Mul", [g, "z"], ["gz"]),
                helper.make_node("ReduceSum", ["gz", "ax2"], ["gz_sum"], keepdims=1),
                helper.make_node("Mul", ["gz_sum", "inv_m1"], ["gz_m"]),
                helper.make_node("Mul", ["z", "gz_m"], ["z_gz"]),
                helper.make_node("Sub", [g, "g_mean"], ["g_c"]),
                helper.make_node("Sub", ["g_c", "z_gz"], ["g_p"]),
                helper.make_node("Div", ["g_p", "sd"], ["g_px"]),
            ]
            g = "g_px"
        nodes += [
            helper.make_node("Abs", [g], ["g_abs"]),
            helper.make_node("Reshape", ["g_abs", const("map_shape", np.array([-1, classes, hh, ww], np.int64))],
                             ["maps"]),
        ]
        out_hw = (hh, ww)
    graph = helper.make_graph(nodes, f"saliency_{info['method']}", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", classes, *out_hw])
                               for o in outputs],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="emotionlens")
    model.ir_version = 8
    return model


def prepare_model(onnx_path: str | Path) -> dict:
    """Expose the map's tensors as extra outputs of ``onnx_path`` and write its explainer graph beside it
    (``<model>.saliency.onnx``); return the manifest's record.

    Rewrites the model file only when its outputs change, atomically. Raises NotExplainable for unknown graphs.
    """
    import onnx
    from onnx import TensorProto, helper

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path))
    info = analyse(model)
    exposed = ([info["features"]] if info["features"] else []) + [layer["act"] for layer in info["layers"][:-1]]
    outputs = list(model.graph.output)
    logits = [o for o in outputs if o.name == LOGITS]
    if not logits:
        raise NotExplainable("no 'logits' output")
    if [o.name for o in outputs] != [LOGITS, *exposed]:
        inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
        del model.graph.output[:]
        model.graph.output.extend(logits + [inferred.get(n) or helper.make_tensor_value_info(n, TensorProto.FLOAT, [])
                                            for n in exposed])
        onnx.checker.check_model(model)
        with atomic_path(onnx_path) as tmp:
            onnx.save(model, str(tmp))
    feature_shape = _shape(model, info["features"]) if info["features"] else None
    if feature_shape is not None and (len(feature_shape) != 4 or None in feature_shape[1:]):
        raise NotExplainable(f"the feature map {info['features']} has no static [N, K, h, w] shape")
    in_shape = _shape(model, "input")
    explainer = explainer_graph(info, feature_shape, (in_shape[2] or 48, in_shape[3] or 48))
    onnx.checker.check_model(explainer)
    target = onnx_path.with_name(onnx_path.stem + SUFFIX)
    data = explainer.SerializeToString()
    if not target.is_file() or target.read_bytes() != data:
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(data)
    return {
        "method": info["method"],
        "shown": SHOWN.get(info["method"], info["method"]),
        "features": info["features"],
        "activations": [layer["act"] for layer in info["layers"][:-1]],
        "explainer": target.name,
        "explainer_inputs": [i.name for i in explainer.graph.input],
        "model_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
    }


def prepare_zoo(zoo_dir: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """Run :func:`prepare_model` on the zoo's models (or ``names``) and record each in the manifest.

    Returns ``{name: method}``; a model this step cannot explain gets no ``saliency`` record (the app then uses
    occlusion for it) and ``"occlusion (…reason…)"`` here.
    """
    zoo_dir = Path(zoo_dir)
    if not (zoo_dir / "manifest.json").is_file():
        raise ValueError(f"{zoo_dir / 'manifest.json'}: not found; export models first (python -m training.export)")
    manifest = read_manifest(zoo_dir)
    done: dict[str, str] = {}
    for entry in manifest["models"]:
        if names and entry["name"] not in names:
            continue
        try:
            entry["saliency"] = prepare_model(zoo_dir / entry["file"])
            done[entry["name"]] = f"{entry['saliency']['method']} (shown: {entry['saliency']['shown']})"
        except NotExplainable as e:
            entry.pop("saliency", None)
            done[entry["name"]] = f"occlusion ({e})"
        except OSError:
            raise
        except Exception as e:  # a damaged model file (protobuf DecodeError, onnx ValidationError, ...)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ValueError(f"{zoo_dir / entry['file']}: cannot prepare its saliency maps ({first})") from None
    write_manifest(zoo_dir, manifest)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.saliency_export",
        description="Add the saliency maps' extra outputs to the zoo's ONNX files, write each model's "
        "<model>.saliency.onnx (the head's gradient as a small graph) and record both in manifest.json. "
        "Idempotent; training.export runs "
        "it for every model it exports, so run it by hand only after replacing a model file some other way.",
        epilog="example: python -m training.saliency_export --zoo models_zoo",
    )
    p.add_argument("--zoo", default="models_zoo", help="zoo folder with manifest.json (default: %(default)s)")
    p.add_argument("--name", action="append", help="only this model (repeatable; default: every model)")
    args = p.parse_args(argv)
    try:
        done = prepare_zoo(args.zoo, args.name)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, method in done.items():
        print(f"{name}: {method}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
