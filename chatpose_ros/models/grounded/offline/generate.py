"""Generated questions for the LLM question parser: (words, gold word tags, gold intent, gold Request).

    data = generate(seed=0, n_train=30000, n_held=3000)
    data.train[0].words, data.train[0].tags, data.train[0].intent, data.train[0].gold   # gold: canonical()

Vocabulary is large and open: the colour table's names (xkcd survey + CSS), WordNet's person nouns and
garment hyponyms (with the body region words.Lexicon gives them), COCO objects and their WordNet
synonyms / hyponyms, animals, and many phrasings per slot (positions, ordinals, distances, postures,
gestures, facing, relations, negation, corrections, follow-ups, counts, yes/no, describe, imagine, chat).

Held-out split, so that the held-out measure is on wordings and words never seen in training:
- vocabulary: one item in three (crc32 of the word) of colour names, garments, person nouns, objects,
  animals and adjectives is held out;
- phrasings: every third phrasing (in the written order) of every slot table is held out;
- template families: every third sentence frame of every intent is held out.
TRAIN questions use only training items; HELD-OUT questions draw every slot from the held-out items
(falling back to training items where a table has none held out, e.g. the seven ordinal numbers).

Gold Requests are built from the values the generator chose (not by the tagger's assembler), so a
held-out exact match tests the tags, the intent and the normalisers together.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import zlib
from dataclasses import dataclass, field, replace

from chatpose_ros.models.grounded.llm_parse import TAG_INDEX, Normaliser, words_of
from chatpose_ros.grounding.parse import GENDERED, GENERIC_PEOPLE
from chatpose_ros.grounding.request import Constraint, Reference, Request
from chatpose_ros.grounding.words import COCO_SYNSETS, EXTRA_GARMENTS

log = logging.getLogger(__name__)

SPLIT = 3  # one item (or phrasing, or frame) in SPLIT is held out


def held_word(item: str) -> bool:
    return zlib.crc32(item.encode()) % SPLIT == 0


def split_words(items) -> tuple[list[str], list[str]]:
    items = sorted(set(items))
    return [w for w in items if not held_word(w)], [w for w in items if held_word(w)]


def split_phrasings(items: list) -> tuple[list, list]:
    return [x for i, x in enumerate(items) if i % SPLIT != SPLIT - 1], \
        [x for i, x in enumerate(items) if i % SPLIT == SPLIT - 1]


def canonical(req: Request) -> str:
    """Request.describe() with constraints sorted (the order is not part of the meaning); imagine and chat
    are their intent alone."""
    if req.intent in ("imagine", "chat"):
        return req.intent

    def sort_ref(r: Reference | None) -> Reference | None:
        if r is None:
            return None
        cs = tuple(sorted((replace(c, ref=sort_ref(c.ref), words="") for c in r.constraints),
                          key=lambda c: (c.kind, c.value, c.region, c.k, c.negated, str(c.ref))))
        return replace(r, constraints=cs)

    pred = tuple(sorted((replace(c, words="") for c in req.predicate), key=lambda c: (c.kind, c.value, c.region)))
    return replace(req, ref=sort_ref(req.ref), predicate=pred).describe()


# --------------------------------------------------------------------------- phrasings (markup: [span])
# Each table: (phrase, value). Words in [brackets] are the slot's span; the rest is tagged O.

POSITION_POST = [(p.replace("LEFT", s), s) for s in ("left", "right") for p in (
    "on the [LEFT]", "at the [LEFT]", "on the [far LEFT]", "[furthest LEFT]", "on the [LEFT-hand side]",
    "[farthest to the LEFT]", "at the [LEFT edge]", "over on the [LEFT]", "to the [LEFT]", "on the [LEFT side]",
    "[furthest LEFT in the frame]", "at the [extreme LEFT]", "[most to the LEFT]", "[LEFTmost in the picture]",
    "on the [LEFT of the image]", "[way over on the LEFT]", "at the [LEFT end]", "[closest to the LEFT edge]")] + [
    ("in the [middle]", "middle"), ("in the [center]", "middle"), ("[between the others]", "middle"),
    ("in the [centre]", "middle"), ("at the [center of the picture]", "middle"), ("[in between]", "middle"),
    ("in the [middle of the group]", "middle"), ("[right in the middle]", "middle"), ("[smack in the centre]", "middle"),
    ("at the [top]", "top"), ("[higher up]", "top"), ("[highest up]", "top"), ("at the [top of the image]", "top"),
    ("[up top]", "top"), ("[uppermost in the frame]", "top"),
    ("at the [bottom]", "bottom"), ("[lower down]", "bottom"), ("at the [bottom of the picture]", "bottom"),
    ("[down at the bottom]", "bottom"), ("[lowest in the frame]", "bottom"), ("[further down]", "bottom")]
POSITION_PRE = [("[leftmost]", "left"), ("[rightmost]", "right"), ("[left]", "left"), ("[right]", "right"),
                ("[middle]", "middle"), ("[left-hand]", "left"), ("[right-hand]", "right"), ("[central]", "middle"),
                ("[far left]", "left"), ("[far right]", "right"), ("[centre]", "middle"), ("[left-most]", "left"),
                ("[top]", "top"), ("[bottom]", "bottom"), ("[right-most]", "right")]
ORD_WORDS = [("first", 1), ("second", 2), ("third", 3), ("1st", 1), ("2nd", 2), ("3rd", 3), ("fourth", 4),
             ("4th", 4), ("fifth", 5), ("5th", 5), ("sixth", 6), ("last", -1), ("penultimate", -2)]
SIDE_FORMS = ["from the SIDE", "from SIDE", "on the SIDE", "counting from the SIDE", "from the SIDE side",
              "in from the SIDE", "from the SIDE end", "starting from the SIDE", "from the SIDE edge"]
DISTANCE_POST = [("[closest to the camera]", "near"), ("[nearest to us]", "near"), ("in the [foreground]", "near"),
                 ("[closest to me]", "near"), ("[right up front]", "near"), ("[nearest the lens]", "near"),
                 ("[closest to the viewer]", "near"), ("in the [front]", "near"), ("[nearest to the camera]", "near"),
                 ("[furthest away]", "far"), ("in the [background]", "far"), ("at the [back]", "far"),
                 ("[farthest from the camera]", "far"), ("[way in the back]", "far"), ("[far away]", "far"),
                 ("[in the distance]", "far"), ("[furthest from us]", "far"), ("[further back]", "far")]
DISTANCE_PRE = [("[closest]", "near"), ("[nearest]", "near"), ("[farthest]", "far"), ("[furthest]", "far"),
                ("[front]", "near"), ("[distant]", "far"), ("[nearer]", "near"), ("[farther]", "far"),
                ("[foreground]", "near"), ("[background]", "far")]
POSTURES = [("[sitting]", "sitting"), ("[standing]", "standing"), ("[lying down]", "lying"),
            ("[crouching]", "crouching"), ("[sitting down]", "sitting"), ("[standing up]", "standing"),
            ("[seated]", "sitting"), ("[squatting]", "crouching"), ("[lying on the ground]", "lying"),
            ("[kneeling]", "crouching"), ("[on their feet]", "standing"), ("[laying down]", "lying"),
            ("[sat down]", "sitting"), ("[crouched down]", "crouching"), ("[stretched out flat]", "lying"),
            ("[upright]", "standing"), ("[bending over]", "crouching"), ("[reclining]", "lying"),
            ("[sitting on the floor]", "sitting"), ("[standing still]", "standing"), ("[on one knee]", "crouching"),
            ("[hunched down]", "crouching"), ("[lying flat]", "lying"), ("[taking a seat]", "sitting")]
GESTURES = [("[waving]", "waving"), ("with [a hand raised]", "arm_raised"), ("with [both arms up]", "both_arms_raised"),
            ("[pointing]", "pointing"), ("with [arms crossed]", "arms_crossed"), ("with [hands on hips]", "hands_on_hips"),
            ("with [one arm up]", "arm_raised"), ("[raising both hands]", "both_arms_raised"),
            ("with [a hand on the head]", "hand_at_head"), ("[pointing at something]", "pointing"),
            ("with [folded arms]", "arms_crossed"), ("with [hands on the hips]", "hands_on_hips"),
            ("[raising an arm]", "arm_raised"), ("with [arms in the air]", "both_arms_raised"),
            ("with [hands behind the head]", "hand_at_head"), ("[pointing a finger]", "pointing"),
            ("with [arms folded]", "arms_crossed"), ("with [hands at the waist]", "hands_on_hips"),
            ("[lifting a hand]", "arm_raised"), ("with [both hands up]", "both_arms_raised"),
            ("[touching the head]", "hand_at_head"), ("[pointing somewhere]", "pointing"),
            ("[crossing the arms]", "arms_crossed"), ("[arms akimbo]", "hands_on_hips"),
            ("with [a hand up]", "arm_raised"), ("[holding both arms up]", "both_arms_raised"),
            ("[scratching the head]", "hand_at_head")]
FACING = [("[facing the camera]", "camera"), ("with [the back to the camera]", "away"), ("[in profile]", "side"),
          ("[facing away]", "away"), ("[looking at the camera]", "camera"), ("[facing sideways]", "side"),
          ("[turned away]", "away"), ("[facing us]", "camera"), ("[side on]", "side"),
          ("with [the back to us]", "away"), ("[facing forward]", "camera"), ("[seen from the side]", "side"),
          ("[facing away from the camera]", "away"), ("[looking into the lens]", "camera"),
          ("[shown in profile]", "side"), ("[turned away from us]", "away"), ("[looking towards us]", "camera"),
          ("[side-on to the camera]", "side")]
RELATIONS = [("[next to]", "next_to"), ("[beside]", "next_to"), ("[to the left of]", "left_of"), ("[behind]", "behind"),
             ("[in front of]", "in_front_of"), ("[to the right of]", "right_of"), ("[close to]", "next_to"),
             ("[left of]", "left_of"), ("[right behind]", "behind"), ("[alongside]", "next_to"),
             ("[right of]", "right_of"), ("[directly behind]", "behind"), ("[by the side of]", "next_to"),
             ("[on the left of]", "left_of"), ("[just in front of]", "in_front_of"), ("[near]", "next_to"),
             ("[on the right of]", "right_of"), ("[ahead of]", "in_front_of"), ("[right next to]", "next_to"),
             ("[just left of]", "left_of"), ("[in back of]", "behind"), ("[just beside]", "next_to"),
             ("[immediately right of]", "right_of"), ("[at the side of]", "next_to")]
HOLD_FORMS = ["holding [OBJ]", "with [OBJ]", "carrying [OBJ]", "who has [OBJ]", "gripping [OBJ]",
              "who is holding [OBJ]", "that holds [OBJ]", "clutching [OBJ]", "holding onto [OBJ]",
              "who carries [OBJ]", "grabbing [OBJ]", "having [OBJ]"]
NEAR_FORMS = ["next to [OBJ]", "near [OBJ]", "by [OBJ]", "beside [OBJ]", "on [OBJ]", "close to [OBJ]",
              "leaning on [OBJ]", "at [OBJ]", "sitting on [OBJ]", "standing near [OBJ]", "behind [OBJ]",
              "in front of [OBJ]"]
COLOUR_FORMS = ["in A [COL] [GAR]", "wearing A [COL] [GAR]", "with A [COL] [GAR]", "in the [COL] [GAR]",
                "who wears A [COL] [GAR]", "dressed in A [COL] [GAR]", "in [COL] [GARS]", "sporting A [COL] [GAR]",
                "who has on A [COL] [GAR]", "that is wearing A [COL] [GAR]", "with the [COL] [GAR]",
                "in that [COL] [GAR]", "whose [GAR] is [COL]", "wearing [COL] [GARS]", "with [COL] [GARS]",
                "in a [PAT] [COL] [GAR]", "in A [COL] and [COL2] [GAR]", "wearing A [PAT] [GAR]"]
COLOUR_ONLY = ["in [COL]", "wearing [COL]", "dressed in [COL]", "in all [COL]", "dressed all in [COL]",
               "wearing mostly [COL]", "in [COL] clothes", "clad in [COL]", "in head to toe [COL]"]
NEG_FORMS = ["[not] wearing A [COL] [GAR]", "[not] in [COL]", "who is [not] [POSTURE]", "[without] [OBJ]",
             "who is [not] [GESTURE]", "[not] [POSTURE]", "that is [not] wearing [COL]", "[not] holding [OBJ]",
             "who [never] wears [COL]", "[except] the [POSTURE] one", "who does [not] have [OBJ]",
             "with [no] [COL] [GAR]"]
UNCHECKED_POST = ["with [long hair]", "with a [beard]", "with [curly hair]", "with [short hair]", "with a [ponytail]",
                  "with [grey hair]", "with a [moustache]", "with [dark hair]", "with [braids]", "with a [tattoo]",
                  "with [freckles]", "with a [mustache]"]
ADJECTIVES = ["tall", "short", "skinny", "thin", "heavy", "big", "little", "small", "muscular", "old", "young",
              "elderly", "blonde", "blond", "bald", "bearded", "happy", "sad", "angry", "tired", "pretty", "handsome",
              "cute", "serious", "chubby", "slim", "lanky", "stocky", "grumpy", "cheerful", "sleepy", "older",
              "younger", "friendly", "quiet", "strong", "busy", "sporty", "shy", "bored", "nervous", "brunette",
              "teenage", "middle-aged", "athletic", "scruffy", "elegant", "fit", "hairy", "curly-haired"]
MOTION_FORMS = ["who is [MOT]", "[MOT]", "that is [MOT]", "currently [MOT]", "who seems to be [MOT]"]
MOTIONS = ["walking", "running", "jumping", "dancing", "jogging", "moving", "throwing", "catching", "kicking",
           "climbing", "talking", "laughing", "smiling", "waiting", "posing", "leaning", "skating", "riding",
           "strolling", "sprinting", "singing", "eating", "drinking", "reading", "texting", "shouting", "hopping",
           "skipping", "marching", "stretching", "chatting", "cheering", "clapping", "crying", "yawning", "wandering"]
OTHER_PHRASES = ["the [other one]", "[the other one]", "[someone else]", "the [other person]", "[another one]",
                 "the [other guy]", "[the other person]", "[somebody else]", "the [other woman]"]
PRONOUN_MAIN = ["[he]", "[she]", "[they]", "[that person]", "[this person]", "[that guy]", "[the same person]",
                "[that one]", "[this one]", "[that woman]", "[the same one]", "[this guy]"]
PRONOUN_OBJ = ["[him]", "[her]", "[them]", "[that person]", "[that guy]", "[this one]", "[that woman]", "[that one]"]
CORRECTIONS = ["[no wait] ,", ", [no wait] ,", ", [sorry , i mean]", "[actually]", ", [no] ,", "[or rather]",
               ", [scratch that] ,", ", [i mean]", ", [correction] ,", ", [my mistake] ,", ", [i meant]",
               "[oops] ,", ", [wait] ,", ", [no sorry] ,", ", [let me rephrase] ,"]
CHAT = ["hi", "hello", "hello there", "hey", "thanks", "thank you", "good morning", "who are you", "what can you do",
        "how are you", "tell me a joke", "what is your name", "bye", "are you a robot", "what time is it",
        "nice to meet you", "ok", "good evening", "what are you", "help", "how does this work", "good job",
        "can you hear me", "hey there", "thanks a lot", "who made you", "what is going on", "see you later",
        "you are great", "hmm", "good afternoon", "do you like music", "what is the weather like"]
IMAGINE = ["what pose would a ADJ NOUN take", "imagine a NOUN GER", "show me how a NOUN would stand",
           "how would a NOUN sit", "generate a pose of someone GER", "make a pose for a ADJ NOUN",
           "strike a pose like a NOUN", "how does a NOUN stand", "give me a pose of a NOUN GER",
           "what would a NOUN look like GER", "pretend to be a ADJ NOUN", "create the pose of a NOUN GER",
           "imagine someone ADJ", "show me a pose of a ADJ NOUN", "how would a ADJ NOUN pose",
           "what pose does a NOUN make when GER", "a pose for a NOUN please", "act like a NOUN GER"]
PERSON_FRAMES = ["show me R", "find R", "which one is R", "where is R", "point out R", "R", "i am looking for R",
                 "can you find R", "select R", "track R", "give me the pose of R", "pick R", "highlight R",
                 "i want R", "focus on R", "look at R", "who is R", "locate R", "what is the pose of R", "get R",
                 "choose R", "zoom in on R", "please find R", "show R", "R please", "i need R",
                 "which person is R", "spot R", "follow R", "where can i see R", "the pose of R , please",
                 "could you show me R", "i would like R", "go to R", "i mean R", "help me find R"]
COUNT_FRAMES = ["how many P are there", "how many P are PRED", "how many P PRED are there", "count the P",
                "count the P that are PRED", "number of P PRED", "how many P can you see", "how many P do you see",
                "what is the number of P PRED", "how many P are in the picture", "give me a count of P",
                "tell me how many P are PRED", "is there anyone PRED", "are there any P PRED",
                "how many of the P are PRED", "how many P are visible", "count how many P are PRED",
                "can you count the P", "in total how many P are PRED", "how many P in this image are PRED",
                "how many P do you count"]
YES_NO_FRAMES = ["is R PRED", "is R PRED right now", "is it true that R is PRED", "can you tell me if R is PRED",
                 "tell me whether R is PRED", "would you say R is PRED", "is R currently PRED", "check if R is PRED",
                 "is R actually PRED", "do you think R is PRED", "was R PRED", "is R PRED or not",
                 "i wonder if R is PRED", "is R still PRED", "am i right that R is PRED"]
DESCRIBE_FRAMES = ["what is R doing", "describe R", "tell me about R", "what is R wearing",
                   "what does R look like", "what is R up to", "can you describe R", "give me a description of R",
                   "what can you tell me about R", "what is R holding", "describe what R is doing",
                   "how does R look"]
NOT_PERSON_FRAMES = ["the A", "show me the A", "where is the A", "find the A", "which A is it", "the A please",
                     "point out the A", "the A over there", "i want the A", "track the A", "look at the A",
                     "can you find the A"]
FOLLOW_YES_NO = ["is PRO PRED", "is PRO still PRED", "and is PRO PRED", "is PRO PRED now", "was PRO PRED",
                 "so is PRO PRED", "is PRO also PRED", "but is PRO PRED"]
FOLLOW_PERSON = ["OTHER", "what about OTHER", "no , OTHER", "OTHER please", "show me OTHER", "how about OTHER",
                 "and OTHER", "i meant OTHER", "OTHER instead"]
FOLLOW_RELATION = ["and the one REL PRO", "what about the person REL PRO", "the guy REL PRO",
                   "show me whoever is REL PRO", "the one REL PRO", "and the woman REL PRO",
                   "now the person REL PRO", "who is REL PRO"]
FOLLOW_DESCRIBE = ["what is PRO doing", "what is PRO wearing", "describe PRO", "tell me more about PRO",
                   "what is PRO holding", "what does PRO look like"]
GENERIC_HEADS = ["person", "one", "guy", "man", "woman", "lady", "girl", "boy", "kid", "someone", "individual",
                 "gentleman", "child", "fellow", "dude", "human", "teenager", "adult", "figure", "chap", "gal",
                 "youngster", "bloke", "toddler"]
PLURAL_HEADS = ["people", "persons", "men", "women", "kids", "guys", "girls", "boys", "children", "ladies",
                "individuals", "humans", "adults", "folks", "players", "gentlemen", "teenagers", "figures"]
PATTERN_WORDS = ["striped", "plaid", "checked", "floral", "patterned", "spotted", "dotted", "tartan", "plain",
                 "checkered", "camo", "stripy", "pinstriped", "printed", "solid", "paisley"]
NON_COCO_OBJECTS = ["guitar", "flag", "banner", "sign", "newspaper", "map", "shovel", "broom", "rake", "microphone",
                    "violin", "trumpet", "hammer", "drum", "leash", "stick", "pole", "box", "basket", "bucket",
                    "ladder", "towel", "balloon", "candle", "sword", "trophy", "tray", "folder", "megaphone",
                    "notebook", "flashlight", "pen", "pencil", "wallet", "key", "ticket", "rope", "camera", "fan",
                    "paddle", "bat", "racket", "pillow", "blanket", "package", "bag", "mirror", "brush", "knife"]
PERSON_ROOTS = ("worker.n.01", "athlete.n.01", "player.n.01", "traveler.n.01", "adult.n.01", "juvenile.n.01",
                "professional.n.01", "performer.n.01", "spectator.n.01", "serviceman.n.01", "musician.n.01",
                "skilled_worker.n.01", "relative.n.01", "student.n.01", "customer.n.01", "lover.n.01",
                "friend.n.01", "expert.n.01", "enthusiast.n.01", "leader.n.01")
ANIMAL_ROOTS = ("dog.n.01", "domestic_cat.n.01", "horse.n.01", "bird.n.01", "bovine.n.01", "sheep.n.01",
                "bear.n.01", "elephant.n.01")
BLOCKED_PARTS = ("whore", "prick", "cock", "slut", "bitch", "fag", "nigg", "cunt", "dick", "bastard", "tard", "pimp",
                 "hooker", "queer", "dyke", "rape", "murder", "kill", "wank", "twat", "pussy", "harlot", "fuck", "shit",
                 "ass", "tit", "homo", "spic", "kike", "coon", "gook", "chink", "wog", "wop")
BLOCKED = {"bastard", "bitch", "slut", "whore", "retard", "faggot", "fag", "cunt", "dyke", "nigger", "spic", "kike",
           "wop", "homo", "tart", "hooker", "prostitute", "pimp", "queer", "wog", "chink", "gook", "coon", "cocksucker",
           "harlot", "wanker", "twat", "prick", "dick", "pussy", "hustler", "drug", "killer", "murderer", "rapist"}


# --------------------------------------------------------------------------- vocabulary


@dataclass
class Split:
    train: list
    held: list

    def pick(self, rng: random.Random, held: bool):
        pool = self.held if held and self.held else self.train
        return rng.choice(pool)


@dataclass
class Vocabulary:
    colours: Split
    garments: Split          # (word, lemma, region) worn on measured regions
    unmeasured: Split        # (word, region) hats, shoes, glasses, scarves, gloves
    persons: Split           # WordNet person nouns (not generic, not gendered)
    objects: Split           # (word, coco classes) COCO objects and synonyms
    other_objects: Split     # nouns with no COCO class
    animals: Split
    adjectives: Split
    motions: Split
    sizes: dict = field(default_factory=dict)


def _alpha(w: str) -> bool:
    return bool(re.fullmatch(r"[a-z]+(?:[- ][a-z]+)?", w))


def _hyponyms(wn, name: str) -> set[str]:
    """The lemma names of a synset and of every hyponym below it (lower case, spaces)."""
    s = wn.synset(name)
    out = {lm.name() for lm in s.lemmas()}
    for h in s.closure(lambda x: x.hyponyms()):
        out.update(lm.name() for lm in h.lemmas())
    return {w.replace("_", " ").lower() for w in out}


def _garment_vocab(norm: Normaliser, colour_set: set[str]) -> tuple[dict, dict]:
    """(measured garments: word -> (word, lemma, region); unmeasured: word -> (word, region))."""
    wn, lex = norm.lex.wn, norm.lex
    garments, unmeasured = {}, {}
    for w in _hyponyms(wn, "clothing.n.01") | _hyponyms(wn, "headdress.n.01") | _hyponyms(wn, "footwear.n.02") | \
            _hyponyms(wn, "spectacles.n.01") | set(EXTRA_GARMENTS):
        if not _alpha(w) or w in colour_set:
            continue
        info = lex.noun(w)
        if info is None or info.kind != "garment" or norm.noun(w.split()) != info:
            continue
        if info.region in ("upper", "lower", "full"):
            garments[w] = (w, info.lemma.replace("_", " "), info.region)
        elif info.region in ("head", "face", "feet", "hands", "neck"):
            unmeasured[w] = (w, info.region)
    return garments, unmeasured


def _person_vocab(norm: Normaliser, exclude: set[str]) -> set[str]:
    persons = set()
    for root in PERSON_ROOTS:
        for w in _hyponyms(norm.lex.wn, root):
            if " " in w or "-" in w or not w.isalpha() or len(w) > 13 or w in exclude or w in BLOCKED or \
                    any(b in w for b in BLOCKED_PARTS) or w in GENDERED or w in GENERIC_PEOPLE or w in GENERIC_HEADS:
                continue
            info = norm.lex.noun(w)
            if info is not None and info.kind == "person":
                persons.add(w)
    return persons


def _object_vocab(norm: Normaliser, exclude: set[str]) -> dict:
    """word -> (word, COCO classes), for nouns whose most frequent sense is under the class's synsets."""
    wn, lex = norm.lex.wn, norm.lex
    objects = {}
    for cls, names in COCO_SYNSETS.items():
        if cls in ("dog", "cat", "horse", "bird", "tie"):
            continue
        for w in set().union(*(_hyponyms(wn, s) for s in names)):
            if not _alpha(w) or w in exclude:
                continue
            info = lex.noun(w)
            syn = wn.synsets(w.replace(" ", "_"), "n")
            if info is None or info.kind != "object" or not info.coco or info.coco[0] != cls or not syn:
                continue
            if {h.name() for p in syn[0].hypernym_paths() for h in p}.isdisjoint(names):
                continue
            objects[w] = (w, info.coco)
    return objects


