"""The typed request a question is parsed into (plain data, no ROS, no model).

    Request(intent="person", ref=Reference(constraints=(Constraint("colour", "burgundy", "burgundy dress",
            region="full"), ...), head="woman"))

Intents:
- "person": choose the person the reference describes (the pose of that person);
- "count": how many people fit the reference (and the predicate);
- "yes_no": is the predicate true of the person the reference describes;
- "describe": say what is seen of the person the reference describes;
- "imagine": a pose made from the words (ChatPose's speculative / text-to-pose), nobody in view;
- "chat": anything else (greetings, questions about the system);
- "not_person": the question asks for something that is not a person ("the dog"): nobody.

Constraint kinds and their values:
- "colour": a colour name of the vocabulary (`region` the garment region: upper / lower / full / any);
- "pattern": "striped", "patterned" or "plain" (`region` as for colour);
- "garment": a garment noun whose type is not measured (a shirt, a dress): reported, not scored;
- "skin": what a garment word leaves bare or covers, which is measured (`value` "bare_arms" for a
  tee, "covered_arms" for a jacket, "bare_legs" for shorts, "covered_legs" for jeans, "bare_torso"
  for "shirtless"; `words` the user's garment words);
- "position": "left", "right", "middle", "top", "bottom", "edge" (cut off by the image's left or right side),
  "edge_left" / "edge_right" (cut off by that side);
- "ordinal": `k`-th (1-based; -1 = last) from `value` "left" or "right";
- "distance": "near" or "far" (to the camera);
- "posture": "standing", "sitting", "lying", "crouching";
- "gesture": "waving" (over time; from a raised arm where tracking did not watch), "arm_raised",
  "both_arms_raised", "pointing", "arm_out" (reaching out: pointing's measure), "hand_at_head", "hand_at_chest",
  "arms_crossed", "hands_on_hips", "hands_in_lap";
- "facing": "camera", "away", "side";
- "object": a COCO class in `coco` the person holds ("holding"), is next to ("near") or is in (a vehicle:
  "inside"; scored as "near", but a vehicle found nowhere is not taken as absent: the picture may be
  taken from inside it) (`value`);
- "relation": "next_to", "left_of", "right_of", "behind", "in_front_of" another person (`ref`), "between"
  two others (`ref` and `ref2`: "the kid between the blue one and the green one"), or "not" that person
  ("not the man in the dark t-shirt": the whole description negated);
- "unchecked": something perception cannot see (`value` says what: "gender", "age", "hair", a
  garment worn on the head / face / feet, an object with no COCO class, an adjective);
- "motion": a movement (walking, running, waving...) read from one frame (reported, not scored).
"""
from __future__ import annotations

from dataclasses import dataclass, field

INTENTS: tuple[str, ...] = ("person", "count", "yes_no", "describe", "imagine", "chat", "not_person")
CONSTRAINT_KINDS: tuple[str, ...] = ("colour", "pattern", "garment", "skin", "position", "ordinal", "distance",
                                     "posture", "gesture", "facing", "object", "relation", "unchecked", "motion")


@dataclass(frozen=True)
class Constraint:
    """One thing the question says about a person.

    Attributes:
        kind: one of CONSTRAINT_KINDS.
        value: what is asked (see the module docstring per kind).
        words: the user's own words for it (quoted in answers).
        region: body region for colours and patterns ("upper", "lower", "full", "any").
        k: ordinal position (1-based; -1 = last).
        coco: object classes for "object".
        negated: True when the question says "not" / "without".
        ref: the other person of a "relation".
        ref2: the second other person of a "between" relation (None otherwise).
    """

    kind: str
    value: str
    words: str
    region: str = ""
    k: int = 0
    coco: tuple[str, ...] = ()
    negated: bool = False
    ref: "Reference | None" = None
    ref2: "Reference | None" = None

    def __post_init__(self) -> None:
        if self.kind not in CONSTRAINT_KINDS:
            raise ValueError(f"unknown constraint kind {self.kind!r}")


@dataclass(frozen=True)
class Reference:
    """A description of one person (or of the people counted).

    Attributes:
        constraints: what the description says.
        head: the head noun ("woman", "person", "one"; "" when none).
        pronoun: the description is "he" / "she" / "that person": the person of the conversation.
        other: "the other one": anyone but the person of the conversation.
        not_person: the head noun names something that is not a person ("dog"): its words.
    """

    constraints: tuple[Constraint, ...] = ()
    head: str = ""
    pronoun: bool = False
    other: bool = False
    not_person: str = ""


@dataclass(frozen=True)
class Request:
    """A parsed question.

    Attributes:
        intent: one of INTENTS.
        ref: the person (or people) the question is about; None for imagine / chat.
        predicate: for "yes_no" and "count", what is asked of them ("sitting").
        text: the question as asked (cleaned); active: the part that counts after a correction.
        corrected: True when the speaker corrected themself ("no wait, ...").
    """

    intent: str
    ref: Reference | None = None
    predicate: tuple[Constraint, ...] = ()
    text: str = ""
    active: str = ""
    corrected: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise ValueError(f"unknown intent {self.intent!r}")

    def describe(self) -> str:
        """A one-line rendering for logs and tests: intent, constraints."""
        def c_str(c: Constraint) -> str:
            s = f"{'not ' if c.negated else ''}{c.kind}={c.value}"
            if c.region:
                s += f"@{c.region}"
            if c.k:
                s += f"#{c.k}"
            if c.ref is not None:
                s += "(" + ref_str(c.ref) + (" | " + ref_str(c.ref2) if c.ref2 is not None else "") + ")"
            return s

        def ref_str(r: Reference) -> str:
            flags = ("pronoun " if r.pronoun else "") + ("other " if r.other else "")
            flags += f"not_person={r.not_person} " if r.not_person else ""
            return flags + (r.head or "-") + ": " + ", ".join(c_str(c) for c in r.constraints)

        out = self.intent
        if self.ref is not None:
            out += " [" + ref_str(self.ref) + "]"
        if self.predicate:
            out += " ? " + ", ".join(c_str(c) for c in self.predicate)
        return out
