"""Default profile: the single-target PersonTracker (pure, no model)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chatpose_ros.core.types import PersonPose
from chatpose_ros.core.geometry import box_iou
from chatpose_ros.perception.tracking import REACQUIRE_MIN_MATCHES, PersonTracker


def _person(x: float, colour: float, w: float = 60.0, h: float = 180.0) -> PersonPose:
    kp = np.stack([np.linspace(x, x + w, 15), np.linspace(20, 20 + h, 15)], 1).astype(np.float32)
    return PersonPose(theta=np.zeros(72, np.float32), joints=np.zeros((24, 3), np.float32),
                      box=(x, 20.0, x + w, 20.0 + h), keypoints_2d=kp,
                      appearance=np.repeat(np.float32([colour, 1.0 - colour]), 12), estimator="smplr_regressor")


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_keeps_id_across_frames_with_a_neighbour():
    tr = PersonTracker(max_misses=2)
    first = tr.start(_person(100, 0.2))
    assert first.track_id > 0
    for t in range(1, 12):  # target walks right, another person walks left past it
        people = [_person(400 - 15 * t, 0.8), _person(100 + 12 * t, 0.2)]
        got = tr.update(people)
        assert got is not None and got.track_id == first.track_id
        assert got.box[0] == pytest.approx(100 + 12 * t)
    assert not tr.lost and tr.active


def test_appearance_breaks_ties_when_boxes_overlap():
    tr = PersonTracker()
    tr.start(_person(100, 0.2))
    got = tr.update([_person(104, 0.9), _person(108, 0.2)])
    assert got.appearance[0] == pytest.approx(0.2)


def test_lost_after_misses_and_recovery():
    tr = PersonTracker(max_misses=3)
    tid = tr.start(_person(100, 0.2)).track_id
    for _ in range(4):
        assert tr.update([]) is None
    assert tr.lost and not tr.active
    got = tr.update([_person(102, 0.2)])
    assert got is not None and got.track_id == tid and not tr.lost


def test_far_person_is_not_matched_and_text_pose_cannot_start():
    tr = PersonTracker()
    tr.start(_person(0, 0.2))
    assert tr.update([_person(600, 0.9)]) is None
    assert tr.update(None or []) is None
    with pytest.raises(ValueError):
        tr.start(PersonPose(theta=np.zeros(72, np.float32), joints=np.zeros((24, 3), np.float32)))
    assert PersonTracker().update([_person(0, 0.2)]) is None  # nothing tracked yet


def test_a_lost_person_is_reacquired_by_appearance_within_walking_reach():
    tr = PersonTracker(max_misses=1)
    tid = tr.start(_person(100, 0.2)).track_id
    for _ in range(3):
        tr.update([])
    assert tr.lost and tr.reacquire([_person(110, 0.2)]) is None and "seen too little" in tr.doubt
    tr.start(_person(100, 0.2), track_id=tid)
    for _ in range(REACQUIRE_MIN_MATCHES):
        assert tr.update([_person(100, 0.2)]) is not None
    for _ in range(3):
        tr.update([])
    assert tr.lost
    assert tr.reacquire([_person(200, 0.9)]) is None, "someone dressed otherwise is not them"
    assert tr.reacquire([_person(1000, 0.2)]) is None, "too far to have walked there"
    assert tr.reacquire([_person(200, 0.2, h=90.0)]) is None, "half their height: someone farther away"
    got = tr.reacquire([_person(200, 0.9), _person(230, 0.21)])  # back 130 px (0.7 heights) away, no IoU
    assert got is not None and got.track_id == tid and got.box[0] == 230 and not tr.lost
    assert tr.update([_person(235, 0.2)]).track_id == tid  # and followed on from there


def _known(x: float = 100.0) -> PersonTracker:
    """A tracker that has followed a person (colour 0.2) at `x` long enough to reacquire them."""
    tr = PersonTracker(max_misses=1)
    tr.start(_person(x, 0.2))
    for _ in range(REACQUIRE_MIN_MATCHES):
        tr.update([_person(x, 0.2)])
    return tr


def test_no_reacquisition_while_someone_else_in_view_is_nearly_as_alike():
    tr = _known()
    for _ in range(3):
        tr.update([])
    assert tr.reacquire([_person(150, 0.2), _person(400, 0.205)]) is None, "two alike: neither is taken"
    assert "as alike" in tr.doubt and tr.lost
    assert tr.reacquire([_person(150, 0.2), _person(400, 0.7)]) is not None and tr.doubt == ""


def test_an_update_matches_nobody_rather_than_guess():
    tr = _known()
    tid = tr.track_id
    # two candidates about as close and as alike: no match, the tracker says why, a miss is counted
    assert tr.update([_person(96, 0.2), _person(104, 0.2)]) is None and "two candidates" in tr.doubt
    assert tr.misses == 1
    unread = dataclasses.replace(_person(102, 0.2), appearance=np.full(24, np.nan, np.float32))
    assert tr.update([unread]) is None and tr.doubt == "appearance not seen"
    assert tr.update([_person(101, 0.2)]).track_id == tid and tr.doubt == "" and tr.misses == 0
    blind = PersonTracker()  # chosen while their appearance could not be read: nothing to doubt by
    blind.start(unread)
    assert blind.update([unread]) is not None and blind.update([_person(103, 0.2)]) is not None


def test_a_candidate_looking_like_a_neighbour_seen_before_is_doubted():
    tr = PersonTracker()
    tr.start(_person(100, 0.2))
    neighbour = 0.45  # cosine with the target's colour 0.2: about 0.88, under the reacquisition bar
    for t in range(1, 4):  # walking beside a neighbour (in the search region, not overlapping)
        assert tr.update([_person(100 + 2 * t, 0.2), _person(180, neighbour)]) is not None
    # the target hidden: the neighbour steps into their place, cheap enough by box and keypoints
    assert tr.update([_person(108, neighbour)]) is None and "neighbour" in tr.doubt
    before = PersonTracker(verify=False)  # the tracker before these checks took them
    before.start(_person(100, 0.2))
    assert before.update([_person(108, neighbour)]) is not None


def test_appearance_compares_what_both_saw():
    from chatpose_ros.core.target_check import appearance_cosine, blend_appearance

    full, legs_hidden = np.float32([0.6, 0.8, 1.0, 0.0]), np.float32([0.6, 0.8, np.nan, np.nan])
    assert appearance_cosine(full, legs_hidden) == pytest.approx(1.0)
    assert appearance_cosine(legs_hidden, np.float32([np.nan, np.nan, 1.0, 0.0])) is None
    blended = blend_appearance(full, legs_hidden, 0.5)
    assert np.allclose(blended, full), "an unseen region keeps the running one"
    assert np.allclose(blend_appearance(legs_hidden, full, 0.5), full)


def test_an_unreadable_candidate_is_not_cheaper_than_the_target_seen():
    from chatpose_ros.perception.tracking import UNKNOWN_APPEARANCE_COST

    tr = PersonTracker()
    tr.start(_person(100, 0.2))
    seen, unread = _person(100, 0.2), dataclasses.replace(_person(100, 0.2), appearance=np.full(24, np.nan, np.float32))
    assert tr.cost(unread) == pytest.approx(tr.cost(seen) + UNKNOWN_APPEARANCE_COST)


def test_a_small_persons_appearance_weighs_less():
    from chatpose_ros.perception.tracking import APPEARANCE_FULL_HEIGHT

    def app_cost(h: float, trust_height: float) -> float:
        tr = PersonTracker(appearance_full_height=trust_height)
        tr.start(_person(100, 0.2, w=h / 3, h=h))
        return tr.cost(_person(100, 0.5, w=h / 3, h=h)) - tr.cost(_person(100, 0.2, w=h / 3, h=h))

    full = app_cost(APPEARANCE_FULL_HEIGHT * 1.5, APPEARANCE_FULL_HEIGHT)
    assert full > 0 and app_cost(APPEARANCE_FULL_HEIGHT / 2, APPEARANCE_FULL_HEIGHT) == pytest.approx(full / 2, rel=1e-3)
    assert app_cost(APPEARANCE_FULL_HEIGHT / 2, 0.0) == pytest.approx(full, rel=1e-3), "0: every height trusted"


def test_the_search_box_moves_on_while_the_person_is_missed():
    tr = PersonTracker()
    tr.start(_person(100, 0.2))
    for t in range(1, 4):
        tr.update([_person(100 + 10 * t, 0.2)])
    seen = tr.last_box
    assert seen[0] == pytest.approx(130)
    tr.update([])  # behind a sign: where to look next moves along their walk
    tr.update([])
    assert tr.last_box[0] > seen[0] + 10 and tr.last_box[1] == pytest.approx(seen[1])
    assert tr.update([_person(160, 0.2)]) is not None and tr.last_box[0] == pytest.approx(160)
    still = PersonTracker(search_ahead=False)  # the tracker before: looks where they were last matched
    still.start(_person(100, 0.2))
    still.update([_person(110, 0.2)])
    still.update([])
    assert still.last_box[0] == pytest.approx(110)


def test_one_box_where_a_neighbour_was_is_doubted_until_the_two_are_apart():
    tr = PersonTracker()
    tr.start(_person(100, 0.2))
    # a neighbour dressed alike walks in from the left, just beside the target
    assert tr.update([_person(101, 0.2), _person(40, 0.2)]).box[0] == 101
    # one detection left, nearer where the neighbour was heading than the target: which one is it?
    assert tr.update([_person(70, 0.2)]) is None and "where a neighbour was" in tr.doubt
    assert tr.update([_person(72, 0.2)]) is None and "where a neighbour was" in tr.doubt, "still one box for two"
    before = PersonTracker(verify=False)  # without the checks the lone box is cheap enough to be taken
    before.start(_person(100, 0.2))
    before.update([_person(101, 0.2), _person(40, 0.2)])
    assert before.update([_person(70, 0.2)]) is not None
    got = tr.update([_person(104, 0.2), _person(40, 0.2)])  # apart again: the target is where they were
    assert got is not None and got.box[0] == 104 and tr.doubt == ""
