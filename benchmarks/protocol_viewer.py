"""A scripted viewer of a Voila app that speaks the page's own protocol, without a browser.

What the explorer's page does, message for message, minus drawing: fetch the page (its kernel is
taken from the preheated pool), open the kernel websocket with the v1 subprotocol, ask the widget
manager's control comm for every widget's state (``request_states``: the figure's data arrives in
the reply), then change widgets by sending ``update`` messages to their comms and wait for the
figure's next update message; on leaving, post the page's shutdown request with its ``_xsrf``
token, as a closing tab does.

Used by ``load_dashboard.py --client protocol`` to measure the server and its kernels alone: a
scripted viewer costs a few milliseconds of CPU, where a headless Chromium tab costs seconds that,
on one machine, are taken from the server under test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from typing import Any, Callable

from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
# the versions ipywidgets 8's front end announces (its control comm refuses an open without one)
CONTROL_PROTOCOL = "1.0.0"
WIDGET_PROTOCOL = "2.1.0"
CONFIG_START = '<script id="jupyter-config-data" type="application/json">'
# (widget class, option label), alternating so that every change moves the figure (as the browser viewers)
CHANGES = [("liqlab-preset", "degen"), ("liqlab-window", "3d"), ("liqlab-preset", "balanced"),
           ("liqlab-window", "30d")]


def _pack(obj: Any) -> bytes:
    return json.dumps(obj).encode()


class KernelChannel:
    """Messages to and from one kernel websocket (v1 frames), with a wait for a matching message."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.session = uuid.uuid4().hex

    async def send(self, msg_type: str, content: dict, metadata: dict | None = None, channel: str = "shell") -> None:
        header = {"msg_id": uuid.uuid4().hex, "username": "viewer", "session": self.session,
                  "msg_type": msg_type, "version": "5.3", "date": ""}
        parts = [_pack(header), _pack({}), _pack(metadata or {}), _pack(content)]
        await self.ws.send_bytes(serialize_msg_to_ws_v1(parts, channel))

    async def wait(self, match: Callable[[str, dict], bool], timeout_s: float) -> tuple[dict, list[bytes]]:
        """The next message for which ``match(msg_type, content)`` holds: (content, buffers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message from the kernel")
            frame = await self.ws.receive(timeout=left)
            if frame.type.name != "BINARY":
                if frame.type.name in ("CLOSE", "CLOSED", "ERROR"):
                    raise ConnectionError(f"the kernel websocket closed ({frame.type.name})")
                continue
            _, parts = deserialize_msg_from_ws_v1(frame.data)
            msg_type = json.loads(parts[0])["msg_type"]
            content = json.loads(parts[3])
            if match(msg_type, content):
                return content, parts[4:]


def comm_data(comm_id: str, method: str) -> Callable[[str, dict], bool]:
    """Matches a ``comm_msg`` of ``comm_id`` whose data has ``method``."""
    return lambda t, c: t == "comm_msg" and c.get("comm_id") == comm_id and c.get("data", {}).get("method") == method


def figure_update(comm_id: str) -> Callable[[str, dict], bool]:
    """Matches the figure's custom ``update`` message (new traces or layout)."""
    def match(t: str, c: dict) -> bool:
        data = c.get("data", {})
        return (t == "comm_msg" and c.get("comm_id") == comm_id and data.get("method") == "custom"
                and data.get("content", {}).get("type") == "update")
    return match


def widgets_by_class(states: dict) -> dict[str, tuple[str, dict]]:
    """``{liqlab class: (model id, state)}`` of the widgets carrying a ``liqlab-*`` class."""
    out = {}
    for model_id, entry in states.items():
        state = entry.get("state", entry)
        for cls in state.get("_dom_classes", ()):
            if cls.startswith("liqlab-"):
                out[cls] = (model_id, state)
    return out


async def protocol_viewer(base: str, app: str, changes: int, timeout_s: float, out: dict, *,
                          delay: float = 0.0, think: float = 0.0) -> None:
    """One viewer: first render, ``changes`` widget changes, then leave. Fills ``out`` like the
    browser viewer (``first_render_s``, ``changes_s``, ``kernel_id`` or ``error``)."""
    import aiohttp
    from yarl import URL

    await asyncio.sleep(delay)
    out["arrived"] = time.monotonic()
    token = secrets.token_hex(16)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    jar.update_cookies({"_xsrf": token}, URL(base))
    t0 = time.monotonic()
    try:
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
            async with http.get(f"{base}/voila/render/{app}") as resp:
                html = await resp.text()
                if resp.status != 200:
                    out["error"] = f"HTTP {resp.status}"
                    return
            kernel_id = json.loads(html.split(CONFIG_START, 1)[1].split("</script>", 1)[0])["kernelId"]
            out["kernel_id"] = kernel_id
            url = f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
            try:
                async with http.ws_connect(url, protocols=(V1_PROTOCOL,), max_msg_size=0) as ws:
                    await run_session(KernelChannel(ws), changes, timeout_s, think, t0, out)
            finally:  # the tab closes: the page asks the server to shut its kernel down
                async with http.post(f"{base}/voila/api/shutdown/{kernel_id}", data={"_xsrf": token}) as resp:
                    out["shutdown_status"] = resp.status
    except Exception as exc:  # a render or a change that never came
        out.setdefault("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")


async def run_session(kernel: KernelChannel, changes: int, timeout_s: float, think: float, t0: float,
                      out: dict) -> None:
    """The widget manager's start (all states), then the changes, each timed to the figure's update."""
    await kernel.send("kernel_info_request", {})
    control = uuid.uuid4().hex
    await kernel.send("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
                      {"version": CONTROL_PROTOCOL})
    await kernel.send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
    content, _ = await kernel.wait(comm_data(control, "update_states"), timeout_s)
    states = content["data"]["states"]
    figures = [m for m, s in states.items() if "plot_layout" in s.get("state", s)]
    if not figures:
        raise RuntimeError("no figure among the page's widgets")
    out["first_render_s"] = time.monotonic() - t0
    widgets = widgets_by_class(states)
    for i in range(changes):
        await asyncio.sleep(think)
        cls, label = CHANGES[i % len(CHANGES)]
        model_id, state = widgets[cls]
        index = list(state["_options_labels"]).index(label)
        t = time.monotonic()
        await kernel.send("comm_msg", {"comm_id": model_id, "data": {
            "method": "update", "state": {"index": index}, "buffer_paths": []}}, {"version": WIDGET_PROTOCOL})
        await kernel.wait(figure_update(figures[0]), timeout_s)
        out.setdefault("changes_s", []).append(time.monotonic() - t)
    out["left"] = time.monotonic()
