"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Each helper writes a temporary file in the destination folder (same file system), flushes and
``fsync``s it, ``os.replace``s it over the destination and then ``fsync``s the folder so the
rename itself survives a crash. A writer killed at any moment leaves at worst a stray temporary
file named ``.tmp-<name>.<random>``; :func:`remove_stale_temps` deletes those (call it only while
holding the file's write lock, or when no writer can be running).

Standard library only, so every layer of the package may use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["TMP_PREFIX", "atomic_write", "atomic_write_bytes", "atomic_write_parquet", "atomic_write_text",
           "remove_stale_temps"]

#: Prefix of the temporary files written next to their destination.
TMP_PREFIX = ".tmp-"


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder`` (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then move it over ``path`` atomically.

    Parameters
    ----------
    path
        Destination; its folder is created when missing.
    write
        Writes the whole content to the open binary file it is given.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_parquet(path: str | os.PathLike, table: Any, **options: Any) -> Path:
    """Write a ``pyarrow.Table`` to ``path`` as Parquet, atomically.

    Parameters
    ----------
    path
        Destination ``.parquet`` file.
    table
        The ``pyarrow.Table`` to write.
    **options
        Passed to ``pyarrow.parquet.write_table`` (e.g. ``compression="zstd"``).
    """
    import pyarrow.parquet as pq

    return atomic_write(path, lambda fh: pq.write_table(table, fh, **options))


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete temporary files left next to ``path`` by writers that died; return how many.

    Only safe while holding ``path``'s write lock (or with no writer running).
    """
    path = Path(path)
    removed = 0
    for tmp in path.parent.glob(f"{TMP_PREFIX}{path.name}.*"):
        try:
            tmp.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
