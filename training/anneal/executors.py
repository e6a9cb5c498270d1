"""Where trials run: in this process, in N local worker processes, or on a Dask distributed cluster.

All three hand :func:`training.anneal.trials.run_trial` the same arguments and yield results as they finish;
the search (training.anneal.core) settles them in trial order, so which one finishes first never matters.

Local workers are spawned processes (not forked: a fork of a process that has started torch's thread pools can
hang). Each one is given its device when it starts (``--devices cuda:0,cuda:1``: worker k gets the k-th, round
robin) and ``cores // workers`` torch threads, so two workers on two cores do not fight over them. They ignore
Ctrl-C (the search decides what to do), and on Linux ask the kernel to SIGTERM them if the search process dies,
so even a SIGKILL of the search leaves no orphan training on.

The cluster path uses Dask distributed: the data is scattered to the workers once, each trial is one task.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from training.anneal.core import TrialRequest, TrialResult, call_objective
from training.anneal.trials import TrialSpec, run_trial

if TYPE_CHECKING:
    from training.datasets import FER2013


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total, where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` concurrent trials: ``--threads`` if given, else a fair share."""
    return threads if threads else max(1, cpu_cores() // max(workers, 1))


def worker_devices(device: str, devices: str | None) -> list[str]:
    """The device of each worker slot: the ``--devices`` list, else every CUDA GPU for ``--device auto`` on a
    machine with several, else ``--device`` for all. Each entry is checked here (one-line DeviceError)."""
    from training.device import resolve_device

    if devices:
        names = [d.strip() for d in devices.split(",") if d.strip()]
        if not names:
            raise ValueError(f"--devices {devices!r} names no device (e.g. --devices cuda:0,cuda:1)")
        return [str(resolve_device(d)) for d in names]
    dev = resolve_device(device)
    if device.strip().lower() == "auto" and dev.type == "cuda":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [str(dev)]


# ------------------------------------------------------------------------------- local processes

_WORKER: dict[str, Any] = {}  # this worker process's data, spec and device, set once by _init_worker


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when the search process dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(parent: int, spec: TrialSpec, data: FER2013, slots: Any, devices: list[str], threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the search handles it
    _die_with_parent(parent)
    from tqdm import tqdm

    # tqdm's default lock is a multiprocessing RLock, a named semaphore that a worker killed mid-trial would
    # leave behind (and the resource tracker warn about); a worker only needs a thread lock
    tqdm.set_lock(threading.RLock())
    import torch

    torch.set_num_threads(threads)
    slot = slots.get()
    _WORKER.update(spec=spec, data=data, device=devices[slot % len(devices)])


def _worker_trial(req: TrialRequest) -> TrialResult:
    def objective(r: TrialRequest) -> Any:
        return run_trial(_WORKER["spec"], _WORKER["data"], r, _WORKER["device"])

    return call_objective(objective, req)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """While workers are spawned: Ctrl-C is ignored (and so ignored from birth by the workers, which inherit
    that) and a SIGTERM is only noted, then raised as KeyboardInterrupt once the block is done. An interrupt
    halfway through writing a new worker's start-up data would leave it a torn pipe and a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if got:
        raise KeyboardInterrupt


class ProcessRunner:
    """``workers`` spawned processes on this machine, each with its own device slot and torch threads."""

    def __init__(self, spec: TrialSpec, data: FER2013, workers: int, devices: list[str], threads: int):
        self.workers, self.devices, self.threads = workers, devices, threads
        self._args = (spec, data)
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[Future, TrialRequest] = {}

    def _start(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        self._slots = slots = ctx.SimpleQueue()  # worker k takes slot k, hence its device
        for k in range(self.workers):
            slots.put(k)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(os.getpid(), *self._args, slots, self.devices, self.threads))
        return self._pool

    def run(self, requests: Sequence[TrialRequest]) -> Iterator[TrialResult]:
        pool = self._pool or self._start()
        with _signals_deferred():  # submit() may spawn a worker: a Ctrl-C halfway would leave it a torn pipe
            self._running = futures = {pool.submit(_worker_trial, r): r for r in requests}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: futures[f].iteration):
                req = futures.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): its trials fail, a new pool
                    self.close()       # serves the next step
                    yield req, RuntimeError("the worker process died (killed or out of memory?)"), 0.0

    def close(self) -> None:
        """Stop the workers; trials still running (after an interrupt) are killed at once, and resume from their
        last epoch when the search does."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values())
        if any(not f.done() for f in self._running):
            for p in procs:
                if p.is_alive():
                    p.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self._slots.close()
        self._slots = None

    def describe(self) -> str:
        return f"{self.workers} local worker processes on {', '.join(self.devices)}, {self.threads} thread(s) each"


# ------------------------------------------------------------------------------------- Dask cluster


def _dask_trial(spec: TrialSpec, data: FER2013, req: TrialRequest, device: str, threads: int | None) -> TrialResult:
    """One trial as a Dask task: the device is resolved on the worker (each one may hold a different GPU)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return call_objective(lambda r: run_trial(spec, data, r, device), req)


class DaskRunner:
    """Trials as tasks of an existing Dask distributed scheduler (``dask scheduler`` + ``dask worker``)."""

    def __init__(self, address: str, timeout: float = 20.0):
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--cluster needs Dask distributed: pip install 'emotionlens[cluster]'") from None
        try:
            self.client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"--cluster {address}: cannot reach a Dask scheduler there ({type(e).__name__}); start "
                             "one with 'dask scheduler' and workers with 'dask worker ADDRESS'") from None
        self.address = address
        self._futures: list = []
        self._data = None

    def worker_threads(self) -> int:
        """Trials the cluster can run at once: its workers' threads, summed (waits up to 10 s for a first one)."""
        deadline = time.monotonic() + 10
        while not self.client.nthreads() and time.monotonic() < deadline:
            time.sleep(0.2)
        return sum(self.client.nthreads().values())

    def bind(self, spec: TrialSpec, data: FER2013, device: str, threads: int | None) -> None:
        """Send the data to every worker once; later trials refer to it."""
        self._spec, self._device, self._threads = spec, device, threads
        self._data = self.client.scatter(data, broadcast=True)

    def run(self, requests: Sequence[TrialRequest]) -> Iterator[TrialResult]:
        from distributed import as_completed

        futures = {self.client.submit(_dask_trial, self._spec, self._data, r, self._device, self._threads,
                                      pure=False, key=f"anneal-trial-{r.iteration}-{os.getpid()}-{time.time_ns()}"): r
                   for r in requests}
        self._futures = list(futures)
        for fut in as_completed(futures):
            req = futures[fut]
            try:
                yield fut.result()
            except Exception as e:  # the task itself failed outside call_objective (worker lost, ...)
                yield req, e, 0.0
        self._futures = []

    def close(self) -> None:
        if self._futures:
            self.client.cancel(self._futures)
        self.client.close()

    def describe(self) -> str:
        return f"Dask cluster {self.address} ({self.worker_threads()} worker thread(s)), device {self._device}"
