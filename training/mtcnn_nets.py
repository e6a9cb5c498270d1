"""MTCNN's three networks (P-Net, R-Net, O-Net) in our torch, shaped to load facenet-pytorch 2.6.0's weights.

Layer names and shapes follow ``facenet_pytorch/models/mtcnn.py`` exactly, so its ``data/{pnet,rnet,onet}.pt``
state dicts load with ``strict=True``; the package itself is never installed (it pins an old torch).
``packaging/build_mtcnn.py`` exports them to ONNX for ``app/detect/_mtcnn.py``; the tests rebuild them from those ONNX
files' weights to check that the app's numpy + onnxruntime pipeline computes what the torch nets compute.

ONNX contract (what ``Exported`` wraps around each net): input ``image`` float32 ``[N, 3, H, W]`` RGB in
0..255 (the (x - 127.5) / 128 scaling MTCNN was trained with is inside the graph); outputs ``prob`` (face
probability: ``[N, H', W']`` for P-Net, ``[N]`` for R-Net/O-Net), ``reg`` (box offsets, ``[N, 4, H', W']``
or ``[N, 4]``) and for O-Net ``landmarks`` ``[N, 10]`` (five x then five y, as fractions of the box).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class PNet(nn.Module):
    """Proposal net: fully convolutional, a 12x12 window per output cell at stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the weights came from TensorFlow: flatten in its (W, H, C) order
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output net on 48x48 crops: face probability, box offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


NETS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
INPUT_SIDE = {"pnet": 12, "rnet": 24, "onet": 48}  # the window each net was trained on


class Exported(nn.Module):
    """The ONNX contract around one net: 0..255 RGB in, the face probability alone (not both softmax columns)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net((image - 127.5) * 0.0078125)
        if isinstance(self.net, ONet):
            reg, landmarks, prob = out
            return prob[:, 1], reg, landmarks
        reg, prob = out
        return prob[:, 1], reg


def output_names(name: str) -> list[str]:
    return ["prob", "reg", "landmarks"] if name == "onet" else ["prob", "reg"]


def load_net(name: str, state_dict_path: str | Path) -> nn.Module:
    """``name`` ("pnet", "rnet", "onet") with facenet-pytorch's weights from ``state_dict_path``, in eval mode."""
    net = NETS[name]()
    state = torch.load(state_dict_path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.float().eval()


def net_from_onnx(name: str, onnx_path: str | Path) -> nn.Module:
    """Rebuild ``name`` with the weights stored in its exported ONNX file (the initializers keep torch's names).

    Lets the tests compare the ONNX graphs with the torch architecture without the wheel at hand.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    arrays = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    weights = {name.removeprefix("net."): a for name, a in arrays.items()}
    for node in model.graph.node:  # the exporter renames PReLU slopes ("onnx::PRelu_36"); the node keeps the layer
        if node.op_type == "PRelu" and node.input[1] in arrays:
            layer = node.name.strip("/").split("/")[-2]  # "/net/prelu1/PRelu" -> "prelu1"
            weights[f"{layer}.weight"] = arrays[node.input[1]]
    net = NETS[name]()
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in weights]
    if missing:
        raise ValueError(f"{onnx_path}: no initializer for {missing[:3]}")
    net.load_state_dict({k: weights[k].reshape(wanted[k].shape) for k in wanted}, strict=True)
    return net.float().eval()
