"""A shared dashboard's visitor can send any widget message: bounded, checked, and never answered with
server internals."""

from __future__ import annotations

import comm
import numpy as np
import pytest
from comm.base_comm import BaseComm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("anywidget")

from liqlab.apps.dashboard import Dashboard  # noqa: E402
from liqlab.apps.guarded import (  # noqa: E402
    MAX_MESSAGE,
    MAX_TEXT,
    StateRefused,
    check_visitor_state,
    visitor_text,
)


class RecordingComm(BaseComm):
    """A comm that keeps what the kernel would send to the page (``comm.create_comm`` is meant to be
    replaced by a front end's own)."""

    sent: list[tuple[str, dict | None, list]] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.sent.append((msg_type, data, list(buffers or [])))


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(comm, "create_comm", RecordingComm)
    try:
        yield Dashboard("BTCUSDT", window="7d", debounce=0, export_dir=tmp_path_factory.mktemp("exports"))
    finally:
        mp.undo()


def _sent_bytes() -> int:
    return sum(len(repr(data)) + sum(len(b) for b in bufs) for _, data, bufs in RecordingComm.sent)


def test_oversized_text_is_refused_before_any_work_and_not_echoed(dash):
    symbol = dash.w_symbol.value
    computed = dash.compute_ms
    RecordingComm.sent.clear()
    dash.w_symbol.set_state({"value": "A" * 10_000_000})  # what a hostile page's message becomes
    assert dash.w_symbol.value == symbol and dash.error
    assert f"longer than {MAX_TEXT} characters" in dash.message
    assert len(dash.status.value) < 2_000
    # what went back to the page: the kept value and the status line, not the 10 MB
    assert _sent_bytes() < 20_000
    assert dash.compute_ms == computed  # nothing recomputed


@pytest.mark.parametrize("state, words", [
    ({"description": "x" * 50}, "cannot change"),
    ({"options": ["A", "B"]}, "cannot change"),
    ({"value": [[[[[1]]]]]}, "nested too deeply"),
    ({"value": list(range(1000))}, "more than 64 items"),
    ({"value": 10**30}, "far out of range"),
])
def test_keys_and_shapes_a_visitor_may_not_send(dash, state, words):
    before = dash.w_symbol.get_state()
    dash.w_symbol.set_state(state)
    assert dash.error and words in dash.message, dash.message
    assert dash.w_symbol.get_state() == before


def test_a_valid_change_after_a_refusal_still_works(dash):
    dash.w_symbol.set_state({"value": "B" * 500})
    assert dash.error
    dash.w_symbol.set_state({"value": "ETHUSDT"})
    assert not dash.error and dash.market.symbol == "ETHUSDT", dash.message
    dash.w_symbol.set_state({"value": "BTCUSDT"})
    assert not dash.error


def test_the_figure_takes_no_state_from_the_page(dash):
    traces = dash.figure.traces
    dash.figure.set_state({"traces": [{"type": "bar", "y": list(range(10**5))}], "plotly_url": "//elsewhere/x.js"})
    assert dash.figure.traces is traces and dash.figure.plotly_url in ("", dash.figure.plotly_url)
    assert not dash.figure.plotly_url.startswith("//")


def test_visitor_text_hides_server_paths_and_bounds_length():
    assert visitor_text("nothing stored in /srv/liqlab/store/binanceusdm for BTC/USDT:USDT") == (
        "nothing stored in the data folder for BTC/USDT:USDT")
    assert visitor_text("C:\\Users\\me\\data.csv and ~/x/y") == "data.csv and the data folder"
    assert visitor_text("ratio 1/2 at http://example/x") == "ratio 1/2 at http://example/x"
    assert len(visitor_text("word " * 1000)) == MAX_MESSAGE


def test_a_failing_source_does_not_show_the_server_store(tmp_path):
    secret = tmp_path / "private" / "store"

    def offline_loader(exchange, symbol, timeframe, since, until, online):
        if exchange == "sample":
            from liqlab.apps.dashboard import default_loader

            return default_loader(exchange, symbol, timeframe, since, until, online)
        raise RuntimeError(f"exchange unreachable and nothing is stored for this window in {secret}")

    d = Dashboard("BTCUSDT", window="7d", debounce=0, loader=offline_loader, export_dir=tmp_path / "exports")
    d.set(exchange="binanceusdm", symbol="BTC/USDT:USDT")
    assert "nothing is stored" in d.status.value
    assert str(tmp_path) not in d.status.value and "private" not in d.status.value
    d.export("csv")
    assert str(tmp_path) not in d.status.value and "exported" in d.message


def test_check_visitor_state_accepts_what_the_page_sends():
    for state in ({"value": "BTCUSDT"}, {"index": 3}, {"value": 0.25}, {"value": None}, {"selected_index": None},
                  {"value": {"year": 2025, "month": 0, "date": 31}}, {"value": [1.5, 2.5]}, {"playing": True},
                  {"value": float("nan")}):
        check_visitor_state(state)
    with pytest.raises(StateRefused):
        check_visitor_state(["value"])


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=300)
    | st.dates().map(lambda d: {"year": d.year, "month": d.month - 1, "date": d.day}),
    lambda inner: st.lists(inner, max_size=80) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_message_to_any_input_never_raises_or_leaks(dash, data):
    """Fuzz: any state update, to any of the dashboard's inputs, is applied or refused; the status
    line stays one bounded line without tracebacks or paths, and the figure keeps its data."""
    widgets = dash._own_widgets()
    widget = data.draw(st.sampled_from(widgets), label="widget")
    key = data.draw(st.sampled_from(["value", "index", "selected_index", "playing", "description", "disabled"]),
                    label="key")
    state = {key: data.draw(_plain, label="value")}
    widget.set_state(state)  # must not raise, whatever the state
    status = dash.status.value
    assert "Traceback" not in status and len(status) < 4_000
    assert "/root" not in status and "/home" not in status and "site-packages" not in status
    assert len(dash.figure.traces) > 0
    if dash.result is not None:
        assert np.isfinite(dash.result.predicted.to_numpy()).all()
