"""Several processes, one model: PyTorch DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node N -m training.train ...`` (add ``--nnodes M --rdzv-endpoint HOST:PORT`` across
machines) sets RANK/WORLD_SIZE/LOCAL_RANK; :func:`setup` then joins the process group: NCCL on CUDA GPUs,
gloo on CPUs. Each process takes ``batch_size / N`` rows of every global batch (training.batches), DDP
averages the gradients, and only rank 0 writes files.

BatchNorm: per-process statistics over ``batch_size / N`` images would make a distributed step differ from a
single-process step on the same global batch. On CUDA, torch's SyncBatchNorm computes them over the global
batch; it refuses CPU tensors, so CPU (gloo) runs use :class:`GlobalBatchNorm`, the same computation written
with torch's differentiable ``all_reduce``. Either way a distributed run's steps equal a single process's
(tests/test_distributed.py checks it), and the saved weights load into the plain model.
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from training.device import DeviceError, resolve_device


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Dist()

# torch 2.14 deprecates the differentiable all_reduce GlobalBatchNorm needs, in favour of an API torch 2.11 (the
# GPU machines' build) lacks; it still works in both, so keep it and keep the logs quiet.
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_reduce is deprecated",
                        category=FutureWarning)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> Dist:
    """The process group this process belongs to (SINGLE when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return SINGLE
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())


def local_device(spec: str | torch.device | None) -> torch.device:
    """The device of this process: ``--device`` as given, but ``cuda``/``auto`` become ``cuda:LOCAL_RANK``
    under torchrun (one GPU per process; choose which with CUDA_VISIBLE_DEVICES)."""
    device = resolve_device(spec)
    if not launched_by_torchrun() or device.type != "cuda":
        return device
    if spec is not None and ":" in str(spec):
        raise DeviceError(f"--device {spec}: under torchrun each process takes cuda:LOCAL_RANK; give --device cuda "
                          "and pick GPUs with CUDA_VISIBLE_DEVICES")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if local >= torch.cuda.device_count():
        raise DeviceError(f"process with LOCAL_RANK {local} has no GPU: this machine has "
                          f"{torch.cuda.device_count()}; lower --nproc_per_node")
    return torch.device("cuda", local)


def setup(spec: str | torch.device | None) -> tuple[Dist, torch.device]:
    """Resolve the device (one-line DeviceError if missing) and, under torchrun, join the process group."""
    device = local_device(spec)
    if not launched_by_torchrun():
        return SINGLE, device
    if not dist.is_available():
        raise DeviceError("this torch build has no torch.distributed; run without torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return current(), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: torch.Tensor, ctx: Dist, device: torch.device) -> torch.Tensor:
    """Element-wise sum over processes, as a float64 CPU tensor (``values`` itself when not distributed)."""
    if not ctx.active:
        return values.detach().to("cpu", torch.float64)
    t = values.detach().to(device, torch.float64).clone()
    dist.all_reduce(t)
    return t.cpu()


def all_max(value: float, ctx: Dist, device: torch.device) -> float:
    if not ctx.active:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast(obj, ctx: Dist, device: torch.device):  # noqa: ANN001, ANN201 - any picklable object
    """Rank 0's ``obj`` on every rank (resume state, the run folder), without a shared file system."""
    if not ctx.active:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


# --------------------------------------------------------------------------------------------- BatchNorm


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch of all processes (any device, any backend).

    Two differentiable all-reduces per layer (sum, then the squared deviations from the global mean, which is
    as exact as a single process's two-pass variance); the backward pass all-reduces their gradients, as
    SyncBatchNorm does. Eval mode uses the running statistics, identical on every rank, with no communication.
    """

    def __init__(self, *args, group=None, **kw):  # noqa: ANN001, ANN002, ANN003
        super().__init__(*args, **kw)
        self.group = group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D to 5D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        local_n = torch.tensor([xf.numel() / xf.shape[1]], device=x.device)
        sums = all_reduce(torch.cat([xf.sum(dims), local_n]), group=self.group)
        n = sums[-1]
        mean = sums[:-1] / n
        centred = xf - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims), group=self.group) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / (n - 1).clamp(min=1))
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm normalises over the global batch: SyncBatchNorm on CUDA, GlobalBatchNorm elsewhere.

    The replacements keep the parameter and buffer names, so checkpoints load into the plain model."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    group = dist.new_group(backend="gloo")  # its own group: BN's collectives never interleave with DDP's
    return _replace_bn(module, group)


def _replace_bn(module: nn.Module, group) -> nn.Module:  # noqa: ANN001
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, group=group)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out = out.to(module.running_mean.device if module.running_mean is not None else "cpu")
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _replace_bn(child, group))
    return out


def wrap(model: nn.Module, ctx: Dist, device: torch.device) -> nn.Module:
    """DDP around ``model`` (already on ``device``, BatchNorm converted); the model itself when single."""
    if not ctx.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # Buffers (BN running statistics) are computed from the global batch, hence identical: no per-step sync.
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters
               else "broadcast_buffers")  # renamed after torch 2.11
    return DDP(model, device_ids=ids, **{no_sync: False})
