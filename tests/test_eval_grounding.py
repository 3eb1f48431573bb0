"""eval_grounding's figures given the people perception found: counts over the members found, and yes/no
items whose person asked about was found. No model is run (a stand-in perception in the tests only)."""
from __future__ import annotations

from types import SimpleNamespace

from chatpose_ros.tools import eval_grounding as eg

LABELS = {"img": [(0, 0, 100, 200), (200, 0, 300, 200), (400, 0, 500, 200)]}


class _Perception:
    """Stands in for a pipeline's perception pass (`see`): the given boxes as the scene's people."""

    def __init__(self, boxes):
        self.boxes = boxes

    def see(self, image):
        return SimpleNamespace(people=[SimpleNamespace(box=b) for b in self.boxes])


def test_found_labels_matches_each_found_box_to_its_label():
    # label 0 found, label 1 found with a box too far off (IoU < 0.5), a false person, label 2 missed
    pipe = _Perception([(2, 3, 98, 205), (200, 0, 300, 60), (600, 0, 650, 90)])
    assert eg.found_labels(pipe, {"img": None}, LABELS) == {"img": {0}}
    grounded = SimpleNamespace(base=pipe)  # the grounded pipeline: perception is its base's
    assert eg.found_labels(grounded, {"img": None}, LABELS) == {"img": {0}}


def test_a_count_is_scored_over_the_members_found():
    q = {"id": "c1", "image": "img", "category": "counting", "expected": 2}
    members = {"c1": [0, 2]}
    # two labelled, one found: "2" is right over the labels, wrong given found; "1" the other way round
    assert eg.given_found(q, "I see 1 person.", members, {0, 1}) == {
        "expected_given_found": 1, "outcome_given_found": "right"}
    assert eg.given_found(q, "I see two people.", members, {0, 1}) == {
        "expected_given_found": 1, "outcome_given_found": "wrong"}
    assert eg.given_found(q, "Two.", members, {0, 1, 2})["outcome_given_found"] == "right"
    assert eg.given_found(q, "Two.", {"c1": None}, {0, 1, 2}) == {}  # no members: no figure


def test_yes_no_items_say_whether_the_person_asked_about_was_found():
    q = {"id": "y1", "image": "img", "category": "yes_no", "expected": "yes", "about": 2}
    assert eg.given_found(q, "Yes.", {}, {2}) == {"about_found": True}
    assert eg.given_found(dict(q, category="pose"), "Yes.", {}, {0, 1}) == {"about_found": False}
    assert eg.given_found({"id": "p1", "category": "attribute", "expected": 0}, "", {}, {0}) == {}


def _row(cat, outcome, **extra):
    return {"category": cat, "outcome": outcome, "contradiction": False, "to_pose_ms": 10.0, **extra}


def test_summary_and_table_print_the_figures_beside_the_plain_ones():
    rows = [_row("counting", "wrong", expected_given_found=1, outcome_given_found="right"),
            _row("counting", "right", expected_given_found=2, outcome_given_found="right"),
            _row("counting", "wrong", expected_given_found=2, outcome_given_found="wrong"),
            _row("counting", "wrong"),  # an item without members
            _row("yes_no", "right", about_found=True), _row("yes_no", "wrong", about_found=True),
            _row("yes_no", "right", about_found=False), _row("attribute", "right")]
    s = eg.summarise(rows)
    assert s["counting_given_found"] == {"right": 2, "n": 3}
    assert s["about_found"] == {"yes_no": {"n": 3, "found": 2, "right": 1}}
    text = eg.table({"set": {"grounded": {"summary": s}}})
    assert "| counting | 1/4 (given found 2/3) |" in text
    assert "| yes_no | 2/3 (about found 2/3: 1/2 right) |" in text
    assert "| attribute | 1/1 |" in text
