"""The node's scheduling core (chatpose_ros.core.session), without ROS and without sleeps: the
clock is driven by hand and every call is non-blocking."""
from __future__ import annotations

import dataclasses
import sys
import threading

import pytest

from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.errors import InferenceError, InvalidImageError
from chatpose_ros.core.model_runners import TrackerHost
from chatpose_ros.core.session import (ERROR, OK, REPORT_THROTTLE_S, WARN, Answer, Frame, Output, Report, Session,
                                       TargetHidden, Track, TrackUpdate)
from chatpose_ros.core.types import PoseResult
from fakes import make_person


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class StubTracker:
    """Follows the first person of every frame; lost after `lose_after` empty frames."""

    def __init__(self, lose_after: int = 1) -> None:
        self.track_id, self.misses, self.lose_after, self.lost = -1, 0, lose_after, False
        self.last_box = None

    def start(self, person, track_id=None):
        self.last_box, self.track_id = person.box, track_id
        return dataclasses.replace(person, track_id=self.track_id)

    def update(self, people):
        if not people:
            self.misses += 1
            self.lost = self.misses > self.lose_after
            return None
        self.misses, self.last_box = 0, people[0].box
        return dataclasses.replace(people[0], track_id=self.track_id)


class PeopleSeen:
    """The model's observe: the people the test says are in the frame."""

    def __init__(self, people) -> None:
        self.people = people

    def observe(self, rgb, near=None):
        return list(self.people)


def _session(clock=None, tracker=StubTracker, **cfg):
    return Session(NodeConfig(**cfg), max_query_chars=50, can_track=tracker is not None, clock=clock or Clock())


def _finish_track(s: Session, host: TrackerHost, work: Track, people, **kw):
    """What the model loop does with a Track: the tracker beside the model, then the session."""
    return s.finish_track(work, host.track(PeopleSeen(people), None, work.request), **kw)


def _result(query="q", selected=1):
    people = (make_person(1, box=(0.0, 0.0, 10.0, 20.0)), make_person(2, box=(10.0, 0.0, 20.0, 20.0)))
    return PoseResult(query=query, answer="Sure, it is [POSE].", people=people, selected=selected, model_id="m")


def _codes(events):
    return [e.code for e in events if isinstance(e, Report)]


def test_frames_are_kept_undecoded_latest_wins():
    decoded = []
    s = _session()
    for i in range(5):
        s.put_frame(Frame(image=lambda i=i: decoded.append(i), header=f"h{i}"))
    assert s.latest.header == "h4" and s.latest.seq == 5 and s.stats["frames_received"] == 5
    assert decoded == []  # the session never decodes: only the worker, for the frame it takes


def test_query_uses_latest_frame_and_publishes_answer_then_ok():
    clock = Clock()
    s = _session(clock, track_after_query=False)
    s.put_frame(Frame(image="img", header="hdr"))
    job, events = s.submit("  the person\non the right ")
    assert events == [] and job.query == "the person on the right"
    work = s.take()
    assert isinstance(work, Answer) and work.frame.header == "hdr" and work.reports == () and s.busy
    assert job.stage == "estimating"
    clock.t += 0.25
    events = s.finish_answer(work, _result(job.query))
    out, rep = events
    assert isinstance(out, Output) and out.answer and out.frame.header == "hdr" and out.tracked == []
    assert rep.level == OK and rep.code == "ok" and "250 ms" in rep.message
    assert job.done.is_set() and job.result is out.result and not s.busy
    assert s.snapshot()["last_latency_ms"] == "250.0" and s.stats["queries_answered"] == 1


def test_no_image_and_stale_image_answer_from_text():
    clock = Clock()
    s = _session(clock, max_image_age_s=2.0)
    s.submit("who")
    work = s.take()
    assert work.frame is None and _codes(work.reports) == ["no_image"] and work.reports[0].level == WARN
    s.finish_answer(work, _result(selected=-1))
    s.put_frame(Frame(image="img"))
    clock.t += 2.5
    s.submit("who now")
    work = s.take()
    assert work.frame is None and _codes(work.reports) == ["stale_image"] and "2.5 s old" in work.reports[0].message


def test_explicit_image_is_never_stale():
    clock = Clock()
    s = _session(clock, max_image_age_s=1.0)
    goal = Frame(image="goal")
    s.submit("who", frame=goal)
    clock.t += 100
    work = s.take()
    assert work.frame is goal and work.reports == ()


def test_queue_is_bounded_oldest_dropped_and_reported():
    s = _session(query_queue_size=2)
    jobs = [s.submit(f"query {i}")[0] for i in range(3)]
    _, events = s.submit("query 3")
    assert jobs[0].done.is_set() and jobs[0].code == "query_dropped"
    assert jobs[1].done.is_set() and s.queue_length == 2 and s.stats["queries_dropped"] == 2
    assert _codes(events) == ["query_dropped"] and "query 1" in events[0].message
    assert [s.take().job.query for _ in range(2)] == ["query 2", "query 3"]


