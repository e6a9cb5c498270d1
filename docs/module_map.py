"""docs/how-it-works.md's module map and its two flow pictures, generated from the code so they cannot go stale.

The map lists every package of ``app`` in its layer (from the import-linter contract in pyproject.toml, the one
tests/test_layers.py enforces) with the first line of each package's and module's docstring. The pictures are
Mermaid flowcharts of a photo's and a video's way through the app; every step names the function that does it,
and the script fails if a name no longer exists. ``tests/test_layers.py`` checks the page holds what this
writes. Example::

    python docs/module_map.py            # print the blocks
    python docs/module_map.py --update   # write them into docs/how-it-works.md
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "how-it-works.md"

# (label, the function or class that does the step); the names are checked to exist
PHOTO_FLOW = [
    ("decode the file", "app.core.load_image"),
    ("find the faces", "app.detect.find_faces"),
    ("number them in reading order", "app.detect.reading_order"),
    ("crop like FER2013", "app.detect.crop_faces"),
    ("label with every model + ensemble", "app.models.Labeler.classify"),
    ("labels.csv rows", "app.outputs.photo_rows"),
    ("annotated copy", "app.outputs.annotate"),
]
VIDEO_FLOW = [
    ("decode frames with their times", "app.video.frames"),
    ("cut, detect every few frames, track", "app.video.track_frames"),
    ("find the faces", "app.detect.find_faces"),
    ("crop like FER2013", "app.detect.crop_faces"),
    ("label + smooth per track", "app.video.label_frames"),
    ("frames.csv rows", "app.outputs.frame_rows"),
    ("tracks.csv, timelines", "app.outputs.track_rows"),
    ("annotated copy with sound", "app.outputs.write_annotated"),
]


def layers() -> list[str]:
    """The packages of ``app`` from the top layer down, as the import-linter contract lists them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return list(contract["layers"])


def first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    return text.replace("|", "\\|")


def resolve(name: str) -> object:
    """The object ``name`` (``package.attribute[.attribute]``) names; ImportError/AttributeError if it is gone."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def module_map() -> str:
    rows = ["| layer | package | module | what it does |", "|---|---|---|---|"]
    for n, layer in enumerate(layers(), start=1):
        target = ROOT / "app" / (layer + ".py")
        if target.exists():  # a top-level module (__main__)
            rows.append(f"| {n} | `app.{layer}` | | {first_line(target)} |")
            continue
        folder = ROOT / "app" / layer
        rows.append(f"| {n} | `app.{layer}` | | {first_line(folder / '__init__.py')} |")
        for path in sorted(folder.rglob("*.py")):
            if path.name == "__init__.py" and path.parent == folder:
                continue
            rel = path.relative_to(folder).with_suffix("")
            name = ".".join(p for p in rel.parts if p != "__init__")
            rows.append(f"| | | `{name}` | {first_line(path)} |")
    top = sorted(p.name for p in (ROOT / "app").glob("*.py"))
    rows.append("")
    rows.append(f"At `app/`'s top level: {', '.join(f'`{t}`' for t in top)} (the public API, lazily imported, and the "
                "entry point). Each package re-exports its public names (`from app.detect import find_faces`); "
                "its modules start with `_`.")
    return "\n".join(rows)


def flowchart(steps: list[tuple[str, str]]) -> str:
    for _, name in steps:
        resolve(name)
    lines = ["```mermaid", "flowchart LR"]
    for i, (label, name) in enumerate(steps):
        lines.append(f'    s{i}["{label}<br/><code>{name}</code>"]')
    lines.append("    " + " --> ".join(f"s{i}" for i in range(len(steps))))
    lines.append("```")
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    return {"module-map": module_map(), "photo-flow": flowchart(PHOTO_FLOW), "video-flow": flowchart(VIDEO_FLOW)}


def current(name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", PAGE.read_text(encoding="utf-8"), re.S)
    return m.group(1) if m else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python docs/module_map.py", description=__doc__.split("\n\n")[0],
                                epilog="example: python docs/module_map.py --update")
    p.add_argument("--update", action="store_true", help="write the blocks into docs/how-it-works.md between "
                   "their <!-- name:start --> / <!-- name:end --> markers (default: print them)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from training.report import replace_block

    for name, text in blocks().items():
        if args.update:
            replace_block(PAGE, name, text)
        else:
            print(f"<!-- {name} -->\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
