"""liqlab's plotly.js: a custom bundle holding only the trace types the apps draw.

``static/plotly-liqlab.js`` (package data) is an ES module whose default export is ``Plotly``
with the core (scatter) and :data:`TRACE_TYPES`. It is built from the plotly.js npm package by
``js/build.mjs`` at the top of the repository (``make bundle``; versions pinned in
``js/package-lock.json``), and a test rebuilds it and compares the bytes.

The figure widget (:class:`liqlab.apps.plotly_view.PlotlyView`) gets it in one of two ways:

* **served**: when :data:`PLOTLY_URL_ENV` is set in the kernel's environment (the app server sets
  it to the file's path below its base URL), the front end imports it from that URL, once per
  page, cached by the browser;
* **inline** (JupyterLab, a plain notebook): the file's text travels once in the widget's state
  and the front end imports it from a Blob URL, once per page.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from pathlib import Path

#: Trace types the bundle holds (besides ``scatter``, which is part of plotly.js's core).
TRACE_TYPES = ("scatter", "bar", "candlestick", "heatmap")

#: Environment variable with the bundle's URL relative to the server's base URL (set by the app server).
PLOTLY_URL_ENV = "LIQLAB_PLOTLY_URL"

BUNDLE_NAME = "plotly-liqlab.js"


def bundle_path() -> Path:
    """The bundle file inside the installed package."""
    return Path(str(importlib.resources.files("liqlab.apps") / "static" / BUNDLE_NAME))


@functools.lru_cache(maxsize=1)
def bundle_text() -> str:
    """The bundle's source (about 1.2 MB), read once per process."""
    return bundle_path().read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def bundle_digest() -> str:
    """First 16 hex digits of the bundle's SHA-256: names the bundle in the browser's cache of modules."""
    return hashlib.sha256(bundle_path().read_bytes()).hexdigest()[:16]


def plotly_url() -> str:
    """The bundle's URL below the server's base URL when served (:data:`PLOTLY_URL_ENV`), else ``""``."""
    return os.environ.get(PLOTLY_URL_ENV, "").strip().lstrip("/")
