"""Stable ids per person (REP-155 bodies): a query choosing the person already tracked keeps the
track and its id; `track_all_bodies` makes tracking updates carry everyone in view. Session with
the default profile's real tracker (through the profile registry, hosted as beside the model)
and an injected clock."""
from __future__ import annotations

from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.model_runners import TrackerHost
from chatpose_ros.core.session import Frame, Output, Session, Track
from chatpose_ros.core.types import PoseResult
from chatpose_ros.profiles import tracker_factory
from tests.fakes import make_person

LEFT, RIGHT = (0.0, 0.0, 10.0, 20.0), (30.0, 0.0, 40.0, 20.0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _people(dx: float = 0.0):
    return [make_person(1, box=(LEFT[0] + dx, 0.0, LEFT[2] + dx, 20.0)),
            make_person(2, box=(RIGHT[0] + dx, 0.0, RIGHT[2] + dx, 20.0))]


class Seen:
    def __init__(self, people) -> None:
        self.people = people

    def observe(self, rgb, near=None):
        return list(self.people)


def _session(clock, **cfg):
    s = Session(NodeConfig(tracking_rate_hz=10.0, **cfg), max_query_chars=50, can_track=True, clock=clock)
    s.host = TrackerHost(tracker_factory("default"))  # the tracker beside the model
    return s


def _finish(s: Session, work: Track, people) -> list:
    return s.finish_track(work, s.host.track(Seen(people), None, work.request))


def _answer(s: Session, clock: Clock, selected: int, dx: float = 0.0) -> Output:
    s.put_frame(Frame(image="f"))
    s.submit("q")
    out = s.finish_answer(s.take(), PoseResult(query="q", answer="a", people=tuple(_people(dx)), selected=selected))[0]
    assert isinstance(out, Output)
    return out


def _update(s: Session, clock: Clock, people) -> list:
    clock.t += 0.2
    s.put_frame(Frame(image="f"))
    work = s.take()
    assert isinstance(work, Track)
    return _finish(s, work, people)


def test_choosing_the_tracked_person_again_keeps_its_id():
    clock = Clock()
    s = _session(clock)
    first = _answer(s, clock, selected=1).tracked[0].track_id
    assert _update(s, clock, _people(1.0))[0].tracked[0].track_id == first
    again = _answer(s, clock, selected=1, dx=1.5).tracked[0].track_id
    assert again == first and s.stats["tracks_kept"] == 1
    other = _answer(s, clock, selected=0, dx=1.5).tracked[0].track_id
    assert other != first, "another person: a new track"


def test_a_lost_track_is_not_revived_by_a_query():
    clock = Clock()
    s = _session(clock)
    first = _answer(s, clock, selected=1).tracked[0].track_id
    for _ in range(10):  # nobody in view until lost
        _update(s, clock, [])
        if not s.tracking:
            break
    assert not s.tracking
    assert _answer(s, clock, selected=1).tracked[0].track_id != first


def test_tracking_updates_carry_the_chosen_person_only_by_default():
    clock = Clock()
    s = _session(clock)
    _answer(s, clock, selected=1)
    clock.t += 0.2
    s.put_frame(Frame(image="f"))
    work = s.take()
    assert work.near == RIGHT, "searched near the chosen person"
    out = _finish(s, work, _people(1.0))[0]
    assert len(out.result.people) == 1 and out.result.selected == 0


def test_track_all_bodies_searches_the_whole_frame_and_carries_everyone():
    clock = Clock()
    s = _session(clock, track_all_bodies=True)
    chosen = _answer(s, clock, selected=1).tracked[0].track_id
    clock.t += 0.2
    s.put_frame(Frame(image="f"))
    work = s.take()
    assert work.near is None, "the whole frame"
    out = _finish(s, work, _people(1.0))[0]
    people = out.result.people
    assert len(people) == 2 and out.result.selected == 0 and people[0].track_id == chosen
    assert people[1].track_id == -1 and people[1].box[0] == LEFT[0] + 1.0
    # the chosen person missed in a frame: the others are still published, nobody selected
    missed = [e for e in _update(s, clock, [_people(1.0)[0]]) if isinstance(e, Output)]
    assert len(missed) == 1 and missed[0].result.selected == -1 and len(missed[0].result.people) == 1


def _frames_until(h, rgb, done, bound_s: float = 120.0) -> None:
    """Publish frames (each waited for) until `done()`; the bound is for a loaded machine, not a timing."""
    import time

    t_end = time.monotonic() + bound_s
    while not done():
        assert time.monotonic() < t_end, "no tracking updates"
        h.publish_and_wait(rgb)


def _tracked_lists(h) -> list[list[str]]:
    """The id lists arriving on /humans/bodies/tracked (appended as they come)."""
    from hri_msgs.msg import IdsList

    lists: list[list[str]] = []
    sub = h.client.create_subscription(IdsList, "/humans/bodies/tracked", lambda msg: lists.append(list(msg.ids)), 100)
    h.wait_until(lambda: sub.get_publisher_count() > 0, what="/humans/bodies/tracked to match")
    return lists


def test_body_ids_over_ros_stay_with_each_person_across_queries(ros_harness):
    """Over ROS: answer (both people listed), tracking updates (the chosen one), the same person
    chosen again: every person keeps their /humans/bodies id and the chosen one its track id."""
    import numpy as np

    from tests.fakes import FakePipeline

    h = ros_harness(lambda cfg: FakePipeline(), tracking_rate_hz=50.0)
    lists = _tracked_lists(h)
    rgb = np.zeros((40, 80, 3), np.uint8)
    h.publish_and_wait(rgb)
    h.ask("the person on the right")
    h.wait_until(lambda: len(lists) >= 1, what="the first answer's bodies")
    first = list(lists[0])
    assert len(first) == 2 and len(set(first)) == 2
    _frames_until(h, rgb, lambda: len(lists) >= 3)  # two tracking updates
    assert all(len(ids) == 1 for ids in lists[1:3])
    chosen = lists[1][0]
    h.ask("the person on the right")
    h.wait_until(lambda: any(len(ids) == 2 for ids in lists[1:]), what="the second answer's bodies")
    second = next(ids for ids in lists[1:] if len(ids) == 2)
    assert sorted(second) == sorted(first) and chosen in first
    poses = h.wait_for("pose", lambda ms: sum(1 for m in ms if m.answer) >= 2)
    answered = [m.track_id for m in poses if m.answer]
    assert len(answered) == 2 and answered[0] == answered[1] >= 0


def test_track_all_bodies_over_ros_lists_everyone_at_every_update(ros_harness):
    import numpy as np

    from tests.fakes import FakePipeline

    h = ros_harness(lambda cfg: FakePipeline(), tracking_rate_hz=50.0, track_all_bodies=True)
    lists = _tracked_lists(h)
    rgb = np.zeros((40, 80, 3), np.uint8)
    h.publish_and_wait(rgb)
    h.ask("the person on the left")
    h.wait_until(lambda: len(lists) >= 1, what="the answer's bodies")
    _frames_until(h, rgb, lambda: len(lists) >= 3)  # two tracking updates
    assert all(sorted(ids) == sorted(lists[0]) for ids in lists[:3]) and len(lists[0]) == 2
