"""Does the offline 4x augmentation help? Train the same config with and without it and compare.

Both arms see the same number of training images (the original-data arm runs 4x the epochs), so the only
difference is what the images are: 28,709 originals shown four times, or originals + mirrors + rotations
shown once. Scored on PublicTest only; PrivateTest is untouched. Example::

    python -m training.ablation --config training/configs/cnn.json --data ../shared/data/fer2013 \\
        --augmented data/fer2013-aug.npz --aug-epochs 3 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from training.config import ROOT, TrainConfig, read_config_file
from training.device import DEVICE_HELP, DeviceError, resolve_device
from training.summary import images_seen
from training.train import fit


def arms(base: TrainConfig, augmented: str, aug_epochs: int) -> dict[str, TrainConfig]:
    """The two configs, equal in images seen; onecycle/cosine schedules stretch to each arm's epochs."""
    with_aug = dataclasses.replace(base, augmented=augmented, epochs=aug_epochs, patience=10**6)
    without = dataclasses.replace(base, augmented=None, epochs=4 * aug_epochs, patience=10**6)
    return {"offline-augmented (4x)": with_aug, "originals only": without}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.ablation",
        description="Train one config with and without the offline-augmented set for the same number of images "
        "seen, and print both PublicTest accuracies as a Markdown table (also written to the run folder).",
        epilog="example: python -m training.ablation --config training/configs/cnn.json "
        "--data ../shared/data/fer2013 --augmented data/fer2013-aug.npz --aug-epochs 3 --threads 1 "
        "(add --device cuda on a GPU)",
    )
    p.add_argument("--config", required=True,
                   help="the TrainConfig JSON both arms share, e.g. training/configs/cnn.json")
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle folder with train/ and test/")
    p.add_argument("--augmented", required=True, help="archive from training.augment")
    p.add_argument("--aug-epochs", type=int, default=3,
                   help="epochs of the augmented arm; the other arm runs 4x as many (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--log-root", default=str(ROOT / "logs"), help="where the run folder goes (default: logs/)")
    args = p.parse_args(argv)

    import torch

    from training.datasets import DatasetError, load_fer2013

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        base = TrainConfig.from_dict(read_config_file(args.config))
        data = load_fer2013(args.data)
    except (OSError, ValueError, DatasetError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.log_root) / f"ablation-{base.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    rows = ["| training set | images per epoch | epochs | images seen | best PublicTest accuracy | at epoch "
            "| minutes |",
            "|---|---|---|---|---|---|---|"]
    for i, (name, cfg) in enumerate(arms(base, args.augmented, args.aug_epochs).items()):
        result = fit(cfg, data, out / f"arm{i + 1}", progress=True, tensorboard=False, device=device)
        seen = images_seen(result.history)
        rows.append(f"| {name} | {result.train_images:,} | {cfg.epochs} | {seen:,.0f} "
                    f"| {100 * result.best_val_accuracy:.2f}% "
                    f"| {result.best_epoch} | {result.seconds / 60:.0f} |")
        for pt in (out / f"arm{i + 1}").glob("*.pt"):
            pt.unlink()
    table = "\n".join(rows)
    (out / "ablation.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