def build_vocabulary(norm: Normaliser) -> Vocabulary:
    """Every vocabulary list, split train / held-out by word."""
    lex, wn = norm.lex, norm.lex.wn
    colour_names = [n for n in norm.colours.names if re.fullmatch(r"[a-z]+(?: [a-z]+){0,2}", n)]
    colour_set = set(colour_names)
    garments, unmeasured = _garment_vocab(norm, colour_set)
    persons = _person_vocab(norm, colour_set | set(garments))
    objects = _object_vocab(norm, colour_set | set(garments))
    others = [w for w in NON_COCO_OBJECTS if (i := lex.noun(w)) is not None and not i.coco and i.kind == "object"]
    animals = {w for root in ANIMAL_ROOTS for w in _hyponyms(wn, root)
               if " " not in w and w.isalpha() and w not in colour_set and (i := lex.noun(w)) is not None
               and i.kind == "animal"}

    def keyed(d: dict) -> Split:
        tr, he = split_words(d)
        return Split([d[w] for w in tr], [d[w] for w in he])

    v = Vocabulary(Split(*split_words(colour_names)), keyed(garments), keyed(unmeasured),
                   Split(*split_words(persons)), keyed(objects), Split(*split_words(others)),
                   Split(*split_words(animals)), Split(*split_words(ADJECTIVES)), Split(*split_words(MOTIONS)))
    v.sizes = {k: [len(getattr(v, k).train), len(getattr(v, k).held)] for k in
               ("colours", "garments", "unmeasured", "persons", "objects", "other_objects", "animals", "adjectives",
                "motions")}
    return v


