"""RViz markers for SMPL results: bones (LINE_LIST), joints (SPHERE_LIST), a text label with
the query, and the body mesh (TRIANGLE_LIST) when a SMPL model file gives one.

Marker ids are stable per track: every marker of a person uses id = track_id (or
UNTRACKED_ID_BASE + index for untracked poses) in its own namespace, so RViz replaces a
person's markers in place from frame to frame.
"""
from __future__ import annotations

import struct

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from rclpy.serialization import serialize_message
from visualization_msgs.msg import Marker, MarkerArray

from chatpose_ros.core.smpl_layout import SMPL_BONES
from chatpose_ros.core.types import PersonPose, PoseResult

UNTRACKED_ID_BASE = 1000
NAMESPACES = ("chatpose/bones", "chatpose/joints", "chatpose/label", "chatpose/mesh")
_SELECTED = ColorRGBA(r=0.1, g=0.9, b=0.3, a=1.0)
_OTHER = ColorRGBA(r=0.7, g=0.7, b=0.7, a=0.8)
_MESH = ColorRGBA(r=0.6, g=0.75, b=0.95, a=0.6)
_UNSEEN = ColorRGBA(r=0.95, g=0.55, b=0.1, a=0.6)  # joints the camera did not see (joint_confidence 0)


def marker_id(person: PersonPose, index: int) -> int:
    return int(person.track_id) if person.track_id >= 0 else UNTRACKED_ID_BASE + index


def person_origin(person: PersonPose, index: int, default_depth_m: float) -> np.ndarray:
    """(3,) where the person's pelvis is drawn: its translation when known, else in front of
    the camera at `default_depth_m`, people side by side 1 m apart."""
    if person.translation is not None:
        return np.asarray(person.translation, dtype=float)
    return np.array([1.0 * index, 0.0, default_depth_m])


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in xyz]


def person_markers(person: PersonPose, index: int, header: Header, label: str, selected: bool,
                   lifetime_s: float, joint_diameter_m: float, default_depth_m: float) -> list[Marker]:
    """The markers of one person (bones, joints, label, and mesh when vertices are known)."""
    mid = marker_id(person, index)
    origin = person_origin(person, index, default_depth_m)
    joints = np.asarray(person.joints, dtype=float) + origin
    colour = _SELECTED if selected else _OTHER
    base = dict(header=header, id=mid, action=Marker.ADD, lifetime=_duration(lifetime_s),
                pose=Pose(orientation=Quaternion(w=1.0)), frame_locked=False)

    bones = Marker(ns=NAMESPACES[0], type=Marker.LINE_LIST, scale=Vector3(x=joint_diameter_m / 2), color=colour, **base)
    bones.points = _points(np.stack([joints[[p for p, _ in SMPL_BONES]], joints[[c for _, c in SMPL_BONES]]], 1).reshape(-1, 3))

    spheres = Marker(ns=NAMESPACES[1], type=Marker.SPHERE_LIST,
                     scale=Vector3(x=joint_diameter_m, y=joint_diameter_m, z=joint_diameter_m), color=colour, **base)
    spheres.points = _points(joints)
    if person.joint_confidence is not None:  # per-point colours: unseen joints stand out
        spheres.colors = [colour if c > 0 else _UNSEEN for c in np.asarray(person.joint_confidence).reshape(-1)]

    text_base = dict(base)
    head = joints[15]
    text_base["pose"] = Pose(position=Point(x=float(head[0]), y=float(head[1]) - 0.3, z=float(head[2])),
                             orientation=Quaternion(w=1.0))
    text = Marker(ns=NAMESPACES[2], type=Marker.TEXT_VIEW_FACING, scale=Vector3(z=0.12), color=colour,
                  text=label, **text_base)
    out = [bones, spheres, text]

    mesh = mesh_marker(person, index, header, lifetime_s, default_depth_m)
    if mesh is not None:
        marker, corners = mesh
        marker.points = _points(corners)
        out.append(marker)
    return out


