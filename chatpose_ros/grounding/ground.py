"""Score every constraint of a request on every person, decide, and say what was checked.

    g = Grounder()
    outcome = g.answer(request, facts, context=Context(previous_box=...))
    outcome.selected, outcome.kind, outcome.answer

Decisions (all from the same scores, so a count, a choice and a yes/no never disagree):
- person: the best-scoring person when it stands out (its runner-up under MARGIN of its score,
  the runner-up scored as if what was not seen on them held) and something checked was seen on
  them; otherwise, when several fit what could be checked, a clarifying question naming them
  (`kind` "clarify", `selected` -1). "Nobody here matches" only when the checked evidence rules
  out everyone (every score under NOBODY) and says why; when only a part of the description
  fits nobody and what else a person wears or does fits someone, it asks about them instead.
  With one person in view, a word that places someone among others ("at the far right", "the
  second", "higher up") is asked back: perception may have missed the others. A constraint that
  cannot be checked (a hat, a beard, a garment type) never rules anyone out and is said in the
  answer; nor does a garment region that was not seen or is hidden behind a nearer person (its
  colour scores UNKNOWN), nor a pose seen on nobody (said, not given to the least sure mismatch).
- count: the people whose every checkable constraint holds (score >= HOLDS); a person on whom a
  constraint was not seen is counted and the answer says how many such; a small object found nowhere
  counts everyone who fits the rest (said), a large one (LARGE_OBJECTS) nobody.
- a large object (a bicycle, a horse) found with nobody rules everyone out; a smaller one found nowhere
  is not seen (the detector misses held things).
- yes/no: the predicate's score on the referred person (>= HOLDS: yes); a part seen not to hold
  is a no, and what was seen holding with the rest unseen is a yes that says what it could not check.
Gender words ("the man", "ladies", "policeman") are checked on the faces a face model read
(`PersonFacts.face`): a face at least GENDER_MIN_FACE_PX wide whose p(male) is at least
GENDER_SURE_MALE or p(female) at least GENDER_SURE says which; any other face, or none, stays "cannot check" for that person, and
gender alone never rules everyone out. Words for children (boy, girl, lad) are not read off faces
(CHILD_WORDS: the face model learnt from adults).
No ROS, no model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from chatpose_ros.core.geometry_np import box_iou

from .colours import (ACHROMATIC_CHROMA, LIGHTNESS_WORDS, MIN_SHARE, ColourNames, chroma, delta_e,
                      grey_level_score, lightness_score)
from .facts import PersonFacts
from .request import Constraint, Reference, Request
from .words import Lexicon, gender_of

MARGIN = 0.6      # the best person is chosen when the runner-up scores under MARGIN x its score
NOBODY = 0.06     # every person under this combined score: nobody matches
HOLDS = 0.5       # a constraint holds of a person at or above this score (counts, yes/no)
COLOUR_HOLDS = 0.3  # absolute colour fit at which a colour counts as worn (counts, yes/no)
COLOUR_SEEN = 0.3   # under this absolute fit for everyone, the closest person is offered, not chosen
COLOUR_WEAK = 0.1   # under this absolute fit for everyone, nobody wears the colour
UNKNOWN = 0.5     # score of a constraint whose evidence was not seen on that person
MENTION_OBJECT = 0.4  # an object held is named in a description at this relation confidence
NO_PERSON_ANSWER = "I see no person in the image."
BLACK_AND_WHITE = "The picture is black and white: I can't see colours, only black, white and greys."
POSITION_DECAY = 0.4  # "on the left": the leftmost scores 1, each next person this factor less
SKIN_BARE = 0.55  # share of a part's pixels that are skin at or above which the part is bare
SKIN_COVERED = 0.2  # at or under which it is covered (between the two: not clear, scored UNKNOWN)
GENDER_MIN_FACE_PX = 16.0  # a face narrower than this (px) is not read for gender
GENDER_SURE = 0.8   # p(female) at or above which the face says "woman" (else: cannot check)
# p(male) at or above which the face says "man": the model leans to "woman" (men's faces read lower), and on
# the by-eye face labels of all six sets (tests/data/face_gender_labels.json, faces >= 16 px) 0.7 for men
# with 0.8 for women calls 73 of 79 right, against 65 of 71 at 0.8 for both (make eval-faces)
GENDER_SURE_MALE = 0.7
# words for children are not checked on faces: the face model learnt from adults' photos (IMDB-WIKI),
# and on the five children of the fourth question set it called both boys female at p(female) >= 0.9
CHILD_WORDS = frozenset({"boy", "boys", "girl", "girls", "lad", "lads", "lass", "lasses", "schoolboy", "schoolboys",
                         "schoolgirl", "schoolgirls", "son", "sons", "daughter", "daughters"})
GENDER_MATCH, GENDER_UNSURE, GENDER_OTHER = 1.0, 0.7, 0.1  # scores: the face says so / cannot tell / the other
FITS_NOBODY = 0.15  # a constraint scoring under this on everyone fits nobody
APPEARANCE = ("colour", "pattern", "skin", "posture", "gesture", "facing", "object")  # what a person wears or does
WORN = ("colour", "pattern", "skin", "garment")  # what a person wears: said as "wearing ..."
RELATIVE = ("position", "ordinal", "distance", "relation")  # words that place a person among others
# COCO classes as big as a person or bigger, that the detector finds when they are in view: found
# nowhere, nobody is with one (smaller things, often held or half hidden, are "not seen" instead).
LARGE_OBJECTS = frozenset({"bicycle", "motorcycle", "horse", "car", "bus", "truck", "train", "boat", "airplane",
                           "surfboard", "cow", "elephant", "bear", "zebra", "giraffe", "sheep", "dog"})
ABSENT = 0.02  # score of a large object found with nobody (under NOBODY: it rules everyone out)
# kinds whose "not seen" means the evidence is missing (joints out of view), so an unseen person could be the one
COULD_BE = ("posture", "gesture", "facing")
CHECKABLE = ("colour", "pattern", "skin", "position", "ordinal", "distance", "posture", "gesture", "facing", "object",
             "relation")
DESCRIBE_COLOURS = ("black", "white", "grey", "dark grey", "light grey", "red", "dark red", "maroon", "orange",
                    "yellow", "beige", "brown", "dark brown", "tan", "green", "dark green", "olive", "teal", "blue",
                    "light blue", "navy blue", "purple", "pink", "cream", "khaki")
GESTURE_WORDS = {"waving": "waving", "arm_raised": "an arm raised", "both_arms_raised": "both arms raised",
                 "pointing": "pointing", "hand_at_head": "a hand at the head", "arms_crossed": "arms crossed",
                 "hands_on_hips": "hands on hips", "hands_in_lap": "hands together in the lap",
                 "hand_at_chest": "a hand on the chest", "arm_out": "an arm held out"}
# a gesture with no entry of its own on a person is read from another: waving (read over time) where nobody
# watched from a raised arm; an arm held out ("reaching out") from pointing's one-frame measure (facts.gestures)
READ_AS = {"waving": "arm_raised", "arm_out": "pointing"}
UNCHECKED_WORDS = {"gender": "whether someone is a man or a woman", "age": "age", "hair": "hair",
                   "body": "faces, hair or other body details", "head": "hats or anything worn on the head",
                   "face": "glasses or anything on the face", "feet": "shoes", "hands": "gloves",
                   "neck": "scarves or ties", "object": "that object", "adjective": "that"}


@dataclass(frozen=True)
class Context:
    """The conversation so far: the box (xyxy px) of the person chosen last, on the current
    frame's people; None when there is none."""

    previous_box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Outcome:
    """What the grounder decided.

    Attributes:
        kind: "person", "clarify", "no_match", "count", "yes", "no", "unknown" (a yes/no it cannot
            check), "describe", "no_person" (nobody in view), "not_person", "imagine", "chat".
        selected: index into the facts (scene people) of the chosen person, -1 if none.
        candidates: for "clarify", everyone it could be (best first; the question names the first three).
        count: for "count", how many people fit.
        scores: (N,) combined score per person (empty when not scored).
        confidence: selected person's share of the scores, in [0, 1], or None.
        answer: the sentence for the user.
        checked / unchecked: the user's words that were checked / could not be.
    """

    kind: str
    selected: int = -1
    candidates: tuple[int, ...] = ()
    count: int | None = None
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    confidence: float | None = None
    answer: str = ""
    checked: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