# --------------------------------------------------------------------------- sentence pieces


@dataclass
class Piece:
    """Words with their tags, and what they mean for the gold Request."""

    words: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def lit(self, text: str) -> "Piece":
        for w in text.split():
            self.words.append(w)
            self.tags.append("O")
        return self

    def span(self, kind: str, text: str) -> "Piece":
        for i, w in enumerate(text.split()):
            self.words.append(w)
            self.tags.append(("B-" if i == 0 else "I-") + kind)
        return self

    def add(self, other: "Piece") -> "Piece":
        self.words += other.words
        self.tags += other.tags
        return self


def _mark(phrase: str, kind: str, fills: dict | None = None) -> Piece:
    """Markup -> Piece: each [span] is one span of `kind` (fills: placeholder -> (text, kind))."""
    p = Piece()
    fills = fills or {}
    for part in re.split(r"(\[[^\]]*\])", phrase):
        if not part.strip():
            continue
        if part.startswith("["):
            first = True
            for w in part.strip("[]").split():
                if w in fills:
                    text, k = fills[w]
                    p.span(k, text) if k != "O" else p.lit(text)
                    first = True
                    continue
                p.words.append(w)
                p.tags.append(("B-" if first else "I-") + kind)
                first = False
        else:
            for w in part.split():
                if w in fills:
                    text, k = fills[w]
                    p.span(k, text) if k != "O" else p.lit(text)
                else:
                    p.lit(w)
    return p


