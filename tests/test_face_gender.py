"""Gender from faces: the face crop from body keypoints, the shipped ONNX model on real photos, the
gender check in the grounder (with face evidence as test doubles) and the profile reading faces
only when a question names a gender."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chatpose_ros.core.errors import InferenceError
from chatpose_ros.core.image_files import read_image
from chatpose_ros.core.scene import Attribute
from chatpose_ros.grounding.facts import measure
from chatpose_ros.grounding.ground import GENDER_MIN_FACE_PX, GENDER_SURE, Grounder
from chatpose_ros.grounding.parse import QuestionParser
from chatpose_ros.grounding.words import gender_of
from chatpose_ros.perception.face_attributes import INPUT, FaceGenderModel, face_box, face_crop
from test_grounding import BURGUNDY, CREAM, DENIM, NAVY, _FakeBase, _person, _scene

DATA = Path(__file__).parent / "data"
SURE_MAN, SURE_WOMAN, UNSURE = (0.97, 40.0), (0.03, 40.0), (0.6, 40.0)


@pytest.fixture(scope="module")
def model():
    return FaceGenderModel.load()


@pytest.fixture(scope="module")
def parser():
    return QuestionParser()


@pytest.fixture(scope="module")
def grounder(parser):
    return Grounder(parser.colours, parser.lex)


def test_face_box_from_body_keypoints():
    p, _ = _person(100.0, BURGUNDY, NAVY)  # eyes 6 px apart at y 32, nose at y 35, ears 12 px apart
    (x0, y0, x1, y1), width = face_box(p)
    assert width == pytest.approx(max(2.4 * 6, 12.0, 1.7 * np.hypot(6, 1)))
    assert 0.5 * (x0 + x1) == pytest.approx(130.0) and 0.5 * (y0 + y1) == pytest.approx(33.5)
    assert x1 - x0 == pytest.approx(1.5 * width) and y1 - y0 == pytest.approx(x1 - x0)
    away = replace(p, attributes={**p.attributes, "facing": Attribute("away", 0.9)})
    assert face_box(away) is None
    scores = p.keypoint_scores.copy()
    scores[1] = 0.1  # the left eye not seen
    assert face_box(replace(p, keypoint_scores=scores)) is None


def test_face_crop_fills_outside_the_image():
    img = np.zeros((50, 60), np.uint8)
    img[:, :30] = 200
    crop = face_crop(img, (-20.0, -20.0, 40.0, 40.0))  # reaches outside on the top and the left
    assert crop.shape == (INPUT, INPUT) and crop.dtype == np.uint8
    assert crop[0, 0] == 200 and crop[-1, -1] == 0


def test_model_loads_and_gives_one_probability_per_face(model):
    faces = np.random.default_rng(0).integers(0, 255, (3, INPUT, INPUT), dtype=np.uint8)
    p = model.p_male(faces)
    assert p.shape == (3,) and p.dtype == np.float32 and np.all((p > 0) & (p < 1))
    assert model.p_male(np.zeros((0, INPUT, INPUT), np.uint8)).shape == (0,)
    with pytest.raises(InferenceError):
        model.p_male(np.zeros((2, 32, 32), np.uint8))


def test_model_reads_real_faces_sanely(model):
    from chatpose_ros.perception.perception import DEFAULT_PRESET, Perception

    perception = Perception.from_preset(DEFAULT_PRESET, threads=1)
    women = read_image(str(DATA / "people" / "faceapi_sample6.jpg"))  # four women, faces 75-92 px wide
    read = model.read(women, perception.see(women))
    assert len(read) >= 3 and all(f.p_male < 0.5 and f.face_px >= GENDER_MIN_FACE_PX for f in read.values())
    assert sum(f.p_male < 1.0 - GENDER_SURE for f in read.values()) >= 2
    for name in ("basketball2.png", "messi5.jpg"):  # a man facing the camera (the left one in basketball2)
        man = read_image(f"/usr/share/doc/opencv-doc/examples/data/{name}")
        scene = perception.see(man)
        left = min(range(len(scene.people)), key=lambda i: scene.people[i].box[0])
        assert model.read(man, scene, [left])[left].p_male > 0.6, name


def test_gender_words():
    for w in ("man", "guys", "gentleman", "policeman", "chap", "boy"):
        assert gender_of(w) == "male", w
    for w in ("woman", "ladies", "girl", "sportswoman", "waitress"):
        assert gender_of(w) == "female", w
    assert gender_of("human") == gender_of("person") == gender_of("kid") == ""


def _facts(*faces):
    """Two people in navy trousers (burgundy and green tops) and one in denim, with these faces."""
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "standing", False),
                         ((21, 176, 26), NAVY, "standing", False)])
    return measure(img, scene, faces={i: f for i, f in enumerate(faces) if f is not None})


def test_a_sure_face_makes_gender_a_real_check(parser, grounder):
    facts = _facts(SURE_WOMAN, None, SURE_MAN)
    man = grounder.answer(parser.parse("the man in navy trousers"), facts)
    assert (man.kind, man.selected) == ("person", 2), man.answer
    assert "man" in man.checked and "I checked: man" in man.answer.replace("navy trousers, ", "")
    woman = grounder.answer(parser.parse("the lady in navy trousers"), facts)
    assert (woman.kind, woman.selected) == ("person", 0), woman.answer
    # elimination: the other person in navy is surely a woman, so "the guy" is the one whose face is unread
    facts2 = _facts(SURE_WOMAN, SURE_WOMAN, None)
    guy = grounder.answer(parser.parse("the guy in navy trousers"), facts2)
    assert (guy.kind, guy.selected) == ("person", 2), guy.answer


def test_the_bar_for_men_is_lower_than_for_women(parser, grounder):
    """The model leans to "woman": p(male) 0.75 says "man", p(female) 0.75 does not say "woman"."""
    man = grounder.answer(parser.parse("the man in navy trousers"), _facts((0.75, 40.0), None, SURE_WOMAN))
    assert (man.kind, man.selected) == ("person", 0), man.answer
    # p(female) 0.75 is not sure enough to rule the left one out of "the man"
    other = grounder.answer(parser.parse("the man in navy trousers"), _facts((0.25, 40.0), None, SURE_MAN))
    assert other.kind == "clarify" and set(other.candidates) == {0, 2}, other.answer


@pytest.mark.parametrize("faces", [
    (UNSURE, None, SURE_MAN),                     # p(woman) 0.4: cannot tell
    (None, None, SURE_MAN),                       # no face read on the left
    ((0.01, GENDER_MIN_FACE_PX - 1), None, SURE_MAN),  # sure, but too small a face
])
def test_an_uncertain_face_keeps_asking(parser, grounder, faces):
    out = grounder.answer(parser.parse("the man in navy trousers"), _facts(*faces))
    assert out.kind == "clarify" and out.selected == -1 and set(out.candidates) == {0, 2}, out.answer


def test_a_gender_everyone_shares_is_no_evidence(parser, grounder):
    """Two sure men, neither seen sitting or not (no joints): 'the man who is sitting' is not chosen on
    the gender they share and a posture seen on nobody-but-one."""
    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "sitting", False)])
    people = list(scene.people)
    people[1] = replace(people[1], attributes={"facing": Attribute("camera", 0.8)})  # posture not seen on the right
    facts = measure(img, replace(scene, people=tuple(people)), faces={0: SURE_MAN, 1: SURE_MAN})
    out = grounder.answer(parser.parse("the man who is sitting"), facts)
    assert out.kind == "clarify" and out.selected == -1, out.answer


def test_gender_alone_never_rules_everyone_out(parser, grounder):
    out = grounder.answer(parser.parse("the man"), _facts(SURE_WOMAN, SURE_WOMAN, SURE_WOMAN))
    assert out.kind == "clarify" and "man" in out.answer
    assert "man" not in out.checked
    none_read = grounder.answer(parser.parse("the man in navy trousers"), _facts(None, None, None))
    assert none_read.kind == "clarify" and "can't check \"man\"" in none_read.answer


def test_a_negated_gender_never_rules_everyone_out(parser, grounder):
    question = "the person in navy trousers who is not a man"
    all_men = grounder.answer(parser.parse(question), _facts(SURE_MAN, SURE_MAN, SURE_MAN))
    assert all_men.kind == "clarify" and set(all_men.candidates) == {0, 2}, all_men.answer
    one_woman = grounder.answer(parser.parse(question), _facts(SURE_WOMAN, SURE_MAN, SURE_MAN))
    assert (one_woman.kind, one_woman.selected) == ("person", 0) and "not man" in one_woman.checked


def test_counts_among_a_gender_count_the_faces_that_say_and_name_the_others(parser, grounder):
    all_said = grounder.answer(parser.parse("how many women are there?"), _facts(SURE_WOMAN, SURE_MAN, SURE_WOMAN))
    assert all_said.count == 2 and all_said.answer == "I see 2 women."
    ladies = grounder.answer(parser.parse("how many ladies are there?"), _facts(SURE_WOMAN, SURE_MAN, SURE_MAN))
    assert ladies.count == 1 and ladies.answer == "I see 1 woman."
    girls = grounder.answer(parser.parse("how many girls are there?"), _facts(SURE_WOMAN, SURE_MAN, SURE_MAN))
    assert girls.count == 3 and "can't check \"girls\"" in girls.answer  # children's words: not read off faces
    # a face that does not say: counted (not ruled out), and said; a sure man is not counted among women
    one_unsure = grounder.answer(parser.parse("how many women are there?"), _facts(SURE_WOMAN, UNSURE, SURE_MAN))
    assert one_unsure.count == 2 and one_unsure.candidates == (0, 1), one_unsure.answer
    assert "includes 1 I can't be sure of (women): I can't read their faces clearly" in one_unsure.answer
    assert "can't check" not in one_unsure.answer
    # every face a man: no women (a count may say 0; choosing "the woman" would ask instead)
    no_women = grounder.answer(parser.parse("how many women are there?"), _facts(SURE_MAN, SURE_MAN, SURE_MAN))
    assert no_women.count == 0, no_women.answer
    none_read = grounder.answer(parser.parse("how many men are there?"), _facts(None, UNSURE, None))
    assert none_read.count == 3 and "can't check \"men\"" in none_read.answer


class _CountingFaces:
    """Stands in for FaceGenderModel (test double): everyone reads as a sure man; counts the calls."""

    def __init__(self):
        self.calls = 0

    def read(self, image, scene, indices=None):
        from chatpose_ros.perception.face_attributes import FaceGender

        self.calls += 1
        return {i: FaceGender(0.97, 40.0, (0.0, 0.0, 1.0, 1.0)) for i in range(len(scene.people))}


def test_the_profile_reads_faces_only_for_gender_words(parser, grounder):
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.grounded.pipeline import GroundedPipeline

    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "sitting", False)])
    faces = _CountingFaces()
    pipe = GroundedPipeline(PipelineConfig(profile="grounded"), _FakeBase(scene), parser, grounder, "grounded:test",
                            faces=faces)
    assert pipe.estimate(img, "the one in cream").selected == 1 and faces.calls == 0
    out = pipe.estimate(img, "the man in cream")
    assert out.selected == 1 and faces.calls == 1 and "faces" in out.timings_ms
    pipe.estimate(img, "is the person next to the man in cream sitting?")
    assert faces.calls == 2


def test_the_profile_runs_without_the_face_model(tmp_path, monkeypatch, caplog):
    """The gender model is optional (its licence note says why one may delete it): without the file
    the profile loads, says so once, and gender words stay "cannot check"."""
    import chatpose_ros.perception.face_attributes as fa
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.default import reader_pipeline
    from chatpose_ros.models.grounded.pipeline import GroundedPipeline

    img, scene = _scene([(BURGUNDY, NAVY, "standing", False), (CREAM, DENIM, "sitting", False)])
    monkeypatch.setattr(fa, "GENDER_MODEL", tmp_path / "gender.onnx")
    monkeypatch.setattr(reader_pipeline.ReaderPipeline, "from_config", classmethod(lambda cls, config: _FakeBase(scene)))
    with caplog.at_level("WARNING"):
        pipe = GroundedPipeline.from_config(PipelineConfig(profile="grounded"))
    assert pipe.faces is None and any("gender words" in r.getMessage() for r in caplog.records)
    out = pipe.estimate(img, "the man")
    assert out.selected == -1 and out.clarify and "man" in out.answer  # "man" cannot tell the two apart
