"""Question -> typed `Request`: a deterministic parser over open vocabularies.

    parser = QuestionParser()                       # loads WordNet and the colour table once
    parser.parse("Is the woman in the red jacket standing?").describe()
    # 'yes_no [woman: unchecked=gender, colour=red@upper, garment=jacket] ? posture=standing'

The parser copies the user's words into typed slots. Its vocabularies are open: any of the 1,048
colour names (the xkcd survey's 949, the CSS names it lacks), any WordNet noun for people, garments (and the body region they
cover), objects (and their COCO class) and animals. A word it cannot place is not dropped: a noun
or adjective that names something perception cannot see becomes an "unchecked" constraint, which
the answer reports. The grammar is shallow: intent from the question's frame ("how many", an
auxiliary verb first, "what pose would..."), a correction keeps the words after its marker ("no
wait, I mean ..."), and within a description, colours attach to the garment noun that follows
them, a relation word ("next to", "left of") opens the description of another person.
"""
from __future__ import annotations

import re

from .colours import ColourNames
from .request import Constraint, Reference, Request
from .words import ORDINARY_PEOPLE, ROLE_OBJECTS, Lexicon, gender_of

CORRECTION = re.compile(r"\b(?:no wait|no no|wait|i mean|i meant|sorry|actually|correction|rather|scratch that|"
                        r"make that|not that one|hang on|hold on|oops|no,)\b[,:]?", re.I)
CONTRACTIONS = (("isn't", "is not"), ("aren't", "are not"), ("doesn't", "does not"), ("don't", "do not"),
                ("wasn't", "was not"), ("who's", "who is"), ("what's", "what is"), ("he's", "he is"),
                ("she's", "she is"), ("they're", "they are"), ("i'm", "i am"), ("there's", "there is"),
                ("that's", "that is"), ("let's", "let us"), ("can't", "can not"), ("won't", "will not"),
                ("hasn't", "has not"), ("haven't", "have not"))
AUX = {"is", "are", "does", "do", "can", "has", "have", "was", "were", "did", "could", "would", "will"}
IMAGINE = re.compile(r"\b(?:what pose would|what would .* look like|how would an? |how does an? |imagine|show me how|"
                     r"how an? [a-z ]*(?:person|man|woman|child|kid|someone) (?:would|might) |"
                     r"pose of (?:an? |someone|somebody)|show me (?:a|an|some) (?:pose|person|man|woman)|"
                     r"strike a pose|generate a pose|make a pose|what pose does|how do(?:es)? (?:people|someone) "
                     r"(?:stand|sit|pose)|give me a pose|typical pose|a pose (?:of|for)|pose would)\b", re.I)
CHAT = re.compile(r"^(?:hi|hello|hey|thanks|thank you|good (?:morning|evening|afternoon)|who are you|what can you|"
                  r"what are you|how are you|help|bye|goodbye|tell me a joke|ok|okay)\b", re.I)
COUNT = re.compile(r"\b(?:how many|count|number of|how much people)\b", re.I)
DESCRIBE = re.compile(r"^(?:what is|what are|what does|describe|tell me about|what's)\b.*\b(?:doing|wearing|"
                      r"holding|look like|up to)\b|^describe\b|^tell me about\b", re.I)

PRONOUNS = {"he", "she", "him", "her", "they", "them", "his", "hers", "himself", "herself"}
SAME_PERSON = ("that person", "this person", "the same person", "the same one", "that one", "this one",
               "that guy", "that man", "that woman", "that girl", "that boy", "this guy")
OTHER = re.compile(r"\bthe other(?: one| person| guy| man| woman| girl| boy)?\b|\banother one\b|\bsomeone else\b",
                   re.I)
GENERIC_PEOPLE = {"person", "people", "persons", "one", "ones", "someone", "somebody", "anyone", "anybody",
                  "everyone", "everybody", "individual", "human", "humans", "figure", "who", "whoever"}
GENDERED = {"man": "gender", "men": "gender", "woman": "gender", "women": "gender", "lady": "gender",
            "ladies": "gender", "guy": "gender", "guys": "gender", "gentleman": "gender", "gentlemen": "gender",
            "girl": "gender", "girls": "gender", "boy": "gender", "boys": "gender", "male": "gender",
            "female": "gender", "dude": "gender", "gal": "gender", "fellow": "gender", "bloke": "gender",
            "kid": "age", "kids": "age", "child": "age", "children": "age", "baby": "age", "toddler": "age",
            "teenager": "age", "teen": "age", "adult": "age", "elderly": "age", "old": "age", "young": "age",
            "blonde": "hair", "blond": "hair", "brunette": "hair", "redhead": "hair", "bald": "hair"}
STOP = {"the", "a", "an", "in", "on", "at", "of", "to", "and", "or", "with", "who", "that", "which", "is", "are",
        "me", "show", "find", "point", "give", "please", "can", "you", "i", "want", "see", "look", "where", "this",
        "there", "here", "image", "picture", "photo", "frame", "scene", "one", "ones", "person", "people",
        "someone", "somebody", "whose", "whom", "what", "wearing", "dressed", "clothes", "clothing", "outfit",
        "his", "her", "their", "its", "be", "being", "has", "have", "having", "all", "only", "just", "very",
        "also", "now", "then", "still", "again", "do", "does", "did", "my", "your", "our", "same", "pose",
        "body", "from", "for", "by", "as", "it", "he", "she", "they", "them", "him", "get", "got", "tell",
        "about", "let", "us", "would", "could", "should", "will", "whats", "shown", "seen", "visible", "camera",
        "lens", "viewer", "side", "edge", "counting", "around", "up", "down", "over", "into", "out", "off", "far",
        "is", "are", "was", "were", "am"}
