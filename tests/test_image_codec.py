"""Image conversion without cv_bridge, including property-based fuzzing of raw buffers."""
from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatpose_ros.core.errors import InvalidImageError
from chatpose_ros.core.image_codec import (SUPPORTED_ENCODINGS, compressed_image_size, decode_compressed, decode_raw,
                                           encode_raw)

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
    (dict(width=4, height=4, encoding="nv12", step=4, data=bytes(24)), "unsupported"),
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


BOMB_SIDE = 20_000  # px: 400 Mpx of 8-bit grey (1.2 GB once decoded to RGB) in about 390 kB of PNG


def _png_bomb(side: int) -> bytes:
    """A valid all-black 8-bit greyscale PNG of side x side pixels, compressed row by row (small memory)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 + zeros
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png_bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(_png_bomb(BOMB_SIDE))
    return path


def test_header_size_without_decoding(png_bomb):
    data = png_bomb.read_bytes()
    assert 300_000 < len(data) < 500_000
    assert compressed_image_size(data) == (BOMB_SIDE, BOMB_SIDE)
    big = cv2.resize(IMG, (90, 70), interpolation=cv2.INTER_NEAREST)
    for ext in (".png", ".jpg"):
        ok, enc = cv2.imencode(ext, big)
        assert ok and compressed_image_size(enc.tobytes()) == (90, 70)
    with pytest.raises(InvalidImageError, match="could not be decoded"):
        compressed_image_size(b"GIF89a" + bytes(20))  # not one of the accepted formats


def test_jpeg_declaring_a_huge_size_is_refused_by_its_header():
    ok, jpg = cv2.imencode(".jpg", IMG)
    data = bytearray(jpg.tobytes())
    sof = data.index(b"\xff\xc0")  # baseline SOF0: marker, length (2), precision (1), height (2), width (2)
    struct.pack_into(">HH", data, sof + 5, 30_000, 30_000)
    assert compressed_image_size(bytes(data)) == (30_000, 30_000)
    with pytest.raises(InvalidImageError, match="max_image_pixels"):
        decode_compressed(bytes(data))


def test_decompression_bomb_refused_before_decoding_with_small_peak_memory(png_bomb):
    # In a fresh process, so that the peak resident memory (ru_maxrss) is this call's alone.
    script = textwrap.dedent(f"""
        import resource, sys
        import cv2, numpy, PIL.Image
        from chatpose_ros.core.errors import InvalidImageError
        from chatpose_ros.core.image_codec import decode_compressed
        data = open({str(png_bomb)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decode_compressed(data)
        except InvalidImageError as exc:
            print("refused:", exc)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("peak_growth_kb", after - before)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "refused:" in res.stdout and "max_image_pixels" in res.stdout, res.stdout
    growth_kb = int(res.stdout.split("peak_growth_kb")[1])
    assert growth_kb < 64 * 1024, f"peak memory grew by {growth_kb / 1024:.0f} MB while refusing the bomb"
