"""Run-time parameters (issue 21): the NodeConfig.RUNTIME ones are set while the node runs, through
the standard set-parameters path (what `ros2 param set` calls), checked as at configure; the
others are read-only."""
from __future__ import annotations

import numpy as np
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from chatpose_ros.core.config import NodeConfig
from fakes import FakePipeline


def test_runtime_parameters_are_validated_applied_and_the_rest_read_only(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(), tracking_rate_hz=30.0)
    node = h.node
    (ok,) = node.set_parameters([Parameter("tracking_rate_hz", value=5.0)])
    assert ok.successful and node.session.config.tracking_rate_hz == 5.0 and node.cfg.tracking_rate_hz == 5.0
    (bad,) = node.set_parameters([Parameter("tracking_rate_hz", value=-1.0)])
    assert not bad.successful and "tracking_rate_hz" in bad.reason
    assert node.get_parameter("tracking_rate_hz").value == 5.0 and node.session.config.tracking_rate_hz == 5.0
    (ro,) = node.set_parameters([Parameter("image_topic", value="/elsewhere")])
    assert not ro.successful and node.cfg.image_topic == "/camera/image_raw"
    (ok,) = node.set_parameters([Parameter("status_log_period_s", value=2.0)])
    assert ok.successful and node.log.throttle.period_s == 2.0
    # over the parameter service, as `ros2 param set` does
    client = AsyncParameterClient(h.client, "chatpose_node")
    assert client.wait_for_services(timeout_sec=30.0)
    res = h.wait_future(client.set_parameters([Parameter("marker_lifetime_s", value=3.0)]))
    assert res.results[0].successful and node._outputs.cfg.marker_lifetime_s == 3.0
    # tracking off at run time: the track is dropped
    h.publish_and_wait(np.zeros((40, 60, 3), np.uint8))
    h.ask("the person on the right")
    h.wait_until(lambda: node.session.tracking, what="a track")
    (ok,) = node.set_parameters([Parameter("track_after_query", value=False)])
    assert ok.successful and not node.session.tracking


def test_read_only_parameters_say_so_in_their_description(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(), autostart=False)
    for name in ("tracking_rate_hz", "image_topic", "model.profile"):
        desc = h.node.describe_parameter(name)
        runtime = name in NodeConfig.RUNTIME
        assert desc.read_only is not runtime
        assert ("Can be set at run time." if runtime else "Read-only") in desc.description
