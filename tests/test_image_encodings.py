"""Camera encodings real drivers publish (YUV 4:2:2 from USB cameras, Bayer mosaics from
machine-vision cameras), decoded from a REAL photo converted to each encoding.

Tolerances (8-bit levels, on messi5.jpg): YUV 4:2:2 loses half the chroma resolution and rounds
through BT.601, so the decoded photo is within a mean absolute error of 1.5 levels of the
original (measured 0.79); Bayer keeps one colour in three, so bilinear demosaicing is within a
mean absolute error of 4 levels (measured 2.34, away from the 2-pixel border). Each test also decodes with the wrong layout
and checks the error is several times larger, so a swapped byte order or pattern cannot pass.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import load_photo

from chatpose_ros.core.errors import InvalidImageError
from chatpose_ros.core.image_codec import SUPPORTED_ENCODINGS, decode_raw

YUV_MAE = 1.5    # measured 0.79
BAYER_MAE = 4.0  # measured 2.34
BORDER = 2            # px ignored at the image border for demosaicing
WRONG_FACTOR = 3.0    # decoding with the wrong layout is at least this many times worse
ROW_PAD = 24          # bytes of padding after every row (step > row)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    img = load_photo("messi5.jpg")
    h, w = img.shape[:2]
    return np.ascontiguousarray(img[: h - h % 2, : w - w % 2])


def _pad_rows(packed: np.ndarray) -> tuple[bytes, int]:
    """(H, row_bytes) uint8 rows -> (data with ROW_PAD junk bytes after each row, step)."""
    rows = packed.reshape(packed.shape[0], -1)
    junk = np.full((rows.shape[0], ROW_PAD), 0xA5, np.uint8)
    return np.concatenate([rows, junk], axis=1).tobytes(), rows.shape[1] + ROW_PAD


def _mae(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    sl = (slice(border, a.shape[0] - border), slice(border, a.shape[1] - border)) if border else (slice(None),) * 2
    return float(np.abs(a[sl].astype(int) - b[sl].astype(int)).mean())


YUV_CASES = {  # encoding -> (OpenCV RGB -> packed conversion, the other YUV order)
    "yuv422": (cv2.COLOR_RGB2YUV_UYVY, "yuv422_yuy2"),
    "uyvy": (cv2.COLOR_RGB2YUV_UYVY, "yuyv"),
    "yuv422_yuy2": (cv2.COLOR_RGB2YUV_YUY2, "yuv422"),
    "yuyv": (cv2.COLOR_RGB2YUV_YUY2, "uyvy"),
}


@pytest.mark.parametrize("encoding", sorted(YUV_CASES))
def test_yuv422_real_photo(photo, encoding):
    to_yuv, other = YUV_CASES[encoding]
    packed = cv2.cvtColor(photo, to_yuv)  # (H, W, 2)
    assert packed.shape == photo.shape[:2] + (2,)
    data, step = _pad_rows(packed)
    h, w = photo.shape[:2]
    out = decode_raw(data, w, h, encoding, step)
    assert out.shape == photo.shape and out.dtype == np.uint8
    err = _mae(out, photo)
    assert err < YUV_MAE, f"{encoding}: mean abs error {err:.2f} levels"
    wrong = _mae(decode_raw(data, w, h, other, step), photo)
    assert wrong > WRONG_FACTOR * err, f"{encoding} decoded as {other}: {wrong:.2f} vs {err:.2f}"


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) single-channel mosaic: pixel (y, x) keeps the channel that
    ``pattern`` (the 2x2 block, row-major, e.g. "rggb") names for (y % 2, x % 2)."""
    ch = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for i, c in enumerate(pattern):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, ch[c]]
    return out


PATTERNS = ("rggb", "bggr", "gbrg", "grbg")
WRONG_PATTERN = {"rggb": "bggr", "bggr": "rggb", "gbrg": "grbg", "grbg": "gbrg"}  # red and blue swapped


@pytest.mark.parametrize("pattern", PATTERNS)
def test_bayer8_real_photo(photo, pattern):
    mosaic = _mosaic(photo, pattern)
    data, step = _pad_rows(mosaic)
    h, w = photo.shape[:2]
    out = decode_raw(data, w, h, f"bayer_{pattern}8", step)
    assert out.shape == photo.shape and out.dtype == np.uint8
    err = _mae(out, photo, BORDER)
    assert err < BAYER_MAE, f"bayer_{pattern}8: mean abs error {err:.2f} levels"
    wrong = _mae(decode_raw(data, w, h, f"bayer_{WRONG_PATTERN[pattern]}8", step), photo, BORDER)
    assert wrong > WRONG_FACTOR * err, f"bayer_{pattern}8 decoded as {WRONG_PATTERN[pattern]}: {wrong:.2f} vs {err:.2f}"


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("bigendian", [False, True])
def test_bayer16_real_photo(photo, pattern, bigendian):
    """16-bit mosaics (12-bit sensors shifted up, as many drivers publish them) scale to 8 bits."""
    mosaic16 = (_mosaic(photo, pattern).astype(np.uint16) << 4) | 0x7  # 12-bit data in the top bits
    raw = mosaic16.astype(">u2" if bigendian else "<u2").view(np.uint8).reshape(mosaic16.shape[0], -1)
    data, step = _pad_rows(raw)
    h, w = photo.shape[:2]
    out = decode_raw(data, w, h, f"bayer_{pattern}16", step, is_bigendian=bigendian)
    assert out.shape == photo.shape and out.dtype == np.uint8
    err = _mae(out, photo, BORDER)
    assert err < BAYER_MAE, f"bayer_{pattern}16: mean abs error {err:.2f} levels"


def test_new_encodings_are_listed():
    for enc in ("yuv422", "yuv422_yuy2", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8", "bayer_rggb16"):
        assert enc in SUPPORTED_ENCODINGS


def test_yuv422_needs_an_even_width():
    with pytest.raises(InvalidImageError, match="even width"):
        decode_raw(bytes(2 * 5 * 3), 5, 3, "yuv422", 10)


def test_yuv422_truncated_data_is_refused():
    with pytest.raises(InvalidImageError, match="truncated"):
        decode_raw(bytes(2 * 4 * 3 - 1), 4, 3, "yuv422_yuy2", 8)
