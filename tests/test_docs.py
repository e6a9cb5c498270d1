"""The documentation's commands and examples work as written (issue 27).

* Every ``python -m MODULE ...`` command in README.md and docs/*.md, in code blocks and inline code, is
  parsed by that module's own argparse parser without running it: an option that was renamed or removed
  fails here. ``torchrun ... -m training.train ...`` and ``emotionlens ...`` count too.
* The quick commands (``QUICK``) are run for real, in a scratch folder, as a newcomer would type them.
* The Python examples of the pages in ``PYTHON_PAGES`` run, in order, in one namespace per page.
* README stays short, and the site's navigation lists every page.
* No new hand-typed measurement: a number with a unit (%, ms, s, MB, x, ...) outside a generated block
  (``<!-- name:start -->`` ... ``<!-- name:end -->``, written by the script the page names) fails, unless it
  is one of the lines in ``tests/docs_hand_typed.txt``, the measurements typed before issue 27 that still
  wait for a script to write them. That list may only shrink: a line that is gone must leave it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_PAGES = ["README.md", "docs/index.md", "docs/api.md"]
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`((?:\.venv/bin/)?python3? -m [a-z_.]+[^`]*)`")
# Run for real: cheap, need nothing outside the repository. Each must appear in the documentation verbatim.
QUICK = [
    ".venv/bin/python -m app --self-test",
    ".venv/bin/python -m app.batch app/assets/sample.jpg --out out/ --annotate",
    "python -m app --version",
]
# What the parse check cannot judge: not argparse (pytest, pip, venv) or a placeholder for the whole command.
NOT_OURS = {"pytest", "pip", "venv", "PyInstaller"}


def _commands() -> list[tuple[str, str]]:
    """(page, command) for every documented command line that runs a module of this repository."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = []
        for lang, body in FENCE.findall(text):
            if lang in ("", "bash", "sh", "console", "shell"):
                lines += body.replace("\\\n", " ").splitlines()
        # inline code: a command when it has arguments; a bare `python -m app.batch` only names the tool
        lines += [c for c in INLINE.findall(FENCE.sub("", text)) if len(c.split()) > 3]
        for line in lines:
            for part in line.split("&&"):
                part = part.strip()
                if re.match(r"^(\.venv/bin/)?(python3? -m |emotionlens|torchrun )", part):
                    found.append((page.name, part))
    return found


def _argv(command: str) -> tuple[str, list[str]] | None:
    """(module, arguments) of a documented command line; None when it is not one of ours."""
    words = shlex.split(command, comments=True)
    prog = words[0].rsplit("/", 1)[-1]
    if prog in ("emotionlens", "emotionlens-batch"):
        return ("app" if prog == "emotionlens" else "app.batch"), words[1:]
    if "-m" not in words:
        return None
    i = words.index("-m")
    module = words[i + 1]
    if module.split(".")[0] in NOT_OURS:
        return None
    return module, words[i + 2:]


# Parses argv with the module's own parser, then stops: patched parse_args raises once parsing succeeded.
PARSE_ONLY = r"""
import argparse, json, runpy, sys
class Parsed(BaseException):
    pass
real = argparse.ArgumentParser.parse_known_args
def parse_known_args(self, args=None, namespace=None):
    ns, extra = real(self, args, namespace)
    if extra:
        self.error("unrecognized arguments: " + " ".join(extra))
    raise Parsed
argparse.ArgumentParser.parse_known_args = parse_known_args
failures = []
for module, argv in json.loads(sys.stdin.read()):
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        failures.append([module, argv, "ran without parsing any arguments"])
    except Parsed:
        pass
    except SystemExit as e:
        if e.code not in (0, None):
            failures.append([module, argv, "argparse refused it (exit %s)" % e.code])
print(json.dumps(failures))
"""


