"""Robustness augmentations (issue 34, item 3): photometric, geometric, crop jitter and occlusion in the on-device
training batch. Off (probability 0) they are the identity and draw nothing, so older runs augment as before;
on, they keep shapes and the [0, 1] range, follow the epoch generator (a resumed run augments as an
uninterrupted one), split across DDP ranks exactly, and change only what they claim to."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings

import pytest
import torch

from training import batches
from training.batches import BatchDraws, epoch_generators, online_augment
from training.config import AUGMENTATION_PROBABILITIES, TrainConfig

torch.set_num_threads(1)

ALL_ON = {"photometric": 0.5, "geometric": 0.5, "crop_jitter": 0.5, "occlusion": 0.5}


def _faces(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth face-like images in [0, 1] (8-bit levels, as the training set's are): blobs on a gradient."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    out = []
    for _ in range(n):
        c = torch.rand(4, 2, generator=g)
        img = 0.3 + 0.2 * xx + sum(0.25 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) for cy, cx in c)
        out.append(img)
    return (torch.stack(out).clamp(0, 1).unsqueeze(1) * 255).round() / 255


def _gen(seed: int = 3, epoch: int = 1) -> torch.Generator:
    return epoch_generators(seed, epoch, 10, torch.device("cpu"))[1]


def _draws(gen: torch.Generator, n: int) -> BatchDraws:
    return BatchDraws(gen, n, slice(0, n), torch.device("cpu"))


# --------------------------------------------------------------------------------------------- off = identity


@pytest.mark.parametrize("name", AUGMENTATION_PROBABILITIES)
def test_probability_zero_is_the_identity_and_draws_nothing(name):
    x = _faces(8)
    gen = _gen()
    state = gen.get_state()
    cfg = TrainConfig(online_aug="none", erase=0.0, **{name: 0.0})
    assert torch.equal(online_augment(x, gen, cfg), x)
    assert torch.equal(gen.get_state(), state)  # nothing drawn: the flips, shifts and erasing after are as before
    d = _draws(gen, 8)
    assert torch.equal(batches.affine_jitter(x, d, 0.0, 0.0), x)
    assert torch.equal(batches.photometric(x, d, 0.0), x)
    assert torch.equal(batches.occlude(x, d, 0.0), x)
    assert torch.equal(gen.get_state(), state)


def test_without_the_new_settings_the_old_augmentation_is_unchanged():
    """The flip/shift/erase stream is the same whether or not the new fields exist (all 0): runs made before them
    resume augmenting exactly as they started."""
    x = _faces(8)
    cfg = TrainConfig(erase=0.5)
    a = online_augment(x, _gen(), cfg)
    with_zeros = TrainConfig(erase=0.5, **{k: 0.0 for k in ALL_ON})
    assert torch.equal(online_augment(x, _gen(), with_zeros), a)
    # and switching one on changes the batch
    assert not torch.equal(online_augment(x, _gen(), TrainConfig(erase=0.5, geometric=1.0)), a)


# ------------------------------------------------------------------------------------------- on: basic facts


@pytest.mark.parametrize("over", [{"photometric": 1.0}, {"geometric": 1.0}, {"crop_jitter": 1.0},
                                  {"occlusion": 1.0}, {**ALL_ON, "erase": 0.25}])
def test_shape_dtype_and_range_are_kept(over):
    x = _faces(12)
    y = online_augment(x, _gen(), TrainConfig(online_aug="none", **over))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    changed = (y != x).flatten(1).any(1)
    assert changed.all() if max(over.values()) == 1.0 else changed.any()


def test_same_seed_and_epoch_give_the_same_batch_another_epoch_another():
    x = _faces(16)
    cfg = TrainConfig(**ALL_ON, erase=0.25)
    a = online_augment(x, _gen(3, 5), cfg)
    assert torch.equal(online_augment(x, _gen(3, 5), cfg), a)  # a resumed epoch 5 augments as the first did
    assert not torch.equal(online_augment(x, _gen(3, 6), cfg), a)
    assert not torch.equal(online_augment(x, _gen(4, 5), cfg), a)


@pytest.mark.parametrize("world", [2, 4])
def test_a_distributed_split_is_the_single_process_batch_row_for_row(world):
    x = _faces(16)
    cfg = TrainConfig(**ALL_ON, erase=0.25)
    whole = online_augment(x, _gen(), cfg)
    b = len(x) // world
    for rank in range(world):
        part = online_augment(x[rank * b : (rank + 1) * b], _gen(), cfg, (rank, world))
        assert torch.equal(part, whole[rank * b : (rank + 1) * b]), rank


def test_augmentation_happens_in_training_only():
    """fit's validation scores the plain images: only the training step calls online_augment."""
    import inspect

    from training import train

    assert "online_augment" in inspect.getsource(train.train_epoch)
    assert "online_augment" not in inspect.getsource(train.evaluate_split)


