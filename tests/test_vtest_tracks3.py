"""Issue 23's third, fresh held-out tracking labels (tests/data/vtest_tracks3.json, vtest.avi frames 0-149) are
well-formed, unchanged since they were frozen, readable by the tracking evaluation for every frame (the last
keyframe, 149, is 9 frames after 140), and share no frame with the two earlier label files (150-470 and 480-790).
No tracker is run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from real_sets import check_frozen
from test_vtest_tracks2 import STEP, check_boxes

from chatpose_ros.tools.eval_tracking import label_stretches, load_tracks

DATA = Path(__file__).parent / "data"
LABELS = DATA / "vtest_tracks3.json"
HASH = DATA / "vtest_tracks3.sha256"
EARLIER = {DATA / "vtest_tracks.json": (480, 790), DATA / "vtest_tracks2.json": (150, 470)}
FIRST, LAST = 0, 149


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(LABELS.read_text())


def test_the_file_is_the_frozen_one():
    """vtest_tracks3.json is frozen before any tracker ran on it: its SHA-256 is recorded beside it."""
    check_frozen(LABELS, HASH)


def test_header_and_keyframes_every_10_frames_and_the_last(doc):
    assert (doc["first_frame"], doc["last_frame"]) == (FIRST, LAST)
    assert doc["keyframe_step"] == STEP
    assert sorted(int(k) for k in doc["keyframes"]) == [*range(FIRST, LAST + 1, STEP), LAST]
    assert doc["tuning"] == [], "the whole stretch is held out"
    assert doc["held_out"] == [FIRST, LAST]
    assert label_stretches(LABELS) == {"held_out": (FIRST, LAST)}
    assert "vtest.avi" in doc["video"]


def test_boxes_inside_the_image_and_people_described(doc):
    check_boxes(doc)


def test_does_not_overlap_the_earlier_label_files(doc):
    """The earlier files' frames were read (tuned on or evaluated); this stretch must share none of them."""
    ours = set(range(doc["first_frame"], doc["last_frame"] + 1))
    for path, span in EARLIER.items():
        earlier = json.loads(path.read_text())
        assert (earlier["first_frame"], earlier["last_frame"]) == span
        assert not ours & set(range(span[0], span[1] + 1)), path.name
        assert not {int(k) for k in doc["keyframes"]} & {int(k) for k in earlier["keyframes"]}, path.name


def test_the_evaluation_reads_every_frame(doc):
    """eval_tracking's reader interpolates the keyframes to every frame of the stretch, 140-149 included; a person
    missing from a keyframe (out of view) is not labelled between it and its neighbours."""
    header, truth = load_tracks(LABELS)
    assert header["first_frame"] == FIRST and "keyframes" not in header
    assert sorted(truth) == list(range(FIRST, LAST + 1))
    assert all(truth[f] for f in truth), "someone is in view in every frame"
    box140, box149 = (next(r["box"] for r in doc["keyframes"][k] if r["id"] == 9) for k in ("140", "149"))
    assert truth[145][9].box == pytest.approx([a + 5 / 9 * (b - a) for a, b in zip(box140, box149)])
    assert 3 in truth[140] and 3 not in truth[145], "person 3 leaves right between 140 and 149"
    assert 9 not in truth[135] and 9 in truth[140], "person 9 enters right between 130 and 140"