def test_every_documented_command_parses():
    commands = [(page, cmd, _argv(cmd)) for page, cmd in _commands()]
    ours = [(page, cmd, parsed) for page, cmd, parsed in commands if parsed is not None]
    assert len(ours) > 40, "the extraction found too few commands: the pattern broke"
    modules = {parsed[0] for _, _, parsed in ours}
    assert {"app", "app.batch", "training.train", "training.anneal", "benchmarks"} <= modules
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    job = json.dumps([list(parsed) for _, _, parsed in ours])
    r = subprocess.run([sys.executable, "-c", PARSE_ONLY], input=job, cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    failures = json.loads(r.stdout.strip().splitlines()[-1])
    where = {json.dumps(list(parsed)): f"{page}: {cmd}" for page, cmd, parsed in ours}
    assert not failures, "\n".join(f"{where[json.dumps([m, a])]}  ->  {why}" for m, a, why in failures)


@pytest.fixture
def newcomer(tmp_path) -> Path:
    """A scratch folder holding what the documented examples open: the sample photo at its repository path."""
    (tmp_path / "app" / "assets").mkdir(parents=True)
    shutil.copy(REPO / "app" / "assets" / "sample.jpg", tmp_path / "app" / "assets" / "sample.jpg")
    return tmp_path


@pytest.mark.skipif(not (REPO / "models_zoo" / "manifest.json").is_file(), reason="no shipped zoo")
@pytest.mark.parametrize("command", QUICK)
def test_quick_commands_run_as_written(command, newcomer):
    documented = {cmd for _, cmd in _commands()}
    assert command in documented, f"{command!r} is no longer in the documentation: update QUICK"
    module, argv = _argv(command)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EMOTIONLENS_ZOO", None)
    r = subprocess.run([sys.executable, "-m", module, *argv], cwd=newcomer, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    if "--out" in argv:
        out = newcomer / argv[argv.index("--out") + 1]
        assert (out / "labels.csv").read_text().count("\n") >= 2 and any((out / "annotated").iterdir())


def _python_blocks(page: str) -> list[str]:
    text = (REPO / page).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == "python"]


@pytest.mark.skipif(not (REPO / "models_zoo" / "manifest.json").is_file(), reason="no shipped zoo")
@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_examples_run(page, newcomer, monkeypatch, capsys):
    blocks = _python_blocks(page)
    assert blocks, f"{page} has no python examples"
    monkeypatch.chdir(newcomer)
    monkeypatch.delenv("EMOTIONLENS_ZOO", raising=False)
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page} example {i + 1}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{page} example {i + 1} failed: {type(e).__name__}: {e}\n{code}")
    printed = capsys.readouterr().out
    assert "happy" in printed  # the sample portrait smiles; every page labels it at least once
    if page == "docs/api.md":
        tracks = (newcomer / "out" / "tracks.csv").read_text().splitlines()
        assert tracks[0].startswith("video,track,first_s") and len(tracks) >= 2


MEASURED = re.compile(r"\d+(?:[.,]\d+)?\s?(?:%|ms\b|fps\b|s\b|min\b|MB\b|GB\b|KB\b|x\b|×|hours?\b|points?\b)")
HAND_TYPED = REPO / "tests" / "docs_hand_typed.txt"


def hand_typed_lines() -> set[str]:
    """``page: line`` for every line of README, CHANGELOG and docs/*.md with a number and a unit outside the
    generated blocks."""
    found = set()
    for page in [*PAGES, REPO / "CHANGELOG.md"]:
        generated = False
        for line in page.read_text(encoding="utf-8").splitlines():
            if re.search(r"<!-- [a-z0-9-]+:start -->", line):
                generated = True
            elif re.search(r"<!-- [a-z0-9-]+:end -->", line):
                generated = False
            elif not generated and MEASURED.search(line):
                found.add(f"{page.relative_to(REPO).as_posix()}: {line.strip()}")
    return found


def test_no_new_hand_typed_measurements():
    known = {x for x in HAND_TYPED.read_text(encoding="utf-8").splitlines() if x and not x.startswith("#")}
    found = hand_typed_lines()
    new = sorted(found - known)
    assert not new, ("numbers with units typed by hand; let the script that measures them write them into a "
                     "generated block (see training.report.replace_block):\n" + "\n".join(new))
    gone = sorted(known - found)
    assert not gone, f"no longer in the pages; remove these lines from {HAND_TYPED.name}:\n" + "\n".join(gone)


def test_readme_is_short_and_links_the_site():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in ("docs/index.md", "docs/api.md", "docs/how-it-works.md", "docs/reliability.md",
                 "docs/troubleshooting.md"):
        assert f"]({page})" in readme, f"README does not link {page}"


def test_site_navigation_lists_every_page():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (REPO / "docs").glob("*.md"):
        assert f": {page.name}" in nav, f"mkdocs.yml's nav leaves out docs/{page.name}"


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs not installed (the [docs] extra)")
def test_site_builds_strict(tmp_path):
    """The same build CI runs: a broken link, a missing page or a renamed API name fails it."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    r = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                       capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("label_video") > 2
