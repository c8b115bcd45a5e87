"""Shared plumbing of the widget components (:class:`~liqlab.apps.dashboard.Dashboard`,
:class:`~liqlab.apps.cascade_lab.CascadeLab`): muting observers while code sets widget values, and
callbacks whose failures become one status sentence instead of a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, Callable

#: Widget state a visitor's page may set: the values of inputs, which option is chosen, which panel
#: is open, whether a player plays. Anything else (descriptions, options, layouts) is the app's own.
VISITOR_KEYS = frozenset({"value", "index", "selected_index", "playing"})
#: Longest text a visitor may send in one value (a symbol, a date), in characters.
MAX_TEXT = 200
#: Most items in one list value (a range slider's ends, a multiple selection), and largest message.
MAX_ITEMS = 64
MAX_STATE_BYTES = 8_192
#: Longest message shown to a visitor, in characters.
MAX_MESSAGE = 1_000

# an absolute path (POSIX, home-relative or Windows drive), not a symbol such as BTC/USDT:USDT
_PATH = re.compile(r"(?<![\w.:/\\-])(?:~|[A-Za-z]:)?[/\\](?:[^\s'\"`;,()<>\[\]]+)")


def _path_for_visitor(m: re.Match) -> str:
    """A file keeps its name only (``/srv/exports/btc.csv`` -> ``btc.csv``), a folder becomes
    "the data folder"; a sentence's full stop stays outside the path."""
    path = m.group(0)
    tail = path[len(path.rstrip(".")):]
    name = re.split(r"[/\\]", path.rstrip("."))[-1]
    keep = name and re.search(r"\.[A-Za-z0-9]{1,8}$", name)
    return (name if keep else "the data folder") + tail


def visitor_text(message: str) -> str:
    """``message`` as a visitor may see it: server paths replaced (a file by its name, a folder by
    "the data folder"), one line, at most
    :data:`MAX_MESSAGE` characters.

    Messages of the data layer name files and folders for the researcher at the server's terminal;
    a shared dashboard must not show them to whoever has the link.
    """
    text = " ".join(str(message).split())
    text = _PATH.sub(_path_for_visitor, text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return text


def sentence(exc: BaseException) -> str:
    """The first line of an exception message, ending with a full stop (at most 300 characters)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(text) > 300:
        text = text[:297] + "..."
    return text if text.endswith((".", "!", "?")) else text + "."


class StateRefused(ValueError):
    """A visitor's widget message that is refused before any work (wrong key, size or type)."""


def check_visitor_state(sync_data: Any) -> None:
    """Refuse a widget state update from the page unless it is small and plain.

    Only :data:`VISITOR_KEYS` may be set; text is at most :data:`MAX_TEXT` characters, lists at most
    :data:`MAX_ITEMS` items, numbers finite or plain, nesting shallow (a date picker's value is a
    small dict), and the whole update at most :data:`MAX_STATE_BYTES` as JSON. Checked before
    ipywidgets touches the message, so an oversized value is neither applied nor echoed back.

    Raises
    ------
    StateRefused
        Naming the first problem, in words a visitor can act on.
    """
    if not isinstance(sync_data, dict):
        raise StateRefused("the page sent a malformed update")
    for key, value in sync_data.items():
        if key not in VISITOR_KEYS:
            raise StateRefused("the page tried to change a setting that visitors cannot change")
        _check_value(value, depth=0)
    try:
        size = len(json.dumps(sync_data, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise StateRefused("the page sent a value that is not plain data") from exc
    if size > MAX_STATE_BYTES:
        raise StateRefused("the page sent a value that is far too large")


def _check_value(value: Any, depth: int) -> None:
    if depth > 3:
        raise StateRefused("the page sent a value nested too deeply")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise StateRefused("the page sent a number far out of range")
        return
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) > 1e300:
            raise StateRefused("the page sent a number far out of range")
        return
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise StateRefused(f"the page sent text longer than {MAX_TEXT} characters")
        return
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise StateRefused(f"the page sent a list of more than {MAX_ITEMS} items")
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise StateRefused(f"the page sent a value with more than {MAX_ITEMS} fields")
        for k, item in value.items():
            if not isinstance(k, str) or len(k) > MAX_TEXT:
                raise StateRefused("the page sent a malformed value")
            _check_value(item, depth + 1)
        return
    raise StateRefused("the page sent a value that is not plain data")


class ReportsRefusals:
    """Mixin for ipywidgets classes: a value from the page that is too large or of the wrong kind
    (:func:`check_visitor_state`), or that the widget's traits refuse, goes to :attr:`refused`
    (when set) instead of raising.

    ipywidgets applies a message from the page with ``set_state``; a refused value (a dropdown
    index out of range, text for a number) would raise inside the kernel's message handler: a
    traceback in the kernel's log, and nothing said to the visitor. This override of ``set_state``
    keeps the old value, puts it back on the page (``send_state``) and hands the error to
    :attr:`refused`. Size and kind are checked first, so an oversized value costs no work and is
    not echoed back to the page.
    """

    #: ``refused(widget, exc)``, called for a refused value; None raises as ipywidgets does
    refused: Callable[[Any, BaseException], None] | None = None

    def set_state(self, sync_data):
        try:
            check_visitor_state(sync_data)  # every widget of a component, containers included
            if self.refused is None:
                return super().set_state(sync_data)
            try:
                return super().set_state(sync_data)
            except Exception as exc:  # noqa: BLE001 - a visitor's value must never raise
                raise StateRefused(sentence(exc)) from exc
        except StateRefused as exc:
            if self.refused is not None:
                self.refused(self, exc)
            keys = [k for k in sync_data if k in self.keys] if isinstance(sync_data, dict) else []
            if keys:
                self.send_state(keys)  # the page shows the value the app kept
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