# ------------------------------------------------------------------------------------------------ geometric


@pytest.mark.parametrize("which", ["geometric", "crop_jitter"])
def test_affine_pads_with_the_border_and_keeps_a_flat_image_flat(which):
    flat = torch.full((8, 1, 48, 48), 0.7)
    y = online_augment(flat, _gen(), TrainConfig(online_aug="none", **{which: 1.0}))
    assert torch.allclose(y, flat, atol=1e-5)  # no black corners after rotating or zooming out


def test_crop_jitter_moves_less_than_the_geometric_augmentation():
    x = _faces(64)
    base = TrainConfig(online_aug="none")
    geo = online_augment(x, _gen(), dataclasses.replace(base, geometric=1.0))
    crop = online_augment(x, _gen(), dataclasses.replace(base, crop_jitter=1.0))
    assert 0 < (crop - x).abs().mean() < (geo - x).abs().mean()


# --------------------------------------------------------------------------------------------- photometric


def test_blur_of_sigma_zero_is_the_identity_and_blur_smooths():
    x = _faces(4)
    assert torch.allclose(batches.gaussian_blur(x, torch.zeros(4)), x, atol=1e-6)
    blurred = batches.gaussian_blur(x, torch.full((4,), 1.2))
    assert blurred.diff(dim=-1).abs().mean() < x.diff(dim=-1).abs().mean()
    assert torch.allclose(blurred.mean((2, 3)), x.mean((2, 3)), atol=0.01)


def test_jpeg_roundtrip_matches_libjpeg_and_loses_more_at_lower_quality():
    io = pytest.importorskip("torchvision.io")
    x = _faces(12)
    q = torch.tensor([15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 15, 60])
    mine = batches.jpeg_roundtrip(x, q)
    with _quiet():
        ref = torch.stack([io.decode_jpeg(io.encode_jpeg((x[i] * 255).round().to(torch.uint8), quality=int(q[i])))
                           for i in range(len(x))]).float() / 255
    assert 255 * (mine - ref).abs().mean() < 1.5  # levels, against about 5 that the codec itself changes
    loss = (batches.jpeg_roundtrip(x, torch.full((12,), 15)) - x).abs().mean()
    assert loss > (batches.jpeg_roundtrip(x, torch.full((12,), 60)) - x).abs().mean() > 0
    assert batches.jpeg_tables(torch.tensor([50]))[0, 0, 0] == 16  # the IJG table itself at quality 50


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 deprecates its JPEG codec in favour of TorchCodec
        yield


def test_each_photometric_change_happens_with_its_probability():
    x = _faces(400, seed=1)
    y = batches.photometric(x, _draws(_gen(), 400), 0.3)
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(1 - 0.7**5, abs=0.08)  # five independent changes at 0.3 each


# ----------------------------------------------------------------------------------------------- occlusion


