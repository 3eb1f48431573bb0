"""The Scene in words (scene_words) and the question generator (offline.scene_questions): one
format for real and symbolic scenes, unique answers, held-out families / words / layouts that
training never draws."""
from __future__ import annotations

import numpy as np
import pytest

from chatpose_ros.core.scene import COCO17, Attribute, ObjectRelation, Scene, SceneObject, ScenePerson
from chatpose_ros.models.default.offline import scene_questions as sq
from chatpose_ros.models.default.scene_words import PERSON_TOKENS, PersonWords, ordinal, scene_words, true_answers


def _person(x0: float, height: float, attrs: dict[str, str] | None = None, arms_up: str = "", truncated=False,
            relations=()) -> ScenePerson:
    """A COCO-17 person standing at x0 with box height `height` px; `arms_up` "left"/"right"/"both"."""
    kp = np.zeros((17, 2), np.float32)
    cx, top = x0 + height / 6, 400 - height
    s = height / 8
    pts = {"nose": (cx, top + 0.5 * s), "left_ear": (cx + 0.3 * s, top + 0.5 * s), "right_ear": (cx - 0.3 * s, top + 0.5 * s),
           "left_shoulder": (cx + s, top + 1.5 * s), "right_shoulder": (cx - s, top + 1.5 * s),
           "left_elbow": (cx + 1.2 * s, top + 2.7 * s), "right_elbow": (cx - 1.2 * s, top + 2.7 * s),
           "left_wrist": (cx + 1.2 * s, top + 3.8 * s), "right_wrist": (cx - 1.2 * s, top + 3.8 * s),
           "left_hip": (cx + 0.6 * s, top + 4.2 * s), "right_hip": (cx - 0.6 * s, top + 4.2 * s),
           "left_knee": (cx + 0.6 * s, top + 6 * s), "right_knee": (cx - 0.6 * s, top + 6 * s),
           "left_ankle": (cx + 0.6 * s, top + 7.8 * s), "right_ankle": (cx - 0.6 * s, top + 7.8 * s)}
    if arms_up in ("left", "both"):
        pts["left_wrist"] = (cx + 1.2 * s, top - 0.5 * s)
    if arms_up in ("right", "both"):
        pts["right_wrist"] = (cx - 1.2 * s, top - 0.5 * s)
    scores = np.zeros(17, np.float32)
    for name, xy in pts.items():
        kp[COCO17.index(name)] = xy
        scores[COCO17.index(name)] = 0.9
    box = (x0, top, x0 + height / 3, 400.0)
    return ScenePerson(box, 0.9, "coco17", kp, scores, truncated=truncated,
                       attributes={k: Attribute(v, 0.8) for k, v in (attrs or {}).items()}, relations=tuple(relations))


def test_people_are_numbered_left_to_right_with_their_attributes():
    people = (_person(400, 200, {"upper_colour": "red", "posture": "standing"}, arms_up="right",
                      relations=[ObjectRelation(0, "holding", 0.9)]),
              _person(50, 300, {"upper_colour": "blue", "facing": "away"}),
              _person(250, 100, {"lower_colour": "black"}, arms_up="both"))
    scene = Scene((640, 480), people, (SceneObject("sports ball", (420, 200, 440, 220), 0.8),
                                       SceneObject("chair", (600, 300, 640, 400), 0.7)))
    words = scene_words(scene)
    assert words.index == (1, 2, 0)  # scene indices in left-to-right order
    text = words.text().splitlines()
    assert text[0] == "People (3):"  # the count is in the words: counting answers copy it
    assert text[1].startswith("<p1> 1st from left, 3rd from right, nearest, blue top, back to camera")
    assert "farthest" in text[2] and "black trousers" in text[2] and "both arms raised" in text[2]
    assert "red top" in text[3] and "right arm raised" in text[3] and "holding sports ball" in text[3]
    assert text[4] == "Objects: chair."  # the held ball is in its holder's line, not in the free objects


def test_low_confidence_attributes_are_left_out_and_no_people_says_so():
    p = _person(100, 200)
    p = ScenePerson(p.box, p.score, p.layout, p.keypoints, p.keypoint_scores,
                    attributes={"upper_colour": Attribute("red", 0.1)})
    assert "red" not in scene_words(Scene((640, 480), (p,))).text()
    assert scene_words(Scene((640, 480))).text() == "People: none."


def test_edge_cut_person_is_named():
    p = _person(0, 200, truncated=True)
    assert "cut at left edge" in scene_words(Scene((640, 480), (p, _person(300, 200)))).text()


def test_ordinals():
    assert [ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21, 22)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd"]


