"""What a noun is, from WordNet 3.0 (Debian `wordnet-base`, read with NLTK's reader).

    lex = Lexicon.shipped()
    lex.noun("goalkeeper").kind      # "person"
    lex.noun("cardigan").region      # "upper" (a garment and the body region it covers)
    lex.noun("basketball").coco      # ("sports ball",)
    lex.noun("dog").kind             # "animal": not a person

The kind comes from the word's most frequent sense (WordNet's first synset: "dog" also has a rare
person sense); object classes look through every sense, most frequent first, for one under a COCO
class's synsets ("basketball" is first the game, then the ball). Words newer than WordNet 3.0
("hoodie") are in EXTRA_GARMENTS. No ROS, no model.

WordNet's files are read from /usr/share/wordnet (installed by scripts/setup.sh); NLTK refuses
data folders outside its allowed roots, so they are copied once into a private NLTK data folder
(``$CHATPOSE_CACHE`` or ``~/.cache/chatpose_ros``/nltk_data/corpora/wordnet, with the 45-line
`lexnames` file Debian does not ship).
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from chatpose_ros.core.errors import ModelLoadError

log = logging.getLogger(__name__)

WORDNET_SYSTEM_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "index.noun", "noun.exc", "data.verb", "index.verb", "verb.exc", "data.adj",
                 "index.adj", "adj.exc", "data.adv", "index.adv", "adv.exc", "index.sense")
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl").split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

# Body regions a garment covers: "upper" (torso, arms), "lower" (hips, legs), "full" (both),
# "head", "feet", "hands", "neck", "face" (regions perception does not measure colours on).
GARMENT_REGIONS: tuple[tuple[str, str], ...] = (  # first hypernym found on the path wins (most specific first)
    ("dress.n.01", "full"), ("gown.n.01", "full"), ("robe.n.01", "full"), ("jumpsuit.n.01", "full"),
    ("overall.n.01", "full"), ("jump_suit.n.01", "full"), ("overcoat.n.01", "full"), ("suit.n.01", "full"),
    ("uniform.n.01", "full"),
    ("swimsuit.n.01", "full"), ("coverall.n.01", "full"),
    ("trouser.n.01", "lower"), ("skirt.n.01", "lower"), ("skirt.n.02", "lower"), ("short_pants.n.01", "lower"),
    ("stocking.n.01", "lower"), ("tights.n.01", "lower"),
    ("headdress.n.01", "head"), ("spectacles.n.01", "face"), ("mask.n.01", "face"),
    ("footwear.n.01", "feet"), ("footwear.n.02", "feet"), ("glove.n.02", "hands"), ("neckwear.n.01", "neck"),
    ("scarf.n.01", "neck"),
    ("coat.n.01", "upper"), ("jacket.n.01", "upper"), ("sweater.n.01", "upper"), ("shirt.n.01", "upper"),
    ("top.n.10", "upper"), ("blouse.n.01", "upper"), ("vest.n.01", "upper"), ("waistcoat.n.01", "upper"),
    ("cape.n.02", "upper"), ("sweatshirt.n.01", "upper"), ("jersey.n.03", "upper"),
    ("clothing.n.01", "any"), ("fabric.n.01", "any"),
)
# A noun is a garment when one of its frequent senses falls under one of these (things worn on
# the head, face and feet included: they are named in answers as what cannot be checked).
GARMENT_ROOTS = frozenset({"clothing.n.01", "fabric.n.01", "spectacles.n.01", "headdress.n.01", "footwear.n.01",
                           "footwear.n.02"})
# Garment words newer than WordNet 3.0 or missing from it.
EXTRA_GARMENTS: dict[str, str] = {
    "hoodie": "upper", "hoody": "upper", "tee": "upper", "t-shirt": "upper", "tshirt": "upper", "tank": "upper",
    "top": "upper", "leggings": "lower", "joggers": "lower", "sweatpants": "lower", "trousers": "lower",
    "pants": "lower", "jeans": "lower", "shorts": "lower", "outfit": "any", "clothes": "any", "clothing": "any",
    "romper": "full", "onesie": "full", "puffer": "upper", "parka": "upper", "fleece": "upper",
    "jumper": "upper", "jumpers": "upper",  # British for sweater (WordNet's first sense is a person who jumps)
    "trainers": "feet",  # British for sneakers (WordNet's first sense is a person who trains)
    # everyday garment words WordNet lacks or places elsewhere (WordNet's "polo" is Marco Polo, "slip" no
    # garment; "flannel", "tuxedo", "nightie" any region)
    "polo": "upper", "cardi": "upper", "cardie": "upper", "v-neck": "upper", "button-down": "upper",
    "zip-up": "upper", "gilet": "upper", "cami": "upper", "camisole": "upper", "singlet": "upper", "flannel": "upper",
    "tracksuit": "full", "pjs": "full", "bodysuit": "full", "slip": "full", "nightie": "full", "leotard": "full",
    "dungarees": "full", "tux": "full", "tuxedo": "full", "sweats": "full",
    "trackies": "lower", "trackie": "lower", "trackpants": "lower", "jeggings": "lower", "khakis": "lower",
    "capris": "lower", "skort": "lower", "hotpants": "lower",
}
# What a garment leaves bare or covers, where the skin measure can see it (forearms, shins, torso):
# the first synset of the garment's closure found here decides ("shorts" are trousers too).
SKIN_SYNSETS: tuple[tuple[str, str], ...] = (
    ("short_pants.n.01", "bare_legs"), ("skirt.n.02", "bare_legs"), ("trouser.n.01", "covered_legs"),
    ("jersey.n.03", "bare_arms"), ("tank_top.n.01", "bare_arms"), ("singlet.n.01", "bare_arms"),
    ("coat.n.01", "covered_arms"), ("jacket.n.01", "covered_arms"), ("sweater.n.01", "covered_arms"),
    ("sweatshirt.n.01", "covered_arms"),
)
EXTRA_SKIN: dict[str, str] = {
    "tee": "bare_arms", "t-shirt": "bare_arms", "tshirt": "bare_arms", "tank": "bare_arms", "hoodie": "covered_arms",
    "hoody": "covered_arms", "puffer": "covered_arms", "parka": "covered_arms", "fleece": "covered_arms",
    "jumper": "covered_arms", "jumpers": "covered_arms", "leggings": "covered_legs", "joggers": "covered_legs",
    "sweatpants": "covered_legs", "trousers": "covered_legs", "pants": "covered_legs", "jeans": "covered_legs",
    "shorts": "bare_legs", "cardi": "covered_arms", "cardie": "covered_arms", "zip-up": "covered_arms",
    "cami": "bare_arms", "camisole": "bare_arms", "singlet": "bare_arms", "tracksuit": "covered_arms",
    "tux": "covered_arms", "tuxedo": "covered_arms", "trackies": "covered_legs", "trackie": "covered_legs",
    "trackpants": "covered_legs", "jeggings": "covered_legs", "khakis": "covered_legs", "skort": "bare_legs",
    "hotpants": "bare_legs",
}
# COCO classes (perception's object detector) and the WordNet synsets under which a noun names them.
COCO_SYNSETS: dict[str, tuple[str, ...]] = {
    "sports ball": ("ball.n.01",), "cell phone": ("telephone.n.01", "cellular_telephone.n.01"),
    "cup": ("cup.n.01", "mug.n.04", "beverage.n.01", "drinking_vessel.n.01"), "bottle": ("bottle.n.01",),
    "wine glass": ("wineglass.n.01",), "umbrella": ("umbrella.n.01",), "handbag": ("bag.n.04", "bag.n.01"),
    "backpack": ("backpack.n.01",), "suitcase": ("bag.n.06",), "bicycle": ("bicycle.n.01",),
    "motorcycle": ("motorcycle.n.01",), "car": ("car.n.01",), "bus": ("bus.n.01",), "chair": ("chair.n.01",),
    "bench": ("bench.n.01",), "couch": ("sofa.n.01",), "laptop": ("laptop.n.01",), "book": ("book.n.01",),
    "skateboard": ("skateboard.n.01",), "surfboard": ("surfboard.n.01",), "tennis racket": ("tennis_racket.n.01",),
    "baseball bat": ("baseball_bat.n.01",), "baseball glove": ("baseball_glove.n.01",), "frisbee": ("frisbee.n.01",),
    "kite": ("kite.n.03",), "skis": ("ski.n.01",), "snowboard": ("snowboard.n.01",), "dog": ("dog.n.01",),
    "cat": ("cat.n.01",), "horse": ("horse.n.01",), "bird": ("bird.n.01",), "tie": ("necktie.n.01",),
    "remote": ("remote_control.n.01",), "keyboard": ("keyboard.n.01",), "mouse": ("mouse.n.04",),
    "tv": ("television_receiver.n.01",), "clock": ("clock.n.01",), "vase": ("vase.n.01",),
    "scissors": ("scissors.n.01",), "teddy bear": ("teddy.n.01",), "toothbrush": ("toothbrush.n.01",),
    "dining table": ("table.n.02",), "potted plant": ("pot_plant.n.01",), "traffic light": ("traffic_light.n.01",),
    "stop sign": ("street_sign.n.01",), "fire hydrant": ("fireplug.n.01",), "banana": ("banana.n.02",),
    "apple": ("apple.n.01",), "sandwich": ("sandwich.n.01",), "pizza": ("pizza.n.01",), "cake": ("cake.n.03",),
    "donut": ("doughnut.n.02",),
}


# People named by what they ride or carry, where that is a COCO object perception looks for: the
# object is checked ("the cyclist" is the person with a bicycle, "the surfer" the one with a board).
ROLE_OBJECTS: dict[str, tuple[str, ...]] = {
    "cyclist": ("bicycle",), "bicyclist": ("bicycle",), "biker": ("bicycle", "motorcycle"),
    "motorcyclist": ("motorcycle",), "motorbiker": ("motorcycle",), "rider": ("horse", "bicycle", "motorcycle"),
    "horseman": ("horse",), "horsewoman": ("horse",), "equestrian": ("horse",), "jockey": ("horse",),
    "surfer": ("surfboard",), "skier": ("skis",), "snowboarder": ("snowboard",), "skateboarder": ("skateboard",),
    "batter": ("baseball bat",), "batsman": ("baseball bat",),
}
# Person nouns that say no more than "a person" (not a role, age or gender to check).
ORDINARY_PEOPLE = frozenset({
    "pedestrian", "passerby", "passer-by", "folk", "folks", "member", "friend", "individual", "human", "figure",
    "character", "guest", "bystander", "onlooker", "citizen", "people", "persons", "person", "one",
    # a gender and nothing more (the gender is checked on faces)
    "man", "woman", "guy", "lady", "gentleman", "boy", "girl", "male", "female", "dude", "gal", "bloke", "chap",
    "lad", "lass", "fella", "fellow", "gent", "sir", "madam", "mister", "schoolboy", "schoolgirl"})


MALE_WORDS = frozenset({
    "man", "men", "guy", "guys", "gentleman", "gentlemen", "boy", "boys", "male", "males", "dude", "dudes", "fellow",
    "fellows", "bloke", "blokes", "chap", "chaps", "lad", "lads", "husband", "father", "dad", "grandpa",
    "grandfather", "king", "monk", "sir", "mister", "son", "brother", "uncle", "groom", "boyfriend", "actor",
    "waiter", "schoolboy"})
FEMALE_WORDS = frozenset({
    "woman", "women", "lady", "ladies", "girl", "girls", "female", "females", "gal", "gals", "lass", "lasses", "wife",
    "mother", "mom", "mum", "grandma", "grandmother", "queen", "nun", "madam", "daughter", "sister", "aunt", "bride",
    "girlfriend", "actress", "waitress", "schoolgirl"})
GENDER_SYNSETS: tuple[tuple[str, str], ...] = (  # a person noun under one of these names a gender (first wins)
    ("woman.n.01", "female"), ("female.n.02", "female"), ("girl.n.01", "female"), ("man.n.01", "male"),
    ("male.n.02", "male"), ("male_child.n.01", "male"))
NOT_GENDERED = frozenset({"human", "humans", "shaman", "layman", "ottoman", "caiman", "german", "germans"})


@functools.lru_cache(maxsize=4096)  # the grounder asks it of every gender word several times per question
def gender_of(word: str, lex: "Lexicon | None" = None) -> str:
    """"male" / "female" for a word that names a man or a woman ("guy", "ladies", "policeman",
    "sportswoman", and with `lex` any WordNet noun under man.n.01 / woman.n.01 / male.n.02 /
    female.n.02), else ""."""
    w = word.lower().strip()
    if w in MALE_WORDS:
        return "male"
    if w in FEMALE_WORDS:
        return "female"
    if w.isalpha() and w not in NOT_GENDERED:
        for suffix, gender in (("woman", "female"), ("women", "female"), ("man", "male"), ("men", "male")):
            if w.endswith(suffix) and len(w) >= len(suffix) + 3:  # policeman, sportswoman (not "human")
                return gender
    if lex is not None and w.replace(" ", "").replace("_", "").isalpha():
        synsets = lex.wn.synsets(w.replace(" ", "_"), "n")
        if synsets:
            closure = _closure(synsets[0])
            if "person.n.01" in closure:
                return next((g for name, g in GENDER_SYNSETS if name in closure), "")
    return ""


@dataclass(frozen=True)
class NounInfo:
    """What a noun names.

    Attributes:
        word: the word as asked; lemma: its WordNet base form.
        kind: "person", "garment", "object", "animal", "body" (a body part: hair, beard, arm)
            or "other".
        region: for garments, the body region it covers (GARMENT_REGIONS values), else "".
        skin: for garments, what it leaves bare or covers where skin is measured ("bare_arms",
            "covered_arms", "bare_legs", "covered_legs"), or "" when it says nothing measurable.
        coco: COCO classes the noun names (objects, animals), most likely first.
        gloss: the chosen sense's definition (for answers and debugging).
    """

    word: str
    lemma: str
    kind: str
    region: str = ""
    coco: tuple[str, ...] = ()
    gloss: str = ""
    skin: str = ""


def _nltk_root() -> Path:
    root = Path(os.environ.get("CHATPOSE_CACHE") or "~/.cache/chatpose_ros").expanduser() / "nltk_data"
    target = root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        if not (WORDNET_SYSTEM_DIR / "data.noun").is_file():
            raise ModelLoadError(f"WordNet not found in {WORDNET_SYSTEM_DIR}: install the Debian packages "
                                 "wordnet-base and wordnet-sense-index (scripts/setup.sh does)")
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for name in WORDNET_FILES:
            if (WORDNET_SYSTEM_DIR / name).is_file():
                shutil.copyfile(WORDNET_SYSTEM_DIR / name, target / name)
        lines = [f"{i:02d}\t{n}\t{_POS_NUMBER[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES)]
        (target / "lexnames").write_text("".join(lines), encoding="ascii")
        log.info("WordNet 3.0 copied from %s to %s", WORDNET_SYSTEM_DIR, target)
    return root


class Lexicon:
    """Noun lookups on WordNet, cached."""

    def __init__(self) -> None:
        import nltk  # noqa: PLC0415 - only the grounding profile needs NLTK (about 0.3 s to import)
        from nltk.corpus.reader.wordnet import WordNetCorpusReader  # noqa: PLC0415

        root = _nltk_root()
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        with warnings.catch_warnings():  # "multilingual functions are not available": not used
            warnings.simplefilter("ignore")
            self.wn = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
        self._coco = {s: cls for cls, names in COCO_SYNSETS.items() for s in names}

    @staticmethod
    @functools.cache
    def shipped() -> "Lexicon":
        return Lexicon()

    def lemma(self, word: str, pos: str = "n") -> str | None:
        return self.wn.morphy(word.lower(), pos)

    def is_noun(self, word: str) -> bool:
        return bool(self.wn.synsets(word.lower().replace(" ", "_"), "n"))

    def is_adjective(self, word: str) -> bool:
        return bool(self.wn.synsets(word.lower(), "a"))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one shipped Lexicon lives as long as the process
    def noun(self, word: str) -> NounInfo | None:
        """What `word` (a noun, singular or plural, spaces or underscores) names, or None when
        WordNet does not know it as a noun."""
        w = word.lower().strip()
        if w in EXTRA_GARMENTS:
            return NounInfo(w, w, "garment", EXTRA_GARMENTS[w], skin=EXTRA_SKIN.get(w, ""))
        synsets = self.wn.synsets(w.replace(" ", "_"), "n")
        if not synsets:
            return None
        first = synsets[0]
        lemma = first.lemmas()[0].name()
        closure = _closure(first)
        kind = "other"
        region = skin = ""
        if "person.n.01" in closure:
            kind = "person"
        elif "animal.n.01" in closure:
            kind = "animal"
        elif "body_part.n.01" in closure or "hair.n.01" in closure or "body_covering.n.01" in closure:
            kind = "body"
        else:
            for s in synsets[:3]:  # a garment in one of its frequent senses ("top", "suit")
                sc = _closure(s)
                if not sc.isdisjoint(GARMENT_ROOTS):
                    kind, region = "garment", _region(sc)
                    skin = next((cue for name, cue in SKIN_SYNSETS if name in sc), "")
                    break
        coco: list[str] = []
        for s in synsets if kind in ("other", "animal") else ():
            for name in _closure(s):
                cls = self._coco.get(name)
                if cls is not None and cls not in coco:
                    coco.append(cls)
        if kind == "other" and coco:
            kind = "object"
        elif kind == "other" and "artifact.n.01" in closure:
            kind = "object"
        return NounInfo(word, lemma, kind, region, tuple(coco), first.definition(), skin)


def _closure(synset) -> set[str]:
    """The names of a synset and every hypernym above it."""
    return {h.name() for path in synset.hypernym_paths() for h in path}


def _region(closure: set[str]) -> str:
    for name, region in GARMENT_REGIONS:
        if name in closure:
            return region
    return "any"
