"""--cluster: a real Dask LocalCluster gives the local run's outputs byte for byte (photos, bad inputs, pictures,
a video), survives a worker killed mid-task, resumes after a stop, and reports provider errors in one line;
cross-photo face batching gives per-photo labelling's probabilities.

One LocalCluster (two single-threaded worker processes) serves most tests through its scheduler address, as a
remote cluster would; one test starts its own with ``--cluster local:N``. Kept small: the machines running
the suite are busy.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.batch import _cli as batch
from app.batch import _cluster as cluster
from app.batch import _journal as journal
from app.batch._cli import main
from tests.conftest import SAMPLE, make_bad_images

BAD = ("truncated_jpg", "zero_byte", "text_as_jpg", "huge_png")


@pytest.fixture(scope="module")
def dask_cluster():
    """A LocalCluster of 2 worker processes, 1 thread each; a task may kill one worker before Dask gives up."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                                     silence_logs=50) as lc:
        yield lc


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Five small portraits, a wall without a face and bad files: what a real folder holds."""
    src = tmp_path_factory.mktemp("cluster_in")
    small = Image.open(SAMPLE).convert("RGB").resize((224, 224))
    for i in range(5):
        small.rotate(2 * i).save(src / f"{i:02d}.jpg", quality=90)
    Image.new("RGB", (160, 120), (90, 120, 150)).save(src / "05_wall.png")
    bad = make_bad_images(tmp_path_factory.mktemp("cluster_bad"))
    for k in BAD:
        shutil.copy(bad[k], src / f"bad_{bad[k].name}")
    return src


def _run(*args, zoo) -> int:
    return main([*map(str, args), "--zoo", str(zoo), "--threads", "1"])


@pytest.fixture(scope="module")
def local_out(tmp_path_factory, photos, tiny_zoo) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert _run(photos, "--out", out, "--workers", "1", "--annotate", zoo=tiny_zoo) == 0
    return out


def _same_outputs(a: Path, b: Path) -> None:
    assert (a / "labels.csv").read_bytes() == (b / "labels.csv").read_bytes()
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for k in ("images", "done", "labelled", "faces", "no_face", "errors", "skipped"):
        assert sa[k] == sb[k], k


def test_cluster_outputs_equal_a_local_run(tmp_path, photos, tiny_zoo, local_out, capsys):
    """local:2 (a LocalCluster of its own), chunks of 2: same labels.csv bytes, errors, annotated copies."""
    capsys.readouterr()
    out = tmp_path / "out"
    assert _run(photos, "--out", out, "--cluster", "local:2", "--cluster-chunk", "2", "--annotate", zoo=tiny_zoo) == 0
    _same_outputs(local_out, out)
    s = json.loads((out / "summary.json").read_text())
    assert s["cluster"] == "local:2" and s["workers"] == 2 and s["faces"] == 5 and len(s["errors"]) == len(BAD)
    assert {e["reason"] for e in s["errors"]} >= {"empty file (0 bytes)"}
    skipped = sorted(line for line in capsys.readouterr().err.splitlines() if "skipped:" in line)
    assert len(skipped) == len(BAD)
    names = sorted(p.name for p in (local_out / "annotated").iterdir())
    assert names == sorted(p.name for p in (out / "annotated").iterdir()) and len(names) == 6
    for n in names:
        assert (local_out / "annotated" / n).read_bytes() == (out / "annotated" / n).read_bytes()


def test_send_bytes_reports_bad_inputs_as_locally(tmp_path, photos, tiny_zoo, local_out, dask_cluster):
    """No shared path: the client reads each file and ships the zoo; the same rows and the same reasons."""
    out = tmp_path / "out"
    assert _run(photos, "--out", out, "--cluster", dask_cluster.scheduler_address, "--cluster-send-bytes",
                zoo=tiny_zoo) == 0
    _same_outputs(local_out, out)


def test_resume_after_a_stop_gives_the_same_labels(tmp_path, photos, tiny_zoo, local_out, dask_cluster,
                                                   monkeypatch):
    out, address = tmp_path / "out", dask_cluster.scheduler_address
    real_add, added = journal.OutputWriter.add, []

    def add_then_stop(self, rec, rows):  # Ctrl+C twice after the third image is written
        if len(added) == 3:
            raise KeyboardInterrupt
        real_add(self, rec, rows)
        added.append(rec["key"])

    monkeypatch.setattr(batch.OutputWriter, "add", add_then_stop)
    assert _run(photos, "--out", out, "--cluster", address, "--cluster-chunk", "2", zoo=tiny_zoo) == 130
    assert len(journal.read_journal(out / journal.JOURNAL)) == 3
    monkeypatch.setattr(batch.OutputWriter, "add", real_add)
    assert _run(photos, "--out", out, "--cluster", address, "--cluster-chunk", "2", "--resume", zoo=tiny_zoo) == 0
    _same_outputs(local_out, out)
    assert json.loads((out / "summary.json").read_text())["resumed"] == 3


def kill_worker_once(items, data, out_dir, opts, setup, zoo):
    """The chunk task, except that the first chunk holding 02.jpg kills its worker process (like the OOM killer)."""
    marker = Path(out_dir) / "killed-once"
    if any(it.path.name == "02.jpg" for it in items) and not marker.exists():
        marker.touch()
        os._exit(1)
    return cluster.photo_task(items, data, out_dir, opts, setup, zoo)


def test_a_worker_killed_mid_task_costs_nothing(tmp_path, photos, tiny_zoo, local_out, dask_cluster, monkeypatch):
    """Dask runs the lost chunk again on a worker that is alive; every image is written once, in order."""
    monkeypatch.setattr(cluster, "photo_task", kill_worker_once)
    out = tmp_path / "out"
    out.mkdir()
    assert _run(photos, "--out", out, "--cluster", dask_cluster.scheduler_address, "--cluster-chunk", "2",
                zoo=tiny_zoo) == 0
    assert (out / "killed-once").exists()
    _same_outputs(local_out, out)
    keys = [line for line in (out / journal.JOURNAL).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 10


def kill_worker_always(items, data, out_dir, opts, setup, zoo):
    """The chunk task, except that 03.jpg kills every worker that opens it (a crashing native decoder)."""
    if any(it.path.name == "03.jpg" for it in items):
        os._exit(139)
    return cluster.photo_task(items, data, out_dir, opts, setup, zoo)


def test_a_file_that_kills_every_worker_costs_only_that_file(tmp_path, photos, tiny_zoo, local_out, dask_cluster,
                                                             monkeypatch, capsys):
    """Dask gives the chunk up (KilledWorker); its images are retried one per task and the culprit is reported."""
    from app.batch._workers import CRASHED

    monkeypatch.setattr(cluster, "photo_task", kill_worker_always)
    out = tmp_path / "out"
    assert _run(photos, "--out", out, "--cluster", dask_cluster.scheduler_address, "--cluster-chunk", "2",
                zoo=tiny_zoo) == 0
    expected = [r for r in journal.read_rows(local_out / "labels.csv") if Path(r[0]).name != "03.jpg"]
    assert journal.read_rows(out / "labels.csv") == expected
    errors = {Path(e["image"]).name: e["reason"] for e in json.loads((out / "summary.json").read_text())["errors"]}
    assert errors["03.jpg"] == CRASHED and len(errors) == len(BAD) + 1
    assert f"03.jpg: {CRASHED}" in capsys.readouterr().err


def test_ctrl_c_saves_then_resume_finishes(tmp_path, sample_photo, tiny_zoo):
    """A real SIGINT to the whole process group (client and LocalCluster workers), as a terminal sends it."""
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("distributed")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    small = Image.open(sample_photo).convert("RGB").resize((224, 224))
    for i in range(40):
        small.save(src / f"{i:02d}.jpg", quality=90)
    cmd = [sys.executable, "-m", "app.batch", str(src), "--out", str(out), "--zoo", str(tiny_zoo), "--cluster",
           "local:1", "--cluster-chunk", "2"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / journal.JOURNAL).is_file() and (out / journal.JOURNAL).read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command with --resume" in err
    done = journal.read_journal(out / journal.JOURNAL)
    assert 2 <= len(done) < 40
    assert _run(src, "--out", out, "--cluster", "local:1", "--resume", zoo=tiny_zoo) == 0
    names = [Path(r[0]).name for r in journal.read_rows(out / "labels.csv")[1:]]
    assert names == [f"{i:02d}.jpg" for i in range(40)]


def test_cross_photo_batching_equals_per_photo_labelling(tiny_zoo):
    from app.models import Labeler
    from app.outputs._labels_csv import confidence

    labeler = Labeler(tiny_zoo, threads=1)
    base = Image.open(SAMPLE).convert("RGB")
    images = [np.asarray(base.rotate(3 * i).resize((200 + 16 * i, 200 + 16 * i))) for i in range(6)]
    images.append(np.asarray(Image.new("RGB", (120, 90), (40, 40, 40))))  # no face: an empty slice
    alone = [labeler.label_image(im) for im in images]
    together = labeler.label_images(images)
    assert [len(r.faces) for r in alone] == [len(r.faces) for r in together] and sum(len(r.faces) for r in alone) >= 5
    for a, b in zip(alone, together, strict=True):
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert fa.box == fb.box
            for p, q in [*((fa.predictions[k], fb.predictions[k]) for k in fa.predictions), (fa.ensemble, fb.ensemble)]:
                assert p.label == q.label and confidence(p.confidence) == confidence(q.confidence)
                np.testing.assert_allclose(p.probs, q.probs, atol=1e-5)


def test_provider_errors_are_one_line(tmp_path, photos, tiny_zoo, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    assert _run(photos, "--out", tmp_path / "out", "--provider", "cuda", zoo=tiny_zoo) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m app.batch: error: --provider cuda: this onnxruntime has ")
    assert "install onnxruntime-gpu" in err[0] and not (tmp_path / "out" / "labels.csv").exists()


def test_provider_error_on_the_workers_stops_the_run_in_one_line(tmp_path, photos, tiny_zoo, dask_cluster, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    capsys.readouterr()
    assert _run(photos, "--out", tmp_path / "out", "--provider", "cuda", "--cluster", dask_cluster.scheduler_address,
                zoo=tiny_zoo) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "a worker failed (ProviderError: --provider cuda: this onnxruntime has" in err[0]


def test_cluster_option_errors(tmp_path, photos, tiny_zoo, capsys):
    assert _run(photos, "--out", tmp_path / "o", "--cluster", "local:0", zoo=tiny_zoo) == 2
    assert "expected local:N with N >= 1" in capsys.readouterr().err
    assert _run(photos, "--out", tmp_path / "o", "--cluster", "local:1", "--workers", "2", zoo=tiny_zoo) == 2
    assert "--workers and --cluster: choose one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(photos), "--out", str(tmp_path / "o"), "--cluster-send-bytes"])
    assert "need --cluster" in capsys.readouterr().err


def test_videos_run_whole_on_workers_with_the_local_rows(tmp_path, sample_photo, tiny_zoo, dask_cluster):
    from tests.test_video_batch import _face_clip

    src = tmp_path / "in"
    src.mkdir()
    _face_clip(src / "pan.mp4", sample_photo, n=16)
    shutil.copy(sample_photo, src / "a.jpg")
    outs = {"local": tmp_path / "local", "cluster": tmp_path / "cluster"}
    assert _run(src, "--out", outs["local"], "--workers", "1", zoo=tiny_zoo) == 0
    assert _run(src, "--out", outs["cluster"], "--cluster", dask_cluster.scheduler_address, zoo=tiny_zoo) == 0
    for name in ("labels.csv", "frames.csv", "tracks.csv"):
        assert (outs["local"] / name).read_bytes() == (outs["cluster"] / name).read_bytes(), name
    assert (outs["local"] / "frames.csv").read_bytes().count(b"\n") > 8
    charts = sorted(p.relative_to(outs["local"]) for p in (outs["local"] / "timelines").rglob("*") if p.is_file())
    assert charts and charts == sorted(p.relative_to(outs["cluster"])
                                       for p in (outs["cluster"] / "timelines").rglob("*") if p.is_file())
