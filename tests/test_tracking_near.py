"""Tracking looks only where the tracked person is (one perception pass around the tracked box)
and keeps the id, also when two pedestrians cross in vtest.avi."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.geometry import box_iou
from chatpose_ros.core.target_check import TargetCheck
from chatpose_ros.perception.tracking import PersonTracker
from chatpose_ros.profiles import build_pipeline
from conftest import REAL_PHOTOS


@pytest.fixture(scope="module")
def pipeline():
    p = build_pipeline(PipelineConfig())
    yield p
    p.close()


@pytest.mark.parametrize("query", ["the person on the left", "the person on the right"])
def test_observe_near_finds_the_tracked_person(pipeline, query):
    img = cv2.imread(str(REAL_PHOTOS / "basketball1.png"))[..., ::-1].copy()
    result = pipeline.estimate(img, query)
    chosen = result.selected_person
    others = [p for i, p in enumerate(result.people) if i != result.selected]
    tracker = PersonTracker()
    tracked = tracker.start(chosen)
    for _ in range(5):
        people = pipeline.observe(img, near=tracker.last_box)
        assert len(people) == 1  # only the region around the tracked person was searched
        got = tracker.update(people)
        assert got is not None and got.track_id == tracked.track_id
        # still the chosen person (the keypoints of this half-visible, back-turned person
        # jitter from pass to pass, so its box does too)
        assert box_iou(got.box, chosen.box) > 0.3
        assert all(box_iou(got.box, chosen.box) > box_iou(got.box, o.box) for o in others)


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CROSSING_FRAMES = (548, 596)
# Hand-checked in the frames: a man in a red jacket and a woman in a black coat cross; the
# woman passes in front of him (he is hidden for a few frames around 563-575). Centre x of
# each at the first frame, and each one's box (xyxy px) at the last frame.
MAN_START_CX, WOMAN_START_CX = 195.0, 262.0
MAN_END_BOX = (393.0, 310.0, 460.0, 431.0)
WOMAN_END_BOX = (260.0, 434.0, 309.0, 575.0)


def _vtest_frames(first: int, last: int) -> list:
    if not VTEST.exists():
        pytest.skip(f"{VTEST} missing (apt-get install opencv-doc)")
    cap = cv2.VideoCapture(str(VTEST))
    frames = []
    for i in range(last + 1):
        ok, frame = cap.read()
        assert ok, f"vtest.avi has no frame {i}"
        if i >= first:
            frames.append(frame[..., ::-1].copy())
    cap.release()
    return frames


def _cx(box) -> float:
    return 0.5 * (box[0] + box[2])


@pytest.mark.parametrize("who", ["man", "woman"])
def test_ids_stay_stable_when_pedestrians_cross(pipeline, who):
    # the labels describe a crossing: left-right order swaps between the first and last frame
    assert MAN_START_CX < WOMAN_START_CX and _cx(MAN_END_BOX) > _cx(WOMAN_END_BOX)
    frames = _vtest_frames(*CROSSING_FRAMES)
    people = pipeline.observe(frames[0])
    start_cx, end_box, other_end = ((MAN_START_CX, MAN_END_BOX, WOMAN_END_BOX) if who == "man"
                                    else (WOMAN_START_CX, WOMAN_END_BOX, MAN_END_BOX))
    chosen = min(people, key=lambda p: abs(_cx(p.box) - start_cx))
    assert abs(_cx(chosen.box) - start_cx) < 20
    tracker, check = PersonTracker(), TargetCheck(chosen)
    tracked = tracker.start(chosen)
    matched = 0
    for frame in frames[1:]:  # as the node does: near the last box, or (lost) anywhere by appearance
        got = (tracker.reacquire(pipeline.observe(frame)) if tracker.lost
               else tracker.update(pipeline.observe(frame, near=tracker.last_box)))
        if got is not None:
            matched += 1
            assert got.track_id == tracked.track_id
            assert check.verify(got) == "", "the node's target check doubts the right person"
        else:
            check.missed()
    # he is hidden behind her around 563-575: there the tracker matches nobody rather than a box whose
    # appearance it cannot read or that looks like her (10 of the 48 updates for him)
    assert not tracker.lost and matched >= 0.75 * (len(frames) - 1)
    assert box_iou(tracker.last_box, end_box) > 0.5, (who, tracker.last_box)
    assert box_iou(tracker.last_box, other_end) < 0.2
