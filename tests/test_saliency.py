"""Saliency maps: the numpy gradients equal torch's autograd, maps have the crop's shape, and they point at the
only region a synthetic model looks at, for every method the app ships (Grad-CAM, input gradient, occlusion)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from app.models import Labeler
from app.models._saliency import finish
from app.outputs import overlay
from training.export import export_onnx
from training.manifest import manifest_entry, write_manifest
from training.models import Normalize, build_model, cnn, ff
from training.saliency_export import prepare_zoo

torch.set_num_threads(1)
REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = (slice(0, 10), slice(38, 48))  # the top-right 10x10 corner: the only pixels the synthetic models see


def _randomise_bn(model: nn.Module, kind: type = nn.modules.batchnorm._BatchNorm) -> None:
    for m in model.modules():
        if isinstance(m, kind):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)


def _zoo(tmp_path, models: dict[str, nn.Module]):
    zoo = tmp_path / "zoo"
    entries = []
    for name, model in models.items():
        export_onnx(model.eval(), zoo / f"{name}.onnx")
        entries.append(manifest_entry(name, f"{name}.onnx", {}, {}))
    write_manifest(zoo, {"classes": json.loads('["angry","disgust","fear","happy","sad","surprise","neutral"]'),
                         "models": entries})
    return zoo, prepare_zoo(zoo)


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def _torch_grad(model: nn.Module, x: np.ndarray, cls: int) -> np.ndarray:
    t = torch.from_numpy(x).requires_grad_(True)
    model(t)[:, cls].sum().backward()
    return t.grad.numpy()


def test_gradients_match_autograd(tmp_path):
    """Grad-CAM and the input gradient from the extra outputs + explainer graph equal torch's, on random weights."""
    torch.manual_seed(0)
    models = {"cnn": build_model("cnn", width=8, fc=16), "ff": build_model("ff", hidden=(32, 16)),
              "ffp": build_model("ff", hidden=(24,), per_image=True)}
    for m in models.values():
        _randomise_bn(m)
    zoo, methods = _zoo(tmp_path, models)
    assert methods == {"cnn": "hirescam (shown: hirescam)", "ff": "input-gradient (shown: occlusion)",
                       "ffp": "input-gradient (shown: occlusion)"}
    lab = Labeler(zoo, threads=1)
    crops = _crops(3)
    x = crops.astype(np.float32)[:, None] / 255
    for name in ("ff", "ffp"):
        head = lab._heads[name]
        outs = lab._sessions[name].run(["logits", *head.fetches], {"input": x})
        got = head.maps(x, outs[1:])
        for cls in (0, 3):
            want = np.abs(_torch_grad(models[name].eval(), x, cls))[:, 0]
            # Up to a constant factor (the maps are shown scaled to their peak); the weights are stored float16
            # in the explainer graph, so they agree to ~0.1% of the peak.
            peak = want.max(axis=(1, 2), keepdims=True)
            np.testing.assert_allclose(got[:, cls] / got[:, cls].max(axis=(1, 2), keepdims=True), want / peak,
                                       rtol=0, atol=3e-3)
    # HiResCAM and Grad-CAM by hand in torch: features of the last conv ReLU (before the last max-pool) and their
    # gradient; HiResCAM sums gradient x activation over channels, Grad-CAM weights channels by the mean gradient.
    model = models["cnn"].eval()
    feats = {}
    relu = [m for m in model.net if isinstance(m, nn.ReLU)][5]
    relu.register_forward_hook(lambda _m, _i, o: feats.__setitem__("a", o))
    head = lab._heads["cnn"]
    assert head.method == "hirescam" and head.alternatives == ("grad-cam",)
    outs = lab._sessions["cnn"].run(["logits", *head.fetches], {"input": x})
    hires, gradcam = head.maps(x, outs[1:]), head.maps(x, outs[1:], "grad-cam")
    for cls in (1, 5):
        t = torch.from_numpy(x)
        with torch.enable_grad():
            relu.inplace = False
            logit = model(t)[:, cls].sum()
            (g,) = torch.autograd.grad(logit, feats["a"])
        a = feats["a"].detach()
        for got, want in ((hires, torch.relu((g * a).sum(1))),
                          (gradcam, torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1)))):
            want = want.numpy()
            np.testing.assert_allclose(got[:, cls], want, rtol=0, atol=3e-3 * want.max())


