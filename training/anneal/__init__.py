"""Simulated-annealing hyper-parameter search over training runs, scored on PublicTest (validation) accuracy.

Trial 1 trains the space's start point; every later trial trains a neighbour of the current point (one or more
parameters moved by a step that shrinks as the temperature falls) and the Metropolis rule decides whether the
search moves there: a better point is always accepted, a worse one with probability ``exp(-delta / T)`` where
``delta`` is the accuracy lost (as a fraction: T=0.02 accepts a 2-point drop with probability 1/e). The
temperature falls geometrically from ``--t-start`` to ``--t-end``.

Parallel (``--workers N``): each temperature step proposes N neighbours of the current point, trial ``i``
from its own RNG seeded ``(seed, i)``; the N trials train at once (local processes, one GPU each with
``--devices``, or tasks on a Dask cluster with ``--cluster``); then the Metropolis rule settles them one by one
in trial order, each against the current point as the trials before it in the step left it. The result never
depends on which worker finishes first, and N = 1 is the classic one-trial-per-temperature chain. The
temperature falls per step, over ``ceil(iterations / N)`` steps.

Reproducible and resumable by construction: the proposals depend only on the seed, N and the recorded
outcomes. ``trials.json`` is rewritten atomically after every settled trial, and after every trial that
finished while an earlier one of its step was still training ("pending"); rerunning the same command (or
``--resume``) replays the recorded trials without training them, checks that each one is what the seed
proposes, reuses pending results and continues, so a search killed in trial 5 ends exactly as an uninterrupted
one. A trial killed mid-way resumes from its last epoch.

PrivateTest is never used: the trials get a copy of the data with an empty test split. Example::

    python -m training.anneal --model ff --data ../shared/data/fer2013 --iterations 8 --subset 4000 --seed 1

Modules: ``core`` (schedule, Metropolis, the batched loop), ``trials`` (one trial: config, data, fit),
``executors`` (in-process, local processes, Dask), ``run_folder`` (trials.json/csv, best.json, plots,
tensorboard) and ``cli`` (the command line).
"""

from training.anneal.cli import (
    DEFAULTS,
    SEARCH_OPTIONS,
    build_parser,
    find_unfinished,
    load_base_config,
    main,
    make_settings,
    new_run_dir,
    parse_duration,
    space_from_settings,
)
from training.anneal.core import (
    MAX_REDRAWS,
    BudgetExhausted,
    Objective,
    Outcome,
    ResumeMismatch,
    Schedule,
    SearchResult,
    SerialRunner,
    TrialRequest,
    acceptance_probability,
    anneal,
    trial_rng,
)
from training.anneal.run_folder import FORMAT, RunFolder, csv_text, markdown_table, read_state
from training.anneal.trials import (
    SUBSET_SHUFFLE_SEED,
    TrialSpec,
    full_config,
    run_trial,
    search_data,
    training_objective,
    trial_config,
)

__all__ = [
    "DEFAULTS", "FORMAT", "MAX_REDRAWS", "SEARCH_OPTIONS", "SUBSET_SHUFFLE_SEED", "BudgetExhausted", "Objective",
    "Outcome", "ResumeMismatch", "RunFolder", "Schedule", "SearchResult", "SerialRunner", "TrialRequest",
    "TrialSpec", "acceptance_probability", "anneal", "build_parser", "csv_text", "find_unfinished", "full_config",
    "load_base_config", "main", "make_settings", "markdown_table", "new_run_dir", "parse_duration", "read_state",
    "run_trial", "search_data", "space_from_settings", "trial_config", "trial_rng", "training_objective",
]
