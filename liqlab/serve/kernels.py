"""The kernel manager ``liqlab app`` gives Voila: a cap on kernels, refills one at a time, prompt culling.

:class:`LiqlabKernelManager` is jupyter_server's ``AsyncMappingKernelManager`` with its documented
extension points filled in (Voila takes it through ``--VoilaConfiguration.multi_kernel_manager_class``
and adds its preheated pools on top):

* **A cap** (``max_kernels``, preheated ones included). A visitor who would need a new kernel beyond it
  gets HTTP 503 at once (the template's ``503.html``: "busy, try again"), and no kernel is started.
  A pool refill that finds the server full is dropped: the next visitor it would have served gets
  the busy page, and pools are topped up at the next cull pass once kernels are free again.
* **Refills one at a time, when the machine is quiet, at a lower CPU priority.** A preheated kernel
  costs a few CPU-seconds (a Python process importing the scientific stack, then the whole notebook).
  Replacements are started one after the other (the next when the last one's notebook has finished
  running), each once at least half the CPUs are idle (or after ``refill_quiet_wait`` seconds;
  ``refill_spare_wait`` while a spare preheated kernel remains, since no visitor waits for that
  refill yet), so that visitors' pages and widget changes go first; every kernel runs at ``kernel_niceness`` above
  the server, so the server itself stays responsive under load.
* **Kernels a visitor left are culled promptly.** Idle culling (``cull_idle_timeout``) shuts kernels
  with no browser connected; a kernel a visitor has just taken from a pool may have been idle for
  long, so it is spared after it left the pool: ``cull_idle_timeout``, or ``connect_timeout`` until
  the page's browser first connects (a page loading on a busy machine, or fetched by a script).
"""

from __future__ import annotations

import asyncio
import os
import time

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Integer

#: Environment variable Voila sets for kernels it starts for a pool ("True") or for a visitor ("False").
PREHEAT_ENV = "VOILA_PREHEAT"

BUSY_MESSAGE = "every session of this app server is in use; try again in a minute"


