"""Issue 23's second, fresh held-out tracking labels (tests/data/vtest_tracks2.json, vtest.avi frames 150-470) are
well-formed, unchanged since they were frozen, readable by the tracking evaluation, and do not overlap the first
file's frames (480-790, tuned on and already read). No tracker is run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from real_sets import check_frozen

from chatpose_ros.tools.eval_tracking import load_tracks

DATA = Path(__file__).parent / "data"
LABELS = DATA / "vtest_tracks2.json"
HASH = DATA / "vtest_tracks2.sha256"
FIRST_LABELS = DATA / "vtest_tracks.json"
WIDTH, HEIGHT = 768, 576  # vtest.avi
STEP = 10
MIN_FRAMES = 300
MIN_HEIGHT_PX = 30  # people smaller than this are not labelled (tests/data/README.md)
SOURCES = {"detector", "corrected by eye", "added by eye"}


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(LABELS.read_text())


def test_the_file_is_the_frozen_one():
    """vtest_tracks2.json is frozen before any tracker ran on it: its SHA-256 is recorded beside it."""
    check_frozen(LABELS, HASH)


def test_header_and_keyframes_every_10_frames(doc):
    first, last = doc["first_frame"], doc["last_frame"]
    assert doc["keyframe_step"] == STEP
    assert last - first + 1 >= MIN_FRAMES
    assert sorted(int(k) for k in doc["keyframes"]) == list(range(first, last + 1, STEP))
    assert doc["tuning"] == [], "the whole stretch is held out"
    assert doc["held_out"] == [first, last]
    assert "vtest.avi" in doc["video"]


def test_boxes_inside_the_image_and_people_described(doc):
    check_boxes(doc)


def check_boxes(doc: dict, size: tuple[int, int] = (WIDTH, HEIGHT), min_height: float = MIN_HEIGHT_PX,
                sources: set[str] = SOURCES) -> None:
    """One box per person per keyframe, inside the image (`size`: width, height), at least `min_height`
    tall, of a described person, with a source in `sources` and its occlusion flags; every described
    person labelled."""
    width, height = size
    seen = set()
    for key, rows in doc["keyframes"].items():
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), f"keyframe {key}: one box per person"
        for r in rows:
            x0, y0, x1, y1 = r["box"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (key, r)
            assert y1 - y0 >= min_height, (key, r)
            assert str(r["id"]) in doc["people"], (key, r)
            assert r["source"] in sources, (key, r)
            assert isinstance(r["occluded"], bool) and isinstance(r.get("hidden", False), bool), (key, r)
            assert not r.get("hidden", False) or r["occluded"], (key, r)
            seen.add(str(r["id"]))
    assert seen == set(doc["people"]), "every described person is labelled, every labelled person described"
    assert all(len(text) >= 10 for text in doc["people"].values())


def test_does_not_overlap_the_first_label_file(doc):
    """The first file's frames (tuning and held-out) were read; this stretch must share none of them."""
    first = json.loads(FIRST_LABELS.read_text())
    ours = set(range(doc["first_frame"], doc["last_frame"] + 1))
    theirs = set(range(first["first_frame"], first["last_frame"] + 1))
    assert (first["first_frame"], first["last_frame"]) == (480, 790)
    assert not ours & theirs
    assert not {int(k) for k in doc["keyframes"]} & {int(k) for k in first["keyframes"]}


def test_the_evaluation_reads_every_frame(doc):
    """eval_tracking's reader interpolates the keyframes to every frame of the stretch; a person missing from a
    keyframe (out of view) is not labelled between it and its neighbours."""
    header, truth = load_tracks(LABELS)
    assert header["first_frame"] == doc["first_frame"] and "keyframes" not in header
    assert sorted(truth) == list(range(doc["first_frame"], doc["last_frame"] + 1))
    assert all(truth[f] for f in truth), "someone is in view in every frame"
    assert 3 not in truth[220] and 3 not in truth[215] and 3 in truth[230], "person 3 leaves and comes back"
