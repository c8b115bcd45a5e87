"""The kernel websocket as ``liqlab app`` runs it: v1 frames only, checked before decoding; widget messages only.

:class:`WidgetOnlyConnection` is the kernel websocket connection class the app server uses
(``--Voila.kernel_websocket_connection_class``, jupyter_server's documented way for a deployment to
choose how browser websockets are bridged to kernels). Over stock behaviour it:

* refuses, with HTTP 400 before the websocket opens, a client that does not offer the
  ``v1.kernel.websocket.jupyter.org`` subprotocol. With the legacy protocol the server sends binary
  messages in the old layout, and Voila's handler reads their header as a v1 offset table (an
  offset count of about 10^18): the server's only thread loops until memory runs out.
* checks every incoming frame's v1 offset table (:func:`frame_problem`) before anything decodes it,
  and closes the connection on a malformed one: jupyter_server's decoder reads the first 8 bytes as
  the number of offsets and builds that many (2^62 is one 8-byte frame away).
* forwards only the message types in :data:`WIDGET_MESSAGES` on the shell and control channels,
  whatever allow-list the kernel manager carries (Voila sets its own, which lets
  ``shutdown_request`` through): a visitor cannot run code, stop, restart or interrupt a kernel.
"""

from __future__ import annotations

import json

from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web
from traitlets import Integer, List, Unicode

#: The websocket subprotocol the app server accepts (JupyterLab's and Voila's pages offer it).
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"

#: Kernel messages a visitor's browser may send: widget traffic and kernel info, nothing that runs code.
WIDGET_MESSAGES = ("comm_open", "comm_msg", "comm_close", "comm_info_request", "kernel_info_request")

#: Channels those messages travel on.
REQUEST_CHANNELS = ("shell", "control")

#: Parts in a v1 frame's offset table for one message: the channel, header, parent header,
#: metadata and content, then the binary buffers, then the end offset.
MIN_OFFSETS = 6


def frame_problem(frame: bytes | str, max_buffers: int = 64) -> str | None:
    """What is wrong with a v1 kernel websocket frame, or None when it can be decoded safely.

    A v1 frame starts with ``n`` (8 bytes, little endian), then ``n`` offsets (8 bytes each) into
    the frame: the channel name, then the message parts, the last offset being the end. Checked:
    a binary frame, ``n`` within ``MIN_OFFSETS .. MIN_OFFSETS + max_buffers``, the table inside the
    frame, offsets from the end of the table, never decreasing, none past the frame's end, and a
    channel name in ASCII.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        return "a text frame (the v1 protocol sends binary frames)"
    frame = bytes(frame)
    if len(frame) < 8:
        return f"{len(frame)} bytes, shorter than the offset count"
    n = int.from_bytes(frame[:8], "little")
    if not MIN_OFFSETS <= n <= MIN_OFFSETS + max_buffers:
        return f"{n} offsets declared (expected {MIN_OFFSETS} to {MIN_OFFSETS + max_buffers})"
    table_end = 8 * (n + 1)
    if table_end > len(frame):
        return f"an offset table of {n} entries in a {len(frame)}-byte frame"
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
    if offsets[0] != table_end:
        return "the channel does not start right after the offset table"
    if any(b < a for a, b in zip(offsets, offsets[1:])):
        return "offsets decrease"
    if offsets[-1] > len(frame):
        return "an offset points past the end of the frame"
    if not frame[offsets[0]:offsets[1]].isascii():
        return "a channel name that is not ASCII"
    return None


class WidgetOnlyConnection(ZMQChannelsWebsocketConnection):
    """Kernel websocket connection for public apps: see the module notes."""

    allowed_messages = List(
        Unicode(), default_value=list(WIDGET_MESSAGES), config=True,
        help="Message types a browser may send to its kernel (widget traffic by default).",
    )
    max_buffers = Integer(
        64, config=True, help="Most binary buffers one incoming message may carry.",
    )

    async def prepare(self):
        """Refuse a client that does not offer the v1 subprotocol, before the websocket opens."""
        offered = self.websocket_handler.request.headers.get("Sec-WebSocket-Protocol", "")
        if V1_PROTOCOL not in (p.strip() for p in offered.split(",")):
            raise web.HTTPError(400, f"the kernel websocket needs the {V1_PROTOCOL} subprotocol")
        await super().prepare()

    def handle_incoming_message(self, incoming_msg) -> None:
        """Check the frame, then forward it only if it is a widget message on shell or control."""
        if self.subprotocol != V1_PROTOCOL:  # refused in prepare(); never decode anything else
            self._refuse("a connection without the v1 subprotocol")
            return
        problem = frame_problem(incoming_msg, self.max_buffers)
        if problem is not None:
            self._refuse(f"a malformed frame: {problem}")
            return
        channel, parts = deserialize_msg_from_ws_v1(bytes(incoming_msg))
        try:
            msg_type = json.loads(parts[0])["msg_type"]
        except (ValueError, KeyError, TypeError, IndexError):
            self._refuse("a message without a readable header")
            return
        if channel not in REQUEST_CHANNELS or msg_type not in self.allowed_messages:
            self.log.warning("Ignored a %r message on the %r channel from a visitor (widget messages only)",
                             msg_type, channel)
            return
        super().handle_incoming_message(incoming_msg)

    def _refuse(self, what: str) -> None:
        self.log.warning("Closed a kernel websocket after %s", what)
        self.websocket_handler.close(1008, "malformed message")
