"""Writing new figure parts into an existing figure in place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from liqlab.viz.style import Parts

if TYPE_CHECKING:  # plotly and the engine are imported lazily: ``import liqlab`` stays light
    import plotly.graph_objects as go  # noqa: F401

    from liqlab.core.engine import HeatmapResult, LiquidationMap  # noqa: F401
    from liqlab.core.market import Market  # noqa: F401


def diff_parts(trace_names, parts: Parts, previous: Parts | None = None) -> tuple[dict[int, dict], dict]:
    """What changed from ``previous`` to ``parts``, for a figure whose traces are named ``trace_names``.

    Returns ``(traces, layout)``: for each trace index whose properties changed, those properties
    (``xaxis``/``yaxis`` never: traces keep their axes), and the dotted layout paths
    (``"yaxis.range"``) whose values changed. Parts naming no trace of the figure are skipped.
    """
    index = {name: i for i, name in enumerate(trace_names)}
    old_traces = (previous or {}).get("traces", {})
    changes: dict[int, dict] = {}
    for name, props in parts["traces"].items():
        i = index.get(name)
        if i is None:
            continue
        before = old_traces.get(name, {})
        changed = {k: v for k, v in props.items()
                   if k not in ("xaxis", "yaxis") and not (k in before and same_value(before[k], v))}
        if changed:
            changes[i] = changed
    old_layout = (previous or {}).get("layout", {})
    relayout = {k: v for k, v in parts["layout"].items() if not (k in old_layout and same_value(old_layout[k], v))}
    return changes, relayout


def apply_parts(fig, parts: Parts, previous: Parts | None = None) -> None:
    """Write new parts into an existing plotly figure as one ``plotly_update``.

    Traces are found by ``meta`` (the part name). Values equal to those in ``previous`` (the parts
    applied last time) are skipped, so that a leverage change, for instance, sends only new colours.
    The parts come from this module's builders, already in plotly's form, so they go through
    ``plotly_update`` (stored as they are) rather than through the property validators, which
    would walk every array element by element on each update. (The apps' widget,
    :class:`liqlab.apps.plotly_view.PlotlyView`, has its own ``apply`` built on :func:`diff_parts`.)
    """
    from plotly.basedatatypes import Undefined

    changes, relayout = diff_parts([t.meta for t in fig.data], parts, previous)
    traces = sorted(changes)
    keys = sorted({k for c in changes.values() for k in c})
    restyle = {k: [changes[i].get(k, Undefined) for i in traces] for k in keys}
    if restyle or relayout:
        fig.plotly_update(restyle_data=restyle or None, relayout_data=relayout or None,
                          trace_indexes=traces or None)


def same_value(old, new) -> bool:
    """Cheap equality for trace values (arrays, lists, scalars); False when unsure or costly."""
    if old is None:
        return False
    if isinstance(new, dict):  # colour bars, markers, lines: equal nested values need no update
        return (isinstance(old, dict) and old.keys() == new.keys()
                and all(same_value(old[k], new[k]) for k in new))
    try:
        if isinstance(new, np.ndarray) or isinstance(old, np.ndarray):
            a, b = np.asarray(old), np.asarray(new)
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            if a.dtype.kind in "fiub":
                return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
            return a.ndim == 1 and bool((a == b).all())
        if isinstance(new, list):
            return isinstance(old, list) and len(old) == len(new) and old == new
        return bool(old == new)
    except (TypeError, ValueError):
        return False
