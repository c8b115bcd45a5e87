"""Views shared between kernels: computed once, read back equal, never the wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from liqlab.apps.view_cache import MAX_ENTRIES, shared_view, view_key


def test_computed_once_then_read(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"z": np.arange(6.0).reshape(2, 3)}

    first, read1 = shared_view("k1", compute, tmp_path)
    second, read2 = shared_view("k1", compute, tmp_path)
    assert (read1, read2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(first["z"], second["z"])
    assert [p.name for p in tmp_path.iterdir()] == ["k1.pickle"]


def test_damaged_or_foreign_entries_are_recomputed(tmp_path):
    (tmp_path / "k2.pickle").write_bytes(b"\x80\x05 not a pickle")
    assert shared_view("k2", lambda: 7, tmp_path) == (7, False)
    # an entry stored under another key (a renamed file) is not taken for this one
    (tmp_path / "k3.pickle").write_bytes((tmp_path / "k2.pickle").read_bytes())
    assert shared_view("k3", lambda: 8, tmp_path) == (8, False)
    assert shared_view("k3", lambda: 9, tmp_path) == (8, True)


def test_unwritable_folder_still_returns_the_value(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert shared_view("k", lambda: 5, blocker / "sub") == (5, False)


def test_the_folder_stays_bounded(tmp_path):
    for i in range(MAX_ENTRIES + 5):
        shared_view(f"k{i}", lambda: i, tmp_path)
    assert len(list(tmp_path.glob("*.pickle"))) == MAX_ENTRIES


def test_keys_follow_every_part():
    assert view_key("a", 1) == view_key("a", 1)
    assert len({view_key("a", 1), view_key("a", 2), view_key("b", 1)}) == 3


def test_a_second_dashboard_reads_the_first_ones_view(tmp_path, monkeypatch):
    pytest.importorskip("anywidget")
    from liqlab.apps.dashboard import Dashboard

    monkeypatch.setenv("LIQLAB_CACHE_DIR", str(tmp_path))
    a = Dashboard("BTCUSDT", window="7d", debounce=0, export_dir=tmp_path / "x")
    b = Dashboard("BTCUSDT", window="7d", debounce=0, export_dir=tmp_path / "x")
    assert (a.shared_view, b.shared_view) == (False, True)
    np.testing.assert_array_equal(a.result.predicted.to_numpy(), b.result.predicted.to_numpy())
    assert a.figure.trace_names == b.figure.trace_names
    np.testing.assert_array_equal(np.asarray(a.figure.trace("heatmap")["z"]), np.asarray(b.figure.trace("heatmap")["z"]))
    # the second one works on after it: a change computes as usual
    assert b.set(preset="degen") and not b.error
    assert not np.array_equal(a.result.predicted.to_numpy(), b.result.predicted.to_numpy())


def test_a_second_cascade_lab_reads_the_first_ones_cascade(tmp_path, monkeypatch):
    pytest.importorskip("anywidget")
    from liqlab.apps.cascade_lab import CascadeLab

    monkeypatch.setenv("LIQLAB_CACHE_DIR", str(tmp_path))
    a, b = CascadeLab(n=2_000, phase_grid=(6, 5)), CascadeLab(n=2_000, phase_grid=(6, 5))
    assert (a.shared_view, b.shared_view) == (False, True)
    assert a.result.size == b.result.size and len(a.result.rounds) == len(b.result.rounds)
    np.testing.assert_array_equal(a.diagram.size_share, b.diagram.size_share)
    assert CascadeLab(n=2_001, phase_grid=(6, 5)).shared_view is False  # another lab, another view
    b.show_round(0)
    assert b.round == 0 and not b.error


def test_a_kernel_given_a_shared_view_has_its_engine_loaded_before_the_first_change(tmp_path):
    """A fresh process whose first view is read from the cache still runs the engine once (on a few
    candles), so the visitor's first change does not wait for numba to load."""
    import os
    import subprocess
    import sys

    pytest.importorskip("anywidget")
    if os.environ.get("LIQLAB_DISABLE_NUMBA"):
        pytest.skip("numba is disabled (LIQLAB_DISABLE_NUMBA)")
    code = ("import sys; from liqlab.apps.dashboard import Dashboard; from liqlab.core import kernels; "
            "d = Dashboard('BTCUSDT', window='7d', debounce=0, export_dir=sys.argv[1]); "
            "print(d.shared_view, len(kernels.run_engine.signatures))")
    env = dict(os.environ, LIQLAB_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / "x")], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:] + runs[1].stderr[-2000:]
    first, second = (r.stdout.split() for r in runs)
    assert first[0] == "False" and second[0] == "True"  # the second process read the first one's view
    assert int(second[1]) >= 1  # and has the engine's compiled kernel loaded all the same
