"""The grounded profile's parts: colours (CIEDE2000, palettes), WordNet nouns, the question parser,
the scorers and decisions on hand-built scenes, and the profile end to end on a real photo."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from chatpose_ros.core.scene import COCO17, Attribute, ObjectRelation, Scene, SceneObject, ScenePerson
from chatpose_ros.grounding.colours import ColourNames, colour_score, delta_e, palette
from chatpose_ros.grounding.facts import (EYES_TO_SOLES, SEATED_EYES_SHARE, _behind, _head, _with_time, gestures,
                                          ground_contact, measure, region_quads)
from chatpose_ros.grounding.ground import Context, Grounder
from chatpose_ros.grounding.parse import QuestionParser


@pytest.fixture(scope="module")
def parser():
    return QuestionParser()


@pytest.fixture(scope="module")
def grounder():
    return Grounder()


def test_ciede2000_matches_sharma_reference_pairs():
    # Sharma, Wu & Dalal (2005), Table 1: pairs and their published CIEDE2000 (k_L = 1).
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 2.5, 0), (50, 0, -2.5), 4.3065),
             ((50, 2.5, 0), (73, 25, -18), 27.1492), ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
             ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
             ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082)]
    for a, b, expected in pairs:
        assert float(delta_e(a, b, k_l=1.0)) == pytest.approx(expected, abs=1e-4)


def test_colour_vocabulary_is_open_and_palettes_keep_both_colours():
    names = ColourNames.shipped()
    assert len(names.names) > 1000
    for word in ("burgundy", "navy blue", "olive green", "denim", "cream", "Navy-Blue", "grey", "gray"):
        assert word in names
    assert names.nearest(names.lab("burgundy"), 1) == ["burgundy"]
    red, navy = np.array([200, 20, 30], np.uint8), np.array([10, 20, 70], np.uint8)
    px = np.concatenate([np.tile(red, (300, 1)), np.tile(navy, (500, 1))])
    pal = palette(px)
    assert pal is not None and pal.shares[0] == pytest.approx(500 / 800, abs=0.02)
    assert colour_score(pal, names.lab("red")) > 0.5 and colour_score(pal, names.lab("navy blue")) > 0.5
    assert colour_score(pal, names.lab("yellow")) < 0.1
    assert palette(px[:5]) is None


def test_colour_names_belong_to_basic_colours():
    """A specific name fits a region of its basic colour ("cobalt blue" on an azure tee) less than its
    own colour would, and a hue is never read off a colourless one (a near-black top is not "purple")."""
    names = ColourNames.shipped()
    assert (names.category("cobalt blue"), names.category("burgundy"), names.category("grass green")) == (
        "blue", "red", "green")
    azure = palette(np.tile(np.array([[60, 150, 230]], np.uint8), (200, 1)))
    black = palette(np.tile(np.array([[20, 22, 28]], np.uint8), (200, 1)))
    assert 0.5 <= names.score(azure, "cobalt blue") < names.score(azure, "azure")
    assert names.score(black, "purple") == colour_score(black, names.lab("purple"))  # own colour only
    assert names.category_votes(black.lab, "purple")[0] < 0.5


def test_wordnet_nouns(parser):
    lex = parser.lex
    assert lex.noun("goalkeeper").kind == "person" and lex.noun("pedestrian").kind == "person"
    assert lex.noun("dog").kind == "animal"
    assert (lex.noun("cardigan").kind, lex.noun("cardigan").region) == ("garment", "upper")
    assert lex.noun("jeans").region == "lower" and lex.noun("dress").region == "full"
    assert lex.noun("hat").region == "head" and lex.noun("hoodie").region == "upper"
    assert "sports ball" in lex.noun("basketball").coco and "cell phone" in lex.noun("phone").coco
    assert lex.noun("xyzzyplugh") is None


@pytest.mark.parametrize("question, expected", [
    ("Show me the lady in the teal cardigan", "person [lady: unchecked=gender, colour=teal@upper, skin=covered_arms@upper]"),
    ("the second guy from the right", "person [guy: ordinal=right#2, unchecked=gender]"),
    ("Is the kid in mustard trousers sitting down?",
     "yes_no [kid: unchecked=age, colour=mustard@lower, skin=covered_legs@lower] ? posture=sitting"),
    ("How many people in khaki are crouching?", "count [people: colour=khaki@any] ? posture=crouching"),
    ("the pedestrian on the far left, no wait, the one in the middle", "person [one: position=middle]"),
    ("the man at the back, no hang on, the one in the middle", "person [one: position=middle]"),
    ("someone who is not wearing black", "person [someone: not colour=black@any]"),
    ("the cat", "not_person [not_person=cat -: ]"),
    ("the cat curled up on the sofa", "not_person [not_person=cat -: unchecked=adjective, object=near]"),
    ("what pose would a sleepy person take?", "imagine"),
    ("the one with her back to the camera", "person [one: facing=away]"),
    ("the person with both hands up", "person [person: gesture=both_arms_raised]"),
    ("the kid who isn't wearing red, blue or green",
     "person [kid: unchecked=age, not colour=red@any, not colour=blue@any, not colour=green@any]"),
    ("the girl who isn't wearing any green or denim",
     "person [girl: unchecked=gender, not colour=green@any, not colour=denim@any]"),
    ("the one dressed all in black with white trainers", "person [one: colour=black@full, unchecked=feet, unchecked=feet]"),
    ("the man in black from head to toe", "person [man: unchecked=gender, colour=black@full]"),
    ("the one with both hands over his head", "person [one: gesture=both_arms_raised]"),
    ("who is furthest back?", "person [-: distance=far]"),
    ("second one in from the right-hand side", "person [-: ordinal=right#2]"),
    ("the third one along counting from the left", "person [-: ordinal=left#3]"),
    ("the one with a hand up at her chin", "person [one: gesture=hand_at_head]"),
    ("the kid between the blue one and the green one",
     "person [kid: relation=between(one: colour=blue@any | one: colour=green@any), unchecked=age]"),
    ("the one nearest the wooden crate", "person [one: unchecked=adjective, unchecked=object]"),
    ("the man closest to the bus", "person [man: unchecked=gender, object=near]"),
    ("the person closest to the camera", "person [person: distance=near]"),
    ("the person in front of the grey armchairs", "person [person: unchecked=object, object=near]"),
    ("the woman half hidden behind the shirtless man",
     "person [woman: relation=behind(man: skin=bare_torso, unchecked=gender), unchecked=gender, unchecked=adjective]"),
    ("the other one, not the man in the dark t-shirt",
     "person [other -: relation=not(man: unchecked=gender, colour=dark@upper, skin=bare_arms@upper)]"),
    ("everyone except the man in red", "person [everyone: relation=not(man: unchecked=gender, colour=red@any)]"),
    ("does the girl on the left have her arms folded?",
     "yes_no [girl: unchecked=gender, position=left] ? gesture=arms_crossed"),
    # roles: one that names a COCO object is checked by it, any other is said as not checked
    ("the cyclist on the left", "person [cyclist: object=near, position=left]"),
    ("the drummer", "person [drummer: unchecked=role]"),
    ("the lad in the stripy polo", "person [lad: unchecked=gender, pattern=striped@upper, garment=polo@upper]"),
    ("the one in the navy cardi", "person [one: colour=navy@upper, skin=covered_arms@upper]"),
    ("the bloke in red", "person [bloke: unchecked=gender, colour=red@any]"),
    ("the pedestrian in grey", "person [pedestrian: colour=grey@any]"),
    ("the man riding a horse", "person [man: unchecked=gender, motion=riding, object=holding]"),
    ("the girl in the car", "person [girl: unchecked=gender, object=inside]"),
])
def test_parser_fills_typed_slots(parser, question, expected):
    assert parser.parse(question).describe() == expected


def test_parser_follow_ups(parser):
    r = parser.parse("is he still waving?")
    assert r.intent == "yes_no" and r.ref.pronoun and r.predicate[0].value == "waving"
    assert parser.parse("no, the other one").ref.other
    rel = parser.parse("and the one next to her?").ref.constraints[0]
    assert rel.kind == "relation" and rel.ref.pronoun


def _person(x0: float, colour_top, colour_legs, posture="standing", raised=False) -> tuple[ScenePerson, dict]:
    """A standing figure 60 px wide at x0 with COCO keypoints, and its clothing colours."""
    kp = np.zeros((17, 2), np.float32)
    pos = {"nose": (30, 15), "left_eye": (33, 12), "right_eye": (27, 12), "left_ear": (36, 14), "right_ear": (24, 14),
           "left_shoulder": (45, 40), "right_shoulder": (15, 40), "left_elbow": (50, 70), "right_elbow": (10, 70),
           "left_wrist": (52, 100), "right_wrist": (8, 100), "left_hip": (40, 110), "right_hip": (20, 110),
           "left_knee": (40, 160), "right_knee": (20, 160), "left_ankle": (40, 210), "right_ankle": (20, 210)}
    if raised:
        pos["left_elbow"], pos["left_wrist"] = (50, 20), (52, 0)
    for i, name in enumerate(COCO17):
        kp[i] = np.array(pos[name]) + (x0, 20)
    p = ScenePerson(box=(x0, 15.0, x0 + 60.0, 235.0), score=0.9, layout="coco17", keypoints=kp,
                    keypoint_scores=np.full(17, 0.9, np.float32),
                    attributes={"posture": Attribute(posture, 0.9), "facing": Attribute("camera", 0.8)})
    return p, {"top": colour_top, "legs": colour_legs}


def _scene(specs):
    img = np.full((260, 100 * len(specs), 3), 128, np.uint8)
    people = []
    for k, (top, legs, posture, raised) in enumerate(specs):
        p, _ = _person(20 + 100 * k, top, legs, posture, raised)
        x0 = int(p.box[0])
        img[60:130, x0 + 10:x0 + 50] = top
        img[130:230, x0 + 10:x0 + 50] = legs
        people.append(p)
    return img, Scene(image_size=(img.shape[1], img.shape[0]), people=tuple(people))


BURGUNDY, NAVY, CREAM, GREEN, DENIM = (97, 0, 35), (1, 21, 62), (255, 253, 208), (21, 176, 26), (59, 99, 140)


@pytest.fixture(scope="module")
def three():
    """Left: burgundy top, navy trousers, standing. Middle: cream top, denim, sitting. Right: green
    top, navy trousers, standing with an arm raised."""
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "sitting", False),
                         (GREEN, NAVY, "standing", True)])
    return measure(img, scene)


@pytest.mark.parametrize("question, index", [
    ("the woman in the maroon blouse", 0), ("the guy in the off-white sweater", 1), ("the one in the emerald top", 2),
    ("who is sitting?", 1), ("the person waving", 2), ("the second one from the right", 1),
    ("the person next to the one in green", 1), ("not the one in burgundy and not the one on the right", 1),
    ("the person in the dark top", 0), ("the one in the pale top", 1),
    ("the one in navy, not the man in the burgundy top", 2),
    ("the one between the burgundy one and the green one", 1), ("who is in between the lady in maroon and the guy in green?", 1),
])
def test_grounder_chooses_by_checked_evidence(parser, grounder, three, question, index):
    out = grounder.answer(parser.parse(question), three)
    assert (out.kind, out.selected) == ("person", index), out.answer


def test_a_yes_no_whose_question_is_all_description(parser, grounder, three):
    """"Is the person on the left in a red top?": what is worn or done is asked of the one the rest
    names (before, nothing was left to ask and the answer was "I can't check that")."""
    no = grounder.answer(parser.parse("Is the person on the left in a cream top?"), three)
    yes = grounder.answer(parser.parse("Is the one in the middle in a cream top?"), three)
    assert (no.kind, no.selected, yes.kind, yes.selected) == ("no", 0, "yes", 1), (no.answer, yes.answer)
    assert "hand_at_head" in parser.parse("Is the man on the far right touching his chin?").describe()
    assert parser.parse("the one smoking a cigar").describe() == "person [one: unchecked=word, unchecked=word]"
    assert "unchecked=gender" in parser.parse("the mum in pink").describe()  # WordNet's first "mum" is a flower


def test_grounder_counts_and_yes_no_agree(parser, grounder, three):
    count = grounder.answer(parser.parse("How many people in navy trousers are standing?"), three)
    assert count.count == 2 and set(count.candidates) == {0, 2}
    yes = grounder.answer(parser.parse("Is the person in the cream top sitting?"), three)
    no = grounder.answer(parser.parse("Is the person in the cream top standing?"), three)
    assert (yes.kind, yes.selected, no.kind, no.selected) == ("yes", 1, "no", 1)
    assert yes.answer.startswith("Yes") and no.answer.startswith("No")


def test_a_yes_no_about_clothes_names_the_person_by_place_only(parser, grounder, three):
    """Asked what someone wears, the answer names them by place, never by a colour of its own beside the one
    asked about; asked what they do, by place and colour as elsewhere."""
    yes = grounder.answer(parser.parse("Is the person on the left wearing navy trousers?"), three)
    no = grounder.answer(parser.parse("Is the person on the left in a cream top?"), three)
    assert (yes.kind, no.kind) == ("yes", "no"), (yes.answer, no.answer)
    assert yes.answer.startswith("Yes, the person on the left is wearing navy trousers"), yes.answer
    assert no.answer.startswith("No, the person on the left is not wearing a cream top"), no.answer
    pose = grounder.answer(parser.parse("Is the person in the cream top sitting?"), three)
    assert pose.answer.startswith("Yes, the person in the middle in "), pose.answer


def test_counts_say_whom_they_could_not_check(parser, grounder, three):
    """A person whose posture is not seen is counted and said; a small thing seen nowhere counts
    everyone who fits the rest and says so; a large one seen nowhere counts nobody."""
    hidden_legs = [dataclasses.replace(three[0], posture=None)] + list(three[1:])
    count = grounder.answer(parser.parse("How many people are standing?"), hidden_legs)
    assert count.count == 2 and "includes 1 I can't be sure of" in count.answer, count.answer
    cups = grounder.answer(parser.parse("how many people are holding a mug?"), three)
    assert cups.count == 3 and "don't see a cup" in cups.answer and "counted everyone" in cups.answer, cups.answer
    bikes = grounder.answer(parser.parse("how many people are on a bike?"), three)
    assert bikes.count == 0, bikes.answer
    # in a car: a picture taken inside it shows no car (held_out6's car interior), so not "nobody"
    car = grounder.answer(parser.parse("how many are in the car"), three)
    assert car.count == 3 and "counted everyone" in car.answer, car.answer


def test_the_chest_of_a_close_up_is_found_below_the_face():
    """Shoulders unseen (a close-up, a crowd): the upper garment is read below the face, scaled by the
    head, not at a fixed share of the box (on a close-up cut by the image edge, that was the face)."""
    p, _ = _person(0, None, None)
    scores = np.zeros(17, np.float32)
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        scores[COCO17.index(name)] = 0.9
    p = dataclasses.replace(p, keypoint_scores=scores, box=(0.0, 15.0, 60.0, 80.0))
    quad = region_quads(p, _head(p))["upper"][0]
    ear_gap = 12.0  # _person's ears are 12 px apart, the nose at y = 35
    assert 35 + 1.5 * ear_gap <= quad[:, 1].min() < quad[:, 1].max() <= 35 + 3.5 * ear_gap  # below the face
    assert abs(quad[:, 0].mean() - 30.0) < 1.0
    scores[COCO17.index("left_shoulder")] = 0.9  # one shoulder: the other mirrored about the face
    p = dataclasses.replace(p, keypoint_scores=scores)
    quad = region_quads(p, _head(p))["upper"][0]
    assert abs((quad[0, 0] + quad[1, 0]) / 2 - 30.0) < 1.0


def test_a_garment_behind_a_nearer_person_is_not_read(parser, grounder, three):
    """A region covered by a nearer person's face or chest (feet lower in the image) is hidden: its colour is not
    known (scored UNKNOWN, not seen), so a colour found on nobody else asks back instead of "nobody"."""
    chest = np.array([[10, 50], [40, 50], [40, 90], [10, 90]], np.float32)
    nearer = (0.6, [(0.0, 40.0, 50.0, 100.0)])  # feet at 60 % of the image height; its chest covers this one
    assert _behind(chest, 0.5, [nearer]) and not _behind(chest, 0.58, [nearer])  # 2 % lower: not nearer
    assert not _behind(chest, 0.5, [(0.6, [(100.0, 0.0, 150.0, 50.0)])])  # elsewhere
    req = parser.parse("the person in the bright orange sweatshirt")
    assert grounder.answer(req, three).kind == "no_match"
    out = grounder.answer(req, [dataclasses.replace(three[1], hidden=("upper",)), three[0], three[2]])
    assert out.kind == "clarify" and out.selected == -1, out.answer


def test_a_part_that_fits_nobody_offers_who_fits_the_rest(parser, grounder, three):
    """"In the green top with a bright orange shirt underneath": orange fits nobody, green fits one:
    asked back about that one, not "nobody"; the garment's own skin word ("raincoat": arms covered)
    is no other part, so "the bright orange raincoat" is still nobody. Two people have no middle one."""
    out = grounder.answer(parser.parse("the one in the green top with a bright orange shirt underneath"), three)
    assert out.kind == "clarify" and out.candidates[0] == 2 and "orange" in out.answer, out.answer
    assert grounder.answer(parser.parse("the person in the bright orange raincoat"), three).kind == "no_match"
    two = grounder.answer(parser.parse("the one in the middle"), [three[0], three[2]])
    assert two.kind == "clarify", two.answer


def test_a_pose_seen_on_nobody_is_no_match_for_the_least_sure(parser, grounder, three):
    """Everyone's posture seen and nobody crouching: the least sure "standing" is not chosen."""
    out = grounder.answer(parser.parse("the one crouching"), three)
    assert out.kind == "clarify" and "Nobody here looks \"crouching\"" in out.answer, out.answer


