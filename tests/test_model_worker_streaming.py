"""Streaming answers and tracking through the model's runner (chatpose_ros.core.model_runners, worker_process, model_worker; no
ROS): on_pose / on_text events cross the worker process's pipe as they happen and run in the
caller's thread in order, before the reply; a profile that takes no callbacks streams nothing;
the tracker lives beside the model; ModelLoop turns it all into the Session's events."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.images import RgbImage
from chatpose_ros.core.model_runners import InProcessRunner
from chatpose_ros.core.model_worker import ModelLoop
from chatpose_ros.core.session import POSES, WORDS, AnswerDelta, Frame, Output, Report, Session, TrackRequest
from chatpose_ros.core.worker_process import ProcessRunner
from fakes import StagedPipeline, StreamingPipeline, echo_pipeline, make_person, staged_pipeline, streaming_pipeline

pytestmark = pytest.mark.timeout(300)

RGB = np.zeros((40, 80, 3), np.uint8)


class Follower:
    """A tracker that follows the first person of every frame (the profile's tracker's stand-in)."""

    lost = False

    def __init__(self) -> None:
        self.last_box, self.track_id = None, -1

    def start(self, person, track_id=None):
        self.last_box, self.track_id = person.box, track_id
        return person

    def update(self, people):
        if not people:
            return None
        self.last_box = people[0].box
        return dataclasses.replace(people[0], track_id=self.track_id)


@pytest.fixture(params=["process", "in_process"])
def make_runner(request):
    made = []

    def make(factory, tracker=None):
        cls = ProcessRunner if request.param == "process" else InProcessRunner
        made.append(cls(factory, PipelineConfig(), tracker))
        made[-1].start()
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_pose_then_words_reach_the_caller_in_order_before_the_reply(make_runner):
    r = make_runner(streaming_pipeline)
    seen: list = []
    result, size = r.estimate(RgbImage(RGB), "the person on the right",
                              on_pose=lambda res: seen.append(("pose", res.selected, res.answer)),
                              on_text=lambda delta: seen.append(("text", delta)))
    assert seen == [("pose", 1, "")] + [("text", w) for w in StreamingPipeline.WORDS]
    assert result.answer == "".join(StreamingPipeline.WORDS) and size == (80, 40) and result.grounding_confidence == 0.9


def test_without_callbacks_or_without_streaming_nothing_is_streamed(make_runner):
    result, _ = make_runner(streaming_pipeline).estimate(RgbImage(RGB), "the person on the right")
    assert result.answer == "".join(StreamingPipeline.WORDS)
    seen: list = []
    result, _ = make_runner(echo_pipeline).estimate(RgbImage(RGB), "q", on_pose=seen.append, on_text=seen.append)
    assert seen == [] and result.answer.startswith("sum=0")  # a profile of the first interface: answered at the end


def test_a_failing_callback_does_not_break_the_answer(make_runner):
    r = make_runner(streaming_pipeline)

    def boom(_):
        raise RuntimeError("publishing bug")

    result, _ = r.estimate(RgbImage(RGB), "q", on_pose=boom, on_text=boom)
    assert result.answer == "".join(StreamingPipeline.WORDS)
    assert r.estimate(RgbImage(RGB), "again")[0].answer == result.answer, "the pipe is still in step"


def test_the_tracker_lives_beside_the_model(make_runner):
    r = make_runner(echo_pipeline, Follower)
    seed = make_person(5, box=(0.0, 0.0, 39.0, 39.0), track_id=42)
    update, size = r.track(RgbImage(RGB), TrackRequest(near=seed.box, seed=seed))
    assert update.person.track_id == 42 and update.box == (0.0, 0.0, 39.0, 39.0) and update.people == () and size == (80, 40)
    update, _ = r.track(RgbImage(RGB), TrackRequest(near=update.box, everyone=True))
    assert update.person.track_id == 42 and len(update.people) == 2 and not update.lost
    untracked = make_runner(echo_pipeline)  # no tracker: nobody to follow
    assert untracked.track(RgbImage(RGB), TrackRequest(seed=seed))[0].lost


def _serve(session: Session, runner) -> tuple[list, ModelLoop, threading.Event]:
    events: list = []
    done = threading.Event()

    def emit(evs):
        events.extend(evs)
        if any(isinstance(e, Report) and e.code in ("ok", "no_match") for e in evs):
            done.set()

    loop = ModelLoop(session, runner, emit, on_error=lambda text: events.append(text))
    loop.start()
    return events, loop, done


@pytest.mark.parametrize("query, code", [("the person on the right", "ok"), ("nobody here", "no_match")])
def test_model_loop_publishes_poses_first_then_words_then_the_answer(make_runner, query, code):
    session = Session(NodeConfig(), max_query_chars=100, can_track=True)
    events, loop, done = _serve(session, make_runner(streaming_pipeline, Follower))
    try:
        session.put_frame(Frame(image=RgbImage(RGB)))
        job, _ = session.submit(query)
        assert done.wait(60) and job.done.is_set()
    finally:
        session.stop()
        loop.stop(30)
    kinds = [(type(e).__name__, getattr(e, "only", getattr(e, "code", ""))) for e in events]
    words = len(StreamingPipeline.WORDS)
    assert kinds == [("Output", POSES)] + [("AnswerDelta", "")] * words + [("Output", WORDS), ("Report", code)]
    posed, final = events[0], events[-2]
    assert isinstance(posed, Output) and posed.answer and posed.result.answer == ""
    assert "".join(e.delta for e in events if isinstance(e, AnswerDelta)) == final.result.answer == job.result.answer
    if code == "ok":  # the pose went out with the track id the tracker then follows
        assert posed.tracked and posed.tracked[0].track_id == final.result.selected_person.track_id >= 1
        assert session.tracking
    else:
        assert posed.result.selected == -1 and not session.tracking and session.stats["queries_no_match"] == 1


@pytest.mark.parametrize("with_image", [True, False])
def test_every_stage_of_an_answer_reaches_the_job_in_order(make_runner, with_image):
    """The runner's stage (decoding the image) and the pipeline's own (on_stage) reach the
    Session's job as they begin, across the worker's pipe too, between estimating and publishing;
    a profile without on_stage gets none of its own."""
    session = Session(NodeConfig(), max_query_chars=100)
    events, loop, done = _serve(session, make_runner(staged_pipeline))
    try:
        if with_image:
            session.put_frame(Frame(image=RgbImage(RGB)))
        job, _ = session.submit("the person on the right")
        assert done.wait(60) and job.done.is_set() and job.changed.is_set()
    finally:
        session.stop()
        loop.stop(30)
    decoding = ["decoding_image"] if with_image else []
    assert job.stages == ["queued", "estimating", *decoding, *StagedPipeline.STAGES, "publishing"]
    plain = Session(NodeConfig(), max_query_chars=100)
    events, loop, done = _serve(plain, make_runner(echo_pipeline))
    try:
        plain.put_frame(Frame(image=RgbImage(RGB)))
        job, _ = plain.submit("the person on the right")
        assert done.wait(60)
    finally:
        plain.stop()
        loop.stop(30)
    assert job.stages == ["queued", "estimating", "decoding_image", "publishing"]
