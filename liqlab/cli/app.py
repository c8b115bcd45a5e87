"""``liqlab app``: serve the published notebooks (:mod:`liqlab.serve.published`) with Voila, hardened.

Visitors see the rendered widgets only: no source, no tracebacks, no code execution (the kernel
websocket forwards widget messages only), kernels of closed tabs culled when idle, a timeout per
cell, and preheated kernels so the first page renders quickly (a taken one is replaced after
:data:`REFILL_DELAY_S`, once the visitor's page has loaded). The pages use a Voila template that
starts plotly.js from their head (:func:`write_voila_template`). Cells tagged ``selftest`` run in
the test suite and are skipped here.

Publishing to a team: keep the server on 127.0.0.1 and put an authenticating reverse proxy in
front of it (for example an OAuth proxy or JupyterHub's ``voila`` service); Voila itself has no
user accounts. ``--token`` adds Jupyter's token check as a minimal gate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from liqlab.serve.published import PUBLISHED, published_paths
from liqlab.serve.served_bundle import bundle_route, served_files_cached

#: Environment variable holding the served plotly bundle's route for the kernels.
BUNDLE_ENV = "LIQLAB_PLOTLY_BUNDLE"

#: Kernel messages a visitor's browser may send: widget traffic and kernel info, nothing that runs code.
ALLOWED_MESSAGES = ("comm_open", "comm_msg", "comm_close", "comm_info_request", "kernel_info_request")

#: JupyterLab extensions the apps do not use; Voila would load them into every page (the pygments
#: one styles code cells, which the apps never show).
UNUSED_LAB_EXTENSIONS = ("jupyterlab-plotly", "jupyterlab_pygments")


#: Tornado settings for Voila: permessage-deflate on the kernel websocket (level 1: most of the gain
#: for little CPU), which carries the widget state and every figure update. HTTP responses are
#: gzip-compressed by :mod:`liqlab.serve.voila_server` (Voila applies these settings too late for that).
TORNADO_SETTINGS = {"websocket_compression_options": {"compression_level": 1}}

#: Seconds Voila waits before replacing a preheated kernel a visitor took. Starting the replacement
#: (a Python process importing the scientific stack, then running the whole notebook) takes a few
#: CPU-seconds; started at once (Voila's default waits 1 s), it competes with the visitor's page
#: for the machine while that page loads its scripts and draws.
REFILL_DELAY_S = 8.0

#: Name of the Voila template written by :func:`write_voila_template`.
TEMPLATE_NAME = "liqlab"

#: Stylesheets Voila's lab template links from a public CDN (Font Awesome 5). The apps' icons come
#: from the widget manager's own copy of the font, served by the app; these links only cost the page
#: a render-blocking request to a third party (which may hang where the CDN is unreachable).
CDN_STYLESHEETS = (
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/all.min.css"'
    ' type="text/css" />',
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/v4-shims.min.css"'
    ' type="text/css" />',
)

# Voila's lab template without its CDN stylesheets, plus one line in <head>: fetch plotly.js from the
# start and evaluate it as soon as it arrives (``async``: while the page waits for Voila's own
# scripts, not after the document is parsed), before Voila's app starts at the page's load event and
# connects to the kernel. The figure widgets import the same URL, so the browser's module map hands
# them the module already evaluated.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block notebook_css -%}
{{ super()__DROP_CDN__ }}
{%- endblock notebook_css -%}
{%- block html_head_js -%}
{{ super() }}
<script type="module" async src="{{ resources.base_url }}__BUNDLE_ROUTE__"></script>
{%- endblock html_head_js -%}
"""


