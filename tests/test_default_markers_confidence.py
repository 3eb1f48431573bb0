"""RViz markers show which joints the camera saw: unseen joints (joint_confidence 0) get their
own colour in the joint SPHERE_LIST."""
from __future__ import annotations

import numpy as np
import pytest

from chatpose_ros.core.types import PersonPose, PoseResult

pytest.importorskip("visualization_msgs.msg")


def _person(conf):
    return PersonPose(theta=np.zeros(72, np.float32), joints=np.zeros((24, 3), np.float32),
                      translation=np.array([0, 0, 3], np.float32), box=(0, 0, 10, 10), joint_confidence=conf)


def test_unseen_joints_have_another_colour():
    from std_msgs.msg import Header

    from chatpose_ros.ros.markers import NAMESPACES, result_markers

    conf = np.ones(24, np.float32)
    conf[[4, 5, 7, 8]] = 0.0  # knees and ankles cut by the image edge
    arr = result_markers(PoseResult("q", "a", (_person(conf),), 0), Header(frame_id="camera"))
    spheres = next(m for m in arr.markers if m.ns == NAMESPACES[1])
    assert len(spheres.colors) == 24
    seen = {(c.r, c.g, c.b) for i, c in enumerate(spheres.colors) if conf[i] > 0}
    unseen = {(c.r, c.g, c.b) for i, c in enumerate(spheres.colors) if conf[i] == 0}
    assert len(seen) == 1 and len(unseen) == 1 and seen != unseen


def test_without_confidence_one_colour():
    from std_msgs.msg import Header

    from chatpose_ros.ros.markers import NAMESPACES, result_markers

    arr = result_markers(PoseResult("q", "a", (_person(None),), 0), Header(frame_id="camera"))
    spheres = next(m for m in arr.markers if m.ns == NAMESPACES[1])
    assert len(spheres.colors) == 0  # the marker's single colour applies to every joint
