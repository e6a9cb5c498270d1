"""Inputs that must never stop a batch or lose a result: links, FIFOs, devices, odd names, long paths,
permissions, a full disk and an unwritable output folder. Each gets a one-line reason in summary.json."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from app.batch import _journal as journal
from app.batch._cli import main
from app.core import shown
from tests.unprivileged import run_unprivileged, skip_unless_possible, world_dir

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX links, FIFOs and byte names")


def _run(*args, zoo, timeout: float = 240) -> int:
    """In a thread with a time limit: a FIFO opened for reading would block forever; fail instead of hang."""
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(main([*map(str, args), "--zoo", str(zoo), "--threads", "1",
                                                         "--workers", "1"])), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the batch hung"
    return out[0]


def _rows(out: Path) -> list[list[str]]:
    return journal.read_rows(out / "labels.csv")


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@posix_only
def test_hostile_folder_is_labelled_once_and_every_oddity_reported(tmp_path, sample_photo, tiny_zoo, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(sample_photo, src / "a.jpg")
    shutil.copy(sample_photo, src / "sub" / "b.jpg")
    newline = src / "new\nline.jpg"
    shutil.copy(sample_photo, newline)
    bad_bytes = Path(os.fsdecode(os.path.join(os.fsencode(src), b"caf\xe9-latin1.jpg")))  # not UTF-8
    shutil.copy(sample_photo, bad_bytes)
    (src / "loop").symlink_to(".", target_is_directory=True)  # a link to its own folder
    (src / "sub" / "up").symlink_to("..", target_is_directory=True)  # a loop through the parent
    (src / "alias").symlink_to("sub", target_is_directory=True)  # a second way to sub/
    (src / "self.jpg").symlink_to("self.jpg")  # ELOOP
    (src / "dangling.jpg").symlink_to("missing.jpg")
    (src / "a_again.jpg").symlink_to("a.jpg")  # the same image twice
    os.mkfifo(src / "pipe.jpg")
    (src / "null.jpg").symlink_to(os.devnull)  # a character device, without needing mknod
    out = src / "results"  # the output folder inside the input folder

    assert _run(src, "--out", out, "--recursive", zoo=tiny_zoo) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err

    rows = _rows(out)
    labelled = [r[0] for r in rows[1:]]
    assert sorted(labelled) == sorted(str(p) for p in (src / "a.jpg", src / "sub" / "b.jpg", newline, bad_bytes))
    assert all(os.path.isfile(p) for p in labelled)  # names with newlines and raw bytes round-trip exactly

    s = _summary(out)
    reasons = {Path(e["path"]).name: e["reason"] for e in s["skipped"]}
    assert "loop" in reasons["self.jpg"]
    assert reasons["dangling.jpg"].startswith("broken symbolic link")
    assert "already scanned" in reasons["loop"] and "already scanned" in reasons["alias"]
    assert "already scanned" in reasons["up"]
    assert reasons["a_again.jpg"] == "link to an image already listed"
    assert reasons["pipe.jpg"].startswith("named pipe") and reasons["null.jpg"].startswith("device file")
    assert s["images"] == 4 and s["faces"] == 4 and s["errors"] == []
    (out / "summary.json").read_bytes().decode("utf-8")  # valid UTF-8 although a name is not


@posix_only
def test_explicit_fifo_and_links_are_errors_not_hangs(tmp_path, tiny_zoo):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "self.jpg").symlink_to("self.jpg")
    (tmp_path / "dangling.jpg").symlink_to("nothing.jpg")
    out = tmp_path / "out"
    assert _run(tmp_path / "pipe.jpg", tmp_path / "self.jpg", tmp_path / "dangling.jpg", "--out", out,
                zoo=tiny_zoo) == 0
    reasons = {Path(e["image"]).name: e["reason"] for e in _summary(out)["errors"]}
    assert reasons["pipe.jpg"].startswith("is a named pipe (FIFO)")
    assert reasons["self.jpg"].startswith("symbolic link loop")
    assert reasons["dangling.jpg"].startswith("broken symbolic link")


@posix_only
def test_paths_longer_than_the_system_allows(tmp_path, sample_photo, tiny_zoo):
    """A folder nested past PATH_MAX is reported, not fatal; a 255-byte file name is labelled."""
    src = tmp_path / "in"
    src.mkdir()
    long_name = "x" * (255 - len(".jpg")) + ".jpg"
    shutil.copy(sample_photo, src / long_name)
    fd = os.open(src, os.O_RDONLY)
    try:
        for _ in range(25):  # 25 x 201 bytes > 4096
            os.mkdir("d" * 200, dir_fd=fd)
            nfd = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(sample_photo.read_bytes())
    finally:
        os.close(fd)
    out = tmp_path / "out"
    assert _run(src, "--out", out, "--recursive", zoo=tiny_zoo) == 0
    s = _summary(out)
    assert [Path(r[0]).name for r in _rows(out)[1:]] == [long_name]
    assert len(s["errors"]) == 1 and "path too long" in s["errors"][0]["reason"]


def test_disk_full_mid_batch_keeps_what_was_written(tmp_path, sample_photo, tiny_zoo, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(sample_photo, src / f"{n}.jpg")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "out"
    real, calls = journal.write_all, []

    def full_after_first_image(fd, data):
        calls.append(fd)
        if len(calls) == 3:  # a's rows and journal line went through; b's rows hit a full disk halfway
            real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(journal, "write_all", full_after_first_image)
    assert _run(src, "--out", out, zoo=tiny_zoo) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m app.batch: error: cannot write outputs") and "No space left" in err[-1]
    assert "Traceback" not in "\n".join(err)
    rows = _rows(out)
    assert [Path(r[0]).name for r in rows[1:]] == ["a.jpg"] and all(len(r) == len(rows[0]) for r in rows)
    assert len(journal.read_journal(out / journal.JOURNAL)) == 1
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    monkeypatch.setattr(journal, "write_all", real)
    assert _run(src, "--out", out, "--resume", zoo=tiny_zoo) == 0
    assert [Path(r[0]).name for r in _rows(out)[1:]] == ["a.jpg", "b.jpg", "c.jpg"]


def _locked_tree(d: Path, sample_photo: Path, zoo: Path) -> tuple[Path, Path]:
    src = d / "in"
    (src / "locked").mkdir(parents=True)
    for p in (src, d):
        p.chmod(0o755)
    shutil.copy(sample_photo, src / "a.jpg")
    shutil.copy(sample_photo, src / "locked" / "b.jpg")
    shutil.copy(sample_photo, src / "secret.jpg")
    shutil.copytree(zoo, d / "zoo")
    for p in (d / "zoo", *(d / "zoo").iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (src / "locked").chmod(0)
    (src / "secret.jpg").chmod(0)
    return src, d / "zoo"


def test_unreadable_folder_and_file_without_privileges(sample_photo, tiny_zoo):
    skip_unless_possible()
    with world_dir() as d:
        src, zoo = _locked_tree(d, sample_photo, tiny_zoo)
        out = d / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        r = run_unprivileged(["-m", "app.batch", str(src), "--out", str(out), "-r", "--zoo", str(zoo),
                              "--workers", "1"], home=d)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        s = _summary(out)
        assert s["faces"] == 1
        assert {(Path(e["image"]).name, e["reason"]) for e in s["errors"]} == {
            ("locked", "cannot list folder (permission denied)"),
            ("secret.jpg", "cannot read (permission denied)"),
        }


def test_unwritable_output_folder_without_privileges(sample_photo, tiny_zoo):
    skip_unless_possible()
    with world_dir() as d:
        src, zoo = _locked_tree(d, sample_photo, tiny_zoo)
        out = d / "readonly"
        out.mkdir()
        out.chmod(0o555)
        before = sorted(p.name for p in src.iterdir())
        r = run_unprivileged(["-m", "app.batch", str(src / "a.jpg"), "--out", str(out), "--zoo", str(zoo)], home=d)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == [f"python -m app.batch: error: --out {out}: folder is not writable"]
        assert list(out.iterdir()) == [] and sorted(p.name for p in src.iterdir()) == before


def test_csv_round_trips_hostile_names(tmp_path):
    """labels.csv and the journal give back exactly the names written: newlines, quotes, commas, raw bytes."""
    names = ["plain.jpg", 'quo"te,comma.jpg', "new\nline\r.jpg", "caf\udce9.jpg", "ünï códe.jpg"]
    out = tmp_path
    journal.prepare_outputs(out, ["image", "face"], resume=False)
    with journal.OutputWriter(out) as w:
        for n in names:
            w.add({"key": n, "image": n, "faces": 1, "error": None}, [[n, 1]])
    assert [r[0] for r in journal.read_rows(out / "labels.csv")[1:]] == names
    assert [r["image"] for r in journal.read_journal(out / journal.JOURNAL).values()] == names
    with open(out / "labels.csv", encoding="utf-8", errors="surrogateescape", newline="") as f:
        assert [r[0] for r in list(csv.reader(f))[1:]] == names  # what a user's own csv.reader gets
    assert "\\udce9" in journal.json_text({"p": names[3]}) and json.loads(journal.json_text(names)) == names
    assert shown("a\nb\udce9") == "a\\nb\\xe9"
