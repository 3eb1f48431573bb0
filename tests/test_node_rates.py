"""The node's time-dependent pacing on an injected clock, without sleeps: core.session.RateLimit,
the Anny mesh rate during tracking (ros/mesh_markers.py: answers always dressed, tracking updates
at most mesh_rate_hz, newer results replace held ones) and the ROS4HRI crop rate (ros/robot_io.py).
The tracking cadence itself is in tests/test_session.py."""
from __future__ import annotations

import dataclasses
import queue

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.images import RgbImage
from chatpose_ros.core.session import Frame, Output, RateLimit
from chatpose_ros.core.types import PoseResult
from chatpose_ros.ros.mesh_markers import MeshMarkers
from chatpose_ros.ros.robot_io import RobotIO
from fakes import make_person

pytestmark = pytest.mark.timeout(120)
WAIT_S = 60  # a bound for a loaded machine, not a timing


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_limit_on_an_injected_clock():
    clock = Clock()
    rate = RateLimit(5.0, clock)
    assert rate.wait() == 0.0 and rate.admit()
    assert not rate.admit() and rate.wait() == pytest.approx(0.2)
    clock.t += 0.15
    assert rate.wait() == pytest.approx(0.05) and not rate.admit()
    clock.t += 0.05
    assert rate.admit()
    rate.mark()  # an event that happened anyway (an answer) also starts the period
    assert not rate.admit()
    assert RateLimit(0.0, clock).wait() == float("inf") and not RateLimit(0.0, clock).admit()


class FakeMesh:
    """Dresses the selected person with a one-triangle mesh."""

    mode = "anny"

    def dress(self, result, frame_seq=None, frame_time=None, track_ms=None):
        person = dataclasses.replace(result.selected_person, vertices=np.eye(3, dtype=np.float32),
                                     faces=np.array([[0, 1, 2]]))
        return dataclasses.replace(result, people=(person,), selected=0), []


def _output(name: str, answer: bool) -> tuple[Output, Header]:
    result = PoseResult(query="q", answer="a" if answer else "", people=(make_person(1, box=(0.0, 0.0, 5.0, 5.0)),),
                        selected=0)
    return Output(result=result, frame=None, answer=answer), Header(frame_id=name)


def test_mesh_marker_rate_during_tracking():
    clock, published = Clock(), queue.Queue()
    meshes = MeshMarkers(FakeMesh(), NodeConfig(mesh_rate_hz=5.0), published.put, lambda reports: None,
                         lambda exc: published.put(exc), clock=clock)

    def next_frame_id() -> str:
        raw = published.get(timeout=WAIT_S)
        assert isinstance(raw, bytes), raw
        return deserialize_message(raw, MarkerArray).markers[0].header.frame_id

    meshes.start()
    try:
        meshes.submit(*_output("track1", answer=False), track_ms=5.0)
        assert next_frame_id() == "track1"  # the first tracking update goes at once
        meshes.submit(*_output("track2", answer=False), track_ms=5.0)  # held: 1/5 s has not passed
        meshes.submit(*_output("answer", answer=True), track_ms=None)  # answers are never held; it replaces track2
        assert next_frame_id() == "answer" and meshes.skipped == 1
        meshes.submit(*_output("track3", answer=False), track_ms=5.0)  # held (the clock stands still) ...
        meshes.submit(*_output("track4", answer=False), track_ms=5.0)  # ... and replaced by the newest
        clock.t += 0.2  # now due: the mesh thread dresses it when its wait ends
        assert next_frame_id() == "track4" and meshes.skipped == 2
    finally:
        meshes.close(WAIT_S)
    assert published.empty()


def test_cropped_images_rate_during_tracking():
    clock = Clock()
    robot = RobotIO(None, NodeConfig(hri_cropped_rate_hz=2.0), 10**6, lambda *a: None, lambda *a: None, clock=clock)
    rgb = np.zeros((20, 30, 3), np.uint8)

    def crops(answer: bool):
        out, _ = _output("f", answer)
        out = dataclasses.replace(out, frame=Frame(image=RgbImage(rgb)))
        return robot._crop_source(out, [(0.0, 0.0, 5.0, 5.0)])[0]

    assert crops(answer=True) is not None
    assert crops(answer=False) is None, "a tracking update right after: no crops"
    clock.t += 0.5
    assert crops(answer=False) is not None and crops(answer=False) is None
    assert crops(answer=True) is not None, "answers always"
