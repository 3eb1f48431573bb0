"""Follow-me (issue 23): the followed person's last known position is held while they are hidden, with
an age and a covariance that grows with it (core.follow); the session says when a tracking update did not
publish them (TargetHidden, ``target_hidden`` once per hiding) and when it did again."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.follow import HOLD_S, SEEN_SIGMA_M, WALK_SPEED_MPS, TargetMemory, covariance
from chatpose_ros.core.model_runners import TrackerHost
from chatpose_ros.core.session import HIDDEN_REPORT_S, Frame, Output, Report, Session, TargetHidden
from chatpose_ros.core.types import PoseResult
from chatpose_ros.profiles import tracker_factory
from fakes import FakeClock, make_person


def _placed(track_id: int = 3):
    return dataclasses.replace(make_person(1), translation=np.array([0.5, 0.1, 4.0], np.float32), track_id=track_id)


def test_covariance_grows_with_the_time_hidden():
    sd = [np.sqrt(covariance(t)[0, 0]) for t in (0.0, 0.5, 1.0, 3.0)]
    assert sd[0] == pytest.approx(SEEN_SIGMA_M) and sd[2] == pytest.approx(SEEN_SIGMA_M + WALK_SPEED_MPS)
    assert sd == sorted(sd) and covariance(2.0).shape == (6, 6)
    assert covariance(100.0)[5, 5] == pytest.approx(np.pi ** 2), "the heading's uncertainty is capped"


def test_memory_holds_the_last_sighting_until_hold_s():
    memory = TargetMemory()
    assert memory.held(0.0) is None
    memory.seen(dataclasses.replace(_placed(), translation=None), 0.0)  # no translation: nothing to hold
    assert memory.held(0.0) is None
    memory.seen(_placed(), 10.0)
    held = memory.held(12.0, track_id=3)
    assert held.age_s == pytest.approx(2.0) and np.allclose(held.person.translation, [0.5, 0.1, 4.0])
    assert held.covariance[0, 0] == pytest.approx(covariance(2.0)[0, 0])
    assert memory.held(12.0, track_id=4) is None, "another track's person is not held"
    assert memory.held(10.0 + HOLD_S + 0.1) is None


class Seen:
    def __init__(self) -> None:
        self.people = [dataclasses.replace(make_person(1, box=(0.0, 0.0, 20.0, 60.0)), appearance=np.ones(4, np.float32))]

    def observe(self, rgb, near=None):
        return list(self.people)


def test_the_session_says_when_the_target_is_hidden_and_when_seen_again():
    clock = FakeClock()
    s = Session(NodeConfig(tracking_rate_hz=10.0), max_query_chars=50, can_track=True, clock=clock)
    host, pipeline = TrackerHost(tracker_factory("default")), Seen()
    s.put_frame(Frame(image="f"))
    s.submit("the person")
    track_id = s.finish_answer(s.take(), PoseResult("q", "a", tuple(pipeline.people), 0))[0].tracked[0].track_id

    def update():
        clock.t += 0.2
        s.put_frame(Frame(image="f"))
        work = s.take()
        return s.finish_track(work, host.track(pipeline, None, work.request))

    assert [type(e) for e in update()] == [Output]
    pipeline.people = []  # behind a pillar
    hidden = [update() for _ in range(4)]
    held = [e for events in hidden for e in events if isinstance(e, TargetHidden)]
    assert [e.track_id for e in held] == [track_id] * 4
    assert [e.hidden_s for e in held] == pytest.approx([0.0, 0.2, 0.4, 0.6])
    said = [e for events in hidden for e in events if isinstance(e, Report) and e.code == "target_hidden"]
    assert len(said) == 1 and held[3].hidden_s >= HIDDEN_REPORT_S
    pipeline.people = Seen().people  # back
    assert [type(e) for e in update()] == [Output]
