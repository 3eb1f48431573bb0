"""Questions about symbolic scenes, with answers built from the scene: the LLM's training and
evaluation data.

A symbolic scene is a :class:`~chatpose_ros.models.default.scene_words.SceneWords` drawn at
random (people with positions, clothing colours, posture, facing, arms, objects held or next
to them), i.e. exactly what the runtime prompt shows of a real image. Questions come from
template **families** in every category of issue 12 (attribute, position, ordinal, relation,
posture, negation, correction, pose yes/no, counting, no match, imagined pose, chat); each
question is kept only when its answer is unique in the scene.

Held out of training, for honest evaluation (:data:`SPLITS`):
- ``family``: whole template families (wordings) marked ``held=True``;
- ``words``: synonyms marked held-out (colour, garment, object, posture words): a question of
  this split contains at least one of them;
- ``layout``: scenes of exactly :data:`HELD_OUT_PEOPLE` people (training never sees that count).

The answer's first token is the decision: ``<pK>`` (the K-th person from the left), ``<none>``
(nobody fits; or nobody is in view), ``[POSE]`` (a pose made from the text) or a plain word
(counts, chat). The words after it say what was chosen and why, and the pose in words.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from chatpose_ros.models.default.scene_words import (
    ARMS, COLOURS, COUNT_ALL_ANSWER, FACINGS, NO_ONE_ANSWER, NONE_TOKEN, PERSON_TOKENS, POSE_TOKEN, POSTURES,
    PersonWords, SceneWords, arm_fact, ordinal, person_answer_text)

HELD_OUT_PEOPLE = 6
SPLITS = ("train", "in_dist", "family", "words", "layout")
PEOPLE_COUNTS = (0, 1, 2, 3, 4, 5, 7, 8)
PEOPLE_WEIGHTS = (0.04, 0.12, 0.24, 0.22, 0.16, 0.12, 0.06, 0.04)

# word -> (train synonyms, held-out synonyms); the first train word is the canonical one
COLOUR_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "red": (("red", "scarlet"), ("crimson", "burgundy")),
    "blue": (("blue", "navy"), ("cobalt", "azure")),
    "green": (("green", "lime"), ("olive",)),
    "yellow": (("yellow", "golden"), ("mustard",)),
    "black": (("black", "dark"), ("ebony",)),
    "white": (("white", "cream"), ("ivory",)),
    "orange": (("orange",), ("tangerine",)),
    "purple": (("purple", "violet"), ("plum",)),
    "pink": (("pink", "rose"), ("magenta",)),
    "grey": (("grey", "gray"), ("silver",)),
}
TOP_WORDS = (("shirt", "top", "t-shirt", "jacket", "sweater", "coat"), ("hoodie", "blouse", "jumper"))
BOTTOM_WORDS = (("trousers", "pants", "jeans", "shorts"), ("skirt", "leggings"))
NOUNS = (("person", "one", "guy", "man", "woman", "girl"), ("lady", "fellow"))
# COCO class -> (train words, held-out words)
OBJECT_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sports ball": (("ball", "football", "basketball"), ("soccer ball",)),
    "cup": (("cup", "mug"), ("coffee",)),
    "bottle": (("bottle",), ("water bottle",)),
    "cell phone": (("phone", "mobile"), ("smartphone",)),
    "umbrella": (("umbrella",), ("parasol",)),
    "handbag": (("handbag", "bag"), ("purse",)),
    "backpack": (("backpack", "rucksack"), ("knapsack",)),
    "bicycle": (("bicycle", "bike"), ("cycle",)),
    "chair": (("chair", "seat"), ("stool",)),
    "dog": (("dog",), ("puppy",)),
    "book": (("book",), ("novel",)),
    "laptop": (("laptop", "computer"), ("notebook computer",)),
    "tennis racket": (("racket", "tennis racket"), ("racquet",)),
    "bench": (("bench",), ("park bench",)),
}
POSTURE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "standing": (("standing", "standing up"), ("upright",)),
    "sitting": (("sitting", "sitting down", "seated"), ("sat down",)),
    "lying": (("lying down", "lying on the ground"), ("stretched out on the floor",)),
    "crouching": (("crouching", "squatting"), ("hunched down",)),
}
ARM_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "both arms raised": (("raising both arms", "with both arms up"), ("with both hands in the air",)),
    "left arm raised": (("raising the left arm", "with the left arm up"), ("lifting the left hand",)),
    "right arm raised": (("raising the right arm", "with the right arm up"), ("lifting the right hand",)),
    "arms down": (("with arms down", "with arms at the sides"), ("with hands hanging down",)),
}
FACING_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "camera": (("facing the camera", "looking at the camera"), ("facing us",)),
    "away": (("with the back to the camera", "facing away"), ("seen from behind",)),
}
# things no scene line ever names: a question about them matches nobody
# (none of tests/data/real_questions.json's wordings: the hand-written set must not be training data)
UNKNOWN_THINGS = (("the cat", "the person wearing sunglasses", "the one in the hat", "the one with a moustache",
                   "the motorcyclist", "the robot", "no one", "the horse", "the person with a tie",
                   "the one with a walking stick"),
                  ("the person with the tattoo", "the one wearing a scarf", "the bird"))
ORDINAL_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
IMAGINED = ("What pose would a tired person take?", "Show me how someone celebrates a goal.",
            "What does a person waving look like?", "How does someone look when they kick a ball?",
            "Show me a person resting.", "What pose would someone hiding take?",
            "Show me someone standing to attention.", "What pose does a person balancing take?")
IMAGINED_HELD = ("What pose would an excited fan take?", "Imagine someone stretching after a run.")
CHAT = (("hello", "Hello! Ask me about the people in the image."),
        ("hi there", "Hello! Ask me about the people in the image."),
        ("thanks", "You are welcome."),
        ("what can you do?", "I find the people in the image, answer about them and give their 3D pose."))


@dataclass(frozen=True)
class QA:
    """One question about a scene, with its answer built from the scene.

    target: 0-based index into `scene.people` (left to right) of the person meant; -1 nobody
    (no match, or nobody in view); -2 a text answer (counting, chat); -3 an imagined pose.
    count: the number a counting question expects; counted: the indexes of the people it counts;
    yes: the expected yes/no of a pose question."""

    scene: SceneWords
    question: str
    answer: str
    target: int
    category: str
    family: str
    count: int | None = None
    yes: bool | None = None
    counted: tuple[int, ...] | None = None

    @property
    def counts_everyone(self) -> bool:
        """A counting question that counts everyone in view (no description narrows it)."""
        return self.family in COUNT_ALL_FAMILIES


# ----------------------------------------------------------------------------- scenes


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def random_scene(rng: np.random.Generator, count: int) -> SceneWords:
    """A symbolic scene of `count` people (left to right) with attributes as perception gives
    them: some not measured (None), objects held / next to some people, free objects."""
    objects = list(OBJECT_WORDS)
    people = []
    for k in range(count):
        def maybe(p_known: float, values, probs=None):
            if rng.random() >= p_known:
                return None
            return values[int(rng.choice(len(values), p=probs))] if probs is not None else _pick(rng, values)

        people.append(PersonWords(
            order=k + 1, count=count,
            upper=maybe(0.88, COLOURS), lower=maybe(0.75, COLOURS),
            posture=maybe(0.85, POSTURES, (0.62, 0.22, 0.07, 0.09)),
            facing=maybe(0.75, tuple(FACINGS), (0.55, 0.2, 0.125, 0.125)),
            arms=maybe(0.75, ARMS, (0.55, 0.13, 0.13, 0.19)),
            hand_at_head=bool(rng.random() < 0.08),
            holding=_pick(rng, objects) if rng.random() < 0.15 else None,
            next_to=_pick(rng, objects) if rng.random() < 0.12 else None))
    if count >= 2 and rng.random() < 0.6:
        near, far = rng.choice(count, 2, replace=False)
        people[near] = replace(people[near], near="nearest")
        people[far] = replace(people[far], near="farthest")
    if count and rng.random() < 0.15:
        people[0] = replace(people[0], edge="left")
    if count and rng.random() < 0.15:
        people[-1] = replace(people[-1], edge="right")
    held = {p.holding for p in people} | {p.next_to for p in people}
    free = sorted({_pick(rng, objects) for _ in range(int(rng.integers(0, 3)))} - held)
    return SceneWords(tuple(people), tuple(free), tuple(range(count)))


# ----------------------------------------------------------------------------- words


HELD_WORDS: frozenset[str] = frozenset(
    {w for d in (COLOUR_WORDS, OBJECT_WORDS, POSTURE_WORDS, ARM_WORDS, FACING_WORDS) for _, held in d.values()
     for w in held} | set(TOP_WORDS[1]) | set(BOTTOM_WORDS[1]) | set(NOUNS[1]) | set(UNKNOWN_THINGS[1]))


def uses_held_word(question: str) -> bool:
    """Whether `question` contains a held-out word or phrase (whole words)."""
    import re

    q = question.lower()
    return any(re.search(rf"\b{re.escape(w)}\b", q) for w in HELD_WORDS)


class Vocab:
    """Which synonyms a split may use: train words only, or (split "words") held-out ones too,
    of which each question must use at least one."""

    def __init__(self, split: str) -> None:
        self.held = split == "words"
        self.used_held = False

    def pick(self, rng: np.random.Generator, words: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
        train, held = words
        if self.held and held and rng.random() < 0.7:
            self.used_held = True
            return _pick(rng, held)
        return _pick(rng, train)


def _colour_phrase(rng, vocab: Vocab, colour: str, region: str | None) -> str:
    c = vocab.pick(rng, COLOUR_WORDS[colour])
    if region == "upper":
        return f"in the {c} {vocab.pick(rng, TOP_WORDS)}"
    if region == "lower":
        return f"in {c} {vocab.pick(rng, BOTTOM_WORDS)}"
    return _pick(rng, (f"in {c}", f"wearing {c}", f"dressed in {c}"))


def _wrap(rng, noun: str, phrase: str) -> str:
    """A referring expression into a request."""
    ref = f"the {noun} {phrase}"
    return _pick(rng, (ref, ref, f"Show me {ref}.", f"What is the pose of {ref}?", f"Find {ref}.",
                       f"Give me the 3D pose of {ref}."))


def _unique(people, pred) -> int | None:
    hits = [i for i, p in enumerate(people) if pred(p)]
    return hits[0] if len(hits) == 1 else None


# ----------------------------------------------------------------------------- referring expressions
# Each returns (phrase, target index, reason words) or None when no unique referent exists.


def ref_attribute(rng, s: SceneWords, vocab: Vocab):
    p = s.people
    region = _pick(rng, ("upper", "lower", None))
    colours = [getattr(x, region) for x in p] if region else [x.upper for x in p] + [x.lower for x in p]
    cands = sorted({c for c in colours if c})
    if not cands:
        return None
    c = _pick(rng, cands)
    if region:
        t = _unique(p, lambda x: getattr(x, region) == c)
        reason = f"in the {c} {'top' if region == 'upper' else 'trousers'}"
    else:
        t = _unique(p, lambda x: c in (x.upper, x.lower))
        reason = f"wearing {c}"
    if t is None:
        return None
    return _colour_phrase(rng, vocab, c, region), t, reason


def ref_position(rng, s: SceneWords, vocab: Vocab):
    n = len(s.people)
    if n < 2:
        return None
    kind = _pick(rng, ("left", "right", "middle", "nearest", "farthest", "edge"))
    if kind == "left":
        return _pick(rng, ("on the left", "on the far left", "furthest to the left", "at the left")), 0, \
            "on the far left"
    if kind == "right":
        return _pick(rng, ("on the right", "on the far right", "furthest to the right", "at the right")), n - 1, \
            "on the far right"
    if kind == "middle":
        if n % 2 == 0:
            return None
        return _pick(rng, ("in the middle", "in the centre", "in the center")), n // 2, "in the middle"
    if kind in ("nearest", "farthest"):
        t = _unique(s.people, lambda x: x.near == kind)
        if t is None:
            return None
        phrase = _pick(rng, ("closest to the camera", "nearest to us", "in the front")) if kind == "nearest" \
            else _pick(rng, ("furthest away", "farthest from the camera", "in the back"))
        return phrase, t, f"{kind} to the camera"
    side = _pick(rng, ("left", "right"))
    t = _unique(s.people, lambda x: x.edge == side)
    if t is None:
        return None
    return _pick(rng, (f"cut off by the {side} edge", f"at the {side} edge of the picture")), t, \
        f"cut by the {side} edge"


def ref_ordinal(rng, s: SceneWords, vocab: Vocab):
    n = len(s.people)
    if n < 3:
        return None
    k = int(rng.integers(1, min(n, len(ORDINAL_WORDS))))  # 2nd .. n-th (1-based k+1)
    side = _pick(rng, ("left", "right"))
    word = _pick(rng, (ORDINAL_WORDS[k], ordinal(k + 1)))
    t = k if side == "left" else n - 1 - k
    return f"{word} from the {side}", t, f"{ordinal(k + 1)} from the {side}"


def ref_relation_object(rng, s: SceneWords, vocab: Vocab):
    rel = _pick(rng, ("holding", "next_to"))
    cands = sorted({getattr(x, rel) for x in s.people if getattr(x, rel)})
    if not cands:
        return None
    obj = _pick(rng, cands)
    t = _unique(s.people, lambda x: getattr(x, rel) == obj)
    if t is None:
        return None
    w = vocab.pick(rng, OBJECT_WORDS[obj])
    if rel == "holding":
        return _pick(rng, (f"holding the {w}", f"who is holding the {w}", f"who has the {w}")), t, \
            f"holding the {obj}"
    return _pick(rng, (f"next to the {w}", f"standing by the {w}")), t, f"next to the {obj}"


def ref_relation_person(rng, s: SceneWords, vocab: Vocab):
    p = s.people
    anchor = ref_attribute(rng, s, vocab)
    if anchor is None or len(p) < 2:
        return None
    phrase, a, _ = anchor
    kind = _pick(rng, ("right_of", "left_of", "next_to"))
    if kind == "right_of" and a + 1 < len(p):
        return f"to the right of the one {phrase}", a + 1, f"{ordinal(a + 2)} from the left"
    if kind == "left_of" and a >= 1:
        return f"to the left of the one {phrase}", a - 1, f"{ordinal(a)} from the left"
    if kind == "next_to":
        nbrs = [j for j in (a - 1, a + 1) if 0 <= j < len(p)]
        if len(nbrs) == 1:
            return f"next to the one {phrase}", nbrs[0], f"{ordinal(nbrs[0] + 1)} from the left"
    return None


def ref_posture(rng, s: SceneWords, vocab: Vocab):
    kind = _pick(rng, ("posture", "posture", "arms", "facing"))
    p = s.people
    if kind in ("posture", "arms"):
        words = POSTURE_WORDS if kind == "posture" else ARM_WORDS
        cands = sorted({getattr(x, kind) for x in p if getattr(x, kind)})
        if not cands:
            return None
        v = _pick(rng, cands)
        t = _unique(p, lambda x: getattr(x, kind) == v)
        return None if t is None else (vocab.pick(rng, words[v]), t, v)
    v = _pick(rng, tuple(FACING_WORDS))
    t = _unique(p, lambda x: x.facing == v)
    return None if t is None else (vocab.pick(rng, FACING_WORDS[v]), t, FACINGS[v])


REFS: dict[str, Callable] = {"attribute": ref_attribute, "position": ref_position, "ordinal": ref_ordinal,
                             "relation": lambda r, s, v: (ref_relation_object if r.random() < 0.6
                                                          else ref_relation_person)(r, s, v),
                             "posture": ref_posture}


def _any_ref(rng, s: SceneWords, vocab: Vocab, tries: int = 6):
    for _ in range(tries):
        got = REFS[_pick(rng, ("attribute", "position", "ordinal", "relation", "posture"))](rng, s, vocab)
        if got is not None:
            return got
    return None


# ----------------------------------------------------------------------------- answers


def person_answer(s: SceneWords, t: int, reason: str) -> str:
    return f"{PERSON_TOKENS[t]} {person_answer_text(s.people[t], reason)}"


def count_answer(k: int, what: str = "") -> str:
    if not what:
        return COUNT_ALL_ANSWER[min(k, 2)].format(count=k)
    noun = "person" if k == 1 else "people"
    return f"I see {k} {noun} {what}."


# ----------------------------------------------------------------------------- families
# (category, family id, held out?, maker(rng, scene, vocab) -> (question, answer, target, count, yes[, counted]) | None)

def _referring(category: str, wrap: bool = True):
    def make(rng, s, vocab):
        got = REFS[category](rng, s, vocab)
        if got is None:
            return None
        phrase, t, reason = got
        noun = vocab.pick(rng, NOUNS)
        q = _wrap(rng, noun, phrase) if wrap else f"whoever is {phrase}"
        return q, person_answer(s, t, reason), t, None, None
    return make


def _negation(rng, s, vocab):
    p = s.people
    if len(p) == 2:
        got = _any_ref(rng, s, vocab)
        if got is None:
            return None
        phrase, t, _ = got
        other = 1 - t
        q = _pick(rng, (f"not the one {phrase}", f"the other one, not the one {phrase}",
                        f"the person who is not {phrase.removeprefix('in ').removeprefix('wearing ')}"
                        if phrase.startswith(("holding", "standing", "sitting")) else f"not the one {phrase}"))
        return q, person_answer(s, other, f"{ordinal(other + 1)} from the left"), other, None, None
    # two people share a colour: "the one in red who is not on the left"
    cols = [c for c in COLOURS if sum(c in (x.upper, x.lower) for x in p) == 2]
    if not cols:
        return None
    c = _pick(rng, cols)
    pair = [i for i, x in enumerate(p) if c in (x.upper, x.lower)]
    side = _pick(rng, ("left", "right"))
    t = pair[1] if side == "left" else pair[0]
    w = vocab.pick(rng, COLOUR_WORDS[c])
    q = _pick(rng, (f"the person in {w} who is not on the {side}", f"the one in {w}, but not the one on the {side}"))
    return q, person_answer(s, t, f"wearing {c}"), t, None, None


def _correction(template: str):
    def make(rng, s, vocab):
        a = _any_ref(rng, s, vocab)
        b = _any_ref(rng, s, vocab)
        if a is None or b is None or a[1] == b[1]:
            return None
        noun = vocab.pick(rng, NOUNS)
        q = template.format(a=f"the {noun} {a[0]}", b=f"the one {b[0]}")
        return q, person_answer(s, b[1], b[2]), b[1], None, None
    return make


def _pose_question(rng, s, vocab):
    got = _any_ref(rng, s, vocab)
    if got is None:
        return None
    phrase, t, reason = got
    p = s.people[t]
    kind = _pick(rng, ("posture", "arms", "facing"))
    noun = vocab.pick(rng, NOUNS)
    ref = f"the {noun} {phrase}"
    if kind == "posture" and p.posture:
        v = _pick(rng, POSTURES)
        q = f"Is {ref} {vocab.pick(rng, POSTURE_WORDS[v])}?"
        yes = p.posture == v
        fact = p.posture
    elif kind == "arms" and p.arms:
        v = _pick(rng, ("raised", "both"))
        if v == "raised":
            q = _pick(rng, (f"Is {ref} raising an arm?", f"Does {ref} have a hand up?"))
            yes = p.arms != "arms down"
        else:
            q = f"Is {ref} raising both arms?"
            yes = p.arms == "both arms raised"
        fact = arm_fact(p.arms)
    elif kind == "facing" and p.facing in FACING_WORDS:
        q = f"Is {ref} facing the camera?"
        yes = p.facing == "camera"
        fact = FACINGS[p.facing]
    else:
        return None
    where = f"{ordinal(p.order)} from the left"
    ans = f"{PERSON_TOKENS[t]} {'Yes' if yes else 'No'}, the person {where} is {fact}."
    return q, ans, t, None, yes


def _count_all(questions):
    def make(rng, s, vocab):
        n = len(s.people)
        return _pick(rng, questions), count_answer(n), -2, n, None, tuple(range(n))
    return make


def _count_filtered(rng, s, vocab):
    kind = _pick(rng, ("posture", "colour"))
    if kind == "posture":
        v = _pick(rng, POSTURES)
        counted = tuple(i for i, x in enumerate(s.people) if x.posture == v)
        q = f"How many people are {vocab.pick(rng, POSTURE_WORDS[v])}?"
        return q, count_answer(len(counted), v), -2, len(counted), None, counted
    c = _pick(rng, COLOURS)
    counted = tuple(i for i, x in enumerate(s.people) if c in (x.upper, x.lower))
    q = f"How many people are wearing {vocab.pick(rng, COLOUR_WORDS[c])}?"
    return q, count_answer(len(counted), f"wearing {c}"), -2, len(counted), None, counted


def _no_match(rng, s, vocab):
    p = s.people
    kind = _pick(rng, ("colour", "object", "posture", "unknown", "unknown"))
    noun = vocab.pick(rng, NOUNS)
    if kind == "colour":
        absent = [c for c in COLOURS if not any(c in (x.upper, x.lower) for x in p)]
        if not absent:
            return None
        phrase = f"the {noun} {_colour_phrase(rng, vocab, _pick(rng, absent), _pick(rng, ('upper', 'lower', None)))}"
    elif kind == "object":
        absent = [o for o in OBJECT_WORDS if not any(o in (x.holding, x.next_to) for x in p)]
        phrase = f"the {noun} holding the {vocab.pick(rng, OBJECT_WORDS[_pick(rng, absent)])}"
    elif kind == "posture":
        absent = [v for v in POSTURES if not any(x.posture == v for x in p)]
        if not absent or any(x.posture is None for x in p):
            return None
        phrase = f"the {noun} {vocab.pick(rng, POSTURE_WORDS[_pick(rng, absent)])}"
    else:
        phrase = vocab.pick(rng, UNKNOWN_THINGS)
    q = _pick(rng, (phrase, f"Show me {phrase}.", f"What is the pose of {phrase}?"))
    if not p:
        return q, f"{NONE_TOKEN} {NO_ONE_ANSWER}", -1, None, None
    return q, f'{NONE_TOKEN} Nobody here matches "{phrase}".', -1, None, None


def _imagined(questions):
    def make(rng, s, vocab):
        return _pick(rng, questions), f"{POSE_TOKEN} Here is a pose made from your words, not a person in view.", \
            -3, None, None
    return make


def _chat(rng, s, vocab):
    q, a = _pick(rng, CHAT)
    return q, a, -2, None, None


FAMILIES: list[tuple[str, str, bool, Callable]] = [
    ("attribute", "attribute", False, _referring("attribute")),
    ("position", "position", False, _referring("position")),
    ("position", "position_whoever", True, _referring("position", wrap=False)),
    ("ordinal", "ordinal", False, _referring("ordinal")),
    ("relation", "relation", False, _referring("relation")),
    ("posture", "posture", False, _referring("posture")),
    ("posture", "posture_whoever", True, _referring("posture", wrap=False)),
    ("negation", "negation", False, _negation),
    ("correction", "correction_no", False, _correction("{a}, no, {b}")),
    ("correction", "correction_sorry", False, _correction("{a}, sorry, I mean {b}")),
    ("correction", "correction_actually", True, _correction("{a}... actually no, {b}")),
    ("correction", "correction_wait", True, _correction("{a}, no wait, {b}")),
    ("pose", "pose_yes_no", False, _pose_question),
    ("counting", "count_all", False, _count_all(("How many people do you see?", "Tell me how many people are here.",
                                                 "Count the people.", "How many people are in the image?"))),
    ("counting", "count_all_held", True, _count_all(("Could you count the people for me?",
                                                     "What is the number of people here?"))),
    ("counting", "count_filtered", False, _count_filtered),
    ("no_match", "no_match", False, _no_match),
    ("imagined", "imagined", False, _imagined(IMAGINED)),
    ("imagined", "imagined_held", True, _imagined(IMAGINED_HELD)),
    ("chat", "chat", False, _chat),
]
COUNT_ALL_FAMILIES = frozenset(f[1] for f in FAMILIES if f[1].startswith("count_all"))
CATEGORY_WEIGHTS = {"attribute": 0.14, "position": 0.1, "ordinal": 0.1, "relation": 0.12, "posture": 0.1,
                    "negation": 0.07, "correction": 0.07, "pose": 0.09, "counting": 0.08, "no_match": 0.09,
                    "imagined": 0.02, "chat": 0.02}


REAL_QUESTIONS = Path(__file__).resolve().parents[4] / "tests" / "data" / "real_questions.json"


def normalised(text: str) -> str:
    """Lower case, letters, digits and single spaces only."""
    import re

    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


@functools.lru_cache(maxsize=1)
def hand_written() -> frozenset[str]:
    """The hand-written real-image questions (normalised): never produced for training, so the
    real-image figures are never measured on a training question."""
    if not REAL_QUESTIONS.exists():  # an installed package without the tests folder
        return frozenset()
    return frozenset(normalised(q["question"]) for q in json.loads(REAL_QUESTIONS.read_text())["questions"])


def _families(split: str) -> list[tuple[str, str, bool, Callable]]:
    if split == "family":
        return [f for f in FAMILIES if f[2]]
    return [f for f in FAMILIES if not f[2]]


def make_qa(rng: np.random.Generator, split: str = "train", category: str | None = None,
            tries: int = 50) -> QA:
    """One question of `split` (SPLITS); `category` picks the category, else by CATEGORY_WEIGHTS."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")
    fams = _families(split)
    cats = sorted({f[0] for f in fams})
    for _ in range(tries):
        cat = category
        if cat is None:
            w = np.array([CATEGORY_WEIGHTS[c] for c in cats])
            cat = cats[int(rng.choice(len(cats), p=w / w.sum()))]
        options = [f for f in fams if f[0] == cat]
        if not options:
            raise ValueError(f"split {split!r} has no family of category {cat!r}")
        _, fam, _, maker = _pick(rng, options)
        n = HELD_OUT_PEOPLE if split == "layout" else int(rng.choice(PEOPLE_COUNTS, p=PEOPLE_WEIGHTS))
        if cat not in ("counting", "no_match", "imagined", "chat") and n == 0:
            n = int(rng.integers(1, 6))
        scene = random_scene(rng, n)
        vocab = Vocab(split)
        got = maker(rng, scene, vocab)
        if got is None or (split == "words" and not uses_held_word(got[0])):
            continue
        if split == "train" and normalised(got[0]) in hand_written():
            continue
        q, a, t, count, yes, *counted = got  # counting makers add the indexes counted
        return QA(scene, q, a, t, cat, fam, count, yes, counted[0] if counted else None)
    raise RuntimeError(f"no {category or 'any'} question found for split {split!r} in {tries} tries")
