"""Issue 24's third frozen held-out question set (tests/data/real_questions3.json over the images of
tests/data/perception_labels3.json, stored in tests/data/people3/) is well-formed, unchanged since it
was written, held out from the first two sets, and not made of generator questions. No model is run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_real_questions2 import (LABELS as LABELS2, MINIMUM as MINIMUM2, PERSON_CATEGORIES, check_frozen, check_images,
                                  check_not_generator_questions, check_questions, training_question_set)

from chatpose_ros.perception.offline.eval_perception import DEFAULT_LABELS, load_labels

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "real_questions3.json"
LABELS = DATA / "perception_labels3.json"
HASH = DATA / "real_questions3.sha256"

# the least each kind of question the set must hold: set 2's, and at least 55 "which person"
# questions and 90 in all (issue 24's brief for the third set)
MINIMUM = dict(MINIMUM2)
MIN_WHERE = 12
MIN_PERSON = 55
MIN_QUESTIONS = 90

@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(QUESTIONS.read_text())


@pytest.fixture(scope="module")
def training_questions() -> set[str]:
    return training_question_set()


@pytest.fixture(scope="module")
def labels():
    return {im.id: im for im in load_labels(LABELS)}


def test_the_file_is_the_frozen_one():
    """real_questions3.json is frozen: its SHA-256 is recorded beside it (and in docs/grounded.md)."""
    check_frozen(QUESTIONS, HASH)


def test_every_image_loads_and_is_held_out(labels):
    """Every labelled image loads, has two or more people, and is none of the first two sets' images."""
    check_images(labels, [DEFAULT_LABELS, LABELS2], max_side=1280, max_bytes=6_000_000, min_images=10,
                 min_people=40)


def test_question_file_is_well_formed(doc, labels):
    check_questions(doc, labels, MINIMUM, MIN_WHERE, MIN_QUESTIONS)
    assert sum(q["category"] in PERSON_CATEGORIES for q in doc["questions"]) >= MIN_PERSON


def test_no_question_is_a_generator_question(doc, training_questions):
    check_not_generator_questions(doc, training_questions)


def test_eval_grounding_knows_the_set_and_checks_its_hash(monkeypatch, tmp_path):
    """make eval-grounding's `held_out3` is this file, and the tool refuses a changed copy (no model is run)."""
    from chatpose_ros.tools import eval_grounding as eg

    assert [p.resolve() for p in eg.SETS["held_out3"]] == [QUESTIONS.resolve(), LABELS.resolve()]
    assert eg.frozen_sha("held_out3") == HASH.read_text().split()[0]
    changed = tmp_path / "real_questions3.json"
    changed.write_bytes(QUESTIONS.read_bytes() + b" ")
    monkeypatch.setitem(eg.SETS, "held_out3", (changed, LABELS))
    with pytest.raises(SystemExit, match="held_out3 set changed"):
        eg.frozen_sha("held_out3")