def test_invalid_queries_are_refused_and_counted():
    s = _session()
    for bad in ["", " \t", "x" * 51, b"\xff\xfe", 3]:
        job, events = s.submit(bad)
        assert job is None and _codes(events) == ["invalid_query"] and events[0].level == ERROR
    assert s.stats["queries_invalid"] == 5 and s.queue_length == 0


def test_cancelled_job_is_skipped():
    s = _session()
    a, _ = s.submit("first")
    b, _ = s.submit("second")
    a.cancelled = True
    assert s.take().job is b
    assert a.done.is_set() and a.code == "cancelled"


def test_failures_complete_the_job_with_the_code():
    s = _session()
    job, _ = s.submit("q1")
    events = s.fail(s.take(), InferenceError("the model broke"))
    assert job.done.is_set() and job.code == "inference_failed" and "the model broke" in events[0].message
    job, _ = s.submit("q2")
    events = s.fail(s.take(), ZeroDivisionError("bug"))
    assert job.code == "inference_failed" and "ZeroDivisionError" in job.error and not s.busy


def test_bad_frames_reported_once_per_second_per_message():
    clock = Clock()
    s = _session(clock)
    first = s.refuse_frame("invalid_image", "unsupported image encoding 'x'")
    again = [s.refuse_frame("invalid_image", "unsupported image encoding 'x'") for _ in range(29)]
    other = s.refuse_frame("invalid_image", "image is empty (0x0)")
    assert _codes(first) == ["invalid_image"] and all(e == [] for e in again) and _codes(other) == ["invalid_image"]
    assert s.stats["suppressed_reports"] == 29 and s.stats["frames_invalid"] == 31
    clock.t += REPORT_THROTTLE_S
    assert _codes(s.refuse_frame("invalid_image", "unsupported image encoding 'x'")) == ["invalid_image"]


def test_throttle_table_stays_small():
    clock = Clock()
    s = _session(clock)
    for i in range(2000):
        s.report(ERROR, "invalid_image", "m", throttle_key=f"k{i}")
        clock.t += 0.01
    assert len(s._throttle) <= 257


def test_without_reacquisition_a_lost_track_ends():
    clock = Clock()
    s = _session(clock, tracking_rate_hz=10.0, reacquire_s=0.0)
    host = TrackerHost(StubTracker)
    s.put_frame(Frame(image="f1"))
    s.submit("the person on the right")
    s.finish_answer(s.take(), _result("the person on the right"))
    codes = []
    while "track_lost" not in codes:
        assert len(codes) < 5
        clock.t += 0.1
        s.put_frame(Frame(image="f"))
        codes += _codes(_finish_track(s, host, s.take(), [])) or [""]
    assert not s.tracking and not s.searching
    s.put_frame(Frame(image="f9"))
    clock.t += 1
    assert s.take() is None


def test_tracking_after_query_at_its_cadence_until_lost_then_searched_for():
    clock = Clock()
    s = _session(clock, tracking_rate_hz=10.0, reacquire_s=10.0)
    host = TrackerHost(StubTracker)
    s.put_frame(Frame(image="f1", header="h1"))
    s.submit("the person on the right")
    events = s.finish_answer(s.take(), _result("the person on the right"))
    track_id = events[0].tracked[0].track_id
    assert track_id >= 1 and events[0].result.people[0].track_id == -1
    assert s.tracking and s.take() is None  # no new frame since the answer
    s.put_frame(Frame(image="f2", header="h2"))
    work = s.take()
    assert isinstance(work, Track) and work.frame.header == "h2" and work.near == (10.0, 0.0, 20.0, 20.0)
    assert work.request.seed.track_id == track_id and not work.request.keep, "the first update starts the tracker"
    out = _finish_track(s, host, work, [make_person(3, box=(11.0, 0.0, 21.0, 20.0))], model_id="m", image_size=(20, 20))
    assert out[0].answer is False and out[0].tracked[0].track_id == track_id and out[0].frame.header == "h2"
    assert out[0].result.query == "the person on the right"
    s.put_frame(Frame(image="f3"))
    assert s.take() is None  # too soon: 10 Hz
    clock.t += 0.1
    work = s.take()
    assert isinstance(work, Track) and work.request.seed is None and work.near == (11.0, 0.0, 21.0, 20.0)
    hidden = _finish_track(s, host, work, [])  # one miss: not yet lost, the follower holds their position
    assert [(type(e), e.track_id, e.hidden_s) for e in hidden] == [(TargetHidden, track_id, 0.0)]
    s.put_frame(Frame(image="f4"))
    clock.t += 0.1
    events = _finish_track(s, host, s.take(), [])
    assert _codes(events) == ["track_lost"] and not s.tracking and s.searching
    s.put_frame(Frame(image="f5"))
    clock.t += 1
    work = s.take()  # lost: looked for in the whole frame, by appearance
    assert isinstance(work, Track) and work.request.reacquire and work.near is None
    events = _finish_track(s, host, work, [])  # hidden since 1.2 s: said once
    assert [type(e) for e in events] == [TargetHidden, Report] and _codes(events) == ["target_hidden"] and s.searching
    clock.t += s.config.reacquire_s
    s.put_frame(Frame(image="f6"))
    assert _finish_track(s, host, s.take(), []) == [] and not s.searching  # not found in time: the track ends
    s.put_frame(Frame(image="f7"))
    clock.t += 1
    assert s.take() is None


