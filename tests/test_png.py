"""The PNG encoder: decode its output back with zlib and compare every pixel."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest

from liqlab.viz.png import encode_png, png_data_uri


def decode_png(data: bytes) -> np.ndarray:
    """Minimal decoder for 8-bit RGBA and palette PNGs with filters None/Sub/Up; checks every CRC.

    Returns RGBA pixels ``(h, w, 4)`` either way (palette images through their PLTE and tRNS).
    """
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
    assert (depth, comp, filt, interlace) == (8, 0, 0, 0) and colour in (3, 6)
    bpp = 4 if colour == 6 else 1
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * bpp
    assert len(raw) == h * (stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for r in range(h):
        ftype = raw[r * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1).copy()
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (int(line[i]) + int(line[i - bpp])) & 0xFF
        elif ftype == 2:
            line = line + prev  # wraps modulo 256
        else:
            assert ftype == 0, f"unexpected filter {ftype}"
        out[r] = line
        prev = line
    if colour == 6:
        return out.reshape(h, w, 4)
    body = dict(chunks)
    plte = np.frombuffer(body[b"PLTE"], np.uint8).reshape(-1, 3)
    alpha = np.full(len(plte), 255, np.uint8)
    trns = np.frombuffer(body.get(b"tRNS", b""), np.uint8)
    alpha[:trns.size] = trns
    palette = np.column_stack([plte, alpha])
    assert out.max() < len(palette), "index beyond the palette"
    return palette[out]


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


def test_palette_round_trip_is_exact():
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, size=(200, 4), dtype=np.uint8)
    palette[-5:, 3] = 255  # opaque entries at the end: left out of tRNS
    idx = rng.integers(0, 200, size=(11, 37), dtype=np.uint8)
    idx[4] = idx[3]
    np.testing.assert_array_equal(decode_png(encode_png(idx, palette=palette)), palette[idx])


def test_palette_chunks_and_filters():
    palette = np.array([[10, 20, 30, 255], [0, 0, 0, 0], [1, 2, 3, 255]], np.uint8)
    idx = np.array([[0, 0, 2], [0, 0, 2], [1, 2, 1]], np.uint8)
    data = encode_png(idx, palette=palette, level=0)
    assert data[data.index(b"PLTE") - 4:data.index(b"PLTE")] == struct.pack(">I", 9)
    # tRNS holds alpha up to the last non-opaque entry only
    assert data[data.index(b"tRNS") + 4:data.index(b"tRNS") + 6] == bytes([255, 0])
    raw = zlib.decompress(data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8])
    # one byte per pixel: Sub differences of indices, then a repeated row (Up, zeros)
    assert list(raw[:4]) == [1, 0, 0, 2] and list(raw[4:8]) == [2, 0, 0, 0]
    assert list(raw[8:12]) == [1, 1, 1, 255]  # 1, 2-1, 1-2 (mod 256)
    fully_opaque = encode_png(idx % 1, palette=palette[:1])
    assert b"tRNS" not in fully_opaque


@pytest.mark.parametrize("pixels, palette", [
    (np.zeros((2, 2, 4), np.uint8), np.zeros((4, 4), np.uint8)),  # RGBA pixels with a palette
    (np.full((2, 2), 3, np.uint8), np.zeros((3, 4), np.uint8)),  # index beyond the palette
    (np.zeros((2, 2), np.uint8), np.zeros((257, 4), np.uint8)),  # too many colours
    (np.zeros((2, 2), np.uint8), np.zeros((4, 3), np.uint8)),  # RGB palette
])
def test_rejects_wrong_palette_images(pixels, palette):
    with pytest.raises(ValueError):
        encode_png(pixels, palette=palette)
