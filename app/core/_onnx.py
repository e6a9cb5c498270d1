"""Which ONNX Runtime execution provider runs the zoo's models: ``--provider auto|cpu|cuda|coreml|directml``.

The CPU provider is in every onnxruntime wheel; the others come with other wheels (``onnxruntime-gpu`` for
CUDA, ``onnxruntime-directml`` on Windows, the macOS wheels for CoreML). Asking for one the installed
onnxruntime lacks is a one-line :class:`ProviderError` naming what it has, never a silent fall back to the
CPU: a run that was meant for a GPU and crawls on the CPU is worse than one that stops at once.
Only the emotion models move; the detectors (Haar in OpenCV, MTCNN's small nets) stay on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from app.core._errors import EmotionLensError

# --provider name -> ONNX Runtime's provider name; "auto" tries them in this order, then the CPU.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
}
PROVIDER_CHOICES = ("auto", *PROVIDERS)
AUTO_ORDER = ("cuda", "directml", "coreml")
_INSTALL = {
    "cuda": "install onnxruntime-gpu (and uninstall onnxruntime) for CUDA",
    "directml": "install onnxruntime-directml (Windows) for DirectML",
    "coreml": "CoreML comes with onnxruntime's macOS wheels",
}


class ProviderError(EmotionLensError, ValueError):
    """The asked-for provider is unknown or not in this onnxruntime; one line naming what is installed."""


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve(name: str, available: Sequence[str] | None = None) -> list[str]:
    """ORT's provider list for ``--provider name``: the chosen one, then the CPU for operators it lacks.

    ``auto`` is the first of CUDA, DirectML, CoreML that ``available`` (default: this onnxruntime's) has, else
    the CPU. Raises :class:`ProviderError` for an unknown name or one that is not available.
    """
    have = list(available) if available is not None else available_providers()
    if name == "auto":
        name = next((n for n in AUTO_ORDER if PROVIDERS[n] in have), "cpu")
    if name not in PROVIDERS:
        raise ProviderError(f"--provider {name}: unknown; choose one of {', '.join(PROVIDER_CHOICES)}")
    wanted = PROVIDERS[name]
    if wanted not in have:
        known = [p for p in have if p in PROVIDERS.values()] or list(have)
        has = f"{known[0]} only" if len(known) == 1 else ", ".join(known)
        raise ProviderError(f"--provider {name}: this onnxruntime has {has}; {_INSTALL.get(name, '')}".rstrip("; "))
    return [wanted] if wanted == PROVIDERS["cpu"] else [wanted, PROVIDERS["cpu"]]


def describe(providers: Sequence[str]) -> str:
    """The --provider name of an ORT provider list, for summary.json: e.g. ``"cuda"``."""
    names = {v: k for k, v in PROVIDERS.items()}
    return names.get(providers[0], providers[0]) if providers else "cpu"


def default_threads() -> int:
    """Threads per ONNX session: the models are small, so more than 4 threads only adds overhead."""
    return max(1, min(4, os.cpu_count() or 1))


def session_options(threads: int):  # noqa: ANN201 - onnxruntime.SessionOptions, imported lazily
    """ORT options for one model: ``threads`` intra-op threads that sleep, not spin, when a run ends.

    By default ORT's pool threads busy-wait after each run for the next one. With three sessions (each with
    its own pool) and OpenCV's pool in one process, the spinning threads of one session steal the cores the
    next session needs. Measured on 2 cores with ``benchmarks/label_speed.py``'s ensemble rows (each model
    timed by itself, then the ensemble), spinning against sleeping in alternate runs: the ensemble cost
    1.6-1.8x the sum of its models alone per face (1.8-2.0x in batches of 8) at 2 and 4 threads with
    spinning, 0.98-1.16x (0.6-0.95x) without, and the ensemble itself became 5-20x faster per face.
    The price, in a one-off comparison on a quiet moment: a model run on its own, back to back, was up to ~10%
    slower without spinning (ResNet18 at 2 threads: 5.2 against 4.8 ms). ORT's global thread pool
    (``use_per_session_threads=False``, with spinning off) measured about the same as this, but must be
    configured once per process before the first session, which a library cannot promise its host (the
    GUI, tests). Merging the three graphs into one was not tried: at ~1.0x there is nothing left for it.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # ORT's warnings go to stderr and would garble the CLI's progress bar
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts
