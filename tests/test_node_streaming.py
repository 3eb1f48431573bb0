"""Over ROS: a streaming profile's pose goes out before its words (~/poses, ~/pose, ~/markers as
soon as the person is chosen), the words on ~/answer_stream as deltas and as action feedback, the
complete answer on ~/answer and in the action result; no_match on ~/status. The pipeline holds
after its first word until the test has seen the partial state (events, not sleeps)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fakes import StreamingPipeline

pytestmark = pytest.mark.timeout(300)
FULL = "".join(StreamingPipeline.WORDS)


def test_poses_first_then_words_then_the_complete_answer(ros_harness):
    hold = threading.Event()
    pipe = StreamingPipeline(hold=hold)
    h = ros_harness(lambda cfg: pipe, track_after_query=False)
    h.publish_and_wait(np.zeros((40, 80, 3), np.uint8))
    h.ask("the person on the right")
    poses = h.wait_for("poses")
    assert poses[0].selected == 1 and poses[0].answer == "" and poses[0].query == "the person on the right"
    h.wait_for("pose")
    h.wait_for("markers")
    assert h.wait_for("answer_stream")[0].data == StreamingPipeline.WORDS[0]
    assert not h.received["answer"] and not h.statuses("ok"), "the words are still coming"
    hold.set()
    assert [m.data for m in h.wait_for("answer")] == [FULL]
    stream = h.wait_for("answer_stream", lambda ms: len(ms) == len(StreamingPipeline.WORDS))
    assert "".join(m.data for m in stream) == FULL
    h.wait_status("ok")
    assert len(h.received["poses"]) == 1, "the poses are published once"
    h.ask("nobody here")
    no_match = h.wait_status("no_match")
    assert no_match[0].level == 1 and no_match[0].query == "nobody here"
    assert h.wait_for("poses", lambda ms: len(ms) == 2)[-1].selected == -1


@pytest.mark.parametrize("executor", ["multi", "events"])
def test_action_feedback_carries_the_words_so_far(ros_harness, executor):
    """Under the events executor (one thread, the client's callbacks too) the feedback arrives
    only if a goal waiting for its answer leaves that thread free."""
    from chatpose_ros.action import EstimatePose

    hold = threading.Event()
    h = ros_harness(lambda cfg: StreamingPipeline(hold=hold), executor=executor, track_after_query=False)
    h.publish_and_wait(np.zeros((40, 80, 3), np.uint8))
    assert h.action.wait_for_server(timeout_sec=10)
    feedback: list[str] = []
    seen = threading.Event()

    def on_feedback(msg):
        feedback.append(msg.feedback.stage)
        if msg.feedback.stage.startswith("answering: "):
            seen.set()

    fut = h.action.send_goal_async(EstimatePose.Goal(query="the person on the right"), feedback_callback=on_feedback)
    handle = h.wait_future(fut)
    assert seen.wait(60), f"no partial answer in the feedback: {feedback}"
    assert f"answering: {StreamingPipeline.WORDS[0]}" in feedback
    hold.set()
    res = h.wait_future(handle.get_result_async()).result
    assert res.success and res.answer == FULL and res.poses.selected == 1