@dataclass
class _Table:
    """One request's people, its conversation, and each constraint's scores on them (`Grounder.score`,
    `Grounder.colour_fit`), computed once: the choice, a count, a yes/no and the words that explain
    them all read the same numbers. Made per request (`Grounder.answer`), never shared."""

    facts: list[PersonFacts]
    context: Context
    scores: dict[Constraint, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    fits: dict[Constraint, np.ndarray] = field(default_factory=dict)


def ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


class Grounder:
    """Scores, decisions and answers (stateless; thread-safe)."""

    def __init__(self, colours: ColourNames | None = None, lexicon: Lexicon | None = None) -> None:
        """`lexicon`: WordNet, to tell the gender of person nouns beyond words.MALE_WORDS /
        FEMALE_WORDS (None: those lists and the -man / -woman endings only)."""
        self.colours = colours or ColourNames.shipped()
        self.lexicon = lexicon
        self._describe_labs = np.stack([self.colours.lab(n) for n in DESCRIBE_COLOURS])
        self._grey_levels = np.array([i for i, n in enumerate(DESCRIBE_COLOURS)
                                      if n in ("black", "dark grey", "grey", "light grey", "white")])

    # -- scores ------------------------------------------------------------------------------
    def score(self, c: Constraint, t: _Table) -> tuple[np.ndarray, np.ndarray]:
        """(N,) score in [0, 1] of constraint `c` (a CHECKABLE kind or a gender word) on each person of
        `t`, and (N,) bool: was it seen. Measured once per request, then read from `t` (read-only)."""
        if c not in t.scores:
            t.scores[c] = _frozen(*self._score(c, t))
        return t.scores[c]

    def _score(self, c: Constraint, t: _Table) -> tuple[np.ndarray, np.ndarray]:
        facts = t.facts
        n = len(facts)
        seen = np.ones(n, bool)
        if c.kind == "colour":
            s = self.colour_fit(c, t)
            seen = np.array([any(f.palettes.get(r) is not None and r not in f.hidden for r in _regions(c.region))
                             for f in facts])
            best = s.max() if n else 0.0
            if best >= COLOUR_WEAK:  # relative to the others in view as well as absolute: video colours are dull
                s = 0.4 * s + 0.6 * s / best
            else:  # nobody's colours come close: the colour rules everyone out
                s = s * 0.25
            s = np.where(seen, s, UNKNOWN)  # a garment behind someone else: its colour is not known
        elif c.kind == "pattern":
            raw = np.array([max(f.pattern.get(r, 0.0) for r in _regions(c.region)) for f in facts])
            rel = raw / max(1e-6, raw.max()) if n else raw
            s = np.clip(rel, 0.02, 1.0) if c.value != "plain" else np.clip(1.0 - rel, 0.02, 1.0)
        elif c.kind == "skin":
            want, part = c.value.split("_")
            shares = [f.skin.get(part) for f in facts]
            seen = np.array([v is not None and not SKIN_COVERED < v < SKIN_BARE for v in shares])
            s = np.array([UNKNOWN if not ok else 0.95 if (v >= SKIN_BARE) == (want == "bare") else 0.05
                          for v, ok in zip(shares, seen)])
        elif c.kind == "position":
            s, seen = self._position(c.value, facts)
        elif c.kind == "ordinal":
            k = c.k if c.k > 0 else 1
            s = np.array([1.0 if (f.rank_left if c.value == "left" else f.rank_right) == k - 1 else 0.02
                          for f in facts])
        elif c.kind == "distance":
            d = np.array([f.depth for f in facts])
            u = (d - d.min()) / max(1e-9, d.max() - d.min()) if n > 1 else np.zeros(n)
            s = np.clip(1.0 - u if c.value == "near" else u, 0.05, 1.0) ** 2
        elif c.kind == "posture":
            s, seen = self._attribute([f.posture for f in facts], {c.value})
        elif c.kind == "facing":
            want = {"left", "right"} if c.value == "side" else {c.value}
            s, seen = self._attribute([f.facing for f in facts], want)
        elif c.kind == "gesture":
            keys = [c.value if c.value in f.gestures else READ_AS.get(c.value, c.value) for f in facts]
            s = np.array([UNKNOWN if k not in f.gestures else (0.95 if f.gestures[k] else 0.05)
                          for k, f in zip(keys, facts)])
            seen = np.array([k in f.gestures for k, f in zip(keys, facts)])
        elif c.kind == "object":
            table = [f.holding if c.value == "holding" else {**f.near, **f.holding} for f in facts]
            found = [max((v for k, v in t.items() if k in c.coco), default=0.0) for t in table]
            anywhere = any(found)
            # found nowhere: a horse or a bicycle would have been seen (not a car the picture is taken in)
            big = set(c.coco) <= LARGE_OBJECTS and c.value != "inside"
            s = (np.array([0.3 + 0.7 * v if v > 0 else 0.1 for v in found]) if anywhere
                 else np.full(n, ABSENT) if big else np.full(n, UNKNOWN))
            seen = np.full(n, anywhere or big)
        elif c.kind == "relation":
            s, seen = self._relation(c, t)
        elif self.gender(c):  # "not the man": the faces that say "man" score low; never everyone ruled out
            return self._gender(self.gender(c), facts, c.negated)
        else:
            raise ValueError(f"constraint kind {c.kind!r} is not scored")
        s = np.clip(np.asarray(s, np.float64), 0.0, 1.0)
        if c.negated:
            s = np.where(seen, 1.0 - s, UNKNOWN)
        return s, seen

    def checkable(self, c: Constraint, t: _Table) -> bool:
        """Can constraint `c` be checked on these people? Its kind is scored, and a colour with a hue
        ("red", "navy") is not asked of a black-and-white picture (black, white, greys and bare
        lightness words are: by lightness); a gender word is when at least one face says which."""
        if self.gender(c):
            return bool(self.score(c, t)[1].any())
        if c.kind not in CHECKABLE:
            return False
        return not (c.kind == "colour" and self.hueless(c, t.facts))

    def hueless(self, c: Constraint, facts: list[PersonFacts]) -> bool:
        """A colour with a hue asked of a black-and-white picture (nothing to measure it on)."""
        return (c.kind == "colour" and bool(facts) and facts[0].monochrome and c.value not in LIGHTNESS_WORDS
                and chroma(self.colours.lab(c.value)) >= ACHROMATIC_CHROMA)

    def colour_fit(self, c: Constraint, t: _Table) -> np.ndarray:
        """(N,) absolute fit of colour constraint `c` on each person's region (`colour_score`, or
        `lightness_score` for a bare "dark" / "light" / "pale"; a "full" region is the mean of upper
        and lower, any other the best of its regions); measured once per request, then read from `t`."""
        if c not in t.fits:
            t.fits[c], = _frozen(self._colour_fit(c, t.facts))
        return t.fits[c]

    def _colour_fit(self, c: Constraint, facts: list[PersonFacts]) -> np.ndarray:
        if c.value in LIGHTNESS_WORDS:
            fits = [[lightness_score(f.palettes.get(r), c.value) for r in _regions(c.region)] for f in facts]
        elif facts and facts[0].monochrome:  # a black-and-white picture: black, white and greys by lightness
            lab = self.colours.lab(c.value)
            ls = [float(v) for f in facts for pal in f.palettes.values() if pal is not None
                  for v in pal.lab[pal.shares >= MIN_SHARE, 0]]
            span = (min(ls), max(ls)) if ls else (0.0, 100.0)
            fits = [[grey_level_score(f.palettes.get(r), lab, span) for r in _regions(c.region)] for f in facts]
        else:
            fits = [[self.colours.score(f.palettes.get(r), c.value) for r in _regions(c.region)] for f in facts]
        return np.array([np.mean(v) if c.region == "full" else max(v) for v in fits], np.float64)

    def gender(self, c: Constraint) -> str:
        """"male" / "female" when `c` is a gender word (parse's unchecked "gender"), else ""."""
        if c.kind != "unchecked" or c.value != "gender" or c.words.lower() in CHILD_WORDS:
            return ""
        return gender_of(c.words, self.lexicon)

    @classmethod
    def _gender(cls, want: str, facts: list[PersonFacts], negated: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """_faces_say, except that when every face says "the other", nobody is ruled out by gender
        alone (choosing someone): every score is GENDER_UNSURE and nothing counts as seen."""
        s_arr, seen_arr = cls._faces_say(want, facts, negated)
        if seen_arr.any() and not (s_arr == GENDER_MATCH).any() and seen_arr.all():
            return np.full(len(facts), GENDER_UNSURE), np.zeros(len(facts), bool)
        return s_arr, seen_arr

    @staticmethod
    def _faces_say(want: str, facts: list[PersonFacts], negated: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(N,) GENDER_MATCH / GENDER_OTHER where the face says `want` (or, `negated`, anything but
        `want`), GENDER_UNSURE elsewhere, and (N,) bool: did the face say."""
        s, seen = [], []
        for f in facts:
            says = ""
            if f.face is not None and f.face[1] >= GENDER_MIN_FACE_PX:
                says = ("male" if f.face[0] >= GENDER_SURE_MALE else
                        "female" if 1.0 - f.face[0] >= GENDER_SURE else "")
            if not says:
                s.append(GENDER_UNSURE)
            elif (says == want) != negated:
                s.append(GENDER_MATCH)
            else:
                s.append(GENDER_OTHER)
            seen.append(s[-1] != GENDER_UNSURE)
        return np.array(s), np.array(seen, bool)

    def holds(self, c: Constraint, t: _Table) -> tuple[np.ndarray, np.ndarray]:
        """(N,) bool: does checkable constraint `c` hold of each person (a colour: worn, absolute fit
        >= COLOUR_HOLDS; anything else: score >= HOLDS), and (N,) bool: was it seen. Counts and
        yes/no answers read this."""
        sc, seen = self.score(c, t)
        if c.kind == "colour" and not c.negated:
            return self.colour_fit(c, t) >= COLOUR_HOLDS, seen
        return sc >= HOLDS, seen

    @staticmethod
    def _position(value: str, facts: list[PersonFacts]) -> tuple[np.ndarray, np.ndarray]:
        """(N,) score of a position word and (N,) bool seen (all, but for "edge" when nobody's box
        touches the image's left or right side: perception missed whoever is cut off there)."""
        n = len(facts)
        if value.startswith("edge"):  # "edge_left": cut off by the image's left side
            sides = {value[5:]} if value != "edge" else {"left", "right"}
            cut = np.array([bool(sides & set(f.edges)) for f in facts])
            return np.where(cut, 1.0, 0.05), np.full(n, bool(cut.any()))
        return Grounder._place(value, facts), np.ones(n, bool)

    @staticmethod
    def _place(value: str, facts: list[PersonFacts]) -> np.ndarray:
        n = len(facts)
        if n == 1:
            return np.ones(1)
        x = np.array([f.cx if value in ("left", "right", "middle") else f.box[1] for f in facts])
        if value == "middle" and n == 2:  # two people have no middle one: it tells nobody apart
            return np.full(2, 0.5)
        if value == "middle":
            u = (x - x.min()) / max(1e-9, x.max() - x.min())
            return np.clip(1.0 - 2.0 * np.abs(u - 0.5), 0.05, 1.0) ** 2
        rank = np.argsort(np.argsort(x if value in ("left", "top") else -x, kind="stable"), kind="stable")
        return np.maximum(0.05, POSITION_DECAY ** rank)  # the leftmost 1, the next POSITION_DECAY, ...

    @staticmethod
    def _attribute(values: list[tuple[str, float] | None], want: set[str]) -> tuple[np.ndarray, np.ndarray]:
        s, seen = [], []
        for v in values:
            if v is None:
                s.append(UNKNOWN)
                seen.append(False)
            else:
                s.append(0.5 + 0.5 * v[1] if v[0] in want else 0.5 - 0.45 * v[1])
                seen.append(True)
        return np.array(s), np.array(seen)

    def _weights(self, ref: Reference, t: _Table) -> np.ndarray | None:
        """(N,) who the other person of a relation is, weights summing to 1 (the person of the
        conversation for a pronoun; else those scoring within MARGIN of the best); None when unknown."""
        n = len(t.facts)
        if ref.pronoun:
            j = self._previous(t.facts, t.context)
            if j < 0:
                return None
            w = np.zeros(n)
            w[j] = 1.0
            return w
        scored = self._rank(ref, t)[0]
        if not scored.size or scored.max() <= 0:
            return None
        w = np.where(scored >= MARGIN * scored.max(), scored, 0.0)
        return w / w.sum()

    @staticmethod
    def _between(wa: np.ndarray, wb: np.ndarray, facts: list[PersonFacts]) -> np.ndarray:
        """(N,) score of standing between the people of weights `wa` and `wb` (left to right in the
        image): 1 for the only person between them, less for each other person also between."""
        n = len(facts)
        cx = np.array([f.cx for f in facts])
        s = np.zeros(n)
        for j in np.flatnonzero(wa):
            for k in np.flatnonzero(wb):
                if j == k:
                    continue
                lo, hi = sorted((cx[j], cx[k]))
                inside = (cx > lo) & (cx < hi)
                inside[[j, k]] = False
                s += wa[j] * wb[k] * np.where(inside, 0.7 ** max(0, int(inside.sum()) - 1), 0.0)
        return np.clip(s / s.max() if s.max() > 0 else s, 0.02, 1.0)

    def _relation(self, c: Constraint, t: _Table) -> tuple[np.ndarray, np.ndarray]:
        facts = t.facts
        n = len(facts)
        if c.ref is None:
            return np.full(n, UNKNOWN), np.zeros(n, bool)
        if c.value == "not" and not c.ref.pronoun:  # "not the man in the dark t-shirt": as unlike that person as they are
            scored = self._rank(c.ref, t)[0]
            if not scored.size or scored.max() <= 0:
                return np.full(n, UNKNOWN), np.zeros(n, bool)
            return np.clip(1.0 - scored / scored.max(), 0.02, 1.0), np.ones(n, bool)
        w = self._weights(c.ref, t)
        if w is None:
            return np.full(n, UNKNOWN), np.zeros(n, bool)
        if c.value == "between":
            w2 = None if c.ref2 is None else self._weights(c.ref2, t)
            if w2 is None:
                return np.full(n, UNKNOWN), np.zeros(n, bool)
            return self._between(w, w2, facts), np.ones(n, bool)
        return self._beside(c.value, w, facts), np.ones(n, bool)

    @staticmethod
    def _beside(value: str, w: np.ndarray, facts: list[PersonFacts]) -> np.ndarray:
        """(N,) score of standing `value` ("next_to", "left_of", "right_of", "behind", "in_front_of")
        the people of weights `w`."""
        n = len(facts)
        s = np.zeros(n)
        for j in np.flatnonzero(w):
            fj = facts[j]
            sj = np.zeros(n)
            for i, f in enumerate(facts):
                if i == j:
                    continue
                gap = abs(f.cx - fj.cx) / (0.5 * (f.height + fj.height))
                if value == "next_to":
                    sj[i] = np.exp(-2.0 * gap)
                elif value == "left_of":
                    sj[i] = np.exp(-0.5 * gap) if f.cx < fj.cx else 0.02
                elif value == "right_of":
                    sj[i] = np.exp(-0.5 * gap) if f.cx > fj.cx else 0.02
                elif value == "behind":
                    sj[i] = (0.9 if f.depth > fj.depth else 0.05) * np.exp(-0.5 * gap)
                elif value == "in_front_of":
                    sj[i] = (0.9 if f.depth < fj.depth else 0.05) * np.exp(-0.5 * gap)
            if sj.max() > 0:
                sj = sj / sj.max()
            s += w[j] * sj
        return np.clip(s, 0.02, 1.0)

    @staticmethod
    def _previous(facts: list[PersonFacts], context: Context) -> int:
        if context.previous_box is None or not facts:
            return -1
        ious = [box_iou(f.box, context.previous_box) for f in facts]
        j = int(np.argmax(ious))
        return j if ious[j] >= 0.3 else -1

    def _rank(self, ref: Reference, t: _Table
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str], list[str], list[str]]:
        """(N,) combined score per person over the checkable constraints; (N,) "could be" scores: each
        person's score with every constraint that was not seen on them taken as holding (what they
        could score if the unseen part were seen); (N,) bool: was any checked constraint seen on that
        person (evidence, not only "unknown"); the words checked, the words not checked, checkable
        words that were not seen on somebody, and colour words that fit nobody well (the closest
        person only comes near: COLOUR_WEAK..COLOUR_SEEN). A checkable constraint seen on nobody (an
        object found nowhere, a posture nobody's joints show) cannot tell anyone apart: it is counted
        with the words not checked."""
        n = len(t.facts)
        s = np.ones(n)
        could = np.ones(n)
        evidence = np.zeros(n, bool)
        checked, unchecked, unseen, weak = [], [], [], []
        for c in ref.constraints:
            if self.checkable(c, t):
                sc, seen = self.score(c, t)
                if not seen.any() or _posed_by_nobody(c, sc, seen):
                    # seen on nobody, or a pose seen on nobody that reads as asked: the least sure
                    # mismatch is no match (the man on a stool is not "squatting on his heels")
                    unseen.append(c.words)
                    unchecked.append(c.words)
                    continue
                s = s * sc
                could = could * (np.where(seen, sc, 1.0) if c.kind in COULD_BE else sc)
                if not (self.gender(c) and np.ptp(sc) == 0):  # a gender every face shares tells nobody apart
                    evidence |= seen
                checked.append(("not " if c.negated else "") + c.words)
                if not seen.all():
                    unseen.append(c.words)
                if c.kind == "colour" and not c.negated and COLOUR_WEAK <= self.colour_fit(c, t).max() < COLOUR_SEEN:
                    weak.append(c.words)
            elif c.kind in ("unchecked", "motion", "garment", "colour"):  # a colour: of a black-and-white picture
                unchecked.append(c.words)
        if ref.pronoun or ref.other:
            j = self._previous(t.facts, t.context)
            if j >= 0:
                mask = np.zeros(n)
                mask[j] = 1.0
                keep = mask if ref.pronoun else 1.0 - mask
                s, could = s * keep, could * keep
        return s, could, evidence, checked, unchecked, unseen, weak

    # -- decisions and answers ---------------------------------------------------------------
    def answer(self, req: Request, facts: list[PersonFacts], context: Context = Context()) -> Outcome:
        if req.intent in ("imagine", "chat"):
            return Outcome(req.intent)
        if req.intent == "not_person" or (req.ref is not None and req.ref.not_person
                                          and (not req.ref.constraints or not req.ref.head)):
            word = req.ref.not_person if req.ref is not None else ""
            if word in ("nobody", "none", "no one"):
                return Outcome("not_person", answer="OK, nobody.")
            return Outcome("not_person", answer=f"I look for people: \"{word}\" is not a person, so nobody here matches.")
        if not facts:
            if req.intent == "count":
                return Outcome("count", count=0, answer=NO_PERSON_ANSWER)
            return Outcome("no_person", answer=NO_PERSON_ANSWER)
        if req.intent == "yes_no" and not req.predicate and req.ref is not None:
            # "Is the man in a red jumper?", "Is the man on the right touching his chin?": what he wears or
            # does is asked of the man (the rest of the description says who)
            asked = tuple(c for c in req.ref.constraints if c.kind in APPEARANCE + ("garment",))
            who = tuple(c for c in req.ref.constraints if c not in asked)
            if asked and who:
                req = replace(req, ref=replace(req.ref, constraints=who), predicate=asked)
        ref = req.ref or Reference()
        t = _Table(facts, context)
        if req.intent == "count":
            return self._count(req, ref, t)
        chosen = self._choose(ref, t)
        if req.intent == "yes_no" and chosen.kind == "clarify":
            verdicts = {self._yes_no(req, replace(chosen, kind="person", selected=i), t).kind
                        for i in chosen.candidates}
            if len(verdicts) == 1 and verdicts <= {"yes", "no"} and len(chosen.candidates) > 1:  # the same for all it could be
                v = verdicts.pop()
                words = _words([_phrase(c) for c in req.predicate])
                who = (" and ".join(self.who(facts[i], facts) for i in chosen.candidates) if len(chosen.candidates) <= 3
                       else f"all {len(chosen.candidates)} people it could be")
                return replace(chosen, kind=v, answer=f"{'Yes' if v == 'yes' else 'No'}: I am not sure which person "
                               f"you mean, but {who} are{'' if v == 'yes' else ' not'} {words}.")
        if req.intent == "yes_no" and chosen.kind == "person":
            return self._yes_no(req, chosen, t)
        if req.intent == "describe" and chosen.kind == "person":
            f = facts[chosen.selected]
            return Outcome("describe", chosen.selected, scores=chosen.scores, confidence=chosen.confidence,
                           answer=f"{self.who(f, facts).capitalize()}: {self.pose_words(f)}.")
        return chosen

    def _choose(self, ref: Reference, t: _Table) -> Outcome:
        facts, context = t.facts, t.context
        n = len(facts)
        s, could, evidence, checked, unchecked, unseen, weak = self._rank(ref, t)
        if ref.pronoun and context.previous_box is None:
            return self._clarify(range(n), facts, s, checked, unchecked,
                                 "I don't know who you mean yet: nobody was chosen before.")
        cannot = _cannot([u for u in unchecked if u not in unseen])  # the unseen are said below
        if any(self.hueless(c, facts) for c in ref.constraints):
            cannot = f"{BLACK_AND_WHITE} {cannot}"
        if unseen:
            cannot = (self._unseen_words(ref, t) + " " + cannot).strip()
        relative = [c.words for c in ref.constraints if c.kind in RELATIVE and not c.negated]
        if n == 1 and relative:  # "the one at the far right" presumes several people: perception may have missed some
            return self._clarify([0], facts, s, checked, unchecked,
                                 (f"I see only one person, so I can't tell \"{_words(relative)}\". " + cannot).strip())
        if any(c.kind == "position" and c.value.startswith("edge") and not c.negated and c.words in unseen
               for c in ref.constraints):  # nobody found cut off there: perception missed whoever is
            return self._clarify([int(i) for i in np.argsort(-s) if s[i] > 0], facts, s, checked, unchecked, cannot)
        if not checked:
            pool = [i for i in range(n) if s[i] > 0]
            absent = [c for c in ref.constraints if c.kind == "object" and not c.negated and c.words in unseen]
            if len(pool) == 1 and not absent:  # (the one person in view, unless the thing asked about is nowhere)
                i = pool[0]
                return self._chosen(i, s, facts, checked, unchecked, cannot)
            return self._clarify(pool, facts, s, checked, unchecked, cannot)
        best = int(np.argmax(s))
        if s[best] < NOBODY and (rest := self._rest_holds(ref, t)) is not None:
            # one part fits nobody ("a red shirt underneath"), the rest fits someone: offer them
            why = self._why_nobody(ref, t)
            return self._clarify([int(i) for i in np.argsort(-rest) if rest[i] >= HOLDS], facts, rest, checked, unchecked,
                                 f"I see nobody who fits all of it: {why}.")
        if s[best] < NOBODY:
            why = self._why_nobody(ref, t)
            return Outcome("no_match", scores=s.astype(np.float32), answer=f"Nobody here matches \"{_words(checked)}\": {why}.",
                           checked=tuple(checked), unchecked=tuple(unchecked))
        counted_among = [c.words for c in ref.constraints if c.kind == "unchecked" and c.value in ("gender", "age")
                         and not c.negated]
        ordinals = [c for c in ref.constraints if c.kind == "ordinal" and not c.negated and c.k > 1]
        if ordinals and counted_among and n > 1:  # "the second woman from the left": counted among whom?
            # (the first / last one is taken as a place, like "the woman on the left")
            o = ordinals[0]
            rank = [f.rank_left if o.value == "left" else f.rank_right for f in facts]
            k = (o.k if o.k > 0 else 1) - 1
            pool = [i for i in range(n) if k <= rank[i] <= k + 1 or (k > 0 and rank[i] == k - 1)]
            return self._clarify(pool, facts, s, checked, unchecked,
                                 f"I can't tell {_words(counted_among)} from others, so I can't count "
                                 f"\"{o.words}\" among them.")
        others = np.delete(could, best)  # the others as they could score where a constraint was not seen on them
        runner = float(others.max()) if others.size else 0.0
        if runner < MARGIN * s[best] and weak:  # the closest colour is not close: offer, don't choose
            return self._clarify([best], facts, s, checked, unchecked,
                                 f"Nobody wears clearly \"{_words(weak)}\"; the closest I see is "
                                 f"{self.colour_name(facts[best].palettes.get('upper'), facts[best].monochrome) or 'unclear'}.")
        if runner < MARGIN * s[best] and not evidence[best]:  # chosen on "unknown" alone: nothing seen fits
            return self._clarify([best] + [int(i) for i in np.argsort(-could) if i != best][:2], facts, s, checked,
                                 unchecked, (f"I can't see \"{_words(checked)}\" on {self.who(facts[best], facts)}. "
                                             + _cannot(unchecked)).strip())
        if runner < MARGIN * s[best]:
            return self._chosen(best, s, facts, checked, unchecked, cannot)
        pool = [best] + [int(i) for i in np.argsort(-could) if i != best and could[i] >= MARGIN * s[best]][:2]
        return self._clarify(pool, facts, s, checked, unchecked, cannot)

    def _rest_holds(self, ref: Reference, t: _Table) -> np.ndarray | None:
        """When some constraints of a description fit nobody but the others (what a person wears,
        holds or does) fit someone, the (N,) score of those others; else None."""
        scored = [(c, sc) for c, sc, seen in self._scored(ref.constraints, t) if seen.any()]
        fail = [c.words for c, sc in scored if sc.max() < FITS_NOBODY]
        rest, described = np.ones(len(t.facts)), False
        for c, sc in scored:
            if sc.max() < FITS_NOBODY:
                continue
            rest = rest * sc
            # what the garment that fits nobody leaves bare or covers ("raincoat" of "the yellow raincoat") is no other part
            own = c.kind == "skin" and any(c.words in words for words in fail)
            described |= c.kind in APPEARANCE and not c.negated and not own and bool((sc >= HOLDS).any())
        return rest if fail and described and rest.max() >= HOLDS else None

    def _scored(self, constraints, t: _Table) -> list[tuple[Constraint, np.ndarray, np.ndarray]]:
        """The checkable constraints of `constraints`, each with its (N,) score and (N,) seen."""
        return [(c, *self.score(c, t)) for c in constraints if self.checkable(c, t)]

    def _chosen(self, i: int, s: np.ndarray, facts, checked, unchecked, cannot: str) -> Outcome:
        f = facts[i]
        total = float(s.sum())
        conf = float(s[i] / total) if total > 0 else None
        text = f"{self.who(f, facts).capitalize()}"
        if checked:
            text += f" (I checked: {_words(checked)})"
        text += f": {self.pose_words(f)}."
        if cannot:
            text += f" {cannot}"
        return Outcome("person", i, scores=s.astype(np.float32), confidence=conf, answer=text,
                       checked=tuple(checked), unchecked=tuple(unchecked))

    def _clarify(self, pool, facts, s, checked, unchecked, lead: str) -> Outcome:
        pool = [int(i) for i in pool] or list(range(min(3, len(facts))))  # all it could be; the first 3 are named
        options = [self.who(facts[i], facts) for i in sorted(pool[:3], key=lambda i: facts[i].rank_left)]
        ask = "Do you mean " + (", ".join(options[:-1]) + ", or " + options[-1] if len(options) > 1 else options[0]) + "?"
        if not lead and checked:
            lead = f"More than one person fits \"{_words(checked)}\"."
        return Outcome("clarify", candidates=tuple(pool), scores=np.asarray(s, np.float32),
                       answer=(lead + " " + ask).strip(), checked=tuple(checked), unchecked=tuple(unchecked))

    def _unseen_words(self, ref: Reference, t: _Table) -> str:
        """What could not be seen: an object nobody was found with, a posture or gesture whose
        joints were not seen on some of the people."""
        out = []
        for c, sc, seen in self._scored(ref.constraints, t):
            if _posed_by_nobody(c, sc, seen):
                out.append(f"Nobody here looks \"{c.words}\" to me." if seen.all() else
                           f"Of those whose pose I can see, nobody looks \"{c.words}\".")
                continue
            if seen.all():
                continue
            if c.kind == "object":
                out.append(f"I don't see {_thing(c)} (for \"{c.words}\") anywhere in the image.")
            else:
                out.append(f"I can't see \"{c.words}\" on {'anyone' if not seen.any() else 'everyone'}.")
        return " ".join(out)

    def _why_nobody(self, ref: Reference, t: _Table) -> str:
        facts = t.facts
        worst, why = 1.0, "what I checked fits nobody"
        for c, sc, _ in self._scored(ref.constraints, t):
            if sc.max() < worst:
                worst = float(sc.max())
                if c.kind == "colour" and not c.negated:
                    seen = sorted({self.colour_name(f.palettes.get(r), f.monochrome) for f in facts for r in _regions(c.region)
                                   if f.palettes.get(r) is not None} - {""})
                    why = f"nobody wears {c.value}" + (f" (I see {', '.join(seen[:5])})" if seen else "")
                elif c.kind == "object" and not c.negated and sc.max() <= ABSENT:
                    why = f"I see no {' or '.join(c.coco)} (for \"{c.words}\") with anyone"
                elif c.kind == "object":
                    why = f"nobody is {c.value} {'a' if not c.words.endswith('s') else ''} {c.coco[0]}".replace("  ", " ")
                else:
                    why = f"nobody is \"{c.words}\""
        return why

    def _count(self, req: Request, ref: Reference, t: _Table) -> Outcome:
        facts = t.facts
        n = len(facts)
        holds = np.ones(n, bool)
        unsure = np.zeros(n, bool)  # a constraint not seen on them: counted (not ruled out), and said
        ruled_out = np.zeros(n, bool)
        checked, unchecked, genders, rest, nowhere, why = [], [], {}, [], [], []
        for c in ref.constraints + req.predicate:
            gender = self.gender(c)
            said = self._faces_say(gender, t.facts, c.negated) if gender else None
            if said is not None and said[1].any():
                # a gender: the faces that say which count or rule out; the others are counted, and said
                ok, seen = said[0] == GENDER_MATCH, said[1]
            elif self.checkable(c, t) and not gender:
                ok, seen = self.holds(c, t)
            else:
                if c.kind in ("unchecked", "motion", "garment", "colour"):
                    unchecked.append(c.words)
                continue
            if c.kind == "object" and not seen.any():  # a small thing found nowhere: everyone who fits the rest
                nowhere.append(f"I don't see {_thing(c)} (for \"{c.words}\") anywhere in the "
                               "image, so I counted everyone who fits the rest.")
                ok = np.ones(n, bool)
            elif not seen.all():
                why.append(c)
                unsure |= ~seen
            holds &= ok | ~seen  # not seen on them: counted, and said
            ruled_out |= seen & ~ok
            checked.append(("not " if c.negated else "") + c.words)
            if gender and not c.negated:
                genders[gender] = c.words
            elif not (c.kind == "skin" and any(c.words in o.words for o in ref.constraints + req.predicate
                                                  if o is not c and o.kind == "colour")):  # "red t-shirts": once
                rest.append(_phrase(c) if c.kind in APPEARANCE else checked[-1])
        k = int(holds.sum())
        unsure &= ~ruled_out
        what = f" {_words(rest)}" if rest else ""
        who = "person" if k == 1 else "people"
        if len(genders) == 1:  # "I see 2 women (in red)", not "2 people women, red"
            (gender, word), = genders.items()
            plural = word.endswith("men") or (word.endswith("s") and not word.endswith("ss"))
            who = word if (k != 1) == plural else {"male": ("man", "men"), "female": ("woman", "women")}[gender][k != 1]
            what = f" ({_words(rest)})" if rest else ""
        if "exists" in req.notes:
            text = (f"Yes, {k} {who}{what}." if k else f"No, nobody{what}.")
        else:
            text = f"I see {k} {who}{what}."
        text = " ".join([text] + nowhere)
        if unsure.any():  # counted though not seen: said, with why
            m = int(unsure.sum())
            text += (f" That includes {m} I can't be sure of ({_words([_phrase(c) for c in why])}): "
                     f"{'; '.join(dict.fromkeys(_unseen_why(c) for c in why))}.")
        cannot = _cannot(unchecked)
        if any(self.hueless(c, facts) for c in ref.constraints + req.predicate):
            cannot = f"{BLACK_AND_WHITE} {cannot}"
        if cannot:
            text += f" {cannot} I counted everyone who fits the rest."
        return Outcome("count", count=k, candidates=tuple(int(i) for i in np.flatnonzero(holds)), answer=text,
                       checked=tuple(checked), unchecked=tuple(unchecked))

    def _yes_no(self, req: Request, chosen: Outcome, t: _Table) -> Outcome:
        facts = t.facts
        i = chosen.selected
        f = facts[i]
        pred = [c for c in req.predicate if not (c.kind == "relation" and c.ref is not None and c.ref.pronoun)]
        # asked about what they wear: named by place only, so that the answer never names a colour of its own
        # beside the one asked about ("Yes, the person on the right in dark grey is wearing a white shirt")
        who = self.who(f, facts, dress=not any(c.kind in WORN for c in pred))
        checkable = [c for c in pred if self.checkable(c, t)]
        if not checkable:
            words = _words([c.words for c in pred]) or "that"
            return Outcome("unknown", i, scores=chosen.scores, confidence=chosen.confidence,
                           answer=f"I can't check \"{words}\" for {who}.", unchecked=tuple(c.words for c in pred))
        verdict = True
        unseen, failed = [], []
        for c in checkable:
            ok, seen = self.holds(c, t)
            if not seen[i]:
                unseen.append(c)
            elif not ok[i]:
                failed.append(c)
            verdict &= bool(ok[i])
        seen_ok = [c for c in checkable if c not in unseen and c not in failed]
        why = "; ".join(dict.fromkeys(_unseen_why(c) for c in unseen))
        if unseen and not failed and not seen_ok:  # nothing asked was seen ("no" needs one part seen not to hold)
            return Outcome("unknown", i, scores=chosen.scores, confidence=chosen.confidence,
                           answer=f"I can't see whether {who} is {_words([_phrase(c) for c in unseen])}: {why}.",
                           checked=tuple(c.words for c in checkable))
        if unseen and not failed:  # what was seen holds; the rest is said
            return Outcome("yes", i, scores=chosen.scores, confidence=chosen.confidence,
                           answer=f"Yes, {who} is {_words([_phrase(c) for c in seen_ok])}, as far as I can see: I can't "
                                  f"check whether they are {_words([_phrase(c) for c in unseen])} ({why}).",
                           checked=tuple(c.words for c in seen_ok), unchecked=tuple(c.words for c in unseen))
        state = self.pose_words(f)
        words = _words([_phrase(c) for c in checkable])
        if verdict:
            text = f"Yes, {who} is {words} ({state})."
        else:
            text = f"No, {who} is not {_words([_phrase(c) for c in failed])}: {self._instead(failed[0], f) or state}."
        return Outcome("yes" if verdict else "no", i, scores=chosen.scores, confidence=chosen.confidence, answer=text,
                       checked=tuple(c.words for c in checkable))

    def _instead(self, c: Constraint, f: PersonFacts) -> str:
        """What was seen instead of a constraint that does not hold ("in dark grey", "sitting"), or ""."""
        if c.kind == "colour" and not c.negated:
            names = [self.colour_name(f.palettes.get(r), f.monochrome) for r in _regions(c.region)]
            names = [x for x in dict.fromkeys(names) if x]
            return f"I see {' and '.join(names)}" if names else ""
        if c.kind == "posture" and f.posture is not None:
            return f"I see them {f.posture[0]}"
        return ""

    # -- words about a person ----------------------------------------------------------------
    def colour_name(self, pal, grey_only: bool = False) -> str:
        """The describing colour nearest the palette's main colour ("navy blue"); with `grey_only`
        (a black-and-white picture) the nearest grey level by lightness ("dark grey")."""
        if pal is None:
            return ""
        if grey_only:
            d = np.abs(self._describe_labs[self._grey_levels, 0] - pal.lab[0][0])
            return DESCRIBE_COLOURS[int(self._grey_levels[int(np.argmin(d))])]
        d = delta_e(self._describe_labs, pal.lab[0][None])
        name = DESCRIBE_COLOURS[int(np.argmin(d))]
        basic, share = self.colours.basic_colour(pal.lab[0])
        if basic != self.colours.category(name) and share >= 0.5:
            # the nearest word is of another basic colour than most names near the colour ("tan" for
            # a yellow tee in shade): say the basic colour the names agree on
            return basic
        return name

    def who(self, f: PersonFacts, facts: list[PersonFacts], dress: bool = True) -> str:
        """'the person on the left in a red top' / 'the person 2nd from the left in navy blue'; without
        `dress`, the place only ('the person on the left')."""
        n = len(facts)
        if n == 1:
            where = "the person"
        elif f.rank_left == 0:
            where = "the person on the left"
        elif f.rank_right == 0:
            where = "the person on the right"
        elif n == 3:
            where = "the person in the middle"
        else:
            where = f"the person {ordinal(f.rank_left + 1)} from the left"
        if not dress:
            return where
        if f.skin.get("torso", 0.0) >= SKIN_BARE:
            return f"{where}, shirtless"
        upper = self.colour_name(f.palettes.get("upper"), grey_only=f.monochrome)
        return f"{where} in {upper}" if upper else where

    @staticmethod
    def pose_words(f: PersonFacts) -> str:
        words = []
        if f.posture is not None:
            words.append(f.posture[0])
        said_by = {"arm_raised": "both_arms_raised", "arm_out": "pointing", "hand_at_chest": "arms_crossed"}
        g = [GESTURE_WORDS[k] for k, v in f.gestures.items()  # not twice: "an arm held out" is said as "pointing"
             if v and not (k in said_by and f.gestures.get(said_by[k]))]
        words.extend(g)
        if f.facing is not None and f.facing[0] == "away":
            words.append("back to the camera")
        for label, conf in f.holding.items():
            if conf >= MENTION_OBJECT:
                words.append(f"holding a {label}")
        return ", ".join(words) if words else "pose not clearly seen"


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays, made read-only (a request's table is shared by all that reads it)."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _posed_by_nobody(c: Constraint, sc: np.ndarray, seen: np.ndarray) -> bool:
    """A posture, gesture or facing asked for (not negated) that was seen on somebody and holds of
    none of those it was seen on ("squatting" when everyone seen stands)."""
    return c.kind in COULD_BE and not c.negated and bool(seen.any()) and not (sc[seen] >= HOLDS).any()


def _unseen_why(c: Constraint) -> str:
    """Why a yes/no could not be checked on the person asked about ("I can't see their legs clearly")."""
    if c.kind in ("colour", "pattern", "skin"):
        part = c.value.split("_")[-1] if c.kind == "skin" else {"upper": "upper body", "lower": "legs"}.get(c.region, "clothes")
        return f"I can't see their {part} clearly"
    return {"posture": "I can't see their hips and legs clearly", "gesture": "I can't see their arms clearly",
            "facing": "I can't see their shoulders and face clearly", "object": "I don't see that object in the image",
            "relation": "I can't tell who the other person is"}.get(
        c.kind, "I can't read their faces clearly" if c.kind == "unchecked" and c.value == "gender" else "I can't see it clearly")


def _phrase(c: Constraint) -> str:
    """A constraint as words after "is" ("wearing a light blue shirt", "sitting", "holding a cup")."""
    words = c.words
    if c.kind == "skin" and words.endswith(("less", "chested", "sleeved", "legged")):
        pass  # "shirtless", "bare-chested": an adjective, not a garment
    elif c.kind == "gesture" and words.split()[0] in ("both", "hands", "arms", "hand", "arm", "his", "her", "their", "a"):
        words = f"with {words}"  # "with both arms above their head"
    elif c.kind in WORN and not words.startswith(("wearing", "in ", "dressed")):
        garment = c.kind != "colour" or words != c.value  # "red" alone: "wearing red"
        words = f"wearing {_article(words) if garment and c.kind != 'skin' else ''}{words}"
    elif c.kind == "object" and not words.startswith(tuple(c.value.split())):
        verb = {"holding": "holding", "inside": "in"}.get(c.value, "near")
        words = f"{verb} {_article(words)}{words}"
    return f"not {words}" if c.negated else words


def _thing(c: Constraint) -> str:
    """The COCO classes an object constraint names, with an article ("a motorcycle or bicycle")."""
    return _article(c.coco[0]) + " or ".join(c.coco)


def _article(words: str) -> str:
    """"a " / "an " before a singular noun phrase, "" before a plural or one that has its own."""
    first = words.split()[0] if words.split() else ""
    if not first or first in ("a", "an", "the", "his", "her", "their", "some") or (
            words.endswith("s") and not words.endswith("ss")):
        return ""
    return "an " if first[0] in "aeiou" else "a "


def _regions(region: str) -> tuple[str, ...]:
    return ("upper", "lower") if region in ("any", "full", "") else (region,)


def _words(ws) -> str:
    ws = [w.strip() for w in ws if w and w.strip()]
    return ", ".join(dict.fromkeys(ws))


def _cannot(unchecked: list[str]) -> str:
    if not unchecked:
        return ""
    return f"I can't check \"{_words(unchecked)}\" from what I see."
