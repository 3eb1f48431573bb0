"""A Scene in words: what the default profile's LLM reads about the people in view.

Every person becomes one short line of words, led by its own token ``<pK>`` (K = 1..N, people
numbered from the image's left to its right), e.g.::

    <p2> 2nd from left, 1st from right, nearest, red top, blue trousers, standing,
         facing camera, right arm raised, holding sports ball

and the objects nobody holds or stands next to become one ``Objects:`` line. The LLM reads the
question against these words, so what it knows of synonyms ("crimson", "denim", "the guy with the
ball") can carry over, and it answers by emitting one ``<pK>`` token (the person meant),
``<none>`` (nobody fits) or text (counts, chat), then the words of its answer.

The same :class:`PersonWords` come from a real :class:`~chatpose_ros.core.scene.Scene`
(:func:`scene_words`, at run time) and from the symbolic training scenes
(``offline.scene_questions``), so training and use read one format.

Conventions: "left" / "right" in positions are the image's (the viewer's); "left arm" /
"right arm" are the person's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chatpose_ros.core.scene import Scene, ScenePerson

MAX_PEOPLE_TOKENS = 10          # <p1> .. <p10>: the most people one prompt can name
NONE_TOKEN = "<none>"
POSE_TOKEN = "[POSE]"
NO_ONE_ANSWER = "I don't see anyone in the image."  # a count of nobody (reader, offline.scene_questions)
# a count of everyone in view, by min(count, 2) (reader, offline.scene_questions.count_answer)
COUNT_ALL_ANSWER = (NO_ONE_ANSWER, "I see 1 person.", "I see {count} people.")
PERSON_TOKENS: tuple[str, ...] = tuple(f"<p{k}>" for k in range(1, MAX_PEOPLE_TOKENS + 1))
NO_PEOPLE_LINE = "People: none."

# Tags from geometry (thresholds in units named beside them).
NEAR_FAR_RATIO = 1.3            # tallest / shortest box height at least this: tag "nearest" / "farthest"
EDGE_MARGIN = 0.01              # box within this fraction of the width of the left / right edge: at the edge
ATTRIBUTE_MIN_CONFIDENCE = 0.15  # attributes under this confidence are left out of the words (perception_attributes
#   confidences are a colour or geometry share times the keypoints' mean score, typically 0.2-0.5 on real photos)
KEYPOINT_MIN_SCORE = 0.3        # keypoints under this score are not seen
ARM_RAISED_TORSO = 0.1          # wrist this far (torso lengths) above the shoulder: arm raised
HAND_AT_HEAD_TORSO = 0.45       # wrist within this distance (torso lengths) of the nose / ears: hand at head

COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "grey")
POSTURES: tuple[str, ...] = ("standing", "sitting", "lying", "crouching")
FACINGS: dict[str, str] = {"camera": "facing camera", "away": "back to camera", "left": "facing left",
                           "right": "facing right"}
ARMS: tuple[str, ...] = ("arms down", "left arm raised", "right arm raised", "both arms raised")


@dataclass(frozen=True)
class PersonWords:
    """One person as words. `order` is 1..`count` from the image's left; the rest may be None
    (not seen / not measured: left out of the line)."""

    order: int
    count: int
    near: str | None = None            # "nearest" / "farthest"
    edge: str | None = None            # "left" / "right": cut by that image edge
    upper: str | None = None           # colour of the top
    lower: str | None = None           # colour of the trousers / skirt
    posture: str | None = None         # POSTURES
    facing: str | None = None          # FACINGS key
    arms: str | None = None            # ARMS
    hand_at_head: bool = False
    holding: str | None = None         # object class
    next_to: str | None = None         # object class

    @property
    def from_right(self) -> int:
        return self.count - self.order + 1

    def line(self) -> str:
        """The person's line (without its <pK> token)."""
        parts = [f"{ordinal(self.order)} from left, {ordinal(self.from_right)} from right"]
        if self.near:
            parts.append(self.near)
        if self.edge:
            parts.append(f"cut at {self.edge} edge")
        if self.upper:
            parts.append(f"{self.upper} top")
        if self.lower:
            parts.append(f"{self.lower} trousers")
        for word in (self.posture, FACINGS.get(self.facing or ""), self.arms):
            if word:
                parts.append(word)
        if self.hand_at_head:
            parts.append("hand at head")
        if self.holding:
            parts.append(f"holding {self.holding}")
        if self.next_to:
            parts.append(f"next to {self.next_to}")
        return ", ".join(parts)

    def pose_words(self) -> str:
        """A short description of the pose ("standing, right arm raised"), or "" when unknown."""
        words = [w for w in (self.posture, self.arms) if w]
        if self.hand_at_head:
            words.append("a hand at the head")
        return ", ".join(words)


