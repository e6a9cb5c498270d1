"""The parallel annealing search: N trials per temperature step, in worker processes or on a Dask cluster.

The core tests drive a fake objective through runners that finish trials in shuffled orders; the CLI tests
train real tiny ff trials (synthetic faces) in two spawned worker processes, kill a search with a real SIGKILL
and resume it, and run the same search on a real local Dask cluster started here.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_anneal import (  # noqa: F401 - tiny_run is a fixture the tests take
    TINY_CONFIG,
    TINY_SPACE,
    fake_objective,
    run_dirs,
    strip,
    synthetic_fer,
    tiny_run,
    write_csv,
)
from training import anneal as an
from training.anneal import Outcome, Schedule, anneal
from training.anneal.core import call_objective
from training.search_space import default_space

REPO = Path(__file__).resolve().parents[1]


class ShuffledRunner:
    """Scores a step's trials in this process but hands them back in a seeded random order, as workers that
    finish at different times would; ``stop_after`` raises KeyboardInterrupt after that many results."""

    def __init__(self, objective, seed: int, stop_after: int | None = None):
        self.objective, self.rng, self.stop_after, self.given = objective, np.random.default_rng(seed), stop_after, 0

    def run(self, requests):
        results = [call_objective(self.objective, r) for r in requests]
        for k in self.rng.permutation(len(results)):
            if self.stop_after is not None and self.given >= self.stop_after:
                raise KeyboardInterrupt
            self.given += 1
            yield results[k]


# -------------------------------------------------------------------------------------------- the core


@pytest.mark.parametrize("workers", [2, 3])
def test_batched_search_is_deterministic_whatever_order_trials_finish(workers):
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 10)
    ref = anneal(space, fake_objective(), schedule=sched, seed=4, workers=workers)
    for order_seed in range(4):
        r = anneal(space, ShuffledRunner(fake_objective(), order_seed), schedule=sched, seed=4, workers=workers)
        assert strip(r.trials) == strip(ref.trials)
    assert ref.complete and [t["iteration"] for t in ref.trials] == list(range(1, 11))
    # one temperature per step of `workers` trials, falling step by step
    temps = [t["temperature"] for t in ref.trials]
    steps = [temps[i:i + workers] for i in range(0, 10, workers)]
    assert all(len(set(s)) == 1 for s in steps) and [s[0] for s in steps] == sorted({*temps}, reverse=True)
    assert temps[0] == pytest.approx(0.03) and temps[-1] == pytest.approx(0.003)
    # every trial of step 1 is the start point or one of its neighbours; other seeds propose otherwise
    start = space.start_point()
    assert ref.trials[0]["params"] == start
    assert all(sum(t["params"][k] != start[k] for k in start) >= 1 for t in ref.trials[1:workers])
    other = anneal(space, fake_objective(), schedule=sched, seed=5, workers=workers)
    assert [t["params"] for t in other.trials] != [t["params"] for t in ref.trials]


def test_one_worker_is_the_classic_chain():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 8)
    assert strip(anneal(space, fake_objective(), schedule=sched, seed=2, workers=1).trials) == \
        strip(anneal(space, fake_objective(), schedule=sched, seed=2).trials)
    two = anneal(space, fake_objective(), schedule=sched, seed=2, workers=2)
    assert [t["params"] for t in two.trials][:1] == [space.start_point()]


def test_metropolis_settles_a_step_in_trial_order():
    """Within a step each trial faces the current point as the trials before it left it."""
    space = default_space("ff")
    values = {1: 0.50, 2: 0.55, 3: 0.40, 4: 0.56}  # step 1: 1, 2; step 2: 3 (much worse), 4 (better than 2)
    r = anneal(space, lambda req: Outcome(values[req.iteration]), schedule=Schedule(0.001, 0.001, 4), seed=0,
               workers=2)
    t = r.trials
    assert [x["accepted"] for x in t] == [True, True, False, True]
    assert t[2]["acceptance_probability"] == pytest.approx(np.exp(-(0.55 - 0.40) / 0.001))
    assert t[3]["acceptance_probability"] == 1.0 and r.best["iteration"] == 4


def test_interrupted_step_keeps_finished_trials_and_resume_trains_only_the_rest():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 6)
    whole = anneal(space, fake_objective(), schedule=sched, seed=11, workers=3)

    saved: dict = {"trials": [], "pending": []}
    runner = ShuffledRunner(fake_objective(), order_seed := 1, stop_after=4)  # 3 of step 1, then 1 of step 2
    with pytest.raises(KeyboardInterrupt):
        anneal(space, runner, schedule=sched, seed=11, workers=3,
               on_trial=lambda trials: saved.__setitem__("trials", json.loads(json.dumps(trials))),
               on_pending=lambda _, recs: saved.__setitem__("pending", json.loads(json.dumps(recs))))
    assert order_seed == 1 and [t["iteration"] for t in saved["trials"]] in ([1, 2, 3], [1, 2, 3, 4])
    finished = {t["iteration"] for t in saved["trials"]} | {p["iteration"] for p in saved["pending"]}
    assert len(finished) == 4  # the fourth result is kept, settled or pending, whatever trial it was

    calls: list[int] = []
    resumed = anneal(space, fake_objective(calls), schedule=sched, seed=11, workers=3, history=saved["trials"],
                     pending=saved["pending"])
    assert sorted(calls) == sorted({4, 5, 6} - finished) and not set(calls) & finished
    assert strip(resumed.trials) == strip(whole.trials)


def test_resume_with_other_workers_is_refused():
    space, sched = default_space("ff"), Schedule(0.03, 0.003, 6)
    done = anneal(space, fake_objective(), schedule=sched, seed=3, workers=2).trials[:4]
    with pytest.raises(an.ResumeMismatch, match="with 3 trial"):
        anneal(space, fake_objective(), schedule=sched, seed=3, workers=3, history=done)


# ----------------------------------------------------------------------------- the CLI, real trials


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


PARALLEL = ("--workers", "2", "--iterations", "4", "--no-tensorboard")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """One uninterrupted ``--workers 2`` search of 4 tiny trials, which the tests below must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTIONLENS_CACHE", str(root / "cache"))
        data = write_csv(synthetic_fer(), root / "fer2013.csv")
        (root / "base.json").write_text(json.dumps(TINY_CONFIG))
        (root / "space.json").write_text(json.dumps(TINY_SPACE))
        argv = ["--data", str(data), "--config", str(root / "base.json"), "--space", str(root / "space.json"),
                "--seed", "5", "--threads", "1", "--quiet", "--log-root", str(root / "logs"), *PARALLEL]
        assert an.main(argv) == 0
    (run,) = run_dirs(root / "logs")
    return {"dir": run, "state": an.read_state(run)}


