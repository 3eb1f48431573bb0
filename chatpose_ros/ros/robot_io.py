"""What a robot needs beside poses: camera_info in, TF and ROS4HRI bodies out, speech in.

One object per node (``ChatPoseNode.robot``), with the node's lifecycle:

- configure: publishers (ROS4HRI body topics when ``hri_enabled``; /tf, ``~/target_pose`` and
  ``~/target_pose_with_covariance`` when ``tf_enabled``);
- activate: the camera_info subscription (``camera_info_topic``, or beside the image topic),
  the LiveSpeech subscriptions (``speech_discover_voices``, ``speech_topics``) and, with
  ``depth_enabled``, the depth image and its camera_info (ros/depth_input.py);
- every output of the node: ``place(output)`` BEFORE the poses are published (translations from
  the camera's real intrinsics, or unknown; then from the depth image where it can be read),
  ``publish_tf(output, header, bodies)`` (TF, target pose) before them too, ``publish_hri`` after;
- follow-me (core.follow): each time the chosen person is published, ``~/target_pose`` (PoseStamped) and
  ``~/target_pose_with_covariance`` (PoseWithCovarianceStamped, the fresh-sighting covariance) with the
  frame's header; for each tracking update that did not publish them (``hold(TargetHidden)``), their last
  known pose again on ``~/target_pose`` with the header of the frame they were last seen in (its stamp says
  how old it is) and on ``~/target_pose_with_covariance`` with the current frame's header and a covariance
  growing with the time hidden (core.follow.covariance), up to core.follow.HOLD_S;
- deactivate / cleanup: subscriptions / publishers destroyed.

Bad input is reported (status code + log line, one per second per kind) and the node keeps
serving: ``no_camera_info`` (no intrinsics yet: translations unknown), ``invalid_camera_info``
(K = 0 from an uncalibrated camera, non-finite values; or a camera_info size that differs from
the image's), ``speech_not_final`` and ``empty_speech`` (LiveSpeech without final text).
"""
from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Callable

from geometry_msgs.msg import PoseStamped, PoseWithCovariance, PoseWithCovarianceStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.errors import ChatPoseError, InvalidCameraInfoError
from chatpose_ros.core.follow import TargetMemory, covariance
from chatpose_ros.core.images import RawImage
from chatpose_ros.core.logs import INFO, clip
from chatpose_ros.core.placement import place_result
from chatpose_ros.core.session import Output, RateLimit, TargetHidden
from chatpose_ros.msg import PipelineStatus

from . import hri, tf
from .depth_input import DepthInput

CAMERA_INFO_DEPTH = 5
SPEECH_DEPTH = 10
VOICE_LOG_PERIOD_S = 1.0  # spoken queries in the log: at most one a second per voice (all reach the model)
# raw encodings whose rows decode alone (no whole-image statistic, no demosaicing across rows):
# the ROS4HRI crops decode only the band of rows that holds the bodies
ROW_LOCAL_ENCODINGS = frozenset({"rgb8", "bgr8", "rgba8", "bgra8", "mono8"})

# report(level, code, message, throttle_key)
ReportFn = Callable[[int, str, str, str], None]


