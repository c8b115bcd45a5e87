"""plotly's widget bundle as ``liqlab app`` serves it: rewritten for a faster first render.

What the app server sends (:func:`served_files`), each step matched exactly and skipped, with a
warning in the server log, if a plotly release changes what it rewrites:

* :func:`fast_first_copy`: the figure view's deep copy of a figure before its first plot, made
  without lodash (~80 ms less in the explorer's first render).
* :func:`liqlab.serve.bundle_split.split_bundle`: plotly.js registers every one of its ~47 trace types
  (3-D, maps, geo, WebGL, ...) when its bundle is evaluated, and the browser parses and compiles
  all 5 MB of it before the first figure can be drawn. The file served at :func:`bundle_route`
  keeps only the code the types the apps draw need (:data:`EAGER_TRACES`, and ``scatter``, which
  plotly's core always registers): 1.6 MB. The rest is served at :func:`deferred_route`, and
  ``Plotly.liqlabRegisterDeferred()`` fetches it, evaluates it and registers the other types.
  The figure widgets' front end (:mod:`liqlab.apps.figure_widget`) calls it before drawing a figure
  holding any other type, and when traces of another type are added to a figure.
* :func:`defer_registration`, where the split cannot be made (tree-sitter missing, an unexpected
  bundle): one file still, with the other types registered by a synchronous
  ``Plotly.liqlabRegisterDeferred()`` (their code is downloaded and parsed, not run).

The split takes a few seconds (parsing 5 MB of JavaScript), so its result is kept on disk
(:func:`cache_dir`), keyed by plotly's file and the code making it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from liqlab.serve import bundle_split
from liqlab.core.atomic import atomic_write_bytes

#: Trace types registered when the bundle is evaluated (besides ``scatter``): those the apps draw.
EAGER_TRACES: tuple[str, ...] = ("bar", "heatmap", "candlestick")

#: The name of the function the served bundle adds to the ``Plotly`` object.
REGISTER_DEFERRED = "liqlabRegisterDeferred"

_INDEX = re.compile(bundle_split.INDEX_PATTERN)

log = logging.getLogger(__name__)


def bundle_file() -> Path:
    """plotly's own widget bundle (plotly.js and the ``FigureWidget`` front end)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


@functools.lru_cache(maxsize=1)
def bundle_route() -> str:
    """Where the app server publishes :func:`served_bundle`, below its base URL.

    The name carries plotly's version and a digest of the served bytes (both files), so a browser
    may keep the files for good: a new plotly or a new rewrite is a new URL.
    """
    import plotly

    files = served_files()
    digest = hashlib.sha256(files.main + b"\0" + (files.deferred or b"")).hexdigest()[:12]
    return f"liqlab/static/plotly-widget-{plotly.__version__}-{digest}.js"


def deferred_route() -> str | None:
    """Where the app server publishes :func:`deferred_bundle`: :func:`bundle_route` with
    ``-deferred`` before ``.js`` (where the served bundle looks for it); None without a split."""
    return bundle_route()[:-3] + "-deferred.js" if served_files().deferred is not None else None


# bundler factories of plotly's lib/ modules: ``Rre=ye({"lib/bar.js"``
_FACTORY = re.compile(r'([\w$]+)=[\w$]+\(\{"lib/([\w-]+)\.js"')


def defer_registration(source: str, eager: tuple[str, ...] = EAGER_TRACES) -> str | None:
    """plotly's widget bundle ``source`` registering only ``eager`` trace types when evaluated.

    The others (and the world-calendars component, registered in the same call) are registered,
    in plotly's own order, by the first call of ``Plotly.liqlabRegisterDeferred()``; later calls do
    nothing.

    Parameters
    ----------
    source
        The text of :func:`bundle_file`.
    eager
        Trace type names (plotly's ``lib/<type>.js`` modules) to register at once.

    Returns
    -------
    str or None
        The rewritten bundle; ``None`` if ``source`` does not hold plotly's registration call in
        the expected form, or lacks one of the ``eager`` types.
    """
    m = _INDEX.search(source)
    if m is None:
        return None
    factories = [call[:-2] for call in m.group(2).split(",")]
    defined = {name: module for name, module in _FACTORY.findall(source)}
    modules = [defined.get(f) for f in factories]
    if None in modules or not set(eager) <= set(modules):
        return None
    now = [f + "()" for f, mod in zip(factories, modules) if mod in eager]
    later = [f for f, mod in zip(factories, modules) if mod not in eager]
    rewritten = (
        f"(function(d){{t.register([{','.join(now)}]);"
        f"t.{REGISTER_DEFERRED}=function(){{if(d){{var l=d;d=null;"
        f"t.register(l.map(function(f){{return f()}}))}}}}}})([{','.join(later)}])"
    )
    start, end = m.span(1)
    return source[:start] + rewritten + source[end:]


# plotly's figure view copying the widget's figure before its first plot, with lodash
_FIRST_COPY = re.compile(r'var ([\w$]+)=([\w$]+)\.cloneDeep\(this\.model\.get\("_widget_data"\)\),'
                         r'([\w$]+)=\2\.cloneDeep\(this\.model\.get\("_widget_layout"\)\);')

