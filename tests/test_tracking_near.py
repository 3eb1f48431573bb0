"""Tracking looks only where the tracked person is (one MediaPipe pass) and keeps the id."""
from __future__ import annotations

import cv2
import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.geometry import box_iou
from chatpose_ros.profiles import build_pipeline
from chatpose_ros.models.default.tracking import PersonTracker
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
        # still the chosen person (MediaPipe's landmarks of this half-visible, back-turned person
        # jitter from pass to pass, so its box does too)
        assert box_iou(got.box, chosen.box) > 0.3
        assert all(box_iou(got.box, chosen.box) > box_iou(got.box, o.box) for o in others)
