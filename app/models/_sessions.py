"""ONNX Runtime sessions for the app's models: thread options that play well beside OpenCV and each other, and
the zoo's contract check (``open_model``) that every tool opening a model file goes through.

Kept apart from :mod:`app.models._labeler` so the detector (MTCNN's three nets) and the training tools' evaluation
open their sessions the same way without importing the labelling pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.models._zoo import ZooError


def open_model(
    ort, file: Path, name: str, opts, input_size: tuple[int, int], n_classes: int,  # noqa: ANN001 - lazy ort
    providers: list[str] | None = None,
) -> tuple[object, bytes]:
    """Open an ONNX model and check it against the zoo's contract (one float32 ``input`` [N, 1, H, W], first
    output ``logits`` [N, n_classes], run on two blank faces); returns the session and the file's bytes.

    ``providers`` is ORT's list (:func:`app.core.resolve`; default the CPU only). A session that did not
    get the first one (a CUDA wheel without its CUDA libraries: ORT falls back to the CPU with a warning) is a
    :class:`app.core.ProviderError`, so a GPU run never crawls on the CPU unnoticed.

    Every failure is a :class:`ZooError` naming the file, so the app, the batch and the evaluation tools all
    print one line for a missing, corrupt or foreign model instead of onnxruntime's traceback.
    """
    try:
        blob = Path(file).read_bytes()  # bytes, not a path: ORT cannot open non-ASCII paths on Windows
    except OSError as e:
        raise ZooError(f"{file}: cannot read model {name!r} ({e.strerror or e})") from None
    try:
        sess = ort.InferenceSession(blob, sess_options=opts, providers=providers or ["CPUExecutionProvider"])
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ZooError(f"{file}: model {name!r} is not a valid ONNX model ({first})") from None
    if providers and providers[0] not in sess.get_providers():
        from app.core import ProviderError, describe

        raise ProviderError(f"--provider {describe(providers)}: {providers[0]} is installed but could not start "
                            f"(its libraries or device are missing); this session runs on {sess.get_providers()}")
    ins, outs = sess.get_inputs(), sess.get_outputs()
    if [i.name for i in ins] != ["input"] or not outs or outs[0].name != "logits":
        raise ZooError(
            f"{file}: model {name!r} must have one input 'input' and first output 'logits', has inputs "
            f"{[i.name for i in ins]} and outputs {[o.name for o in outs]}"
        )
    shape = ins[0].shape
    h, w = input_size
    fixed_wrong = any(isinstance(d, int) and d != e for d, e in zip(shape[2:], (h, w), strict=False))
    if len(shape) != 4 or shape[1] != 1 or fixed_wrong:
        raise ZooError(f"{file}: model {name!r} input must be [N, 1, {h}, {w}], has {shape}")
    if ins[0].type != "tensor(float)":
        raise ZooError(f"{file}: model {name!r} input must be float32, is {ins[0].type}")
    try:  # the declared output shape may be symbolic: run two blank faces to check the real one
        out = sess.run(["logits"], {"input": np.zeros((2, 1, h, w), np.float32)})[0]
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ZooError(f"{file}: model {name!r} fails on a [2, 1, {h}, {w}] input ({first})") from None
    if np.shape(out) != (2, n_classes):
        raise ZooError(
            f"{file}: model {name!r} output 'logits' must be [N, {n_classes}], got {list(np.shape(out))} for N=2"
        )
    return sess, blob
