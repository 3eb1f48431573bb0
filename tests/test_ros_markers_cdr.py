"""The mesh marker written by numpy (ros/markers.serialize_markers) reads back equal to the one
rclpy serialises from Point objects, also with markers after it (alignment). (Not compared byte
for byte: rclpy leaves its alignment padding unzeroed.)"""
from __future__ import annotations

import dataclasses

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from chatpose_ros.ros import markers
from tests.fakes import make_person


def _meshed(seed: int, n_vertices: int, n_faces: int, track_id: int):
    rng = np.random.default_rng(seed)
    return dataclasses.replace(make_person(seed, box=(1.0, 2.0, 30.0, 60.0), track_id=track_id),
                               vertices=rng.normal(size=(n_vertices, 3)).astype(np.float32),
                               faces=rng.integers(0, n_vertices, (n_faces, 3)))


def test_serialized_mesh_markers_equal_rclpy_serialisation():
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    slow, fast, points = [], [], {}
    for i, person in enumerate([_meshed(0, 50, 80, 3), _meshed(1, 20, 7, -1)]):
        drawn = markers.person_markers(person, i, header, f"label {i}", i == 0, 0.5, 0.04, 3.0)
        slow += drawn
        fast += drawn[:3]  # bones, joints, label: then the mesh without points
        marker, corners = markers.mesh_marker(person, i, header, 0.5, 3.0)
        points[len(fast)] = corners
        fast.append(marker)
        fast[-1].text = "odd-length text after the points: keeps later fields honest"
        slow[-1].text = fast[-1].text
    raw = markers.serialize_markers(fast, points)
    back = deserialize_message(raw, MarkerArray)
    assert back == deserialize_message(serialize_message(MarkerArray(markers=slow)), MarkerArray)
    mesh = [m for m in back.markers if m.type == Marker.TRIANGLE_LIST]
    assert [len(m.points) for m in mesh] == [240, 21]
    assert back.markers[-1].text.startswith("odd-length")


def test_empty_points_serialised_the_ordinary_way():
    marker = Marker(ns=markers.NAMESPACES[3], type=Marker.TRIANGLE_LIST, text="after")
    raw = markers.serialize_markers([marker], {0: np.zeros((0, 3))})
    back = deserialize_message(raw, MarkerArray)
    assert back.markers[0].points == [] and back.markers[0].text == "after"
