"""Figure widgets: plotly's front end in JupyterLab, plotly.js imported from the app server under
``liqlab app``; 2-D arrays sent so that JSON can carry them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import plotly.graph_objects as go
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from jupyter_client.session import json_packer

from liqlab.apps.figure_widget import (BUNDLE_ENV, EAGER_TRACES, REGISTER_DEFERRED, JsonOnly, bundle_file,
                                  figure_widget,
                                  figure_widget_class, split_buffers, stub_esm, to_js)


ROUTE = "liqlab/static/plotly-widget-test.js"


def test_without_the_server_route_widgets_use_plotlys_front_end(monkeypatch):
    monkeypatch.delenv(BUNDLE_ENV, raising=False)
    cls = figure_widget_class()
    assert issubclass(cls, go.FigureWidget) and cls._esm == go.FigureWidget._esm
    assert cls.reports_state, "plotly's front end sends the computed figure back"


def test_grids_travel_as_binary_rows_and_pairs_as_json():
    grid = np.array([[1.0, np.nan] * 4, [3.0] * 8], dtype=np.float64)
    rows = to_js(grid)
    assert [r["dtype"] for r in rows] == ["float32", "float32"] and rows[0]["shape"] == (8,)
    first = np.frombuffer(rows[0]["buffer"], np.float32)
    assert first[0] == 1.0 and np.isnan(first[1]), "NaN stays a gap"
    assert to_js(np.array([[1.5, np.nan], [2.0, 3.0]])) == [[1.5, None], [2.0, 3.0]]
    assert to_js({"z": [grid]})["z"][0][1]["dtype"] == "float32"  # inside messages too
    one = to_js(np.array([1.0, 2.0], np.float32))
    assert one["dtype"] == "float32" and one["shape"] == (2,)  # 1-D: plotly's own form


def _random_state(rng, depth=0):
    """Random widget state: dicts and lists of scalars, 2-D grids, buffers and nested containers."""
    kinds = ["scalar", "text", "grid", "pairs", "buffer"] + (["dict", "list"] if depth < 3 else [])
    out = {}
    for i in range(rng.integers(1, 5)):
        kind = kinds[rng.integers(len(kinds))]
        out[f"k{i}"] = {
            "scalar": lambda: float(rng.normal()),
            "text": lambda: [f"t{j}" for j in range(rng.integers(0, 4))],
            "grid": lambda: np.where(rng.random((2, 9)) < 0.2, np.nan, rng.normal(size=(2, 9))),
            "pairs": lambda: np.where(rng.random((3, 2)) < 0.2, np.nan, rng.normal(size=(3, 2))),
            "buffer": lambda: np.arange(rng.integers(1, 4), dtype=np.float32),
            "dict": lambda: _random_state(rng, depth + 1),
            "list": lambda: [_random_state(rng, depth + 1) for _ in range(rng.integers(0, 3))],
        }[kind]()
    return out


def test_split_buffers_sends_what_ipywidgets_would():
    rng = np.random.default_rng(7)
    for _ in range(200):
        state = to_js(_random_state(rng))
        ours, theirs = split_buffers(state), _remove_buffers(state)
        assert ours[0] == theirs[0] and ours[1] == theirs[1]
        assert len(ours[2]) == len(theirs[2]) and all(a is b for a, b in zip(ours[2], theirs[2]))
    # the input is left as it was; plain lists are marked and not searched
    grid = np.ones((2, 8))
    state = to_js({"z": grid, "text": ["a", "b"], "pairs": np.ones((2, 2))})
    assert isinstance(state["text"], JsonOnly) and isinstance(state["pairs"], JsonOnly)
    out, paths, buffers = split_buffers(state)
    assert paths == [["z", 0, "buffer"], ["z", 1, "buffer"]] and "buffer" in state["z"][0]
    assert out["z"][0] == {"dtype": "float32", "shape": (8,)} and out["text"] is state["text"]


@pytest.mark.parametrize("served", [False, True])
def test_heatmap_widget_state_is_strict_json(monkeypatch, served):
    """NaN cells would make jupyter_client re-encode the message with a warning (``"nan"`` strings)."""
    if served:
        monkeypatch.setenv(BUNDLE_ENV, ROUTE)
    else:
        monkeypatch.delenv(BUNDLE_ENV, raising=False)
    z = np.array([[1.0, np.nan, 2.0] * 4, [np.nan, 5.0, 6.0] * 4])
    w = figure_widget(go.Figure(go.Heatmap(z=z, customdata=z, x=np.arange(12.0), y=[10.0, 20.0])))
    state, _, buffers = _remove_buffers(w.get_state())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json_packer(state)
    assert len(buffers) >= 4  # z and customdata: two rows each
    sent = []
    w._send = lambda msg, buffers=None: sent.append((msg, buffers))  # what the comm would carry
    w.plotly_update(restyle_data={"z": [z * 2]}, trace_indexes=[0])
    assert np.asarray(w.data[0].z)[0, 0] == 2.0
    updates = [(m, b) for m, b in sent if "_py2js_update" in m.get("state", {}) and m["state"]["_py2js_update"]]
    assert updates, "the update went out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json_packer(updates[0][0])
    assert [np.frombuffer(b, np.float32)[0] for b in updates[0][1][:1]] == [2.0]


def test_served_widgets_ship_a_stub_that_imports_the_route(monkeypatch):
    monkeypatch.setenv(BUNDLE_ENV, ROUTE)
    cls = figure_widget_class()
    assert issubclass(cls, go.FigureWidget) and cls is not go.FigureWidget
    w = figure_widget(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert w._esm == stub_esm(ROUTE)
    assert f'"{ROUTE}"' in w._esm and "import(" in w._esm
    assert len(w._esm) < 5_000 < bundle_file().stat().st_size
    assert "_sendTraceDeltas" in w._esm  # views report a finished edit, not the full computed state
    # trace types the served bundle registers later are registered before a figure needs them
    assert f"P.{REGISTER_DEFERRED}()" in w._esm and json.dumps(["scatter", *EAGER_TRACES]) in w._esm
    assert not cls.reports_state
    assert list(w.data[0].y) == [3, 4]
    assert figure_widget_class() is cls  # one class per route


def test_stub_takes_the_route_relative_to_the_base_url():
    route = ROUTE
    assert stub_esm("/" + route) == stub_esm(route)
