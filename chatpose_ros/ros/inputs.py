"""What comes into the node: raw (still serialised) image and query subscriptions, converted and
submitted to the Session. A frame costs a header read and a layout check here (ros/cdr.py); its
pixels are decoded only if the model takes it."""
from __future__ import annotations

from typing import Callable

from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String

from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.errors import ChatPoseError, InvalidQueryError
from chatpose_ros.core.image_codec import check_raw_layout
from chatpose_ros.core.images import RawImage
from chatpose_ros.core.session import Frame, Session
from chatpose_ros.msg import PipelineStatus

from . import cdr, convert

QUERY_DEPTH = 10
STAMP_JUMP_NS = 1_000_000_000  # image stamps going back more than this: time jumped (a bag replay starting over)


class Inputs:
    """The image, compressed image and query subscriptions of `node` while it is active.

    `session()` gives the node's current Session; `emit(events)` publishes its events;
    `report(level, code, message, throttle_key)` a throttled status."""

    def __init__(self, node, cfg: NodeConfig, max_image_pixels: int, session: Callable[[], Session],
                 emit: Callable[[list], None], report: Callable[..., None]) -> None:
        self._node, self.cfg, self.max_image_pixels = node, cfg, max_image_pixels
        self._session, self._emit, self._report = session, emit, report
        self._last_stamp_ns = 0  # the newest image stamp so far (0: none)

    def subscribe(self) -> list:
        """The subscriptions (raw=True: frames stay serialised until the worker takes one; queries
        are decoded here so that non-UTF-8 payloads are reported, not fatal)."""
        cfg, node = self.cfg, self._node
        img_qos = qos_profile_sensor_data if cfg.image_qos == "sensor_data" else \
            QoSProfile(depth=cfg.image_qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        img_group = MutuallyExclusiveCallbackGroup()
        subs = [node.create_subscription(Image, cfg.image_topic, self.on_image, img_qos, callback_group=img_group, raw=True),
                node.create_subscription(String, cfg.query_topic, self.on_query, QUERY_DEPTH,
                                         callback_group=MutuallyExclusiveCallbackGroup(), raw=True)]
        if cfg.compressed_image_topic:
            subs.append(node.create_subscription(CompressedImage, cfg.compressed_image_topic, self.on_compressed, img_qos,
                                                 callback_group=img_group, raw=True))
        return subs

    def on_image(self, raw: bytes) -> None:
        self._put(raw, cdr.parse_image)

    def on_compressed(self, raw: bytes) -> None:
        self._put(raw, cdr.parse_compressed)

    def on_query(self, raw: bytes) -> None:
        session = self._session()
        session.stats["queries_received"] += 1
        try:
            text = convert.string_from_cdr(raw)
        except InvalidQueryError as exc:
            self._emit(session.refuse_query(exc))
            return
        self._emit(session.submit(text)[1])

    def _header(self, stamp: cdr.Stamped) -> Header:
        if not stamp.frame_id:
            self._report(PipelineStatus.WARN, "missing_frame_id", "image without header.frame_id: using "
                         f"frame_id '{self.cfg.frame_id}' (parameter frame_id) for its poses and TF", "missing_frame_id")
        return Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=stamp.frame_id or self.cfg.frame_id)

    def _put(self, raw: bytes, parse: Callable) -> None:
        session = self._session()
        try:
            stamp, image = parse(raw)
            if isinstance(image, RawImage):  # the layout only: pixels are decoded when the frame is used
                check_raw_layout(image.width, image.height, image.encoding, image.step, image.nbytes, self.max_image_pixels)
        except ChatPoseError as exc:
            self._emit(session.refuse_frame(exc.code, str(exc)))
            return
        delay, stamp_ns = None, stamp.sec * 10**9 + stamp.nanosec
        if stamp_ns > 0:  # transport + queueing delay (camera stamp to callback), ms
            delay = (self._node.get_clock().now().nanoseconds - stamp_ns) * 1e-6
            if stamp_ns < self._last_stamp_ns - STAMP_JUMP_NS:
                self._emit(session.clock_jumped((self._last_stamp_ns - stamp_ns) * 1e-9, "image stamps"))
            self._last_stamp_ns = stamp_ns
        session.put_frame(Frame(image=image, header=self._header(stamp)), delay_ms=delay)
