"""The search itself: temperature schedule, Metropolis rule and the batched annealing loop. No torch, no files.

With ``workers = N`` the search runs in *temperature steps* of N trials. At the start of a step it proposes N
points around the current point (trial ``i`` draws from its own RNG seeded ``(seed, i)``, so ``i`` fixes the
step and the slot in it); the N trials are scored at once, in any order; then the Metropolis rule settles them
one by one **in trial order**, each against the current point as the trials before it left it. So the outcome
never depends on which worker finishes first, the same seed and N give the same proposals and results, and
N = 1 is exactly the classic one-trial-per-temperature chain. The temperature falls per step, from ``start``
to ``end`` over ``ceil(iterations / N)`` steps: N workers cover the same temperature range in 1/N as many
steps, each step looking at N neighbours instead of one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from training.search_space import SearchSpace, neighbour

MAX_REDRAWS = 20  # neighbours drawn per trial to find a point not scored yet (small spaces run out of them)


@dataclass(frozen=True)
class Schedule:
    """Temperature per step: ``start`` at step 1, ``end`` at the last step, geometric or linear between.

    With one worker a step is a trial, so ``iterations`` counts both; :meth:`for_workers` gives the schedule
    of a search that runs ``workers`` trials per step.
    """

    start: float = 0.03
    end: float = 0.003
    iterations: int = 30
    kind: str = "geometric"

    def __post_init__(self) -> None:
        if not (self.start > 0 and self.end > 0 and math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"temperatures must be > 0 (got start {self.start}, end {self.end})")
        if self.end > self.start:
            raise ValueError(f"the end temperature ({self.end}) must not exceed the start ({self.start})")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1 (got {self.iterations})")
        if self.kind not in ("geometric", "linear"):
            raise ValueError(f"schedule must be geometric or linear (got {self.kind!r})")

    def for_workers(self, workers: int) -> Schedule:
        """The per-step schedule of ``iterations`` trials run ``workers`` at a time."""
        return Schedule(self.start, self.end, math.ceil(self.iterations / max(workers, 1)), self.kind)

    def temperature(self, iteration: int) -> float:
        """Temperature of 1-based step (or, with one worker, trial) ``iteration``."""
        frac = 0.0 if self.iterations == 1 else min(max((iteration - 1) / (self.iterations - 1), 0.0), 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        return self.start * (self.end / self.start) ** frac

    def step_scale(self, iteration: int) -> float:
        """How much of a parameter's step a move uses: 1 when hot, sqrt(T/T_start) later (0.32 at T_start/10),
        so late moves stay local without becoming too small to change anything."""
        return math.sqrt(self.temperature(iteration) / self.start)


def acceptance_probability(current: float, candidate: float, temperature: float) -> float:
    """Metropolis: 1 for a candidate at least as good as the current point, else exp(-(current-candidate)/T)."""
    if candidate >= current:
        return 1.0
    if temperature <= 0:
        return 0.0
    return math.exp(-(current - candidate) / temperature)


def trial_rng(seed: int, iteration: int) -> np.random.Generator:
    """Trial ``iteration``'s own RNG: proposals never depend on how many draws other trials made, or on which
    worker ran them. With N workers, trial ``i`` is slot ``(i-1) % N`` of step ``(i-1) // N + 1``."""
    return np.random.default_rng([seed, iteration])


