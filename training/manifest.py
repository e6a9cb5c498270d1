"""``models_zoo/manifest.json``: read, validate, insert an entry, write atomically.

Its own module because export writes entries and evaluate/ensemble record the ensemble's accuracy: with the
manifest here, neither imports the other (nor the training loop).
"""

from __future__ import annotations

import json
from pathlib import Path

from app.core import EMOTIONS, write_text
from training.models import DISPLAY_NAMES


def read_manifest(zoo_dir: str | Path) -> dict:
    path = Path(zoo_dir) / "manifest.json"
    if not path.exists():
        return {"classes": list(EMOTIONS), "models": []}
    manifest = json.loads(path.read_text())
    if list(manifest.get("classes", [])) != list(EMOTIONS):
        raise ValueError(f"{path}: classes differ from the canonical order {list(EMOTIONS)}")
    return manifest


def update_manifest(zoo_dir: str | Path, entry: dict) -> Path:
    """Insert or replace the entry with the same name, keeping the canonical model order; atomic write."""
    zoo_dir = Path(zoo_dir)
    manifest = read_manifest(zoo_dir)
    models = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    order = {name: i for i, name in enumerate(DISPLAY_NAMES)}
    manifest["models"] = sorted(models, key=lambda m: (order.get(m["name"], len(order)), m["name"]))
    manifest.pop("ensemble", None)  # measured on the old models: stale now, re-measure with training.evaluate --zoo
    return write_manifest(zoo_dir, manifest)


def write_manifest(zoo_dir: str | Path, manifest: dict) -> Path:
    """Atomic write: the app may be reading the manifest while training updates it."""
    zoo_dir = Path(zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    write_text(zoo_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return zoo_dir / "manifest.json"


def manifest_entry(name: str, file: str, metrics: dict, training: dict, input_size=(48, 48)) -> dict:
    return {
        "name": name,
        "display_name": DISPLAY_NAMES.get(name, name),
        "file": file,
        "input_size": list(input_size),
        "metrics": metrics,
        "training": training,
    }
