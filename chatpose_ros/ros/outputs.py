"""How the node's results leave it: the publishing thread, the pose / marker / answer messages
of one result, and the log lines of the session's reports (throttled)."""
from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Callable

from std_msgs.msg import Header, String

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.session import LogThrottle, Output, Report
from chatpose_ros.msg import PipelineStatus

from . import convert, markers


class PublishThread:
    """Events published by `emit` from a thread of its own, in order, so that the model works on
    the next frame meanwhile; at most `backlog` batches wait (then `put` waits). `discard` drops
    what is still queued (at exit); `on_error(exc)` logs what a batch raised."""

    def __init__(self, emit: Callable[[list], None], on_error: Callable[[Exception], None], backlog: int) -> None:
        self._emit, self._on_error = emit, on_error
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._thread: threading.Thread | None = None
        self.discard = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chatpose_publisher", daemon=True)
        self._thread.start()

    def put(self, events) -> None:
        if events:
            self._queue.put(list(events))

    def stop(self, timeout: float) -> None:
        """Publish what is queued (unless discarding), then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while (events := self._queue.get()) is not None:
            if self.discard:
                continue
            try:
                self._emit(events)
            except Exception as exc:  # publishing must outlive any bug in a hook or a conversion
                self._on_error(exc)


def publish_result(out: Output, header: Header, pubs: dict, cfg: NodeConfig, mesh: BodyMesh | None, logger) -> Output:
    """Publish ~/poses, ~/pose (the chosen person), ~/markers and, for an answer, ~/answer of one
    (placed) output; returns it with the mesh of modes smpl / off applied (the Anny mesh follows
    later: ros/mesh_markers.py)."""
    arr = convert.result_to_msg(out.result, header)
    pubs["poses"].publish(arr)
    if 0 <= out.result.selected < len(arr.poses):
        pubs["pose"].publish(arr.poses[out.result.selected])
    if mesh is not None and mesh.mode != "anny":  # 'off' drops a pipeline's mesh, 'smpl' keeps it: no round trip
        out = dataclasses.replace(out, result=mesh.dress(out.result)[0])
    pubs["markers"].publish(markers.result_markers(out.result, header, cfg.marker_lifetime_s, cfg.marker_joint_diameter_m,
                                                   cfg.default_depth_m))
    if out.answer:
        # a spoken query's answer says which voice asked
        pubs["answer"].publish(String(data=f"[voice {out.source}] {out.result.answer}" if out.source else out.result.answer))
        logger.info(f"query '{out.result.query[:80]}' -> '{out.result.answer[:80]}' "
                    f"({len(out.result.people)} people, selected {out.result.selected})")
    return out


def log_report(rep: Report, throttle: LogThrottle, period_s: float, logger) -> None:
    """Log a report; a repeating one (per frame, whatever its source) once, then once per
    `period_s` with the count not logged."""
    skipped = throttle.admit(rep.repeating) if rep.repeating else 0
    if skipped is None:
        return
    more = f" ({skipped} more not logged in the last {period_s:g} s)" if skipped else ""
    # rclpy binds a severity to each logging call site: one call per severity
    if rep.level == PipelineStatus.OK:
        logger.info(f"[{rep.code}] {rep.message}{more}")
    elif rep.level == PipelineStatus.WARN:
        logger.warn(f"[{rep.code}] {rep.message}{more}")
    else:
        logger.error(f"[{rep.code}] {rep.message}{more}")
