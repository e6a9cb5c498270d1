"""The model zoo: its manifest read and checked (one line naming the file for any problem), and the zoos found.

The shipped zoo is found through :func:`app.core.resource_path`, so a source checkout, an installed package and
a PyInstaller bundle all find it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.core import EMOTIONS, EmotionLensError, resource_path

ZOO_ENV = "EMOTIONLENS_ZOO"
MANIFEST = "manifest.json"


class ZooError(EmotionLensError, ValueError):
    """The model zoo cannot be used; the message is one line naming the file at fault."""






def default_zoo_dir() -> Path:
    """``$EMOTIONLENS_ZOO`` if set, else ``models_zoo/`` beside the code (or inside the PyInstaller bundle)."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env).expanduser()
    return resource_path("models_zoo")


def available_zoos(zoo_dir: str | os.PathLike | None = None) -> list[Path]:
    """The zoos a user can choose between: ``zoo_dir`` (default :func:`default_zoo_dir`) first, then every
    ``models_zoo_*`` folder beside the shipped ``models_zoo/`` that holds a manifest (e.g. the FER2013-label zoo
    kept beside the FER+ one), by name. The window's Models menu lists these; ``--zoo`` takes any folder."""
    first = Path(zoo_dir).expanduser() if zoo_dir is not None else default_zoo_dir()
    shipped = resource_path("models_zoo")
    others = sorted(p for p in shipped.parent.glob("models_zoo_*") if (p / MANIFEST).is_file())
    seen = {first.resolve()}
    found = [first]
    for p in [shipped, *others]:
        if (p / MANIFEST).is_file() and p.resolve() not in seen:
            seen.add(p.resolve())
            found.append(p)
    return found


def zoo_title(zoo_dir: Path) -> str:
    """``models_zoo (FER+ votes)``: a zoo's folder name and what its models were trained on, for menus."""
    try:
        return f"{zoo_dir.name} ({label_source(load_manifest(zoo_dir)[1])})"
    except ZooError:
        return f"{zoo_dir.name} (unusable)"


@dataclass(frozen=True)
class ModelInfo:
    """One manifest entry; ``file`` is resolved against the manifest's folder."""

    name: str
    display_name: str
    file: Path
    input_size: tuple[int, int]
    metrics: dict = field(default_factory=dict, compare=False)
    training: dict = field(default_factory=dict, compare=False)
    ensemble_weight: float = 1.0  # share in the ensemble's weighted mean; equal unless the manifest says otherwise
    saliency: dict = field(default_factory=dict, compare=False)  # training.saliency_export's record, if any
    labels: str = "fer2013"  # the training target (training --labels); manifests older than FER+ have none


# How each training target is named to users (window, self-test, summary.json, --version).
LABEL_SOURCES = {
    "fer2013": "FER2013 labels",
    "ferplus-majority": "FER+ majority",
    "ferplus-soft": "FER+ votes",
}


def label_source(models: list[ModelInfo] | tuple[ModelInfo, ...]) -> str:
    """What a zoo's models were trained to agree with, in words: ``"FER+ votes"`` when they share one target,
    else each model's, e.g. ``"cnn: FER+ votes, ff: FER2013 labels"``."""
    names = [LABEL_SOURCES.get(m.labels, m.labels) for m in models]
    if len(set(names)) == 1:
        return names[0]
    return ", ".join(f"{m.name}: {n}" for m, n in zip(models, names, strict=True))


def _model_info(entry: object, i: int, zoo: Path, where: Path) -> ModelInfo:
    if not isinstance(entry, dict):
        raise ZooError(f"{where}: models[{i}] must be an object")
    missing = [k for k in ("name", "display_name", "file", "input_size") if k not in entry]
    if missing:
        raise ZooError(f"{where}: models[{i}] is missing {', '.join(missing)}")
    name, display, file = entry["name"], entry["display_name"], entry["file"]
    if not all(isinstance(v, str) and v for v in (name, display, file)):
        raise ZooError(f"{where}: models[{i}] name, display_name and file must be non-empty strings")
    size = entry["input_size"]
    if not (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ZooError(f"{where}: model {name!r} input_size must be [H, W] positive integers, got {size!r}")
    path = (zoo / file).resolve()
    if not path.is_file():
        raise ZooError(f"{path}: model file for {name!r} is missing (listed in {where})")
    metrics = entry.get("metrics") or {}
    training = entry.get("training") or {}
    saliency = entry.get("saliency") or {}
    labels = entry.get("labels", "fer2013")
    if not isinstance(labels, str) or not labels:
        raise ZooError(f"{where}: model {name!r} labels must be a non-empty string, got {labels!r}")
    return ModelInfo(
        name=name,
        display_name=display,
        file=path,
        input_size=(int(size[0]), int(size[1])),
        metrics=dict(metrics) if isinstance(metrics, dict) else {},
        training=dict(training) if isinstance(training, dict) else {},
        saliency=dict(saliency) if isinstance(saliency, dict) else {},
        labels=labels,
    )


def load_manifest(zoo_dir: str | os.PathLike | None = None) -> tuple[tuple[str, ...], list[ModelInfo]]:
    """Read and validate ``manifest.json``: the classes (must be EMOTIONS) and the models in manifest order.

    Every problem is a :class:`ZooError` with one line naming the file, because the GUI shows it in a dialog
    and the batch CLI prints it as its only output before exiting with status 2.
    """
    zoo = Path(zoo_dir).expanduser() if zoo_dir is not None else default_zoo_dir()
    where = zoo / MANIFEST
    if not zoo.is_dir():
        raise ZooError(f"{zoo}: model zoo folder not found (set {ZOO_ENV} or pass --zoo)")
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZooError(f"{where}: manifest not found; export models with python -m training.export") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ZooError(f"{where}: cannot read manifest ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ZooError(f"{where}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise ZooError(f"{where}: expected a JSON object with 'classes' and 'models'")
    missing = [k for k in ("classes", "models") if k not in data]
    if missing:
        raise ZooError(f"{where}: missing key {', '.join(repr(k) for k in missing)}")
    classes = data["classes"]
    if not isinstance(classes, list) or tuple(classes) != EMOTIONS:
        raise ZooError(f"{where}: classes must be {list(EMOTIONS)} (the FER2013 order), got {classes!r}")
    entries = data["models"]
    if not isinstance(entries, list) or not entries:
        raise ZooError(f"{where}: 'models' must be a non-empty list")
    models = [_model_info(e, i, zoo, where) for i, e in enumerate(entries)]
    names = [m.name for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ZooError(f"{where}: duplicate model name {', '.join(dupes)}")
    weights = _ensemble_weights(data.get("ensemble"), names, where)
    return tuple(classes), [replace(m, ensemble_weight=weights[m.name]) for m in models]


def _ensemble_weights(ensemble: object, names: list[str], where: Path) -> dict[str, float]:
    """Per-model weights from ``ensemble.weights`` (chosen on PublicTest by training.ensemble), else equal."""
    weights = ensemble.get("weights") if isinstance(ensemble, dict) else None
    if weights is None:
        return dict.fromkeys(names, 1.0)
    if not isinstance(weights, dict) or sorted(weights) != sorted(names):
        raise ZooError(f"{where}: ensemble weights must name exactly the models {names}, got {weights!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in weights.values()) or not (
        sum(weights.values()) > 0
    ):
        raise ZooError(f"{where}: ensemble weights must be non-negative numbers, not all zero, got {weights!r}")
    return {k: float(v) for k, v in weights.items()}