@dataclass(frozen=True)
class SceneWords:
    """People (left to right) and free objects as words. `index` maps each line to the Scene's
    person index (``people[k].order == k + 1``)."""

    people: tuple[PersonWords, ...]
    objects: tuple[str, ...] = ()
    index: tuple[int, ...] = field(default=())

    def text(self, tokens_last: bool = False) -> str:
        """The scene block of the prompt; `tokens_last` puts each person's <pK> at the end of its
        line (where its state has read the whole line) instead of the start."""
        if not self.people:
            lines = [NO_PEOPLE_LINE]
        elif tokens_last:
            lines = [f"People ({len(self.people)}):"] + [f"{p.line()} {PERSON_TOKENS[p.order - 1]}" for p in self.people]
        else:
            lines = [f"People ({len(self.people)}):"] + [f"{PERSON_TOKENS[p.order - 1]} {p.line()}" for p in self.people]
        if self.objects:
            lines.append("Objects: " + ", ".join(self.objects) + ".")
        return "\n".join(lines)


def ordinal(k: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 4 -> "4th", ..."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def arm_fact(arms: str) -> str:
    """ARMS value -> what a yes/no answer says of it ("raising the right arm")."""
    if arms == "both arms raised":
        return "raising both arms"
    return "keeping the arms down" if arms == "arms down" else f"raising the {arms.split()[0]} arm"


def person_answer_text(p: PersonWords, reason: str) -> str:
    """The answer about a chosen person (after its <pK>): who, by what (`reason`), and the pose,
    e.g. "The person in the red top, 2nd from the left: standing, arms down."."""
    where = f"{ordinal(p.order)} from the left"
    lead = f"The person {reason}" if where in reason else f"The person {reason}, {where}"
    return f"{lead}: {p.pose_words() or 'pose not clearly seen'}."


def person_reasons(p: PersonWords) -> tuple[str, ...]:
    """Every reason an answer may give for choosing `p` that its words make true: its place
    (side, middle, ordinal from either side, near / far, an edge), its colours, its posture,
    arms and facing, the object it holds or stands next to."""
    n = p.count
    out = [f"{ordinal(p.order)} from the left"]
    if n >= 2:
        out.append(f"{ordinal(p.from_right)} from the right")
        out += ["on the far left"] if p.order == 1 else ["on the far right"] if p.order == n else []
    if n % 2 and n >= 3 and p.order == (n + 1) // 2:
        out.append("in the middle")
    if p.near:
        out.append(f"{p.near} to the camera")
    if p.edge:
        out.append(f"cut by the {p.edge} edge")
    for colour, region in ((p.upper, "top"), (p.lower, "trousers")):
        if colour:
            out += [f"in the {colour} {region}", f"wearing {colour}"]
    out += [w for w in (p.posture, p.arms, FACINGS.get(p.facing or "")) if w]
    if p.holding:
        out.append(f"holding the {p.holding}")
    if p.next_to:
        out.append(f"next to the {p.next_to}")
    return tuple(dict.fromkeys(out))


def true_answers(p: PersonWords) -> tuple[str, ...]:
    """Every answer about the chosen person `p` whose words its line makes true: the person
    answers (person_answer_text, one per person_reasons) and the yes/no answers to a question
    about its pose ("No, the person 2nd from the left is standing."; whether yes or no fits is
    the question's business, the fact after it is the line's)."""
    where = f"the person {ordinal(p.order)} from the left"
    facts = [w for w in (p.posture, p.arms and arm_fact(p.arms), FACINGS.get(p.facing or "")) if w]
    return tuple(person_answer_text(p, r) for r in person_reasons(p)) + tuple(
        f"{word}, {where} is {fact}." for fact in facts for word in ("Yes", "No"))


def _attr(person: ScenePerson, name: str) -> str | None:
    a = person.attribute(name)
    return a.value if a is not None and a.confidence >= ATTRIBUTE_MIN_CONFIDENCE else None


def _point(person: ScenePerson, name: str) -> np.ndarray | None:
    from chatpose_ros.core.scene import KEYPOINT_LAYOUTS

    if name not in KEYPOINT_LAYOUTS[person.layout]:
        return None
    xy, score = person.keypoint(name)
    return np.asarray(xy, np.float64) if score >= KEYPOINT_MIN_SCORE else None


def arm_words(person: ScenePerson) -> tuple[str | None, bool]:
    """(ARMS word or None, hand at head) from the person's 2D keypoints (image y down)."""
    sh = {s: _point(person, f"{s}_shoulder") for s in ("left", "right")}
    wr = {s: _point(person, f"{s}_wrist") for s in ("left", "right")}
    hips = [_point(person, f"{s}_hip") for s in ("left", "right")]
    seen_sh = [p for p in sh.values() if p is not None]
    if not seen_sh:
        return None, False
    seen_hips = [p for p in hips if p is not None]
    if seen_hips:
        torso = float(np.linalg.norm(np.mean(seen_sh, 0) - np.mean(seen_hips, 0)))
    else:
        torso = 0.35 * (person.box[3] - person.box[1])
    torso = max(torso, 1.0)
    raised, known = {}, 0
    for s in ("left", "right"):
        if sh[s] is not None and wr[s] is not None:
            known += 1
            raised[s] = (sh[s][1] - wr[s][1]) > ARM_RAISED_TORSO * torso
    head = [p for p in (_point(person, "nose"), _point(person, "left_ear"), _point(person, "right_ear")) if p is not None]
    at_head = any(w is not None and min(float(np.linalg.norm(w - h)) for h in head) < HAND_AT_HEAD_TORSO * torso
                  for w in wr.values()) if head else False
    if not known:
        return None, at_head
    if raised.get("left") and raised.get("right"):
        return "both arms raised", at_head
    if raised.get("left"):
        return "left arm raised", at_head
    if raised.get("right"):
        return "right arm raised", at_head
    return ("arms down" if known == 2 else None), at_head


def scene_words(scene: Scene) -> SceneWords:
    """The words of a perceived Scene: people ordered left to right by box centre."""
    n = len(scene.people)
    width = float(scene.image_size[0])
    order = sorted(range(n), key=lambda i: (scene.people[i].box[0] + scene.people[i].box[2]) / 2)
    heights = np.array([p.box[3] - p.box[1] for p in scene.people], np.float64)
    tallest = shortest = -1
    if n >= 2 and heights.max() >= NEAR_FAR_RATIO * max(heights.min(), 1.0):
        tallest, shortest = int(np.argmax(heights)), int(np.argmin(heights))
    used: set[int] = set()
    people = []
    for k, i in enumerate(order):
        p = scene.people[i]
        edge = None
        if p.truncated and p.box[0] <= EDGE_MARGIN * width:
            edge = "left"
        elif p.truncated and p.box[2] >= (1 - EDGE_MARGIN) * width:
            edge = "right"
        holding = next_to = None
        for obj, rel in sorted(scene.objects_of(i), key=lambda x: -x[1].confidence):
            if rel.confidence < ATTRIBUTE_MIN_CONFIDENCE:
                continue
            if rel.relation == "holding" and holding is None:
                holding = obj.label
                used.add(rel.object_index)
            elif rel.relation == "next_to" and next_to is None:
                next_to = obj.label
                used.add(rel.object_index)
        arms, at_head = arm_words(p)
        people.append(PersonWords(
            order=k + 1, count=n, near="nearest" if i == tallest else "farthest" if i == shortest else None,
            edge=edge, upper=_attr(p, "upper_colour"), lower=_attr(p, "lower_colour"), posture=_attr(p, "posture"),
            facing=_attr(p, "facing"), arms=arms, hand_at_head=at_head, holding=holding, next_to=next_to))
    free = sorted({o.label for j, o in enumerate(scene.objects) if j not in used})
    return SceneWords(tuple(people), tuple(free), tuple(order))
