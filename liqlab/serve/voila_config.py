"""Voila, configured for ``liqlab app``: command line, config file, template and the plotly.js bundle.

Everything goes through Voila's documented configuration:

* the ``liqlab`` template (package data under ``templates/voila/templates/liqlab``, found by Voila
  on ``JUPYTER_PATH``): Voila's ``lab`` template without its CDN stylesheets, starting plotly.js
  from the page's head;
* a run folder (:func:`write_run_folder`), also on ``JUPYTER_PATH``, adding to that template the
  plotly.js bundle in its ``static/`` folder (which Voila serves at
  ``voila/templates/liqlab/static/``) and the head script naming it with a digest of its bytes;
* a ``voila.json`` (:func:`voila_config`) with the settings that are not single values;
* the kernel manager (:mod:`liqlab.serve.kernels`) and the kernel websocket connection class
  (:mod:`liqlab.serve.websocket`), both chosen through Voila's configuration options.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from liqlab.serve.websocket import WIDGET_MESSAGES

#: Name of the Voila template the apps use.
TEMPLATE_NAME = "liqlab"

#: Environment variable telling the kernels where plotly.js is served, relative to the server's base URL.
PLOTLY_URL_ENV = "LIQLAB_PLOTLY_URL"

#: File name of the plotly.js bundle (an ES module whose default export is ``Plotly``).
PLOTLY_FILE = "plotly-liqlab.js"

#: JupyterLab extensions the apps do not use; Voila would load them into every page (the pygments
#: one styles code cells, which the apps never show; plotly's renders static figures the apps never make).
UNUSED_LAB_EXTENSIONS = ("jupyterlab-plotly", "jupyterlab_pygments")

#: Tornado settings for Voila (``Voila.tornado_settings``): permessage-deflate on the kernel websocket
#: (level 1: most of the gain for little CPU), which carries the widget state and every figure update,
#: and a bound on one incoming websocket message. plotly's own figure view reports the browser's
#: computed figure back after each update, whole arrays as JSON: several MB for the explorer, and a
#: report cut off by the bound stalls that figure's later updates (tornado closes the connection).
TORNADO_SETTINGS = {
    "websocket_compression_options": {"compression_level": 1},
    "websocket_max_message_size": 32 * 1024 * 1024,
}

#: Seconds Voila waits before replacing a preheated kernel a visitor took, so that the replacement
#: does not compete with the visitor's page while it loads and draws.
REFILL_DELAY_S = 8.0


def template_root() -> Path:
    """The Jupyter data folder shipped with the package that holds the ``liqlab`` Voila template."""
    return Path(str(resources.files("liqlab.serve") / "templates"))


def plotly_bundle() -> Path:
    """Where the apps' plotly.js bundle ships (it may be missing: the pages then load without it)."""
    return Path(str(resources.files("liqlab.apps") / "static" / PLOTLY_FILE))


def plotly_url(data: bytes) -> str:
    """URL of the bundle ``data`` below the server's base URL: the template's static folder, with a
    digest of the bytes as the ``v`` argument (tornado then lets browsers keep it for good)."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"voila/templates/{TEMPLATE_NAME}/static/{PLOTLY_FILE}?v={digest}"


def write_run_folder(root: Path, bundle: Path | None = None) -> str | None:
    """Write the run-time part of the ``liqlab`` template below ``root`` (a Jupyter data folder).

    Copies ``bundle`` (default :func:`plotly_bundle`) into the template's ``static/`` folder and writes
    ``liqlab_head.html.j2``, the module script the template includes in the page's head.

    Returns
    -------
    str or None
        The bundle's URL relative to the server's base URL (see :func:`plotly_url`); None when there
        is no bundle (nothing is written but the folder).
    """
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    bundle = plotly_bundle() if bundle is None else bundle
    if not bundle.is_file():
        return None
    data = bundle.read_bytes()
    (folder / "static").mkdir(exist_ok=True)
    shutil.copyfile(bundle, folder / "static" / PLOTLY_FILE)
    url = plotly_url(data)
    (folder / "liqlab_head.html.j2").write_text(
        f'<script type="module" async src="{{{{ resources.base_url }}}}{url}"></script>\n')
    return url


def jupyter_path(run_root: Path, existing: str | None = None) -> str:
    """``JUPYTER_PATH`` for the server: the run folder, the packaged template, then ``existing``."""
    return os.pathsep.join(p for p in (str(run_root), str(template_root()), existing) if p)


def voila_config(pools: dict[str, int], default_pool: int) -> dict:
    """The ``voila.json`` settings: tornado settings and the preheated pools per notebook."""
    pools_config = {"default": {"pool_size": int(default_pool)}}
    pools_config.update({name: {"pool_size": int(n)} for name, n in pools.items()})
    return {
        "Voila": {"tornado_settings": TORNADO_SETTINGS},
        "VoilaKernelManager": {"kernel_pools_config": pools_config},
    }


def write_voila_config(folder: Path, pools: dict[str, int] | None = None, default_pool: int = 1) -> Path:
    """Write :func:`voila_config` as ``voila.json`` into ``folder``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "voila.json").write_text(json.dumps(voila_config(pools or {}, default_pool), indent=1))
    return folder


