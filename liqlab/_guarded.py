"""Shared plumbing of the widget components (:class:`~liqlab.dashboard.Dashboard`,
:class:`~liqlab.cascade_lab.CascadeLab`): muting observers while code sets widget values, and
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

    def _guarded(self, fn: Callable[..., Any], *args) -> Any:
        """Run a callback; any failure becomes a status message, never a traceback."""
        try:
            return fn(*args)
        except self.EXPECTED as exc:
            self._set_status(sentence(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - visitors must never see a traceback
            self._set_status(f"unexpected {type(exc).__name__}: {sentence(exc)}", error=True)
        return None
