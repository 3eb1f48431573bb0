"""TF frames of the people a node sees (REP-155 body frames) and the target pose for follow-me.

Frames, each a child of the image's optical frame (the image header's frame_id), stamped with
the image's stamp, at every update (query answers and tracking updates):

- ``body_<id>`` for every body whose translation is known (REP-155: origin at the mid point of
  the hips, x forward out of the body, y to its left, z toward the head);
- ``chatpose_target``: the same frame for the person the latest query chose;
- with joint frames on: ``<link>_<id>`` (head, l_shoulder, l_elbow, l_wrist, ... r_ankle; see
  core.rep155.JOINT_FRAME_SMPL), children of ``body_<id>``.

People whose translation is unknown (no camera_info, too few keypoints seen) get no frame: a
robot must not follow a made-up position. ``geometry_msgs/PoseStamped`` of the target (the
``chatpose_target`` transform as a pose in the optical frame) goes on ``~/target_pose``.

Broadcasting: with a real ``tf2_ros`` installed (a ROS install), its TransformBroadcaster;
otherwise (PyPI-only environments) a publisher of ``tf2_msgs/TFMessage`` on ``/tf`` with the
broadcaster's QoS (reliable, volatile, depth 100), which every tf2 listener reads the same way.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Transform, TransformStamped, Vector3
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.rep155 import body_origin, body_rotation, joint_frames, quaternion_xyzw
from chatpose_ros.core.types import PersonPose

TARGET_FRAME = "chatpose_target"
BODY_FRAME_PREFIX = "body_"
TF_TOPIC = "/tf"
TF_QOS_DEPTH = 100  # tf2_ros.DynamicBroadcasterQoS


def camera_info_topic_for(image_topic: str) -> str:
    """The camera_info topic beside an image topic (image_pipeline convention):
    /camera/image_raw -> /camera/camera_info, image_raw -> camera_info."""
    head, sep, _ = image_topic.rpartition("/")
    return f"{head}{sep}camera_info"


def intrinsics_from_msg(msg) -> CameraIntrinsics:
    """sensor_msgs/CameraInfo -> CameraIntrinsics. Raises InvalidCameraInfoError (K = 0 from an
    uncalibrated camera, non-finite values, unknown distortion model)."""
    return CameraIntrinsics.from_camera_info(k=list(msg.k), d=list(msg.d), distortion_model=msg.distortion_model,
                                             width=msg.width, height=msg.height)


def camera_info_msg(intr: CameraIntrinsics, header) -> CameraInfo:
    """CameraIntrinsics -> sensor_msgs/CameraInfo (pinhole K and P, no distortion; the inverse of
    `intrinsics_from_msg` for an undistorted camera)."""
    k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return CameraInfo(header=header, width=intr.width, height=intr.height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=k, p=p, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])


def body_frame(bid: str) -> str:
    return f"{BODY_FRAME_PREFIX}{bid}"


def _transform(parent: str, child: str, stamp, position: np.ndarray, rotation: np.ndarray) -> TransformStamped:
    q = quaternion_xyzw(rotation)
    t = TransformStamped()
    t.header.frame_id, t.header.stamp, t.child_frame_id = parent, stamp, child
    t.transform = Transform(translation=Vector3(x=float(position[0]), y=float(position[1]), z=float(position[2])),
                            rotation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))
    return t


def person_transforms(person: PersonPose, translation: np.ndarray | None, header: Header, child: str,
                      joint_suffix: str = "") -> list[TransformStamped]:
    """The body frame `child` of one person in `header.frame_id` (empty when `translation`, the
    pelvis position in m, is None), plus its joint frames `<link>_<joint_suffix>` when
    `joint_suffix` is given."""
    if translation is None:
        return []
    out = [_transform(header.frame_id, child, header.stamp, body_origin(translation, person.joints),
                      body_rotation(person.theta))]
    if joint_suffix:
        for link, (pos, rot) in joint_frames(person.theta, person.joints).items():
            out.append(_transform(child, f"{link}_{joint_suffix}", header.stamp, pos, rot))
    return out


def target_pose(person: PersonPose, translation: np.ndarray, header: Header) -> PoseStamped:
    """The chosen person's body frame as a PoseStamped in the image's optical frame."""
    p = body_origin(translation, person.joints)
    q = quaternion_xyzw(body_rotation(person.theta))
    return PoseStamped(header=header, pose=Pose(position=Point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                                                orientation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                                                       w=float(q[3]))))


class TfBroadcaster:
    """Sends transforms on /tf: tf2_ros.TransformBroadcaster when importable, else a TFMessage
    publisher with the same topic and QoS. `close()` releases the publisher."""

    def __init__(self, node) -> None:
        self._node = node
        try:
            from tf2_ros import TransformBroadcaster  # a ROS install; not on PyPI
        except ImportError:
            TransformBroadcaster = None
        if TransformBroadcaster is not None:
            self._broadcaster = TransformBroadcaster(node)
            self._pub = None
        else:
            self._broadcaster = None
            qos = QoSProfile(depth=TF_QOS_DEPTH, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.VOLATILE)
            self._pub = node.create_publisher(TFMessage, TF_TOPIC, qos)

    def send(self, transforms: list[TransformStamped]) -> None:
        if not transforms:
            return
        if self._broadcaster is not None:
            self._broadcaster.sendTransform(transforms)
        else:
            self._pub.publish(TFMessage(transforms=transforms))

    def close(self) -> None:
        if self._pub is not None:
            self._node.destroy_publisher(self._pub)
            self._pub = None
