"""Executors: run scan tasks serially, on a local process pool, or on a Dask cluster.

All three take the same module-level task function and the same picklable tasks, and return the
results in task order; a task that could not be run comes back as the exception instead of a
result, so one lost task never loses the scan. Every executor runs the same function on the same
inputs, so the numbers are identical bit for bit whichever one ran them.

* :class:`SerialExecutor`: a loop in this process (debugging, tiny scans).
* :class:`ProcessExecutor`: ``concurrent.futures.ProcessPoolExecutor`` (spawned workers, which
  inherit the environment, ``PYTHONPATH`` included). When a worker dies the pool breaks; the
  tasks it took with it are resubmitted once on a fresh pool.
* :class:`DaskExecutor`: a ``distributed`` :class:`~distributed.Client`, on a new
  ``LocalCluster`` (processes, one thread each) or on a running scheduler's address, so the same
  scan runs unchanged on any Dask deployment. Tasks are submitted with ``retries``; a worker that
  dies mid-task has its task rescheduled by the scheduler.

numba kernels are ``cache=True``: each worker loads them from the on-disk cache the first time it
runs a task and keeps them for the next ones (workers are reused across tasks and scans).
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol, Sequence

ProgressFn = Callable[[int, int], None]
EXECUTORS = ("serial", "processes", "dask")


class ExecutorError(ValueError):
    """An executor that cannot be made (unknown name, Dask missing, unreachable scheduler)."""


class WorkerLostError(RuntimeError):
    """A task whose worker process died twice."""


class Executor(Protocol):
    """Runs ``fn(task)`` for every task; results in task order, failures as exceptions."""

    name: str
    workers: int

    def run(self, fn: Callable, tasks: Sequence[Any],
            progress: ProgressFn | None = None) -> list[Any]:  # pragma: no cover
        ...

    def close(self) -> None:  # pragma: no cover
        ...


def default_workers() -> int:
    """Worker count when none is given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return default_workers()
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ExecutorError(f"workers must be a whole number of at least 1, got {workers!r}")
    return workers


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(_Closing):
    """A plain loop in this process."""

    name = "serial"
    workers = 1

    def run(self, fn: Callable, tasks: Sequence[Any], progress: ProgressFn | None = None) -> list[Any]:
        out = []
        for i, task in enumerate(tasks):
            try:
                out.append(fn(task))
            except Exception as exc:  # noqa: BLE001 - handed back in the task's place
                out.append(exc)
            if progress:
                progress(i + 1, len(tasks))
        return out

    def close(self) -> None:
        pass


class ProcessExecutor(_Closing):
    """A local pool of spawned worker processes, kept for reuse until :meth:`close`.

    Parameters
    ----------
    workers
        Processes (default: the usable CPUs).
    resubmits
        Times a task is resubmitted after its worker died (``BrokenProcessPool``).
    """

    name = "processes"

    def __init__(self, workers: int | None = None, resubmits: int = 1) -> None:
        self.workers = _check_workers(workers)
        self.resubmits = int(resubmits)
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def run(self, fn: Callable, tasks: Sequence[Any], progress: ProgressFn | None = None) -> list[Any]:
        results: list[Any] = [None] * len(tasks)
        attempts = [0] * len(tasks)
        todo = list(range(len(tasks)))
        done_count = 0
        pool = self._pool or self._fresh_pool()
        while todo:
            futures = {pool.submit(fn, tasks[i]): i for i in todo}
            todo = []
            pending = set(futures)
            broken = False
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if attempts[i] < self.resubmits:
                            attempts[i] += 1
                            todo.append(i)
                            continue
                        results[i] = WorkerLostError("the worker process died while running this task, twice")
                    except Exception as exc:  # noqa: BLE001
                        results[i] = exc
                    done_count += 1
                    if progress:
                        progress(done_count, len(tasks))
            if broken:
                pool = self._fresh_pool()
            todo.sort()
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


