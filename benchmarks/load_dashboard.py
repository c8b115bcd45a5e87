"""Concurrent viewers of the explorer app: N headless Chromium tabs against a local ``liqlab app``.

Starts ``liqlab app`` on 127.0.0.1 (the explorer's pool preheated with ``--pool`` kernels, the other
apps with none), waits until the pool is filled and the machine has settled, then lets ``--viewers``
visitors arrive, each in its own browser context (nothing cached): all at once, or evenly spread over
``--arrive-over`` seconds, as a team opening a shared link does:

* **first render**: page request until the heatmap image is drawn;
* **changes**: each viewer then changes the leverage preset and the window (``--changes`` times in
  all), timing each from the input to the live figure holding the new heatmap, all viewers working
  at the same time, each waiting ``--think`` seconds before each change (0: back to back);
* then every viewer closes its tab, and the benchmark counts the kernels left (beyond the preheated
  pool) until ``--leave-wait`` seconds have passed.

It prints one JSON line: viewers, failed (renders that never came, or a busy page), p50/p95 of the
first renders and of the changes (seconds), the most memory the server and its kernels held (RSS,
MB) and what they held at the end, the kernels left after the viewers left, the CPU-seconds the
server with its kernels and the browsers used during the visits (the viewers' browsers share this
machine's CPUs with the server), and the run's settings.
Everything is bounded: at most 40 viewers, every wait has a deadline, the server is stopped at the end.

    PYTHONPATH=. .venv/bin/python benchmarks/load_dashboard.py --viewers 20 --pool 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # protocol_viewer.py beside this file
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APP = "02_explorer.ipynb"
MAX_VIEWERS = 40

# the heatmap image is in the layout and drawn, and the coarse hover heatmap holds data
RENDERED = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el.data || !el.layout) return false;
  const src = ((el.layout.images || [])[0] || {}).source || '';
  const img = el.querySelector('g.imagelayer image');
  return src.startsWith('data:image/png;base64,') && !!img && img.getAttribute('href') === src
         && el.data.some(t => t.type === 'heatmap' && t.z && t.z.length);
}"""
# the live heatmap: its image and coarse data
FINGERPRINT = """() => {
  const el = document.querySelector('.js-plotly-plot');
  if (!el || !el.data || !el.layout) return null;
  const hm = el.data.find(t => t.type === 'heatmap');
  let s = 0, n = 0;
  if (hm && hm.z) for (const row of hm.z) for (const v of row) if (v !== null && v === v) { s += v; n++; }
  const src = ((el.layout.images || [])[0] || {}).source || '';
  return [n, s, src.length, src.slice(-48)].join('|');
}"""
CHANGES = [  # (what, action): alternate so that every change moves the figure
    ("preset degen", lambda page: page.select_option(".liqlab-preset select", label="degen")),
    ("window 3d", lambda page: page.click(".liqlab-window button:has-text('3d')")),
    ("preset balanced", lambda page: page.select_option(".liqlab-preset select", label="balanced")),
    ("window 30d", lambda page: page.click(".liqlab-window button:has-text('30d')")),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int):
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def kernels(pid: int) -> int:
    import psutil

    n = 0
    for p in tree(pid)[1:]:
        try:
            n += "ipykernel_launcher" in " ".join(p.cmdline())
        except psutil.Error:
            pass
    return n


def alive(base: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/kernels/{kernel_id}", timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code != 404


def rss_mb(pid: int) -> float:
    import psutil

    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


class Sampler(threading.Thread):
    """Every half second: the largest RSS of the server's process tree, and the CPU time of each
    process of the server's tree (server and kernels) and of this process's other children (the
    browser), last seen alive (processes that end keep their last sample)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.cpu: dict[str, dict[int, float]] = {"server": {}, "browser": {}}

    def sample(self) -> None:
        import psutil

        server = tree(self.pid)
        ids = {p.pid for p in server}
        browser = [p for p in psutil.Process().children(recursive=True) if p.pid not in ids]
        for kind, procs in (("server", server), ("browser", browser)):
            for p in procs:
                try:
                    t = p.cpu_times()
                    self.cpu[kind][p.pid] = t.user + t.system
                except psutil.Error:
                    pass

    def cpu_s(self, kind: str) -> float:
        return sum(self.cpu[kind].values())

    def run(self):
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))
            self.sample()


def wait_settled(pid: int, log: Path, pool: int, deadline: float) -> None:
    """Until the explorer's pool reports filled, then until the server and kernels use < 10 % CPU for 3 s."""
    import psutil

    while pool and time.monotonic() < deadline:
        if re.search(rf"Kernel pool of \S*{re.escape(APP)} is filled with {pool} kernel", log.read_text(errors="replace")):
            break
        time.sleep(1)
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        procs = tree(pid)
        for p in procs:
            try:
                p.cpu_percent(None)
            except psutil.Error:
                pass
        time.sleep(1)
        used = 0.0
        for p in procs:
            try:
                used += p.cpu_percent(None)
            except psutil.Error:
                pass
        quiet = quiet + 1 if used < 10 else 0


def most_at_once(results: list[dict]) -> int:
    """The most viewers present at one time (from arrival to their last change)."""
    events = sorted([(r["arrived"], 1) for r in results if "arrived" in r]
                    + [(r.get("left", float("inf")), -1) for r in results if "arrived" in r],
                    key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))], 2)


