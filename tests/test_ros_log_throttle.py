"""Over ROS: a repeating status (here no_camera_info, once per second on ~/status while frames
come without camera_info) is written to the node's log once, then once per status_log_period_s."""
from __future__ import annotations

import threading
import time

import numpy as np

from tests.fakes import FakePipeline


class RecordingLogger:
    """Stands in for the node's logger: keeps every line."""

    def __init__(self, real) -> None:
        self.real, self.lines, self.lock = real, [], threading.Lock()

    def _keep(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def info(self, line, *a, **k):
        self._keep(line)

    debug = info

    def warn(self, line, *a, **k):
        self._keep(line)

    warning = warn

    def error(self, line, *a, **k):
        self._keep(line)


def test_no_camera_info_is_logged_once_then_throttled(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(), tracking_rate_hz=50.0, status_log_period_s=3600.0)
    log = RecordingLogger(h.node.get_logger())
    h.node.get_logger = lambda: log  # the node's log lines, recorded
    rgb = np.zeros((40, 80, 3), np.uint8)
    h.publish_and_wait(rgb)
    h.ask("the person on the right")
    # frames (tracking updates, each without camera_info) until ~/status carried the status twice
    t_end = time.monotonic() + 120.0  # a bound for a loaded machine, not a timing
    while len(h.statuses("no_camera_info")) < 2:
        assert time.monotonic() < t_end, "no_camera_info not repeated on ~/status"
        h.publish_and_wait(rgb)
    assert h.node.log.sink.flush(30.0)  # the log's thread has written what was queued
    logged = [line for line in log.lines if "[no_camera_info]" in line]
    assert len(logged) == 1, logged
    assert h.node.stats["status_no_camera_info"] >= 2
