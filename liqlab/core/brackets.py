"""Maintenance-margin brackets and isolated-margin liquidation prices.

Exchanges set the maintenance-margin rate (MMR) by position notional, in brackets. Each bracket
``n`` has a notional ceiling ``floor_n``… ``cap_n``, a rate ``mmr_n``, a maximum leverage, and a
maintenance amount ``cum_n = cum_{n-1} + floor_n * (mmr_n - mmr_{n-1})`` that keeps the required
margin continuous across brackets. Tables are data (``liqlab/brackets/*.json``) and overridable.

Liquidation price for a position of notional ``N`` at entry ``EP`` and leverage ``L``
(isolated margin, the maintenance amount ``cum`` written as a fraction ``c = cum / N``):

======================  ===============================  ===============================
contract                long                             short
======================  ===============================  ===============================
linear (USDT-margined)  EP * (1 - 1/L - c) / (1 - MMR)   EP * (1 + 1/L + c) / (1 + MMR)
inverse (coin-margined) EP * (1 + MMR) / (1 + 1/L)       EP * (1 - MMR) / (1 - 1/L)
======================  ===============================  ===============================

In the first bracket ``c = 0`` and these are the textbook formulas. For inverse contracts the
maintenance amount is ignored (it is zero in the first bracket, where retail leverage lives).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np

Side = Literal["long", "short"]
Contract = Literal["linear", "inverse"]


class BracketError(ValueError):
    """A bracket table or a leverage/notional that the table does not allow."""


@dataclass(frozen=True)
class BracketTable:
    """A maintenance-margin bracket table.

    Parameters
    ----------
    caps
        Upper notional bound of each bracket (quote currency), strictly increasing; the last may be inf.
    mmr
        Maintenance-margin rate of each bracket (decimal, 0.004 = 0.4 %), non-decreasing, in [0, 1).
    max_leverage
        Highest leverage allowed in each bracket (non-increasing).
    name
        Label (``"binance:BTCUSDT:2021"``).
    """

    caps: tuple[float, ...]
    mmr: tuple[float, ...]
    max_leverage: tuple[float, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        n = len(self.caps)
        if n == 0 or len(self.mmr) != n or len(self.max_leverage) != n:
            raise BracketError(
                f"bracket table {self.name!r}: caps, mmr and max_leverage need the same non-zero length "
                f"(got {len(self.caps)}, {len(self.mmr)}, {len(self.max_leverage)})"
            )
        caps = np.asarray(self.caps, float)
        mmr = np.asarray(self.mmr, float)
        if np.any(caps <= 0) or np.any(np.diff(caps) <= 0):
            raise BracketError(f"bracket table {self.name!r}: caps must be positive and increasing")
        if np.any(mmr < 0) or np.any(mmr >= 1) or np.any(np.diff(mmr) < 0):
            raise BracketError(f"bracket table {self.name!r}: mmr must be non-decreasing within [0, 1)")
        if np.any(np.asarray(self.max_leverage, float) < 1):
            raise BracketError(f"bracket table {self.name!r}: max_leverage must be at least 1")

    @property
    def floors(self) -> np.ndarray:
        """Lower notional bound of each bracket."""
        return np.concatenate([[0.0], np.asarray(self.caps[:-1], float)])

    @property
    def cum(self) -> np.ndarray:
        """Maintenance amount of each bracket: ``cum_n = cum_{n-1} + floor_n * (mmr_n - mmr_{n-1})``."""
        mmr = np.asarray(self.mmr, float)
        steps = self.floors * np.diff(np.concatenate([[mmr[0]], mmr]))
        return np.cumsum(steps)

    def bracket_index(self, notional) -> np.ndarray:
        """Index of the bracket holding each notional (``notional <= cap``)."""
        n = np.asarray(notional, float)
        if np.any(~np.isfinite(n)) or np.any(n <= 0):
            raise BracketError("position notional must be positive and finite")
        idx = np.searchsorted(np.asarray(self.caps, float), n, side="left")
        if np.any(idx >= len(self.caps)):
            raise BracketError(
                f"notional {float(np.max(n)):,.0f} exceeds the last bracket of {self.name!r} "
                f"({self.caps[-1]:,.0f})"
            )
        return idx

    def lookup(self, notional) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(mmr, cum, max_leverage)`` for each notional."""
        idx = self.bracket_index(notional)
        return (
            np.asarray(self.mmr, float)[idx],
            self.cum[idx],
            np.asarray(self.max_leverage, float)[idx],
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "caps": list(self.caps), "mmr": list(self.mmr),
                "max_leverage": list(self.max_leverage)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "BracketTable":
        try:
            caps = tuple(float("inf") if c in (None, "inf") else float(c) for c in d["caps"])
            return cls(caps=caps, mmr=tuple(float(x) for x in d["mmr"]),
                       max_leverage=tuple(float(x) for x in d["max_leverage"]),
                       name=str(d.get("name", "custom")))
        except KeyError as exc:
            raise BracketError(f"bracket table lacks the field {exc.args[0]!r}") from exc

    @classmethod
    def from_json(cls, path: str | Path) -> "BracketTable":
        """Read a table written as ``{"name", "caps", "mmr", "max_leverage"}`` JSON."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as exc:
            raise BracketError(f"{path}: not valid JSON ({exc})") from exc

    @classmethod
    def flat(cls, mmr: float, max_leverage: float = 125.0) -> "BracketTable":
        """A single bracket with one rate for every notional (useful for teaching and tests)."""
        return cls(caps=(float("inf"),), mmr=(float(mmr),), max_leverage=(float(max_leverage),),
                   name=f"flat:{mmr:g}")


@lru_cache(maxsize=None)
def bundled_table(name: str) -> BracketTable:
    """The bracket table shipped with liqlab under ``name`` (see :func:`available_tables`).

    Raises
    ------
    FileNotFoundError
        If no table of that name ships with the package.
    """
    text = resources.files("liqlab.core").joinpath("bracket_tables", f"{name}.json").read_text()
    return BracketTable.from_dict(json.loads(text))


def available_tables() -> list[str]:
    """Names of the bundled bracket tables."""
    return list(_table_names())


@lru_cache(maxsize=1)
def _table_names() -> tuple[str, ...]:
    # the bundled folder is part of the installed package: list it once per process
    folder = resources.files("liqlab.core").joinpath("bracket_tables")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


def default_brackets(exchange: str = "binance", symbol: str = "BTCUSDT") -> BracketTable:
    """The bundled table for an exchange/symbol, falling back to Binance BTCUSDT (2021).

    Matching is loose: ``binanceusdm`` and ``BTC/USDT:USDT`` find ``binance_btcusdt``.
    """
    ex = exchange.lower().replace("usdm", "").replace("coinm", "")
    sym = "".join(ch for ch in symbol.split(":")[0].lower() if ch.isalnum())
    names = _table_names()
    for candidate in (f"{ex}_{sym}", f"{ex}_default"):
        if candidate in names:
            return bundled_table(candidate)
    return bundled_table("binance_btcusdt")


def liquidation_price(
    entry,
    leverage,
    side: Side,
    *,
    mmr=0.004,
    cum=0.0,
    notional=None,
    contract: Contract = "linear",
) -> np.ndarray:
    """Isolated-margin liquidation price.

    Parameters
    ----------
    entry
        Entry price(s).
    leverage
        Leverage(s), > 1 for longs on linear contracts to have a finite level (1x long never liquidates).
    side
        ``"long"`` or ``"short"``.
    mmr
        Maintenance-margin rate(s) (decimal).
    cum
        Maintenance amount(s) of the bracket (quote currency, linear contracts); needs ``notional``.
    notional
        Position notional(s), used only to turn ``cum`` into a fraction.
    contract
        ``"linear"`` (USDT-margined) or ``"inverse"`` (coin-margined).

    Returns
    -------
    numpy.ndarray
        Liquidation price(s); 0 where a long can never be liquidated, ``inf`` where a short cannot.

    Examples
    --------
    >>> float(liquidation_price(100.0, 100, "long", mmr=0.004))  # 0.60 % below, not 1 %
    99.39759036144578
    """
    ep = np.asarray(entry, float)
    lev = np.asarray(leverage, float)
    m = np.asarray(mmr, float)
    if np.any(lev < 1):
        raise BracketError("leverage must be at least 1")
    if np.any((m < 0) | (m >= 1)):
        raise BracketError("mmr must lie in [0, 1)")
    c = np.zeros_like(m) if notional is None else np.asarray(cum, float) / np.asarray(notional, float)
    if notional is None and np.any(np.asarray(cum, float) != 0):
        raise BracketError("cum needs notional to be converted to a fraction of the position")
    if side == "long":
        if contract == "linear":
            out = ep * (1.0 - 1.0 / lev - c) / (1.0 - m)
        elif contract == "inverse":
            out = ep * (1.0 + m) / (1.0 + 1.0 / lev)
        else:
            raise BracketError(f"contract must be 'linear' or 'inverse', not {contract!r}")
        return np.maximum(out, 0.0)
    if side == "short":
        if contract == "linear":
            return ep * (1.0 + 1.0 / lev + c) / (1.0 + m)
        if contract == "inverse":
            with np.errstate(divide="ignore"):
                denom = 1.0 - 1.0 / lev
                return np.where(denom > 0, ep * (1.0 - m) / np.where(denom > 0, denom, 1.0), np.inf)
        raise BracketError(f"contract must be 'linear' or 'inverse', not {contract!r}")
    raise BracketError(f"side must be 'long' or 'short', not {side!r}")


def level_factors(
    leverages: Sequence[float],
    side: Side,
    *,
    brackets: BracketTable,
    notional: float,
    contract: Contract = "linear",
) -> np.ndarray:
    """Liquidation price as a multiple of entry, per leverage, for a position of ``notional``.

    Raises :class:`BracketError` when a leverage exceeds what the bracket of ``notional`` allows.
    """
    lev = np.asarray(leverages, float)
    mmr, cum, max_lev = brackets.lookup(np.full(lev.shape, float(notional)))
    too_high = lev > max_lev + 1e-12
    if np.any(too_high):
        raise BracketError(
            f"leverage {lev[too_high][0]:g}x is above the {max_lev[too_high][0]:g}x that "
            f"{brackets.name!r} allows for a {notional:,.0f} position"
        )
    return liquidation_price(1.0, lev, side, mmr=mmr, cum=cum, notional=np.full(lev.shape, float(notional)),
                             contract=contract)