def test_cut_off_by_the_edge(parser, grounder, three):
    """"Cut off by the left edge" asks for a box that touches the image's side; when nobody's does
    (perception missed that person), it is said and asked back, never the nearest one chosen."""
    req = parser.parse("the man cut off by the left edge")
    assert [(c.kind, c.value) for c in req.ref.constraints if c.kind == "position"] == [("position", "edge_left"),
                                                                                        ("position", "left")]
    assert [c.value for c in parser.parse("the one at the edge").ref.constraints] == ["edge"]
    assert [c.value for c in parser.parse("the one in the top right corner").ref.constraints] == ["top", "right"]
    assert all(c.value != "edge" for c in parser.parse("the man at the edge of the pool").ref.constraints)
    out = grounder.answer(parser.parse("the person cut off by the left edge"), three)
    assert out.kind == "clarify" and "cut off" in out.answer, out.answer
    cut = [dataclasses.replace(three[0], edges=("left",)), *three[1:]]
    out = grounder.answer(parser.parse("the person half out of the shot on the left"), cut)
    assert (out.kind, out.selected) == ("person", 0), out.answer
    # the side counts: cut off on the left is not "cut off on the right side" (held_out6 chose them)
    out = grounder.answer(parser.parse("the one cut off on the right side"), cut)
    assert out.selected != 0 and out.kind == "clarify", out.answer


