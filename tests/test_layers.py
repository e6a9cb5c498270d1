"""app/'s layers and module map are checked, not only described (issue 38).

``lint-imports`` (import-linter) checks the contracts in pyproject.toml: each package of ``app`` imports only the
packages below it (core <- detect <- models <- video <- outputs <- batch <- gui <- __main__), no two modules of a
package import each other in a cycle, and nothing imports torch or the training code. Every import counts,
including the ones inside functions: a lazy import is still a dependency. The second test proves the check has
teeth: a copy of app/ with one lazy import added against the layers, and one with a cycle, must fail it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(root), "PATH": ""})


def test_app_keeps_its_layers_and_has_no_cycle():
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("KEPT") == 3, r.stdout


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__", "assets"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _add_lazy_import(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n\ndef _added():\n    {line}\n")


@pytest.mark.parametrize(("module", "line", "broken"), [
    # against the layers: the core reaching up into the video pipeline from inside a function
    ("core/_text.py", "from app.video import probe  # noqa: F401", "app's packages import only the packages below"),
    # a cycle inside one package: the decoder importing the pipeline, which imports the decoder
    ("video/_decode.py", "from app.video._pipeline import label_frames  # noqa: F401", "no import cycle"),
])
def test_a_lazy_import_against_the_layers_fails_the_check(tmp_path, module, line, broken):
    root = _copy(tmp_path)
    assert _lint(root).returncode == 0
    _add_lazy_import(root / "app" / module, line)
    r = _lint(root)
    assert r.returncode != 0
    verdicts = [line for line in r.stdout.splitlines() if line.startswith(broken)]
    assert verdicts and verdicts[0].endswith("BROKEN"), r.stdout


def test_the_module_map_and_flow_pictures_are_current():
    """docs/how-it-works.md's map and pictures are docs/module_map.py's output: a moved module or a renamed step
    function fails here (rerun ``python docs/module_map.py --update``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("module_map", REPO / "docs" / "module_map.py")
    module_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_map)
    for name, text in module_map.blocks().items():
        assert module_map.current(name) == text, f"docs/how-it-works.md's {name} block is stale"
    top = sorted(p.name for p in (REPO / "app").glob("*.py"))
    assert len(top) <= 8, top  # issue 38: at most 8 modules at app/'s top level
