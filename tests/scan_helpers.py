"""Picklable helpers the scan tests send to worker processes (imported there as ``tests.scan_helpers``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from liqlab.scan import SampleSource


@dataclass(frozen=True)
class CrashOnce:
    """Loads ``stand_in`` for every symbol; the first load of ``"CRASH"`` kills its worker process.

    The marker file records that the crash happened, so the retried task loads normally.
    """

    marker: str
    stand_in: str = "SYN001"

    def load(self, symbol: str, timeframe: str, window: pd.Timedelta):
        if symbol == "CRASH" and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(17)  # the worker dies mid-task, as an out-of-memory kill would
        return SampleSource().load(self.stand_in if symbol == "CRASH" else symbol, timeframe, window)


def liqlab_file() -> str:
    """Where this process imports liqlab from."""
    import liqlab

    return liqlab.__file__


def kernel_loads() -> dict[str, tuple[int, int, int]]:
    """Per numba kernel of the engine in this process: (signatures, loaded from the disk cache, compiled)."""
    from liqlab.core import kernels

    out = {}
    for name, obj in vars(kernels).items():
        stats = getattr(obj, "stats", None)
        if stats is not None and hasattr(obj, "signatures"):
            out[name] = (len(obj.signatures), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
    return out


def worker_environ(name: str) -> str | None:
    """An environment variable of this (worker) process."""
    return os.environ.get(name)


def dask_setting(key: str):
    """A Dask configuration value as this (worker) process sees it."""
    import dask

    return dask.config.get(key)
