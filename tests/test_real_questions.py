"""The hand-written real-image question set (tests/data/real_questions.json) is well-formed, and the
scorer of offline/eval_questions.py computes what it claims on hand-made results (no model run)."""
from __future__ import annotations

import json
import math
import re

import pytest
from real_sets import normalised, training_question_set

from chatpose_ros.models.default.offline import eval_questions as eq
from chatpose_ros.perception.offline.eval_perception import DEFAULT_LABELS, load_labels

MIN_QUESTIONS = 60
# words no training question of offline/scene_questions.py has, which the set must use (issue 12)
SYNONYMS = ("denim", "hoodie", "the guy with the ball")


@pytest.fixture(scope="module")
def labels():
    return load_labels(DEFAULT_LABELS)


@pytest.fixture(scope="module")
def questions(labels):
    return eq.load_questions(eq.DEFAULT_QUESTIONS, labels)


@pytest.fixture(scope="module")
def training_questions() -> frozenset[str]:
    """The synthetic generator's training questions (real_sets.training_question_set), normalised."""
    return training_question_set()


def test_question_file_is_well_formed(questions, labels):
    assert len(questions) >= MIN_QUESTIONS
    assert {q.category for q in questions} == set(eq.CATEGORIES)
    boxes = {im.id: len(im.people) for im in labels}
    for q in questions:
        assert q.image in boxes
        if q.category in eq.PERSON_CATEGORIES:
            assert 0 <= q.expected < boxes[q.image], q
        if q.category == eq.POSE:
            assert q.about is not None and 0 <= q.about < boxes[q.image], q
    assert len({q.question.lower() + q.image for q in questions}) == len(questions), "duplicate questions"


def test_question_set_uses_words_training_never_shows(questions, training_questions):
    text = " ".join(normalised(q.question) for q in questions)
    for word in SYNONYMS:
        assert re.search(rf"\b{word}\b", text), word
        shown = [t for t in training_questions if re.search(rf"\b{word}\b", t)]
        assert not shown, f"{word!r} appears in training questions: {shown[:3]}"


def test_no_question_is_a_training_question(questions, training_questions):
    assert {"count the people", "hello"} <= training_questions  # the check can fail
    copied = sorted(q.question for q in questions if normalised(q.question) in training_questions)
    assert not copied, f"written by hand means not among the generator's training questions: {copied}"


def test_counting_questions_expect_the_labelled_count(questions, labels):
    """A counting question's expected number is the number of labelled people in its image (the
    set only counts in images whose every person is labelled)."""
    boxes = {im.id: len(im.people) for im in labels}
    for q in questions:
        if q.category == eq.COUNTING:
            assert q.expected == boxes[q.image], q


@pytest.mark.parametrize("bad, message", [
    ({"category": "colour"}, "category"),
    ({"image": "no_such_image"}, "no labelled image"),
    ({"expected": 99}, "box index"),
    ({"expected": "none"}, "box index"),
    ({"category": "no_match", "expected": 0}, "'none'"),
    ({"category": "pose", "expected": "maybe"}, "yes"),
    ({"category": "counting", "expected": -1}, "count"),
])
def test_loader_refuses_malformed_questions(tmp_path, labels, bad, message):
    rec = {"id": "q1", "image": "ocv_basketball1", "question": "the person on the left", "category": "position",
           "expected": 0, **bad}
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"questions": [rec]}))
    with pytest.raises(ValueError, match=message):
        eq.load_questions(path, labels)


def test_loader_refuses_duplicate_ids(tmp_path, labels):
    rec = {"id": "q1", "image": "ocv_basketball1", "question": "the person on the left", "category": "position",
           "expected": 0}
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"questions": [rec, rec]}))
    with pytest.raises(ValueError, match="duplicate"):
        eq.load_questions(path, labels)


LABELS = [(0.0, 0.0, 100.0, 200.0), (200.0, 0.0, 300.0, 200.0), (400.0, 0.0, 500.0, 200.0)]


def _q(category, expected, qid="q", about=None):
    return eq.Question(qid, "img", "?", category, expected, about=about)


def test_chosen_label_matches_by_iou():
    assert eq.chosen_label((205.0, 5.0, 305.0, 195.0), LABELS) == 1
    assert eq.chosen_label(None, LABELS) == eq.CHOSE_NOBODY
    # half a box: IoU 0.5 matches, a quarter does not
    assert eq.chosen_label((0.0, 0.0, 100.0, 100.0), LABELS) == 0
    assert eq.chosen_label((0.0, 0.0, 50.0, 100.0), LABELS) == eq.CHOSE_UNLABELLED
    # between two labels: the one of higher IoU
    assert eq.chosen_label((210.0, 0.0, 330.0, 200.0), LABELS) == 1


@pytest.mark.parametrize("answer, count", [
    ("I see three people.", 3), ("There are 12 persons here", 12), ("Sure, it is [POSE].", None),
    ("Nobody here.", 0), ("no one", 0), ("Two.", 2)])
def test_answer_count(answer, count):
    assert eq.answer_count(answer) == count


@pytest.mark.parametrize("answer, yn", [
    ("Yes, the left arm is up.", "yes"), ("no.", "no"), ("Nobody matches", None), ("Sure, it is [POSE].", None)])
def test_answer_yes_no(answer, yn):
    assert eq.answer_yes_no(answer) == yn


