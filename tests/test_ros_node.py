"""The node over ROS 2 in one process, with a test double behind the pipeline seam."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker

from chatpose_ros.core.errors import InferenceError, ModelLoadError
from chatpose_ros.msg import PipelineStatus
from fakes import FakePipeline

pytestmark = pytest.mark.timeout(120)


def _img(w=64, h=48, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_query_after_image_publishes_pose_markers_answer(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, track_after_query=False)
    h.publish_and_wait(_img())
    h.ask("the person on the right")
    arr = h.wait_for("poses")[0]
    assert arr.query == "the person on the right" and arr.selected == 1 and len(arr.poses) == 2
    pose = h.wait_for("pose")[0]
    theta = np.asarray(pose.theta)
    assert theta.shape == (72,) and np.isfinite(theta).all()
    assert len(pose.joints) == 24 and pose.box_known and pose.box.x_offset == 32
    assert pose.header.frame_id == "camera_optical_frame"
    assert h.wait_for("answer")[0].data == "Sure, it is [POSE]."
    marr = h.wait_for("markers")[0]
    kinds = {(m.ns, m.type) for m in marr.markers}
    assert ("chatpose/bones", Marker.LINE_LIST) in kinds and ("chatpose/joints", Marker.SPHERE_LIST) in kinds
    assert ("chatpose/label", Marker.TEXT_VIEW_FACING) in kinds
    for m in marr.markers:
        if m.type == Marker.LINE_LIST:
            assert len(m.points) == 2 * 23
        if m.type == Marker.SPHERE_LIST:
            assert len(m.points) == 24
    assert fake.calls[0][0] == (48, 64, 3)
    assert h.wait_status("ok")[0].level == PipelineStatus.OK


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_every_encoding_reaches_the_pipeline_as_rgb(ros_harness, encoding):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, track_after_query=False)
    img = _img()
    h.publish_and_wait(img, encoding=encoding)
    h.ask("who is there?")
    h.wait_for("poses")
    frame = fake.images[0]
    if encoding == "mono8":
        assert np.abs(frame[..., 0].astype(int) - img.mean(2)).max() <= 1
    else:
        assert np.array_equal(frame, img)


def test_query_before_any_image_is_answered_from_text_with_warning(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake)
    h.ask("what pose would a tired person take?")
    assert h.wait_status("no_image")[0].level == PipelineStatus.WARN
    arr = h.wait_for("poses")[0]
    assert fake.calls[0][0] is None and len(arr.poses) == 1


def test_stale_image_is_not_used(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, max_image_age_s=0.2)
    h.publish_and_wait(_img())
    h.wait_until(lambda: time.monotonic() - h.node.session.latest.received > 0.3, what="the frame to age")
    h.ask("the person on the left")
    assert "old" in h.wait_status("stale_image")[0].message
    h.wait_for("poses")
    assert fake.calls[0][0] is None


def test_bad_images_and_queries_are_reported_and_node_keeps_serving(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, track_after_query=False, **{"model.max_image_pixels": 10_000})
    bad = [
        Image(height=4, width=4, encoding="yuv422_weird", step=8, data=bytes(32)),  # unknown encoding
        Image(height=0, width=0, encoding="rgb8", step=0, data=b""),                # zero-sized
        Image(height=10, width=10, encoding="rgb8", step=30, data=bytes(100)),      # truncated
        Image(height=200, width=200, encoding="rgb8", step=600, data=bytes(120000)),  # too many pixels
        Image(height=10, width=10, encoding="rgb8", step=10, data=bytes(300)),      # step < row
    ]
    for i, msg in enumerate(bad):
        h.publish_raw_image(msg)
        h.wait_frames(i + 1)
    h.wait_for("status", lambda ms: sum(m.code == "invalid_image" for m in ms) >= 5)
    for text in ["", "   \t\n ", "x" * 600, "\x00\x01\x02"]:
        h.ask(text)
    h.wait_for("status", lambda ms: sum(m.code == "invalid_query" for m in ms) >= 4)
    msgs = h.statuses("invalid_image")
    assert any("unsupported image encoding" in m.message for m in msgs)
    assert any("empty" in m.message for m in msgs)
    assert any("truncated" in m.message for m in msgs)
    assert any("max_image_pixels" in m.message for m in msgs)
    assert not fake.calls  # nothing bad reached the model
    h.publish_and_wait(_img())
    h.ask("the person on the right")
    assert h.wait_for("poses")[0].selected == 1


def test_non_utf8_query_is_reported(ros_harness):
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake)
    raw = bytearray(serialize_message(String(data="abcd")))
    raw[-5:-1] = b"\xff\xfe\xfd\xfc"  # corrupt the string body (CDR: 4-byte length, chars, NUL)
    h.query_pub.publish(bytes(raw))
    st = h.wait_status("invalid_query")[0]
    assert "UTF-8" in st.message
    h.ask("still there?")
    h.wait_for("poses")


def test_inference_exception_is_reported_and_next_query_served(ros_harness):
    fake = FakePipeline(fail_with=InferenceError("the model broke"))
    h = ros_harness(lambda cfg: fake)
    h.publish_and_wait(_img())
    h.ask("anyone")
    assert "the model broke" in h.wait_status("inference_failed")[0].message
    fake.fail_with = ZeroDivisionError("unexpected bug")
    h.ask("anyone again")
    h.wait_for("status", lambda ms: sum(m.code == "inference_failed" for m in ms) >= 2)
    fake.fail_with = None
    h.ask("and now")
    h.wait_for("poses")


def test_query_queue_is_bounded_and_reports_drops(ros_harness):
    gate = threading.Event()
    fake = FakePipeline(gate=gate)
    h = ros_harness(lambda cfg: fake, query_queue_size=2, track_after_query=False)
    h.publish_and_wait(_img())
    h.ask("query 0")
    assert fake.started.wait(30)  # query 0 is with the model; the queue holds the next two
    for i in range(1, 6):
        h.ask(f"query {i}")
    drops = h.wait_for("status", lambda ms: sum(m.code == "query_dropped" for m in ms) >= 3)
    assert h.node.session.queue_length == 2 and h.node.stats["queries_dropped"] == 3
    assert [m.query for m in drops if m.code == "query_dropped"] == ["query 1", "query 2", "query 3"]
    gate.set()
    answered = h.wait_for("poses", lambda ms: len(ms) >= 3)
    assert [a.query for a in answered] == ["query 0", "query 4", "query 5"]


def test_image_callback_never_waits_for_inference(ros_harness):
    gate = threading.Event()
    fake = FakePipeline(gate=gate)
    h = ros_harness(lambda cfg: fake, track_after_query=False)
    h.publish_and_wait(_img(seed=1))
    h.ask("slow one")
    assert fake.started.wait(30)  # inference now running, and it stays so until the gate opens
    before = h.node.stats["frames_received"]
    for i in range(10):
        h.publish_and_wait(_img(seed=i))  # every frame is stored while the model is busy
    assert h.node.stats["frames_received"] - before == 10
    assert h.node.session.busy and not h.received["poses"]
    gate.set()
    h.wait_for("poses")


def test_action_with_image_and_text_only(ros_harness):
    from std_msgs.msg import Header

    from chatpose_ros.action import EstimatePose
    from chatpose_ros.ros.convert import rgb_to_image

    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake)
    assert h.action.wait_for_server(timeout_sec=10)
    goal = EstimatePose.Goal(query="the person on the right", use_image=True,
                             image=rgb_to_image(_img(80, 60), Header(frame_id="cam")))
    feedback = []
    fut = h.action.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback.stage))
    res = h.wait_future(h.wait_future(fut).get_result_async()).result
    assert res.success and res.poses.selected == 1 and len(res.poses.poses) == 2
    assert res.poses.header.frame_id == "cam" and fake.calls[0][0] == (60, 80, 3)
    # a goal with a broken image is aborted with a reason
    bad = EstimatePose.Goal(query="x", use_image=True, image=Image(height=2, width=2, encoding="nope", step=6, data=bytes(12)))
    res = h.wait_future(h.wait_future(h.action.send_goal_async(bad)).get_result_async()).result
    assert not res.success and "invalid_image" in res.message


def test_model_load_failure_fails_configure_cleanly(ros_harness):
    def broken(cfg):
        raise ModelLoadError("weights file /nope/x.safetensors not found")

    h = ros_harness(broken, autostart=False)
    assert h.node.autostart() is False
    assert "not found" in h.node.model_state
    assert h.node._state_machine.current_state[1] == "unconfigured"


def test_lifecycle_cleanup_releases_model_and_can_reconfigure(ros_harness):
    fakes = []

    def factory(cfg):
        fakes.append(FakePipeline())
        return fakes[-1]

    h = ros_harness(factory)
    assert h.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    from chatpose_ros.action import EstimatePose

    assert h.action.wait_for_server(timeout_sec=10)
    assert not h.wait_future(h.action.send_goal_async(EstimatePose.Goal(query="while inactive"))).accepted  # refused
    assert h.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert fakes[0].closed and h.node.model.runner is None
    assert h.node.autostart()
    h.wait_for_connections()
    h.ask("hello again")
    h.wait_for("poses")
    assert len(fakes) == 2


def test_diagnostics_report_model_and_queue(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(), diagnostics_period_s=0.2)
    diag = h.wait_for("diagnostics")[0]
    st = diag.status[0]
    values = {kv.key: kv.value for kv in st.values}
    assert values["model_id"] == "fake:0" and values["model_state"] == "loaded" and "queue_length" in values
    assert values["runtime"] == "fake runtime"


def test_model_worker_crash_is_reported_restarted_and_node_keeps_serving(ros_harness):
    from fakes import crashing_pipeline

    h = ros_harness(crashing_pipeline, model_in_process=False, track_after_query=False, diagnostics_period_s=0.2)
    first_pid = h.node.model.runner.pid
    h.publish_and_wait(_img())
    h.ask("please crash")
    crashed = h.wait_status("worker_crashed")
    assert crashed[0].level == PipelineStatus.ERROR and "died" in crashed[0].message
    h.wait_status("worker_restarted")
    assert h.node.model.runner.pid != first_pid and h.node.model_state == "loaded"
    h.publish_and_wait(_img())  # the restart may take longer than max_image_age_s: a fresh frame
    h.ask("the person on the right")
    arr = h.wait_for("poses")[0]
    assert arr.query == "the person on the right" and arr.selected == 1

    def diag_reports_crash(msgs):
        values = [{kv.key: kv.value for kv in m.status[0].values} for m in msgs]
        return any(v.get("worker_crashes") == "1" and v["model_state"] == "loaded" for v in values)

    h.wait_for("diagnostics", diag_reports_crash)


def test_inactive_node_publishes_nothing(ros_harness):
    from chatpose_ros.core.session import Report

    h = ros_harness(lambda cfg: FakePipeline())
    assert h.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    h.node._emit([Report(PipelineStatus.WARN, "while_inactive", "must not be published")])
    assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    h.node._emit([Report(PipelineStatus.WARN, "while_active", "published")])
    h.wait_status("while_active")  # same publisher, reliable, in order: the first would have come before
    assert not h.statuses("while_inactive")


def test_action_feedback_shows_every_stage_in_order(ros_harness):
    """Each stage of the query is sent as feedback as it begins (the runner's and the profile's own
    too), not only the one that happens to be current when the goal looks. The last one,
    publishing, goes out just before the result: rclpy's ActionClient drops feedback that it
    receives after the result, so a client may miss that one."""
    from chatpose_ros.action import EstimatePose
    from fakes import StagedPipeline

    h = ros_harness(lambda cfg: StagedPipeline(stage_s=0.05), track_after_query=False)
    assert h.action.wait_for_server(timeout_sec=10)
    h.publish_and_wait(_img(80, 60))
    feedback = []
    fut = h.action.send_goal_async(EstimatePose.Goal(query="the person on the right"),
                                   feedback_callback=lambda f: feedback.append(f.feedback.stage))
    assert h.wait_future(h.wait_future(fut).get_result_async()).result.success
    expected = ["queued", "estimating", "decoding_image", *StagedPipeline.STAGES, "publishing"]
    assert feedback in (expected, expected[:-1]), feedback


def test_waiting_goals_hold_no_executor_thread(ros_harness):
    """Goals waiting for the model (more than the multi-threaded executor has threads) do not stop
    the node's other callbacks: frames keep arriving and /diagnostics keeps coming meanwhile."""
    from chatpose_ros.action import EstimatePose

    gate = threading.Event()
    h = ros_harness(lambda cfg: FakePipeline(gate=gate), track_after_query=False, query_queue_size=8,
                    diagnostics_period_s=0.2)
    assert h.action.wait_for_server(timeout_sec=10)
    h.publish_and_wait(_img(80, 60))
    futures = [h.action.send_goal_async(EstimatePose.Goal(query=f"the person on the right {i}")) for i in range(6)]
    handles = [h.wait_future(f) for f in futures]
    assert all(g.accepted for g in handles)
    h.wait_until(lambda: h.node.session.queue_length == 5, 30, "one goal answering, five queued")
    frames, diags = h.node.stats["frames_received"], len(h.received["diagnostics"])
    for _ in range(3):
        h.publish_and_wait(_img(80, 60))
    h.wait_for("diagnostics", lambda ms: len(ms) >= diags + 2, timeout=30)
    assert h.node.stats["frames_received"] == frames + 3
    gate.set()
    results = [h.wait_future(g.get_result_async()).result for g in handles]
    assert all(r.success for r in results)
