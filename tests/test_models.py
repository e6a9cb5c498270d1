"""The three networks: output shapes, in-graph normalisation, ResNet18 weight loading paths."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from training import models
from training.models import build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
@pytest.mark.parametrize("n", [1, 3])
def test_output_shape(name, n):
    model = build_model(name).eval()
    with torch.inference_mode():
        out = model(torch.rand(n, 1, 48, 48))
    assert out.shape == (n, 7) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_cnn_has_six_convs_with_batchnorm_and_three_pools():
    net = build_model("cnn", width=16).net
    kinds = [type(m).__name__ for m in net.modules()]
    assert kinds.count("Conv2d") == 6 and kinds.count("BatchNorm2d") == 6 and kinds.count("MaxPool2d") == 3
    assert all(m.kernel_size == (3, 3) for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_ff_uses_leaky_relu_and_xavier():
    net = build_model("ff", hidden=(64, 32)).net
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in net.modules()) == 2
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    bound = torch.nn.init.calculate_gain("leaky_relu", 0.01) * (6 / (2304 + 64)) ** 0.5
    assert first.weight.abs().max() <= bound + 1e-6 and torch.all(first.bias == 0)


def test_normalisation_is_inside_the_model():
    model = build_model("ff")
    assert torch.isclose(model.mean, torch.tensor(models.FER_MEAN))
    assert torch.isclose(model.std, torch.tensor(models.FER_STD))


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")


def test_resnet18_loads_local_three_channel_state_dict(tmp_path):
    from torchvision.models import resnet18 as tv_resnet18

    torch.manual_seed(0)
    reference = tv_resnet18()  # an "ImageNet-like" 3-channel, 1000-class state_dict
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", weights=str(path)).net
    expected = reference.conv1.weight.mean(dim=1, keepdim=True)
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert torch.allclose(model.conv1.weight, expected)
    assert torch.equal(model.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert model.fc.out_features == 7


def test_resnet18_weight_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_model("resnet18", weights=str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a PyTorch state_dict"):
        build_model("resnet18", weights=str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save({"layer9.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="weights do not fit ResNet18"):
        build_model("resnet18", weights=str(wrong))


def test_imagenet_download_failure_is_a_clear_message(monkeypatch):
    from torchvision.models import ResNet18_Weights

    def offline(self, *a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="could not download ImageNet weights.*--weights FILE"):
        build_model("resnet18", pretrained="imagenet")
