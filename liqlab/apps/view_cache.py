"""Views every visitor computes alike, computed once per machine and shared between kernels.

Each visitor of a published dashboard gets a kernel of their own, and each kernel starts by
computing the same default view of the bundled sample. :func:`shared_view` keeps such a view on
disk, keyed by everything it depends on (liqlab's version, the view's settings, the data's
identity), so that later kernels read it instead of computing it again: less CPU per visitor when
many arrive at once. Only immutable inputs belong in a key (the bundled sample, not a store that
grows). Files are written atomically; an unreadable or foreign entry is recomputed, never trusted
as the wrong view, and the folder keeps at most :data:`MAX_ENTRIES` files.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: Most views kept; the least recently written go first.
MAX_ENTRIES = 32
ENV_VAR = "LIQLAB_CACHE_DIR"


def cache_dir() -> Path:
    """``$LIQLAB_CACHE_DIR``, else the user cache folder that :mod:`platformdirs` names for liqlab,
    plus ``views``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser() / "views"
    import platformdirs

    return Path(platformdirs.user_cache_dir("liqlab", appauthor=False)) / "views"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of liqlab's own code: a view computed by other code is another view."""
    from importlib import resources

    root = Path(str(resources.files("liqlab")))
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def view_key(*parts: Any) -> str:
    """A stable key for a view from ``repr`` of its parts, liqlab's version and :func:`code_digest`."""
    import liqlab

    text = repr((liqlab.__version__, code_digest(), parts))
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:40]


def shared_view(key: str, compute: Callable[[], T], folder: Path | None = None) -> tuple[T, bool]:
    """``compute()``, or the value an earlier call with ``key`` stored; and whether it was read.

    A value that cannot be stored (a full or read-only disk) is still returned; nothing is lost
    but the sharing.
    """
    root = folder or cache_dir()
    path = root / f"{key}.pickle"
    try:
        stored_key, value = pickle.loads(path.read_bytes())
        if stored_key == key:
            return value, True
    except Exception:  # noqa: BLE001 - missing, partial or foreign: compute it
        pass
    value = compute()
    try:
        _write(root, path, pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL))
        _prune(root)
    except OSError:
        pass
    return value, False


def _write(root: Path, path: Path, data: bytes) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # readers see the old file or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prune(root: Path) -> None:
    entries = sorted(root.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)