class _Region(nn.Module):
    """Zero every pixel outside REGION: the logits then depend on that region only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(x)
        mask[..., REGION[0], REGION[1]] = 1
        return x * mask


def _mass_inside(maps: np.ndarray, grow: int) -> float:
    inside = np.zeros((48, 48), bool)
    rows, cols = REGION
    inside[max(0, rows.start - grow):rows.stop + grow, max(0, cols.start - grow):cols.stop + grow] = True
    return float(maps[..., inside].sum() / maps.sum())


@pytest.mark.parametrize("method", ["hirescam", "grad-cam", "cam", "input-gradient", "occlusion"])
def test_map_mass_lies_in_the_region_the_model_sees(tmp_path, method):
    torch.manual_seed(1)
    if method == "cam":  # a global-average-pool head, as the ResNet18's
        net = nn.Sequential(_Region(), nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(8, 7))
        model = Normalize(net, mean=0.0, std=1.0)
        grow = 8  # two 3x3 convs and a 2x2 pool: a 7 px receptive field, 2 px cells, bilinearly upsampled
    elif method in ("hirescam", "grad-cam"):  # conv layers without bias keep features outside the region at exactly 0
        net = nn.Sequential(_Region(), *cnn(width=8, fc=16))
        model = Normalize(net, mean=0.0, std=1.0)
        grow = 20  # the last conv layer's receptive field reaches 14 px, plus its 4 px cells, bilinearly upsampled
    else:
        model = Normalize(ff(hidden=(32, 16)), mean=0.0, std=1.0)
        outside = torch.ones(48, 48, dtype=torch.bool)
        outside[REGION] = False
        model.net[1].weight.data[:, outside.flatten()] = 0  # the first layer reads the region's pixels only
        grow = 0 if method == "input-gradient" else 8  # occlusion: an 8 px patch touching the region counts
    _randomise_bn(model, nn.BatchNorm1d)  # the conv layers' BatchNorm stays neutral: no bias outside the region
    zoo, _ = _zoo(tmp_path, {"m": model})
    if method == "occlusion":  # an old manifest without the saliency record: the app falls back to occlusion
        manifest = json.loads((zoo / "manifest.json").read_text())
        del manifest["models"][0]["saliency"]
        (zoo / "manifest.json").write_text(json.dumps(manifest))
    lab = Labeler(zoo, threads=1)
    assert method in lab.saliency_methods("m")
    crops = _crops(4, seed=2)
    maps = lab.explain(crops, method)["m"]
    assert maps.shape == (4, 7, 48, 48) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    probs, _ = lab.classify(crops)
    top = maps[np.arange(4), probs["m"].argmax(1)]
    assert (top.reshape(4, -1).max(1) > 0).all()
    assert _mass_inside(top, grow) > (0.999 if grow == 0 else 0.97)  # the grown region: 4% to 39% of the crop


def test_export_step_is_idempotent_and_a_changed_model_falls_back(tmp_path):
    torch.manual_seed(2)
    zoo, _ = _zoo(tmp_path, {"cnn": build_model("cnn", width=8, fc=16)})
    before = (zoo / "cnn.onnx").stat().st_mtime_ns, (zoo / "cnn.saliency.onnx").read_bytes()
    prepare_zoo(zoo)
    assert (zoo / "cnn.onnx").stat().st_mtime_ns == before[0]  # outputs unchanged: the model file is not rewritten
    assert (zoo / "cnn.saliency.onnx").read_bytes() == before[1]
    # Replace the model by one exported afresh (no extra outputs) without rerunning the step.
    export_onnx(build_model("cnn", width=8, fc=16).eval(), zoo / "cnn.onnx")
    lab = Labeler(zoo, threads=1)
    assert lab.saliency_method("cnn") == "occlusion"
    assert "changed" in lab.saliency_notes["cnn"]
    assert lab.explain(_crops(1))["cnn"].shape == (1, 7, 48, 48)


def test_tiny_zoo_and_empty_batch(tiny_zoo, tmp_path):
    """A manifest written before saliency maps existed still loads and explains (occlusion)."""
    zoo = tmp_path / "z"
    shutil.copytree(tiny_zoo, zoo)
    lab = Labeler(zoo, threads=1)
    assert {lab.saliency_method(m.name) for m in lab.models} == {"occlusion"}
    out = lab.explain(np.zeros((0, 48, 48), np.uint8))
    assert all(v.shape == (0, 7, 48, 48) for v in out.values())


def test_finish_and_overlay():
    raw = np.array([[[[0.0, 1.0], [np.nan, 3.0]]]], np.float32)
    m = finish(raw, (48, 48))
    assert m.shape == (1, 1, 48, 48) and np.isfinite(m).all() and m.max() == pytest.approx(1.0)
    assert finish(np.zeros((1, 2, 3, 3)), (48, 48)).max() == 0  # a flat map stays 0, never NaN
    pic = overlay(np.full((48, 48), 128, np.uint8), m[0, 0], scale=2)
    assert pic.shape == (96, 96, 3) and pic.dtype == np.uint8


def test_export_adds_the_maps(tmp_path):
    """training.export runs the step: a freshly exported model is explained by Grad-CAM/input gradient at once."""
    from tests.fer_synth import make_fer
    from training.export import export_and_register

    data = make_fer(14, 21, 28)
    training = {"config": {}, "epochs": 1, "train_images": 14, "seconds": 1.0, "log_dir": "logs/x"}
    export_and_register(build_model("ff", hidden=(32,)).eval(), "ff", tmp_path / "zoo", data, training, None)
    entry = json.loads((tmp_path / "zoo" / "manifest.json").read_text())["models"][0]
    assert entry["saliency"]["method"] == "input-gradient" and entry["saliency"]["shown"] == "occlusion"
    assert (tmp_path / "zoo" / entry["saliency"]["explainer"]).is_file()
    lab = Labeler(tmp_path / "zoo", threads=1)
    assert lab.saliency_methods("ff") == ["occlusion", "input-gradient"]  # the FF shows occlusion (measured)


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_explain_writes_one_png_per_face_and_resumes(tmp_path, sample_photo, tiny_zoo, workers):
    from PIL import Image

    from app.batch._cli import main

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(sample_photo, src / name)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "out"
    args = [str(src), "--out", str(out), "--explain", "--zoo", str(tiny_zoo), "--threads", "1",
            "--workers", str(workers)]
    assert main(args) == 0
    pngs = sorted(p.name for p in (out / "explained").iterdir())
    assert pngs == ["a.jpg.face1.png", "b.jpg.face1.png"]
    with Image.open(out / "explained" / "a.jpg.face1.png") as im:
        assert im.width > 4 * 48 * 4 and im.height > 48 * 4  # the crop and three maps, 4x, captions above
    summary = json.loads((out / "summary.json").read_text())
    assert summary["explain"] is True and summary["explain_errors"] == []
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # originals untouched
    (out / "explained" / "b.jpg.face1.png").unlink()
    assert main([*args, "--resume"]) == 0  # finished images are not redone
    assert not (out / "explained" / "b.jpg.face1.png").exists()


def test_batch_explain_help_and_inputs_inside_explained(tmp_path, sample_photo, tiny_zoo, capsys):
    from app.batch._cli import build_parser, main

    assert "--explain" in build_parser().format_help()
    out = tmp_path / "out"
    (out / "explained").mkdir(parents=True)
    shutil.copy(sample_photo, out / "explained" / "x.jpg")
    assert main([str(out / "explained" / "x.jpg"), "--out", str(out), "--explain", "--zoo", str(tiny_zoo)]) == 2
    assert "saliency maps would be written among the input images" in capsys.readouterr().err


def test_evaluate_explain_writes_a_grid_per_class(tiny_zoo, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from tests.fer_synth import make_fer, write_csv
    from training import evaluate

    monkeypatch.setenv("EMOTIONLENS_CACHE", str(tmp_path / "cache"))
    csv_path = write_csv(make_fer(14, 21, 21), tmp_path / "fer.csv")
    out = tmp_path / "ev"
    rc = evaluate.main([str(tiny_zoo / "cnn.onnx"), "--data", str(csv_path), "--explain", "2", "--out", str(out)])
    assert rc == 0
    with Image.open(out / "saliency_cnn.png") as im:
        assert im.width > 2 * 48 * 3 and im.height > 48 * 3  # 2 faces per row at 3x, a row per class present
    assert "saliency grid:" in capsys.readouterr().out
    assert evaluate.main([str(tiny_zoo / "cnn.onnx"), "--data", str(csv_path), "--explain", "2"]) == 2
    assert "--explain N needs --out" in capsys.readouterr().err


def test_deletion_removes_the_most_salient_pixels_first():
    from benchmarks.saliency_deletion import delete_top, fill_values

    images = np.full((2, 4, 4), 200, np.uint8)
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 0, 0], maps[0, 3, 3] = 1.0, 0.5
    maps[1, 1, 2] = 1.0
    out = delete_top(images, maps, 2 / 16, fill_values(images, "grey"))
    assert out[0, 0, 0] == out[0, 3, 3] == 129 and (out[0] == 129).sum() == 2
    assert out[1, 1, 2] == 129 and (out[1] == 129).sum() == 2  # the second pixel: a tie, broken at random
    assert (delete_top(images, maps, 0.0, fill_values(images, "grey")) == images).all()
    assert fill_values(images, "blur").shape == images.shape


def test_deletion_table_names_its_machine_only_when_the_run_recorded_one():
    """The committed deletion.json, written again, is the page's block unchanged (with the machine it recorded);
    a run without a machine record gets no machine note, one with a record ends with it."""
    import re

    from benchmarks.saliency_deletion import OUT, markdown

    recorded = json.loads((OUT / "deletion.json").read_text())
    display = {"cnn": "CNN", "ff": "FF", "resnet18": "ResNet18"}
    table = markdown(recorded["results"], display, recorded["n"], recorded.get("machine"))
    page = (REPO_ROOT / "docs" / "saliency.md").read_text()
    assert re.search(r"<!-- saliency:start -->\n(.*?)\n<!-- saliency:end -->", page, re.S).group(1) == table
    bare = markdown(recorded["results"], display, recorded["n"], None)
    assert "Measured on" not in bare
    timed = markdown(recorded["results"], display, recorded["n"], "Measured on: a test machine.")
    assert timed.startswith(bare) and timed.endswith("\n\nMap ms timed in batches of 50. Measured on: a test machine.")


def test_benchmark_rows_maps_on_and_off(tiny_zoo):
    from benchmarks.saliency_speed import saliency_rows

    on, off = saliency_rows(tiny_zoo, quick=True)
    assert on.unit == "ms/face" and on.value > 0 and "target <= 30" in on.notes
    assert off.unit == "x" and 0.2 < off.value < 5


def test_shipped_zoo_is_prepared_and_explains_a_face():
    """The committed zoo carries the maps' outputs (rerun python -m training.saliency_export after replacing a
    model): each model shows the method the deletion test chose, and its maps fit the crop."""
    lab = Labeler(REPO_ROOT / "models_zoo", threads=1)
    assert {m.name: lab.saliency_method(m.name) for m in lab.models} == {
        "cnn": "hirescam", "ff": "occlusion", "resnet18": "cam"}, lab.saliency_notes
    crops = _crops(2, seed=3)
    for name, maps in lab.explain(crops).items():
        assert maps.shape == (2, 7, 48, 48) and np.isfinite(maps).all(), name


@pytest.mark.slow
def test_deletion_benchmark_end_to_end(shared_dir, tmp_path):
    """benchmarks.saliency_deletion on a few PublicTest faces: every model gets its methods and both baselines,
    every curve starts at the intact accuracy, the files are written, and README is left alone without the flag."""
    from benchmarks import saliency_deletion

    readme = (REPO_ROOT / "README.md").read_text()
    assert saliency_deletion.main(["--data", str(shared_dir / "data" / "fer2013"), "--n", "6",
                                   "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "deletion.json").read_text())
    assert result["n"] == 6
    for name, methods in result["results"].items():
        assert {"random", "random blocks", "occlusion"} <= set(methods), name
        starts = {m[fill]["accuracy"][0] for m in methods.values() for fill in ("grey", "blur")}
        assert len(starts) == 1  # 0% deleted: the same faces, the same accuracy
    assert (tmp_path / "deletion.png").is_file() and (tmp_path / "faces.png").is_file()
    assert (REPO_ROOT / "README.md").read_text() == readme


def test_export_step_errors_are_one_line(tmp_path, tiny_zoo, capsys):
    from training.saliency_export import main

    assert main(["--zoo", str(tmp_path / "nowhere")]) == 2
    assert not (tmp_path / "nowhere").exists()  # a typo never creates a folder
    zoo = tmp_path / "z"
    shutil.copytree(tiny_zoo, zoo)
    (zoo / "ff.onnx").write_bytes(b"not a model")
    assert main(["--zoo", str(zoo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "ff.onnx: cannot prepare" in err[1]


def test_jet_palette_runs_blue_to_red():
    from app.outputs._saliency_pictures import jet

    low, mid, high = jet(np.array([0.0, 0.5, 1.0]))
    assert low[2] > 100 and low[0] == low[1] == 0  # dark blue
    assert mid[1] == 255 and mid[0] == mid[2]  # green in the middle
    assert high[0] > 100 and high[1] == high[2] == 0  # dark red