def test_occlusion_changes_only_the_band_or_the_blob():
    n, h, w = 200, 48, 48
    x = _faces(n, seed=2)
    mask, fill, band = batches.occlusion_masks(_draws(_gen(), n), 1.0, h, w)
    y = batches.occlude(x, _draws(_gen(), n), 1.0)
    assert torch.equal(y[~mask], x[~mask])  # nothing outside the occluder moves
    assert torch.equal(y[mask], fill[mask])
    assert 0.3 < band.float().mean() < 0.7  # one or the other, evenly
    rows = (torch.arange(h) + 0.5) / h
    for i in range(n):
        m = mask[i, 0]
        assert m.any()
        covered = m.any(1)
        if band[i]:  # full-width rows around the eyes, 8-14% of the height
            assert torch.equal(m[covered], torch.ones_like(m[covered]))
            assert 0.08 * h - 1 <= covered.sum() <= 0.14 * h + 1
            assert rows[covered].min() >= 0.30 - 0.07 - 1e-6 and rows[covered].max() <= 0.45 + 0.07 + 1e-6
        else:  # an ellipse in the lower half, 20-40% of the side each way
            assert rows[covered].min() >= 0.5
            width = m.any(0).sum()
            assert 0.2 * w - 2 <= width <= 0.4 * w + 1
            assert m.sum() <= math.pi / 4 * (0.4 * h + 1) * (0.4 * w + 1)


def test_occlusion_probability_is_per_image():
    x = _faces(400, seed=3)
    y = batches.occlude(x, _draws(_gen(), 400), 0.25)
    assert (y != x).flatten(1).any(1).float().mean().item() == pytest.approx(0.25, abs=0.06)


# ------------------------------------------------------------------------------------ config, CLI, ablation


