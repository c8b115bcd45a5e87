"""Pool refills of ``LiqlabKernelManager``: patient while a spare preheated kernel remains."""

from __future__ import annotations

import asyncio
import types

import pytest

from liqlab.serve import kernels
from liqlab.serve.kernels import LiqlabKernelManager


class Manager(LiqlabKernelManager):
    """The manager with a hand-made set of running kernels (no processes)."""

    running: set = set()

    def __contains__(self, kernel_id) -> bool:
        return kernel_id in self.running


@pytest.fixture
def busy_clock(monkeypatch):
    """A machine whose CPUs are never idle, and a clock that ``_wait_quiet``'s sleeps advance."""
    clock = [0.0]

    async def sleep(seconds):
        clock[0] += seconds

    ticks = iter(range(100, 10**9, 100))
    monkeypatch.setattr(kernels, "cpu_idle_total", lambda: (0, next(ticks)))
    monkeypatch.setattr(kernels, "asyncio", types.SimpleNamespace(sleep=sleep, Lock=asyncio.Lock))
    monkeypatch.setattr(kernels, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    return clock


def waited(manager: LiqlabKernelManager, clock: list) -> float:
    clock[0] = 0.0
    asyncio.run(manager._wait_quiet())
    return clock[0]


def test_refills_wait_longer_only_while_serving_with_a_spare_kernel(busy_clock):
    m = Manager(refill_quiet_wait=20.0, refill_spare_wait=120.0)
    m.running = {"a", "b"}
    m._liqlab_preheated.update({"a", "b"})
    assert m.spare_preheated() == 2
    assert waited(m, busy_clock) == 20.0  # the first fill of the pools: nobody served yet
    m._liqlab_connected.add("a")  # a visitor took kernel a; b is still spare
    assert m.spare_preheated() == 1
    assert waited(m, busy_clock) == 120.0
    m._liqlab_left_pool["b"] = 0.0  # b handed out too: the next visitor needs this refill
    assert m.spare_preheated() == 0
    assert waited(m, busy_clock) == 20.0
    m.refill_quiet_wait = 0.0  # 0: no wait at all
    assert waited(m, busy_clock) == 0.0


def test_a_quiet_machine_refills_after_one_look(busy_clock, monkeypatch):
    ticks = iter(range(100, 10**9, 100))
    monkeypatch.setattr(kernels, "cpu_idle_total", lambda: (next(ticks), next(ticks)))  # every CPU idle
    m = Manager(refill_quiet_wait=20.0, refill_spare_wait=120.0)
    m.running = {"a", "b"}
    m._liqlab_preheated.update({"a", "b"})
    m._liqlab_connected.add("a")
    assert waited(m, busy_clock) == 1.0  # one second of CPU idle time read, then the refill starts