class RobotIO:
    """See the module docstring. `report` publishes a status (throttled by key); `submit_speech`
    queues a query with the voice id as its source; `clock` (monotonic s) paces the crops;
    `stats`: the session's counters (the depth input counts there)."""

    def __init__(self, node, cfg: NodeConfig, max_image_pixels: int, report: ReportFn,
                 submit_speech: Callable[[str, str], None], clock: Callable[[], float] = time.monotonic,
                 stats: collections.Counter | None = None) -> None:
        self._node = node
        self.cfg = cfg
        self._max_pixels = max_image_pixels
        self._report = report
        self._submit_speech = submit_speech
        self._lock = threading.Lock()
        self._intrinsics: CameraIntrinsics | None = None
        self._ids = hri.BodyIds()
        self._hri: hri.HriBodyPublisher | None = None
        self._tf: tf.TfBroadcaster | None = None
        self._target_pub = None
        self._target_cov_pub = None
        self._clock = clock
        self._memory = TargetMemory()  # the chosen person as last published (follow-me)
        self._seen_header: Header | None = None  # the header of the frame they were last seen in
        self._camera_sub = None
        self._speech: hri.SpeechInput | None = None
        self._crop_rate = RateLimit(cfg.hri_cropped_rate_hz, clock)  # cropped images of tracking updates (publishing thread)
        self.camera_info_topic = cfg.camera_info_topic or tf.camera_info_topic_for(cfg.image_topic)
        self.depth = DepthInput(node, cfg, report, collections.Counter() if stats is None else stats) \
            if cfg.depth_enabled else None

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        with self._lock:
            return self._intrinsics

    # ------------------------------------------------------------------ lifecycle
    def configure(self, out_qos: QoSProfile) -> None:
        if self.cfg.hri_enabled:
            self._hri = hri.HriBodyPublisher(self._node, out_qos)
        if self.cfg.tf_enabled:
            self._tf = tf.TfBroadcaster(self._node)
            self._target_pub = self._node.create_publisher(PoseStamped, "~/target_pose", out_qos)
            self._target_cov_pub = self._node.create_publisher(PoseWithCovarianceStamped, "~/target_pose_with_covariance",
                                                               out_qos)

    def activate(self, callback_group=None) -> None:
        self._camera_sub = self._node.create_subscription(
            CameraInfo, self.camera_info_topic, self._on_camera_info,
            QoSProfile(depth=CAMERA_INFO_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT), callback_group=callback_group)
        self._speech = hri.SpeechInput(self._node, self._on_speech, self._on_speech_refused,
                                       hri.split_topics(self.cfg.speech_topics), self.cfg.speech_discover_voices,
                                       SPEECH_DEPTH, callback_group=callback_group)
        if self.depth is not None:
            self.depth.activate(callback_group)

    def deactivate(self) -> None:
        if self._camera_sub is not None:
            self._node.destroy_subscription(self._camera_sub)
            self._camera_sub = None
        if self._speech is not None:
            self._speech.close()
            self._speech = None
        if self.depth is not None:
            self.depth.deactivate()

    def release(self) -> None:
        self.deactivate()
        if self._hri is not None:
            self._hri.close()
            self._hri = None
        if self._tf is not None:
            self._tf.close()
            self._tf = None
        for pub in (self._target_pub, self._target_cov_pub):
            if pub is not None:
                self._node.destroy_publisher(pub)
        self._target_pub = self._target_cov_pub = None
        self._memory.forget()
        with self._lock:
            self._intrinsics = None

    # ------------------------------------------------------------------ inputs
    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            intr = tf.intrinsics_from_msg(msg)
        except InvalidCameraInfoError as exc:
            with self._lock:
                self._intrinsics = None
            self._report(PipelineStatus.ERROR, exc.code, f"camera_info on '{self.camera_info_topic}' refused: {exc}; "
                         "translations unknown until a valid one arrives", f"camera_info:{exc}")
            return
        with self._lock:
            self._intrinsics = intr

    def _on_speech(self, text: str, voice: str) -> None:
        self._node.log.write(INFO, f"voice_query:{voice}", f"query from voice '{clip(voice)}': '{clip(text)}'",
                             VOICE_LOG_PERIOD_S)
        self._submit_speech(text, voice)

    def _on_speech_refused(self, code: str, message: str, voice: str) -> None:
        self._report(PipelineStatus.WARN, code, message, f"speech:{code}:{voice}")

    # ------------------------------------------------------------------ outputs
    def place(self, out: Output) -> Output:
        """`out` with translations from the camera's intrinsics (or unknown, reported), then, with
        depth_enabled, from the depth image synchronised with the frame where it can be read."""
        intr = self.intrinsics
        size = out.result.image_size
        if intr is None:
            if out.frame is not None:
                self._report(PipelineStatus.WARN, "no_camera_info",
                             f"no valid camera_info on '{self.camera_info_topic}': translations unknown "
                             "(translation_known false, no TF)", "no_camera_info")
        elif size is not None and not intr.matches_image(*size):
            self._report(PipelineStatus.ERROR, "invalid_camera_info",
                         f"camera_info on '{self.camera_info_topic}' is for {intr.width} x {intr.height} px but the image "
                         f"is {size[0]} x {size[1]} px: translations unknown", "camera_info:size")
            intr = None
        result = place_result(out.result, intr)
        if self.depth is not None and out.frame is not None and out.frame.header is not None:
            result = self.depth.place(result, out.frame.header)
        return dataclasses.replace(out, result=result)

    def _crop_source(self, out: Output, boxes: list) -> tuple:
        """(pixels for the ROS4HRI crops or None, the image row they start at). Crops cost a decode
        of the frame here: answers always get them, tracking updates at most hri_cropped_rate_hz;
        a raw frame of a row-local encoding is decoded only in the band of rows of `boxes`."""
        if out.frame is None:
            return None, 0
        if out.answer:
            self._crop_rate.mark()
        elif not self._crop_rate.admit():
            return None, 0
        image = out.frame.image
        try:
            if isinstance(image, RawImage) and image.encoding in ROW_LOCAL_ENCODINGS and out.result.image_size:
                top = min(image.height, max(0, int(min(b[1] for b in boxes))))
                bottom = max(top + 1, min(image.height, int(max(b[3] for b in boxes)) + 2))
                band = memoryview(image.data).cast("B")[top * image.step:bottom * image.step]
                return dataclasses.replace(image, data=band, height=bottom - top).decode(self._max_pixels), top
            return image.decode(self._max_pixels), 0
        except ChatPoseError:
            return None, 0  # the model decoded it; a failure here only loses the crops

    def bodies(self, result) -> list[tuple[str, int]]:
        """(ROS4HRI body id, index in `result.people`) of each body of one output (ids follow the
        tracks: call once per output, then pass to publish_tf and publish_hri)."""
        if self._hri is None and self._tf is None:
            return []
        idx = [i for i, p in enumerate(result.people) if hri.is_body(p)]
        return list(zip(self._ids.assign([result.people[i] for i in idx]), idx))

    def publish_tf(self, out: Output, header: Header, bodies: list[tuple[str, int]]) -> None:
        """TF frames and the target pose of one (placed) output: before its poses (a transform
        arrives before the messages that refer to its frame; a robot follows TF)."""
        if self._tf is None:
            return
        result = out.result
        transforms = []
        for bid, i in bodies:
            person = result.people[i]
            suffix = bid if self.cfg.tf_joint_frames else ""
            transforms += tf.person_transforms(person, person.translation, header, tf.body_frame(bid), suffix)
        chosen = result.selected_person
        if chosen is not None and chosen.translation is not None:
            transforms += tf.person_transforms(chosen, chosen.translation, header, tf.TARGET_FRAME)
        self._tf.send(transforms)
        if chosen is not None and chosen.translation is not None:
            pose = tf.target_pose(chosen, chosen.translation, header)
            self._target_pub.publish(pose)
            self._target_cov_pub.publish(_with_covariance(pose, covariance(0.0)))
            self._memory.seen(chosen, self._clock())
            self._seen_header = header

    def publish_hri(self, out: Output, header: Header, bodies: list[tuple[str, int]]) -> None:
        """The ROS4HRI body topics of one (placed) output: after its poses (the crops decode the image)."""
        if self._hri is None:
            return
        result = out.result
        rgb, top = self._crop_source(out, [result.people[i].box for _, i in bodies]) if bodies else (None, 0)
        self._hri.publish(result, header, rgb, bodies, rgb_top=top, gestures=not out.answer)

    def hold(self, hidden: TargetHidden) -> None:
        """A tracking update without the chosen person: their last known pose again (module docstring), or
        nothing when there is none (never placed, another track, or hidden longer than HOLD_S)."""
        if self._tf is None:
            return
        held = self._memory.held(self._clock(), hidden.track_id)
        if held is None or self._seen_header is None:
            return
        pose = tf.target_pose(held.person, held.person.translation, self._seen_header)
        self._target_pub.publish(pose)
        now = hidden.frame.header if isinstance(hidden.frame.header, Header) else self._seen_header
        self._target_cov_pub.publish(_with_covariance(tf.target_pose(held.person, held.person.translation, now),
                                                      held.covariance))


def _with_covariance(pose: PoseStamped, cov) -> PoseWithCovarianceStamped:
    """`pose` with a (6, 6) covariance (x, y, z, rotation about x, y, z; row-major)."""
    return PoseWithCovarianceStamped(header=pose.header,
                                     pose=PoseWithCovariance(pose=pose.pose, covariance=[float(v) for v in cov.ravel()]))