def test_between_two_people(parser, grounder):
    """"Between X and Y" names two other people: the one between them, not the middle of the picture."""
    rel = parser.parse("the kid between the blue one and the green one").ref.constraints[0]
    assert (rel.kind, rel.value) == ("relation", "between")
    assert rel.ref.constraints[0].value == "blue" and rel.ref2.constraints[0].value == "green"
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (GREEN, NAVY, "standing", False),
                         (CREAM, DENIM, "standing", False), (DENIM, NAVY, "standing", False)])
    facts = measure(img, scene)
    out = grounder.answer(parser.parse("the person between the one in green and the one in blue"), facts)
    assert (out.kind, out.selected) == ("person", 2), out.answer
    assert parser.parse("the one between the two men").ref.constraints[0].kind == "position"  # no pair: the middle


def test_yes_no_answers_say_what_was_seen_instead(parser, grounder, three):
    no = grounder.answer(parser.parse("Is the person in the cream top wearing a green shirt?"), three)
    assert no.kind == "no" and "not wearing a green shirt: I see cream" in no.answer, no.answer
    facts = list(three)
    facts[1] = dataclasses.replace(facts[1], posture=None)
    unknown = grounder.answer(parser.parse("Is the person in the cream top sitting?"), facts)
    assert unknown.kind == "unknown" and "can't see whether" in unknown.answer and "legs" in unknown.answer


