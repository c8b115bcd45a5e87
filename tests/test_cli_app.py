"""``liqlab app``: the Voila command line it builds, and a clean stop on SIGTERM."""

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

from liqlab.cli.app import (ALLOWED_MESSAGES, CDN_STYLESHEETS, REFILL_DELAY_S, TEMPLATE_NAME, TORNADO_SETTINGS,
                            voila_command, write_voila_config, write_voila_template)
from tests.voila_server import ROOT, free_port, wait_ready


def test_voila_command_is_hardened_and_reads_the_compression_config(tmp_path):
    config = write_voila_config(tmp_path / "config")
    cmd = voila_command(tmp_path / "apps", port=9999, config_dir=config)
    assert cmd[1:3] == ["-m", "liqlab.serve.voila_server"]
    for flag in ("--strip_sources=True", "--show_tracebacks=False", "--VoilaExecutor.show_tracebacks=False",
                 "--preheat_kernel=True", "--VoilaExecutor.skip_cells_with_tag=selftest", "--Voila.ip=127.0.0.1"):
        assert flag in cmd
    allowed = next(a for a in cmd if a.startswith("--MappingKernelManager.allowed_message_types="))
    assert "execute_request" not in allowed and all(m in allowed for m in ALLOWED_MESSAGES)
    assert f"--Voila.config_file_paths={[str(config)]!r}" in cmd
    saved = json.loads((config / "voila.json").read_text())
    assert saved == {"Voila": {"tornado_settings": TORNADO_SETTINGS}}
    assert saved["Voila"]["tornado_settings"]["websocket_compression_options"] == {"compression_level": 1}
    # a taken kernel is replaced after the visitor's page had time to load; Voila's own template by default
    assert f"--VoilaKernelManager.fill_delay={REFILL_DELAY_S}" in cmd
    assert not any(a.startswith("--template") for a in cmd)
    cmd = voila_command(tmp_path / "apps", port=9999, refill_delay=2.5, template=TEMPLATE_NAME)
    assert "--VoilaKernelManager.fill_delay=2.5" in cmd and f"--template={TEMPLATE_NAME}" in cmd


def test_voila_finds_the_template_and_it_imports_the_bundle_early(tmp_path):
    from jupyter_core.paths import jupyter_path
    from voila.paths import collect_template_paths

    root = write_voila_template(tmp_path / "jupyter", "/liqlab/static/plotly-widget-9.9.9.js")
    paths = collect_template_paths(["voila", "nbconvert"], TEMPLATE_NAME, prune=True,
                                   root_dirs=[str(root), *jupyter_path()])
    own = root / "voila" / "templates" / TEMPLATE_NAME
    assert paths[0] == str(own)
    # it builds on Voila's lab template (whose page it extends)
    assert any(p.endswith(os.path.join("voila", "templates", "lab")) for p in paths)
    page = (own / "index.html.j2").read_text()
    assert page.startswith("{%- extends 'lab/index.html.j2' -%}")
    assert ('<script type="module" async src="{{ resources.base_url }}liqlab/static/plotly-widget-9.9.9.js"></script>'
            in page)
    assert json.loads((own / "conf.json").read_text()) == {"base_template": "lab"}
    # Voila's lab template still links these (else there is nothing to drop); ours drops each
    lab = next(Path(p) for p in paths if p.endswith(os.path.join("voila", "templates", "lab")))
    for link in CDN_STYLESHEETS:
        assert link in (lab / "index.html.j2").read_text()
        assert f"replace('{link}', '')" in page


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_voila_too(tmp_path):
    """A service manager stops ``liqlab app`` with SIGTERM; Voila must not live on as an orphan."""
    port = free_port()
    log = open(tmp_path / "app.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "liqlab.cli", "app", "--port", str(port)], cwd=ROOT,
                            env=dict(os.environ, LIQLAB_EXPORT_DIR=str(tmp_path)), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
        _check_bundle_route(port)
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


def _check_bundle_route(port: int) -> None:
    """The server publishes both parts of the served plotly bundle, gzip-compressed and cacheable, byte
    for byte."""
    import urllib.request

    from liqlab.serve.served_bundle import bundle_route, deferred_bundle, deferred_route, served_bundle

    assert deferred_route() is not None, "the bundle is split where tree-sitter is installed"
    for route, data in ((bundle_route(), served_bundle()), (deferred_route(), deferred_bundle())):
        _check_served(f"http://127.0.0.1:{port}/{route}", data)
    # other paths below the route are not served
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/liqlab/static/plotly.min.js", timeout=30)


def _check_served(url: str, data: bytes) -> None:
    import gzip
    import urllib.request

    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body, headers = resp.read(), resp.headers
    assert headers["Content-Encoding"] == "gzip"
    assert "max-age=31536000" in headers["Cache-Control"]
    assert gzip.decompress(body) == data
    assert len(body) < len(data) / 2
    # compressed once: the same bytes again, and a browser holding them gets "not modified"
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.read() == body
    again = urllib.request.Request(req.full_url, headers={"Accept-Encoding": "gzip", "If-None-Match": headers["Etag"]})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(again, timeout=30)
    assert not_modified.value.code == 304
    # without gzip the same bytes, plain
    with urllib.request.urlopen(req.full_url, timeout=30) as resp:
        assert resp.headers["Content-Encoding"] is None and resp.read() == data


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
