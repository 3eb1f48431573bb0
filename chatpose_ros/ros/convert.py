"""Conversions between ROS messages and core types. Pure functions: no node, no publishers."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from chatpose_ros.core.errors import InvalidQueryError
from chatpose_ros.core.image_codec import decode_compressed, decode_raw, encode_raw
from chatpose_ros.core.types import PersonPose, PoseResult
from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray


def string_from_cdr(raw: bytes) -> str:
    """Decode a serialised std_msgs/String strictly (rclpy's own deserialisation replaces invalid
    UTF-8 with U+FFFD silently). Raises InvalidQueryError for malformed data or invalid UTF-8.

    CDR layout: 4-byte encapsulation header (byte 1: 0 = big endian, 1 = little endian),
    uint32 length including the terminating NUL, the bytes, NUL.
    """
    if len(raw) < 8:
        raise InvalidQueryError(f"query message too short ({len(raw)} bytes)")
    n = int.from_bytes(raw[4:8], "little" if raw[1] & 1 else "big")
    if n < 1 or 8 + n > len(raw):
        raise InvalidQueryError(f"query message malformed (string length {n}, {len(raw)} bytes)")
    try:
        return bytes(raw[8:8 + n - 1]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidQueryError(f"query is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def image_to_rgb(msg: Image, max_pixels: int) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB. Raises InvalidImageError."""
    return decode_raw(msg.data, msg.width, msg.height, msg.encoding, msg.step, bool(msg.is_bigendian), max_pixels)


def compressed_to_rgb(msg: CompressedImage, max_pixels: int) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) -> (H, W, 3) uint8 RGB. Raises InvalidImageError."""
    return decode_compressed(bytes(msg.data), max_pixels)


def rgb_to_image(image: np.ndarray, header: Header, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image."""
    data, step = encode_raw(image, encoding)
    return Image(header=header, height=image.shape[0], width=image.shape[1], encoding=encoding,
                 is_bigendian=0, step=step, data=data)


def person_to_msg(person: PersonPose, header: Header, query: str, answer: str, model_id: str,
                  pose_forced: bool = False) -> SmplPose:
    """PersonPose -> SmplPose (see msg/SmplPose.msg for frames and units)."""
    msg = SmplPose()
    msg.header = header
    msg.track_id = int(person.track_id)
    msg.query = query
    msg.answer = answer
    msg.theta = np.asarray(person.theta, dtype=np.float32).reshape(72)
    msg.betas = np.asarray(person.betas, dtype=np.float32).reshape(10)
    if person.translation is not None:
        t = np.asarray(person.translation, dtype=float)
        msg.translation = Point(x=float(t[0]), y=float(t[1]), z=float(t[2]))
        msg.translation_known = True
        msg.translation_source = person.translation_source
    msg.joints = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(person.joints, dtype=float)]
    if person.box is not None:
        x0, y0, x1, y1 = (float(v) for v in person.box)
        x0, y0 = max(0.0, x0), max(0.0, y0)
        msg.box = RegionOfInterest(x_offset=int(round(x0)), y_offset=int(round(y0)),
                                   width=max(0, int(round(x1 - x0))), height=max(0, int(round(y1 - y0))))
        msg.box_known = True
    msg.confidence = float(np.clip(person.confidence, 0.0, 1.0))
    if person.joint_confidence is not None:
        msg.joint_confidence = np.clip(np.asarray(person.joint_confidence, np.float32), 0.0, 1.0).reshape(24)
    msg.generated = bool(person.generated)
    msg.pose_forced = bool(pose_forced)
    msg.estimator = person.estimator
    msg.model_id = model_id
    return msg


def result_to_msg(result: PoseResult, header: Header) -> SmplPoseArray:
    """PoseResult -> SmplPoseArray (poses best first, `selected` index kept)."""
    return SmplPoseArray(
        header=header, query=result.query, answer=result.answer,
        poses=[person_to_msg(p, header, result.query, result.answer, result.model_id, result.pose_forced)
               for p in result.people],
        selected=int(result.selected),
    )


def msg_to_result(arr: SmplPoseArray) -> PoseResult:
    """SmplPoseArray -> PoseResult (the inverse of result_to_msg, as far as messages carry it:
    no 2D keypoints, mesh or appearance)."""
    people = []
    for p in arr.poses:
        box = ((p.box.x_offset, p.box.y_offset, p.box.x_offset + p.box.width, p.box.y_offset + p.box.height)
               if p.box_known else None)
        t = p.translation
        people.append(PersonPose(theta=np.asarray(p.theta, np.float32), betas=np.asarray(p.betas, np.float32),
                                 joints=np.array([[j.x, j.y, j.z] for j in p.joints], np.float32), box=box,
                                 translation=np.array([t.x, t.y, t.z], np.float32) if p.translation_known else None,
                                 confidence=p.confidence, estimator=p.estimator, track_id=p.track_id,
                                 joint_confidence=np.asarray(p.joint_confidence, np.float32),
                                 generated=bool(p.generated), translation_source=p.translation_source))
    return PoseResult(query=arr.query, answer=arr.answer, people=tuple(people), selected=arr.selected,
                      model_id=arr.poses[0].model_id if arr.poses else "",
                      pose_forced=any(p.pose_forced for p in arr.poses))


def status_msg(level: int, code: str, message: str, query: str = "", stamp: Time | None = None,
               frame_id: str = "") -> PipelineStatus:
    """A PipelineStatus; `query` is cut to 200 characters."""
    header = Header(frame_id=frame_id)
    if stamp is not None:
        header.stamp = stamp
    return PipelineStatus(header=header, level=level, code=code, message=message, query=query[:200])
