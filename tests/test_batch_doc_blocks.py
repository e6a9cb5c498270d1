"""The benchmark scripts behind docs/batch.md write their tables into its generated blocks (issue 27): each block
they name is in the page, and what they write is the table with a note naming the command (fake results here;
the real runs are listed in each script's --help)."""

from __future__ import annotations

import re
import shutil

import pytest

from benchmarks import align_gain, batch_speed, detect_tuning, detector_compare, large_photos
from tests.conftest import REPO

BLOCKS = ("batch-speed", "align-gain-haar", "align-gain-mtcnn", "eye-check", "eye-scale", "large-photos",
          "large-photos-sweep", "smallest-face", "detector-table", "detector-large", "detector-rotated")


def test_every_block_the_scripts_write_is_in_the_page_once():
    text = (REPO / "docs" / "batch.md").read_text(encoding="utf-8")
    for name in BLOCKS:
        assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1, name
        assert text.index(f"<!-- {name}:start -->") < text.index(f"<!-- {name}:end -->"), name


@pytest.fixture
def page(tmp_path, monkeypatch):
    """A copy of docs/batch.md that block_file finds instead of the real page."""
    import training.report

    copy = tmp_path / "batch.md"
    shutil.copy(REPO / "docs" / "batch.md", copy)
    monkeypatch.setattr(training.report, "block_file", lambda name, root=None: copy)
    return copy


def _block(page, name: str) -> str:
    m = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", page.read_text(encoding="utf-8"), re.S)
    assert m, name
    return m.group(1)


def _runs(ms: float, cpu: float = 1.5, photos: int = 40) -> list[dict]:
    return [{"seconds": ms * photos / 1000, "cpu_seconds": cpu * ms * photos / 1000, "photos": photos, "faces": 40}]


def test_batch_speed_docs_table_and_block(page):
    res = {}
    for f in batch_speed.FOLDERS:
        res[("this", f, 1)] = _runs(50.0)
        res[("this", f, 2)] = _runs(48.0)
        res[("this", f, batch_speed.ONE_THREAD)] = _runs(80.0, cpu=1.0)
    text = batch_speed.docs_table(res, 40, 2)
    assert text.splitlines()[0].startswith("| 40 photos | 1 worker | cores busy |")
    assert "| 50.0 ms/photo | 1.50 | 48.0 ms/photo | 80.0 ms/photo | 40.0 ms/photo (1.25x) |" in text
    batch_speed.update_docs(text, "python -m benchmarks.batch_speed --rounds 3 --one-thread", "Measured on: x.")
    block = _block(page, "batch-speed")
    assert block.startswith(text) and "`python -m benchmarks.batch_speed --rounds 3 --one-thread`" in block
    assert "Measured on:" in block


def test_batch_speed_update_docs_needs_every_column():
    with pytest.raises(SystemExit):
        batch_speed.main(["--update-docs", "--rounds", "1"])


def test_align_gain_rows_and_verdict():
    r = {"n": 500, "found": 124, "pairs": 100, "tilt_err": 5.9, "plain": 0.621, "aligned": 0.645, "oracle": 0.677}
    assert align_gain.table_row((10, 30), r) == ("| ±10-30° | 124 of 500 | 100 | 5.9° | 62.1% | 64.5% | +2.4 | "
                                                 "67.7% | +5.6 |")
    assert align_gain.table_row((0, 0), {**r, "found": 0}).startswith("| 0° (upright) | 0 of 500 |")
    note = align_gain.docs_note("python benchmarks/align_gain.py --n 500", {(10, 30): r}, 0.711, 500, 3)
    assert note.startswith("`python benchmarks/align_gain.py --n 500`") and "71.1%" in note
    assert "not met (+2.4 on 124 faces)" in note
    met = align_gain.docs_note("x", {(10, 30): {**r, "aligned": 0.70}}, 0.7, 500, 3)
    assert ": met (+7.9 on 124 faces)" in met