def test_scorer_per_category_accuracy_on_a_hand_made_result_list():
    """Eleven hand-made responses with a known right/wrong pattern: per-category accuracy, refusal
    rate, counting, pose and answer variety come out as counted by hand."""
    left, mid, right = LABELS
    cases = [
        (_q("position", 0, "a"), eq.Response("Sure, it is [POSE].", left, 3), True),
        (_q("position", 2, "b"), eq.Response("Sure, it is [POSE].", mid, 3), False),       # wrong person
        (_q("position", 1, "c"), eq.Response("Nobody here matches.", None, 3), False),     # refused
        (_q("attribute", 1, "d"), eq.Response("Sure, it is [POSE].", (205, 5, 300, 200), 3), True),
        (_q("attribute", 1, "e"), eq.Response("Sure, it is [POSE].", (600, 0, 700, 200), 3), False),  # unlabelled
        (_q("no_match", "none", "f"), eq.Response("Nobody here matches.", None, 3), True),
        (_q("no_match", "none", "g"), eq.Response("Sure, it is [POSE].", right, 3), False),
        (_q("counting", 3, "h"), eq.Response("I see three people.", None, 3), True),
        (_q("counting", 3, "i"), eq.Response("I see two people.", None, 2), False),
        (_q("pose", "yes", "j", about=2), eq.Response("Yes, the right arm is raised.", right, 3), True),
        (_q("pose", "no", "k", about=1), eq.Response("Sure, it is [POSE].", left, 3), False),
    ]
    outcomes = [eq.score(q, r, LABELS) for q, r, _ in cases]
    assert [o.correct for o in outcomes] == [want for *_, want in cases]
    assert [o.chosen for o in outcomes[:5]] == [0, 1, eq.CHOSE_NOBODY, 1, eq.CHOSE_UNLABELLED]
    s = eq.summarise(outcomes)
    per = s["per_category"]
    assert set(per) == {"position", "attribute", "no_match", "counting", "pose"}
    assert per["position"]["n"] == 3 and per["position"]["correct"] == 1
    assert math.isclose(per["position"]["accuracy"], 1 / 3)
    assert per["position"]["refused"] == 1 and per["attribute"]["unlabelled"] == 1
    assert math.isclose(per["attribute"]["accuracy"], 0.5)
    assert math.isclose(per["position"]["chance"], 1 / 3)
    assert s["person_grounding"] == {"n": 5, "correct": 2, "accuracy": 0.4, "chance": pytest.approx(1 / 3)}
    assert s["no_match_refusal"] == 0.5
    assert s["counting_answer"] == 0.5
    assert s["counting_people_found"] == 0.5
    assert s["pose_yes_no"] == 0.5
    assert s["pose_referent_chosen"] == 0.5
    assert s["distinct_answers"] == 5
    assert s["top_answers"][0] == ("Sure, it is [POSE].", 6)
    table = eq.format_table(s)
    assert "| position | 3 | 1 | 33.3% | 33.3% | 1 | 0 |" in table
    failures = eq.format_failures(outcomes).splitlines()
    assert len(failures) == 6 and failures[0].startswith("attribute e ")


def test_run_asks_the_pipeline_and_scores(labels, questions):
    """`run` feeds every question's image and text to the pipeline and maps its selected box back
    to the labels (a fake pipeline that always selects the expected person of person questions)."""
    import numpy as np

    from chatpose_ros.core.body import NUM_JOINTS
    from chatpose_ros.core.types import PersonPose, PoseResult

    by_id = {im.id: im for im in labels}
    picked = [q for q in questions if q.category in eq.PERSON_CATEGORIES and by_id[q.image].load["kind"] == "repo_file"][:3]
    assert picked
    want = {q.question: by_id[q.image].people[q.expected].box for q in picked}

    class Fake:
        asked: list = []

        def estimate(self, image, query):
            assert image.ndim == 3 and image.dtype == np.uint8
            self.asked.append(query)
            p = PersonPose(np.zeros(NUM_JOINTS * 3, np.float32), np.zeros((NUM_JOINTS, 3), np.float32),
                           box=want[query], confidence=0.7)
            return PoseResult(query, "Sure, it is [POSE].", (p,), 0)

    fake = Fake()
    outcomes = eq.run(fake, picked, labels)
    assert fake.asked == [q.question for q in picked]
    assert all(o.correct for o in outcomes) and all(o.confidence == 0.7 for o in outcomes)


def test_target_lines_name_what_perception_said_about_the_expected_person(labels, questions):
    """`target_lines` gives, per person question, the scene line of the person matching the
    expected box (a fake perception that sees the expected person in red and a decoy), and None
    when perception did not find that person."""
    import numpy as np

    from chatpose_ros.core.scene import Attribute, Scene, ScenePerson

    by_id = {im.id: im for im in labels}
    q = next(q for q in questions if q.category in eq.PERSON_CATEGORIES and by_id[q.image].load["kind"] == "repo_file")
    target = by_id[q.image].people[q.expected].box

    def person(box, colour):
        return ScenePerson(box, 0.9, "coco17", np.zeros((17, 2), np.float32), np.zeros(17, np.float32),
                           attributes={"upper_colour": Attribute(colour, 0.8)})

    class Fake:
        def __init__(self, boxes):
            self.boxes = boxes

        def see(self, image):
            h, w = image.shape[:2]
            return Scene((w, h), tuple(person(b, c) for b, c in self.boxes))

    decoy = (0.0, 0.0, 2.0, 2.0)
    line = eq.target_lines(Fake([(decoy, "blue"), (target, "red")]), [q], labels)[q.id]
    assert "red top" in line and "blue" not in line
    assert eq.target_lines(Fake([(decoy, "blue")]), [q], labels)[q.id] is None