def cull_interval(cull_idle: int) -> int:
    """Seconds between two cull passes for an idle timeout of ``cull_idle`` seconds."""
    return max(1, min(15, cull_idle // 4))


def voila_command(folder: Path, *, port: int, ip: str = "127.0.0.1", refill_delay: float = REFILL_DELAY_S,
                  cell_timeout: int = 120, cull_idle: int = 60, max_kernels: int = 12,
                  refill_quiet_wait: float = 20.0, connect_timeout: float = 120.0,
                  token: str | None = None, config_dir: Path | None = None,
                  template: str | None = TEMPLATE_NAME) -> list[str]:
    """The ``voila`` command line serving ``folder`` in tree mode with hardened settings.

    Parameters
    ----------
    folder
        Folder holding only the published notebooks.
    port, ip
        Where to listen (keep ``127.0.0.1`` behind a proxy).
    refill_delay
        Seconds before a kernel a visitor took is replaced (see :data:`REFILL_DELAY_S`).
    cell_timeout
        Seconds a cell may run while the page renders.
    cull_idle
        Seconds after which a kernel no browser is connected to is shut down.
    max_kernels
        Most kernels at once, preheated ones included; visitors beyond get a "busy" page (503).
    refill_quiet_wait
        Longest wait, before a pool refill starts, for half the CPUs to be idle.
    connect_timeout
        Seconds a kernel taken for a page waits, idle, for the page's browser to connect before it is culled.
    token
        Jupyter token required in the URL (None: no token).
    config_dir
        Folder holding a ``voila.json`` (see :func:`write_voila_config`): pools and tornado settings.
    template
        Voila template name (None: Voila's default, ``lab``).
    """
    allowed = "[" + ",".join(f"'{m}'" for m in WIDGET_MESSAGES) + "]"
    cmd = [
        sys.executable, "-m", "voila", str(folder),
        "--no-browser", f"--Voila.ip={ip}", f"--port={port}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--VoilaExecutor.show_tracebacks=False",
        f"--VoilaExecutor.timeout={int(cell_timeout)}",
        "--VoilaExecutor.skip_cells_with_tag=selftest",
        "--preheat_kernel=True",
        f"--VoilaKernelManager.fill_delay={float(refill_delay)}",
        "--VoilaConfiguration.multi_kernel_manager_class=liqlab.serve.kernels.LiqlabKernelManager",
        f"--LiqlabKernelManager.max_kernels={int(max_kernels)}",
        f"--LiqlabKernelManager.refill_quiet_wait={float(refill_quiet_wait)}",
        f"--LiqlabKernelManager.connect_timeout={float(connect_timeout)}",
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle)}",
        f"--MappingKernelManager.cull_interval={cull_interval(int(cull_idle))}",
        # (Voila gives its kernel manager its own allow-list; the connection class enforces this one)
        f"--MappingKernelManager.allowed_message_types={allowed}",
        "--Voila.kernel_websocket_connection_class=liqlab.serve.websocket.WidgetOnlyConnection",
        "--theme=dark",
        f"--VoilaConfiguration.extension_denylist={list(UNUSED_LAB_EXTENSIONS)!r}",
    ]
    if template is not None:
        cmd.append(f"--template={template}")
    cmd.append(f"--token={token}" if token else "--token=")
    if config_dir is not None:
        cmd.append(f"--Voila.config_file_paths={[str(config_dir)]!r}")
    return cmd