@dataclass
class Gold:
    """A reference being generated: its gold fields."""

    constraints: list[Constraint] = field(default_factory=list)
    head: str = ""
    pronoun: bool = False
    other: bool = False
    not_person: str = ""

    def ref(self) -> Reference:
        return Reference(tuple(self.constraints), self.head, self.pronoun, self.other, self.not_person)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


class Generator:
    """Questions of every intent, from training items (held=False) or held-out items (held=True)."""

    def __init__(self, norm: Normaliser, vocab: Vocabulary) -> None:
        self.norm = norm
        self.v = vocab
        t = {}
        for name in ("POSITION_POST", "POSITION_PRE", "SIDE_FORMS", "DISTANCE_POST", "DISTANCE_PRE", "POSTURES",
                     "GESTURES", "FACING", "RELATIONS", "HOLD_FORMS", "NEAR_FORMS", "COLOUR_FORMS", "COLOUR_ONLY",
                     "NEG_FORMS", "UNCHECKED_POST", "MOTION_FORMS", "OTHER_PHRASES", "PRONOUN_MAIN", "PRONOUN_OBJ",
                     "CORRECTIONS", "CHAT", "IMAGINE", "PERSON_FRAMES", "COUNT_FRAMES", "YES_NO_FRAMES",
                     "DESCRIBE_FRAMES", "NOT_PERSON_FRAMES", "FOLLOW_YES_NO", "FOLLOW_PERSON", "FOLLOW_RELATION",
                     "FOLLOW_DESCRIBE", "GENERIC_HEADS", "PLURAL_HEADS", "PATTERN_WORDS", "ORD_WORDS"):
            t[name] = Split(*split_phrasings(globals()[name]))
        self.t = t
        self.held = False
        self.rng = random.Random(0)

    def pick(self, name: str):
        return self.t[name].pick(self.rng, self.held)

    def vpick(self, name: str):
        return getattr(self.v, name).pick(self.rng, self.held)

    # -- slots: each returns a Piece and adds to the Gold --------------------------------------
    def colour_phrase(self, s: str, g: Gold, neg: bool = False, form: str | None = None) -> Piece:
        """A colour (+ garment) phrase in scope prefix `s` ("", "R-", "P-")."""
        rng = self.rng
        col = self.vpick("colours")
        if form is None:
            form = self.pick("COLOUR_FORMS") if rng.random() < 0.75 else self.pick("COLOUR_ONLY")
        if "[GAR" not in form:
            p = _mark(form.replace("[COL]", "COL"), "O", {"COL": (col, s + "COLOUR")})
            g.constraints.append(Constraint("colour", self.norm.colours.normalise(col), col, region="any", negated=neg))
            return p
        unmeasured = rng.random() < 0.15 and "[PAT]" not in form and "COL2" not in form
        unmeasured = unmeasured and not form.startswith("whose")
        if unmeasured:
            word, region = self.vpick("unmeasured")
            lemma = word
        else:
            word, lemma, region = self.vpick("garments")
        plural = "[GARS]" in form
        gword = _plural(word) if plural and not word.endswith("s") and " " not in word else word
        if plural and gword != word:
            info = self.norm.noun(gword.split())
            if info is None or (info.kind, info.lemma.replace("_", " "), info.region) != ("garment", lemma, region):
                gword = word
        fills = {"COL": (col, s + "COLOUR"), "GAR": (gword, s + "GARMENT"), "GARS": (gword, s + "GARMENT"),
                 "A": (_article(col), "O")}
        col2 = None
        if "COL2" in form:
            col2 = self.vpick("colours")
            fills["COL2"] = (col2, s + "COLOUR")
        pat = None
        if "[PAT]" in form:
            pat = self.pick("PATTERN_WORDS")
            fills["PAT"] = (pat, s + "PATTERN")
            fills["A"] = (_article(pat), "O")
        p = _mark(re.sub(r"\[(COL2?|GARS?|PAT)\]", r"\1", form), "O", fills)
        if unmeasured:
            if "[COL]" in form:
                g.constraints.append(Constraint("unchecked", region, col + " " + gword, negated=neg))
            g.constraints.append(Constraint("unchecked", region, gword))
            return p
        cneg = neg
        if "[COL]" in form:
            g.constraints.append(Constraint("colour", self.norm.colours.normalise(col), col, region=region,
                                            negated=cneg))
            cneg = False
        if col2:
            g.constraints.append(Constraint("colour", self.norm.colours.normalise(col2), col2, region=region))
        if pat:
            g.constraints.append(Constraint("pattern", self.norm.pattern([pat]), pat, region=region, negated=cneg))
            cneg = False
        skin = self.norm.lex.noun(word).skin  # what the garment leaves bare or covers is measured
        g.constraints.append(Constraint("skin", skin, gword, region=region, negated=cneg) if skin else
                             Constraint("garment", lemma, gword, region=region, negated=cneg))
        return p

    def table_phrase(self, table: str, s: str, kind: str, ckind: str, g: Gold, neg: bool = False) -> Piece:
        phrase, value = self.pick(table)
        g.constraints.append(Constraint(ckind, value, phrase, negated=neg))
        return _mark(phrase, s + kind)

    def ordinal(self, g: Gold) -> tuple[str, str]:
        """An ordinal: (its number word, the side phrase or ""), gold added."""
        word, k = self.pick("ORD_WORDS")
        side = self.rng.choice(["left", "right", "left", "right", ""])
        form = self.pick("SIDE_FORMS").replace("SIDE", side) if side else ""
        from_ = "from" in form or "counting" in form
        if k < 0:
            kk = -k
            gside = ("right" if side == "left" else "left") if (from_ and side) else (side or "right")
        else:
            kk, gside = k, side or "left"
        g.constraints.append(Constraint("ordinal", gside, (word + " " + form).strip(), k=kk))
        return word, form

    def obj(self, s: str, g: Gold, near: bool, neg: bool = False, form: str | None = None) -> Piece:
        rng = self.rng
        if rng.random() < 0.8:
            word, coco = self.vpick("objects")
            c = Constraint("object", "near" if near else "holding", word, coco=coco, negated=neg)
        else:
            word = self.vpick("other_objects")
            c = Constraint("unchecked", "object", word, negated=neg)
        g.constraints.append(c)
        det = rng.choice([_article(word), "the", "a", "some", "his", "her"]) if not word.endswith("s") else "the"
        form = form or self.pick("NEAR_FORMS" if near else "HOLD_FORMS")
        return _mark(form.replace("[OBJ]", det + " OBJ"), "O", {"OBJ": (word, s + ("NEAR" if near else "HELD"))})

    def head(self, s: str, g: Gold, plural: bool = False) -> Piece:
        rng = self.rng
        r = rng.random()
        if plural:
            w = self.pick("PLURAL_HEADS") if r < 0.7 else _plural(self.vpick("persons"))
            info = self.norm.noun([w])
            if w not in GENDERED and w not in GENERIC_PEOPLE and (info is None or info.kind != "person"):
                w = "people"
        elif r < 0.55:
            w = self.pick("GENERIC_HEADS")
        else:
            w = self.vpick("persons")
        if not g.head:
            g.head = w
        if w in GENDERED:
            g.constraints.append(Constraint("unchecked", GENDERED[w], w))
        return Piece().span(s + "HEAD", w)

    def modifier(self, s: str, g: Gold, kinds: list[str]) -> tuple[Piece, Piece]:
        """(pre-head piece, post-head piece) for one modifier kind."""
        rng = self.rng
        kind = rng.choice(kinds)
        pre, post = Piece(), Piece()
        if kind == "colour":
            post.add(self.colour_phrase(s, g))
        elif kind == "position":
            if rng.random() < 0.3:
                pre.add(self.table_phrase("POSITION_PRE", s, "POSITION", "position", g))
            else:
                post.add(self.table_phrase("POSITION_POST", s, "POSITION", "position", g))
        elif kind == "distance":
            if rng.random() < 0.35:
                pre.add(self.table_phrase("DISTANCE_PRE", s, "DISTANCE", "distance", g))
            else:
                post.add(self.table_phrase("DISTANCE_POST", s, "DISTANCE", "distance", g))
        elif kind in ("posture", "gesture", "facing"):
            post.add(self.body_phrase(kind, s, g))
        elif kind in ("held", "near"):
            post.add(self.obj(s, g, near=kind == "near"))
        elif kind == "adjective":
            w = self.vpick("adjectives")
            g.constraints.append(Constraint("unchecked", self.norm.unchecked([w]), w))
            pre.span(s + "UNCHECKED", w)
        elif kind == "body":
            form = self.pick("UNCHECKED_POST")
            span = re.search(r"\[(.*)\]", form).group(1).split()
            g.constraints.append(Constraint("unchecked", self.norm.unchecked(span), " ".join(span)))
            post.add(_mark(form, s + "UNCHECKED"))
        elif kind == "motion":
            w = self.vpick("motions")
            g.constraints.append(Constraint("motion", w, w))
            post.add(_mark(self.pick("MOTION_FORMS").replace("MOT", w), s + "MOTION"))
        elif kind == "negation":
            post.add(self.negation(s, g))
        return pre, post

    def body_phrase(self, kind: str, s: str, g: Gold) -> Piece:
        """A posture, gesture or facing phrase after the head noun."""
        rng, post = self.rng, Piece()
        if kind == "posture":
            post.lit(rng.choice(["who is", "that is", "", "", "who is currently"]))
            return post.add(self.table_phrase("POSTURES", s, "POSTURE", "posture", g))
        if kind == "gesture":
            phrase, _ = self.t["GESTURES"].pick(rng, self.held)
            if not phrase.startswith("with"):
                post.lit(rng.choice(["who is", "", "that is"]))
            g.constraints.append(Constraint("gesture", dict(GESTURES)[phrase], phrase))
            return post.add(_mark(phrase, s + "GESTURE"))
        post.lit(rng.choice(["who is", "", "", "that is"]))
        return post.add(self.table_phrase("FACING", s, "FACING", "facing", g))

    def negation(self, s: str, g: Gold) -> Piece:
        form = self.pick("NEG_FORMS")
        neg_word = re.search(r"\[(not|without|never|except|no)\]", form).group(1)
        before, after = form.split(f"[{neg_word}]", 1)
        p = _mark(before, "O").span("NEG", neg_word)
        after = after.strip()
        if "[POSTURE]" in after:
            phrase, value = self.pick("POSTURES")
            g.constraints.append(Constraint("posture", value, phrase, negated=True))
            p.add(_mark(after.replace("[POSTURE]", phrase), s + "POSTURE"))
        elif "[GESTURE]" in after:
            phrase, value = self.pick("GESTURES")
            g.constraints.append(Constraint("gesture", value, phrase, negated=True))
            p.add(_mark(after.replace("[GESTURE]", phrase.replace("with ", "")), s + "GESTURE"))
        elif "[OBJ]" in after:
            p.add(self.obj(s, g, near=False, neg=True, form=after))
        else:
            p.add(self.colour_phrase(s, g, neg=True, form=after))
        return p

    def relation(self, g: Gold) -> Piece:
        rng = self.rng
        phrase, value = self.pick("RELATIONS")
        sub = Gold()
        p = Piece().lit(rng.choice(["who is", "", ""]))
        p.add(_mark(phrase, "RELATION"))
        if rng.random() < 0.15:
            pro = self.pick("PRONOUN_OBJ")
            words = pro.strip("[]").split()
            sub.pronoun, sub.head = True, words[-1]
            if words[-1] in GENDERED:
                sub.constraints.append(Constraint("unchecked", GENDERED[words[-1]], words[-1]))
            p.add(_mark(pro, "R-PRONOUN"))
        else:
            p.lit(rng.choice(["the", "the", "a"]))
            pre, post = Piece(), Piece()
            if rng.random() < 0.7:
                pre, post = self.modifier("R-", sub, ["colour", "colour", "position", "posture", "held", "adjective",
                                                      "gesture", "distance"])
            p.add(pre).add(self.head("R-", sub)).add(post)
        g.constraints.append(Constraint("relation", value, phrase, ref=sub.ref()))
        return p

    def reference(self, g: Gold, n_mods: int, allow_relation: bool = True, plural: bool = False,
                  kinds: list[str] | None = None) -> Piece:
        """A description of a person: [det] pre-modifiers head post-modifiers."""
        rng = self.rng
        kinds = kinds or ["colour", "colour", "colour", "position", "position", "ordinal", "distance", "posture",
                          "gesture", "facing", "held", "near", "adjective", "body", "motion", "negation",
                          "relation"]
        if not allow_relation:
            kinds = [k for k in kinds if k != "relation"]
        pres, posts = Piece(), Piece()
        head_piece = self.head("", g, plural)
        ordinal: tuple[str, str] | None = None
        used = set()
        for _ in range(n_mods):
            kind = rng.choice(kinds)
            if kind in used and kind in ("relation", "ordinal", "position", "distance"):
                continue
            used.add(kind)
            if kind == "ordinal" and not plural:
                word, form = self.ordinal(g)
                if form and rng.random() < 0.6:  # "the second tall man from the left"
                    ordinal = (word, form)
                else:
                    posts.add(Piece().span("ORDINAL", (word + " " + form).strip()))
                continue
            if kind == "relation":
                posts.add(self.relation(g))
                continue
            pre, post = self.modifier("", g, [kind])
            pres.add(pre)
            posts.add(post)
        p = Piece()
        if ordinal is not None and any(t != "B-UNCHECKED" for t in pres.tags):  # "the 4th rightmost man..."
            posts.add(Piece().span("ORDINAL", " ".join(ordinal)))
            ordinal = None
        if ordinal is not None:
            p.lit("the").span("ORDINAL", ordinal[0]).add(pres).add(head_piece).span("ORDINAL", ordinal[1])
            return p.add(posts)
        det = "" if plural else rng.choice(["the", "the", "the", "a", "the"])
        if det:
            p.lit(det)
        return p.add(pres).add(head_piece).add(posts)

    def predicate(self, g: Gold) -> Piece:
        """What a yes/no or count asks (P- spans)."""
        rng = self.rng
        kind = rng.choice(["posture", "posture", "gesture", "facing", "held", "colour", "motion", "position",
                           "distance", "negation"])
        p = Piece()
        if kind == "colour":
            form = rng.choice(["wearing A [COL] [GAR]", "wearing [COL]", "in [COL]", "dressed in [COL]",
                               "wearing A [PAT] [GAR]", "in A [COL] [GAR]"])
            return self.colour_phrase("P-", g, form=form)
        if kind == "negation":
            p.span("NEG", "not")
            phrase, value = self.pick("POSTURES")
            g.constraints.append(Constraint("posture", value, phrase, negated=True))
            return p.add(_mark(phrase, "P-POSTURE"))
        if kind == "held":
            return self.obj("P-", g, near=False, form=rng.choice(["holding [OBJ]", "carrying [OBJ]",
                                                                   "holding onto [OBJ]", "gripping [OBJ]"]))
        if kind == "motion":
            w = self.vpick("motions")
            g.constraints.append(Constraint("motion", w, w))
            return p.span("P-MOTION", w)
        if kind == "gesture":
            phrase, value = self.pick("GESTURES")
            if phrase.startswith("with"):  # "is he with arms crossed": not a predicate
                phrase, value = "[pointing]", "pointing"
            g.constraints.append(Constraint("gesture", value, phrase))
            return _mark(phrase, "P-GESTURE")
        table, ck = {"posture": ("POSTURES", "posture"), "facing": ("FACING", "facing"),
                     "position": ("POSITION_POST", "position"), "distance": ("DISTANCE_POST", "distance")}[kind]
        phrase, value = self.pick(table)
        if phrase.startswith("with"):
            phrase, value = "[facing away]", "away"
        g.constraints.append(Constraint(ck, value, phrase))
        return _mark(phrase, "P-" + kind.upper())

    # -- questions -------------------------------------------------------------------------------
    def question(self) -> tuple[Piece, Request, str]:
        """(words + tags, gold Request, family name)."""
        rng = self.rng
        intent = rng.choices(["person", "count", "yes_no", "describe", "imagine", "chat", "not_person",
                              "follow", "correction"], [30, 10, 12, 5, 4, 4, 3, 9, 6])[0]
        n_mods = rng.choices([0, 1, 2, 3], [1, 5, 4, 1.5])[0]
        if intent == "person":
            frame = self.pick("PERSON_FRAMES")
            g = Gold()
            ref = self.reference(g, max(1, n_mods) if rng.random() < 0.9 else n_mods)
            return self._frame(frame, {"R": ref}), Request("person", g.ref()), "person:" + frame
        if intent == "correction":
            frame = self.pick("PERSON_FRAMES")
            g1, g2 = Gold(), Gold()
            r1 = self.reference(g1, max(1, n_mods - 1), allow_relation=False)
            corr = _mark(self.pick("CORRECTIONS"), "CORRECTION")
            r2 = self.reference(g2, max(1, n_mods - 1), allow_relation=False)
            if rng.random() < 0.5:  # "the one on the left, no wait, the right": the second is often bare
                r2 = Piece().lit("the").add(self.table_phrase("POSITION_PRE", "", "POSITION", "position",
                                                              g2 := Gold(head="one"))).span("HEAD", "one")
            p = self._frame(frame, {"R": r1.add(corr).add(r2)})
            return p, Request("person", g2.ref(), corrected=True), "correction:" + frame
        if intent == "count":
            frame = self.pick("COUNT_FRAMES")
            g, gp = Gold(), Gold()
            ref = self.reference(g, rng.choice([0, 0, 1, 1, 2]), allow_relation=False, plural=True,
                                 kinds=["colour", "colour", "posture", "held", "near", "position", "adjective",
                                        "distance", "gesture"])
            if frame.startswith("is there anyone"):
                g = Gold(head="anyone")
                ref = Piece().span("HEAD", "anyone")
                frame = frame.replace("anyone", "P")
            pred = self.predicate(gp) if "PRED" in frame else Piece()
            p = self._frame(frame, {"P": ref, "PRED": pred})
            return p, Request("count", g.ref(), tuple(gp.constraints)), "count:" + frame
        if intent == "yes_no":
            frame = self.pick("YES_NO_FRAMES")
            g, gp = Gold(), Gold()
            ref = self.reference(g, rng.choice([0, 1, 1, 2]), kinds=["colour", "colour", "position", "position",
                                                                       "ordinal", "distance", "held", "adjective",
                                                                       "relation", "body"])
            pred = self.predicate(gp)
            return self._frame(frame, {"R": ref, "PRED": pred}), Request("yes_no", g.ref(), tuple(gp.constraints)), \
                "yes_no:" + frame
        if intent == "describe":
            frame = self.pick("DESCRIBE_FRAMES")
            g = Gold()
            ref = self.reference(g, max(1, n_mods), kinds=["colour", "colour", "position", "ordinal", "distance",
                                                          "held", "near", "posture", "relation"])
            return self._frame(frame, {"R": ref}), Request("describe", g.ref()), "describe:" + frame
        if intent == "imagine":
            frame = self.pick("IMAGINE")
            text = frame.replace("ADJ", self.vpick("adjectives")).replace("NOUN", self.vpick("persons") if
                                                                          rng.random() < 0.5 else self.pick(
                                                                              "GENERIC_HEADS"))
            text = text.replace("GER", self.vpick("motions"))
            text = re.sub(r"\ba ([aeiou])", r"an \1", text)
            return Piece().lit(text), Request("imagine"), "imagine:" + frame
        if intent == "chat":
            frame = self.pick("CHAT")
            return Piece().lit(frame), Request("chat"), "chat:" + frame
        if intent == "not_person":
            frame = self.pick("NOT_PERSON_FRAMES")
            animal = self.vpick("animals")
            g = Gold(not_person=animal)
            p = self._frame(frame, {"A": Piece().span("HEAD", animal)})
            return p, Request("not_person", g.ref()), "not_person:" + frame
        return self.follow_up()

    def follow_up(self) -> tuple[Piece, Request, str]:
        """A question about the person of the conversation: "is he ...", "the other one", "the one next to her"."""
        rng = self.rng
        kind = rng.choice(["yes_no", "person", "relation", "describe"])
        if kind == "yes_no":
            frame = self.pick("FOLLOW_YES_NO")
            g, gp = Gold(pronoun=True), Gold()
            pro = self._pronoun(g)
            p = self._frame(frame, {"PRO": pro, "PRED": self.predicate(gp)})
            return p, Request("yes_no", g.ref(), tuple(gp.constraints)), "follow_yes_no:" + frame
        if kind == "person":
            frame = self.pick("FOLLOW_PERSON")
            g = Gold(other=True)
            phrase = self.pick("OTHER_PHRASES")
            words = re.search(r"\[(.*)\]", phrase).group(1).split()
            if words[-1] in GENDERED:  # "the other woman": the head noun still says woman
                g.constraints.append(Constraint("unchecked", GENDERED[words[-1]], words[-1]))
                g.head = words[-1]
                o = _mark(phrase.replace(f" {words[-1]}]", "]"), "OTHER").span("HEAD", words[-1])
            else:
                o = _mark(phrase, "OTHER")
            return self._frame(frame, {"OTHER": o}), Request("person", g.ref()), "follow_person:" + frame
        if kind == "relation":
            frame = self.pick("FOLLOW_RELATION")
            g, sub = Gold(), Gold(pronoun=True)
            phrase, value = self.pick("RELATIONS")
            pw = rng.choice(["him", "her", "them"])
            sub.head = pw
            head = re.search(r"\b(one|person|guy|woman)\b", frame)
            if head:
                g.head = head.group(1)
                if g.head in GENDERED:
                    g.constraints.append(Constraint("unchecked", GENDERED[g.head], g.head))
            g.constraints.append(Constraint("relation", value, phrase, ref=sub.ref()))
            fills = {"REL": _mark(phrase, "RELATION"), "PRO": Piece().span("R-PRONOUN", pw)}
            if head:
                fills["HEADWORD"] = Piece().span("HEAD", head.group(1))
                frame = frame.replace(head.group(1), "HEADWORD", 1)
            p = self._frame(frame, fills)
            return p, Request("person", g.ref()), "follow_relation:" + frame
        frame = self.pick("FOLLOW_DESCRIBE")
        g = Gold(pronoun=True)
        obj = not re.search(r"\b(?:is|does) PRO", frame)
        return self._frame(frame, {"PRO": self._pronoun(g, obj=obj)}), Request("describe", g.ref()), \
            "follow_describe:" + frame

    def _pronoun(self, g: Gold, obj: bool = False) -> Piece:
        phrase = self.pick("PRONOUN_OBJ" if obj else "PRONOUN_MAIN")
        words = phrase.strip("[]").split()
        if words[-1] not in ("he", "she", "they", "him", "her", "them"):
            g.head = words[-1]
            if words[-1] in GENDERED:
                g.constraints.append(Constraint("unchecked", GENDERED[words[-1]], words[-1]))
        return _mark(phrase, "PRONOUN")

    @staticmethod
    def _frame(frame: str, fills: dict[str, Piece]) -> Piece:
        p = Piece()
        for w in frame.split():
            if w in fills:
                p.add(fills[w])
            else:
                p.lit(w)
        return p


