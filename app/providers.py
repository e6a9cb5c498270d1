"""Which ONNX Runtime execution provider runs the zoo's models: ``--provider auto|cpu|cuda|coreml|directml``.

The CPU provider is in every onnxruntime wheel; the others come with other wheels (``onnxruntime-gpu`` for
CUDA, ``onnxruntime-directml`` on Windows, the macOS wheels for CoreML). Asking for one the installed
onnxruntime lacks is a one-line :class:`ProviderError` naming what it has, never a silent fall back to the
CPU: a run that was meant for a GPU and crawls on the CPU is worse than one that stops at once.
Only the emotion models move; the detectors (Haar in OpenCV, MTCNN's small nets) stay on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

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


class ProviderError(ValueError):
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
