"""Voila, as ``liqlab app`` runs it: compressed HTTP responses and plotly.js served as a file.

``python -m liqlab.serve.voila_server`` takes Voila's own command line. Two additions to stock Voila:

* HTTP responses are gzip-compressed (tornado's ``compress_response``: the JavaScript bundles
  shrink about four times). Voila applies its ``tornado_settings`` after tornado has fixed its
  output transforms, so the setting has to go in here. Tornado compresses every response anew,
  at level :data:`GZIP_LEVEL` here (level 1: a third of the CPU time of tornado's default 6,
  for responses about 15 % larger), on the server's only thread, while a page loads.
* plotly's widget bundle, as :func:`liqlab.serve.served_bundle.served_files` makes it (the code of the
  apps' trace types, and the rest for later), is served from memory at its versioned routes with
  a long cache time; the kernels' figure widgets import it from there
  (:mod:`liqlab.apps.figure_widget`) instead of sending it through the kernel websocket. It is
  compressed once, at full strength, in the background when the server starts: compressing
  megabytes on each request took half a second of the server's time in every first page view.
"""

from __future__ import annotations

import functools
import gzip
import re
import threading

from tornado.web import GZipContentEncoding, RequestHandler
from voila.app import Voila

from liqlab.serve.served_bundle import bundle_route, deferred_route, served_files

#: Compression level of the responses tornado compresses as it sends them.
GZIP_LEVEL = 1


@functools.lru_cache(maxsize=2)
def gzipped(part: str) -> bytes:
    """The ``part`` (``"main"`` or ``"deferred"``) of :func:`served_files`, gzip-compressed at
    level 9 (computed once per process)."""
    return gzip.compress(getattr(served_files(), part), compresslevel=9, mtime=0)


def gzip_all() -> None:
    """Compress every part served (to run in the background when the server starts)."""
    for part in ("main", "deferred"):
        if getattr(served_files(), part) is not None:
            gzipped(part)


class _BundleHandler(RequestHandler):
    """Serves a part of the bundle from memory; its URL names plotly's version and the bytes, so
    browsers may keep it."""

    CACHE_MAX_AGE = 86400 * 365

    def initialize(self, part: str, route: str) -> None:
        self.part, self.route = part, route

    def get(self, include_body: bool = True) -> None:
        zipped = "gzip" in self.request.headers.get("Accept-Encoding", "")
        # tornado does not compress a response that has an encoding: these bytes go as they are
        body = gzipped(self.part) if zipped else getattr(served_files(), self.part)
        self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        if zipped:
            self.set_header("Content-Encoding", "gzip")
        self.set_header("Vary", "Accept-Encoding")
        self.set_header("Cache-Control", f"max-age={self.CACHE_MAX_AGE}, public")
        # the route names these very bytes (a digest of them)
        self.set_header("Etag", f'"{self.route}{"-gzip" if zipped else ""}"')
        if self.check_etag_header():
            self.set_status(304)
            return
        if include_body:
            self.write(body)
        else:
            self.set_header("Content-Length", len(body))

    def head(self) -> None:
        self.get(include_body=False)


class LiqlabVoila(Voila):
    """Voila with gzip and the plotly bundle's routes."""

    def init_settings(self) -> dict:
        settings = super().init_settings()
        settings["compress_response"] = True
        GZipContentEncoding.GZIP_LEVEL = GZIP_LEVEL  # this process is the app server alone
        threading.Thread(target=gzip_all, name="gzip-plotly-bundle", daemon=True).start()
        return settings

    def init_handlers(self) -> list:
        handlers = super().init_handlers()
        base = self.server_url.rstrip("/")
        routes = {"main": bundle_route(), "deferred": deferred_route()}
        # first: Voila ends its list with catch-all routes
        handlers[:0] = [(f"{base}/{re.escape(route)}", _BundleHandler, {"part": part, "route": route})
                        for part, route in routes.items() if route is not None]
        return handlers


main = LiqlabVoila.launch_instance

if __name__ == "__main__":
    main()
