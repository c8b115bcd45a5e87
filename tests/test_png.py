"""The PNG encoder: decode its output back with zlib and compare every pixel."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest

from liqlab.png import encode_png, png_data_uri


def decode_png(data: bytes) -> np.ndarray:
    """Minimal decoder for 8-bit RGBA PNGs with filters None/Sub/Up; checks every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, comp, filt, interlace) == (8, 6, 0, 0, 0)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * 4
    assert len(raw) == h * (stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for r in range(h):
        ftype = raw[r * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1).copy()
        if ftype == 1:
            for i in range(4, stride):
                line[i] = (int(line[i]) + int(line[i - 4])) & 0xFF
        elif ftype == 2:
            line = line + prev  # wraps modulo 256
        else:
            assert ftype == 0, f"unexpected filter {ftype}"
        out[r] = line
        prev = line
    return out.reshape(h, w, 4)


def test_round_trip_is_exact():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(13, 29, 4), dtype=np.uint8)
    img[5] = img[4]  # repeated rows (the Up filter gives zeros)
    img[:, 3, 3] = 0  # fully transparent column
    np.testing.assert_array_equal(decode_png(encode_png(img)), img)


def test_repeated_rows_use_up_and_others_sub():
    img = np.zeros((4, 6, 4), dtype=np.uint8)
    img[0, :3] = (10, 20, 30, 255)
    img[1] = img[0]
    img[2, 5] = (1, 2, 3, 4)
    img[3] = img[2]
    data = encode_png(img, level=0)
    raw = zlib.decompress(data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8])
    stride = 6 * 4 + 1
    assert [raw[r * stride] for r in range(4)] == [1, 2, 1, 2]
    # Sub: the first pixel as is, then differences; a repeated row is all zeros
    assert list(raw[1:9]) == [10, 20, 30, 255, 0, 0, 0, 0]
    assert not any(raw[stride + 1:2 * stride])
    np.testing.assert_array_equal(decode_png(data), img)


def test_known_pixels_and_single_pixel():
    img = np.zeros((2, 3, 4), dtype=np.uint8)
    img[0, 0] = (255, 0, 0, 255)
    img[1, 2] = (68, 1, 84, 128)
    out = decode_png(encode_png(img, level=1))
    assert tuple(out[0, 0]) == (255, 0, 0, 255) and tuple(out[1, 2]) == (68, 1, 84, 128)
    assert tuple(out[0, 1]) == (0, 0, 0, 0)
    one = np.array([[[1, 2, 3, 4]]], dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(one)), one)


def test_data_uri_wraps_the_png():
    img = np.full((4, 4, 4), 200, dtype=np.uint8)
    uri = png_data_uri(img)
    assert uri.startswith("data:image/png;base64,")
    np.testing.assert_array_equal(decode_png(base64.b64decode(uri.split(",", 1)[1])), img)


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 4), np.float32),
                                 np.zeros((0, 2, 4), np.uint8)])
def test_rejects_wrong_arrays(bad):
    with pytest.raises(ValueError):
        encode_png(bad)
