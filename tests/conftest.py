"""Test set-up. Every rclpy process started by the tests stays on loopback: DDS discovery is
limited to localhost, a Fast DDS profile whitelists 127.0.0.1 only, the ROS domain id is random
per run and ROS logs go under build/ (set here, before any test imports rclpy)."""
from __future__ import annotations

import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / "build" / "test_ros_state"

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("CHATPOSE_TEST_DOMAIN_ID", str(random.randint(1, 101)))

from chatpose_ros.ros.netsafe import configure_loopback_only  # noqa: E402
import pytest  # noqa: E402

configure_loopback_only(STATE_DIR, domain_id=int(os.environ["CHATPOSE_TEST_DOMAIN_ID"]), force=True)
os.environ.setdefault("OMP_NUM_THREADS", "2")


REAL_PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")


def load_photo(name: str):
    """A real photo from Debian's opencv-doc as (H, W, 3) uint8 RGB (skips the test if absent)."""
    import cv2

    path = REAL_PHOTOS / name
    if not path.exists():
        pytest.skip(f"{path} missing (apt-get install opencv-doc)")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture
def ros_context():
    """A fresh rclpy context for one test (init and shutdown around it)."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        if ctx.ok():
            rclpy.shutdown(context=ctx)


@pytest.fixture
def ros_harness(ros_context):
    """Factory for a ChatPoseNode (with a chosen pipeline) plus a client node, spinning."""
    from ros_harness import Harness

    harnesses = []

    def make(pipeline_factory, autostart=True, executor=None, **params):
        h = Harness(ros_context, pipeline_factory, params, autostart=autostart, executor=executor)
        harnesses.append(h)
        return h

    yield make
    for h in harnesses:
        h.close()
