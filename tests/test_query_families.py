"""Question families of the synthetic generator (offline/query_families.py): every template has a
family, every generated grounding query parses back to its meaning, held-out wordings and colour
words are really absent from the training templates, and the ablation switch changes what the
grounding head reads (on a tiny fake LLM: no model weights needed)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from chatpose_ros.models.default.offline import query_families as F
from chatpose_ros.models.default.offline import queries as Q


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()))


def test_every_template_has_a_family():
    templates = (list(Q.WRAPPERS) + list(Q.UPPER_TEMPLATES) + list(Q.LOWER_TEMPLATES)
                 + [p for v in Q.SPACE_TEMPLATES.values() for p in v] + list(Q.POSTURE_TEMPLATES)
                 + list(Q.SPECULATIVE) + list(Q.COUNT_QUESTIONS) + list(Q.TEXT_POSE_TEMPLATES)
                 + list(Q.SPECULATIVE_POSE))
    missing = [t for t in templates if t not in F.TEMPLATE_FAMILIES]
    assert not missing


def test_held_out_wordings_are_not_training_templates():
    training = {t.lower() for t in F.TEMPLATE_FAMILIES}
    for meaning, phrases in F.HELD_OUT_TEMPLATES.items():
        for p in phrases:
            assert p.lower() not in training, (meaning, p)
    assert not set(F.HELD_OUT_WRAPPERS) & set(Q.WRAPPERS)
    training_words = set().union(*(_words(t) for t in F.TEMPLATE_FAMILIES))
    from chatpose_ros.models.default.offline.scenes import COLOURS

    assert set(F.COLOUR_SYNONYMS) == set(COLOURS)
    for colour, synonyms in F.COLOUR_SYNONYMS.items():
        for s in synonyms:
            assert s not in training_words, s


@pytest.mark.parametrize("query, parsed", [
    ("Where is the leftmost person?", ("space_side", "leftmost", None)),
    ("The person furthest from the camera, please.", ("space_depth", "farthest", None)),
    ("I mean the person with pink shorts.", ("lower_colour", "lower", "pink")),
    ("Can you find the person with the purple jacket?", ("upper_colour", "upper", "purple")),
    ("Who is sitting?", ("posture", "sitting", None)),
    ("the one raising the left arm", ("posture", "raising the left arm", None)),
    ("Who is cheering?", ("speculative", "who is cheering?", None)),
    ("Where is the person?", ("single_person", "only", None)),
    ("the dog", None),
])
def test_parse_query(query, parsed):
    assert F.parse_query(query) == parsed


def test_generated_queries_all_parse_and_reword():
    """Every query of a few hundred generated scenes parses back (the same meaning the generator
    gave it) and rewords into a held-out wording that keeps its slot (colour)."""
    from chatpose_ros.models.default.offline.mocap import load_mocap

    rng = np.random.default_rng(0)
    stream = Q.SampleStream(load_mocap("test"), 7)
    samples = [stream.grounding() for _ in range(150)]
    for s in samples:
        parsed = F.parse_query(s.query)
        assert parsed is not None, s.query
        family, meaning, slot = parsed
        assert s.kind == {"upper_colour": "appearance", "lower_colour": "appearance", "speculative": "speculative",
                          "posture": "posture"}.get(family, "space"), (s.query, parsed)
        new = F.reword(s.query, rng)
        if family == "speculative":
            assert new is None
            continue
        assert new is not None and new.lower() != s.query.lower()
        if slot:
            assert slot in new
            syn = F.with_colour_synonym(s.query, rng)
            assert syn is not None and slot not in _words(syn) and any(w in syn for w in F.COLOUR_SYNONYMS[slot])
        else:
            assert F.with_colour_synonym(s.query, rng) is None


def test_shuffle_words_changes_the_order_only():
    rng = np.random.default_rng(0)
    q = "Where is the person on the far left?"
    out = F.shuffle_words(q, rng)
    assert out != q and sorted(out.split()) == sorted(q.split())
    assert F.shuffle_words("hello", rng) == "hello"


class _FakeLLM:
    """Just enough of DefaultLLM for grounding_predictions: token ids, a backbone whose states
    are the embeddings, and a grounding head that scores person i by <h_pose + h_question, h_person_i>
    plus a feature term, so each ablation changes the result in a known way."""

    person_token_id, pose_token_id, end_token_id = 1, 2, 3
    spec = type("Spec", (), {"feature_dim": 2})()

    def __init__(self):
        self.tokenizer = type("Tok", (), {"pad_token_id": 0})()

    def prompt_ids(self, query: str, n: int) -> list[int]:
        return [self.person_token_id] * n + [10 + len(query) % 5, self.end_token_id]

    def answer_ids(self, answer: str) -> list[int]:
        return [self.pose_token_id, self.end_token_id]

    def embed(self, ids, feats, counts):
        emb = torch.zeros(ids.shape + (4,))
        emb[ids == self.pose_token_id] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        emb[ids >= 10] = torch.tensor([0.0, 0.0, 1.0, 0.0])
        if feats.shape[0]:  # person i -> [f_i0, 0, f_i0, 0]: seen by the pose and the question state
            zero = torch.zeros(feats.shape[0])
            emb[ids == self.person_token_id] = torch.stack([feats[:, 0], zero, feats[:, 0], zero], 1)
        return emb

    def backbone(self, emb, att):
        return emb

    def question_positions(self, ids):
        person = (ids == self.person_token_id).nonzero()[:, 0]
        start = int(person[-1]) + 1
        return torch.arange(start, start + 1)

    def ground_sequence(self, ids, h, h_pose, feats):
        pp = (ids == self.person_token_id).nonzero()[:, 0]
        hq = h[self.question_positions(ids)].mean(0)
        return (h[pp] @ (h_pose + hq)) + 0.1 * feats[:, 1]


def test_ablations_zero_what_they_name():
    """Person 0 wins through the LLM states (pose and question), person 1 through the direct
    feature path: zeroing the states the head reads flips the choice to person 1."""
    from chatpose_ros.models.default.offline.queries import Sample

    feats = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)  # person 0: LLM-visible; person 1: feature only
    s = Sample("the one", Q.POSE_ANSWER, feats, 0, None, "space")
    llm = _FakeLLM()
    assert F.grounding_predictions(llm, [s]) == [0]
    assert F.grounding_predictions(llm, [s], "people_states_zeroed") == [1]
    assert F.grounding_predictions(llm, [s], "all_llm_states_zeroed") == [1]
    assert F.grounding_predictions(llm, [s], "pose_state_zeroed") == [0]  # the question state still carries it
    with pytest.raises(ValueError, match="ablation"):
        F.grounding_predictions(llm, [s], "everything")
