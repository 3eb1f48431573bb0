"""Images as they arrive, not decoded yet (ROS-free): what the ROS layer hands the model.

`RawImage` holds the pixel bytes of a sensor_msgs/Image as received, `EncodedImage` JPEG/PNG
bytes, `RgbImage` an array; each decodes itself (`decode(max_pixels)` -> (H, W, 3) uint8 RGB)
only for the frames the model is given, and describes itself by `meta()` so the model's worker
process can rebuild it over a shared memory block (`rebuild_image`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .image_codec import decode_compressed, decode_raw
from .pipeline import validate_image

Size = tuple[int, int]  # (width, height) px


@dataclass(frozen=True)
class RawImage:
    """Raw pixels as in sensor_msgs/Image, not decoded. `data`: a buffer (bytes, memoryview)
    of at least `step * height` bytes, e.g. a memoryview into the serialised message."""

    data: Any
    width: int
    height: int
    encoding: str
    step: int
    is_bigendian: bool = False

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB; InvalidImageError."""
        return decode_raw(self.data, self.width, self.height, self.encoding, self.step, self.is_bigendian, max_pixels)

    def meta(self) -> tuple:
        return ("raw", self.width, self.height, self.encoding, self.step, self.is_bigendian)


@dataclass(frozen=True)
class EncodedImage:
    """Compressed (JPEG/PNG) bytes, not decoded."""

    data: Any

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        return decode_compressed(self.data, max_pixels)

    def meta(self) -> tuple:
        return ("encoded",)


@dataclass(frozen=True)
class RgbImage:
    """An image already decoded: (H, W, 3) uint8 RGB."""

    rgb: np.ndarray

    @property
    def data(self) -> memoryview:
        return memoryview(np.ascontiguousarray(self.rgb)).cast("B")

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        return validate_image(self.rgb, max_pixels)

    def meta(self) -> tuple:
        return ("rgb", self.rgb.shape[0], self.rgb.shape[1])


Image = RawImage | EncodedImage | RgbImage


def rebuild_image(meta: tuple, buf: memoryview) -> Image:
    """The image record of `meta` (an image's `meta()`) over `buf` (in the worker)."""
    kind = meta[0]
    if kind == "raw":
        return RawImage(buf, *meta[1:])
    if kind == "encoded":
        return EncodedImage(buf)
    return RgbImage(np.ndarray((meta[1], meta[2], 3), np.uint8, buffer=buf))


def image_size(rgb: np.ndarray) -> Size:
    """(H, W, 3) -> (width, height) px."""
    return (int(rgb.shape[1]), int(rgb.shape[0]))
