"""The three emotion models: ``cnn``, ``ff`` and ``resnet18``.

Every model takes the ONNX contract's input, ``[N, 1, 48, 48]`` float32 in ``[0, 1]``, and returns ``[N, 7]``
logits. Normalisation lives inside the model (:class:`Normalize`), so the exported graph needs no
pre-processing beyond dividing pixels by 255.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

NUM_CLASSES = 7
# Pixel mean/std of FER2013 Training (computed once with training.datasets; stable to 3 decimals).
FER_MEAN, FER_STD = 0.5077, 0.2550
MODEL_NAMES = ("cnn", "ff", "resnet18")
DISPLAY_NAMES = {"cnn": "CNN", "ff": "FF", "resnet18": "ResNet18"}


class Normalize(nn.Module):
    """Standardise ``[0, 1]`` pixels inside the graph, then run the wrapped network."""

    def __init__(self, net: nn.Module, mean: float = FER_MEAN, std: float = FER_STD):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def cnn(width: int = 32, dropout: float = 0.3, fc: int = 256) -> nn.Module:
    """VGG-style: 6 conv3x3+BN+ReLU layers, 2x2 max-pool after every two, dropout, two FC layers.

    ``width`` is the first block's channels; blocks double it (width, 2w, 4w). 48 -> 24 -> 12 -> 6.
    """
    w = (width, 2 * width, 4 * width)
    layers: list[nn.Module] = []
    cin = 1
    for cout in w:
        layers += _conv_bn_relu(cin, cout) + _conv_bn_relu(cout, cout) + [nn.MaxPool2d(2)]
        layers.append(nn.Dropout2d(dropout / 3) if dropout else nn.Identity())
        cin = cout
    head = [
        nn.Flatten(),
        nn.Linear(w[2] * 6 * 6, fc, bias=False),
        nn.BatchNorm1d(fc),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(fc, NUM_CLASSES),
    ]
    return nn.Sequential(*layers, *head)


class PerImageStandardize(nn.Module):
    """Subtract each face's own mean and divide by its own std: a pixel MLP cannot learn lighting invariance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(dim=1, keepdim=True)
        std = flat.std(dim=1, keepdim=True).clamp_min(1e-3)
        return (flat - mean) / std


def ff(
    hidden: tuple[int, ...] = (1024, 512, 256, 128), dropout: float = 0.3, slope: float = 0.01,
    per_image: bool = False,
) -> nn.Module:
    """Feed-forward net on the 2,304 pixels: Linear+BatchNorm+LeakyReLU+Dropout per hidden layer, Xavier init.

    ``per_image`` standardises each face by its own statistics first (inside the graph, so the ONNX contract holds).
    """
    layers: list[nn.Module] = [PerImageStandardize() if per_image else nn.Flatten()]
    cin = 48 * 48
    for h in hidden:
        layers += [nn.Linear(cin, h), nn.BatchNorm1d(h), nn.LeakyReLU(slope, inplace=True), nn.Dropout(dropout)]
        cin = h
    layers.append(nn.Linear(cin, NUM_CLASSES))
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("leaky_relu", slope))
            nn.init.zeros_(m.bias)
    return net


def resnet18(dropout: float = 0.0, pretrained: str | None = None, weights: str | None = None) -> nn.Module:
    """torchvision ResNet18 for 1-channel 48x48 faces.

    The stem keeps its 7x7 kernel (so ImageNet weights still fit) but with stride 1, and the max-pool stays:
    layer1 sees 24x24 instead of the stock 12x12, which keeps spatial detail of small faces at 4x the cost of
    the stock stem rather than the 16x of removing both strides. ``pretrained="imagenet"`` downloads
    torchvision's weights; ``weights=FILE`` loads a local state_dict (a torchvision ResNet18 one, 3- or
    1-channel conv1; the 1000-class fc is dropped). conv1 is adapted to one channel by averaging over RGB.
    """
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(num_classes=NUM_CLASSES)
    state = None
    if pretrained == "imagenet":
        state = _download_imagenet_state()
    elif pretrained not in (None, "", "none"):
        raise ValueError(f"unknown --pretrained {pretrained!r}; use 'imagenet' or give --weights FILE")
    if weights:
        state = load_state_dict_file(weights)
    if state is not None:
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
        if "conv1.weight" in state and state["conv1.weight"].shape[1] == 3:
            state["conv1.weight"] = state["conv1.weight"].mean(dim=1, keepdim=True)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=1, padding=3, bias=False)
    if state is not None:
        missing, unexpected = net.load_state_dict(state, strict=False)
        bad = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
        if bad:
            raise ValueError(f"weights do not fit ResNet18: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    if dropout:
        net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, NUM_CLASSES))
    return net


def _download_imagenet_state() -> dict[str, torch.Tensor]:
    from torchvision.models import ResNet18_Weights

    try:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
    except Exception as e:  # network errors come in many types (URLError, OSError, HTTPError, ...)
        raise RuntimeError(
            f"could not download ImageNet weights for ResNet18 ({type(e).__name__}: {e}); "
            "check your internet connection, or download resnet18-f37072fd.pth yourself and pass --weights FILE"
        ) from None


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state_dict (or a checkpoint holding one under ``state_dict``/``model``) from a local file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a PyTorch state_dict ({type(e).__name__})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a PyTorch state_dict")
    return obj


def build_model(name: str, **params) -> nn.Module:
    """Build a named model wrapped in :class:`Normalize`; ``params`` are the builder's keyword arguments."""
    builders = {"cnn": cnn, "ff": ff, "resnet18": resnet18}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    if name == "ff" and "hidden" in params:
        params["hidden"] = tuple(params["hidden"])
    return Normalize(builders[name](**params))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
