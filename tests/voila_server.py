"""Shared helpers for real-browser tests: start ``liqlab app`` (Voila) and headless Debian Chromium.

Plain functions and context managers (not fixtures), so each browser test module can wrap them in
fixtures of the scope it needs without importing another test module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]


def stand_in_bundle(path: Path) -> Path:
    """Write a small ES module in the place of the apps' plotly.js bundle (``export default`` the
    page's ``Plotly``, if any) at ``path``; return ``path``."""
    path.write_text("export default window.Plotly || {};\n")
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"liqlab app exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


class BaseUrl(str):
    """A server's base URL, with the process id of the ``liqlab app`` serving it (``.pid``)."""

    pid: int


def kernel_pids(server_pid: int) -> list[int]:
    """Process ids of the kernels below the ``liqlab app`` process ``server_pid``."""
    import psutil

    out = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()):
                out.append(child.pid)
        except psutil.Error:
            pass
    return out


@contextlib.contextmanager
def serve_apps(log: Path, export_dir: Path, *extra: str) -> Iterator[BaseUrl]:
    """Run ``liqlab app`` on a free port; yield its base URL (a :class:`BaseUrl`); stop its whole
    process group after.

    Parameters
    ----------
    log
        File receiving Voila's output (read it when a test fails).
    export_dir
        ``LIQLAB_EXPORT_DIR`` for the apps.
    *extra
        More ``liqlab app`` arguments.
    """
    port = free_port()
    env = dict(os.environ, LIQLAB_EXPORT_DIR=str(export_dir))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "liqlab.cli", "app", "--port", str(port), *extra],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = BaseUrl(f"http://127.0.0.1:{port}")
    base.pid = proc.pid
    try:
        wait_ready(base + "/", proc)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def chromium_browser():
    """Headless Debian Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
