"""The optional depth input (``depth_enabled``): an aligned depth image and its camera_info in,
people placed from it (core/depth.py does the work; this file only converts messages).

- activate: a raw (still serialised) subscription to ``depth_topic`` (only the header and the
  layout are read at arrival, ros/cdr.py) and one to its camera_info (``depth_camera_info_topic``,
  or beside the depth topic);
- ``place(result, header)`` on the publishing thread, after the monocular fit: each person's
  translation from the depth frame synchronised with the colour image's stamp;
- counts on /diagnostics (the session's counters): ``depth_frames_received``,
  ``translations_depth``, ``translations_monocular``, ``depth_no_reading`` and
  ``depth_disagrees`` (people the depth could not place), ``depth_fallback_<code>`` (frames
  that fell back, by reason).

Bad input is reported on ~/status (one per second per kind) with the code of its
``DepthInputError`` (``depth_encoding``, ``invalid_depth``, ``depth_size_mismatch``,
``depth_frame_mismatch``, ``depth_stale``, ``no_depth_camera_info``) or ``invalid_camera_info``
for a depth camera_info that cannot be used; the people then keep the monocular fit.
"""
from __future__ import annotations

import collections
from typing import Callable

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from chatpose_ros.core.depth import DepthImage, DepthPlacer
from chatpose_ros.core.errors import DepthInputError, InvalidCameraInfoError, InvalidImageError, NoDepthCameraInfoError
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.types import PoseResult
from chatpose_ros.msg import PipelineStatus

from . import cdr, tf

# Best effort matches reliable and best-effort drivers; a few frames queued for the sync
DEPTH_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
# A frame-level fallback that is expected while the depth stream starts or skips a frame (WARN);
# the others mean the wiring is wrong (ERROR)
WARN_CODES = frozenset({"depth_stale", "no_depth_camera_info"})


class DepthInput:
    """See the module docstring. `report(level, code, message, throttle_key)` publishes a
    throttled status; `stats` are the session's counters (on /diagnostics)."""

    def __init__(self, node, cfg: NodeConfig, report: Callable[[int, str, str, str], None],
                 stats: collections.Counter) -> None:
        self._node, self.cfg, self._report, self._stats = node, cfg, report, stats
        self.placer = DepthPlacer(cfg.depth_sync_slop_s)
        self.topic = cfg.depth_topic
        self.info_topic = cfg.depth_camera_info_topic or tf.camera_info_topic_for(cfg.depth_topic)
        self._subs: list = []

    def activate(self, callback_group=None) -> None:
        self._subs = [
            self._node.create_subscription(Image, self.topic, self._on_depth, DEPTH_QOS, callback_group=callback_group,
                                           raw=True),
            self._node.create_subscription(CameraInfo, self.info_topic, self._on_info, DEPTH_QOS,
                                           callback_group=callback_group)]

    def deactivate(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        self.placer.sync.clear()
        self.placer.set_intrinsics(None)

    def _on_depth(self, raw: bytes) -> None:
        self._stats["depth_frames_received"] += 1
        try:
            stamp, img = cdr.parse_image(raw)
            frame = DepthImage(img.data, img.width, img.height, img.encoding, img.step, img.is_bigendian,
                               stamp.sec + stamp.nanosec * 1e-9, stamp.frame_id)
        except InvalidImageError as exc:  # a malformed message
            self._stats["depth_frames_refused"] += 1
            self._report(PipelineStatus.ERROR, "invalid_depth", f"depth image on '{self.topic}' refused: {exc}",
                         "depth:invalid_depth")
            return
        except DepthInputError as exc:
            self._stats["depth_frames_refused"] += 1
            self._report(PipelineStatus.ERROR, exc.code, f"depth image on '{self.topic}' refused: {exc}; "
                         "translations from the monocular fit", f"depth:{exc.code}")
            return
        self.placer.add(frame)

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.placer.set_intrinsics(tf.intrinsics_from_msg(msg))
        except InvalidCameraInfoError as exc:
            self.placer.set_intrinsics(None)
            self._report(PipelineStatus.ERROR, exc.code, f"depth camera_info on '{self.info_topic}' refused: {exc}; "
                         "translations from the monocular fit", f"depth_camera_info:{exc}")

    def place(self, result: PoseResult, header: Header) -> PoseResult:
        """`result` (translations from the monocular fit) placed from the depth frame matched to
        the colour image of `header` (its stamp and frame id)."""
        out = self.placer.place(result, header.stamp.sec + header.stamp.nanosec * 1e-9, header.frame_id)
        for outcome, n in out.counts.items():
            self._stats[f"translations_{outcome}" if outcome in ("depth", "monocular") else f"depth_{outcome}"] += n
        if out.error is not None and any(not p.generated for p in result.people):
            exc = out.error
            self._stats[f"depth_fallback_{exc.code}"] += 1
            where = f"'{self.info_topic}'" if isinstance(exc, NoDepthCameraInfoError) else f"'{self.topic}'"
            level = PipelineStatus.WARN if exc.code in WARN_CODES else PipelineStatus.ERROR
            self._report(level, exc.code, f"depth ({where}) not used: {exc}; translations from the monocular fit",
                         f"depth:{exc.code}")
        return out.result