def write_voila_config(folder: Path) -> Path:
    """Write ``voila.json`` with :data:`TORNADO_SETTINGS` into ``folder``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "voila.json").write_text(json.dumps({"Voila": {"tornado_settings": TORNADO_SETTINGS}}))
    return folder


def write_voila_template(root: Path, route: str) -> Path:
    """Write the :data:`TEMPLATE_NAME` Voila template below ``root`` (a Jupyter data folder); return ``root``.

    The template is Voila's ``lab`` template without :data:`CDN_STYLESHEETS`, with the plotly bundle
    at ``route`` (relative to the base URL) loaded by an async module script in the page's head.
    Voila finds it when ``root`` is on ``JUPYTER_PATH``.
    """
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab"}))
    drop = "".join(f" | replace('{link}', '')" for link in CDN_STYLESHEETS)  # (no quote ' in them)
    page = _TEMPLATE.replace("__BUNDLE_ROUTE__", route.lstrip("/")).replace("__DROP_CDN__", drop)
    (folder / "index.html.j2").write_text(page)
    return root


def voila_command(folder: Path, *, port: int, ip: str = "127.0.0.1", pool_size: int = 1,
                  refill_delay: float = REFILL_DELAY_S, cell_timeout: int = 120, cull_idle: int = 900,
                  token: str | None = None, config_dir: Path | None = None,
                  template: str | None = None) -> list[str]:
    """The ``voila`` command line serving ``folder`` in tree mode with hardened settings.

    Parameters
    ----------
    folder
        Folder holding only the published notebooks.
    port, ip
        Where to listen (keep ``127.0.0.1`` behind a proxy).
    pool_size
        Preheated kernels kept ready per notebook.
    refill_delay
        Seconds before a kernel a visitor took is replaced (see :data:`REFILL_DELAY_S`).
    cell_timeout
        Seconds a cell may run while the page renders.
    cull_idle
        Seconds after which an idle kernel (a closed tab) is shut down.
    token
        Jupyter token required in the URL (None: no token).
    config_dir
        Folder holding a ``voila.json`` (see :func:`write_voila_config`): compression settings.
    template
        Voila template name (None: Voila's default, ``lab``); see :func:`write_voila_template`.
    """
    allowed = "[" + ",".join(f"'{m}'" for m in ALLOWED_MESSAGES) + "]"
    cmd = [
        # Voila with gzip and plotly.js served as a cacheable file (liqlab.serve.voila_server)
        sys.executable, "-m", "liqlab.serve.voila_server", str(folder),
        "--no-browser", f"--Voila.ip={ip}", f"--port={port}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--VoilaExecutor.show_tracebacks=False",
        f"--VoilaExecutor.timeout={int(cell_timeout)}",
        "--VoilaExecutor.skip_cells_with_tag=selftest",
        "--preheat_kernel=True",
        f"--VoilaConfiguration.default_pool_size={int(pool_size)}",
        f"--VoilaKernelManager.fill_delay={float(refill_delay)}",
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle)}",
        "--MappingKernelManager.cull_interval=60",
        f"--MappingKernelManager.allowed_message_types={allowed}",
        "--theme=dark",
        # The apps draw with FigureWidget, which brings its own plotly.js; the lab extension's
        # renderer for static figures would load a second copy (about 5 MB) that nothing uses.
        f"--VoilaConfiguration.extension_denylist={list(UNUSED_LAB_EXTENSIONS)!r}",
    ]
    if template is not None:
        cmd.append(f"--template={template}")
    cmd.append(f"--token={token}" if token else "--token=")
    if config_dir is not None:
        cmd.append(f"--Voila.config_file_paths={[str(config_dir)]!r}")
    return cmd


def stage_notebooks(dest: Path, source: Path | None = None) -> Path:
    """Copy the published notebooks (only those) into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in published_paths(source):
        shutil.copy2(path, dest / path.name)
    return dest


def cmd_app(args: argparse.Namespace) -> int:
    """Run Voila until interrupted."""
    if not served_files_cached():
        print("liqlab app: preparing plotly.js for serving (a few seconds, once per plotly release)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="liqlab-app-") as tmp:
        folder = stage_notebooks(Path(tmp) / "apps", Path(args.notebooks) if args.notebooks else None)
        config = write_voila_config(Path(tmp) / "config")
        data = write_voila_template(Path(tmp) / "jupyter", bundle_route())
        cmd = voila_command(folder, port=args.port, ip=args.ip, pool_size=args.pool_size,
                            refill_delay=args.refill_delay, cell_timeout=args.cell_timeout,
                            cull_idle=args.cull_idle, token=args.token, config_dir=config,
                            template=TEMPLATE_NAME)
        env = dict(os.environ)
        # Voila looks for templates on the Jupyter data path
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(data), env.get("JUPYTER_PATH")) if p)
        # exports from the apps land next to where the command was started, not in the temp folder
        env.setdefault("LIQLAB_EXPORT_DIR", str(Path.cwd() / "exports"))
        # the route of the plotly.js the page's head loads
        env[BUNDLE_ENV] = bundle_route()
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
                    "tracebacks, widget messages only, idle kernels culled, preheated kernels.",
    )
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--pool-size", type=_whole(0), default=1, help="preheated kernels per notebook (default 1)")
    p.add_argument("--refill-delay", type=_seconds, default=REFILL_DELAY_S,
                   help=f"seconds before a taken preheated kernel is replaced (default {REFILL_DELAY_S:g})")
    p.add_argument("--cell-timeout", type=_whole(1), default=120, help="seconds per cell while rendering (default 120)")
    p.add_argument("--cull-idle", type=_whole(0), default=900, help="shut idle kernels after this many seconds (default 900)")
    p.add_argument("--token", default=None, help="require this Jupyter token in the URL (default: none)")
    p.add_argument("--notebooks", default=None, help=argparse.SUPPRESS)  # another notebooks folder (tests)
    p.set_defaults(func=cmd_app)