# A deep copy of widget state (plain objects, arrays, typed arrays, JSON values), as lodash's
# cloneDeep makes it; lodash tags each typed array by writing and deleting a property on it.
_COPY = ("function c(v){if(Array.isArray(v))return v.map(c);if(ArrayBuffer.isView(v))"
         "return v instanceof DataView?new DataView(v.buffer.slice(v.byteOffset,v.byteOffset+v.byteLength)):v.slice();"
         "if(v!==null&&typeof v==\"object\"){var o={};for(var k in v)"
         "if(Object.prototype.hasOwnProperty.call(v,k))o[k]=c(v[k]);return o}return v}")


def fast_first_copy(source: str) -> str | None:
    """plotly's widget bundle ``source`` with its figure view's first copy of the figure made
    without lodash.

    Before drawing, plotly's view deep-copies the figure's data and layout with lodash's
    ``cloneDeep``, which spends ~0.3 ms on each typed array (about 80 ms at the explorer's first
    render, in its rows of binary heatmap data). The copy put in its place makes the same deep
    copy of what a widget's state holds: objects, arrays, typed arrays and JSON values.

    Returns
    -------
    str or None
        The rewritten bundle; ``None`` if ``source`` does not hold that copy in the expected form.
    """
    m = _FIRST_COPY.search(source)
    if m is None:
        return None
    data, _lodash, layout = m.groups()
    rewritten = (f'var {data}=({_COPY})(this.model.get("_widget_data")),'
                 f'{layout}=({_COPY})(this.model.get("_widget_layout"));')
    return source[:m.start()] + rewritten + source[m.end():]


class ServedFiles(NamedTuple):
    """The bundle as the app server sends it."""

    main: bytes
    """The file the pages import."""
    deferred: bytes | None
    """The code of the other trace types, evaluated by ``Plotly.liqlabRegisterDeferred()``
    (None: the single-file fallback, where it is in ``main``)."""


def cache_dir() -> Path:
    """Where the split bundle is kept: ``$LIQLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/liqlab``, else
    ``~/.cache/liqlab``."""
    if os.environ.get("LIQLAB_CACHE_DIR"):
        return Path(os.environ["LIQLAB_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liqlab"


def make_served_files(source: str) -> ServedFiles:
    """:class:`ServedFiles` made from plotly's bundle ``source``: split if it can be, else the
    single-file fallback (each step that does not apply skipped, with a warning in the log)."""
    copied = fast_first_copy(source)
    if copied is None:
        log.warning("plotly's bundle does not hold what fast_first_copy rewrites; left as it is")
        copied = source
    split = bundle_split.split_bundle(copied, EAGER_TRACES, REGISTER_DEFERRED)
    if split is not None:
        return ServedFiles(split.main.encode("utf-8"), split.deferred.encode("utf-8"))
    log.warning("plotly's bundle could not be split (tree-sitter missing, or a bundle of another form): "
                "serving it whole")
    deferring = defer_registration(copied)
    if deferring is None:
        log.warning("plotly's bundle does not hold what defer_registration rewrites; left as it is")
        deferring = copied
    return ServedFiles(deferring.encode("utf-8"), None)


def _cache_paths() -> tuple[Path, Path]:
    """Where :func:`served_files` keeps its two files, named by plotly's file and the code making them."""
    key = hashlib.sha256(b"\0".join([
        bundle_file().read_bytes(), Path(__file__).read_bytes(), Path(bundle_split.__file__).read_bytes(),
        _version("tree-sitter").encode(), _version("tree-sitter-javascript").encode(),
    ])).hexdigest()[:24]
    main_path = cache_dir() / f"plotly-widget-{key}.js"
    return main_path, main_path.with_name(f"plotly-widget-{key}-deferred.js")


def served_files_cached() -> bool:
    """Whether :func:`served_files` will read the disk cache rather than make the files (seconds)."""
    return _cache_paths()[0].is_file()


@functools.lru_cache(maxsize=1)
def served_files() -> ServedFiles:
    """:func:`make_served_files` of plotly's bundle, from the disk cache when it holds them
    (computed once per process; a cache that cannot be read or written is only skipped)."""
    main_path, deferred_path = _cache_paths()
    try:
        main = main_path.read_bytes()  # written last: its presence says both are complete
        deferred = deferred_path.read_bytes()
        return ServedFiles(main, deferred or None)
    except OSError:
        pass
    files = make_served_files(bundle_file().read_text(encoding="utf-8"))
    try:
        atomic_write_bytes(deferred_path, files.deferred or b"")
        atomic_write_bytes(main_path, files.main)
    except OSError as exc:
        log.warning("could not keep the served plotly bundle in %s: %s", main_path.parent, exc)
    return files


def served_bundle() -> bytes:
    """The file the app pages import (:attr:`ServedFiles.main`)."""
    return served_files().main


def deferred_bundle() -> bytes | None:
    """The other trace types' code (:attr:`ServedFiles.deferred`), or None without a split."""
    return served_files().deferred


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"