def test_yes_no_with_a_part_not_seen(parser, grounder, three):
    """"Is she sitting on a chair?" with no chair found: what was seen holds, so yes, saying what was not
    checked; a part seen not to hold is a no whatever else was not seen."""
    yes = grounder.answer(parser.parse("Is the person in the cream top sitting on a chair?"), three)
    assert yes.kind == "yes" and "as far as I can see" in yes.answer and "chair" in yes.answer, yes.answer
    no = grounder.answer(parser.parse("Is the person in the cream top standing on a chair?"), three)
    assert no.kind == "no" and no.answer.startswith("No"), no.answer


def test_a_clarifying_question_keeps_everyone_it_could_be(parser, grounder):
    """The question names three people; the outcome keeps all of them (a yes/no answered for "all it
    could be" must have asked all of them)."""
    img, scene = _scene([(GREEN, NAVY, "standing", False)] * 5)
    out = grounder.answer(parser.parse("the man in the red hat"), measure(img, scene))
    assert out.kind == "clarify" and len(out.candidates) == 5 and out.answer.count("the person") == 3, out.answer


def test_grounder_asks_instead_of_guessing_and_refuses_with_a_reason(parser, grounder, three):
    hat = grounder.answer(parser.parse("the man in the red hat"), three)
    assert hat.kind == "clarify" and hat.selected == -1 and "hat" in hat.answer and "?" in hat.answer
    nobody = grounder.answer(parser.parse("the person in the bright orange raincoat"), three)
    assert nobody.kind == "no_match" and "orange" in nobody.answer
    near = grounder.answer(parser.parse("the person in the yellow raincoat"), three)  # cream comes near
    assert (near.kind, near.candidates) == ("clarify", (1,)) and "closest" in near.answer
    assert grounder.answer(parser.parse("the dog"), three).kind == "not_person"
    second = grounder.answer(parser.parse("the second woman from the left"), three)  # among women: not checkable
    assert second.kind == "clarify" and 1 in second.candidates and "woman" in second.answer
    assert grounder.answer(parser.parse("the second one from the left"), three).selected == 1


