"""``liqlab app``: serve the published notebooks (:mod:`liqlab.serve.published`) with Voila, hardened.

Visitors see the rendered widgets only: no source, no tracebacks, no code execution (the kernel
websocket takes v1 frames checked before decoding and forwards widget messages only), a cap on
kernels with a "busy" page beyond it, kernels freed when a tab closes and culled soon after a
connection drops, a timeout per cell, and preheated kernels so the first page renders quickly. The
pages use the ``liqlab`` Voila template, which starts plotly.js from their head. Cells tagged
``selftest`` run in the test suite and are skipped here. The configuration itself lives in
:mod:`liqlab.serve.voila_config`.

Publishing to a team: keep the server on 127.0.0.1 and put an authenticating reverse proxy in
front of it (for example an OAuth proxy or JupyterHub's ``voila`` service); Voila itself has no
user accounts. ``--token`` adds Jupyter's token check as a minimal gate.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from liqlab.serve.published import PUBLISHED, published_paths
from liqlab.serve.voila_config import (PLOTLY_URL_ENV, REFILL_DELAY_S, jupyter_path, voila_command,
                                       write_run_folder, write_voila_config)


def stage_notebooks(dest: Path, source: Path | None = None) -> Path:
    """Copy the published notebooks (only those) into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in published_paths(source):
        shutil.copy2(path, dest / path.name)
    return dest


def pool_sizes(specs: list[str], default: int) -> dict[str, int]:
    """Preheated pool size per published notebook from ``NAME=N`` specs (NAME with or without
    ``.ipynb``); notebooks not named get ``default``."""
    sizes = {name: default for name in PUBLISHED}
    for spec in specs:
        name, _, n = spec.partition("=")
        name = name if name.endswith(".ipynb") else name + ".ipynb"
        if name not in sizes:
            raise ValueError(f"--pool: {name!r} is not a published app ({', '.join(PUBLISHED)})")
        sizes[name] = _whole(0)(n)
    return sizes


def cmd_app(args: argparse.Namespace) -> int:
    """Run Voila until interrupted."""
    try:
        pools = pool_sizes(args.pool or [], args.pool_size)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        print(f"liqlab app: {exc}", file=sys.stderr)
        return 2
    if args.max_kernels and sum(pools.values()) >= args.max_kernels:
        print(f"liqlab app: --max-kernels {args.max_kernels} leaves no kernel for visitors beyond the "
              f"{sum(pools.values())} preheated ones; raise it or shrink the pools", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="liqlab-app-") as tmp:
        folder = stage_notebooks(Path(tmp) / "apps", Path(args.notebooks) if args.notebooks else None)
        config = write_voila_config(Path(tmp) / "config", pools, args.pool_size)
        run_root = Path(tmp) / "jupyter"
        url = write_run_folder(run_root, Path(args.plotly_bundle) if args.plotly_bundle else None)
        cmd = voila_command(folder, port=args.port, ip=args.ip, refill_delay=args.refill_delay,
                            cell_timeout=args.cell_timeout, cull_idle=args.cull_idle,
                            max_kernels=args.max_kernels, refill_quiet_wait=args.refill_quiet_wait,
                            connect_timeout=args.connect_timeout,
                            token=args.token, config_dir=config)
        env = dict(os.environ)
        # Voila looks for templates on the Jupyter data path: the run folder, then the packaged template
        env["JUPYTER_PATH"] = jupyter_path(run_root, env.get("JUPYTER_PATH"))
        # exports from the apps land next to where the command was started, not in the temp folder
        env.setdefault("LIQLAB_EXPORT_DIR", str(Path.cwd() / "exports"))
        # the kernels' figures load plotly.js from the server (relative to its base URL)
        if url is not None:
            env[PLOTLY_URL_ENV] = url
        else:
            env.pop(PLOTLY_URL_ENV, None)
            print("liqlab app: no plotly.js bundle in the package (liqlab/apps/static); figures bring their own",
                  file=sys.stderr)
        names = ", ".join(PUBLISHED)
        print(f"liqlab app: serving {names} on http://{args.ip}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
        proc = subprocess.Popen(cmd, env=env)
        # a service manager or `timeout` stops us with SIGTERM: take Voila and its kernels down too
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds, at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _whole(minimum: int):
    """argparse type: a whole number, at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value
    return parse


def register(subparsers) -> None:
    """Add ``liqlab app`` to the command line."""
    p = subparsers.add_parser(
        "app", help="serve the published dashboards with Voila",
        description="Serve the published notebooks (liqlab.serve.published.PUBLISHED) as Voila apps: no source, no "
                    "tracebacks, widget messages only, a cap on kernels, kernels of closed tabs freed, "
                    "preheated kernels.",
    )
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--pool-size", type=_whole(0), default=1, help="preheated kernels per app (default 1)")
    p.add_argument("--pool", action="append", metavar="APP=N",
                   help="preheated kernels for one app, e.g. 02_explorer=8 (repeatable)")
    p.add_argument("--max-kernels", type=_whole(0), default=12,
                   help="most kernels at once, preheated ones included; visitors beyond get a busy page "
                        "(default 12, about 400 MB each; 0: no cap)")
    p.add_argument("--refill-delay", type=_seconds, default=REFILL_DELAY_S,
                   help=f"seconds before a taken preheated kernel is replaced (default {REFILL_DELAY_S:g})")
    p.add_argument("--refill-quiet-wait", type=_seconds, default=20.0,
                   help="longest wait, before a refill starts, for a free CPU (default 20; 0: no wait)")
    p.add_argument("--cell-timeout", type=_whole(1), default=120, help="seconds per cell while rendering (default 120)")
    p.add_argument("--cull-idle", type=_whole(1), default=60,
                   help="shut a kernel no browser is connected to after this many idle seconds (default 60)")
    p.add_argument("--connect-timeout", type=_seconds, default=120.0,
                   help="seconds a kernel taken for a page waits for the page to connect (default 120)")
    p.add_argument("--token", default=None, help="require this Jupyter token in the URL (default: none)")
    p.add_argument("--notebooks", default=None, help=argparse.SUPPRESS)  # another notebooks folder (tests)
    p.add_argument("--plotly-bundle", default=None, help=argparse.SUPPRESS)  # another plotly.js module (tests)
    p.set_defaults(func=cmd_app)
