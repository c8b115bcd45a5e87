"""Shared plumbing of the widget components (:class:`~liqlab.apps.dashboard.Dashboard`,
:class:`~liqlab.apps.cascade_lab.CascadeLab`): muting observers while code sets widget values, and
callbacks whose failures become one status sentence instead of a traceback.
"""

from __future__ import annotations

from typing import Any, Callable


def sentence(exc: BaseException) -> str:
    """The first line of an exception message, ending with a full stop (at most 300 characters)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(text) > 300:
        text = text[:297] + "..."
    return text if text.endswith((".", "!", "?")) else text + "."


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

        ipywidgets applies a browser message with ``set_state``; a refused value (a dropdown index
        out of range, a string for a number) would raise inside the kernel's message handler,
        which prints a traceback onto the kernel's output channel. The wrapper keeps the old value
        and says what happened in the status line.
        """
        for widget in self._own_widgets():
            original = widget.set_state

            def set_state(sync_data, _original=original, _widget=widget):
                try:
                    _original(sync_data)
                except Exception as exc:  # noqa: BLE001 - a visitor's value must never raise
                    name = getattr(_widget, "description", "") or type(_widget).__name__
                    self._set_status(f"{name}: the value sent from the page was refused ({sentence(exc)})",
                                     error=True)

            widget.set_state = set_state

    def _guarded(self, fn: Callable[..., Any], *args) -> Any:
        """Run a callback; any failure becomes a status message, never a traceback."""
        try:
            return fn(*args)
        except self.EXPECTED as exc:
            self._set_status(sentence(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - visitors must never see a traceback
            self._set_status(f"unexpected {type(exc).__name__}: {sentence(exc)}", error=True)
        return None