def test_queries_go_before_tracking_and_a_new_query_replaces_the_track():
    clock = Clock()
    s = _session(clock)
    s.put_frame(Frame(image="f1"))
    s.submit("the person on the right")
    s.finish_answer(s.take(), _result())
    s.put_frame(Frame(image="f2"))
    clock.t += 1
    s.submit("the person on the left")
    work = s.take()
    assert isinstance(work, Answer)
    s.finish_answer(work, _result(selected=0))
    assert s.tracking


def test_no_tracking_without_box_image_or_switch():
    s = _session(track_after_query=False)
    s.put_frame(Frame(image="f"))
    s.submit("q")
    s.finish_answer(s.take(), _result())
    assert not s.tracking
    s = _session()
    s.submit("q")  # no image: text only
    s.finish_answer(s.take(), _result())
    assert not s.tracking
    s = _session(tracker=None)
    s.put_frame(Frame(image="f"))
    s.submit("q")
    s.finish_answer(s.take(), _result())
    assert not s.tracking


def test_tracking_errors_are_throttled():
    clock = Clock()
    s = _session(clock)
    s.put_frame(Frame(image="f"))
    s.submit("q")
    s.finish_answer(s.take(), _result())
    reports = []
    for _ in range(5):
        s.put_frame(Frame(image="f"))
        clock.t += 0.2
        reports += s.fail(s.take(), InvalidImageError("truncated"))
    assert len(reports) == 1 and reports[0].code == "invalid_image" and s.stats["suppressed_reports"] == 4


def test_stop_fails_pending_and_wakes_a_waiting_worker():
    s = _session()
    jobs = [s.submit(f"q{i}")[0] for i in range(3)]
    got = []
    s.take()  # q0 is running
    s.stop()
    assert all(j.done.is_set() and j.code == "query_dropped" for j in jobs[1:]) and s.queue_length == 0
    t = threading.Thread(target=lambda: got.append(s.take(timeout=60)))
    t.start()
    t.join(timeout=60)
    assert got == [None]
    s.start()
    s.submit("again")
    assert s.take().job.query == "again"


def test_take_blocks_until_a_query_arrives():
    s = _session()
    got = []
    started = threading.Event()

    def worker():
        started.set()
        got.append(s.take(timeout=60))

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    s.submit("hello")
    t.join(timeout=60)
    assert got[0].job.query == "hello"


def test_reset_forgets_frame_and_track():
    s = _session()
    s.put_frame(Frame(image="f"))
    s.submit("q")
    s.finish_answer(s.take(), _result())
    s.reset()
    assert s.latest is None and not s.tracking


def test_session_runs_without_ros():
    import subprocess

    code = "import sys, chatpose_ros.core.session; sys.exit('rclpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("level", [OK, WARN, ERROR])
def test_report_levels_match_pipeline_status(level):
    # the ROS layer copies these numbers into chatpose_ros/PipelineStatus.level
    import pathlib

    msg = (pathlib.Path(__file__).resolve().parents[1] / "msg" / "PipelineStatus.msg").read_text()
    name = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}[level]
    assert f"uint8 {name}={level}" in msg


def test_queries_after_stop_are_dropped_at_once():
    s = _session()
    s.stop()
    job, events = s.submit("too late")
    assert job is None and _codes(events) == ["query_dropped"] and s.queue_length == 0


def test_drop_track_keeps_the_frame():
    s = _session()
    s.put_frame(Frame(image="f"))
    s.submit("q")
    s.finish_answer(s.take(), _result())
    s.drop_track()
    assert s.latest is not None and not s.tracking


