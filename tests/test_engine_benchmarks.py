"""The engine's benchmark rows run and report what they claim: the ensemble's cost over its models', and the
batch loop's ms per photo with 1 and 2 workers (tiny inputs here; the real run is python -m benchmarks)."""

from __future__ import annotations

from benchmarks.batch_speed import FOLDERS, ONE_THREAD, cores_busy, measure
from benchmarks.common import ROOT
from benchmarks.label_speed import ensemble_cost_rows


def test_ensemble_cost_rows(tiny_zoo):
    rows = ensemble_cost_rows(tiny_zoo, quick=True, threads=(1,))
    assert [r.what for r in rows] == [
        "ensemble ÷ sum of its models alone, 1 thread", "flip TTA ÷ single pass, 1 thread"
    ]
    assert all(r.value is not None and r.value > 0 and r.unit == "x" for r in rows)
    assert "batch of 8" in rows[0].notes and "target <= 1.25" in rows[0].notes


def test_batch_speed_measures_this_checkout():
    res = measure({"this": ROOT}, rounds=1, workers=(1, 2, ONE_THREAD), n=2)
    assert set(res) == {("this", f, w) for f in FOLDERS for w in (1, 2, ONE_THREAD)}
    for (_c, folder, _w), runs in res.items():
        assert runs[0]["photos"] == 2 and runs[0]["seconds"] > 0 and runs[0]["cpu_seconds"] > 0
        assert runs[0]["faces"] >= (2 if folder.startswith("portrait") else 0)
    # The one-thread setting is what bounds every other: its CPU time must be its wall time (no thread left busy).
    for f in FOLDERS:
        assert cores_busy(res[("this", f, ONE_THREAD)]) <= 1.1


def test_cores_busy_is_cpu_over_wall():
    assert cores_busy([{"seconds": 2.0, "cpu_seconds": 3.0}, {"seconds": 1.0, "cpu_seconds": 1.9}]) == 1.7
    assert cores_busy([{"seconds": 2.0}]) is None  # an older checkout that does not report CPU time