# --------------------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Example:
    question: str
    words: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str
    gold: str          # canonical(gold Request)
    family: str        # the sentence frame


@dataclass
class Data:
    train: list[Example]
    held: list[Example]
    sizes: dict


def _surface(words: list[str], rng: random.Random) -> str:
    q = " ".join(words).replace(" ,", ",")
    if rng.random() < 0.6:
        q = q[:1].upper() + q[1:]
    return q + rng.choice(["?", "?", "", ".", "!"] if len(words) > 1 else ["", "?"])


def generate(seed: int = 0, n_train: int = 30000, n_held: int = 3000, norm: Normaliser | None = None) -> Data:
    """TRAIN and HELD-OUT examples (fixed seed); every example's words are what the parser reads back
    from its question (llm_parse.words_of) and its tags a valid BIO sequence."""
    norm = norm or Normaliser()
    vocab = build_vocabulary(norm)
    gen = Generator(norm, vocab)
    out = {}
    skipped = 0
    for part, n, held in (("train", n_train, False), ("held", n_held, True)):
        gen.held = held
        gen.rng = random.Random(f"{seed}-{part}")
        rows: list[Example] = []
        while len(rows) < n:
            piece, req, family = gen.question()
            words = [w for w in piece.words if w]
            tags = [t for w, t in zip(piece.words, piece.tags) if w]
            words = ["an" if w == "a" and t == "O" and i + 1 < len(words) and words[i + 1][0] in "aeiou" else w
                     for i, (w, t) in enumerate(zip(words, tags))]
            q = _surface(words, gen.rng)
            if words_of(q) != words or not all(t in TAG_INDEX for t in tags):
                skipped += 1
                continue
            rows.append(Example(q, tuple(words), tuple(tags), req.intent, canonical(req), family))
        out[part] = rows
    train_frames = {e.family for e in out["train"]}
    sizes = {"vocabulary (train, held-out)": vocab.sizes, "train": len(out["train"]), "held": len(out["held"]),
             "skipped": skipped, "held-out frames also in train": len({e.family for e in out["held"]} & train_frames)}
    return Data(out["train"], out["held"], sizes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=20)
    ap.add_argument("--n-held", type=int, default=20)
    ap.add_argument("--json", help="write the examples here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = generate(args.seed, args.n_train, args.n_held)
    log.info("%s", json.dumps(data.sizes))
    for part, rows in (("train", data.train), ("held", data.held)):
        for e in rows[:args.n_train if part == "train" else args.n_held]:
            log.info("%s | %s | %s", part, e.question, e.gold)
            log.info("      %s", " ".join(f"{w}/{t}" for w, t in zip(e.words, e.tags) if t != "O"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: [e.__dict__ for e in v] for k, v in (("train", data.train), ("held", data.held))}, f)


if __name__ == "__main__":
    main()