def test_eye_check_table_marks_the_apps_setting():
    rows = {name: {"fer": 300 + i, "photos": 9, "group": 33, "neg": 2, "ms": 9.5}
            for i, name in enumerate(detect_tuning.FALLBACKS)}
    sizes = {"fer": 367, "photos": 9, "group": 34, "neg": 32}
    docs = detect_tuning.fallback_table(rows, sizes, with_ms=False)
    assert "ms" not in docs  # counts only: may be retaken on a busy machine
    now = [line for line in docs.splitlines() if "(**now**)" in line]
    assert len(now) == 1 and "lefteye_2splits" in now[0] and "| 303 of 367 |" in now[0]
    assert "| 9.5 |" in detect_tuning.fallback_table(rows, sizes)


def test_large_photos_targets_and_sizes_note():
    assert large_photos.targets_met(0.98, 2.45) == "recall only"
    assert large_photos.targets_met(0.98, 1.2) == "both"
    assert large_photos.targets_met(0.5, 0.7) == "time only"
    assert large_photos.targets_met(0.5, 2.0) == "neither"
    assert "0.6-2.0x each detector's rule" in large_photos.sizes_note("python benchmarks/large_photos.py")


def test_detector_compare_target_cells_and_block(page):
    assert detector_compare._target(0.053, 0.060) == "0.06 | yes"
    assert detector_compare._target(2.41, 1.5) == "1.5 | no"
    detector_compare.update_docs("detector-rotated", "| photos | detector |\n|---|---|\n\n`cmd`")
    assert _block(page, "detector-rotated") == "| photos | detector |\n|---|---|\n\n`cmd`\n"


def test_batch_speed_main_writes_its_block(page, monkeypatch):
    def fake_measure(checkouts, rounds, workers, n):
        return {("this", f, w): _runs(60.0 if w == batch_speed.ONE_THREAD else 40.0) for f in batch_speed.FOLDERS
                for w in workers}

    monkeypatch.setattr(batch_speed, "measure", fake_measure)
    assert batch_speed.main(["--rounds", "1", "--photos", "2", "--one-thread", "--update-docs"]) == 0
    block = _block(page, "batch-speed")
    assert "| 2 photos | 1 worker |" in block
    assert "`python -m benchmarks.batch_speed --rounds 1 --photos 2 --one-thread`" in block


def test_large_photos_sizes_main_writes_its_block(page, monkeypatch):
    monkeypatch.setattr(large_photos, "sizes_table", lambda: "| photo size | detector |\n|---|---|")
    assert large_photos.main(["--part", "sizes", "--update-docs"]) == 0
    block = _block(page, "smallest-face")
    assert block.startswith("| photo size | detector |") and "`python benchmarks/large_photos.py --part sizes`" in block


needs_shared = pytest.mark.skipif(not (detector_compare.DEFAULT_SHARED / "data" / "photos" / "faces.json").is_file(),
                                  reason="needs ../shared")


@needs_shared
def test_detector_compare_main_writes_rotated_and_large_blocks(page, monkeypatch):
    monkeypatch.setattr(detector_compare, "part_turned_covered", lambda sets: ["| photos | detector |", "|---|---|"])
    monkeypatch.setattr(detector_compare, "part_large", lambda shared, repeats: ["| photo |", "|---|"])
    assert detector_compare.main(["--part", "rotated", "--part", "covered", "--part", "large", "--update-docs"]) == 0
    rotated = _block(page, "detector-rotated")
    assert rotated.startswith("| photos | detector |\n|---|---|\n\n`python benchmarks/detector_compare.py --part "
                              "rotated --part covered --part large`")
    large = _block(page, "detector-large")
    assert large.startswith("| photo |\n|---|\n\n`python benchmarks/detector_compare.py") and "Measured on:" in large


@needs_shared
def test_detect_tuning_eyescale_main_writes_its_block(page, monkeypatch):
    monkeypatch.setattr(detect_tuning, "eye_scale_sweep", lambda photos, shared, n: "| eye scale factor |\n|---|")
    assert detect_tuning.main(["--part", "eyescale", "--update-docs"]) == 0
    block = _block(page, "eye-scale")
    assert block.startswith("| eye scale factor |\n|---|\n\n`python benchmarks/detect_tuning.py --part eyescale`")
