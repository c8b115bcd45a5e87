"""Model settings as plain data: the JSON files that ``liqlab predict --params``, ``liqlab validate
--params`` and a ``liqlab scan --grid`` entry share.

A settings file is one JSON object whose keys are :class:`~liqlab.core.engine.ModelParams` fields::

    {"mix": "degen", "turnover": 0.03, "entry": "typical", "half_life_hours": 12}

``mix`` is a preset name or a mix object (``{"leverages": [...], "long": [...], "short": [...]}``).
A grid file is either an object of lists (every combination is tried, in order)::

    {"mix": ["balanced", "degen"], "turnover": [0.0, 0.1]}

or a list of settings objects, tried as written. The settings found best by a scan are written in the
same form, so one of its rows can be reproduced on a single market file.
"""

from __future__ import annotations

import json
from dataclasses import fields
from itertools import product
from pathlib import Path
from typing import Any, Mapping, Sequence

from liqlab.core.engine import EngineError, ModelParams

#: Fields a settings file may not set: the bracket table is chosen per exchange and symbol.
NOT_SETTABLE = ("brackets",)


class SettingsError(EngineError):
    """A settings or grid file (or mapping) that does not describe model settings."""


def setting_names() -> tuple[str, ...]:
    """The :class:`ModelParams` fields a settings mapping may hold."""
    return tuple(f.name for f in fields(ModelParams) if f.name not in NOT_SETTABLE)


def params_from_settings(settings: Mapping[str, Any], base: ModelParams | None = None) -> ModelParams:
    """Model parameters from a settings mapping, on top of ``base`` (default :class:`ModelParams`).

    Parameters
    ----------
    settings
        ``{field: value}`` with :class:`ModelParams` field names; lists become tuples.
    base
        Settings the mapping changes.

    Returns
    -------
    ModelParams

    Raises
    ------
    SettingsError
        Unknown field names, or values the model refuses (the model's sentence is kept).
    """
    if not isinstance(settings, Mapping):
        raise SettingsError(f"model settings must be a JSON object of field: value, not {type(settings).__name__}")
    allowed = setting_names()
    unknown = sorted(k for k in settings if k not in allowed)
    if unknown:
        raise SettingsError(f"unknown model setting(s) {', '.join(map(repr, unknown))}; "
                            f"choose from {', '.join(allowed)}")
    changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items()}
    try:
        return (base or ModelParams()).replace(**changes)
    except SettingsError:
        raise
    except (EngineError, TypeError, ValueError) as exc:
        raise SettingsError(f"invalid model settings: {exc}") from exc


def settings_of(params: ModelParams, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON-ready settings of ``params`` (all settable fields, or only ``names``)."""
    out: dict[str, Any] = {}
    for name in names or setting_names():
        value = getattr(params, name)
        if name == "mix":
            value = value.name if value.name and value.name != "custom" else value.to_dict()
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read the {what} file {p} ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"the {what} file {p} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def read_settings(path: str | Path) -> dict[str, Any]:
    """Read a settings file (one JSON object of :class:`ModelParams` fields) and check it."""
    data = _read_json(path, "settings")
    if not isinstance(data, dict):
        raise SettingsError(f"the settings file {path} must hold one JSON object of field: value")
    params_from_settings(data)  # validate now, with the file named in the error
    return data


def expand_grid(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The settings a grid stands for, in order.

    A mapping of lists gives every combination (last key varying fastest); a list of mappings is
    taken as written. Each entry is checked with :func:`params_from_settings`.

    Raises
    ------
    SettingsError
        An empty grid, a value that is not a list, or an entry the model refuses.
    """
    if isinstance(grid, Mapping):
        for key, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                raise SettingsError(f"grid setting {key!r} needs a non-empty list of values, got {values!r}")
        entries = [dict(zip(grid.keys(), combo)) for combo in product(*grid.values())]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        entries = [dict(e) if isinstance(e, Mapping) else e for e in grid]
    else:
        raise SettingsError("a grid is a JSON object of lists or a list of settings objects")
    if not entries:
        raise SettingsError("the grid is empty; give at least one setting")
    for i, entry in enumerate(entries):
        try:
            params_from_settings(entry)
        except SettingsError as exc:
            raise SettingsError(f"grid entry {i}: {exc}") from None
    return entries


def read_grid(path: str | Path) -> list[dict[str, Any]]:
    """Read a grid file (see the module docstring) and expand it with :func:`expand_grid`."""
    data = _read_json(path, "grid")
    try:
        return expand_grid(data)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
