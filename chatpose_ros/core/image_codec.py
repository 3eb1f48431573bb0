"""Image decoding without cv_bridge: raw `sensor_msgs/Image`-style buffers and compressed bytes
to (H, W, 3) uint8 RGB arrays. ROS-free: takes the message's fields, not the message.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidImageError

# encoding -> (channels, numpy dtype, channel order)
_ENCODINGS: dict[str, tuple[int, str, str]] = {
    "rgb8": (3, "u1", "rgb"),
    "bgr8": (3, "u1", "bgr"),
    "rgba8": (4, "u1", "rgba"),
    "bgra8": (4, "u1", "bgra"),
    "mono8": (1, "u1", "mono"),
    "8UC1": (1, "u1", "mono"),
    "8UC3": (3, "u1", "bgr"),
    "mono16": (1, "u2", "mono"),
    "16UC1": (1, "u2", "mono"),
    "rgb16": (3, "u2", "rgb"),
    "bgr16": (3, "u2", "bgr"),
}

SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def decode_raw(
    data: bytes | bytearray | memoryview | np.ndarray,
    width: int,
    height: int,
    encoding: str,
    step: int,
    is_bigendian: bool = False,
    max_pixels: int = 16_000_000,
) -> np.ndarray:
    """Decode a raw image buffer to (height, width, 3) uint8 RGB.

    Honours `step` (row padding) and endianness of 16-bit encodings; 16-bit values are scaled
    to 8 bits by their maximum (mono16 depth/IR images become visible grey images).

    Raises:
        InvalidImageError: unknown encoding, zero size, too many pixels, step smaller than a
            row, or fewer bytes than height * step.
    """
    if encoding not in _ENCODINGS:
        raise InvalidImageError(f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"image is empty ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImageError(f"image has {width}x{height}={width * height} pixels, more than max_image_pixels={max_pixels}")
    channels, kind, order = _ENCODINGS[encoding]
    itemsize = 2 if kind == "u2" else 1
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InvalidImageError(f"step {step} is smaller than one row of {width} {encoding} pixels ({row_bytes} bytes)")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    need = step * (height - 1) + row_bytes
    if buf.size < need:
        raise InvalidImageError(f"image data truncated: {buf.size} bytes, expected {step * height} ({height} rows of step {step})")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    dtype = np.dtype(kind).newbyteorder(">" if is_bigendian else "<") if kind == "u2" else np.dtype(np.uint8)
    pix = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    if kind == "u2":
        top = int(pix.max()) or 1
        pix = (pix.astype(np.float32) * (255.0 / top)).round().astype(np.uint8)
    if order == "mono":
        return np.repeat(pix, 3, axis=2)
    if order in ("bgr", "bgra"):
        pix = pix[..., 2::-1]
    return np.ascontiguousarray(pix[..., :3])


def decode_compressed(data: bytes | bytearray | memoryview, max_pixels: int = 16_000_000) -> np.ndarray:
    """Decode JPEG/PNG (or anything OpenCV reads) bytes to (H, W, 3) uint8 RGB."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InvalidImageError("compressed image is empty")
    # Read the header size first so that a decompression bomb is refused before decoding.
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidImageError(f"compressed image could not be decoded ({buf.size} bytes; truncated or not JPEG/PNG)")
    h, w = img.shape[:2]
    if h * w > max_pixels:
        raise InvalidImageError(f"image has {w}x{h}={w * h} pixels, more than max_image_pixels={max_pixels}")
    return np.ascontiguousarray(img[..., ::-1])


def encode_raw(image_rgb: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """(H, W, 3) uint8 RGB -> (data, step) in `encoding` (rgb8, bgr8, rgba8, bgra8, mono8)."""
    if encoding == "rgb8":
        out = image_rgb
    elif encoding == "bgr8":
        out = image_rgb[..., ::-1]
    elif encoding in ("rgba8", "bgra8"):
        rgb = image_rgb if encoding == "rgba8" else image_rgb[..., ::-1]
        out = np.concatenate([rgb, np.full(image_rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    elif encoding == "mono8":
        out = image_rgb.mean(axis=2).round().astype(np.uint8)[..., None]
    else:
        raise InvalidImageError(f"encode_raw does not write {encoding!r}")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.shape[1] * out.shape[2]