# Nouns that name no property of a person (kept out of "I can't check ...").
FILLER_NOUNS = {"way", "time", "bit", "lot", "kind", "sort", "thing", "things", "stuff", "part", "group", "lineup",
                "line", "row", "shot", "crop", "view", "background", "foreground", "middle", "centre", "center",
                "corner", "end", "place", "spot", "area", "bunch", "couple", "pair", "set", "one", "ones", "lens",
                "family", "crowd", "team", "party", "scene", "photograph", "snapshot", "still", "clip", "video",
                "moment", "turn", "rest", "others", "lots", "number", "total", "altogether", "half", "two",
                "three", "four", "five", "six", "er", "erm", "um", "uh", "oh", "hang", "sorry", "wait", "hmm", "light",
                "high", "low", "top", "bottom", "side", "sides", "front", "back", "well"}
INSIDE_WORDS = {"in", "inside", "aboard"}  # "in the car": inside a vehicle (an object constraint "inside")
ON_WORDS = {"on", "beside", "by"} | INSIDE_WORDS
RIDE_WORDS = {"on", "riding", "rides", "ride", "astride", "aboard", "cycling", "pushing", "wheeling"}
VEHICLES = {"car", "bus", "train", "truck", "boat", "airplane"}
RIDEABLE = {"bicycle", "motorcycle", "horse", "skateboard", "surfboard", "snowboard", "skis"}
POSTURES = {"sitting": "sitting", "seated": "sitting", "sits": "sitting", "sat": "sitting", "sitting down": "sitting",
            "standing": "standing", "stands": "standing", "upright": "standing", "standing up": "standing",
            "lying": "lying", "laying": "lying", "lies": "lying", "lying down": "lying",
            "crouching": "crouching", "squatting": "crouching", "kneeling": "crouching", "crouched": "crouching",
            "squats": "crouching", "kneels": "crouching"}  # "bent over the table": not a crouch
MOTIONS = {"walking", "running", "jumping", "dancing", "jogging", "moving", "walks", "runs", "jumps", "dances",
           "playing", "throwing", "catching", "kicking", "dribbling", "shooting", "climbing", "talking",
           "laughing", "smiling", "looking", "waiting", "posing", "leaning", "skating", "riding"}
GESTURES: tuple[tuple[str, str], ...] = (  # regex on the description, most specific first
    (r"\bboth (?:arms|hands) (?:up|raised|in the air|above|over)(?: (?:the |his |her |their )?heads?\b)?|"
     r"\b(?:arms|hands) (?:up|raised|in the air)\b|"
     r"\b(?:arms|hands) (?:above|over) (?:the |his |her |their )?heads?\b|"
     r"\braising both\b|\bboth hands up\b", "both_arms_raised"),
    (r"\bhands? (?:up )?(?:on|behind|at|to|near|under|against) (?:the |his |her |their )?"
     r"(?:head|chin|face|cheek|mouth|ear|forehead)s?\b|\bhands? behind\b|"
     r"\b(?:touching|touches|stroking|strokes|scratching|scratches|rubbing|rubs|holding|cupping|resting) "
     r"(?:his |her |their |the )?(?:head|chin|face|cheek|forehead|ear|beard|temple)s?\b", "hand_at_head"),
    (r"\b(?:arms|hands) (?:are )?(?:crossed|folded)\b|\bcrossed arms\b|\bfolded arms\b|"
     r"\b(?:crossing|folding) (?:his |her |their )?arms\b",
     "arms_crossed"),
    (r"\bhands? on (?:the |his |her |their )?hips?\b", "hands_on_hips"),
    (r"\bhands? (?:\w+ )?(?:in|on) (?:the |his |her |their )?laps?\b|\bhands? clasped\b|\bclasped hands\b",
     "hands_in_lap"),
    (r"\bhands? (?:\w+ )?(?:on|over|to|across|against) (?:the |his |her |their )?"
     r"(?:chest|belly|stomach|tummy|heart|tum|front|middle|waist)\b", "hand_at_chest"),
    (r"\breach(?:es|ing)? out\b|\breaching (?:his |her |their |an? |the )?(?:left |right )?(?:arm|hand)\b|"
     r"\b(?:arm|hand)s? (?:held |stretched )?out\b|\boutstretched\b|\bstretch(?:es|ing)? out\b|"
     r"\barm extended\b|\bextended arm\b", "arm_out"),
    (r"\bpointing\b|\bpoints\b|\bpointed\b", "pointing"),
    (r"\bwaving\b|\bwaves\b|\bwave\b", "waving"),
    (r"\bthumbs? up (?:above|over) (?:the |his |her |their )?heads?\b|"
     r"\b(?:raised|raising|lifted|lifting|up) (?:an? |one |his |her |their |the )?(?:left |right )?(?:arm|hand)\b|"
     r"\b(?:arm|hand) (?:up|raised|in the air|above|over)\b(?: (?:the |his |her |their )?head\b)?|\bhand up\b|"
     r"\barm up\b",
     "arm_raised"),
)
FACING: tuple[tuple[str, str], ...] = (
    (r"\bback (?:is )?(?:turned )?to (?:the (?:camera|lens|viewer|photographer)\b|the |us|me)|"
     r"\bfacing away\b|\bfrom behind\b|\bturned away\b|"
     r"\blooking away\b|\b(?:riding|walking|cycling|heading|going|moving) away\b|"
     r"\bwith (?:his |her |their )?back\b|\bback towards?\b|\bshowing (?:his |her )?back\b",
     "away"),
    (r"\bfacing (?:the camera|us|me|forward|the front)\b|\blooking (?:at|into) (?:the camera|us|me)\b|"
     r"\bfaces the camera\b", "camera"),
    (r"\bin profile\b|\bsideways\b|\bside view\b|\bfacing (?:left|right|sideways)\b", "side"),
)
SIDE_WORDS = {"left": "left", "right": "right", "left-hand": "left", "right-hand": "right", "lefthand": "left",
              "righthand": "right"}  # the side an ordinal counts from
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5,
            "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "last": -1, "penultimate": -2}