def _referent_ok(qa: sq.QA) -> None:
    """The answer's decision token agrees with the target, and a person answer names the person."""
    first = qa.answer.split()[0]
    if qa.target >= 0:
        assert first == PERSON_TOKENS[qa.target]
        assert 0 <= qa.target < len(qa.scene.people)
    elif qa.target == -1:
        assert first == "<none>"
    elif qa.target == -3:
        assert first == "[POSE]"
    else:
        assert not first.startswith("<") and first != "[POSE]"


@pytest.mark.parametrize("split", sq.SPLITS)
def test_every_split_yields_consistent_questions(split):
    rng = np.random.default_rng(5)
    for _ in range(150):
        qa = sq.make_qa(rng, split)
        _referent_ok(qa)
        if split == "layout":
            assert len(qa.scene.people) == sq.HELD_OUT_PEOPLE
        else:
            assert len(qa.scene.people) != sq.HELD_OUT_PEOPLE
        if qa.category == "counting":
            assert qa.count is not None and str(qa.count) in qa.answer or qa.answer == sq.NO_ONE_ANSWER


def test_held_out_families_and_words_never_reach_training():
    rng = np.random.default_rng(0)
    held_words = {w for d in (sq.COLOUR_WORDS, sq.OBJECT_WORDS, sq.POSTURE_WORDS, sq.ARM_WORDS, sq.FACING_WORDS)
                  for _, held in d.values() for w in held} | set(sq.TOP_WORDS[1]) | set(sq.BOTTOM_WORDS[1]) \
        | set(sq.NOUNS[1]) | set(sq.UNKNOWN_THINGS[1])
    held_families = {f[1] for f in sq.FAMILIES if f[2]}
    for _ in range(600):
        qa = sq.make_qa(rng, "train")
        assert qa.family not in held_families
        words = set(qa.question.lower().replace("?", " ").replace(".", " ").replace(",", " ").split())
        assert not any(w in words for w in held_words if " " not in w), qa.question
    fam = [sq.make_qa(rng, "family") for _ in range(100)]
    assert all(q.family in held_families for q in fam)
    word_qs = [sq.make_qa(rng, "words") for _ in range(100)]
    assert all(sq.uses_held_word(q.question) for q in word_qs)
    assert held_words == sq.HELD_WORDS


def test_person_questions_have_a_unique_referent():
    """Attribute questions name a colour exactly one person wears in that region."""
    rng = np.random.default_rng(1)
    seen = 0
    while seen < 40:
        qa = sq.make_qa(rng, "train", category="attribute")
        t = qa.scene.people[qa.target]
        canon = [c for c, (train, _) in sq.COLOUR_WORDS.items() if any(w in qa.question.split() for w in train)]
        if not canon:
            continue
        seen += 1
        assert canon[0] in (t.upper, t.lower)


def test_no_match_names_something_nobody_has():
    rng = np.random.default_rng(2)
    for _ in range(60):
        qa = sq.make_qa(rng, "train", category="no_match")
        assert qa.target == -1 and qa.answer.startswith("<none>")


def test_person_words_line_is_compact():
    p = PersonWords(order=2, count=3, upper="red", posture="sitting", holding="cup")
    assert p.line() == "2nd from left, 2nd from right, red top, sitting, holding cup"
    assert p.pose_words() == "sitting"


def test_true_answers_say_only_what_the_line_says():
    p = PersonWords(order=2, count=3, upper="red", lower="blue", posture="sitting", arms="right arm raised",
                    holding="cup")
    got = true_answers(p)
    assert "The person in the red top, 2nd from the left: sitting, right arm raised." in got
    assert "The person holding the cup, 2nd from the left: sitting, right arm raised." in got
    assert "The person in the middle, 2nd from the left: sitting, right arm raised." in got
    assert "No, the person 2nd from the left is raising the right arm." in got
    text = " ".join(got)
    assert "1st from the left" not in text and "on the far left" not in text and "standing" not in text
    assert not any(c in text for c in ("green", "black", "yellow", "in the blue top", "in the red trousers"))
    bare = true_answers(PersonWords(order=1, count=1))
    assert bare == ("The person 1st from the left: pose not clearly seen.",)


@pytest.mark.parametrize("split", sq.SPLITS)
def test_every_generated_person_answer_is_a_true_answer(split):
    """The reader's answers are kept to true_answers (reader.SceneReader.generate): every person
    answer it was trained on must be one of them."""
    rng = np.random.default_rng(3)
    n = 0
    for _ in range(400):
        qa = sq.make_qa(rng, split)
        if qa.target >= 0:
            token, text = qa.answer.split(" ", 1)
            assert token == PERSON_TOKENS[qa.target]
            assert text in true_answers(qa.scene.people[qa.target]), (qa.question, qa.answer)
            n += 1
    assert n > 100
