"""numba, switchable: ``LIQLAB_DISABLE_NUMBA=1`` runs every kernel as plain Python.

Kernels are written once, as plain Python over NumPy arrays, and compiled with :func:`njit`.
The plain function stays reachable as ``kernel.py_func`` so tests can hold the two equal.
"""

from __future__ import annotations

import os
from typing import Any, Callable

NUMBA_DISABLED = os.environ.get("LIQLAB_DISABLE_NUMBA", "").strip() not in ("", "0", "false", "no")


def njit(*args: Any, **kwargs: Any) -> Callable:
    """``numba.njit(cache=True)`` unless numba is disabled or missing; then the function itself.

    Either way the returned callable has ``py_func``, the plain-Python twin.
    """
    kwargs.setdefault("cache", True)

    def wrap(func: Callable) -> Callable:
        if not NUMBA_DISABLED:
            try:
                import numba
            except ImportError:  # pragma: no cover - numba is a dependency
                pass
            else:
                return numba.njit(**kwargs)(func)
        func.py_func = func  # type: ignore[attr-defined]
        return func

    if len(args) == 1 and callable(args[0]) and not kwargs.get("_no_func"):
        return wrap(args[0])
    return wrap
