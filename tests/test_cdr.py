"""Reading serialised sensor_msgs/Image and CompressedImage without deserialising them
(chatpose_ros.ros.cdr): same fields as rclpy's own deserialisation, malformed data refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from chatpose_ros.core.errors import InvalidImageError
from chatpose_ros.ros import cdr


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_optical_frame", "ü-frame"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono16", "yuv422"])
def test_image_fields_match_rclpy(frame_id, encoding):
    data = bytes(np.random.default_rng(0).integers(0, 255, 7 * 12, dtype=np.uint8))
    msg = Image(header=Header(frame_id=frame_id), height=7, width=4, encoding=encoding, is_bigendian=1, step=12, data=data)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    stamp, image = cdr.parse_image(serialize_message(msg))
    assert (stamp.sec, stamp.nanosec, stamp.frame_id) == (1_700_000_000, 123_456_789, frame_id)
    assert (image.width, image.height, image.encoding, image.step, image.is_bigendian) == (4, 7, encoding, 12, True)
    assert bytes(image.data) == data


def test_compressed_fields_match_rclpy():
    msg = CompressedImage(header=Header(frame_id="cam"), format="jpeg", data=b"\xff\xd8abc")
    stamp, image = cdr.parse_compressed(serialize_message(msg))
    assert stamp.frame_id == "cam" and bytes(image.data) == b"\xff\xd8abc"


def test_pixels_are_not_copied():
    raw = serialize_message(Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(12)))
    _, image = cdr.parse_image(raw)
    assert isinstance(image.data, memoryview) and image.data.obj is raw


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200))
def test_truncated_messages_are_refused(cut):
    raw = serialize_message(Image(header=Header(frame_id="cam"), height=4, width=4, encoding="rgb8", step=12, data=bytes(48)))
    if cut >= len(raw):
        return
    with pytest.raises(InvalidImageError):
        cdr.parse_image(raw[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_refused_or_parsed_never_crashes(data):
    try:
        cdr.parse_image(data)
    except InvalidImageError:
        pass
