"""--provider: names map to ONNX Runtime's providers, auto picks the best installed one, and asking for one
that is not installed is a one-line error naming what is (the batch CLI's exit 2 is in test_cluster.py)."""

from __future__ import annotations

import pytest

from app.core import ProviderError, describe, resolve
from app.core._onnx import PROVIDERS

CPU = "CPUExecutionProvider"


def test_names_map_to_ort_providers_with_the_cpu_behind():
    assert resolve("cpu", [CPU]) == [CPU]
    assert resolve("cuda", ["CUDAExecutionProvider", CPU]) == ["CUDAExecutionProvider", CPU]
    assert resolve("directml", ["DmlExecutionProvider", CPU]) == ["DmlExecutionProvider", CPU]
    assert resolve("coreml", ["CoreMLExecutionProvider", CPU]) == ["CoreMLExecutionProvider", CPU]
    assert {describe(resolve(n, list(PROVIDERS.values()))) for n in PROVIDERS} == set(PROVIDERS)


def test_auto_takes_the_best_installed_else_the_cpu():
    assert resolve("auto", ["AzureExecutionProvider", CPU]) == [CPU]
    assert resolve("auto", ["CoreMLExecutionProvider", CPU])[0] == "CoreMLExecutionProvider"
    assert resolve("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU])[0] == "CUDAExecutionProvider"


def test_a_missing_provider_is_one_line_naming_what_is_installed():
    with pytest.raises(ProviderError) as e:
        resolve("cuda", ["AzureExecutionProvider", CPU])
    assert str(e.value) == ("--provider cuda: this onnxruntime has CPUExecutionProvider only; install "
                            "onnxruntime-gpu (and uninstall onnxruntime) for CUDA")
    with pytest.raises(ProviderError, match="has CPUExecutionProvider, CoreMLExecutionProvider; install "
                       "onnxruntime-directml"):
        resolve("directml", [CPU, "CoreMLExecutionProvider"])
    with pytest.raises(ProviderError, match="unknown; choose one of auto, cpu, cuda, coreml, directml"):
        resolve("tpu", [CPU])


def test_labeler_takes_a_provider_and_keeps_its_old_signature(tiny_zoo):
    import onnxruntime as ort

    from app.models import Labeler

    labeler = Labeler(tiny_zoo, 1, detector="haar", eye_check=True, tta=False)
    assert labeler.provider == "cpu" and labeler.providers == [CPU]
    assert Labeler(tiny_zoo, 1, provider="auto").provider == describe(resolve("auto"))
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ProviderError, match="--provider cuda: this onnxruntime has"):
            Labeler(tiny_zoo, 1, provider="cuda")