def test_follow_ups_resolve_against_the_person_chosen_before(parser, grounder, three):
    ctx = Context(previous_box=three[2].box)
    assert grounder.answer(parser.parse("is she waving?"), three, ctx).kind == "yes"
    other = grounder.answer(parser.parse("the other one in navy"), three, ctx)
    assert (other.kind, other.selected) == ("person", 0)
    assert grounder.answer(parser.parse("is he waving?"), three).kind == "clarify"  # nobody chosen before


def test_a_person_whose_pose_was_not_seen_could_be_the_one(parser, grounder, three):
    """Precision first: "who is sitting?" with the middle person's posture unseen does not choose
    the one seen sitting elsewhere over them; a constraint seen on nobody is said, not scored."""
    facts = list(three)
    facts[1] = dataclasses.replace(facts[1], posture=None)  # the middle person's legs were not seen
    facts[0] = dataclasses.replace(facts[0], posture=("sitting", 0.9))
    out = grounder.answer(parser.parse("who is sitting?"), facts)
    assert (out.kind, set(out.candidates)) == ("clarify", {0, 1}), out.answer
    assert grounder.answer(parser.parse("who is sitting?"), three).selected == 1  # all seen: chosen
    facts[0] = dataclasses.replace(facts[0], posture=("standing", 0.9))  # seen not sitting; the middle one unseen
    out = grounder.answer(parser.parse("who is sitting?"), facts)
    assert out.kind == "clarify" and 1 in out.candidates and "Of those whose pose I can see" in out.answer, out.answer
    nobody_seen = [dataclasses.replace(f, posture=None) for f in three]
    out = grounder.answer(parser.parse("the one in burgundy who is lying down"), nobody_seen)
    assert (out.kind, out.selected) == ("person", 0) and "lying down" in out.unchecked, out.answer
    assert "on anyone" in out.answer


def test_a_black_and_white_picture_has_grey_levels_but_no_hues(parser, grounder, three):
    from chatpose_ros.grounding.colours import is_monochrome
    img, scene = _scene([((60, 60, 60), (30, 30, 30), "standing", False), ((170, 170, 170), (90, 90, 90), "standing", False),
                         ((110, 110, 110), (100, 100, 100), "sitting", False)])
    assert is_monochrome(img) and not is_monochrome(_scene([(BURGUNDY, NAVY, "standing", False)])[0])
    facts = measure(img, scene)
    assert all(f.monochrome for f in facts) and not any(f.monochrome for f in three)
    white = grounder.answer(parser.parse("the man in the white coat"), facts)  # the lightest coat: film has no true white
    assert (white.kind, white.selected) == ("person", 1), white.answer
    assert grounder.answer(parser.parse("the person in the dark top"), facts).selected == 0
    red = grounder.answer(parser.parse("the person in the red top"), facts)
    assert red.kind == "clarify" and "black and white" in red.answer and red.selected == -1, red.answer
    assert "red" not in grounder.who(facts[0], facts) and "grey" in grounder.who(facts[1], facts)
    count = grounder.answer(parser.parse("how many people in blue are sitting?"), facts)
    assert count.count == 1 and "black and white" in count.answer


def test_one_person_in_view_and_words_that_place_someone_among_others(parser, grounder, three):
    one = [three[2]]
    for q in ("the pedestrian at the far right", "the second one from the left", "the one closest to the camera"):
        out = grounder.answer(parser.parse(q), one)
        assert (out.kind, out.candidates) == ("clarify", (0,)) and "only one person" in out.answer, (q, out.answer)
    assert grounder.answer(parser.parse("the one in the emerald top"), one).selected == 0
    cup = grounder.answer(parser.parse("the kid with the mug"), one)  # no cup found anywhere: asked, not chosen
    assert cup.kind == "clarify" and "don't see a cup" in cup.answer and cup.answer.count("cup") == 1, cup.answer
    # a bicycle would have been found: nobody is on one
    bike = grounder.answer(parser.parse("the kid on the bicycle"), one)
    assert bike.kind == "no_match" and bike.selected == -1 and "no bicycle" in bike.answer, bike.answer
    cyclist = grounder.answer(parser.parse("the cyclist"), one)  # a role that names its object
    assert cyclist.kind == "no_match" and "no bicycle (for \"cyclist\")" in cyclist.answer, cyclist.answer


