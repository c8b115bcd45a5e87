"""Dashboard latency and weight, measured in headless Chromium against ``liqlab app``.

Measures, on the explorer app (30-day window of 5-minute candles: 8,640 candles, about 400
price rows):

* ``widget_to_figure_ms``: a widget change (leverage preset, then window) until plotly has
  redrawn the figure with new heatmap data (``plotly_afterplot`` after the data changed), median;
* ``first_render_s``: page request until the heatmap is drawn, with a preheated kernel;
* ``page_weight_mb``: bytes received over HTTP and the kernel websocket for one page view.

Run ``python benchmarks/bench_dashboard.py``; it prints one JSON object per line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APP = "02_explorer.ipynb"
RENDERED = """() => { const el = document.querySelector('.js-plotly-plot');
  return !!(el && el.data && el.data.some(t => t.type === 'heatmap' && t.z && t.z.length)
            && el.querySelector('.heatmaplayer image')); }"""
# records when the heatmap data last changed and when plotly finished drawing after that
INSTRUMENT = """() => {
  const el = document.querySelector('.js-plotly-plot');
  const fp = () => { const hm = el.data.find(t => t.type === 'heatmap'); let s = 0;
    for (let i = 0; i < hm.z.length; i += 7) { const v = hm.z[i]; if (v === v && v !== null) s += v; }
    return hm.z.length + ':' + s; };
  window.__fp = fp; window.__last = fp(); window.__done = null;
  el.on('plotly_afterplot', () => { const f = fp();
    if (f !== window.__last) { window.__last = f; window.__done = performance.now(); } });
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "liqlab.cli", "app", "--port", str(port)], cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    return proc


def _wait_pool(log: Path, n: int, timeout: float = 180.0) -> None:
    """Wait until the log says every notebook's kernel pool is filled, then let them settle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("is filled with") >= n:
            break
        time.sleep(1)
    time.sleep(20)  # the pooled kernels execute their notebooks after starting


def _timed_change(page, action) -> float:
    page.evaluate("() => { window.__done = null; window.__t0 = performance.now(); }")
    action()
    page.wait_for_function("() => window.__done !== null", timeout=30_000)
    return page.evaluate("() => window.__done - window.__t0")


def run(repeats: int = 6) -> list[dict]:
    """Start the app, measure in Chromium, stop; return one record per metric."""
    from playwright.sync_api import sync_playwright

    from liqlab.apps import PUBLISHED, app_url

    port = _free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"liqlab-bench-voila-{port}.log"
    proc = _start_server(port, log)
    base = f"http://127.0.0.1:{port}"
    out: list[dict] = []
    try:
        _wait_pool(log, len(PUBLISHED))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1250})
            received = {"http": 0, "ws": 0}

            def on_response(resp):
                try:
                    received["http"] += len(resp.body())
                except Exception:  # redirects and aborted requests have no body
                    pass

            def on_ws(ws):
                ws.on("framereceived", lambda payload: received.__setitem__(
                    "ws", received["ws"] + len(payload if isinstance(payload, (bytes, str)) else b"")))

            page.on("response", on_response)
            page.on("websocket", on_ws)
            t0 = time.perf_counter()
            page.goto(app_url(base, APP), timeout=150_000)
            page.wait_for_function(RENDERED, timeout=120_000)
            first = time.perf_counter() - t0
            page.wait_for_timeout(1500)
            weight = (received["http"] + received["ws"]) / 1e6
            out.append({"metric": "first_render_s", "value": round(first, 3), "target": 3.0, "app": APP})
            out.append({"metric": "page_weight_mb", "value": round(weight, 2), "target": 8.0, "app": APP,
                        "http_mb": round(received["http"] / 1e6, 2), "ws_mb": round(received["ws"] / 1e6, 2)})

            n_candles = page.evaluate("() => document.querySelector('.liqlab-status').innerText")
            page.evaluate(INSTRUMENT)
            presets = ["degen", "balanced", "retail", "conservative"]
            lev = []
            for i in range(repeats):
                name = presets[i % len(presets)]
                lev.append(_timed_change(page, lambda: page.select_option(".liqlab-preset select", label=name)))
            out.append({"metric": "widget_to_figure_ms", "change": "leverage preset", "median": round(
                statistics.median(lev), 1), "runs": [round(x) for x in lev], "target": 250.0, "status": n_candles})
            win = []
            for i in range(repeats):
                label = "7d" if i % 2 == 0 else "30d"
                win.append(_timed_change(page, lambda: page.click(f".liqlab-window button:has-text('{label}')")))
            out.append({"metric": "widget_to_figure_ms", "change": "window 7d/30d", "median": round(
                statistics.median(win), 1), "runs": [round(x) for x in win], "target": 250.0})
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return out


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
