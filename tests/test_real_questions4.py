"""Issue 24's fourth frozen held-out question set (tests/data/real_questions4.json over the images of
tests/data/perception_labels4.json, stored in tests/data/people4/) is well-formed, unchanged since it
was written, held out from the first three sets (images and questions), and not made of generator
questions (the default profile's scene generator and grounding templates, and the grounded parser's
training generator). No model is run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_real_questions2 import (LABELS as LABELS2, MINIMUM as MINIMUM2, PERSON_CATEGORIES, QUESTIONS as QUESTIONS2,
                                  _normalised, _texts, check_frozen, check_images, check_not_generator_questions,
                                  check_questions,
                                  training_question_set)
from test_real_questions3 import LABELS as LABELS3, QUESTIONS as QUESTIONS3

from chatpose_ros.perception.offline.eval_perception import DEFAULT_LABELS, load_labels

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "real_questions4.json"
LABELS = DATA / "perception_labels4.json"
HASH = DATA / "real_questions4.sha256"
EARLIER_QUESTIONS = (DATA / "real_questions.json", QUESTIONS2, QUESTIONS3)

# the least each kind of question the set must hold (issue 24's brief for the fourth set): set 2's,
# with at least 8 no-match, 10 yes/no and 5 clarify questions, 60 "which person" and 85 in all
MINIMUM = dict(MINIMUM2, no_match=8, yes_no=10, clarify=5)
MIN_WHERE = 12
MIN_PERSON = 60
MIN_QUESTIONS = 85
# grounded-parser training questions drawn to stand for its generator (the whole training split's size)
GROUNDED_TRAIN = 30000


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(QUESTIONS.read_text())


@pytest.fixture(scope="module")
def labels():
    return {im.id: im for im in load_labels(LABELS)}


def test_the_file_is_the_frozen_one():
    """real_questions4.json is frozen: its SHA-256 is recorded beside it."""
    check_frozen(QUESTIONS, HASH)


def test_every_image_loads_and_is_held_out(labels):
    """Every labelled image loads, has two or more people, and is none of the first three sets' images."""
    check_images(labels, [DEFAULT_LABELS, LABELS2, LABELS3], max_side=1280, max_bytes=1_500_000, min_images=8,
                 min_people=40)
    assert all(2 <= len(im.people) <= 7 for im in labels.values())


def test_question_file_is_well_formed(doc, labels):
    check_questions(doc, labels, MINIMUM, MIN_WHERE, MIN_QUESTIONS)
    assert sum(q["category"] in PERSON_CATEGORIES for q in doc["questions"]) >= MIN_PERSON


def test_no_question_is_from_an_earlier_set(doc):
    """No question (nor a follow-up turn) repeats one of the first three sets' wordings."""
    check_not_earlier(doc, EARLIER_QUESTIONS)


def test_no_question_is_a_generator_question(doc):
    check_not_generator_questions(doc, training_question_set())


def test_no_question_is_a_grounded_training_question(doc):
    """No question is among the grounded parser's generated training questions (generate.py, seed 0)."""
    check_not_grounded_training(doc)


def test_eval_grounding_knows_the_set_and_checks_its_hash(monkeypatch, tmp_path):
    """eval_grounding's `held_out4` is this file, and the tool refuses a changed copy (no model is run)."""
    check_eval_grounding_set("held_out4", QUESTIONS, LABELS, HASH, monkeypatch, tmp_path)


def check_not_earlier(doc: dict, earlier_files) -> None:
    """No question (nor a follow-up turn) of `doc` repeats a wording of the question files `earlier_files`."""
    earlier = {_normalised(t) for path in earlier_files for q in json.loads(path.read_text())["questions"]
               for t in _texts(q)}
    assert {"how many people are in this photo"} <= earlier  # the check can fail
    repeated = sorted(t for q in doc["questions"] for t in _texts(q) if _normalised(t) in earlier)
    assert not repeated, f"held out means new wordings: {repeated}"


def check_not_grounded_training(doc: dict) -> None:
    """No question of `doc` is among the grounded parser's generated training questions (seed 0)."""
    from chatpose_ros.models.grounded.offline.generate import generate

    generated = {_normalised(e.question) for e in generate(seed=0, n_train=GROUNDED_TRAIN, n_held=0).train}
    assert len(generated) > GROUNDED_TRAIN // 2  # the check can fail
    copied = sorted(t for q in doc["questions"] for t in _texts(q) if _normalised(t) in generated)
    assert not copied, f"hand-written means not a generator's question: {copied}"


def check_eval_grounding_set(name: str, questions: Path, labels: Path, hash_file: Path, monkeypatch, tmp_path) -> None:
    """eval_grounding's set `name` is these files, and the tool refuses a changed copy."""
    from chatpose_ros.tools import eval_grounding as eg

    assert [p.resolve() for p in eg.SETS[name]] == [questions.resolve(), labels.resolve()]
    assert eg.frozen_sha(name) == hash_file.read_text().split()[0]
    changed = tmp_path / questions.name
    changed.write_bytes(questions.read_bytes() + b" ")
    monkeypatch.setitem(eg.SETS, name, (changed, labels))
    with pytest.raises(SystemExit, match=f"{name} set changed"):
        eg.frozen_sha(name)
