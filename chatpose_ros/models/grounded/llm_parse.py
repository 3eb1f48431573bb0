"""Question -> typed `Request` with an LLM tagger: SmolLM2 + LoRA tags every word, a grammar assembles.

    parser = LlmQuestionParser.load()      # the shipped adapter + the first layers of SmolLM2-135M
    parser.parse("Is the lady on the left-hand side sitting down?").describe()
    # 'yes_no [lady: unchecked=gender, position=left] ? posture=sitting'

Why a tagger and not generation: a JSON parse generated token by token (~30 tokens) costs ~30 forward
passes; the whole answer to the pose must stay under 200 ms on 2 cores. Here one forward pass of the
question through the first `num_layers` decoder layers (LoRA merged) gives a state per word (its last
sub-token), a small bidirectional GRU adds the words to the right (the decoder is causal), and

- a linear head scores BIO tags over slot types (TAG_TYPES: COLOUR, GARMENT, HEAD, POSITION, ..., with
  R- variants for the person of a relation and P- variants for what a yes/no or count asks);
- an intent head (the last token's state and the mean word state) picks one of request.INTENTS.

"Decoded under a grammar": Viterbi over the word tags allows only valid BIO transitions, so every output
is a sequence of spans, and `assemble` turns any such sequence into a valid Request. The spans are copies
of the user's words; `Normaliser` turns each into its typed value with the deterministic parser's tables
(grounding.parse), the colour table (grounding.colours) and WordNet (grounding.words). No ROS.

Weights: `llm_parser.safetensors` (LoRA + heads, float16) and `llm_parser.json` (sizes, training record)
in models/grounded/weights/, written by models.grounded.offline.train_parser.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatpose_ros.grounding.colours import ColourNames
from chatpose_ros.grounding.parse import (DISTANCE_WORDS, FACING, GENDERED, GENERIC_PEOPLE, GESTURES, ORDINALS,
                                          PATTERNS, POSITION_WORDS, POSTURES, PRONOUNS, RELATIONS, SKIN_WORDS, TOKEN,
                                          clean)
from chatpose_ros.grounding.request import INTENTS, Constraint, Reference, Request
from chatpose_ros.grounding.words import Lexicon

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_STEM = "llm_parser"  # llm_parser.safetensors (LoRA + heads) and llm_parser.json (spec, training record)
MAX_WORDS = 48  # longer questions are cut (the words after are not read)

# constraint slot types (each also with an R- prefix: the person of a relation; a P- prefix: what is asked)
SLOT_TYPES: tuple[str, ...] = ("COLOUR", "PATTERN", "GARMENT", "POSITION", "ORDINAL", "DISTANCE", "POSTURE",
                               "GESTURE", "FACING", "HELD", "NEAR", "UNCHECKED", "MOTION")
PERSON_TYPES: tuple[str, ...] = ("HEAD", "PRONOUN")  # the head noun; "he", "that person" (main and R- only)
PLAIN_TYPES: tuple[str, ...] = ("RELATION", "NEG", "OTHER", "CORRECTION")
TAG_TYPES: tuple[str, ...] = (SLOT_TYPES + PERSON_TYPES + tuple("R-" + t for t in SLOT_TYPES + PERSON_TYPES)
                              + tuple("P-" + t for t in SLOT_TYPES) + PLAIN_TYPES)
TAGS: tuple[str, ...] = ("O",) + tuple(f"{b}-{t}" for t in TAG_TYPES for b in "BI")
TAG_INDEX = {t: i for i, t in enumerate(TAGS)}


# --------------------------------------------------------------------------- decoding under the grammar

def transition_mask() -> np.ndarray:
    """(T, T) bool: tag j may follow tag i (I-X only after B-X or I-X); row/col order TAGS."""
    n = len(TAGS)
    ok = np.ones((n, n), bool)
    for j, tj in enumerate(TAGS):
        if tj.startswith("I-"):
            for i, ti in enumerate(TAGS):
                ok[i, j] = ti[2:] == tj[2:] and ti != "O"
    return ok


def start_mask() -> np.ndarray:
    """(T,) bool: tags a sentence may start with (not I-)."""
    return np.array([not t.startswith("I-") for t in TAGS])


_TRANS = transition_mask()
_START = start_mask()


def viterbi(scores: np.ndarray) -> list[int]:
    """(W, T) tag log-scores per word -> the best tag sequence (W indices into TAGS) that is a valid
    BIO sequence (I-X only after B-X / I-X, never first). Empty input -> []."""
    scores = np.asarray(scores, np.float64)
    if scores.shape[0] == 0:
        return []
    neg = -1e18
    trans = np.where(_TRANS, 0.0, neg)
    best = np.where(_START, scores[0], neg)
    back = np.zeros(scores.shape, np.int64)
    for w in range(1, scores.shape[0]):
        cand = best[:, None] + trans  # (from, to)
        back[w] = cand.argmax(0)
        best = cand.max(0) + scores[w]
    out = [int(best.argmax())]
    for w in range(scores.shape[0] - 1, 0, -1):
        out.append(int(back[w, out[-1]]))
    return out[::-1]


def valid_tags(tags: list[str]) -> bool:
    """True when `tags` is a valid BIO sequence over TAGS."""
    prev = "O"
    for t in tags:
        if t not in TAG_INDEX or (t.startswith("I-") and (prev == "O" or prev[2:] != t[2:])):
            return False
        prev = t
    return True


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """BIO tags -> [(type, start, end)] (end exclusive); a stray I-X opens a span (robustness)."""
    out: list[tuple[str, int, int]] = []
    for i, t in enumerate(tags):
        if t == "O":
            continue
        kind = t[2:]
        if t.startswith("I-") and out and out[-1][0] == kind and out[-1][2] == i:
            out[-1] = (kind, out[-1][1], i + 1)
        else:
            out.append((kind, i, i + 1))
    return out


# --------------------------------------------------------------------------- normalisers: span -> value

_SIDE = (("left", "left"), ("right", "right"))
_POSITION_KEYS = (("middle", "middle"), ("cent", "middle"), ("between", "middle"), ("midst", "middle"),
                  ("left", "left"), ("right", "right"), ("top", "top"), ("high", "top"), ("upper", "top"),
                  ("above", "top"), ("up", "top"), ("bottom", "bottom"), ("low", "bottom"), ("below", "bottom"),
                  ("down", "bottom"))
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eighth": 8, "8th": 8,
                 "ninth": 9, "9th": 9, "tenth": 10, "10th": 10, "final": -1}
_NEAR_KEYS = ("clos", "near", "front", "fore", "nigh")
_FAR_KEYS = ("far", "furth", "back", "distan", "away", "rear")
_POSTURE_STEMS = (("sit", "sitting"), ("seat", "sitting"), ("sat", "sitting"), ("stand", "standing"),
                  ("stood", "standing"), ("upright", "standing"), ("feet", "standing"), ("ly", "lying"),
                  ("lie", "lying"), ("lay", "lying"), ("reclin", "lying"), ("flat", "lying"), ("crouch", "crouching"),
                  ("squat", "crouching"), ("kneel", "crouching"), ("knelt", "crouching"), ("knee", "crouching"),
                  ("bend", "crouching"), ("bent", "crouching"), ("hunch", "crouching"), ("duck", "crouching"))
_GESTURE_KEYS = (("both", "both_arms_raised"), ("cross", "arms_crossed"), ("fold", "arms_crossed"),
                 ("hip", "hands_on_hips"), ("akimbo", "hands_on_hips"), ("waist", "hands_on_hips"),
                 ("head", "hand_at_head"), ("point", "pointing"), ("finger", "pointing"), ("wav", "waving"),
                 ("rais", "arm_raised"), ("lift", "arm_raised"), ("up", "arm_raised"), ("air", "arm_raised"))
_FACING_KEYS = (("away", "away"), ("back", "away"), ("behind", "away"), ("profile", "side"), ("side", "side"),
                ("camera", "camera"), ("us", "camera"), ("me", "camera"), ("forward", "camera"), ("front", "camera"),
                ("toward", "camera"), ("lens", "camera"))
_RELATION_KEYS = (("left", "left_of"), ("right", "right_of"), ("behind", "behind"), ("back", "behind"),
                  ("front", "in_front_of"), ("ahead", "in_front_of"))


def _first_pattern(words: list[str], table: tuple[tuple[str, str], ...]) -> str:
    """The value of the first (regex, value) of `table` found in the words as a phrase, or ""."""
    phrase = " ".join(words)
    return next((value for pattern, value in table if re.search(pattern, phrase)), "")


def _keyword(words: list[str], table: tuple[tuple[str, str], ...]) -> str:
    """The value of the first table key found (in table order) at the start of a word of the span; ""."""
    for key, value in table:
        if any(w.startswith(key) or ("-" in w and any(p.startswith(key) for p in w.split("-"))) for w in words):
            return value
    return ""


class Normaliser:
    """Spans (lists of the user's words) -> typed values, with the deterministic parser's tables,
    the colour table and WordNet."""

    def __init__(self, colours: ColourNames | None = None, lexicon: Lexicon | None = None) -> None:
        self.colours = colours or ColourNames.shipped()
        self.lex = lexicon or Lexicon.shipped()

    def colour(self, words: list[str]) -> str:
        """A colour name of the table ("" when none): the whole span, "-ish" forms, then shorter tails."""
        ws = [w for w in words if w not in {"coloured", "colored", "colour", "color", "ish", "toned"}]
        for i in range(len(ws)):
            phrase = " ".join(ws[i:])
            for cand in (phrase, phrase.removesuffix("ish"), phrase.removesuffix("dish"),
                         phrase.removesuffix("-coloured").removesuffix("-colored")):
                if cand and cand in self.colours:
                    return self.colours.normalise(cand)
        return ""

    def noun(self, words: list[str]):
        """WordNet's reading of the longest tail of the span it knows (NounInfo or None)."""
        for i in range(len(words)):
            tail = " ".join(words[i:])
            if tail.replace(" ", "").replace("-", "").isalpha():
                info = self.lex.noun(tail)
                if info is not None:
                    return info
        return None

    @staticmethod
    def position(words: list[str]) -> str:
        return _keyword(words, _POSITION_KEYS) or POSITION_WORDS.get(words[-1], "")

    @staticmethod
    def ordinal(words: list[str]) -> tuple[int, str, bool]:
        """(k or 0 when no number word, side or "", "from" seen) of an ordinal span."""
        k = 0
        for w in words:
            k = ORDINALS.get(w) or _NUMBER_WORDS.get(w) or k
            if k:
                break
        side = _keyword(words, _SIDE)
        return k, side, "from" in words or "counting" in words

    @staticmethod
    def distance(words: list[str]) -> str:
        for w in words:
            if w in DISTANCE_WORDS:
                return DISTANCE_WORDS[w]
        if _keyword(words, tuple((k, "near") for k in _NEAR_KEYS)):
            return "near"
        return "far" if _keyword(words, tuple((k, "far") for k in _FAR_KEYS)) else ""

    @staticmethod
    def posture(words: list[str]) -> str:
        phrase = " ".join(words)
        if phrase in POSTURES:
            return POSTURES[phrase]
        for w in words:
            if w in POSTURES:
                return POSTURES[w]
        return _keyword(words, _POSTURE_STEMS)

    @staticmethod
    def gesture(words: list[str]) -> str:
        return _first_pattern(words, GESTURES) or _keyword(words, _GESTURE_KEYS)

    @staticmethod
    def facing(words: list[str]) -> str:
        return _first_pattern(words, FACING) or _keyword(words, _FACING_KEYS)

    @staticmethod
    def relation(words: list[str]) -> str:
        # sided first: "to the left of" before "near"
        return _first_pattern(words, RELATIONS[1:] + RELATIONS[:1]) or _keyword(words, _RELATION_KEYS) or "next_to"

    @staticmethod
    def pattern(words: list[str]) -> str:
        for w in words:
            if w in PATTERNS:
                return PATTERNS[w]
        return _keyword(words, (("strip", "striped"), ("plain", "plain"), ("solid", "plain")))

    def unchecked(self, words: list[str]) -> str:
        """What an unchecked span names: "gender" / "age" / "hair" (parse.GENDERED), a garment region
        perception does not measure, "body", "object", "adjective" or "word"."""
        for w in reversed(words):
            if w in GENDERED:
                return GENDERED[w]
        info = self.noun(words)
        if info is not None:
            if info.kind == "garment":
                return info.region if info.region not in {"upper", "lower", "full", "any"} else "word"
            if info.kind == "body":
                return "body"
            if info.kind == "object":
                return "object"
        return "adjective" if any(self.lex.is_adjective(w) for w in words) else "word"


# --------------------------------------------------------------------------- assembly: spans -> Request

UNMEASURED_REGIONS = frozenset({"head", "face", "feet", "hands", "neck"})
COLOUR_GLUE = frozenset({"and", "or", "a", "an", "the", ","})  # a colour still waits


@dataclass
class _RefBuilder:
    """Collects one description's constraints in word order (colours wait for the garment after them)."""

    norm: Normaliser
    related: bool = False  # the person of a relation: a bare pronoun is its head
    constraints: list[Constraint] = field(default_factory=list)
    head: str = ""
    pronoun: bool = False
    other: bool = False
    not_person: str = ""
    pending: list[tuple[str, str, bool]] = field(default_factory=list)  # colours waiting for a garment
    pattern: tuple[str, str, bool] | None = None
    ordinal: list = field(default_factory=list)  # [k, side, from, words, negated] while spans merge
    last_garment: tuple[str, str] | None = None  # (region, words) of the last measured garment, uncoloured

    def add(self, kind: str, words: list[str], neg: bool, gap: list[str] = ()) -> None:
        """One span of `kind` (no prefix); `gap`: the untagged words between it and the span before."""
        text = " ".join(words)
        n = self.norm
        if any(w not in COLOUR_GLUE for w in gap) or kind not in ("COLOUR", "PATTERN", "GARMENT"):
            self._flush_pending()  # "not in red, in blue jeans": the red waits for no garment
        if kind not in ("ORDINAL", "HEAD", "PRONOUN", "UNCHECKED"):  # "the second (tall) man from the left"
            self._close_ordinal()
        if kind == "COLOUR":
            name = n.colour(words)
            if name:
                self.pending.append((name, text, neg))
            else:
                self.constraints.append(Constraint("unchecked", "word", text, negated=neg))
        elif kind == "PATTERN":
            value = n.pattern(words)
            if value:
                self.pattern = (value, text, neg)
        elif kind == "GARMENT":
            self._garment(words, text, neg)
        elif kind in ("HEAD", "PRONOUN"):
            self._person(kind, words, text)
        elif kind == "ORDINAL":
            k, side, from_ = n.ordinal(words)
            if self.ordinal and not (k and self.ordinal[0]):  # "second" ... "from the left": one ordinal
                o = self.ordinal
                o[0], o[1], o[2], o[3] = o[0] or k, o[1] or side, o[2] or from_, o[3] + " " + text
            else:
                self._close_ordinal()
                self.ordinal = [k, side, from_, text, neg]
        elif kind in ("HELD", "NEAR", "UNCHECKED", "MOTION"):
            self.constraints.append(self._word_constraint(kind, words, text, neg))
        else:
            value = {"POSITION": n.position, "DISTANCE": n.distance, "POSTURE": n.posture, "GESTURE": n.gesture,
                     "FACING": n.facing}[kind](words)
            if value:
                self.constraints.append(Constraint(kind.lower(), value, text, negated=neg))
            else:
                self.constraints.append(Constraint("unchecked", "word", text, negated=neg))

    def _word_constraint(self, kind: str, words: list[str], text: str, neg: bool) -> Constraint:
        """An object held / near (its COCO classes), an unchecked word, or a motion verb."""
        if kind == "UNCHECKED":
            skin = next((SKIN_WORDS[w] for w in words if w in SKIN_WORDS), "")  # "shirtless": measured as skin
            if skin:
                return Constraint("skin", skin, text, negated=neg)
            return Constraint("unchecked", self.norm.unchecked(words), text, negated=neg)
        if kind == "MOTION":
            return Constraint("motion", next((w for w in words if w.endswith("ing")), words[0]), text, negated=neg)
        info = self.norm.noun(words)
        if info is not None and info.coco:
            return Constraint("object", "holding" if kind == "HELD" else "near", text, coco=info.coco, negated=neg)
        return Constraint("unchecked", "object", text, negated=neg)

    def _garment(self, words: list[str], text: str, neg: bool) -> None:
        info = self.norm.noun(words)
        region = info.region if info is not None and info.kind == "garment" else "any"
        lemma = info.lemma.replace("_", " ") if info is not None and info.kind == "garment" else words[-1]
        if region in UNMEASURED_REGIONS:  # a red hat: the colour is on a region not measured
            for _name, cw, cneg in self.pending:
                self.constraints.append(Constraint("unchecked", region, cw + " " + text, negated=cneg))
            self.pending.clear()
            self.constraints.append(Constraint("unchecked", region, text, negated=neg))
            return
        coloured = bool(self.pending) or self.pattern is not None
        self._flush(region, text)
        if info is not None and info.kind == "garment" and info.skin:  # what it leaves bare or covers is measured
            self.constraints.append(Constraint("skin", info.skin, text, region=region, negated=neg))
        else:
            self.constraints.append(Constraint("garment", lemma, text, region=region, negated=neg))
        self.last_garment = None if coloured else (region, text)

    def _person(self, kind: str, words: list[str], text: str) -> None:
        last = words[-1]
        if kind == "PRONOUN":
            self.pronoun = True
            if last in PRONOUNS:
                if self.related and not self.head:
                    self.head = last
                return
        info = None if last in GENERIC_PEOPLE or last in GENDERED else self.norm.noun(words)
        if info is not None and info.kind in ("animal", "object") and not self.head:
            self.not_person = self.not_person or text
            return
        noun = last if kind == "PRONOUN" else text
        self.head = self.head or noun
        if last in GENDERED:
            self.constraints.append(Constraint("unchecked", GENDERED[last], last))

    def _flush(self, region: str, garment_words: str) -> None:
        for name, words, neg in self.pending:
            self.constraints.append(Constraint("colour", name, (words + " " + garment_words).strip(), region=region,
                                               negated=neg))
        self.pending.clear()
        if self.pattern is not None:
            value, words, neg = self.pattern
            self.constraints.append(Constraint("pattern", value, (words + " " + garment_words).strip(), region=region,
                                               negated=neg))
            self.pattern = None

    def _flush_pending(self) -> None:
        """Colours no garment followed: the uncoloured garment before them ("whose jacket is red"), or any."""
        if self.pending or self.pattern is not None:
            region, words = self.last_garment if self.last_garment is not None else ("any", "")
            self._flush(region, words)
            self.last_garment = None

    def _close_ordinal(self) -> None:
        if not self.ordinal:
            return
        k, side, from_, text, neg = self.ordinal
        self.ordinal = []
        k = k or 1
        if k < 0:  # "last from the left" = 1st from the right; "the last on the right" = the rightmost
            k = -k
            side = ("right" if side == "left" else "left") if (from_ and side) else (side or "right")
        self.constraints.append(Constraint("ordinal", side or "left", text, k=k, negated=neg))

    def finish(self) -> Reference:
        self._close_ordinal()
        self._flush_pending()
        return Reference(tuple(self.constraints), self.head, self.pronoun, self.other, self.not_person)


def assemble(words: list[str], tags: list[str], intent: str, norm: Normaliser, text: str = "") -> Request:
    """Word tags (a BIO sequence over TAGS; invalid ones are read leniently) and an intent -> a valid Request.

    Only the spans after the last CORRECTION count; NEG negates the next constraint; a RELATION opens
    the description of another person that the R- spans after it fill; P- spans are the predicate."""
    if intent not in INTENTS:
        raise ValueError(f"unknown intent {intent!r}")
    sp = spans(tags)
    corrected = any(k == "CORRECTION" for k, _, _ in sp)
    if corrected:
        last = max(i for i, (k, _, _) in enumerate(sp) if k == "CORRECTION")
        start = sp[last][2]
        sp = sp[last + 1:]
    else:
        start = 0
    active = " ".join(words[start:])
    if intent in ("imagine", "chat"):
        return Request(intent, text=text, active=active, corrected=corrected)
    main = _RefBuilder(norm)
    pred = _RefBuilder(norm)
    relations: list[tuple[str, str, _RefBuilder]] = []  # (value, words, builder)
    neg = False
    prev_end = start
    for kind, a, b in sp:
        ws = words[a:b]
        gap, prev_end = words[prev_end:a], b
        if kind == "NEG":
            neg = True
            continue
        if kind == "OTHER":
            main.other = True
            continue
        if kind == "RELATION":
            relations.append((norm.relation(ws), " ".join(ws), _RefBuilder(norm, related=True)))
            continue
        if kind.startswith("P-"):
            target, kind = pred, kind[2:]
        elif kind.startswith("R-"):
            target, kind = (relations[-1][2] if relations else main), kind[2:]
        else:
            target = main
        if kind in ("HEAD", "PRONOUN") and target is pred:
            continue
        target.add(kind, ws, neg, gap)
        neg = neg and kind in ("HEAD", "PRONOUN")  # "not the man in red": the negation waits for a constraint
    for value, rwords, builder in relations:
        ref = builder.finish()
        if ref.constraints or ref.head or ref.pronoun or ref.not_person:
            main.constraints.append(Constraint("relation", value, rwords, ref=ref))
    ref = main.finish()
    predicate = pred.finish().constraints
    return Request(intent, ref, predicate if intent in ("yes_no", "count") else (), text, active, corrected)


def words_of(question: str) -> list[str]:
    """The words the tagger reads: the deterministic parser's cleaning and tokens, at most MAX_WORDS."""
    return TOKEN.findall(clean(question))[:MAX_WORDS]


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class TaggerSpec:
    """Sizes of the tagger (stored in llm_parser.json)."""

    num_layers: int = 8      # decoder layers of SmolLM2-135M kept (the first N of 30)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj", "o_proj")
    gru: int = 128           # hidden size per direction of the word GRU (0: none, a linear head on the states)
    contextual: bool = True  # False: the bag-of-words ablation (input embeddings of the words, no LLM, no GRU)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @staticmethod
    def from_json(d: dict) -> "TaggerSpec":
        d = dict(d)
        d["lora_targets"] = tuple(d.get("lora_targets", ()))
        return TaggerSpec(**d)


def build_heads(spec: TaggerSpec, hidden: int):
    """(word encoder or None, tag head, intent head) for a tagger of `spec` (torch modules)."""
    from torch import nn

    gru = nn.GRU(hidden, spec.gru, batch_first=True, bidirectional=True) if spec.gru and spec.contextual else None
    width = 2 * spec.gru if gru is not None else hidden
    return gru, nn.Linear(width, len(TAGS)), nn.Linear(width + hidden, len(INTENTS))


class WordTagger:
    """SmolLM2 (first `num_layers` layers, LoRA) + word GRU + tag and intent heads, over word lists.

    `encode` gives the (B, W, H) word states: each word's last sub-token's state (contextual) or the mean
    of its sub-tokens' input embeddings (the bag-of-words ablation), and (B, H) sentence states (last
    token; the mean embedding for the ablation)."""

    PREFIX = "Question:"

    def __init__(self, lm, tokenizer, spec: TaggerSpec) -> None:
        import torch

        self.lm = lm
        self.tok = tokenizer
        self.spec = spec
        hidden = lm.config.hidden_size
        self.gru, self.tag_head, self.intent_head = build_heads(spec, hidden)
        self.prefix_ids = tokenizer(self.PREFIX, add_special_tokens=False)["input_ids"]
        self._torch = torch

    def modules(self) -> dict:
        out = {"tag_head": self.tag_head, "intent_head": self.intent_head}
        if self.gru is not None:
            out["gru"] = self.gru
        return out

    def batch_ids(self, batch: list[list[str]]):
        """Word lists -> (ids (B, L), attention mask (B, L), word end positions (B, W) padded with 0,
        word sub-token spans [(start, end)] per row)."""
        torch = self._torch
        rows, ends, pieces = [], [], []
        for words in batch:
            ids = list(self.prefix_ids)
            e, p = [], []
            for w in words:
                sub = self.tok(" " + w, add_special_tokens=False)["input_ids"] or [self.tok.eos_token_id]
                p.append((len(ids), len(ids) + len(sub)))
                ids += sub
                e.append(len(ids) - 1)
            rows.append(ids)
            ends.append(e)
            pieces.append(p)
        length = max(len(r) for r in rows)
        width = max(1, max(len(e) for e in ends))
        pad = self.tok.eos_token_id if self.tok.pad_token_id is None else self.tok.pad_token_id
        ids = torch.full((len(rows), length), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        pos = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, e) in enumerate(zip(rows, ends)):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
            if e:
                pos[i, :len(e)] = torch.tensor(e)
        return ids, mask, pos, pieces

    def forward(self, batch: list[list[str]]):
        """Word lists -> ((B, W, len(TAGS)) tag logits, (B, len(INTENTS)) intent logits, (B, W) word mask)."""
        torch = self._torch
        ids, mask, pos, pieces = self.batch_ids(batch)
        nwords = torch.tensor([len(w) for w in batch])
        wmask = torch.arange(pos.shape[1])[None] < nwords[:, None]
        emb_layer = self.lm.get_input_embeddings()
        if self.spec.contextual:
            inner = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
            h = inner.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            words = h.gather(1, pos[..., None].expand(-1, -1, h.shape[-1]))
            last = h[torch.arange(len(batch)), mask.sum(1) - 1]
        else:
            emb = emb_layer(ids)
            words = torch.zeros((len(batch), pos.shape[1], emb.shape[-1]), dtype=emb.dtype)
            for i, p in enumerate(pieces):
                for j, (a, b) in enumerate(p):
                    words[i, j] = emb[i, a:b].mean(0)
            last = (words * wmask[..., None]).sum(1) / nwords.clamp_min(1)[:, None]
        feats = words
        if self.gru is not None:
            packed = torch.nn.utils.rnn.pack_padded_sequence(words, nwords.clamp_min(1), batch_first=True,
                                                             enforce_sorted=False)
            out, _ = self.gru(packed)
            feats, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=words.shape[1])
        pooled = (feats * wmask[..., None]).sum(1) / nwords.clamp_min(1)[:, None]
        return self.tag_head(feats), self.intent_head(torch.cat((pooled, last), -1)), wmask


