"""Figure widgets: stock plotly in JupyterLab, plotly.js imported from the app server under ``liqlab app``."""

from __future__ import annotations

import plotly.graph_objects as go

from liqlab.figure_widget import BUNDLE_ENV, bundle_file, bundle_route, figure_widget, figure_widget_class, stub_esm


def test_without_the_server_route_widgets_are_stock_plotly(monkeypatch):
    monkeypatch.delenv(BUNDLE_ENV, raising=False)
    assert figure_widget_class() is go.FigureWidget


def test_served_widgets_ship_a_stub_that_imports_the_route(monkeypatch):
    monkeypatch.setenv(BUNDLE_ENV, bundle_route())
    cls = figure_widget_class()
    assert issubclass(cls, go.FigureWidget) and cls is not go.FigureWidget
    w = figure_widget(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert w._esm == stub_esm(bundle_route())
    assert f'"{bundle_route()}"' in w._esm and "import(" in w._esm
    assert len(w._esm) < 2_000 < bundle_file().stat().st_size
    assert "_sendTraceDeltas" in w._esm  # views report a finished edit, not the full computed state
    assert list(w.data[0].y) == [3, 4]
    assert figure_widget_class() is cls  # one class per route


def test_route_is_versioned_and_relative():
    import plotly

    route = bundle_route()
    assert not route.startswith("/") and route.endswith(f"-{plotly.__version__}.js")
    assert stub_esm("/" + route) == stub_esm(route)
