"""``liqlab app`` under hostile visitors: malformed frames, forbidden messages, closed tabs, too many visitors.

The frame checks run without a server; the rest start ``liqlab app`` (marked ``browser``).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from liqlab.serve.published import app_url
from liqlab.serve.websocket import V1_PROTOCOL, frame_problem
from tests.voila_server import CHROMIUM, chromium_browser, kernel_pids, serve_apps

EXPLORER = "02_explorer.ipynb"
MAP = "03_liquidation_map.ipynb"


def _pack(obj) -> bytes:
    return json.dumps(obj).encode()


def message(msg_type: str, content: dict) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "visitor", "session": uuid.uuid4().hex,
                       "msg_type": msg_type, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "content": content}


def frame(msg_type: str, content: dict, channel: str = "shell", buffers: tuple[bytes, ...] = ()) -> bytes:
    msg = message(msg_type, content)
    parts = [_pack(msg["header"]), _pack(msg["parent_header"]), _pack(msg["metadata"]), _pack(msg["content"]),
             *buffers]
    return serialize_msg_to_ws_v1(parts, channel)


def poll(predicate, timeout: float, every: float = 0.2):
    """Return the first true value of ``predicate()`` within ``timeout`` seconds, else the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# -- frame checks (no server) ------------------------------------------------------------------

def test_well_formed_frames_pass():
    assert frame_problem(frame("comm_msg", {"comm_id": "x", "data": {}})) is None
    assert frame_problem(frame("comm_msg", {"comm_id": "x", "data": {}}, buffers=(b"\0" * 64, b"ab"))) is None


@pytest.mark.parametrize("bad, words", [
    ((2**62).to_bytes(8, "little"), "offsets declared"),
    (b"\x06\0\0\0\0\0\0\0", "offset table of 6 entries"),
    (b"abc", "shorter than the offset count"),
    ('{"header": {}}', "text frame"),
    ((70 + 1).to_bytes(8, "little") + b"\0" * 8 * 80, "offsets declared"),
])
def test_malformed_frames_are_named(bad, words):
    assert words in frame_problem(bad)


def test_offsets_out_of_order_or_past_the_end_are_refused():
    good = bytearray(frame("comm_msg", {"comm_id": "x", "data": {}}))
    past = bytearray(good)
    past[8 * 6:8 * 7] = (len(good) + 10).to_bytes(8, "little")  # the end offset
    assert "past the end" in frame_problem(bytes(past))
    back = bytearray(good)
    back[8 * 3:8 * 4] = (8 * 7).to_bytes(8, "little")  # the header's start, before the channel's end
    assert "decrease" in frame_problem(bytes(back))
    moved = bytearray(good)
    moved[8:16] = (0).to_bytes(8, "little")  # the channel inside the offset table
    assert "right after the offset table" in frame_problem(bytes(moved))


# -- against a running server -------------------------------------------------------------------

def kernel_of(base: str, name: str) -> str:
    """Fetch an app page as a script would (a GET, no browser) and return its kernel's id."""
    with urllib.request.urlopen(app_url(base, name), timeout=120) as resp:
        html = resp.read().decode()
    config = html.split('<script id="jupyter-config-data" type="application/json">')[1].split("</script>")[0]
    return json.loads(config)["kernelId"]


