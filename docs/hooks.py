"""MkDocs hooks (mkdocs.yml ``hooks:``): publish the repository files the pages link to outside ``docs/``.

The pages are read in two places, on GitHub (where ``../logs/cnn-.../curves.png`` from ``docs/results.md`` is
a file of the repository) and on the built site (where only ``docs/`` exists). Rather than copy the training
runs' figures into ``docs/``, which would leave two copies to keep in step, this adds each linked repository
file to the site under its own path and drops the leading ``../`` from links to it. A link to a file that
does not exist is left alone, so ``mkdocs build --strict`` still fails on it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"\]\(\.\./([^)\s#]+)")  # ](../path) in a page at the top of docs/


def _linked(docs: Path) -> set[str]:
    found = set()
    for page in docs.glob("*.md"):
        for m in OUTSIDE.finditer(page.read_text(encoding="utf-8")):
            target = (ROOT / m.group(1)).resolve()
            if target.is_file() and ROOT in target.parents and docs not in target.parents:
                found.add(target.relative_to(ROOT).as_posix())
    return found


def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    docs = Path(config["docs_dir"]).resolve()
    config["extra"]["_outside"] = linked = _linked(docs)
    for rel in sorted(linked):
        files.append(File(rel, src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):  # noqa: ANN001, ANN201
    if "/" in page.file.src_uri:  # only the top-level pages link with a single ../
        return markdown
    linked = config["extra"].get("_outside", set())
    return OUTSIDE.sub(lambda m: f"]({m.group(1)}" if m.group(1) in linked else m.group(0), markdown)