POSITION_WORDS = {"left": "left", "leftmost": "left", "right": "right", "rightmost": "right", "middle": "middle",
                  "center": "middle", "centre": "middle", "central": "middle", "between": "middle",
                  "top": "top", "highest": "top", "bottom": "bottom", "lowest": "bottom", "left-hand": "left",
                  "right-hand": "right", "lefthand": "left", "righthand": "right", "higher": "top", "uppermost": "top",
                  "lower": "bottom"}
# Words that say what a person's garment leaves bare or covers (measured as skin).
SKIN_WORDS = {"shirtless": "bare_torso", "bare-chested": "bare_torso", "barechested": "bare_torso",
              "topless": "bare_torso", "bare-chest": "bare_torso", "short-sleeved": "bare_arms",
              "sleeveless": "bare_arms", "long-sleeved": "covered_arms", "bare-legged": "bare_legs"}
DISTANCE_WORDS = {"closest": "near", "nearest": "near", "closer": "near", "nearer": "near", "front": "near",
                  "foreground": "near", "farthest": "far", "furthest": "far", "farther": "far", "further": "far",
                  "background": "far", "back": "far", "distant": "far", "far": "far", "deepest": "far",
                  "remotest": "far"}
# what "closest to ..." may be measured from: the camera (a distance), not a thing in the scene
CAMERA_WORDS = {"camera", "lens", "us", "me", "viewer", "photographer", "front", "foreground", "robot", "you", "picture",
                "photo", "image", "shot"}
# cut off by the image's edge: "the man cut off by the left edge", "half out of the shot on the left"
EDGE = re.compile(r"\b(?:cut off|cut by|(?:half|partly|partially) out of (?:the )?(?:shot|frame|picture|image|photo)|"
                  r"out of (?:the )?(?:shot|frame))\b|\bedges?\b(?: of (?:the )?(?:shot|frame|picture|image|photo)\b|"
                  r"(?! of (?:the |a )?(?!(?:shot|frame|picture|image|photo)\b)\w))")  # not "the edge of the pool"
# one colour over the whole body: "dressed all in black", "in white from head to toe"
HEAD_TO_TOE = re.compile(r"\b(?:from )?head[ -]to[ -](?:toe|foot|feet)\b")
ALL_OVER = re.compile(r"\b(?:all|entirely|completely|totally|wholly)(?: dressed)? in\b|" + HEAD_TO_TOE.pattern)
BETWEEN = re.compile(r"\b(?:in between|between)\b")
RELATIONS: tuple[tuple[str, str], ...] = (
    (r"\b(?:next to|beside|besides|alongside|near|close to|by the side of)\b", "next_to"),
    (r"\b(?:to the left of|left of|on the left of)\b", "left_of"),
    (r"\b(?:to the right of|right of|on the right of)\b", "right_of"),
    (r"\bbehind\b", "behind"),
    (r"\bin front of\b", "in_front_of"),
)
HOLD_WORDS = {"holding", "holds", "hold", "carrying", "carries", "carry", "grabbing", "with", "has", "having",
              "catching", "throwing", "dribbling", "clutching", "gripping", "using", "drinking", "eating",
              "reading", "kicking", "bouncing", "playing"}
NEAR_WORDS = {"near", "beside", "by", "next", "on", "at", "behind", "under", "against", "leaning"}
PATTERNS = {"striped": "striped", "stripes": "striped", "stripy": "striped", "stripey": "striped",
            "pinstriped": "striped", "pinstripe": "striped", "patterned": "patterned", "pattern": "patterned",
            "checked": "patterned", "checkered": "patterned", "chequered": "patterned", "plaid": "patterned",
            "tartan": "patterned", "floral": "patterned", "flowery": "patterned", "polka": "patterned",
            "dotted": "patterned", "spotted": "patterned", "printed": "patterned", "print": "patterned",
            "camo": "patterned", "camouflage": "patterned", "plain": "plain", "solid": "plain",
            "flowered": "patterned", "hawaiian": "patterned", "paisley": "patterned", "stripe": "striped"}
NEGATORS = {"not", "no", "without", "never", "nor", "non", "except", "excluding"}
NOT_THE = re.compile(r"\b(?:but not|not|except|except for|other than|apart from)\s+(?=(?:the|that|this)\b)")
# colour names that are everyday words too: they name a colour only right after "in", "wearing", ...
# or right before a garment noun.
COLOUR_CONTEXT = {"in", "wearing", "wears", "dressed", "all", "and", "or", "the", "a", "an", "her", "his",
                  "their", "with", "mostly", "mainly", "bright", "dark", "light", "pale", "deep"}