@pytest.mark.parametrize("name", AUGMENTATION_PROBABILITIES)
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5"])
def test_config_rejects_probabilities_outside_0_1(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be a probability"):
        TrainConfig.from_dict({name: bad})
    assert getattr(TrainConfig.from_dict({name: 1}), name) == 1


def test_an_old_config_without_the_new_fields_loads_with_them_off(tmp_path):
    from training import label_ablation

    old = dataclasses.asdict(TrainConfig(labels="ferplus-soft", ferplus="votes.csv"))
    for name in AUGMENTATION_PROBABILITIES:
        del old[name]
    cfg = TrainConfig.from_dict(old)
    assert all(getattr(cfg, name) == 0.0 for name in AUGMENTATION_PROBABILITIES)
    # an arm folder from before them still resumes under the ablation driver's same-config check
    (tmp_path / "config.json").write_text(json.dumps(old))
    label_ablation.check_same_config(tmp_path, cfg)
    with pytest.raises(ValueError, match="photometric"):
        label_ablation.check_same_config(tmp_path, dataclasses.replace(cfg, photometric=0.5))


def test_train_help_explains_each_flag_and_the_flags_set_the_config(capsys):
    from training import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--photometric", "--geometric", "--crop-jitter", "--occlusion"):
        assert flag in text and f"{flag} 0.5" in text  # described, and in an example
    args = train.build_parser().parse_args(["--data", "x.csv", "--photometric", "0.5", "--geometric", "0.25",
                                            "--crop-jitter", "1", "--occlusion", "0.1"])
    cfg = train.config_from_args(args)
    assert (cfg.photometric, cfg.geometric, cfg.crop_jitter, cfg.occlusion) == (0.5, 0.25, 1.0, 0.1)
    assert train.config_from_args(train.build_parser().parse_args(["--data", "x.csv"])).photometric == 0.0
    bad = train.build_parser().parse_args(["--data", "x.csv", "--occlusion", "2"])
    with pytest.raises(ValueError, match="occlusion must be a probability"):
        train.config_from_args(bad)


def test_augmentation_arms_build_on_the_base_arm_and_keep_apart_from_the_loss_arms():
    from training import label_ablation as la

    assert not set(la.AUG_ARMS) & set(la.ARMS) and all(n.startswith("aug-") for n in la.AUG_ARMS)
    base = TrainConfig(labels="ferplus-soft", ferplus="votes.csv", erase=0.25)
    cfgs = la.arm_configs(base, la.parse_arms("aug"), 3, None, base_arm="reweighted")
    for name, cfg in cfgs.items():
        assert cfg.target_reweight == 0.5 and cfg.epochs == 3 and cfg.erase == 0.25, name
    single = {n: next(iter(o)) for n, o in la.AUG_ARMS.items() if len(o) == 1}
    for name, field in single.items():
        assert getattr(cfgs[name], field) == 0.5
        assert all(getattr(cfgs[name], f) == 0 for f in AUGMENTATION_PROBABILITIES if f != field)
    assert all(getattr(cfgs["aug-all"], f) == 0.5 for f in AUGMENTATION_PROBABILITIES)
    assert (cfgs["aug-mixup"].mix, cfgs["aug-mixup"].mix_alpha, cfgs["aug-cutmix"].mix) == ("mixup", 0.2, "cutmix")
    assert la.parse_arms(None) == list(la.ARMS)  # a rerun of the loss stage's command trains what it did
    assert la.parse_arms(None, table=True) == [*la.ARMS, *la.AUG_ARMS]
    assert la.parse_arms("plain,aug,aug-all") == ["plain", *la.AUG_ARMS]
    with pytest.raises(ValueError, match="unknown arm"):
        la.parse_arms("aug-blur")


def test_label_ablation_trains_and_tabulates_augmentation_arms(tmp_path, capsys):
    from tests.test_label_balance import _ferplus_csv
    from training import label_ablation

    args = [*_ferplus_csv(tmp_path), "--epochs", "1"]
    out = tmp_path / "abl"
    assert label_ablation.main([*args, "--arms", "reweighted"]) == 0
    # two processes would each take some of the arms; here one after the other into the same folder
    assert label_ablation.main([*args, "--arms", "aug-occlusion", "--base-arm", "reweighted"]) == 0
    assert label_ablation.main([*args, "--arms", "aug-photometric,aug-cutmix", "--base-arm", "reweighted"]) == 0
    cfg = json.loads((out / "aug-occlusion" / "config.json").read_text())
    assert cfg["occlusion"] == 0.5 and cfg["target_reweight"] == 0.5
    done = json.loads((out / "aug-occlusion" / "done.json").read_text())
    assert done["base_arm"] == "reweighted" and done["overrides"] == {"target_reweight": 0.5, "occlusion": 0.5}
    capsys.readouterr()
    assert label_ablation.main([*args, "--table", "--base-arm", "reweighted",
                                "--ferplus", str(tmp_path / "fer2013new.csv")]) == 0
    text = capsys.readouterr().out
    for row in ("| reweighted |", "| reweighted (base: no added augmentation) |", "| aug-occlusion |",
                "| aug-photometric |", "| aug-cutmix |", "Augmentation arms under"):
        assert row in text
    assert "config differs" not in text
    assert text.count("By the rule in docs/results.md") == 2
    aug_table = (out / "augmentation-ablation.md").read_text()
    assert "| aug-occlusion |" in aug_table and "| reweighted |" not in aug_table
    # a base arm with no folder: the augmentation rows stand without their control, and the table says so
    assert label_ablation.main([*args, "--table", "--arms", "aug", "--base-arm", "plain",
                                "--ferplus", str(tmp_path / "fer2013new.csv")]) == 0
    assert "no control row" in capsys.readouterr().out
    # a folder made on another base says its config is not the base's plus one change
    (out / "plain").mkdir()
    for f in ("config.json", "history.json", "publictest.json", "publictest_logits.npy", "done.json"):
        (out / "plain" / f).write_bytes((out / "reweighted" / f).read_bytes())
    cfg = json.loads((out / "plain" / "config.json").read_text())
    (out / "plain" / "config.json").write_text(json.dumps({**cfg, "target_reweight": 0.0}))
    assert label_ablation.main([*args, "--table", "--arms", "aug", "--base-arm", "plain",
                                "--ferplus", str(tmp_path / "fer2013new.csv")]) == 0
    assert "config differs from plain's in target_reweight" in capsys.readouterr().out
