"""plotly's widget bundle as ``liqlab app`` serves it: rewritten for a faster first render.

Two rewrites of plotly's file (:data:`REWRITES`), each matched exactly and skipped, with a warning
in the server log, if a plotly release changes what it rewrites:

* :func:`defer_registration`. When its bundle is evaluated, plotly.js registers every one of its
  ~47 trace types (3-D, maps, geo, WebGL, ...), evaluating each one's code: about 0.4 s of the
  page's only thread in a new visitor's first render, before the first figure can be drawn (CPU
  profile of the explorer app, ``lib/index.js`` in plotly's bundle). The copy served here
  registers the types the apps draw (:data:`EAGER_TRACES`, and ``scatter``, which plotly's core
  always registers) at once and keeps the others for ``Plotly.liqlabRegisterDeferred()``. The
  figure widgets' front end (:mod:`liqlab.figure_widget`) calls it before drawing a figure
  holding any other type, before traces are added to a figure, and when the page is idle after
  its first figure: every type is there when a figure needs it, and none costs the first render.
* :func:`fast_first_copy`: the figure view's deep copy of a figure before its first plot, made
  without lodash (~80 ms less in the explorer's first render).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from pathlib import Path

#: Trace types registered when the bundle is evaluated (besides ``scatter``): those the apps draw.
EAGER_TRACES: tuple[str, ...] = ("bar", "heatmap", "candlestick")

#: The name of the function the served bundle adds to the ``Plotly`` object.
REGISTER_DEFERRED = "liqlabRegisterDeferred"

# plotly's lib/index.js, as its bundler writes it: core, then one register call with every type
_INDEX = re.compile(r'"lib/index\.js"\(e,r\)\{var t=[\w$]+\(\);(t\.register\(\[((?:[\w$]+\(\),)*[\w$]+\(\))\]\))')

log = logging.getLogger(__name__)


def bundle_file() -> Path:
    """plotly's own widget bundle (plotly.js and the ``FigureWidget`` front end)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


@functools.lru_cache(maxsize=1)
def bundle_route() -> str:
    """Where the app server publishes :func:`served_bundle`, below its base URL.

    The name carries plotly's version and a digest of the served bytes, so a browser may keep
    the file for good: a new plotly or a new rewrite is a new URL.
    """
    import plotly

    digest = hashlib.sha256(served_bundle()).hexdigest()[:12]
    return f"liqlab/static/plotly-widget-{plotly.__version__}-{digest}.js"


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


#: The rewrites :func:`served_bundle` applies, in order, each where it finds its target.
REWRITES = (defer_registration, fast_first_copy)


@functools.lru_cache(maxsize=1)
def served_bundle() -> bytes:
    """The bundle the app server sends: plotly's file with each of :data:`REWRITES` that applies to
    this plotly release (the others are skipped, with a warning in the server log); computed once
    per process."""
    source = bundle_file().read_text(encoding="utf-8")
    for rewrite in REWRITES:
        rewritten = rewrite(source)
        if rewritten is None:
            log.warning("plotly's bundle does not hold what %s rewrites; left as it is", rewrite.__name__)
        else:
            source = rewritten
    return source.encode("utf-8")
