"""PlotlyView in the kernel: the exact state it sends, updates holding only what changed, the
current figure for a page opened later, and where its front end gets plotly.js."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from liqlab.apps.plotly_bundle import PLOTLY_URL_ENV, TRACE_TYPES, bundle_digest, bundle_path, bundle_text
from liqlab.apps.plotly_view import PlotlyView, encode_array, split_buffers, to_json

NAN32 = np.array([np.nan], "<f4").tobytes()


class Recording(PlotlyView):
    """A PlotlyView keeping the custom messages it sends."""

    def send(self, content, buffers=None):
        self.sent = [*getattr(self, "sent", []), (content, list(buffers or []))]
        super().send(content, buffers)


def plain(value):
    """Wire form with each binary buffer as bytes (comparable with ==)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def hand_made():
    grid = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    return go.Figure([
        go.Heatmap(z=grid, x=np.array([0.0, 1.0, 2.0]), y=np.array([10, 20], dtype=np.int32), meta="grid",
                   zmin=0.0, zmax=6.0),
        go.Scatter(x=np.array([0, 1, 2], dtype=np.int64), y=np.array([1.5, np.nan, 2.5]), meta="line",
                   text=["a", "b", "c"], mode="lines"),
    ], layout=dict(height=300, yaxis=dict(range=[0, 30])))


def test_the_state_of_a_hand_made_figure_is_exact(monkeypatch):
    monkeypatch.delenv(PLOTLY_URL_ENV, raising=False)
    view = PlotlyView(hand_made())
    state = view.get_state()
    assert plain(state["traces"]) == [
        {"type": "heatmap", "meta": "grid", "zmin": 0.0, "zmax": 6.0,
         "x": {"dtype": "float64", "shape": [3], "buffer": np.array([0.0, 1.0, 2.0], "<f8").tobytes()},
         "y": {"dtype": "int32", "shape": [2], "buffer": np.array([10, 20], "<i4").tobytes()},
         # one buffer, rows of typed arrays in the browser; NaN stays NaN
         "z": {"dtype": "float32", "shape": [2, 3],
               "buffer": np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0], "<f4").tobytes()}},
        {"type": "scatter", "meta": "line", "mode": "lines", "text": ["a", "b", "c"],
         # plotly's to_plotly_json stores small whole numbers in the smallest integer type
         "x": {"dtype": "int8", "shape": [3], "buffer": bytes([0, 1, 2])},
         "y": {"dtype": "float64", "shape": [3], "buffer": np.array([1.5, np.nan, 2.5], "<f8").tobytes()}},
    ]
    assert NAN32 in plain(state["traces"])[0]["z"]["buffer"]
    layout = plain(state["plot_layout"])
    assert layout["height"] == 300 and layout["yaxis"] == {"range": [0, 30]}
    assert "template" in layout  # plotly's default template, as go.Figure writes it
    assert state["config"] == {"displaylogo": False}
    # everything but the buffers is strict JSON (no NaN anywhere)
    content, buffers = split_buffers({k: state[k] for k in ("traces", "plot_layout", "config")})
    json.dumps(content, allow_nan=False)
    assert len(buffers) == 5


def test_scalars_and_odd_values_on_the_wire():
    assert to_json({"a": np.float32(1.5), "b": float("nan"), "c": np.int64(3), "d": (1, "x"), "e": [np.inf, 2.0]}) \
        == {"a": 1.5, "b": None, "c": 3, "d": [1, "x"], "e": [None, 2.0]}
    assert to_json(np.array(["a", "b"], dtype=object)) == ["a", "b"]
    assert to_json(np.array([True, False])) == [True, False]
    # JavaScript has no 64-bit integer arrays plotly.js reads: they go as float64
    assert plain(encode_array(np.array([1, 2], dtype=np.int64))) == {
        "dtype": "float64", "shape": [2], "buffer": np.array([1.0, 2.0], "<f8").tobytes()}
    assert plain(encode_array(np.array([[1, 2], [3, 4]], dtype=np.uint8))) == {
        "dtype": "uint8", "shape": [2, 2], "buffer": bytes([1, 2, 3, 4])}
    with pytest.raises(TypeError, match="cannot send"):
        to_json(object())