class LlmQuestionParser:
    """Question -> Request with the trained tagger (same interface as grounding.parse.QuestionParser).

    Build with :meth:`load`; thread-safe for concurrent `parse` calls (inference only, no state)."""

    def __init__(self, tagger: WordTagger, normaliser: Normaliser) -> None:
        self.tagger = tagger
        self.norm = normaliser
        self.colours = normaliser.colours
        self.lex = normaliser.lex

    @classmethod
    def load(cls, folder: Path | None = None, colours: ColourNames | None = None, lexicon: Lexicon | None = None,
             stem: str = WEIGHTS_STEM) -> "LlmQuestionParser":
        """The shipped tagger from `folder` (default models/grounded/weights; files `stem`.safetensors and
        `stem`.json): base SmolLM2 from the GGUF cache, LoRA merged. ModelLoadError when the files are missing,
        CheckpointError when they do not fit."""
        from chatpose_ros.core.errors import CheckpointError, ModelLoadError
        from chatpose_ros.models.default.llm import load_base, merge_lora, read_adapter

        folder = Path(folder or WEIGHTS_DIR)
        spec_file = folder / f"{stem}.json"
        try:
            spec = TaggerSpec.from_json(json.loads(spec_file.read_text())["spec"])
        except FileNotFoundError as exc:
            raise ModelLoadError(f"LLM parser spec not found: {spec_file}") from exc
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read {spec_file}: {exc}") from exc
        weights = folder / f"{stem}.safetensors"
        state = read_adapter(weights, "LLM parser")
        lm, tok = load_base(num_layers=spec.num_layers)
        if spec.contextual:
            lm = merge_lora(lm, spec.lora_r, spec.lora_alpha, state, weights, targets=spec.lora_targets)
        tagger = WordTagger(lm, tok, spec)
        try:
            for name, module in tagger.modules().items():
                sub = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
                module.load_state_dict(sub, strict=True)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{weights} does not match the tagger (spec {spec}): {exc}") from exc
        for m in [lm, *tagger.modules().values()]:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
        return cls(tagger, Normaliser(colours, lexicon))

    def tag(self, words: list[str]) -> tuple[list[str], str]:
        """Words -> (their tags, decoded under the BIO grammar; the intent)."""
        return self.tag_batch([words])[0]

    def tag_batch(self, batch: list[list[str]]) -> list[tuple[list[str], str]]:
        """`tag` for several word lists in one forward pass (evaluation)."""
        import torch

        rows = [w for w in batch if w]
        out: list[tuple[list[str], str]] = []
        if rows:
            with torch.inference_mode():
                tag_logits, intent_logits, _ = self.tagger.forward(rows)
            scores = torch.log_softmax(tag_logits.float(), -1).numpy()
        j = 0
        for words in batch:
            if not words:
                out.append(([], "chat"))
                continue
            tags = [TAGS[i] for i in viterbi(scores[j, :len(words)])]
            out.append((tags, INTENTS[int(intent_logits[j].argmax())]))
            j += 1
        return out

    def parse(self, question: str) -> Request:
        """A valid Request for any string (empty, overlong, any script): an empty one is "chat"."""
        text = clean(question)
        words = words_of(question)
        tags, intent = self.tag(words)
        return assemble(words, tags, intent, self.norm, text)
