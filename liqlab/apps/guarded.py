"""Shared plumbing of the widget components (:class:`~liqlab.apps.dashboard.Dashboard`,
:class:`~liqlab.apps.cascade_lab.CascadeLab`): muting observers while code sets widget values, and
callbacks whose failures become one status sentence instead of a traceback.
"""

from __future__ import annotations

import functools
from typing import Any, Callable


def sentence(exc: BaseException) -> str:
    """The first line of an exception message, ending with a full stop (at most 300 characters)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(text) > 300:
        text = text[:297] + "..."
    return text if text.endswith((".", "!", "?")) else text + "."


class ReportsRefusals:
    """Mixin for ipywidgets classes: a value from the page that the widget's traits refuse goes to
    :attr:`refused` (when set) instead of raising.

    ipywidgets applies a message from the page with ``set_state``; a refused value (a dropdown
    index out of range, text for a number) would raise inside the kernel's message handler: a
    traceback in the kernel's log, and nothing said to the visitor. This override of ``set_state``
    keeps the old value and hands the error to :attr:`refused`.
    """

    #: ``refused(widget, exc)``, called for a refused value; None raises as ipywidgets does
    refused: Callable[[Any, BaseException], None] | None = None

    def set_state(self, sync_data):
        try:
            return super().set_state(sync_data)
        except Exception as exc:  # noqa: BLE001 - a visitor's value must never raise
            if self.refused is None:
                raise
            self.refused(self, exc)
            return None


@functools.lru_cache(maxsize=None)
def reporting(cls: type) -> type:
    """``cls`` (an ipywidgets class) with :class:`ReportsRefusals` mixed in (one subclass per class)."""
    return type(cls.__name__, (ReportsRefusals, cls), {"__module__": __name__, "__doc__": cls.__doc__})


class _Widgets:
    """``ipywidgets`` with each widget class (``Dropdown``, ``FloatSlider``, ``Accordion`` ...) made a
    :func:`reporting` subclass; everything else (``jslink``, styles' helpers) as it is."""

    def __getattr__(self, name: str):
        import ipywidgets

        obj = getattr(ipywidgets, name)
        if isinstance(obj, type) and issubclass(obj, ipywidgets.Widget):
            return reporting(obj)
        return obj


#: use as ``from liqlab.apps.guarded import widgets as W``; then ``W.Dropdown(...)``
widgets = _Widgets()


class _Mute:
    def __init__(self, owner: "GuardedComponent"):
        self.owner = owner

    def __enter__(self):
        self.prev = self.owner._muted
        self.owner._muted = True

    def __exit__(self, *exc):
        self.owner._muted = self.prev
        return False


class GuardedComponent:
    """Mixin: ``_mute()`` and ``_guarded(fn, *args)``; subclasses define ``_set_status``.

    ``EXPECTED`` lists the errors that carry a message meant for the visitor; anything else is
    reported as unexpected, still without a traceback (a visitor can send any widget value).
    """

    EXPECTED: tuple[type[BaseException], ...] = (ValueError, KeyError)
    _muted: bool = False

    def _set_status(self, message: str, *, error: bool = False) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mute(self) -> _Mute:
        """Context in which observers ignore value changes made by the component itself."""
        return _Mute(self)

    def _own_widgets(self) -> list:
        """The component's input widgets: attributes named ``w_*`` (a widget or a list of them)."""
        out = []
        for name, value in vars(self).items():
            if name.startswith("w_"):
                out.extend(value if isinstance(value, (list, tuple)) else [value])
        return [w for w in out if hasattr(w, "set_state")]

    def _guard_widget_states(self) -> None:
        """Report values the page sends that a widget's own traits refuse, instead of raising.

        The component's widgets are made from :data:`widgets` (:class:`ReportsRefusals`
        subclasses); a refused value keeps the old one and the status line says what happened.
        """
        def refused(widget, exc: BaseException) -> None:
            name = getattr(widget, "description", "") or type(widget).__name__
            self._set_status(f"{name}: the value sent from the page was refused ({sentence(exc)})", error=True)

        for widget in self._own_widgets():
            if isinstance(widget, ReportsRefusals):
                widget.refused = refused

    def _guarded(self, fn: Callable[..., Any], *args) -> Any:
        """Run a callback; any failure becomes a status message, never a traceback."""
        try:
            return fn(*args)
        except self.EXPECTED as exc:
            self._set_status(sentence(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - visitors must never see a traceback
            self._set_status(f"unexpected {type(exc).__name__}: {sentence(exc)}", error=True)
        return None
