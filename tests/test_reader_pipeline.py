"""The experimental `reader` profile end to end on real photos: the pose before the words, refusals,
the confidence threshold, imagined poses, nobody in view, bad weights, the person a position names,
a count. (How often it chooses the right person overall is the model card's business:
`make eval-reader`.)"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from conftest import load_photo

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def pipe():
    import torch

    torch.set_num_threads(2)
    from chatpose_ros.profiles import build_pipeline

    p = build_pipeline(PipelineConfig(profile="reader"))
    yield p
    p.close()


def test_pose_is_streamed_before_the_words(pipe):
    """on_pose comes first, with the chosen person's pose and no words yet; the words follow in
    pieces that join to the final answer."""
    events: list[tuple[str, object]] = []
    res = pipe.estimate(load_photo("basketball2.png"), "the person on the left",
                        on_pose=lambda r: events.append(("pose", r)), on_text=lambda t: events.append(("text", t)))
    assert res.model_id.startswith("reader:")
    assert events[0][0] == "pose" and sum(k == "pose" for k, _ in events) == 1
    early = events[0][1]
    assert early.answer == "" and early.selected_person is not None
    assert np.allclose(early.selected_person.theta, res.selected_person.theta)
    texts = [t for k, t in events if k == "text"]
    assert len(texts) >= 2 and "".join(texts).strip() == res.answer
    assert "<p" not in res.answer and 0 < res.grounding_confidence <= 1
    assert res.timings_ms["to_pose"] < res.timings_ms["to_pose"] + res.timings_ms["answer"]
    json.dumps(res.to_json())


@pytest.mark.parametrize("photo", ["basketball1.png", "basketball2.png"])
def test_left_and_right_choose_the_leftmost_and_rightmost_person(pipe, photo):
    img = load_photo(photo)
    centres = {}
    for side in ("left", "right"):
        res = pipe.estimate(img, f"the person on the {side}")
        assert res.selected_person is not None, res.answer
        x0, _, x1, _ = res.selected_person.box
        centres[side] = (x0 + x1) / 2
        all_centres = [(p.box[0] + p.box[2]) / 2 for p in res.people if p.box is not None]
        assert centres[side] == (min(all_centres) if side == "left" else max(all_centres)), (side, res.answer)
    assert centres["left"] < centres["right"]


@pytest.mark.parametrize("question", ["How many people do you see?", "Could you count the people for me?"])
def test_a_count_is_the_number_of_people_found(pipe, question):
    """A count of everyone, also in a wording of a held-out family: "I see 2 people.", every one
    perception found (the per-person counted scores counted one of the two for a wording
    training never used)."""
    res = pipe.estimate(load_photo("basketball1.png"), question)
    assert res.selected == -1 and res.answer == f"I see {len(res.people)} people.", res.answer


def test_question_that_matches_nobody_is_refused(pipe):
    res = pipe.estimate(load_photo("basketball1.png"), "the dog")
    assert res.selected == -1 and res.selected_person is None and res.no_match, res.answer
    assert res.answer == 'Nobody here matches "the dog".' and len(res.people) == 2


def _head_with_count_all_and_yes(reader, count_all_bias: float, yes_bias: float):
    """The shipped decision head with the yes score added (not in the shipped weights) and its
    count_all logit fixed by a bias: the shipped weights elsewhere."""
    import dataclasses

    import torch

    from chatpose_ros.models.default.reader import make_pointer

    spec = dataclasses.replace(reader.spec, count_all=True, yes_no=True)
    head = make_pointer(spec, reader.hidden_size)
    missing, unexpected = head.load_state_dict(reader.pointer.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("yes.") for k in missing), missing
    with torch.no_grad():
        head.count_all.weight.zero_()
        head.count_all.bias.fill_(count_all_bias)
        head.yes[2].weight.zero_()
        head.yes[2].bias.fill_(yes_bias)
    return spec, head.eval()


@pytest.mark.parametrize("count_all_bias, yes_bias, question, want", [
    (1e4, 0.0, "the person on the left", "I see 2 people."),
    (-1e4, 20.0, "Is the man on the left holding his hands up in front of him?", "Yes, "),
    (-1e4, -20.0, "Is the man on the left holding his hands up in front of him?", "No, "),
])
def test_count_all_and_yes_decisions_fix_the_answer(pipe, count_all_bias, yes_bias, question, want):
    """A count of everyone (the head's optional count_all kind) is the whole answer, the number of
    people found; a yes/no answer about the chosen person says the head's yes or no, whatever
    the LM would have said."""
    reader = pipe.reader
    saved = reader.pointer, reader.spec, reader.kinds
    spec, head = _head_with_count_all_and_yes(reader, count_all_bias, yes_bias)
    reader.pointer, reader.spec, reader.kinds = head, spec, head.kinds
    try:
        res = pipe.estimate(load_photo("basketball1.png"), question)
    finally:
        reader.pointer, reader.spec, reader.kinds = saved
    assert len(res.people) == 2
    assert res.answer == want if want.endswith(".") else res.answer.startswith(want), res.answer


def test_confidence_threshold_turns_a_choice_into_no_match():
    from chatpose_ros.profiles import build_pipeline

    strict = build_pipeline(PipelineConfig(profile="reader", min_grounding_confidence=1.0))
    try:
        res = strict.estimate(load_photo("basketball1.png"), "the person on the left")
    finally:
        strict.close()
    assert res.selected == -1 and res.no_match and 0 < res.grounding_confidence < 1.0
    assert res.answer == 'Nobody here matches "the person on the left".', res.answer


def test_counting_is_a_text_answer_without_a_chosen_pose(pipe):
    res = pipe.estimate(load_photo("basketball1.png"), "How many people do you see?")
    assert res.selected == -1 and not res.no_match and res.answer.startswith("I see")


def test_imagined_pose_is_generated_never_someone_in_view(pipe):
    res = pipe.estimate(load_photo("basketball1.png"), "What pose would a tired person take?")
    assert res.selected == 0 and res.selected_person.generated and res.selected_person.box is None
    assert len(res.people) == 3 and not any(p.generated for p in res.people[1:])
    res = pipe.estimate(None, "What pose would a tired person take?")
    assert res.image_size is None and res.selected == 0 and res.people[0].estimator == "llm_generated"


@pytest.mark.parametrize("query", ["the person on the left", "How many people are there?"])
def test_image_without_people_says_so(pipe, query):
    from chatpose_ros.models.default.pipeline import NO_PERSON_ANSWER

    res = pipe.estimate(np.zeros((480, 640, 3), np.uint8), query)
    assert res.answer == NO_PERSON_ANSWER and res.selected == -1 and res.people == ()


def test_missing_and_corrupt_reader_weights(tmp_path):
    from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR
    from chatpose_ros.models.default.reader_pipeline import ReaderPipeline

    bad = tmp_path / "w"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, bad)
    (bad / "reader_adapter.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="reader_adapter"):
        ReaderPipeline.from_config(PipelineConfig(profile="reader", weights_dir=str(bad)))
    shutil.copy(DEFAULT_WEIGHTS_DIR / "reader_adapter.safetensors", bad)
    (bad / "reader.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        ReaderPipeline.from_config(PipelineConfig(profile="reader", weights_dir=str(bad)))


def test_cached_system_turn_gives_the_states_of_a_full_prefill(pipe):
    """decide reads the fixed system turn once (SceneReader._prefill): the states, the decision
    and the answer equal a full prefill's, also on the second query (the cache is copied, not grown)."""
    import torch

    from chatpose_ros.models.default.scene_words import scene_words

    reader = pipe.reader
    scene = scene_words(pipe._see(load_photo("basketball1.png"), everything=True))
    for query in ("the person on the right", "How many people are there?"):
        ids = torch.tensor([reader.prompt_ids(scene, query)])
        with torch.no_grad():
            full = reader.lm.model(input_ids=ids, use_cache=True).last_hidden_state[0]
            out, cached = reader._prefill(ids)
        assert cached.shape == full.shape and out.past_key_values.get_seq_length() == ids.shape[1]
        assert torch.allclose(cached, full, atol=1e-3, rtol=1e-3), float((cached - full).abs().max())
    assert reader._head_state[0].get_seq_length() == len(reader._template()[0])


@pytest.mark.parametrize("query", ["the person in the red top", "the one on the right", "the one holding the cup",
                                   "Is the person on the left sitting?"])
def test_answers_about_a_chosen_person_are_true_to_its_line(pipe, query):
    """After a person token the LM may only write one of the answers that person's line makes
    true (SceneReader.generate with Decision.chosen): no colour, place or pose it does not have,
    and never cut short."""
    from chatpose_ros.models.default.scene_words import PersonWords, SceneWords, true_answers

    reader = pipe.reader
    people = (PersonWords(order=1, count=3, upper="blue", posture="sitting", arms="arms down"),
              PersonWords(order=2, count=3, upper="red", lower="black", posture="standing", holding="cup"),
              PersonWords(order=3, count=3, lower="white", arms="both arms raised", facing="away"))
    scene = SceneWords(people, index=(0, 1, 2))
    d = reader.decide(scene, query, 3)
    assert d.first in reader.person_ids[:3].tolist(), reader.render([d.first])
    chosen = people[reader.person_ids.tolist().index(d.first)]
    assert reader.render(reader.generate(d, 40)) in true_answers(chosen)
    assert reader.render(reader.generate(d, 3)) in true_answers(chosen)  # max_tokens bounds free words only