async def viewer(browser, base: str, changes: int, timeout_s: float, out: dict, *, delay: float = 0.0,
                 think: float = 0.0) -> None:
    await asyncio.sleep(delay)  # this viewer's arrival
    out["arrived"] = time.monotonic()
    context = await browser.new_context(viewport={"width": 1400, "height": 1100})
    page = await context.new_page()
    out["page"], out["context"] = page, context
    t0 = time.monotonic()
    try:
        resp = await page.goto(f"{base}/voila/render/{APP}", timeout=timeout_s * 1000)
        if resp is None or resp.status != 200:
            out["error"] = f"HTTP {resp.status if resp else '?'}"
            return
        await page.wait_for_function(RENDERED, timeout=timeout_s * 1000, polling=100)
        out["first_render_s"] = time.monotonic() - t0
        out["kernel_id"] = await page.evaluate(
            "JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
        for i in range(changes):
            await asyncio.sleep(think)  # a person reads the figure before the next change
            what, action = CHANGES[i % len(CHANGES)]
            before = await page.evaluate(FINGERPRINT)
            t = time.monotonic()
            await action(page)
            await page.wait_for_function(f"prev => ({FINGERPRINT})() !== prev", arg=before,
                                         timeout=timeout_s * 1000, polling=100)
            await page.wait_for_function(RENDERED, timeout=timeout_s * 1000, polling=100)
            out.setdefault("changes_s", []).append(time.monotonic() - t)
        out["left"] = time.monotonic()
    except Exception as exc:  # a render or a change that never came
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        try:
            status = await page.inner_text(".liqlab-status", timeout=2000)
            out["error"] += f" (status line: {status[:160]})"
        except Exception:
            pass


async def run_viewers(base: str, n: int, changes: int, timeout_s: float, shots: Path | None,
                      arrive_over: float = 0.0, think: float = 0.0) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        results = [{} for _ in range(n)]
        # one browser context per viewer: tabs of one context would share its six connections to the server
        # arrivals evenly spread over arrive_over seconds (0: all at once)
        await asyncio.gather(*(viewer(browser, base, changes, timeout_s, r, delay=arrive_over * i / n, think=think)
                               for i, r in enumerate(results)))
        if shots is not None and results and "page" in results[-1]:
            shots.mkdir(parents=True, exist_ok=True)
            try:
                await results[-1]["page"].screenshot(path=str(shots / f"load_{n}_viewers_last.png"))
            except Exception:
                pass
        for r in results:  # the viewers leave: their tabs close (the page asks the server to free its kernel)
            page, context = r.pop("page", None), r.pop("context", None)
            try:
                if page is not None:
                    await page.close(run_before_unload=True)
                if context is not None:
                    await context.close()
            except Exception:
                pass
        await asyncio.sleep(1.0)  # let the last requests out before the browser goes
        await browser.close()
    return results


async def run_protocol_viewers(base: str, n: int, changes: int, timeout_s: float, arrive_over: float = 0.0,
                               think: float = 0.0) -> list[dict]:
    from protocol_viewer import protocol_viewer

    results = [{} for _ in range(n)]
    await asyncio.gather(*(protocol_viewer(base, APP, changes, timeout_s, r, delay=arrive_over * i / n, think=think)
                           for i, r in enumerate(results)))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=5, help=f"concurrent viewers (1..{MAX_VIEWERS}, default 5)")
    parser.add_argument("--pool", type=int, default=None, help="preheated explorer kernels (default: --viewers)")
    parser.add_argument("--max-kernels", type=int, default=None,
                        help="the server's kernel cap (default: pool + viewers + 2)")
    parser.add_argument("--changes", type=int, default=2, help="widget changes per viewer (default 2)")
    parser.add_argument("--arrive-over", type=float, default=0.0,
                        help="spread the viewers' arrivals evenly over this many seconds (default 0: all at once)")
    parser.add_argument("--client", choices=("browser", "protocol"), default="browser",
                        help="viewers as headless Chromium tabs (default), or as scripted clients that speak the "
                             "page's protocol without drawing (protocol_viewer.py): the server and kernels alone")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds each viewer looks at the figure before each change (default 0)")
    parser.add_argument("--refill-delay", type=float, default=None, help="liqlab app --refill-delay (default: its own)")
    parser.add_argument("--refill-quiet-wait", type=float, default=None,
                        help="liqlab app --refill-quiet-wait (default: its own)")
    parser.add_argument("--cull-idle", type=int, default=30, help="liqlab app --cull-idle (default 30)")
    parser.add_argument("--leave-wait", type=float, default=None,
                        help="seconds to wait for the viewers' kernels to go (default: cull-idle + 20)")
    parser.add_argument("--fill-timeout", type=float, default=900.0,
                        help="longest wait for the pool to fill before the viewers come anyway (s, default 900)")
    parser.add_argument("--timeout", type=float, default=180.0, help="longest wait for one render or change (s)")
    parser.add_argument("--screenshots", default="/tmp/serve-shots", help="folder for a screenshot of the last viewer")
    args = parser.parse_args(argv)
    if not 1 <= args.viewers <= MAX_VIEWERS:
        parser.error(f"--viewers must be 1..{MAX_VIEWERS}")
    pool = args.viewers if args.pool is None else args.pool
    cap = args.max_kernels or pool + args.viewers + 2
    leave_wait = args.leave_wait if args.leave_wait is not None else args.cull_idle + 20

    port = free_port()
    log = Path(f"/tmp/liqlab-load-{port}.log")
    cmd = [sys.executable, "-m", "liqlab.cli", "app", "--port", str(port), "--ip", "127.0.0.1",
           "--pool-size", "0", "--pool", f"{APP[:-6]}={pool}", "--max-kernels", str(cap),
           "--cull-idle", str(args.cull_idle)]
    if args.refill_delay is not None:
        cmd += ["--refill-delay", str(args.refill_delay)]
    if args.refill_quiet_wait is not None:
        cmd += ["--refill-quiet-wait", str(args.refill_quiet_wait)]
    env = dict(os.environ, LIQLAB_EXPORT_DIR=f"/tmp/liqlab-load-{port}-exports")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    sampler = Sampler(proc.pid)
    try:
        deadline = time.monotonic() + args.fill_timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        t_fill = time.monotonic()
        wait_settled(proc.pid, log, pool, deadline)
        fill_s = time.monotonic() - t_fill
        pool_ready = kernels(proc.pid)
        idle_rss = rss_mb(proc.pid)
        sampler.sample()
        cpu0 = {k: sampler.cpu_s(k) for k in ("server", "browser")}
        sampler.start()
        shots = Path(args.screenshots) if args.screenshots else None
        t_run = time.monotonic()
        client_cpu0 = time.process_time()
        if args.client == "protocol":
            results = asyncio.run(run_protocol_viewers(base, args.viewers, args.changes, args.timeout,
                                                       args.arrive_over, args.think))
        else:
            results = asyncio.run(run_viewers(base, args.viewers, args.changes, args.timeout, shots,
                                              args.arrive_over, args.think))
        client_cpu = round(time.process_time() - client_cpu0, 1)
        run_s = time.monotonic() - t_run
        cpu_used = {k: round(sampler.cpu_s(k) - cpu0[k], 1) for k in ("server", "browser")}
        # the viewers left: their kernels go (closed tabs at once, dropped ones when culled); the pool refills
        t_leave = time.monotonic()
        ids = [r["kernel_id"] for r in results if "kernel_id" in r]
        left = ids
        while time.monotonic() - t_leave < leave_wait:
            left = [k for k in left if alive(base, k)]
            if not left:
                break
            time.sleep(1)
        gone_s = time.monotonic() - t_leave
        sampler.stop.set()
        first = [r["first_render_s"] for r in results if "first_render_s" in r]
        changes = [c for r in results for c in r.get("changes_s", [])]
        errors = [r["error"] for r in results if "error" in r]
        print(json.dumps({
            "bench": "load_dashboard", "app": APP, "viewers": args.viewers, "failed": len(errors),
            "first_render_p50_s": pct(first, 0.5), "first_render_p95_s": pct(first, 0.95),
            "first_render_max_s": pct(first, 1.0),
            "change_p50_s": pct(changes, 0.5), "change_p95_s": pct(changes, 0.95), "changes": len(changes),
            "rss_idle_mb": round(idle_rss), "rss_peak_mb": round(max(sampler.peak, idle_rss)),
            "rss_after_mb": round(rss_mb(proc.pid)),
            "viewer_kernels_left": len(left), "viewers_gone_after_s": round(gone_s, 1),
            "kernels_after": kernels(proc.pid),
            "arrive_over_s": args.arrive_over, "think_s": args.think, "most_viewers_at_once": most_at_once(results),
            "pool": pool, "pool_ready_at_start": pool_ready, "max_kernels": cap, "cull_idle_s": args.cull_idle, "pool_fill_s": round(fill_s, 1),
            "run_s": round(run_s, 1), "cpus": os.cpu_count(),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "client": args.client, "cpu_s_server_and_kernels": cpu_used["server"],
            "cpu_s_browsers": cpu_used["browser"], "cpu_s_this_script": client_cpu,
            "errors": errors[:5],
        }), flush=True)
        return 0 if not errors else 1
    finally:
        sampler.stop.set()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    sys.exit(main())
