"""Leverage mixes: how newly opened notional spreads over leverage tiers, per side.

A :class:`LeverageMix` is a set of leverage tiers (e.g. 5x, 10x, 25x, 50x, 100x) with a weight per
tier for longs and for shorts. Weights are normalised to sum to one per side; a side whose weights
are all zero opens no leveraged positions. Named presets cover common assumptions and a mix can be
read from or written to JSON (``{"leverages": [...], "long": [...], "short": [...]}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


class LeverageMixError(ValueError):
    """An invalid leverage mix (bad tiers or weights, unknown preset, malformed file)."""


# Weights per tier; both sides share them unless a preset says otherwise.
_PRESETS: dict[str, dict] = {
    "balanced": {
        "leverages": [5, 10, 25, 50, 100, 125],
        "long": [0.10, 0.20, 0.20, 0.20, 0.15, 0.15],
        "description": "10-50x with a tail to the 125x exchange maximum; the default.",
    },
    "conservative": {
        "leverages": [2, 3, 5, 10, 20],
        "long": [0.15, 0.25, 0.30, 0.20, 0.10],
        "description": "Mostly 3-10x: swing traders and funds.",
    },
    "retail": {
        "leverages": [10, 20, 25, 50, 100, 125],
        "long": [0.20, 0.20, 0.20, 0.15, 0.15, 0.10],
        "description": "Exchange-app retail: 10-100x.",
    },
    "degen": {
        "leverages": [25, 50, 75, 100, 125],
        "long": [0.15, 0.25, 0.20, 0.25, 0.15],
        "description": "High leverage only: levels hug the price.",
    },
    "uniform": {
        "leverages": [5, 10, 25, 50, 100],
        "long": [0.2, 0.2, 0.2, 0.2, 0.2],
        "description": "Equal weight on each tier.",
    },
    "long-heavy": {
        "leverages": [5, 10, 25, 50, 100],
        "long": [0.10, 0.25, 0.30, 0.20, 0.15],
        "short": [0.35, 0.35, 0.20, 0.07, 0.03],
        "description": "Longs take more leverage than shorts (bull-market crowding).",
    },
}


@dataclass(frozen=True)
class LeverageMix:
    """Weights over leverage tiers, per side.

    Parameters
    ----------
    leverages
        Leverage of each tier, each > 1 and unique.
    long, short
        Non-negative weights per tier; normalised to sum to one (all zero: that side opens nothing).
    name
        Label shown in figures.
    """

    leverages: tuple[float, ...]
    long: tuple[float, ...]
    short: tuple[float, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        lev = np.asarray(self.leverages, float)
        if lev.ndim != 1 or lev.size == 0:
            raise LeverageMixError("a leverage mix needs at least one tier")
        if lev.size > 32:
            raise LeverageMixError(f"at most 32 leverage tiers are supported, got {lev.size}")
        if not np.all(np.isfinite(lev)) or np.any(lev <= 1) or np.any(lev > 1000):
            raise LeverageMixError(f"leverages must lie in (1, 1000], got {list(self.leverages)}")
        if len(set(lev.tolist())) != lev.size:
            raise LeverageMixError(f"leverages must be unique, got {list(self.leverages)}")
        for side in ("long", "short"):
            w = np.asarray(getattr(self, side), float)
            if w.shape != lev.shape:
                raise LeverageMixError(
                    f"{side} weights need one value per tier ({lev.size}), got {w.size}"
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise LeverageMixError(f"{side} weights must be finite and non-negative, got {list(w)}")
            total = w.sum()
            normalised = tuple((w / total).tolist()) if total > 0 else tuple(w.tolist())
            object.__setattr__(self, side, normalised)
        object.__setattr__(self, "leverages", tuple(lev.tolist()))

    @property
    def n_tiers(self) -> int:
        return len(self.leverages)

    def weights(self, side: str) -> np.ndarray:
        """Normalised weights of ``side`` (``"long"`` or ``"short"``) as an array."""
        if side not in ("long", "short"):
            raise LeverageMixError(f"side must be 'long' or 'short', not {side!r}")
        return np.asarray(getattr(self, side), float)

    @classmethod
    def preset(cls, name: str) -> "LeverageMix":
        """A named preset; see :func:`preset_names`."""
        try:
            p = _PRESETS[name]
        except KeyError:
            raise LeverageMixError(
                f"unknown leverage preset {name!r}; choose one of {preset_names()}"
            ) from None
        return cls(leverages=tuple(p["leverages"]), long=tuple(p["long"]),
                   short=tuple(p.get("short", p["long"])), name=name)

    @classmethod
    def from_dict(cls, d: Mapping) -> "LeverageMix":
        """A mix from ``{"leverages": [...], "long": [...], "short": [...], "name": ...}`` or ``{"preset": name}``.

        Raises
        ------
        LeverageMixError
            When ``d`` is not such a mapping of number lists.
        """
        if not isinstance(d, Mapping):
            raise LeverageMixError(
                f"a leverage mix is a JSON object with 'leverages' and 'long' lists, not a {type(d).__name__}"
            )
        if "preset" in d:
            return cls.preset(str(d["preset"]))
        try:
            lev = d["leverages"]
            long = d["long"]
        except KeyError as exc:
            raise LeverageMixError(f"a leverage mix needs the field {exc.args[0]!r}") from exc
        fields = {"leverages": lev, "long": long, "short": d.get("short", long)}
        for key, value in fields.items():
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise LeverageMixError(f"the leverage mix field {key!r} must be a list of numbers")
        return cls(leverages=tuple(lev), long=tuple(long), short=tuple(fields["short"]),
                   name=str(d.get("name", "custom")))

    @classmethod
    def from_json(cls, path: str | Path) -> "LeverageMix":
        """Read a mix from JSON (``leverages``, ``long``, optional ``short`` and ``name``).

        Raises
        ------
        LeverageMixError
            An unreadable file, text that is not UTF-8 JSON, or JSON of the wrong shape.
        """
        try:
            text = Path(path).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise LeverageMixError(
                f"{path}: cannot read a leverage mix ({exc.strerror or type(exc).__name__}); give a JSON file"
            ) from None
        except UnicodeDecodeError:
            raise LeverageMixError(f"{path}: cannot read a leverage mix: the file must be UTF-8 JSON text") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LeverageMixError(f"{path}: cannot read a leverage mix: not valid JSON ({str(exc)[:80]})") from None
        try:
            return cls.from_dict(data)
        except LeverageMixError as exc:
            raise LeverageMixError(f"{path}: cannot read a leverage mix: {exc}") from None

    @classmethod
    def resolve(cls, spec: "LeverageMix | str | Mapping | None") -> "LeverageMix":
        """Accept a mix, a preset name, a path to a JSON file, a dict, or None (the default preset)."""
        if spec is None:
            return cls.preset(DEFAULT_PRESET)
        if isinstance(spec, LeverageMix):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        if isinstance(spec, (str, Path)):
            s = str(spec)
            if s in _PRESETS:
                return cls.preset(s)
            if s.endswith(".json") or Path(s).exists():
                return cls.from_json(s)
            return cls.preset(s)  # raises with the list of presets
        raise LeverageMixError(f"cannot make a leverage mix from {type(spec).__name__}")

    def to_dict(self) -> dict:
        return {"name": self.name, "leverages": list(self.leverages), "long": list(self.long),
                "short": list(self.short)}

    def with_weights(self, side: str, weights: Sequence[float]) -> "LeverageMix":
        """A copy with one side's weights replaced."""
        d = self.to_dict()
        d[side] = list(weights)
        d["name"] = "custom"
        return LeverageMix.from_dict(d)


DEFAULT_PRESET = "balanced"


def preset_names() -> list[str]:
    """Names of the built-in leverage presets."""
    return list(_PRESETS)


def preset_description(name: str) -> str:
    """One-line description of a preset."""
    return _PRESETS[name]["description"]