BASIC_COLOURS = {"black", "white", "grey", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink",
                 "brown", "beige", "navy", "maroon", "burgundy", "teal", "turquoise", "olive", "khaki", "cream",
                 "tan", "gold", "silver", "violet", "magenta", "lilac", "lavender", "cyan", "crimson", "scarlet",
                 "mustard", "denim", "indigo", "charcoal", "ivory", "coral", "mint", "peach", "salmon", "rust"}
TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[,;.?!]")


def clean(text: str) -> str:
    t = " " + text.lower().replace("\u2019", "'") + " "
    for a, b in CONTRACTIONS:
        t = t.replace(a, b)
    t = re.sub(r"\bsecond[- ]to[- ]last\b|\bnext[- ]to[- ]last\b", "penultimate", t)
    t = re.sub(r"\.\.+|\s-+\s|[:;]", " , ", t)
    t = re.sub(r"[?!\"()]|\.(?=\s|$)", " ", t)
    t = re.sub(r"\s*,\s*", " , ", t)
    return " ".join(t.split()).strip(" ,")


# words after a colour that end its phrase: the colour waits for no garment after them
COLOUR_ENDS = {"with", "holding", "carrying", "wearing", "on", "at", "near", "by", "next", "beside", "behind", "who",
               "that", "which", "sitting", "standing", "walking"}


