"""Image conversion without cv_bridge, including property-based fuzzing of raw buffers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatpose_ros.core.errors import InvalidImageError
from chatpose_ros.core.image_codec import SUPPORTED_ENCODINGS, decode_compressed, decode_raw, encode_raw

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("pad", [0, 3, 64])
def test_colour_round_trip_with_step_padding(encoding, pad):
    data, step = encode_raw(IMG, encoding)
    rows = [data[i * step:(i + 1) * step] + b"\xaa" * pad for i in range(IMG.shape[0])]
    out = decode_raw(b"".join(rows), IMG.shape[1], IMG.shape[0], encoding, step + pad)
    assert out.dtype == np.uint8 and np.array_equal(out, IMG)


def test_mono8_and_mono16_both_endiannesses():
    mono = RNG.integers(0, 256, (5, 6), dtype=np.uint8)
    out = decode_raw(mono.tobytes(), 6, 5, "mono8", 6)
    assert np.array_equal(out[..., 0], mono) and np.array_equal(out[..., 1], mono)
    depth = np.arange(30, dtype=np.uint16).reshape(5, 6) * 1000
    le = decode_raw(depth.astype("<u2").tobytes(), 6, 5, "mono16", 12, is_bigendian=False)
    be = decode_raw(depth.astype(">u2").tobytes(), 6, 5, "mono16", 12, is_bigendian=True)
    assert np.array_equal(le, be)
    assert le[0, 0, 0] == 0 and le[-1, -1, 0] == 255 and (np.diff(le[..., 0].ravel().astype(int)) >= 0).all()


def test_compressed_jpeg_and_png():
    big = cv2.resize(IMG, (90, 70), interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", big[..., ::-1])
    assert ok and np.array_equal(decode_compressed(png.tobytes()), big)
    ok, jpg = cv2.imencode(".jpg", big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert np.abs(decode_compressed(jpg.tobytes()).astype(int) - big).mean() < 12
    with pytest.raises(InvalidImageError, match="could not be decoded"):
        decode_compressed(jpg.tobytes()[:40])
    with pytest.raises(InvalidImageError, match="empty"):
        decode_compressed(b"")
    with pytest.raises(InvalidImageError, match="max_image_pixels"):
        decode_compressed(png.tobytes(), max_pixels=100)


@pytest.mark.parametrize("kwargs, match", [
    (dict(width=4, height=4, encoding="yuv422", step=8, data=bytes(32)), "unsupported"),
    (dict(width=0, height=4, encoding="rgb8", step=0, data=b""), "empty"),
    (dict(width=4, height=4, encoding="rgb8", step=12, data=bytes(47)), "truncated"),
    (dict(width=4, height=4, encoding="rgb8", step=11, data=bytes(48)), "smaller than one row"),
    (dict(width=5000, height=5000, encoding="mono8", step=5000, data=b""), "max_image_pixels"),
])
def test_bad_raw_images_raise_typed_errors(kwargs, match):
    with pytest.raises(InvalidImageError, match=match):
        decode_raw(kwargs.pop("data"), max_pixels=1_000_000, **kwargs)


@settings(max_examples=300, deadline=None)
@given(width=st.integers(-2, 40), height=st.integers(-2, 40),
       encoding=st.sampled_from(SUPPORTED_ENCODINGS + ("", "jpeg", "rgb8 ")),
       step=st.integers(-5, 200), bigendian=st.booleans(), data=st.binary(max_size=4000))
def test_fuzz_raw_decode_either_decodes_or_raises_typed_error(width, height, encoding, step, bigendian, data):
    try:
        out = decode_raw(data, width, height, encoding, step, bigendian, max_pixels=1000)
    except InvalidImageError as exc:
        assert str(exc)
        return
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2000))
def test_fuzz_compressed_decode(data):
    try:
        out = decode_compressed(data)
    except InvalidImageError:
        return
    assert out.ndim == 3 and out.shape[2] == 3
