"""A tiny PNG encoder (8-bit RGBA) on ``zlib`` and ``struct`` only.

The dashboard sends the heatmap to the browser as one image instead of hundreds of thousands of
cells; this module turns an ``(height, width, 4)`` ``uint8`` array into PNG bytes (or a
``data:`` URI) without depending on an imaging library.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgba: np.ndarray, *, level: int = 6) -> bytes:
    """Encode an RGBA image as PNG.

    A row that repeats the row above uses the "Up" filter (all zeros); any other row uses "Sub"
    (difference to the pixel on its left): the heatmap's columns are repeated across several
    pixels and its rows often repeated, so either filter leaves mostly zeros, which deflate
    compresses quickly even at a low level.

    Parameters
    ----------
    rgba
        ``uint8`` array of shape ``(height, width, 4)``; row 0 is the top of the image.
    level
        ``zlib`` compression level, 0-9.

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        If the array is not ``(h, w, 4)`` ``uint8`` with ``h, w >= 1``.
    """
    a = np.asarray(rgba)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 4 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected a (height, width, 4) uint8 array, got {a.dtype} {a.shape}")
    h, w, _ = a.shape
    rows = np.ascontiguousarray(a).reshape(h, w * 4)
    repeats = np.zeros(h, dtype=bool)
    repeats[1:] = (rows[1:] == rows[:-1]).all(axis=1)
    # Sub filter: byte minus the byte one pixel (4 bytes) to the left, modulo 256 (uint8 wraps)
    filtered = rows.copy()
    filtered[:, 4:] = rows[:, 4:] - rows[:, :-4]
    filtered[repeats] = 0  # Up filter on a repeated row: the difference to the row above
    raw = np.empty((h, w * 4 + 1), dtype=np.uint8)
    raw[:, 0] = np.where(repeats, 2, 1)  # filter types "Up" and "Sub"
    raw[:, 1:] = filtered
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit depth, colour type 6 (RGBA)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
            + _chunk(b"IEND", b""))


def png_data_uri(rgba: np.ndarray, *, level: int = 6) -> str:
    """The PNG of ``rgba`` as a ``data:image/png;base64,...`` URI (for ``layout.images``)."""
    return "data:image/png;base64," + base64.b64encode(encode_png(rgba, level=level)).decode("ascii")
