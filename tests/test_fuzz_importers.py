"""Property-based fuzzing of the importers and store reads: a valid result or a named error, fast.

Each example is a mutated file (see ``tests/fuzz_harness.py``) read by every loader of its kind.
Every call must return data that keeps the contract or raise ``MarketDataError`` (or a subclass)
in one bounded line, within the time limit. The full run (10,000 inputs) is
``benchmarks/fuzz_importers.py``; this one is small enough for every CI run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_harness import KINDS, MUTATORS, Case, Workdir, make_case, run_case

STEPS = st.lists(st.tuples(st.integers(0, len(MUTATORS) - 1), st.integers(0, 2**32 - 1)), min_size=1, max_size=3)
FUZZ = settings(max_examples=60, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Workdir:
    return Workdir(tmp_path_factory.mktemp("fuzz"))


def _assert_contract_or_named_error(case: Case, work: Workdir) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = run_case(case, work, time_limit=3.0)
    assert outcomes
    bad = [f"{o.call}: {o.status}: {o.detail}" for o in outcomes if o.status not in ("ok", "named")]
    assert not bad, f"{case.kind} {case.name}: {bad}"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "store"])
@FUZZ
@given(seed=st.integers(0, 2), steps=STEPS, container=st.integers(0, 3))
def test_mutated_files_give_valid_data_or_a_named_error(work, kind, seed, steps, container):
    _assert_contract_or_named_error(make_case(kind, seed, steps, container), work)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_damaged_stored_files_give_valid_frames_or_a_store_error(work, seed):
    _assert_contract_or_named_error(make_case("store", 0, [(0, seed)]), work)


def test_the_harness_flags_a_silent_acceptance(work, monkeypatch):
    """A loader that returns broken data is caught: the oracle is not vacuous."""
    import pandas as pd

    from liqlab.sources import csv_files

    broken = pd.DataFrame({"open": [1.0, -1.0], "high": [1.0, 1.0], "low": [1.0, 2.0], "close": [1.0, 1.0],
                           "volume": [1.0, np.inf]},
                          index=pd.DatetimeIndex(["2024-01-01", "2023-01-01"], tz="UTC"))
    monkeypatch.setattr(csv_files, "load_candles_file", lambda path: broken)
    outcomes = {o.call: o for o in run_case(make_case("market", 0, []), work)}
    assert outcomes["load_market_file"].status == "ok"
    assert outcomes["load_candles_file"].status == "silent"
    assert "price not positive" in outcomes["load_candles_file"].detail
    assert "unsorted times" in outcomes["load_candles_file"].detail
