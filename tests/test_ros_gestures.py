"""Gestures over ROS: a person who raises a hand in front of the node is published with
`hand_raised` on /humans/bodies/<id>/gestures at tracking updates (ROS4HRI has no gesture message:
a JSON document in std_msgs/String, ros/hri.py). In one process, loopback only."""
from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest
from hri_msgs.msg import IdsList
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from chatpose_ros.core.types import PoseResult
from chatpose_ros.tools import eval_gestures as ev
from fakes import make_person

pytestmark = pytest.mark.timeout(180)
QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


class RaisingPipeline:
    """One person in view who has had a hand up since the node started (the synthetic body of
    tools/eval_gestures, at the wall-clock time of each call)."""

    model_id = "raising-fake:0"

    def __init__(self):
        self.t0 = time.monotonic()
        params = {**{k: tune[0] for k, (tune, _) in ev.RANGES.items()}, "noise_px": 0.5, "yaw_deg": 0.0}
        self.sc = ev.Scenario("raise", "left", params, seed=0, start=-1.0, end=1e9, total=1e9)
        self.rng = np.random.default_rng(0)
        self.appearance = make_person(1).appearance
        self.lock = threading.Lock()

    def _person(self):
        with self.lock:
            p = ev.person_at(self.sc, time.monotonic() - self.t0, self.rng)
        return dataclasses.replace(p, track_id=-1, appearance=self.appearance, confidence=0.9)

    def estimate(self, image, query):
        return PoseResult(query=query, answer="Sure, it is [POSE].", people=(self._person(),), selected=0,
                          model_id=self.model_id, image_size=(image.shape[1], image.shape[0]))

    def observe(self, image, near=None):
        return [self._person()]

    def close(self):
        pass


def test_raised_hand_is_published_on_the_body_namespace(ros_harness):
    h = ros_harness(lambda cfg: RaisingPipeline(), tracking_rate_hz=15.0)
    tracked = []
    h.client.create_subscription(IdsList, "/humans/bodies/tracked", tracked.append, QOS)
    rgb = np.zeros((480, 640, 3), np.uint8)
    h.publish_and_wait(rgb)
    h.ask("the person raising a hand")
    h.wait_until(lambda: tracked and tracked[-1].ids, what="a body listed")
    bid = tracked[-1].ids[0]
    docs = []
    h.client.create_subscription(String, f"/humans/bodies/{bid}/gestures", lambda m: docs.append(json.loads(m.data)), QOS)
    t_end = time.monotonic() + 60
    while not any(g["name"] == "hand_raised" for d in docs for g in d["gestures"]):
        assert time.monotonic() < t_end, f"no hand_raised in {docs[-3:]}"
        h.publish_image(rgb)
        time.sleep(1 / 15)
    g = next(g for d in docs for g in d["gestures"] if g["name"] == "hand_raised")
    assert g["side"] == "left" and g["duration_s"] >= 0.5 and 0.5 < g["confidence"] <= 1.0
    assert all(d["frame_id"] == docs[0]["frame_id"] and d["stamp"] > 0 for d in docs)
