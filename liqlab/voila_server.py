"""Voila, as ``liqlab app`` runs it: compressed HTTP responses and plotly.js served as a file.

``python -m liqlab.voila_server`` takes Voila's own command line. Two additions to stock Voila:

* HTTP responses are gzip-compressed (tornado's ``compress_response``: the JavaScript bundles
  shrink about four times). Voila applies its ``tornado_settings`` after tornado has fixed its
  output transforms, so the setting has to go in here.
* plotly's widget bundle (:func:`liqlab.figure_widget.bundle_file`) is served at its versioned
  route with a long cache time; the kernels' figure widgets import it from there
  (:mod:`liqlab.figure_widget`) instead of sending it through the kernel websocket.
"""

from __future__ import annotations

import re

from tornado.web import StaticFileHandler
from voila.app import Voila

from liqlab.figure_widget import bundle_file, bundle_route


class _BundleHandler(StaticFileHandler):
    """Serves the one bundle file; its URL carries plotly's version, so browsers may keep it."""

    def parse_url_path(self, url_path: str) -> str:
        return bundle_file().name

    @classmethod
    def get_cache_time(cls, path, modified, mime_type) -> int:
        return cls.CACHE_MAX_AGE


class LiqlabVoila(Voila):
    """Voila with gzip and the plotly bundle route."""

    def init_settings(self) -> dict:
        settings = super().init_settings()
        settings["compress_response"] = True
        return settings

    def init_handlers(self) -> list:
        handlers = super().init_handlers()
        base = self.server_url.rstrip("/")
        # first: Voila ends its list with catch-all routes
        handlers.insert(0, (f"{base}/{re.escape(bundle_route())}()", _BundleHandler,
                            {"path": str(bundle_file().parent)}))
        return handlers


main = LiqlabVoila.launch_instance

if __name__ == "__main__":
    main()