def test_cli_two_workers_files_and_devices(reference):
    run, state = reference["dir"], reference["state"]
    assert state["complete"] and state["settings"]["workers"] == 2 and len(state["trials"]) == 4
    assert not state["pending"] and len({json.dumps(t["params"]) for t in state["trials"]}) == 4
    t = state["trials"]
    assert t[0]["temperature"] == t[1]["temperature"] > t[2]["temperature"] == t[3]["temperature"]
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert all(r["device"] == "cpu" for r in rows if r["status"] == "ok")
    search = json.loads((run / "best.json").read_text())["search"]
    assert (search["device"], search["search_device"], search["workers"]) == ("cpu", "cpu", 2)
    assert len(list(run.glob("trials/trial-*/history.json"))) == 4 and not list(run.rglob("*.pt"))


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker processes")
def test_cli_two_workers_sigkill_after_two_trials_then_resume_retrains_none(tiny_run, tmp_path, reference):
    """A real SIGKILL of the search while its workers train step 2: the workers die with it, and the same
    command again trains only what had not finished, ending exactly as the uninterrupted search (same seed,
    same workers: same proposals, same results)."""
    cmd = [sys.executable, "-m", "training.anneal", *tiny_run(tmp_path / "killed", *PARALLEL)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            workers |= {c for c in _children(proc.pid)}
            runs = run_dirs(tmp_path / "killed")
            if runs and (runs[0] / "trials.json").exists():
                state = an.read_state(runs[0])
                if len(state["trials"]) + len(state["pending"]) >= 2:
                    break
            time.sleep(0.05)
        workers |= set(_children(proc.pid))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    (run,) = run_dirs(tmp_path / "killed")
    state = an.read_state(run)
    done = [t["iteration"] for t in state["trials"] + state["pending"]]
    assert 2 <= len(done) < 4, done
    deadline = time.monotonic() + 20  # the kernel SIGTERMs the workers when the search dies (PR_SET_PDEATHSIG)
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert workers and not any(_alive(p) for p in workers), "worker processes outlived the search"
    stamps = {i: (run / "trials" / f"trial-{i:03d}" / "history.json").stat().st_mtime_ns for i in done}

    r = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(state['trials'])} trial(s) already recorded" in r.stdout
    assert {i: (run / "trials" / f"trial-{i:03d}" / "history.json").stat().st_mtime_ns for i in done} == stamps
    resumed = an.read_state(run)
    assert resumed["complete"] and strip(resumed["trials"]) == strip(reference["state"]["trials"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker processes")
def test_cli_ctrl_c_with_workers_running_exits_cleanly(tiny_run, tmp_path):
    """Ctrl-C reaches the whole process group: the search stops with 130 and its one-line note, no worker
    prints a traceback and none is left running. The search starts with SIGINT at its default, as a terminal
    gives it: a test run launched in the background of a script (``cmd &``) inherits SIGINT ignored, and then
    Ctrl-C could never reach the search (a CI dry run started that way saw it run to the end)."""
    cmd = [sys.executable, "-m", "training.anneal",
           *tiny_run(tmp_path / "logs", "--workers", "2", "--iterations", "8", "--no-tensorboard")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers: set[int] = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        workers |= {c for c in _children(proc.pid)}
        runs = run_dirs(tmp_path / "logs")
        if runs and (runs[0] / "trials.json").exists() and an.read_state(runs[0])["trials"]:
            break
        time.sleep(0.05)
    workers |= set(_children(proc.pid))
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; run the same command again" in err
    time.sleep(0.5)
    assert workers and not any(_alive(p) for p in workers)


def test_cli_missing_device_is_a_one_line_error(tiny_run, tmp_path, capsys):
    assert an.main(tiny_run(tmp_path / "logs", "--devices", "cuda:0,cuda:1")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "cuda" in err
    assert not run_dirs(tmp_path / "logs")


# ------------------------------------------------------------------------------------ a Dask cluster


def test_cli_cluster_runs_the_same_search_on_a_local_dask_cluster(tiny_run, tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        assert an.main(tiny_run(tmp_path / "dask", *PARALLEL, "--cluster", cluster.scheduler_address)) == 0
    (d,) = run_dirs(tmp_path / "dask")
    sd = an.read_state(d)
    assert sd["complete"] and strip(sd["trials"]) == strip(reference["state"]["trials"])  # same search
    assert all(t["info"]["device"] == "cpu" for t in sd["trials"] if t["status"] == "ok")
    search = json.loads((d / "best.json").read_text())["search"]
    assert search["search_device"].startswith("dask tcp://") and search["device"] == "cpu"
