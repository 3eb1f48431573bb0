"""Depth input over ROS 2 (depth_enabled): an aligned depth image and its camera_info place the
people (translation_source "depth"); a depth image in another frame is refused with
depth_frame_mismatch and the monocular fit is published instead; the counts reach /diagnostics.
In one process (tests/ros_harness.py), loopback only (tests/conftest.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from chatpose_ros.ros.convert import rgb_to_image
from test_depth import _torso_depth_m
from test_ros_hri import CAM, FRAME, PLACES, PlacedPipeline, _camera_info, _give_camera_info, _image, _placed_person

pytestmark = pytest.mark.timeout(180)

DEPTH_TOPIC = "/camera/aligned_depth_to_color/image_raw"
DEPTH_INFO_TOPIC = "/camera/aligned_depth_to_color/camera_info"
FURTHER_M = 0.3  # the depth images put the people this much further than the keypoints' monocular fit


def _depth_msg(stamp: Time, frame_id: str = FRAME) -> Image:
    """32FC1 depth (m) with both people's torsos FURTHER_M beyond their monocular places."""
    z = np.full((CAM.height, CAM.width), 9.0, np.float32)
    for seed, t in ((1, PLACES[0]), (2, PLACES[1])):
        zp = _torso_depth_m(_placed_person(seed, t), t + np.array([0.0, 0.0, FURTHER_M]), wall_m=np.inf)
        z = np.minimum(z, zp)
    return Image(header=Header(stamp=stamp, frame_id=frame_id), height=CAM.height, width=CAM.width, encoding="32FC1",
                 is_bigendian=0, step=CAM.width * 4, data=z.tobytes())


def _frame_pair(h, depth_pub, sec: int, depth_frame: str = FRAME) -> None:
    """A depth image, then a colour image of the same stamp; waits until the node has both."""
    stamp = Time(sec=sec, nanosec=0)
    n_depth = h.node.stats["depth_frames_received"] + 1
    depth_pub.publish(_depth_msg(stamp, depth_frame))
    h.wait_until(lambda: h.node.stats["depth_frames_received"] >= n_depth, what="the depth image at the node")
    n = h.node.stats["frames_received"] + 1
    h.publish_raw_image(rgb_to_image(_image(sec), Header(stamp=stamp, frame_id=FRAME)))
    h.wait_frames(n)


def test_depth_places_people_and_bad_depth_falls_back(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), track_after_query=False, depth_enabled=True)
    depth = h.node.robot.depth
    assert depth.topic == DEPTH_TOPIC and depth.info_topic == DEPTH_INFO_TOPIC
    depth_pub = h.client.create_publisher(Image, DEPTH_TOPIC, 10)
    info_pub = h.client.create_publisher(CameraInfo, DEPTH_INFO_TOPIC, 10)
    _give_camera_info(h, _camera_info(), lambda: h.node.robot.intrinsics is not None)
    t_end = time.monotonic() + 30
    while depth.placer.intrinsics is None:
        assert time.monotonic() < t_end, "depth camera_info did not reach the node"
        info_pub.publish(_camera_info())
        time.sleep(0.05)
    h.wait_until(lambda: depth_pub.get_subscription_count() > 0, what="the depth topic to match")

    _frame_pair(h, depth_pub, 100)
    h.ask("the person on the right")
    pose = h.wait_for("pose")[0]
    assert pose.translation_known and pose.translation_source == "depth"
    assert abs(pose.translation.z - (PLACES[1][2] + FURTHER_M)) < 0.05
    arr = h.wait_for("poses")[0]
    assert [p.translation_source for p in arr.poses] == ["depth", "depth"]

    _frame_pair(h, depth_pub, 200, depth_frame="camera_depth_optical_frame")  # not registered to the colour image
    h.ask("the person on the right")
    pose = h.wait_for("pose", lambda ms: len(ms) >= 2)[1]
    assert pose.translation_source == "monocular" and abs(pose.translation.z - PLACES[1][2]) < 0.05
    status = h.wait_status("depth_frame_mismatch")[0]
    assert "camera_depth_optical_frame" in status.message and "monocular" in status.message

    def counts():
        diags = [s for m in h.received["diagnostics"] for s in m.status]
        return {kv.key: kv.value for kv in diags[-1].values} if diags else {}
    h.wait_for("diagnostics", lambda ms: int(counts().get("depth_fallback_depth_frame_mismatch", 0)) >= 1)
    c = counts()
    assert int(c["translations_depth"]) >= 2 and int(c["translations_monocular"]) >= 2