def kernel_alive(base: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/kernels/{kernel_id}", timeout=10) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def answers_http(base: str, within: float = 5.0) -> bool:
    with urllib.request.urlopen(base + "/", timeout=within) as resp:
        return resp.status == 200


def channels_url(base: str, kernel_id: str) -> str:
    return f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"


def replies(ws, until: str, timeout: float = 15.0) -> list[str]:
    """Message types received on ``ws`` (v1 frames) until one of type ``until`` or ``timeout`` seconds."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and until not in got:
        try:
            raw = ws.recv(timeout=1)
        except TimeoutError:
            continue
        n = int.from_bytes(raw[:8], "little")
        offsets = [int.from_bytes(raw[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
        got.append(json.loads(raw[offsets[1]:offsets[2]])["msg_type"])
    return got


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    with serve_apps(root / "voila.log", root / "exports", "--pool-size", "0", "--pool", "02_explorer=1",
                    "--max-kernels", "6") as base:
        yield base


@pytest.mark.browser
def test_legacy_clients_and_huge_offset_counts_are_refused_and_the_server_still_answers(server):
    websockets = pytest.importorskip("websockets")
    import websockets.sync.client as ws_client
    kid = kernel_of(server, EXPLORER)
    # a plain client (no subprotocol: the legacy protocol) is refused before the websocket opens
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with ws_client.connect(channels_url(server, kid), open_timeout=10):
            pass
    assert refused.value.response.status_code == 400
    assert answers_http(server)
    # one 8-byte frame declaring 2^62 offsets: the connection is closed, nothing is decoded
    with ws_client.connect(channels_url(server, kid), subprotocols=[V1_PROTOCOL], open_timeout=10) as ws:
        t0 = time.monotonic()
        ws.send((2**62).to_bytes(8, "little"))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while time.monotonic() - t0 < 10:
                ws.recv(timeout=1)
        assert closed.value.rcvd.code == 1008
    assert answers_http(server, within=2.0)
    # the kernel and the websocket are fine for a well-behaved client
    with ws_client.connect(channels_url(server, kid), subprotocols=[V1_PROTOCOL], open_timeout=10) as ws:
        ws.send(frame("kernel_info_request", {}))
        assert "kernel_info_reply" in replies(ws, "kernel_info_reply")
    assert kernel_alive(server, kid)


@pytest.mark.browser
def test_only_widget_messages_reach_the_kernel(server, tmp_path):
    websockets = pytest.importorskip("websockets")
    import websockets.sync.client as ws_client
    kid = kernel_of(server, EXPLORER)
    marker = tmp_path / "executed.txt"
    code = f"open({str(marker)!r}, 'w').write('x')"
    with ws_client.connect(channels_url(server, kid), subprotocols=[V1_PROTOCOL], open_timeout=10) as ws:
        ws.send(frame("execute_request", {"code": code, "silent": False, "store_history": False,
                                          "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}))
        for channel in ("control", "shell"):
            ws.send(frame("shutdown_request", {"restart": False}, channel=channel))
            ws.send(frame("interrupt_request", {}, channel=channel))
        ws.send(frame("execute_request", {"code": code}, channel="control"))
        ws.send(frame("comm_info_request", {}))  # allowed: proves the channel itself works
        ws.send(frame("kernel_info_request", {}))
        got = replies(ws, "kernel_info_reply")
    assert "comm_info_reply" in got and "kernel_info_reply" in got, got
    assert not {"execute_reply", "execute_input", "shutdown_reply", "interrupt_reply"} & set(got), got
    # the kernel stays alive (asked again, on a new connection) and has executed nothing
    with ws_client.connect(channels_url(server, kid), subprotocols=[V1_PROTOCOL], open_timeout=10) as ws:
        ws.send(frame("kernel_info_request", {}))
        assert "kernel_info_reply" in replies(ws, "kernel_info_reply")
    assert kernel_alive(server, kid)
    assert not marker.exists(), "code sent over the kernel websocket was executed"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Debian chromium not installed at {CHROMIUM}")
def test_closing_a_tab_frees_its_kernel_at_once(server):
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(app_url(server, EXPLORER), timeout=150_000)
        page.wait_for_function("() => { const el = document.querySelector('.js-plotly-plot');"
                               " return !!(el && el.data && el.data.length); }", timeout=120_000)
        kid = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
        assert kernel_alive(server, kid)
        page.close(run_before_unload=True)  # the page's beforeunload asks the server to shut it down
        assert poll(lambda: not kernel_alive(server, kid), timeout=15), "the closed tab's kernel still runs"
        context.close()


@pytest.mark.browser
def test_beyond_the_cap_a_busy_page_and_no_new_kernel_then_room_again(tmp_path):
    """Two kernels at most, no pools: two page fetches take both; the third gets the busy page (503)
    and starts nothing. The two kernels (one whose connection dropped, one never connected to) are
    culled soon, and pages open again."""
    with serve_apps(tmp_path / "voila.log", tmp_path / "exports", "--pool-size", "0", "--max-kernels", "2",
                    "--cull-idle", "3", "--connect-timeout", "3") as base:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            kids = list(pool.map(lambda name: kernel_of(base, name), [MAP, MAP]))
        assert len(set(kids)) == 2 and len(kernel_pids(base.pid)) == 2
        with pytest.raises(urllib.error.HTTPError) as busy:
            urllib.request.urlopen(app_url(base, EXPLORER), timeout=30)
        assert busy.value.code == 503
        assert "Busy, try again" in busy.value.read().decode()
        assert len(kernel_pids(base.pid)) == 2, "a kernel was started beyond the cap"
        # one visitor connects and drops the connection (no tab-close request); the other never connected:
        # both kernels are culled after the idle time, and there is room again
        import websockets.sync.client as ws_client

        with ws_client.connect(channels_url(base, kids[0]), subprotocols=[V1_PROTOCOL], open_timeout=10) as ws:
            ws.send(frame("kernel_info_request", {}))
            assert "kernel_info_reply" in replies(ws, "kernel_info_reply")
        assert poll(lambda: not any(kernel_alive(base, k) for k in kids), timeout=30), "kernels never culled"
        assert poll(lambda: not kernel_pids(base.pid), timeout=15)
        assert kernel_alive(base, kernel_of(base, MAP))


def test_kernel_manager_refuses_a_kernel_beyond_the_cap_with_503():
    import asyncio

    from tornado import web

    from liqlab.serve.kernels import LiqlabKernelManager

    km = LiqlabKernelManager(max_kernels=2, refill_quiet_wait=0)
    km.list_kernel_ids = lambda: ["a", "b"]  # two running
    assert km.is_full()
    for env in ({"VOILA_PREHEAT": "False"}, {"VOILA_PREHEAT": "True"}):  # a visitor's kernel, a pool refill
        with pytest.raises(web.HTTPError) as busy:
            asyncio.run(km.start_kernel(kernel_name="python3", env=env))
        assert busy.value.status_code == 503
    km.list_kernel_ids = lambda: ["a"]
    assert not km.is_full() and km.kernels_in_use() == 1


def _protocol_viewer_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "protocol_viewer.py"
    spec = importlib.util.spec_from_file_location("protocol_viewer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.browser
def test_a_scripted_viewer_gets_the_figure_changes_it_and_frees_its_kernel(server):
    """The load benchmark's scripted viewer speaks the page's protocol through liqlab's websocket
    class: all widget states, two changes each answered by a figure update, shutdown on leaving."""
    import asyncio

    pytest.importorskip("aiohttp")
    viewer = _protocol_viewer_module()
    out: dict = {}
    asyncio.run(viewer.protocol_viewer(server, EXPLORER, 2, 90.0, out))
    assert "error" not in out, out
    assert out["first_render_s"] > 0 and len(out["changes_s"]) == 2
    assert out["shutdown_status"] == 204
    assert poll(lambda: not kernel_alive(server, out["kernel_id"]), timeout=15), "the viewer's kernel still runs"