def test_choosing_the_tracked_person_again_keeps_the_tracker_only_once_it_has_them():
    clock = Clock()
    s = _session(clock, tracking_rate_hz=10.0)
    s.put_frame(Frame(image="f1"))
    for _ in range(2):  # the same person twice before any tracking update: the tracker never had them
        s.submit("the person on the right")
        first = s.finish_answer(s.take(), _result("the person on the right"))[0].tracked[0].track_id
    s.put_frame(Frame(image="f2"))
    work = s.take()
    assert work.request.seed.track_id == first and not work.request.keep and s.stats["tracks_kept"] == 1
    s.finish_track(work, TrackUpdate(person=work.request.seed, box=work.request.seed.box))
    clock.t += 1
    s.submit("the person on the right")
    again = s.finish_answer(s.take(), _result("the person on the right"))[0].tracked[0].track_id
    s.put_frame(Frame(image="f3"))
    work = s.take()
    assert again == first and work.request.keep and work.request.seed.track_id == first


def test_a_stopped_camera_is_reported_by_the_watchdog_not_by_the_next_frame():
    clock = Clock()
    s = Session(NodeConfig(camera_timeout_s=0.5), 500, clock=clock)
    assert s.check_camera() == []  # no camera yet: nothing stopped
    for _ in range(30):  # a 30 Hz camera
        s.put_frame(Frame(image=b"x"))
        clock.t += 1 / 30
        assert s.check_camera() == []
    clock.t += 0.45  # 0.48 s since the last frame
    assert s.check_camera() == [] and not s.camera_stalled
    clock.t += 0.05
    (rep,) = s.check_camera()
    assert rep.code == "camera_stalled" and rep.level == WARN and "0.53 s" in rep.message
    assert s.camera_stalled and s.snapshot()["last_frame_age_s"] == "0.53" and s.stats["camera_stalls"] == 1
    clock.t += 5.0
    assert s.check_camera() == []  # reported once per stop
    s.put_frame(Frame(image=b"x"))
    (rep,) = s.check_camera()
    assert rep.code == "camera_resumed" and rep.level == OK and not s.camera_stalled


def test_a_slow_camera_is_stopped_only_after_three_of_its_own_periods():
    clock = Clock()
    s = Session(NodeConfig(camera_timeout_s=0.5), 500, clock=clock)
    for _ in range(10):  # a 1 Hz camera
        s.put_frame(Frame(image=b"x"))
        clock.t += 1.0
    clock.t += 1.5  # 2.5 s since the last frame: < 3 periods
    assert s.check_camera() == []
    clock.t += 0.6
    assert [r.code for r in s.check_camera()] == ["camera_stalled"]


def _tracked_session(clock):
    """A session tracking the right-hand person of `_result()`."""
    s = _session(clock, tracking_rate_hz=10.0, max_image_age_s=1.0)
    s.put_frame(Frame(image="f1"))
    s.submit("the person on the right")
    track_id = s.finish_answer(s.take(), _result("the person on the right"))[0].tracked[0].track_id
    return s, track_id


@pytest.mark.parametrize("kind", ["stale_image", "generated", "no_match", "clarify"])
def test_an_answer_without_a_person_in_view_never_replaces_the_tracked_person(kind):
    clock = Clock()
    s, track_id = _tracked_session(clock)
    clock.t += 5.0  # the camera paused: the latest frame is stale
    if kind != "stale_image":
        s.put_frame(Frame(image="f2"))
    s.submit("a person sitting")
    work = s.take()
    assert isinstance(work, Answer) and (work.frame is None) == (kind == "stale_image")
    made_up = dataclasses.replace(make_person(7), box=None, generated=True, confidence=1.0, estimator="llm_generated")
    if kind in ("stale_image", "generated"):
        result = PoseResult(query="a person sitting", answer="[POSE]", people=(made_up,), selected=0)
    else:
        result = dataclasses.replace(_result("a person sitting", selected=-1), no_match=kind == "no_match",
                                     clarify=kind == "clarify")
    out = s.finish_answer(work, result)[0]
    assert out.tracked == [], "a pose not seen in the image carries no track id"
    assert s.tracking, "the tracked person is kept"
    s.put_frame(Frame(image="f3"))
    work = s.take()
    assert isinstance(work, Track) and work.request.seed.track_id == track_id and work.near == (10.0, 0.0, 20.0, 20.0)


def test_reports_held_back_by_the_throttle_are_counted_and_announced():
    """Every report held back by the ~/status throttle is counted (suppressed_<code>), and the next
    report of the same kind says how many were held back since the last one."""
    clock = Clock()
    s = _session(clock)
    sent = [s.refuse_frame("invalid_image", "unsupported image encoding 'x'") for _ in range(10)]
    assert sum(len(e) for e in sent) == 1 and s.stats["suppressed_invalid_image"] == 9
    clock.t += REPORT_THROTTLE_S
    (rep,) = s.refuse_frame("invalid_image", "unsupported image encoding 'x'")
    assert rep.message.endswith("(+9 more like this held back since the last one)"), rep.message
    clock.t += REPORT_THROTTLE_S
    (rep,) = s.refuse_frame("invalid_image", "unsupported image encoding 'x'")
    assert "held back" not in rep.message and s.stats["frames_invalid"] == 12
