"""Image decoding without cv_bridge: raw `sensor_msgs/Image`-style buffers and compressed bytes
to (H, W, 3) uint8 RGB arrays. ROS-free: takes the message's fields, not the message.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidImageError
from .logs import clip

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
    # USB (UVC) cameras: YUV 4:2:2, two bytes per pixel, one chroma pair per two pixels.
    "yuv422": (2, "u1", "uyvy"),       # U0 Y0 V0 Y1 (ROS's name for UYVY)
    "uyvy": (2, "u1", "uyvy"),
    "yuv422_yuy2": (2, "u1", "yuyv"),  # Y0 U0 Y1 V0 (YUY2)
    "yuyv": (2, "u1", "yuyv"),
    # Raw sensor mosaics (machine-vision cameras): one colour per pixel, named by the 2x2
    # pattern at the top-left corner; demosaiced by OpenCV (bilinear).
    "bayer_rggb8": (1, "u1", "bayer_rggb"),
    "bayer_bggr8": (1, "u1", "bayer_bggr"),
    "bayer_gbrg8": (1, "u1", "bayer_gbrg"),
    "bayer_grbg8": (1, "u1", "bayer_grbg"),
    "bayer_rggb16": (1, "u2", "bayer_rggb"),
    "bayer_bggr16": (1, "u2", "bayer_bggr"),
    "bayer_gbrg16": (1, "u2", "bayer_gbrg"),
    "bayer_grbg16": (1, "u2", "bayer_grbg"),
}
# channel order -> OpenCV conversion to RGB (names as in OpenCV >= 4.10: the pattern's
# top-left 2x2 block, e.g. COLOR_BayerRGGB2RGB for an R G / G B mosaic)
_CV_TO_RGB: dict[str, str] = {
    "bgr": "COLOR_BGR2RGB",  # OpenCV swaps channels ~40x faster than a numpy reversed-axis copy
    "bgra": "COLOR_BGRA2RGB",
    "rgba": "COLOR_RGBA2RGB",
    "uyvy": "COLOR_YUV2RGB_UYVY",
    "yuyv": "COLOR_YUV2RGB_YUY2",
    "bayer_rggb": "COLOR_BayerRGGB2RGB",
    "bayer_bggr": "COLOR_BayerBGGR2RGB",
    "bayer_gbrg": "COLOR_BayerGBRG2RGB",
    "bayer_grbg": "COLOR_BayerGRBG2RGB",
}

SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def check_raw_layout(width: int, height: int, encoding: str, step: int, nbytes: int,
                     max_pixels: int = 16_000_000) -> tuple[int, str, str, int]:
    """Check a raw image's declared layout against its `nbytes` bytes of data, reading no pixel
    (cheap enough for every frame at arrival). Returns (channels, numpy kind, channel order,
    bytes per row).

    Raises:
        InvalidImageError: unknown encoding, zero size, too many pixels, step smaller than a
            row, or fewer bytes than height * step.
    """
    if encoding not in _ENCODINGS:
        raise InvalidImageError(f"unsupported image encoding '{clip(encoding)}'; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"image is empty ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImageError(f"image has {width}x{height}={width * height} pixels, more than max_image_pixels={max_pixels}")
    channels, kind, order = _ENCODINGS[encoding]
    itemsize = 2 if kind == "u2" else 1
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InvalidImageError(f"step {step} is smaller than one row of {width} {clip(encoding)} pixels ({row_bytes} bytes)")
    if order in ("uyvy", "yuyv") and width % 2:
        raise InvalidImageError(f"{clip(encoding)} needs an even width (one chroma pair per two pixels), got {width}")
    if nbytes < step * (height - 1) + row_bytes:
        raise InvalidImageError(
            f"image data truncated: {nbytes} bytes, expected {step * height} ({height} rows of step {step})")
    return channels, kind, order, row_bytes


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
    to 8 bits by their maximum (mono16 depth/IR images become visible grey images). YUV 4:2:2
    (`yuv422` = UYVY, `yuv422_yuy2` = YUYV; BT.601 as OpenCV converts it) needs an even width;
    `bayer_*` mosaics are demosaiced bilinearly (16-bit ones after scaling to 8 bits).

    Raises:
        InvalidImageError: unknown encoding, zero size, too many pixels, step smaller than a
            row, or fewer bytes than height * step.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    channels, kind, order, row_bytes = check_raw_layout(width, height, encoding, step, buf.size, max_pixels)
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    dtype = np.dtype(kind).newbyteorder(">" if is_bigendian else "<") if kind == "u2" else np.dtype(np.uint8)
    pix = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    if kind == "u2":
        top = int(pix.max()) or 1
        pix = (pix.astype(np.float32) * (255.0 / top)).round().astype(np.uint8)
    if order in _CV_TO_RGB:
        import cv2

        return np.ascontiguousarray(cv2.cvtColor(pix if channels > 1 else pix[..., 0], getattr(cv2, _CV_TO_RGB[order])))
    if order == "mono":
        return np.repeat(pix, 3, axis=2)
    return np.ascontiguousarray(pix)  # rgb


# Formats whose header Pillow reads without decoding pixels (and OpenCV then decodes).
COMPRESSED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "PPM")
# Bytes Pillow's format checks look at (its own `Image.open` passes 16).
_HEADER_PREFIX_BYTES = 16


def compressed_image_size(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(width, height) declared in a compressed image's header, read without decoding any pixel.

    Pillow's image plugins parse only the header when an image is opened (PNG IHDR, JPEG SOF
    marker, ...). They are called directly rather than through `Image.open`, whose own bomb
    check (a warning from 89 Mpx, an error from 179 Mpx) would override `max_image_pixels`.

    Raises:
        InvalidImageError: not one of COMPRESSED_FORMATS, or a header Pillow cannot parse.
    """
    import io

    from PIL import Image

    Image.init()
    prefix = bytes(data[:_HEADER_PREFIX_BYTES])
    errors = []
    for fmt in COMPRESSED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "known but unsupported here"
            continue
        try:
            with factory(io.BytesIO(data)) as im:
                return im.size
        except Exception as exc:  # Pillow raises many types on fuzzed headers; all mean "not this format"
            errors.append(f"{fmt}: {type(exc).__name__}")
    raise InvalidImageError(f"compressed image could not be decoded ({len(data)} bytes; truncated or not "
                            f"{'/'.join(COMPRESSED_FORMATS)}{'; ' + ', '.join(errors) if errors else ''})")


def decode_compressed(data: bytes | bytearray | memoryview, max_pixels: int = 16_000_000) -> np.ndarray:
    """Decode JPEG/PNG (or another of COMPRESSED_FORMATS) bytes to (H, W, 3) uint8 RGB.

    The size is read from the header first (`compressed_image_size`), so a decompression bomb
    (a small file declaring a huge image) is refused before any pixel buffer is allocated.

    Raises:
        InvalidImageError: empty, unreadable header, more than `max_pixels` pixels, or
            undecodable data.
    """
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InvalidImageError("compressed image is empty")
    w, h = compressed_image_size(data)
    if w * h > max_pixels:
        raise InvalidImageError(f"image has {w}x{h}={w * h} pixels, more than max_image_pixels={max_pixels}")
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
