"""Choosing the device a run trains on: ``--device auto|cpu|cuda|cuda:N|mps``.

One place decides, so train, anneal, evaluate, ablation and the benchmarks agree on what ``auto`` means
(CUDA, else Apple MPS, else the CPU) and on the one-line error for a device that is not there. Nothing here
allocates on the device beyond what torch needs to answer "is it there?".
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass

import torch

DEVICE_HELP = (
    "where to train: auto (CUDA, else Apple MPS, else CPU), cpu, cuda, cuda:N or mps; "
    "e.g. --device cuda:1 (default: auto)"
)


class DeviceError(ValueError):
    """The asked-for device is not on this machine or not in this torch build; the message is one line."""


@dataclass(frozen=True)
class DeviceInfo:
    """What a run records about its device in history.json, the manifest, trials.csv and best.json."""

    device: str  # torch's spelling: "cpu", "cuda:0", "mps"
    name: str  # human-readable: the GPU's name, or the CPU's
    torch_version: str

    def as_dict(self) -> dict:
        return {"device": self.device, "device_name": self.name, "torch": self.torch_version}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo (Linux), else None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "CPU"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where unknown."""
    return set((_cpuinfo("flags") or "").split())


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``spec``; raises DeviceError (one line) when it is not available here."""
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise DeviceError(f"--device {text}: this torch {torch.__version__} is built without CUDA; "
                              "install a CUDA build of torch or use --device cpu")
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {text}: no CUDA GPU is visible on this machine (driver missing or "
                              "CUDA_VISIBLE_DEVICES empty); use --device cpu")
        index = 0 if dev.index is None else dev.index
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"--device {text}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(f"--device {text}: Apple MPS is not available here (needs macOS on Apple silicon "
                              "and an MPS build of torch); use --device cpu")
        return torch.device("mps")
    raise DeviceError(f"unsupported device {spec!r}: use auto, cpu, cuda, cuda:N or mps")


def describe(device: torch.device) -> DeviceInfo:
    """Name and torch version of ``device``, for logs and records."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = f"Apple MPS ({platform.machine()})"
    else:
        name = _cpu_name()
    return DeviceInfo(device=str(device), name=name, torch_version=torch.__version__)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """The same ``--device`` option on every training command."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