def _part(points: dict[str, tuple[float, float]], box, posture: str | None = None) -> ScenePerson:
    """A person with only the named COCO keypoints seen (0.9), the others unseen (0)."""
    kp, sc = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    for name, xy in points.items():
        kp[COCO17.index(name)], sc[COCO17.index(name)] = xy, 0.9
    return ScenePerson(box=tuple(float(v) for v in box), score=0.9, layout="coco17", keypoints=kp, keypoint_scores=sc,
                       attributes={} if posture is None else {"posture": Attribute(posture, 0.8)})


def test_hand_on_the_chest_hands_in_the_lap_and_an_arm_held_out(parser):
    """Pose codes from the keypoints: a wrist on the torso's midline, both wrists together at the hips'
    centre, an arm held out straight; and the phrases that ask for them."""
    body = {"left_shoulder": (120.0, 60.0), "right_shoulder": (80.0, 60.0), "left_hip": (112.0, 140.0),
            "right_hip": (88.0, 140.0), "left_elbow": (128.0, 100.0), "right_elbow": (72.0, 100.0)}
    hanging = gestures(_part(dict(body, left_wrist=(132.0, 140.0), right_wrist=(68.0, 140.0)), (60, 20, 140, 240)))
    belly = gestures(_part(dict(body, left_wrist=(132.0, 140.0), right_wrist=(102.0, 110.0)), (60, 20, 140, 240)))
    lap = gestures(_part(dict(body, left_wrist=(104.0, 142.0), right_wrist=(96.0, 144.0)), (60, 20, 140, 240)))
    out = gestures(_part(dict(body, right_elbow=(40.0, 62.0), right_wrist=(0.0, 64.0), left_wrist=(132.0, 140.0)),
                         (0, 20, 140, 240)))
    assert not hanging["hand_at_chest"] and not hanging["hands_in_lap"] and not hanging["pointing"]
    assert belly["hand_at_chest"] and not belly["hands_in_lap"]
    assert lap["hands_in_lap"] and not lap["hands_on_hips"]
    assert out["pointing"] and not out["hand_at_chest"] and "arm_out" not in out  # one measure: read as both
    for q, code in (("the man with his hand on his belly", "hand_at_chest"),
                    ("the one with her hands in her lap", "hands_in_lap"),
                    ("the seated man with his hands clasped", "hands_in_lap"), ("the guy reaching out to her", "arm_out"),
                    ("the kid holding a thumb up above his head", "arm_raised")):
        assert f"gesture={code}" in parser.parse(q).describe(), q
    assert "crouching" not in parser.parse("the one bent over the table").describe()


def test_an_arm_held_out_is_read_from_pointing(parser, grounder, three):
    """"Reaching out" reads pointing's one-frame measure (stored once, as "pointing"); where tracking's
    pointing replaces that measure, the frame's own stays under "arm_out" and is read from there."""
    facts = [dataclasses.replace(f, gestures={**f.gestures, "pointing": i == 2}) for i, f in enumerate(three)]
    out = grounder.answer(parser.parse("the person with an extended arm"), facts)
    assert (out.kind, out.selected) == ("person", 2), out.answer
    assert grounder.answer(parser.parse("is the person on the left reaching out?"), facts).kind == "no"
    unseen = [dataclasses.replace(f, gestures={}) for f in facts]
    assert grounder.answer(parser.parse("is the person on the left reaching out?"), unseen).kind == "unknown"
    tracked = _with_time({"pointing": True, "arm_raised": False}, {"waving": False, "hand_raised": False, "pointing": False})
    assert tracked == {"pointing": False, "arm_out": True, "arm_raised": False, "waving": False}
    assert _with_time({"pointing": True}, {}) == {"pointing": True}
    facts[2] = dataclasses.replace(facts[2], gestures=tracked)
    out = grounder.answer(parser.parse("the person with an extended arm"), facts)
    assert (out.kind, out.selected) == ("person", 2), out.answer


def _head_and_shoulders(cx: float, eye_y: float, width: float) -> dict[str, tuple[float, float]]:
    """Eyes, nose and shoulders of a person facing the camera; `width` the shoulder width (px)."""
    return {"left_eye": (cx + 0.08 * width, eye_y), "right_eye": (cx - 0.08 * width, eye_y),
            "nose": (cx, eye_y + 0.08 * width), "left_shoulder": (cx + 0.5 * width, eye_y + 0.45 * width),
            "right_shoulder": (cx - 0.5 * width, eye_y + 0.45 * width)}


