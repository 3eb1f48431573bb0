"""The shipped node (default profile, real model) in its own process, over ROS 2 on loopback:
a real photo and queries in, pose messages and markers out; bad inputs answered; still serving.
Also the README's main command (`chatpose demo`)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image

from conftest import REAL_PHOTOS, STATE_DIR

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["multi", "events"])  # chatpose-node --executor
def node_process(request):
    proc = subprocess.Popen([sys.executable, "-m", "chatpose_ros.ros.main", "--state-dir", str(STATE_DIR),
                             "--executor", request.param, "--ros-args",
                             "-p", "image_qos:=reliable", "-p", "image_qos_depth:=5", "-p", "track_after_query:=true",
                             "-p", "diagnostics_period_s:=0.2", "-p", "mesh_body:='off'"],  # quoted: YAML reads off as false
                            env=os.environ.copy(), cwd=ROOT)
    yield proc
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=30) is not None
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("node did not shut down within 30 s of SIGINT")


def test_node_in_its_own_process_answers_about_a_real_photo(ros_context, node_process):
    import cv2
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Header, String
    from visualization_msgs.msg import Marker, MarkerArray

    from diagnostic_msgs.msg import DiagnosticArray

    from chatpose_ros.msg import PipelineStatus, SmplPoseArray
    from chatpose_ros.ros.convert import rgb_to_image

    node = Node("two_process_client", context=ros_context)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    got = {"poses": [], "markers": [], "status": [], "diagnostics": []}
    node.create_subscription(SmplPoseArray, "/chatpose_node/poses", got["poses"].append, qos)
    node.create_subscription(MarkerArray, "/chatpose_node/markers", got["markers"].append, qos)
    node.create_subscription(PipelineStatus, "/chatpose_node/status", got["status"].append, qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", got["diagnostics"].append, qos)
    img_pub = node.create_publisher(Image, "/camera/image_raw", qos)
    q_pub = node.create_publisher(String, "/chatpose_node/query", qos)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)

    def spin_until(pred, timeout):
        t_end = time.monotonic() + timeout
        while not pred() and time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.1)
        return pred()

    def frames_at_node():  # what the node's /diagnostics last said
        for d in reversed(got["diagnostics"]):
            for st in d.status:
                values = {kv.key: kv.value for kv in st.values}
                if "frames_received" in values:
                    return int(values["frames_received"])
        return 0

    photo = cv2.imread(str(REAL_PHOTOS / "basketball1.png"))[..., ::-1].copy()
    assert spin_until(lambda: q_pub.get_subscription_count() > 0 and img_pub.get_subscription_count() > 0, 300), \
        "node did not come up"
    header = Header(frame_id="camera_optical_frame")
    header.stamp = node.get_clock().now().to_msg()
    img_pub.publish(rgb_to_image(photo, header, "bgr8"))
    assert spin_until(lambda: frames_at_node() >= 1, 120), "the node did not receive the frame"
    q_pub.publish(String(data="the person on the left"))
    assert spin_until(lambda: any(p.answer for p in got["poses"]) and got["markers"], 120), [s.message for s in got["status"]]
    arr = next(p for p in got["poses"] if p.answer)
    assert arr.query == "the person on the left" and 0 <= arr.selected < len(arr.poses)
    pose = arr.poses[arr.selected]
    assert np.isfinite(np.asarray(pose.theta)).all() and len(pose.theta) == 72 and len(pose.joints) == 24
    assert pose.box_known and pose.estimator == "smplr_regressor" and pose.track_id >= 0
    marr = got["markers"][0]
    assert {m.type for m in marr.markers} >= {Marker.LINE_LIST, Marker.SPHERE_LIST, Marker.TEXT_VIEW_FACING}
    assert all(m.header.frame_id == "camera_optical_frame" for m in marr.markers)
    # bad inputs across the process boundary, then still serving
    img_pub.publish(Image(height=3, width=3, encoding="bayer_weird", step=9, data=bytes(27)))
    q_pub.publish(String(data=" " * 5))
    q_pub.publish(String(data="x" * 10_000))
    assert spin_until(lambda: {"invalid_image", "invalid_query"} <= {s.code for s in got["status"]}, 30)
    header.stamp = node.get_clock().now().to_msg()
    n = frames_at_node()
    img_pub.publish(rgb_to_image(photo, header, "rgb8"))
    assert spin_until(lambda: frames_at_node() > n, 120), "the node did not receive the frame"
    q_pub.publish(String(data="the person on the right"))
    assert spin_until(lambda: any(p.query == "the person on the right" and p.answer for p in got["poses"]), 120)
    ex.shutdown()
    node.destroy_node()


def test_readme_main_command_demo(tmp_path):
    out = tmp_path / "demo.png"
    res = subprocess.run([sys.executable, "-m", "chatpose_ros.cli", "demo", "--out", str(out), "--timeout", "300"],
                         cwd=tmp_path, env=os.environ.copy(), capture_output=True, text=True, timeout=420)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "[demo] answer after" in res.stdout and "[demo] markers:" in res.stdout
    # the demo publishes a camera_info for its photo (assumed focal length): people are placed
    assert "no_camera_info" not in res.stdout + res.stderr and "(assumed focal length)" in res.stdout
    import cv2

    pic = cv2.imread(str(out))
    assert pic is not None and pic.shape[0] > 480