def mesh_marker(person: PersonPose, index: int, header: Header, lifetime_s: float,
                default_depth_m: float) -> tuple[Marker, np.ndarray] | None:
    """The person's body mesh as a TRIANGLE_LIST marker *without* its points, and the points:
    (3 * F, 3) float64, three triangle corners per face (m, camera frame). None without a mesh.
    Fill `marker.points` (slow: one Point object per corner) or serialise it with
    `serialize_markers` (fast)."""
    if person.vertices is None or person.faces is None:
        return None
    verts = np.asarray(person.vertices, dtype=float) + person_origin(person, index, default_depth_m)
    marker = Marker(header=header, id=marker_id(person, index), action=Marker.ADD, lifetime=_duration(lifetime_s),
                    pose=Pose(orientation=Quaternion(w=1.0)), frame_locked=False, ns=NAMESPACES[3],
                    type=Marker.TRIANGLE_LIST, scale=Vector3(x=1.0, y=1.0, z=1.0), color=_MESH)
    return marker, verts[np.asarray(person.faces).reshape(-1)]


# A point no real marker holds: stands in for the points that serialize_markers writes itself.
_PROBE_XY = (1.2345678901234567e300, -9.876543210987654e-299)
_POINT_BYTES = 24  # geometry_msgs/Point in CDR: three float64


def serialize_markers(markers: list[Marker], points: dict[int, np.ndarray]) -> bytes:
    """The CDR bytes of MarkerArray(markers) in which markers[k].points are `points[k]` ((N, 3)
    float): the points are written by numpy instead of one geometry_msgs/Point object each (a
    body mesh has about 7,000 corners: tens of ms of Python per marker, and its conversion).
    Publishers take the bytes as they are (rclpy's publish of a serialised message).

    How: each such marker is serialised with one probe point, whose bytes are then replaced by
    the points. A Point is 24 bytes (a multiple of the 8-byte CDR alignment), so every field after
    it keeps its alignment; the sequence length before the probe is rewritten. An empty points
    array (an empty sequence has no alignment padding) and the rare case where the length's
    place is ambiguous are serialised the ordinary way (Point objects)."""
    probes = {k: (Point(x=_PROBE_XY[0], y=_PROBE_XY[1], z=float(k)), np.asarray(p, dtype=float).reshape(-1, 3))
              for k, p in points.items()}
    for k, (probe, pts) in probes.items():
        markers[k].points = [probe] if len(pts) else []
    raw = serialize_message(MarkerArray(markers=markers))
    order = "<" if raw[1] & 1 else ">"  # CDR encapsulation header: byte 1 = little-endian flag
    parts, pos = [], 0
    for k in sorted(probes):
        pts = probes[k][1]
        if not len(pts):
            continue
        at = raw.find(struct.pack(order + "3d", _PROBE_XY[0], _PROBE_XY[1], float(k)), pos)
        # the uint32 sequence length (1): just before the probe, or before 4 bytes of alignment
        # padding, which rclpy does not zero: when both words read 1 the length is ambiguous
        before = [struct.unpack_from(order + "I", raw, at - d)[0] == 1 for d in (4, 8)]
        if all(before) or not any(before):
            markers[k].points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in pts]
            return serialize_message(MarkerArray(markers=markers))
        count_at = at - 4 if before[0] else at - 8
        parts += [raw[pos:count_at], struct.pack(order + "I", len(pts)), raw[count_at + 4:at],
                  np.ascontiguousarray(pts, dtype=order + "f8").tobytes()]
        pos = at + _POINT_BYTES
    parts.append(raw[pos:])
    return b"".join(parts)


def result_markers(result: PoseResult, header: Header, lifetime_s: float = 1.0,
                   joint_diameter_m: float = 0.04, default_depth_m: float = 3.0) -> MarkerArray:
    """All markers of a result; the selected person is green and labelled with the query."""
    markers: list[Marker] = []
    for i, person in enumerate(result.people):
        selected = i == result.selected
        label = (result.query[:60] if selected and result.query else f"person {person.track_id if person.track_id >= 0 else i}")
        markers += person_markers(person, i, header, label, selected, lifetime_s, joint_diameter_m, default_depth_m)
    return MarkerArray(markers=markers)
