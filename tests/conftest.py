"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real third-party market files (``../shared/data/real``); skip when absent."""
    if not (REAL_DATA / "btcusdt_1h_market.csv").exists():
        pytest.skip(f"real market data not found at {REAL_DATA} (only present on development machines)")
    return REAL_DATA


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """Small hand-written input files kept in the repository."""
    return FIXTURES


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and other files people look at after a run (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
