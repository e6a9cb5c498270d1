"""Run a command without privileges, so permission tests check something even when CI runs as root.

Root reads through ``chmod 000``, so a permission test run as root checks nothing. Where the tests run as
root, :func:`run_unprivileged` drops the privileges in the child: with util-linux ``setpriv`` it removes the
capabilities that let root ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), else it switches to
``nobody`` before ``exec`` where that user can run this Python; otherwise the test is skipped with the
reason. As an ordinary user the command runs as that user. :func:`world_dir` gives a scratch folder any
user can enter (pytest's own tmp folders are private).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOBODY = "nobody"


def _ids() -> tuple[int, int] | None:
    try:
        import pwd

        pw = pwd.getpwnam(NOBODY)
    except (ImportError, KeyError):
        return None
    return pw.pw_uid, pw.pw_gid


def _world_executable(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _strategy() -> list[str] | None:
    """The command prefix that drops root's privileges, [] for setuid in preexec, None when impossible."""
    setpriv = shutil.which("setpriv")
    if setpriv:
        caps = "-dac_override,-dac_read_search"
        return [setpriv, "--bounding-set", caps, "--inh-caps", caps]
    if _ids() is not None and _world_executable(Path(sys.executable)):
        return []
    return None


def skip_unless_possible() -> None:
    """Skip with the reason when privileges cannot be dropped (Windows; root without setpriv or a usable
    ``nobody``), because a permission test run with root's privileges would pass without checking anything."""
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    if os.geteuid() == 0 and _strategy() is None:
        pytest.skip("running as root, and neither setpriv nor a 'nobody' user who can run this Python is "
                    "available to drop privileges: the test would check nothing")


@contextmanager
def world_dir() -> Iterator[Path]:
    """A scratch folder (mode 0777) the unprivileged user can use; removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="emotionlens-perm-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        for p in [d, *d.rglob("*")]:  # give back what the test locked so it can be removed
            try:
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o777)
            except OSError:
                pass
        shutil.rmtree(d, ignore_errors=True)


def _drop() -> None:
    ids = _ids()
    assert ids is not None
    uid, gid = ids
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def run_unprivileged(args: list[str], home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python args...`` from the repo as an unprivileged user; stdout and stderr captured as text."""
    skip_unless_possible()
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1",
               PYTHONIOENCODING="utf-8", OMP_NUM_THREADS="1")
    prefix = _strategy() if os.geteuid() == 0 else []
    preexec = _drop if os.geteuid() == 0 and prefix == [] else None
    return subprocess.run([*(prefix or []), sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)  # noqa: PLW1509 - the point: drop privileges