def test_ground_contact_from_the_feet_or_the_size_seen():
    """Feet seen: the lowest of ankles and box; else the soles of a person of the size seen (shorter when
    seated); neither face nor shoulders: the box bottom."""
    upper = _head_and_shoulders(100, 50, 40)
    hidden = _part(upper, (70, 30, 130, 90))
    assert ground_contact(hidden) == pytest.approx(50 + EYES_TO_SOLES["shoulders"] * 40)
    seated = _part(upper, (70, 30, 130, 90), posture="sitting")
    assert ground_contact(seated) == pytest.approx(50 + SEATED_EYES_SHARE * EYES_TO_SOLES["shoulders"] * 40)
    feet = _part(dict(upper, left_ankle=(110, 240)), (70, 30, 130, 245))
    assert ground_contact(feet) == 245.0  # the shoes below the ankle, inside the box
    assert ground_contact(_part({"left_hip": (100, 150)}, (70, 100, 130, 200))) == 200.0


def test_depth_order_of_a_group_portrait_and_the_closest_and_furthest(parser, grounder):
    """A seated front row (feet seen), a middle row hidden below the chest by it and a back row hidden by
    the middle row, then a small pedestrian further up the street: depth follows where each meets the
    ground, a hidden person behind whoever hides them (box height would put the small back row nearest
    of all but the pedestrian)."""
    seated = dict(_head_and_shoulders(100, 130, 50), left_hip=(115, 190), right_hip=(85, 190),
                  left_knee=(118, 195), right_knee=(82, 195), left_ankle=(118, 250), right_ankle=(82, 250))
    front = _part(seated, (65, 115, 135, 255), posture="sitting")
    middle = _part(_head_and_shoulders(120, 80, 45), (90, 65, 150, 150))
    back = _part(_head_and_shoulders(90, 40, 44), (62, 25, 118, 100))
    walker = _part(dict(_head_and_shoulders(250, 60, 12), left_ankle=(253, 110), right_ankle=(247, 110)),
                   (240, 55, 260, 112), posture="standing")
    img = np.full((260, 300, 3), 128, np.uint8)
    facts = measure(img, Scene(image_size=(300, 260), people=(front, middle, back, walker)))
    d = [f.depth for f in facts]
    assert d[0] < d[1] < d[2] and d[0] < d[3], d
    assert grounder.answer(parser.parse("the person furthest back"), facts).selected == 3
    rows = measure(img, Scene(image_size=(300, 260), people=(front, middle, back)))
    assert grounder.answer(parser.parse("who is closest to the camera?"), rows).selected == 0
    assert grounder.answer(parser.parse("the person furthest back"), rows).selected == 2


SKIN = (224, 172, 140)


def test_skin_tells_a_tee_and_shorts_from_a_jacket_and_jeans(parser, grounder):
    """Left: bare forearms and shins (a tee and shorts); right: covered (a jacket and jeans)."""
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (BURGUNDY, NAVY, "standing", False)])
    for k, p in enumerate(scene.people):  # both faces seen; only the left one's limbs bare
        for a, b in (("nose", "nose"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
                     ("left_knee", "left_ankle"), ("right_knee", "right_ankle"))[:5 if k == 0 else 1]:
            xa, xb = p.keypoint(a)[0], p.keypoint(b)[0]
            cv2.line(img, tuple(int(v) for v in xa), tuple(int(v) for v in xb), SKIN, 16)
    facts = measure(img, scene)
    assert facts[0].skin["arms"] > 0.8 and facts[0].skin["legs"] > 0.8
    assert facts[1].skin["arms"] < 0.1 and facts[1].skin["legs"] < 0.1
    for question, index in (("the guy in the burgundy tee", 0), ("the one in the burgundy jacket", 1),
                            ("the person in shorts", 0), ("the woman in jeans", 1), ("the one not in shorts", 1)):
        out = grounder.answer(parser.parse(question), facts)
        assert (out.kind, out.selected) == ("person", index), (question, out.answer)
    assert grounder.answer(parser.parse("how many people are wearing shorts?"), facts).count == 1
    assert grounder.answer(parser.parse("is the person on the right in shorts?"), facts).kind == "no"
    assert grounder.answer(parser.parse("the shirtless man"), facts).kind == "no_match"  # both torsos covered
    grey = measure(np.repeat(img.mean(2, keepdims=True), 3, 2).astype(np.uint8), scene)
    assert [f.skin for f in grey] == [{}, {}]  # no skin colour to see: nothing read as covered


def test_relation_to_an_object(parser, grounder):
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "standing", False)])
    ball = SceneObject("sports ball", (150.0, 110.0, 170.0, 130.0), 0.8)
    people = (scene.people[0], ScenePerson(**{**scene.people[1].__dict__,
                                              "relations": (ObjectRelation(0, "holding", 0.9),)}))
    scene = Scene(scene.image_size, people, (ball,))
    out = grounder.answer(parser.parse("the guy holding the basketball"), measure(img, scene))
    assert (out.kind, out.selected) == ("person", 1)


@pytest.mark.slow
def test_grounded_profile_end_to_end_on_a_real_photo():
    import cv2

    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.profiles import build_pipeline

    img = cv2.cvtColor(cv2.imread("/usr/share/doc/opencv-doc/examples/data/basketball1.png"), cv2.COLOR_BGR2RGB)
    pipe = build_pipeline(PipelineConfig(profile="grounded", cpu_threads=1))
    try:
        left = pipe.estimate(img, "the person on the left")
        assert left.selected >= 0 and left.people[left.selected].box[0] < img.shape[1] / 3
        assert not left.clarify and "left" in left.answer
        streamed = []
        count = pipe.estimate(img, "how many people are there?", on_text=streamed.append)
        assert count.selected == -1 and "2 people" in count.answer and "".join(streamed) == count.answer
        dog = pipe.estimate(img, "the dog")
        assert dog.no_match and dog.selected == -1
        he = pipe.estimate(img, "is he standing?")  # the person chosen two questions ago
        assert he.selected == left.selected and he.answer.startswith(("Yes", "No", "I can't"))
        imagined = pipe.estimate(None, "What pose would a tired person take?")
        assert imagined.people and imagined.people[0].generated
    finally:
        pipe.close()