class QuestionParser:
    """Question -> Request (thread-safe; vocabularies loaded once)."""

    def __init__(self, colours: ColourNames | None = None, lexicon: Lexicon | None = None) -> None:
        self.colours = colours or ColourNames.shipped()
        self.lex = lexicon or Lexicon.shipped()

    # -- top level ------------------------------------------------------------------------
    def parse(self, question: str) -> Request:
        text = clean(question)
        active, corrected = self._after_correction(text)
        if CHAT.match(active) and not self._mentions_people(active):
            return Request("chat", text=text, active=active, corrected=corrected)
        if IMAGINE.search(active):
            return Request("imagine", text=text, active=active, corrected=corrected)
        if COUNT.search(active):
            body = COUNT.split(active, maxsplit=1)[-1]
            body = re.sub(r"^\s*(?:of )?(?:the )?", "", body)
            body = re.sub(r"\b(?:are there|are in (?:the |this )?(?:image|picture|photo|scene)|can you see|do you see|"
                          r"are visible|are)\b", " ", body)
            ref, pred = self._reference_and_predicate(body, count=True)
            return Request("count", ref, pred, text, active, corrected)
        words = active.split()
        if words and words[0] in AUX and not re.match(r"^(?:can you|could you|would you|will you)\b", active):
            body = " ".join(words[1:])
            if re.match(r"^there (?:a |an |any(?:one|body)? |some(?:one|body)? )", body):  # is there anyone in red?
                ref, pred = self._reference_and_predicate(re.sub(r"^there ", "", body), count=True)
                return Request("count", ref, pred, text, active, corrected, notes=("exists",))
            ref, pred = self._reference_and_predicate(body, count=False)
            if ref.head in {"anyone", "anybody", "someone", "somebody", "everyone", "everybody"} and pred:
                return Request("count", ref, pred, text, active, corrected, notes=("exists",))  # is anybody lying?
            return Request("yes_no", ref, pred, text, active, corrected)
        if DESCRIBE.search(active):
            body = re.sub(r"^(?:what is|what are|what does|describe|tell me about)\s*", "", active)
            body = re.sub(r"\b(?:doing|wearing|holding|look like|up to)\b.*$", "", body)
            return Request("describe", self.reference(body), (), text, active, corrected)
        ref = self.reference(active)
        if ref.not_person and (not ref.constraints or not ref.head):  # "the cat on the sofa": about a cat
            return Request("not_person", ref, (), text, active, corrected)
        if not ref.constraints and not ref.head and not ref.pronoun and not ref.other:
            return Request("chat", ref, (), text, active, corrected)
        return Request("person", ref, (), text, active, corrected)

    def _person_noun(self, w: str) -> bool:
        """WordNet names a person with `w` (a content word: not a stop word or a pronoun)."""
        if not w.isalpha() or w in STOP or w in PRONOUNS:
            return False
        info = self.lex.noun(w)
        return info is not None and info.kind == "person"

    def _mentions_people(self, text: str) -> bool:
        return any(w in GENERIC_PEOPLE or w in GENDERED or self._person_noun(w) for w in TOKEN.findall(text))

    @staticmethod
    def _after_correction(text: str) -> tuple[str, bool]:
        text = re.sub(r"(^|[,.;!]\s*)no\s*[,.;!]+", r"\1 no wait ", text)
        parts = CORRECTION.split(text)
        if len(parts) > 1:
            last = parts[-1].strip(" ,.;:!")
            if last:
                return last, True
        m = re.match(r"^not (?:the |that )?(.+?),\s*(?:but )?(?:the )?(.+)$", text)  # "not the man, the woman in red"
        if m:
            return m.group(2), True
        return text, False

    # -- yes/no and counts: who, and what is asked of them ------------------------------------
    def _reference_and_predicate(self, body: str, count: bool) -> tuple[Reference, tuple[Constraint, ...]]:
        """Split "the woman in the red jacket standing" into the reference and the predicate: the
        predicate starts at the last predicate word (a posture, gesture, 'wearing', 'holding'...)
        after the head noun."""
        toks = body.split()
        head_at = -1
        for i, w in enumerate(toks):
            if (w in GENERIC_PEOPLE or w in GENDERED or w in PRONOUNS or self._person_noun(w)
                    or " ".join(toks[max(0, i - 1):i + 1]) in SAME_PERSON):
                head_at = i
                break
        verbs = set(POSTURES) | MOTIONS | {"wearing", "dressed", "holding", "carrying", "facing", "raising",
                                           "pointing", "waving", "turned", "looking", "wears", "holds", "waves",
                                           "lifting", "crossing", "showing", "sitting", "standing",
                                           "have", "has", "got"}  # "does the man on the block have both arms up?"
        split = -1
        for i in range(len(toks) - 1, head_at, -1):  # the last verb-like word after the head noun
            if toks[i] in verbs:
                split = i
                break
        if split != -1:  # a verb right after another verb belongs with it ("standing holding")
            while split - 1 > head_at and toks[split - 1] in verbs:
                split -= 1
        if split == -1 and count and head_at != -1:  # "how many people are on the couch"
            for i in range(head_at + 1, len(toks)):
                if toks[i] in {"in", "on", "with", "at", "near", "by", "holding", "wearing"}:
                    split = i
                    break
        if (split <= head_at or split == -1) and not count and head_at != -1:
            # "is the person on the right in shorts?": the last "in" / "with" phrase is asked, when
            # what comes before it still describes someone
            for i in range(len(toks) - 1, head_at + 1, -1):
                if toks[i] in {"in", "with"}:
                    ref = self.reference(" ".join(toks[:i]))
                    pred = self.reference(" ".join(toks[i:])).constraints
                    if pred and any(c.kind not in ("unchecked", "garment") for c in ref.constraints):
                        return ref, pred
                    break
        if split <= head_at or split == -1:
            ref = self.reference(body)
            return ref, ()
        ref = self.reference(" ".join(toks[:split]))
        pred = self.reference(" ".join(toks[split:])).constraints
        return ref, pred

    # -- a description of one person --------------------------------------------------------
    def reference(self, text: str) -> Reference:
        text = text.strip(" ,.?!;")
        other = bool(OTHER.search(text))
        if other:
            text = OTHER.sub(" ", text)
        constraints: list[Constraint] = []
        for kind, table in (("gesture", GESTURES), ("facing", FACING)):  # the first phrase of each kind
            for pattern, value in table:
                m = re.search(pattern, text)
                if m:
                    neg = self._negated_before(text, m.start())
                    constraints.append(Constraint(kind, value, m.group(0), negated=neg))
                    text = text[:m.start()] + " " + text[m.end():]
                    break
        # "not the man in the dark t-shirt": not that person (the whole description, not each word)
        while (m := NOT_THE.search(text)) is not None:
            rest = text[m.end():].strip()
            sub = self._sub_reference(rest)
            if sub is None or sub[0].pronoun:
                break
            sub_ref, used = sub
            constraints.append(Constraint("relation", "not", m.group(0).strip() + " " + used, ref=sub_ref))
            text = (text[:m.start()] + " " + rest[len(used):]).strip()
        m = EDGE.search(text)
        if m is not None:  # "cut off on the right side", "the left edge": the side it is cut off on
            near = text[:m.start()].split()[-2:] + text[m.end():].split()[:5]
            side = next((SIDE_WORDS[w] for w in near if w in SIDE_WORDS), "")
            constraints.append(Constraint("position", f"edge_{side}" if side else "edge", m.group(0),
                                          negated=self._negated_before(text, m.start())))
            text = text[:m.start()] + " " + text[m.end():]
        # between two others: "the kid between the blue one and the green one"
        m = BETWEEN.search(text)
        if m is not None and (pair := self._two_references(text[m.end():].strip())) is not None:
            first, second, used = pair
            constraints.append(Constraint("relation", "between", m.group(0) + " " + used, ref=first, ref2=second))
            text = (text[:m.start()] + " " + text[m.end():].strip()[len(used):]).strip()
        # a relation to another person: "the man next to the woman in red"
        for pattern, rel in RELATIONS:
            m = re.search(pattern, text)
            if not m:
                continue
            rest = text[m.end():].strip()
            sub = self._sub_reference(rest)
            if sub is None:  # "with the ball", "near the car": an object or attribute, not a person
                continue
            sub_ref, used = sub
            if sub_ref.pronoun and self._has_own_head(text[:m.start()]):  # "the girl ... beside her": herself
                continue
            constraints.append(Constraint("relation", rel, m.group(0) + " " + used, ref=sub_ref))
            text = (text[:m.start()] + " " + rest[len(used):]).strip()
            break
        all_over = ALL_OVER.search(text) is not None  # "all in black", "in white from head to toe"
        text = HEAD_TO_TOE.sub(" ", text)
        head, not_person, rest = self._scan(TOKEN.findall(text), constraints, "full" if all_over else "any")
        generic = head in GENERIC_PEOPLE or not head
        pronoun = any(s in text for s in SAME_PERSON) or (generic and not other and bool(
            re.search(r"(?<!of )\b(?:he|she|him|they|them)\b|\bher\b(?!\s+[a-z]+\b)", text)))
        if head in {"nobody", "no one", "none"}:
            return Reference((), "", False, False, head)
        return Reference(tuple(rest), head, pronoun, other, not_person)

    def _two_references(self, rest: str) -> tuple[Reference, Reference, str] | None:
        """Two people's descriptions joined by "and" at the start of `rest` ("the blue one and the
        green one"), with the words they used; None unless both are people."""
        first = self._sub_reference(rest)
        if first is None:
            return None
        after = rest[len(first[1]):].strip()
        if not after.startswith("and "):
            return None
        second = self._sub_reference(after[4:].strip())
        if second is None:
            return None
        return first[0], second[0], f"{first[1]} and {second[1]}"

    def _has_own_head(self, text: str) -> bool:
        """True when `text` names its own person with a noun that is not generic ("the girl")."""
        return any(w in GENDERED or (w not in GENERIC_PEOPLE and self._person_noun(w)) for w in text.split())

    def _sub_reference(self, rest: str) -> tuple[Reference, str] | None:
        """The description of another person at the start of `rest` ("the woman in red who ..."),
        with the words it used; None when it does not start with a person noun phrase."""
        toks = rest.split()
        for i, w in enumerate(toks[:4]):
            colour = w not in GENDERED and self._is_colour_at(toks, i)[0]  # "the grey armchairs": grey is no person
            if w in PRONOUNS or w in GENDERED or w in GENERIC_PEOPLE - {"who", "whoever"} or (
                    not colour and self._person_noun(w)):
                # the other person's description runs to the end, or to a clause word
                end = len(toks)
                for j in range(i + 1, len(toks)):
                    if toks[j] in {"who", "that", "and", "but", "which"}:
                        end = j
                        break
                used = " ".join(toks[:end])
                return self.reference(used) if w not in PRONOUNS else Reference(head=w, pronoun=True), used
            if w not in {"the", "a", "an", "that", "this", "one", "other", "two", "tall", "short"} and not colour \
                    and not (w in SKIN_WORDS or self.lex.is_adjective(w) and not self.lex.is_noun(w)):
                return None  # a thing ("near the car"), not a person; adjectives ("the shirtless man") pass
        return None

    @staticmethod
    def _negated_before(text: str, at: int) -> bool:
        before = text[:at].split()[-3:]
        return any(w in NEGATORS for w in before)

    def _is_colour_at(self, toks: list[str], i: int) -> tuple[str, int]:
        """The longest colour name starting at toks[i] -> (name, number of tokens); ("", 0)."""
        for n in range(min(self.colours.max_words, len(toks) - i), 0, -1):
            phrase = " ".join(toks[i:i + n])
            if phrase in self.colours:
                return self.colours.normalise(phrase), n
            if n == 1 and phrase.endswith("ish") and phrase[:-3] in self.colours:  # "reddish"
                return self.colours.normalise(phrase[:-3]), 1
            if n == 1 and phrase.endswith("dish") and phrase[:-4] in self.colours:
                return self.colours.normalise(phrase[:-4]), 1
        return "", 0

    def _scan(self, toks: list[str], out: list[Constraint], bare: str = "any") -> tuple[str, str, list[Constraint]]:
        """One pass over a description's tokens: colours (attached to the garment that follows),
        patterns, garments, head noun, positions, ordinals, distances, postures, objects, words
        perception cannot check. `bare`: the region of a colour on no garment ("full" for "all in
        black"). Returns (head noun, not-a-person noun, constraints)."""
        head, not_person = "", ""
        pending_colours: list[tuple[str, str, bool]] = []  # (colour, words, negated) waiting for a garment
        pending_pattern: tuple[str, str, bool] | None = None
        negate = False
        scoped = False  # "except ...": every constraint up to the next clause boundary is negated
        object_mode = ""  # "holding" / "near" after a verb or preposition that takes an object
        i = 0

        def flush(region: str, garment_words: str) -> None:
            nonlocal pending_pattern
            for name, words, neg in pending_colours:
                out.append(Constraint("colour", name, (words + " " + garment_words).strip(), region=region,
                                      negated=neg))
            pending_colours.clear()
            if pending_pattern is not None:
                out.append(Constraint("pattern", pending_pattern[0], (pending_pattern[1] + " " + garment_words).strip(),
                                      region=region, negated=pending_pattern[2]))
                pending_pattern = None

        while i < len(toks):
            w = toks[i]
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            prev = toks[i - 1] if i > 0 else ""
            if scoped and w in {",", ";", "but", "who", "that", "which"}:
                scoped = False
            negate = negate or scoped
            if w in {",", ";", ".", "?", "!", "but", "who", "that", "which", "and"} and w != "and":
                colour_list = w == "," and bool(self._is_colour_at(toks, i + 1)[0])  # "not red, blue or green"
                negate = False if w in {",", ";", "but"} and not colour_list else negate
                object_mode = "" if w in {",", ";", "but", "who", "which", "that"} else object_mode
                i += 1
                continue
            if w in NEGATORS:
                negate = True
                scoped = scoped or w in {"except", "excluding"}
                i += 1
                continue
            if w in HOLD_WORDS and w != "with":
                object_mode = "holding"
                i += 1
                continue
            if w == "with":
                object_mode = "holding"
                i += 1
                continue
            if w == "front" and prev == "in" and nxt == "of":  # "in front of the armchairs": near them
                object_mode = object_mode or "near"
                i += 2
                continue
            if w in NEAR_WORDS and w not in {"back"}:
                object_mode = object_mode or "near"
            # ordinals: "second from the left", "the third one from the right", "last on the right"
            if w in ORDINALS:
                side = ""
                for j in range(i + 1, min(len(toks), i + 9)):  # "third one along counting from the left"
                    if toks[j] in SIDE_WORDS:
                        side = SIDE_WORDS[toks[j]]
                        break
                    if toks[j] in {"top", "bottom"}:
                        side = ""
                        break
                if side or nxt in {"person", "one", "man", "woman", "guy", "girl", "boy", "lady", "kid", "from"}:
                    k = ORDINALS[w]
                    from_side = side and "from" in toks[i + 1:j]
                    side = side or "left"
                    if k < 0 and (from_side or not side):  # "last from the left" = 1st from the right
                        k, side = -k, ("right" if side == "left" else "left")
                    elif k < 0:  # "the last one on the right" = the rightmost
                        k = -k
                    span = " ".join(toks[i:j + 1]) if side and j < len(toks) else w
                    out.append(Constraint("ordinal", side, span, k=k, negated=negate))
                    for noun in toks[i + 1:j]:  # "the second woman from the left": counted among women
                        if noun in GENDERED:
                            head = head or noun
                            out.append(Constraint("unchecked", GENDERED[noun], noun))
                    negate = False
                    i = (j + 1) if (j < len(toks) and toks[j] in SIDE_WORDS) else i + 1
                    if i < len(toks) and toks[i] == "side":  # "from the right-hand side"
                        i += 1
                    continue
            colour, n = self._is_colour_at(toks, i)
            if n:
                words = " ".join(toks[i:i + n])
                after = toks[i + n] if i + n < len(toks) else ""
                garment_after = after and self._garment(after)
                plausible = (colour in BASIC_COLOURS or colour.split()[-1] in BASIC_COLOURS or prev in COLOUR_CONTEXT
                             or garment_after or after in {"and", "or", "top", "clothes", "outfit"}
                             or words.endswith("ish"))
                if plausible and not (w in POSITION_WORDS and not garment_after) and w not in DISTANCE_WORDS:
                    pending_colours.append((colour, words, negate))
                    listed = after in {"and", "or", "nor"} or (after == "," and bool(self._is_colour_at(toks, i + n + 1)[0]))
                    negate = negate if listed else False  # "not green or denim", "not red, blue or green": none
                    if after in COLOUR_ENDS:  # "all in black with white trainers": black is on no garment
                        flush(bare, "")
                    i += n
                    continue
            if w in PATTERNS and not (w == "print" and prev not in COLOUR_CONTEXT):
                pending_pattern = (PATTERNS[w], w, negate)
                negate = False
                i += 1
                continue
            if w in POSTURES or (w + " " + nxt) in POSTURES:
                key = w + " " + nxt if (w + " " + nxt) in POSTURES else w
                out.append(Constraint("posture", POSTURES[key], key, negated=negate))
                negate = False
                i += len(key.split())
                continue
            if w in MOTIONS:
                if w in {"playing", "kicking", "catching", "throwing", "dribbling"}:
                    object_mode = "holding"
                out.append(Constraint("motion", w, w, negated=negate))
                negate = False
                i += 1
                continue
            if w in SKIN_WORDS:
                out.append(Constraint("skin", SKIN_WORDS[w], w, negated=negate))
                negate = False
                i += 1
                continue
            if w in ("left", "right") and prev in {"the", "far", "on", "to", "most", "from", "furthest", "farthest",
                                                   "further", "farther", "extreme", "top", "bottom", "upper",
                                                   "lower"} or w in (
                    "leftmost", "rightmost", "middle", "center", "centre", "central", "highest", "lowest",
                    "between", "left-hand", "right-hand", "lefthand", "righthand", "uppermost") or (
                    w in ("higher", "lower") and nxt in {"up", "down", "in", "than"}) or (
                    w in ("top", "bottom") and prev in {"the", "at", "on", "very"} and not self._garment(nxt)):
                if not (w in ("left", "right") and prev == "from"):
                    out.append(Constraint("position", POSITION_WORDS[w], w, negated=negate))
                    negate = False
                i += 1
                continue
            if w in DISTANCE_WORDS and (nxt in {"left", "right"} or (nxt == "to" and toks[i + 2:i + 4] in (
                    ["the", "left"], ["the", "right"]))):  # "furthest to the left": a position
                i += 1
                continue
            if w in {"closest", "nearest", "closer", "nearer"}:  # "nearest the wooden crate": near a thing
                j = i + 1 + (nxt == "to")
                ahead = toks[j:j + 4]
                if ahead[:1] and ahead[0] in {"the", "a", "an", "that", "this"} and CAMERA_WORDS.isdisjoint(ahead):
                    object_mode = "near"
                    i = j + 1
                    continue
            if w in DISTANCE_WORDS and not (w == "back" and nxt in {"to", "turned"}) and not (
                    w == "front" and prev == "in" and nxt == "of") and not (
                    nxt in {"left", "right"} or (nxt == "to" and toks[i + 2:i + 4] in (["the", "left"], ["the", "right"]))):
                if w in {"closest", "nearest", "closer", "nearer", "farthest", "furthest", "farther", "further",
                         "deepest", "remotest"} or \
                        prev in {"the", "in", "at", "far", "very"} or nxt in {"row", "of"}:
                    tail = nxt in {"back", "away", "off", "forward", "front", "behind"}  # "furthest back": one distance
                    out.append(Constraint("distance", DISTANCE_WORDS[w], f"{w} {nxt}" if tail else w, negated=negate))
                    negate = False
                    i += 2 if tail else 1
                    continue
            if w in GENDERED:
                if not head:
                    head = w
                out.append(Constraint("unchecked", GENDERED[w], w, negated=negate))
                negate = False
                i += 1
                continue
            if w in GENERIC_PEOPLE:
                head = head or w
                i += 1
                continue
            if w in STOP or w in PRONOUNS or not w.isalpha() and "-" not in w:
                i += 1
                continue
            # a compound noun first ("tank top", "tennis racket", "lamp post")
            two = w + " " + nxt if nxt else ""
            info = self.lex.noun(two) if two and self.lex.is_noun(two.replace(" ", "_")) else None
            used = 2 if info is not None else 1
            info = info or self.lex.noun(w)
            if info is None:
                if (self.lex.is_adjective(w) or not self.lex.wn.synsets(w)) and len(w) > 2 and w not in {
                        "other", "same", "next", "last", "first", "else", "whose", "either", "neither", "any", "each"}:
                    out.append(Constraint("unchecked", "adjective" if self.lex.is_adjective(w) else "word", w,
                                          negated=negate))
                    negate = False
                i += 1
                continue
            words = " ".join(toks[i:i + used])
            if info.kind == "garment":
                region = info.region
                if region in {"head", "face", "feet", "hands", "neck"}:
                    for name, cw, neg in pending_colours:  # a red hat: colour on a region not measured
                        out.append(Constraint("unchecked", region, cw + " " + words, negated=neg))
                    pending_colours.clear()
                    out.append(Constraint("unchecked", region, words, negated=negate))
                else:
                    had = bool(pending_colours) or pending_pattern is not None
                    if region == "any" and w in {"denim"}:
                        region = "lower"
                    flush(region, words)
                    if w == "denim" and not had:
                        out.append(Constraint("colour", "denim", words, region=region, negated=negate))
                    if info.skin:  # what the garment leaves bare or covers is measured
                        out.append(Constraint("skin", info.skin, words, region=region, negated=negate))
                    else:
                        out.append(Constraint("garment", info.lemma.replace("_", " "), words, region=region,
                                              negated=negate))
                object_mode = ""
                negate = False
            elif info.kind == "person" or (gender_of(w) and info.kind == "other"):  # "mum" (WordNet: a flower first)
                head = head or words
                base = (self.lex.lemma(w) or w) if used == 1 else words
                if gender_of(w, self.lex):  # "the policeman", "the sportswoman": a gender, checked on faces
                    out.append(Constraint("unchecked", "gender", words, negated=negate))
                if base in ROLE_OBJECTS:  # "the cyclist": the person with a bicycle
                    out.append(Constraint("object", "near", words, coco=ROLE_OBJECTS[base], negated=negate))
                elif base not in ORDINARY_PEOPLE and w not in ORDINARY_PEOPLE:
                    # "the drummer", "the grandma", "the police officer": a role, said as not checked
                    out.append(Constraint("unchecked", "role", words, negated=negate))
                negate = False
                if object_mode:
                    object_mode = ""
            elif info.kind == "body":
                out.append(Constraint("unchecked", "body", " ".join(c[1] for c in pending_colours) + " " + words
                                      if pending_colours else words, negated=negate))
                pending_colours.clear()
                negate = False
            elif info.kind == "animal" and not object_mode and not head:
                not_person = words
            elif info.kind in {"object", "animal", "other"} and (object_mode or info.kind != "other"):
                # riding a horse, on a bike: hands on it (a wrist at its box); in the car, by the bench: with it
                before = set(toks[max(0, i - 3):i])
                ridden = bool(RIDE_WORDS & before) and set(info.coco) <= RIDEABLE
                rel = "near" if object_mode == "near" or (ON_WORDS & before and not ridden) else "holding"
                if INSIDE_WORDS & before and set(info.coco) <= VEHICLES:
                    rel = "inside"  # in the car: seen from inside, a car is no object in view
                for _name, cw, neg in pending_colours:  # "the grey armchairs": the thing's colour, not checked
                    out.append(Constraint("unchecked", "object", cw + " " + words, negated=neg))
                pending_colours.clear()
                if info.coco:
                    out.append(Constraint("object", rel, words, coco=info.coco, negated=negate))
                else:
                    out.append(Constraint("unchecked", "object", words, negated=negate))
                negate = False
                object_mode = ""
            elif info.kind == "other" and w not in FILLER_NOUNS and w not in POSITION_WORDS and w not in SIDE_WORDS \
                    and w not in DISTANCE_WORDS and w not in ORDINALS and w not in ORDINARY_PEOPLE:
                # "smoking", "a cigar": kept, as not checked
                out.append(Constraint("unchecked", "word", words, negated=negate))
                negate = False
            i += used
        if pending_colours or pending_pattern is not None:
            flush(bare, "")
        return head, not_person, out

    def _garment(self, word: str) -> bool:
        if not word or not word.isalpha() and "-" not in word:
            return False
        info = self.lex.noun(word)
        return info is not None and info.kind == "garment"

