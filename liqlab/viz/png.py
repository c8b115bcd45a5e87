"""A tiny PNG encoder (8-bit RGBA or palette) on ``zlib`` and ``struct`` only.

The dashboard sends the heatmap to the browser as one image instead of hundreds of thousands of
cells; this module turns an ``(height, width, 4)`` ``uint8`` RGBA array, or an ``(height,
width)`` array of indices into a palette of at most 256 RGBA colours, into PNG bytes (or a
``data:`` URI) without depending on an imaging library. A palette image is a quarter of the
bytes to filter and compress, which is most of the encoding time.
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


def _check(pixels: np.ndarray, palette: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(pixels)
    if palette is None:
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 4 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"expected a (height, width, 4) uint8 array, got {a.dtype} {a.shape}")
        return a, None
    pal = np.asarray(palette)
    if pal.dtype != np.uint8 or pal.ndim != 2 or pal.shape[1] != 4 or not 1 <= pal.shape[0] <= 256:
        raise ValueError(f"expected a palette of 1 to 256 RGBA uint8 colours, got {pal.dtype} {pal.shape}")
    if a.dtype != np.uint8 or a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected a (height, width) uint8 array of palette indices, got {a.dtype} {a.shape}")
    if int(a.max()) >= pal.shape[0]:
        raise ValueError(f"palette index {int(a.max())} is beyond the palette's {pal.shape[0]} colours")
    return a, pal


def encode_png(pixels: np.ndarray, *, palette: np.ndarray | None = None, level: int = 6) -> bytes:
    """Encode an RGBA image, or a palette image, as PNG.

    A row that repeats the row above uses the "Up" filter (all zeros); any other row uses "Sub"
    (difference to the pixel on its left): the heatmap's columns are repeated across several
    pixels and its rows often repeated, so either filter leaves mostly zeros, which deflate
    compresses quickly even at a low level.

    Parameters
    ----------
    pixels
        Without ``palette``: ``uint8`` RGBA array of shape ``(height, width, 4)``. With it:
        ``uint8`` palette indices of shape ``(height, width)``. Row 0 is the top of the image.
    palette
        ``(n, 4)`` ``uint8`` RGBA colours, ``1 <= n <= 256`` (PNG colour type 3, with the alpha
        values in a ``tRNS`` chunk).
    level
        ``zlib`` compression level, 0-9.

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        If the arrays do not have those shapes and types, or an index is outside the palette.
    """
    a, pal = _check(pixels, palette)
    h, w = a.shape[:2]
    bpp = 4 if pal is None else 1  # bytes per pixel, the Sub filter's distance
    rows = np.ascontiguousarray(a).reshape(h, w * bpp)
    repeats = np.zeros(h, dtype=bool)
    repeats[1:] = (rows[1:] == rows[:-1]).all(axis=1)
    # Sub filter: byte minus the byte one pixel to the left, modulo 256 (uint8 wraps)
    filtered = rows.copy()
    filtered[:, bpp:] = rows[:, bpp:] - rows[:, :-bpp]
    filtered[repeats] = 0  # Up filter on a repeated row: the difference to the row above
    raw = np.empty((h, w * bpp + 1), dtype=np.uint8)
    raw[:, 0] = np.where(repeats, 2, 1)  # filter types "Up" and "Sub"
    raw[:, 1:] = filtered
    colour_type = 6 if pal is None else 3  # RGBA, or palette indices
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))]
    if pal is not None:
        chunks.append(_chunk(b"PLTE", pal[:, :3].tobytes()))
        see_through = np.flatnonzero(pal[:, 3] != 255)  # alphas up to the last of these; opaque after it
        if see_through.size:
            chunks.append(_chunk(b"tRNS", pal[:see_through[-1] + 1, 3].tobytes()))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)))
    return _SIGNATURE + b"".join(chunks) + _chunk(b"IEND", b"")


def png_data_uri(pixels: np.ndarray, *, palette: np.ndarray | None = None, level: int = 6) -> str:
    """The PNG of ``pixels`` (see :func:`encode_png`) as a ``data:image/png;base64,...`` URI."""
    png = encode_png(pixels, palette=palette, level=level)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
