"""Mixed precision per device: which autocast dtype a run trains in, and whether it needs a gradient scaler.

- CPUs with native bf16 (AVX-512 BF16 or AMX): bf16 autocast, measured 2.8-3.2x faster than fp32 for the CNN
  on this project's 2-core EPYC; CPUs without it emulate bf16 slower than fp32, so they train in fp32.
- CUDA GPUs with bf16 (Ampere and newer): bf16 autocast; no scaler needed (bf16 has fp32's range).
- Older CUDA GPUs: fp16 autocast with ``torch.amp.GradScaler``, so small gradients do not flush to zero.
- Apple MPS: fp32 (its autocast and scaler support varies across torch releases; not measured here).
- ``--no-amp`` / ``--no-bf16`` (``TrainConfig.bf16 = False``): fp32 everywhere.

Evaluation and export always run in fp32, the precision of the ONNX model the app ships.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from training.device import cpu_flags


@dataclass(frozen=True)
class Precision:
    name: str  # recorded in history.json and the manifest: "bf16 autocast", "fp16 autocast + grad scaler", "fp32"
    dtype: torch.dtype | None  # autocast dtype, None for fp32

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


FP32 = Precision("fp32", None)
BF16 = Precision("bf16 autocast", torch.bfloat16)
FP16 = Precision("fp16 autocast + grad scaler", torch.float16)


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX-BF16 in the CPU flags (Linux); elsewhere unknown, so no."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def choose_precision(device: torch.device, mixed: bool = True) -> Precision:
    """The fastest precision that trains as well as fp32 on ``device``; fp32 when ``mixed`` is off."""
    if not mixed:
        return FP32
    if device.type == "cuda":
        return BF16 if torch.cuda.is_bf16_supported() else FP16
    if device.type == "cpu":
        return BF16 if cpu_has_native_bf16() else FP32
    return FP32


def make_scaler(precision: Precision, device: torch.device):  # noqa: ANN201 - GradScaler or None
    """A gradient scaler for fp16 autocast, else None (``torch.amp.GradScaler`` exists since torch 2.3)."""
    return torch.amp.GradScaler(device.type) if precision.needs_scaler else None
