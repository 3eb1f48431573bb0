"""Read serialised (CDR) sensor_msgs/Image and CompressedImage messages without deserialising
them: the header fields and the offset of the pixel bytes, in a few microseconds, so that a
raw subscription (`raw=True`) keeps frames as bytes and only the frame the model takes is
decoded (chatpose_ros.core.images).

CDR (XCDR1, as rmw_fastrtps writes it): a 4-byte encapsulation header (byte 1: 1 = little
endian), then the fields, each aligned to its size counted from the end of that header.
Strings: uint32 length including the NUL, the bytes, NUL. Sequences: uint32 count, items.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from chatpose_ros.core.errors import InvalidImageError
from chatpose_ros.core.images import EncodedImage, RawImage

ENCAPSULATION_BYTES = 4


@dataclass(frozen=True)
class Stamped:
    """The std_msgs/Header of a serialised message."""

    sec: int
    nanosec: int
    frame_id: str


class _Reader:
    def __init__(self, raw: bytes | memoryview) -> None:
        self.buf = memoryview(raw)
        if self.buf.nbytes < ENCAPSULATION_BYTES:
            raise InvalidImageError(f"image message too short ({self.buf.nbytes} bytes)")
        self.end = "<" if self.buf[1] & 1 else ">"
        self.pos = ENCAPSULATION_BYTES

    def _take(self, fmt: str, size: int):
        self.pos += (-(self.pos - ENCAPSULATION_BYTES)) % size  # align
        if self.pos + size > self.buf.nbytes:
            raise InvalidImageError(f"image message malformed: ends at byte {self.buf.nbytes} inside a field")
        (value,) = struct.unpack_from(self.end + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u8(self) -> int:
        return self._take("B", 1)

    def u32(self) -> int:
        return self._take("I", 4)

    def i32(self) -> int:
        return self._take("i", 4)

    def blob(self) -> tuple[int, int]:
        """(offset, length) of a uint8 sequence (or of a string with its NUL)."""
        n = self.u32()
        start = self.pos
        if start + n > self.buf.nbytes:
            raise InvalidImageError(f"image message truncated: {n} bytes declared at byte {start}, "
                                    f"{self.buf.nbytes} in all")
        self.pos += n
        return start, n

    def string(self) -> str:
        start, n = self.blob()
        return bytes(self.buf[start:start + max(n - 1, 0)]).decode("utf-8", errors="replace")

    def header(self) -> Stamped:
        sec, nanosec = self.i32(), self.u32()
        return Stamped(sec, nanosec, self.string())


def parse_image(raw: bytes | memoryview) -> tuple[Stamped, RawImage]:
    """Serialised sensor_msgs/Image -> (header, RawImage over the pixel bytes of `raw`, no copy).
    Raises InvalidImageError when the message is malformed (the layout is checked by the
    caller: chatpose_ros.core.image_codec.check_raw_layout)."""
    r = _Reader(raw)
    header = r.header()
    height, width = r.u32(), r.u32()
    encoding = r.string()
    is_bigendian = bool(r.u8())
    step = r.u32()
    start, n = r.blob()
    return header, RawImage(r.buf[start:start + n], width, height, encoding, step, is_bigendian)


def parse_compressed(raw: bytes | memoryview) -> tuple[Stamped, EncodedImage]:
    """Serialised sensor_msgs/CompressedImage -> (header, EncodedImage over its bytes, no copy)."""
    r = _Reader(raw)
    header = r.header()
    r.string()  # format: the decoder reads the bytes' own header
    start, n = r.blob()
    return header, EncodedImage(r.buf[start:start + n])