class BudgetExhausted(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by an objective that ran out of the time budget mid-trial; the trial is not recorded."""


class ResumeMismatch(ValueError):
    """The recorded trials are not what this seed and space propose (changed --space, --seed, ...)."""


@dataclass(frozen=True)
class TrialRequest:
    """What an objective is asked to score; ``budget_seconds`` is the time left when it was handed out."""

    iteration: int
    params: dict[str, Any]
    temperature: float
    budget_seconds: float | None = None


@dataclass
class Outcome:
    """An objective's answer: the validation accuracy, plus anything worth recording (epochs run, device...)."""

    value: float
    info: dict = field(default_factory=dict)


Objective = Callable[[TrialRequest], "float | Outcome"]
TrialResult = tuple[TrialRequest, "Outcome | float | Exception", float]  # request, outcome or error, seconds


class TrialRunner(Protocol):
    """Scores trials, possibly several at once (training.anneal.executors has the serial, process and Dask ones)."""

    def run(self, requests: Sequence[TrialRequest]) -> Iterator[TrialResult]:
        """Yield every request with its outcome (or the Exception it raised) and the seconds it took, in the
        order they finish. BaseExceptions such as KeyboardInterrupt propagate."""
        ...


class SerialRunner:
    """One trial at a time, in this process: the objective is any callable."""

    def __init__(self, objective: Objective):
        self.objective = objective

    def run(self, requests: Sequence[TrialRequest]) -> Iterator[TrialResult]:
        for req in requests:
            yield call_objective(self.objective, req)


def call_objective(objective: Objective, req: TrialRequest) -> TrialResult:
    """Score one trial; an Exception is returned, not raised: a crashing trial is data for the search."""
    start = time.perf_counter()
    try:
        out: Outcome | float | Exception = objective(req)
    except Exception as e:
        out = e
    return req, out, time.perf_counter() - start


@dataclass
class SearchResult:
    trials: list[dict]
    best: dict | None
    complete: bool
    stopped: str  # "completed" | "time budget"


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def _scored(req: TrialRequest, result: Outcome | float | Exception, seconds: float) -> dict:
    """A trial's record before the Metropolis step settles it (what trials.json keeps as 'pending')."""
    rec: dict[str, Any] = {"iteration": req.iteration, "temperature": req.temperature, "params": req.params,
                           "status": "ok", "val_accuracy": None, "objective": 0.0, "reason": "", "info": {}}
    if isinstance(result, Exception):
        rec.update(status="failed", reason=f"{type(result).__name__}: {result}".splitlines()[0][:300])
    else:
        out = result if isinstance(result, Outcome) else Outcome(float(result))
        if not math.isfinite(out.value):
            rec.update(status="failed", reason=f"objective returned {out.value}")
        else:
            rec.update(val_accuracy=float(out.value), objective=float(out.value), info=dict(out.info))
    rec["seconds"] = round(seconds, 2)
    return rec


def anneal(
    space: SearchSpace,
    objective: Objective | TrialRunner,
    *,
    schedule: Schedule,
    seed: int,
    workers: int = 1,
    history: Sequence[dict] = (),
    pending: Iterable[dict] = (),
    on_trial: Callable[[list[dict]], None] | None = None,
    on_pending: Callable[[list[dict], list[dict]], None] | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] | None = None,
) -> SearchResult:
    """Run (or continue) a search of ``schedule.iterations`` trials, ``workers`` per temperature step.

    ``objective`` is a callable (scored one at a time here) or a :class:`TrialRunner`. ``history`` holds the
    settled trial records of an earlier, interrupted run with the same settings: they are replayed (proposals
    recomputed and checked against the records) and not scored again; ``pending`` holds records of trials that
    finished but could not be settled yet (an earlier trial of their step was still running): they are reused.
    ``on_trial`` receives the full record list after every settled trial, and ``on_pending`` that list and the
    finished but unsettled records after every result; that is where callers persist state. A neighbour that was
    scored before, or is proposed twice in a step, is redrawn (up to MAX_REDRAWS times); if the space is too
    small to avoid it, the earlier outcome is reused and the trial marked ``cached``. An objective exception
    other than :class:`BudgetExhausted` marks the trial failed: objective 0 and rejected.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (got {workers})")
    clock = clock or time.monotonic
    runner: TrialRunner = objective if hasattr(objective, "run") else SerialRunner(objective)  # type: ignore[arg-type]
    steps = schedule.for_workers(workers)
    trials: list[dict] = []
    current: dict | None = None
    current_value = 0.0
    best: dict | None = None
    seen: dict[str, dict] = {}
    finished: dict[int, dict] = {rec["iteration"]: dict(rec) for rec in pending}

    def propose_step(step: int) -> dict[int, tuple[dict, float]]:
        """Every trial of ``step``: its point (around the current point at the step's start) and its acceptance
        draw, taken whatever the outcome so that draws never depend on results."""
        first, last = (step - 1) * workers + 1, min(step * workers, schedule.iterations)
        out: dict[int, tuple[dict, float]] = {}
        taken = set(seen)
        for i in range(first, last + 1):
            rng = trial_rng(seed, i)
            if current is None and i == 1:
                point = space.start_point()
            else:  # a point already scored teaches nothing new: redraw a few times before settling for a repeat
                base = current if current is not None else space.start_point()
                for _ in range(MAX_REDRAWS):
                    point = neighbour(space, base, rng, steps.step_scale(step))
                    if _key(point) not in taken:
                        break
            taken.add(_key(point))
            out[i] = point, float(rng.random())
        return out

    def settle(rec: dict, u: float | None) -> None:
        nonlocal current, current_value, best
        if u is not None:  # a new trial: Metropolis against the current point as the trials before it left it
            if rec["status"] == "failed":
                p, accepted = 0.0, False
            elif current is None:
                p, accepted = 1.0, True
            else:
                p = acceptance_probability(current_value, rec["objective"], rec["temperature"])
                accepted = u < p
            rec["acceptance_probability"], rec["accepted"] = p, accepted
        if rec["accepted"] or current is None:
            current, current_value = rec["params"], rec["objective"]
        if rec["status"] != "failed" and (best is None or rec["val_accuracy"] > best["val_accuracy"]):
            best = rec
        rec["best_so_far"] = None if best is None else best["val_accuracy"]
        seen.setdefault(_key(rec["params"]), rec)
        trials.append(rec)
        finished.pop(rec["iteration"], None)
        if u is not None and on_trial is not None:
            on_trial(trials)

    def settle_ready(todo: list[int], settled: int, proposals: dict[int, tuple[dict, float]],
                     first_of: dict[str, int], temperature: float) -> int:
        """Settle, in trial order from ``todo[settled]`` on, every trial whose outcome (or the outcome it
        repeats) is known; returns how many of ``todo`` are settled."""
        while settled < len(todo):
            i = todo[settled]
            point, u = proposals[i]
            k = _key(point)
            if first_of.get(k) == i:
                if i not in finished:
                    break
                rec = dict(finished[i])
            else:
                earlier = seen[k]  # settled before this step, or earlier in it (trial order)
                rec = {"iteration": i, "temperature": temperature, "params": dict(point),
                       "status": "cached" if earlier["status"] != "failed" else "failed",
                       "val_accuracy": earlier["val_accuracy"], "objective": earlier["objective"],
                       "reason": earlier["reason"], "info": {"cached_from": earlier["iteration"]}, "seconds": 0.0}
            settle(rec, u)
            settled += 1
        return settled

    stopped = "completed"
    for step in range(1, steps.iterations + 1):
        temperature = steps.temperature(step)
        proposals = propose_step(step)  # before any trial of the step settles: all are around the same point
        todo = []
        for i, (point, _) in proposals.items():
            if i > len(history):
                todo.append(i)
                continue
            rec = history[i - 1]
            if rec.get("iteration") != i:
                raise ResumeMismatch(f"recorded trial {i} is numbered {rec.get('iteration')}; the state file is "
                                     "damaged")
            if _key(point) != _key(rec["params"]):
                raise ResumeMismatch(
                    f"recorded trial {i} has {_key(rec['params'])} but seed {seed} proposes {_key(point)} (with "
                    f"{workers} trial(s) per step): the search space, seed, workers or base config changed since the "
                    "run started; start a fresh run instead")
            settle(dict(rec), None)
        if not todo:
            continue
        if deadline is not None and clock() >= deadline:
            stopped = "time budget"
            break

        # Score what is new: not a repeat of a settled point or of an earlier point in this step, not finished.
        first_of: dict[str, int] = {}
        requests = []
        for i in todo:
            k = _key(proposals[i][0])
            if i in finished and _key(finished[i]["params"]) != k:
                finished.pop(i)  # not what this run proposes: score it again
            if k in seen or k in first_of:
                continue
            first_of[k] = i
            if i not in finished:
                budget = None if deadline is None else max(deadline - clock(), 0.0)
                requests.append(TrialRequest(i, dict(proposals[i][0]), temperature, budget))
        settled = settle_ready(todo, 0, proposals, first_of, temperature)
        out_of_budget = False
        for req, result, seconds in runner.run(requests) if requests else ():
            if isinstance(result, BudgetExhausted):
                out_of_budget = True
                continue
            finished[req.iteration] = _scored(req, result, seconds)
            settled = settle_ready(todo, settled, proposals, first_of, temperature)
            if on_pending is not None:
                on_pending(trials, sorted(finished.values(), key=lambda r: r["iteration"]))
        if out_of_budget or settled < len(todo):
            stopped = "time budget"
            break
    complete = len(trials) >= schedule.iterations
    return SearchResult(trials, best, complete, "completed" if complete else stopped)