def cpu_idle_total() -> tuple[int, int] | None:
    """(idle, total) CPU time since boot, all CPUs, from ``/proc/stat``; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


class LiqlabKernelManager(AsyncMappingKernelManager):
    """See the module notes."""

    max_kernels = Integer(
        12, config=True, help="Most kernels running at once, preheated ones included (0: no cap).",
    )
    kernel_niceness = Integer(
        5, config=True, help="CPU niceness added to each kernel process (0: as the server).",
    )
    refill_settle = Float(
        1.5, config=True,
        help="Seconds a preheated kernel must stay idle (its notebook run) before the next refill starts.",
    )
    refill_quiet_wait = Float(
        20.0, config=True,
        help="Longest wait, before a pool refill starts, for at least half the CPUs to be idle (0: no wait).",
    )
    refill_spare_wait = Float(
        120.0, config=True,
        help="Longest wait for a quiet machine before a pool refill while the pools still hold a spare preheated "
             "kernel (nobody waits for that refill yet); refill_quiet_wait applies once none is spare.",
    )
    connect_timeout = Float(
        120.0, config=True,
        help="Seconds a kernel taken for a page is kept, idle, before the page's browser first connects to it.",
    )
    refill_timeout = Float(
        90.0, config=True, help="Longest wait for a preheated kernel's notebook run before the next refill starts.",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._liqlab_starting = 0
        self._liqlab_refill_lock: asyncio.Lock | None = None
        self._liqlab_left_pool: dict[str, float] = {}
        self._liqlab_tasks: set[asyncio.Task] = set()
        self._liqlab_connected: set[str] = set()
        self._liqlab_preheated: set[str] = set()

    # -- the cap -----------------------------------------------------------------------------
    def kernels_in_use(self) -> int:
        """Kernels running or starting."""
        return len(self.list_kernel_ids()) + self._liqlab_starting

    def is_full(self) -> bool:
        """Whether starting one more kernel would pass :attr:`max_kernels`."""
        return self.max_kernels > 0 and self.kernels_in_use() >= self.max_kernels

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        """Start a kernel unless the server is full (HTTP 503); pool refills one at a time."""
        if kernel_id is not None and kernel_id in self:  # a restart of a running kernel
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        env = kwargs.get("env") or {}
        if env.get(PREHEAT_ENV) != "True":
            return await self._start_counted(kernel_id, path, **kwargs)
        if self._liqlab_refill_lock is None:
            self._liqlab_refill_lock = asyncio.Lock()
        lock = self._liqlab_refill_lock
        await lock.acquire()
        try:
            await self._wait_quiet()
            kid = await self._start_counted(kernel_id, path, **kwargs)
            self._liqlab_preheated.add(kid)
        except BaseException:
            lock.release()
            raise
        # Voila runs the notebook once this returns: the next refill waits for that run to finish
        task = asyncio.ensure_future(self._wait_settled(kid))
        task.add_done_callback(lambda _: lock.release())
        self._liqlab_tasks.add(task)
        task.add_done_callback(self._liqlab_tasks.discard)
        return kid

    async def _start_counted(self, kernel_id, path, **kwargs):
        if self.is_full():
            self.log.warning("Kernel cap of %d reached: %s", self.max_kernels, BUSY_MESSAGE)
            raise web.HTTPError(503, BUSY_MESSAGE, reason="Busy")
        self._liqlab_starting += 1  # counted before the first await: no two starts pass the cap
        try:
            kid = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._liqlab_starting -= 1
        self._lower_priority(kid)
        return kid

    def _lower_priority(self, kernel_id: str) -> None:
        if self.kernel_niceness <= 0:
            return
        pid = getattr(getattr(self.get_kernel(kernel_id), "provisioner", None), "pid", None)
        if pid:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0)
                                                         + self.kernel_niceness))
            except (OSError, AttributeError):  # gone already, or not a POSIX system
                pass

    def spare_preheated(self) -> int:
        """Preheated kernels still waiting for a visitor: started for a pool, never connected to,
        never handed out (a kernel Voila hands out is asked about by the idle culler)."""
        return sum(1 for k in self._liqlab_preheated
                   if k in self and k not in self._liqlab_connected and k not in self._liqlab_left_pool)

    async def _wait_quiet(self) -> None:
        """Wait until at least half the CPUs were idle over the last second: visitors' own work
        (their pages, their kernels' updates) goes first. The wait is bounded by
        :attr:`refill_spare_wait` while a spare preheated kernel remains (the next visitor is served
        without this refill) once visitors are being served, else by :attr:`refill_quiet_wait`."""
        start = time.monotonic()

        if self.refill_quiet_wait <= 0:
            return

        def deadline() -> float:
            # patient only once visitors are being served (a first fill of the pools goes at once)
            serving = bool(self._liqlab_connected or self._liqlab_left_pool)
            wait = self.refill_spare_wait if serving and self.spare_preheated() else self.refill_quiet_wait
            return start + max(wait, self.refill_quiet_wait)

        before = cpu_idle_total()
        while before is not None and time.monotonic() < deadline():
            await asyncio.sleep(1.0)
            after = cpu_idle_total()
            if after is None:
                return
            idle, total = after[0] - before[0], after[1] - before[1]
            if total <= 0 or idle / total >= 0.5:
                return
            before = after

    async def _wait_settled(self, kernel_id: str) -> None:
        """Wait until the kernel, once out of its ``starting`` state, has been idle for
        :attr:`refill_settle` seconds (its notebook run over), or :attr:`refill_timeout` seconds."""
        deadline = time.monotonic() + self.refill_timeout
        idle_since = None
        while time.monotonic() < deadline and kernel_id in self:
            state = self.kernel_model(kernel_id).get("execution_state")
            now = time.monotonic()
            if state == "idle":
                idle_since = idle_since or now
                if now - idle_since >= self.refill_settle:
                    return
            else:
                idle_since = None
            await asyncio.sleep(0.2)

    # -- culling -----------------------------------------------------------------------------
    async def cull_kernels(self):
        """Cull idle kernels, then top preheated pools up when there is room (a refill dropped at
        the cap is not retried by Voila)."""
        await super().cull_kernels()
        fill = getattr(self, "fill_if_needed", None)  # Voila's pools, when preheating
        notebooks = getattr(self, "notebook_data", None) or {}
        if fill is not None and not self.is_full():
            for name in list(notebooks):
                fill(delay=0, notebook_name=name)

    async def cull_kernel_if_idle(self, kernel_id):
        """Idle culling, sparing a kernel for ``cull_idle_timeout`` after it left a pool.

        Voila asks only about kernels outside its pools: the first call for a kernel is the first
        cull pass after a visitor took it (or after it was started for one).
        """
        first = self._liqlab_left_pool.setdefault(kernel_id, time.monotonic())
        grace = self.cull_idle_timeout
        if kernel_id not in self._liqlab_connected:  # a page still loading, on a busy machine
            grace = max(grace, self.connect_timeout)
        if time.monotonic() - first < grace:
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    def notify_connect(self, kernel_id):
        """Note that a browser connected to the kernel (then idle culling applies as it is)."""
        self._liqlab_connected.add(kernel_id)
        return super().notify_connect(kernel_id)

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        self._liqlab_left_pool.pop(kernel_id, None)
        self._liqlab_preheated.discard(kernel_id)
        self._liqlab_connected.discard(kernel_id)
        return await super().shutdown_kernel(kernel_id, now=now, restart=restart)