@pytest.mark.slow
def test_cli_chat_holds_a_conversation_and_ask_answers_several(tmp_path, capsys):
    import io
    import json
    from types import SimpleNamespace

    from chatpose_ros import cli

    photo = "/usr/share/doc/opencv-doc/examples/data/basketball1.png"
    args = SimpleNamespace(source=photo, step=1, out=str(tmp_path / "chat.png"), profile="grounded", checkpoint="",
                           weights_dir="", smpl_model="", device="auto", vision_backend="torch")
    assert cli.cmd_chat(args, stdin=io.StringIO("the person on the right\nis he standing?\nreset\nquit\n")) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(">")]
    assert len(lines) == 2 and "right" in lines[0] and lines[1].startswith(("> Yes", "> No", "> I can't"))
    assert (tmp_path / "chat_1.png").is_file() and (tmp_path / "chat_2.png").is_file()
    assert cli.main(["ask", photo, "the person on the left", "how many people are there?", "--profile", "grounded",
                     "--out", str(tmp_path / "a.png"), "--json", str(tmp_path / "a.json"), "--compact"]) == 0
    outs = json.loads((tmp_path / "a.json").read_text())
    assert len(outs) == 2 and outs[0]["selected"] >= 0 and "2 people" in outs[1]["answer"]
    assert (tmp_path / "a_1.png").is_file() and (tmp_path / "a_2.png").is_file()


class _FakeBase:
    """Stands in for the reader pipeline under GroundedPipeline: a fixed scene, poses without
    boxes' translation (test double)."""

    model_id = "reader:test"

    def __init__(self, scene):
        self.scene = scene

    def scene_and_people(self, image, timings=None):
        from chatpose_ros.core.types import PersonPose

        return self.scene, [PersonPose(theta=np.zeros(72, np.float32), joints=np.zeros((24, 3), np.float32), box=p.box)
                            for p in self.scene.people]

    def close(self):
        pass


def test_conversations_are_kept_per_asker_and_forgotten_after_the_timeout(parser, grounder):
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.grounded.pipeline import CONVERSATION_TIMEOUT_S, GroundedPipeline

    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "sitting", False)])
    now = [0.0]
    pipe = GroundedPipeline(PipelineConfig(profile="grounded"), _FakeBase(scene), parser, grounder, "grounded:test",
                            clock=lambda: now[0])
    assert pipe.estimate(img, "the person in the cream top", conversation="voice_a").selected == 1
    assert pipe.estimate(img, "the one in burgundy", conversation="voice_b").selected == 0
    assert pipe.estimate(img, "is she sitting?", conversation="voice_a").answer.startswith("Yes")
    assert pipe.estimate(img, "is she sitting?", conversation="voice_b").answer.startswith("No")
    other = pipe.estimate(img, "no, the other one", conversation="voice_a")
    assert other.selected == 0 and not other.clarify
    now[0] += CONVERSATION_TIMEOUT_S + 1
    late = pipe.estimate(img, "is she sitting?", conversation="voice_a")
    assert late.clarify and late.selected == -1
    pipe.reset_conversation()
    assert pipe.estimate(img, "is she sitting?", conversation="voice_b").clarify


class _Watched:
    """Stands in for core.gestures.GestureRecogniser (test double): the person at `x0` is waving."""

    def __init__(self, x0):
        self.x0 = x0

    def for_box(self, box, max_age_s=None):
        from chatpose_ros.core.gestures import Gesture

        return (Gesture("waving", "right", 0.9, 0.0, 2.0, 1.5),) if box[0] == self.x0 else ()


def test_waving_is_read_over_time_where_tracking_watched(parser, grounder):
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.grounded.pipeline import GroundedPipeline

    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "standing", False)])
    pipe = GroundedPipeline(PipelineConfig(profile="grounded"), _FakeBase(scene), parser, grounder, "grounded:test")
    no_arm_up = pipe.estimate(img, "the person waving")  # one frame: nobody has an arm up
    assert no_arm_up.selected == -1
    waving = pipe.estimate(img, "the person waving", gestures=_Watched(scene.people[1].box[0]))
    assert waving.selected == 1 and not waving.clarify
    assert pipe.estimate(img, "is the person on the left waving?", gestures=_Watched(scene.people[1].box[0])
                         ).answer.startswith("No")


def test_grounded_reports_its_stages(parser, grounder):
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.grounded.pipeline import GroundedPipeline

    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "standing", False)])
    pipe = GroundedPipeline(PipelineConfig(profile="grounded"), _FakeBase(scene), parser, grounder, "grounded:test")
    stages = []
    out = pipe.estimate(img, "the one in cream", on_stage=stages.append)
    assert out.selected == 1 and stages == ["perceiving", "grounding"]
    assert out.timings_ms["parse"] >= 0 and out.timings_ms["to_pose"] >= out.timings_ms["parse"]
