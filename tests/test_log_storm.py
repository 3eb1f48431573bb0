"""Bad input never stalls the node (issue 21), with the node in a process of its own (the shipped
entry point, the pipeline's test double in it) over ROS 2 on loopback: 1000 bad inputs write at
most 16 kB of log, and with its stderr a full pipe nobody reads the node still answers a good
question afterwards and stops on SIGINT."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatpose_ros.tools.log_storm import node_command, run_storm
from conftest import STATE_DIR

pytestmark = pytest.mark.timeout(240)
FAKE_NODE = [sys.executable, str(Path(__file__).resolve().parent / "fake_node.py")]
LOG_BUDGET_BYTES = 16_000


def fake_node(state_dir: str) -> list[str]:
    return node_command(state_dir, FAKE_NODE, ("model_in_process:=true",))


def test_storm_of_1000_bad_inputs_writes_at_most_16_kb_of_log():
    figures = run_storm(1000, "file", rate_hz=400.0, answer_timeout_s=60.0, start_timeout_s=120.0,
                        node_cmd=fake_node, state_dir=str(STATE_DIR / "storm"), loopback=False)
    print(figures)
    assert figures["node_up"] and figures["answered_after_storm"], figures
    assert figures["log_bytes"] <= LOG_BUDGET_BYTES, figures
    assert figures["tracebacks"] == 0 and figures["publish_errors"] == 0, figures
    assert figures["exit_on_sigint"] and figures["exit_code"] == 0, figures


def test_node_answers_after_a_storm_with_its_stderr_never_read():
    figures = run_storm(1000, "unread", rate_hz=400.0, answer_timeout_s=60.0, start_timeout_s=120.0,
                        node_cmd=fake_node, state_dir=str(STATE_DIR / "storm"), loopback=False)
    print(figures)
    assert figures["node_up"] and figures["answered_after_storm"], figures
    assert figures["exit_on_sigint"], figures


def test_sigint_while_the_node_publishes_logs_no_error(ros_context, tmp_path):
    """Frames at 100 Hz, tracking at 60 Hz and /diagnostics at 20 Hz when SIGINT comes: the node
    stops its model and publishers before its ROS context, so no publish fails (no error line)."""
    import os
    import signal
    import subprocess
    import time

    import numpy as np
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header, String

    from chatpose_ros.msg import SmplPose
    from chatpose_ros.ros.convert import rgb_to_image

    log = tmp_path / "node.log"
    cmd = node_command(str(STATE_DIR / "storm"), FAKE_NODE, ("model_in_process:=true", "track_after_query:=true",
                                                             "tracking_rate_hz:=60.0", "diagnostics_period_s:=0.05"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=os.environ.copy())
    node = Node("sigint_client", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    poses = []
    node.create_subscription(SmplPose, "/chatpose_node/pose", poses.append, qos)
    img_pub = node.create_publisher(Image, "/camera/image_raw", qos)
    q_pub = node.create_publisher(String, "/chatpose_node/query", qos)
    rgb = np.zeros((60, 80, 3), np.uint8)
    try:
        t_end = time.monotonic() + 120
        while not (img_pub.get_subscription_count() and q_pub.get_subscription_count()):
            assert time.monotonic() < t_end and proc.poll() is None, "node did not come up"
            ex.spin_once(timeout_sec=0.05)
        frames, asked_at = 0, None
        t_end = time.monotonic() + 60
        while len(poses) < 20:  # tracking updates flowing
            assert time.monotonic() < t_end, "no tracking updates"
            img_pub.publish(rgb_to_image(rgb, Header(frame_id="cam", stamp=node.get_clock().now().to_msg())))
            frames += 1
            # ask once frames flow (a question that arrives before the first frame is answered from
            # the text alone and starts no tracking), and again if no pose came back
            if frames >= 20 and (asked_at is None or (not poses and time.monotonic() - asked_at > 5.0)):
                q_pub.publish(String(data="the person on the right"))
                asked_at = time.monotonic()
            ex.spin_once(timeout_sec=0.01)
        proc.send_signal(signal.SIGINT)
        t_end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < t_end:  # the camera goes on meanwhile
            img_pub.publish(rgb_to_image(rgb, Header(frame_id="cam", stamp=node.get_clock().now().to_msg())))
            ex.spin_once(timeout_sec=0.01)
        assert proc.poll() == 0, "node did not stop cleanly within 30 s of SIGINT"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        ex.shutdown(timeout_sec=5.0)
        node.destroy_node()
    text = log.read_text(errors="replace")
    assert "[ERROR]" not in text and "Traceback" not in text and "Exception" not in text, text[-3000:]