def test_an_update_sends_only_what_changed_and_keeps_the_state_current(monkeypatch):
    monkeypatch.delenv(PLOTLY_URL_ENV, raising=False)
    view = Recording(hand_made())
    grid = hand_made().data[0].z
    first = {"traces": {"grid": {"z": grid, "zmax": 6.0}, "line": {"y": np.array([1.5, np.nan, 2.5])}},
             "layout": {"yaxis.range": [0, 30], "title.text": "a"}}
    second = {"traces": {"grid": {"z": grid.copy(), "zmax": 6.0}, "line": {"y": np.array([7.0, np.nan, 9.0])}},
              "layout": {"yaxis.range": [0, 30], "title.text": "b"}}
    assert view.apply(second, first)
    assert not view.apply(second, second), "nothing changed: nothing sent"
    (content, buffers), = view.sent
    assert content == {"type": "update", "traces": [[1, {"y": {"dtype": "float64", "shape": [3], "buffer": 0}}]],
                       "layout": {"title.text": "b"}}
    assert [bytes(b) for b in buffers] == [np.array([7.0, np.nan, 9.0], "<f8").tobytes()]
    # the stored figure is the current one: a page opened now receives it
    state = plain(view.get_state())
    assert state["traces"][1]["y"]["buffer"] == np.array([7.0, np.nan, 9.0], "<f8").tobytes()
    assert state["plot_layout"]["title"] == {"text": "b"}
    assert np.array_equal(view.trace("line")["y"], [7.0, np.nan, 9.0], equal_nan=True)
    assert view.layout_value("title.text") == "b" and view.layout_value("nothing.here", 1) == 1
    assert view.messages_sent == 1


def test_update_by_index_and_whole_figure_replacement():
    view = Recording(hand_made())
    with pytest.raises(IndexError):
        view.update({5: {"x": [1]}})
    assert view.update({0: {"zmax": 9.0}}) and view.trace("grid")["zmax"] == 9.0
    view.set_figure(go.Figure(go.Bar(x=[1, 2], y=[3, 4], meta="bars")))
    assert view.trace_names == ["bars"] and view.trace("bars")["type"] == "bar"
    with pytest.raises(KeyError):
        view.trace("grid")


def test_only_the_bundles_trace_types_are_accepted():
    assert TRACE_TYPES == ("scatter", "bar", "candlestick", "heatmap")
    with pytest.raises(ValueError, match="no 'scattergl' traces"):
        PlotlyView(go.Figure(go.Scattergl(x=[1], y=[2])))
    assert PlotlyView({"data": [{"x": [1], "y": [2]}], "layout": {}}).traces == [{"x": [1], "y": [2], "type": "scatter"}]


def test_plotly_comes_inline_unless_the_server_gives_a_url(monkeypatch):
    monkeypatch.delenv(PLOTLY_URL_ENV, raising=False)
    inline = PlotlyView(hand_made())
    assert inline.plotly_url == "" and inline.plotly_source == bundle_text()
    assert inline.plotly_digest == bundle_digest() and len(bundle_digest()) == 16
    monkeypatch.setenv(PLOTLY_URL_ENV, "/voila/templates/liqlab/static/plotly-liqlab.js?v=abc")
    served = PlotlyView(hand_made())
    assert served.plotly_url == "voila/templates/liqlab/static/plotly-liqlab.js?v=abc" and served.plotly_source == ""


def test_the_bundle_is_package_data():
    path = bundle_path()
    assert path.name == "plotly-liqlab.js" and path.parent.name == "static"
    size = path.stat().st_size
    assert 900_000 < size < 1_600_000, size
    text = bundle_text()
    assert text.rstrip().endswith("*/") and "export{" in text  # an ES module (licences at the end)