#: Dask configuration of the local cluster liqlab starts (documented Dask options; a cluster the
#: user brings keeps its own, and ``docs/scaling.md`` recommends the same there).
#:
#: * Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``. Setting any glibc malloc
#:   threshold also freezes glibc's mmap threshold at 128 kB, so every large numpy array of a scan
#:   task is mmap'ed, page-faulted in and unmapped again: a task ran ~35 % slower (10.0 s against
#:   13.6 s for 50 symbols on one worker). ``None`` unsets the variable, leaving glibc's defaults,
#:   as in a process-pool worker.
#: * The statistical profiler samples the running task's stack every 10 ms, and the event-loop
#:   tick, system monitor and memory monitor wake every 20, 500 and 100 ms: an idle two-worker
#:   cluster took 9 % of a core. With the intervals below it takes 2 %; scan tasks are coarse
#:   (~0.2 s), so nothing is lost.
LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


class DaskExecutor(_Closing):
    """Tasks on a Dask ``distributed`` cluster.

    Parameters
    ----------
    address
        A running scheduler (``tcp://host:8786``); None starts a ``LocalCluster`` of ``workers``
        processes with one thread each, listening on 127.0.0.1 only.
    workers
        Workers of the local cluster (default: the usable CPUs); ignored with ``address``.
    retries
        Times the scheduler re-runs a task that raised (a worker that dies mid-task has its tasks
        rescheduled besides).
    client
        An existing :class:`distributed.Client` to use (not closed by :meth:`close`).
    """

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, retries: int = 2,
                 client: Any = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("the Dask executor needs dask.distributed: pip install 'liqlab[dask]'") from None
        self.retries = int(retries)
        self._own = client is None
        self._cluster = None
        if client is not None:
            self.client = client
        elif address:
            try:
                self.client = Client(address, timeout="15s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        else:
            import dask

            n = _check_workers(workers)
            with dask.config.set(LOCAL_WORKER_CONFIG):
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                             dashboard_address="127.0.0.1:0", silence_logs=40)
            self.client = Client(self._cluster)
        self.workers = len(self.client.scheduler_info(n_workers=-1).get("workers", {})) or (workers or 0)

    @property
    def dashboard_link(self) -> str | None:
        """Address of the Dask dashboard (served only where ``bokeh`` is installed)."""
        try:
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001
            return None

    def run(self, fn: Callable, tasks: Sequence[Any], progress: ProgressFn | None = None) -> list[Any]:
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        futures = [self.client.submit(fn, task, key=f"liqlab-scan-{token}-{i}", retries=self.retries, pure=False)
                   for i, task in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        # results travel in batches with the completion notices: one round trip per batch, not per task
        done = as_completed(futures, with_results=True, raise_errors=False)
        for n, (fut, result) in enumerate(done, start=1):
            if fut.status != "finished":  # an error (or a lost worker past its retries): ask for the exception
                try:
                    result = fut.exception() or RuntimeError(f"task {fut.status}")
                except Exception as exc:  # noqa: BLE001 - e.g. CancelledError
                    result = exc
            results[index[fut.key]] = result
            if progress:
                progress(n, len(tasks))
        return results

    def close(self) -> None:
        if self._own:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()


def make_executor(executor: str | Executor | None = "processes", *, workers: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """An executor from its name (``serial``, ``processes``, ``dask``) or an executor object as is.

    ``scheduler`` (a Dask scheduler address) implies ``dask``.
    """
    if executor is None:
        executor = "dask" if scheduler else "processes"
    if not isinstance(executor, str):
        if not callable(getattr(executor, "run", None)):
            raise ExecutorError(f"executor must be one of {', '.join(EXECUTORS)} or an executor object")
        return executor
    if scheduler and executor != "dask":
        raise ExecutorError(f"a scheduler address needs the dask executor, not {executor!r}")
    if executor == "serial":
        return SerialExecutor()
    if executor == "processes":
        return ProcessExecutor(workers)
    if executor == "dask":
        return DaskExecutor(scheduler, workers)
    raise ExecutorError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
