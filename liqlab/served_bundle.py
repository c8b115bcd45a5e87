"""plotly's widget bundle as ``liqlab app`` serves it: trace types the apps do not draw are registered later.

When its bundle is evaluated, plotly.js registers every one of its ~47 trace types (3-D, maps,
geo, WebGL, ...), evaluating each one's code: about 0.4 s of the page's only thread in a new
visitor's first render, before the first figure can be drawn (CPU profile of the explorer app,
``lib/index.js`` in plotly's bundle). The copy served here registers the types the apps draw
(:data:`EAGER_TRACES`, and ``scatter``, which plotly's core always registers) at once and keeps the
others for ``Plotly.liqlabRegisterDeferred()``. The figure widgets' front end
(:mod:`liqlab.figure_widget`) calls it before drawing a figure holding any other type, before
traces are added to a figure, and when the page is idle after its first figure: every type is
there when a figure needs it, and none costs the first render.

The rewrite is one expression in plotly's ``lib/index.js``, matched exactly; if a plotly release
changes it, :func:`served_bundle` serves the file unchanged (and says so in the server log).
"""

from __future__ import annotations

import functools
import logging
import hashlib
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
        The text of :func:`liqlab.figure_widget.bundle_file`.
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


@functools.lru_cache(maxsize=1)
def served_bundle() -> bytes:
    """The bundle the app server sends: :func:`defer_registration` of plotly's file, or the file
    unchanged if that does not apply to this plotly release (computed once per process)."""
    source = bundle_file().read_text(encoding="utf-8")
    rewritten = defer_registration(source)
    if rewritten is None:
        log.warning("plotly's bundle registers its trace types in an unexpected form; serving it unchanged")
        return source.encode("utf-8")
    return rewritten.encode("utf-8")
