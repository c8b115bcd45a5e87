"""``liqlab app``: the Voila command line and template it uses, the bundle it serves, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liqlab.serve.voila_config import (PLOTLY_FILE, REFILL_DELAY_S, TEMPLATE_NAME, TORNADO_SETTINGS, jupyter_path,
                                       plotly_url, template_root, voila_command, write_run_folder, write_voila_config)
from liqlab.serve.websocket import WIDGET_MESSAGES
from tests.voila_server import ROOT, free_port, wait_ready

CDN = "cdn.jsdelivr.net/npm/@fortawesome"


def test_voila_command_is_hardened_through_documented_options(tmp_path):
    config = write_voila_config(tmp_path / "config", {"02_explorer.ipynb": 4}, default_pool=1)
    cmd = voila_command(tmp_path / "apps", port=9999, config_dir=config, max_kernels=7)
    assert cmd[1:3] == ["-m", "voila"]  # stock Voila, no subclass
    for flag in ("--strip_sources=True", "--show_tracebacks=False", "--VoilaExecutor.show_tracebacks=False",
                 "--preheat_kernel=True", "--VoilaExecutor.skip_cells_with_tag=selftest", "--Voila.ip=127.0.0.1",
                 "--Voila.kernel_websocket_connection_class=liqlab.serve.websocket.WidgetOnlyConnection",
                 "--VoilaConfiguration.multi_kernel_manager_class=liqlab.serve.kernels.LiqlabKernelManager",
                 "--LiqlabKernelManager.max_kernels=7", f"--template={TEMPLATE_NAME}"):
        assert flag in cmd
    allowed = next(a for a in cmd if a.startswith("--MappingKernelManager.allowed_message_types="))
    assert "execute_request" not in allowed and all(m in allowed for m in WIDGET_MESSAGES)
    assert f"--Voila.config_file_paths={[str(config)]!r}" in cmd
    saved = json.loads((config / "voila.json").read_text())
    assert saved["Voila"] == {"tornado_settings": TORNADO_SETTINGS}
    assert saved["VoilaKernelManager"]["kernel_pools_config"] == {
        "default": {"pool_size": 1}, "02_explorer.ipynb": {"pool_size": 4}}
    assert TORNADO_SETTINGS["websocket_compression_options"] == {"compression_level": 1}
    assert f"--VoilaKernelManager.fill_delay={REFILL_DELAY_S}" in cmd
    cmd = voila_command(tmp_path / "apps", port=9999, refill_delay=2.5, cull_idle=8)
    assert "--VoilaKernelManager.fill_delay=2.5" in cmd
    assert "--MappingKernelManager.cull_idle_timeout=8" in cmd and "--MappingKernelManager.cull_interval=2" in cmd


def test_template_is_package_data_and_drops_the_cdn_links_by_a_block(tmp_path):
    from voila.paths import collect_template_paths

    bundle = tmp_path / PLOTLY_FILE
    bundle.write_text("export default window.Plotly || {};\n")
    run = tmp_path / "jupyter"
    url = write_run_folder(run, bundle)
    assert url == plotly_url(bundle.read_bytes()) and url.startswith(f"voila/templates/{TEMPLATE_NAME}/static/")
    assert "?v=" in url
    roots = jupyter_path(run).split(os.pathsep)
    paths = collect_template_paths(["voila", "nbconvert"], TEMPLATE_NAME, prune=True, root_dirs=[*roots])
    own = template_root() / "voila" / "templates" / TEMPLATE_NAME
    # the run folder (bundle and head script) first, then the packaged template, which builds on Voila's lab
    assert paths[:2] == [str(run / "voila" / "templates" / TEMPLATE_NAME), str(own)]
    assert json.loads((own / "conf.json").read_text()) == {"base_template": "lab"}
    page = (own / "index.html.j2").read_text()
    assert "{%- extends 'lab/index.html.j2' -%}" in page
    # Voila's lab template links the CDN inside its notebook_css block; ours overrides that block
    # and calls the block it builds on (super.super), with no CDN link and no string replacement
    from voila.paths import collect_template_paths as collect

    lab = next(Path(p) for p in collect(["voila", "nbconvert"], "lab", prune=True) if p.endswith("lab"))
    assert CDN in (lab / "index.html.j2").read_text()
    assert "{%- block notebook_css -%}" in page and "{{ super.super() }}" in page
    assert CDN not in page and "replace(" not in page
    head = (run / "voila" / "templates" / TEMPLATE_NAME / "liqlab_head.html.j2").read_text()
    assert head == f'<script type="module" async src="{{{{ resources.base_url }}}}{url}"></script>\n'
    assert (run / "voila" / "templates" / TEMPLATE_NAME / "static" / PLOTLY_FILE).read_bytes() == bundle.read_bytes()
    assert (own / "503.html").is_file()
    # no bundle: nothing to load, no head script
    assert write_run_folder(tmp_path / "empty", tmp_path / "missing.js") is None


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_voila_too(tmp_path):
    """A service manager stops ``liqlab app`` with SIGTERM; Voila must not live on as an orphan."""
    port = free_port()
    log = open(tmp_path / "app.log", "wb")
    bundle = tmp_path / PLOTLY_FILE
    bundle.write_text("export default window.Plotly || {};\n")
    proc = subprocess.Popen([sys.executable, "-m", "liqlab.cli", "app", "--port", str(port),
                             "--plotly-bundle", str(bundle)], cwd=ROOT,
                            env=dict(os.environ, LIQLAB_EXPORT_DIR=str(tmp_path)), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
        _check_bundle_route(port, bundle)
        os.kill(proc.pid, signal.SIGTERM)  # the parent only, as `kill` or systemd would
        assert proc.wait(timeout=30) == 130
        deadline = time.monotonic() + 30
        while not _refused(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _refused(port), "Voila still listens after liqlab app was stopped"
    finally:
        log.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _check_bundle_route(port: int, bundle: Path) -> None:
    """The server serves the plotly.js bundle at the URL the template names, byte for byte, cacheable."""
    import urllib.request

    url = f"http://127.0.0.1:{port}/{plotly_url(bundle.read_bytes())}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        body, headers = resp.read(), resp.headers
    assert body == bundle.read_bytes()
    assert "javascript" in headers["Content-Type"]
    assert "max-age=" in headers["Cache-Control"] and int(headers["Cache-Control"].split("max-age=")[1]) >= 86400
    assert headers["Etag"]
    again = urllib.request.Request(url, headers={"If-None-Match": headers["Etag"]})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(again, timeout=30)
    assert not_modified.value.code == 304
    # nothing else of the package is served from there
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/templates/{TEMPLATE_NAME}/static/../conf.json",
                               timeout=30)


def test_staged_folder_holds_only_published_notebooks(tmp_path):
    from liqlab.serve.published import PUBLISHED
    from liqlab.cli.app import stage_notebooks

    folder = stage_notebooks(tmp_path / "apps")
    assert sorted(p.name for p in Path(folder).iterdir()) == sorted(PUBLISHED)


@pytest.mark.parametrize("args, message", [
    (["--refill-delay", "-1"], "finite number of seconds >= 0"),
    (["--refill-delay", "nan"], "finite number of seconds >= 0"),
    (["--refill-delay", "soon"], "expected a number of seconds"),
    (["--pool-size", "-2"], "whole number >= 0"),
    (["--cell-timeout", "0"], "whole number >= 1"),
    (["--cull-idle", "1.5"], "expected a whole number"),
    (["--cull-idle", "0"], "whole number >= 1"),
    (["--max-kernels", "-1"], "whole number >= 0"),
])
def test_app_options_refuse_absurd_values(capsys, args, message):
    from liqlab.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["app", *args])
    assert message in capsys.readouterr().err


def test_app_options_parse():
    from liqlab.cli import build_parser

    args = build_parser().parse_args(["app", "--refill-delay", "2.5", "--pool-size", "0"])
    assert args.refill_delay == 2.5 and args.pool_size == 0 and args.cell_timeout == 120


def test_pool_sizes_per_app():
    from liqlab.cli.app import pool_sizes

    sizes = pool_sizes(["02_explorer=8", "05_cascade_lab.ipynb=0"], default=2)
    assert sizes == {"02_explorer.ipynb": 8, "03_liquidation_map.ipynb": 2, "05_cascade_lab.ipynb": 0,
                     "06_market_scan.ipynb": 2}
    with pytest.raises(ValueError, match="not a published app"):
        pool_sizes(["99_nothing=1"], default=1)
