"""Default profile LLM: prompts with person tokens, pose token, grounding/pose heads, weights
loading errors, synthetic queries. The shipped adapter is loaded once for the module."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR


@pytest.fixture(scope="module")
def llm():
    from chatpose_ros.models.default.llm import LlmSpec, PoseLanguageModel

    torch.set_num_threads(2)
    spec = LlmSpec(**json.loads((DEFAULT_WEIGHTS_DIR / "llm.json").read_text())["spec"])
    return PoseLanguageModel.load(DEFAULT_WEIGHTS_DIR / "llm_adapter.safetensors", spec)


@pytest.fixture(scope="module")
def test_mocap():
    from chatpose_ros.models.default.offline.mocap import load_mocap

    return load_mocap("test")


def test_gguf_and_cache_dir(monkeypatch, tmp_path):
    from chatpose_ros.models.default import llm as L

    assert L.gguf_path().name == L.GGUF_NAME
    monkeypatch.setenv("CHATPOSE_CACHE", str(tmp_path))
    assert L.cache_dir() == tmp_path / "smollm2"


def test_prompt_has_one_token_per_person(llm):
    ids = llm.prompt_ids("the person on the left", 3)
    assert ids.count(llm.person_token_id) == 3 and llm.pose_token_id not in ids
    assert llm.pose_token_id != llm.person_token_id
    assert llm.tokenizer.decode(llm.answer_ids("Sure, it is [POSE].")).count("[POSE]") == 1
    t = torch.tensor([ids])
    feats = torch.randn(3, llm.spec.feature_dim)
    emb = llm.embed(t, feats, [3])
    pos = (t[0] == llm.person_token_id).nonzero()[:, 0]
    assert torch.allclose(emb[0, pos], llm.projector(feats), atol=1e-5)
    with pytest.raises(ValueError):
        llm.embed(t, feats[:2], [2])


def test_grounding_on_held_out_scenes(llm, test_mocap):
    """Grounding on scenes of the held-out mocap file, well above chance."""
    from chatpose_ros.models.default.offline.evaluate import synthetic_grounding

    r = synthetic_grounding(llm, n=48, seed=7)
    assert r["accuracy"] > max(0.6, r["chance"] + 0.15), r


def test_generation_emits_pose_token_and_text_to_pose(llm):
    from chatpose_ros.core.decoding import POSE_STATE_AT, generate_with_pose_tokens

    ids = torch.tensor([llm.prompt_ids("What pose would a tired person take?", 0)])
    emb = llm.embed(ids, torch.zeros((0, llm.spec.feature_dim)), [0])
    gen = generate_with_pose_tokens(llm.lm, llm.tokenizer, emb, llm.pose_token_id, max_new_tokens=12,
                                    eos_token_ids=[llm.end_token_id], pose_state=POSE_STATE_AT)
    assert gen.num_poses == 1 and not gen.forced_pose and "[POSE]" in gen.text
    R = llm.pose_head(gen.pose_hidden[:1])
    assert R.shape == (1, 24, 3, 3)
    eye = R @ R.transpose(-1, -2)
    assert torch.allclose(eye, torch.eye(3).expand_as(eye), atol=1e-4)
    # the body is upright in the camera frame (y down): head above the pelvis
    from chatpose_ros.core.body import forward_kinematics

    assert forward_kinematics(R)[0, 15, 1] < -0.3


def test_counting_questions_are_not_forced_to_a_pose():
    from chatpose_ros.models.default.pipeline import asks_for_pose

    assert not asks_for_pose("How many people are in the image?")
    assert not asks_for_pose("  are there people?")
    assert asks_for_pose("the person on the left") and asks_for_pose("Who is waving?")


def test_adapter_errors(tmp_path):
    from chatpose_ros.models.default.llm import LlmSpec, PoseLanguageModel

    spec = LlmSpec(feature_dim=10)
    with pytest.raises(ModelLoadError):
        PoseLanguageModel.load(tmp_path / "missing.safetensors", spec)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError):
        PoseLanguageModel.load(bad, spec)


def test_scene_queries_identify_exactly_one_person(test_mocap):
    from chatpose_ros.models.default.offline.posecodes import posture_labels
    from chatpose_ros.models.default.offline.queries import SPECULATIVE, scene_queries
    from chatpose_ros.models.default.offline.scenes import COLOURS, make_scene

    rng = np.random.default_rng(0)
    for _ in range(30):
        scene = make_scene(rng, test_mocap)
        for q, t, kind in scene_queries(scene, rng):
            assert 0 <= t < len(scene.people)
            if kind == "appearance":
                c = next(c for c in COLOURS if f" {c} " in f" {q.lower()} ")
                attr = "upper" if any(w in q for w in ("shirt", "top", "jacket")) else "lower"
                assert [getattr(p, attr) for p in scene.people].count(c) == 1, q
            if kind == "speculative":
                labs = set(SPECULATIVE[q[0].lower() + q[1:]])
                hits = [i for i, p in enumerate(scene.people) if posture_labels(p.joints_canon) & labs]
                assert hits == [t], q


def test_grounding_head_colour_names_and_question_attention():
    """The stage-2 head: (B, N) logits; padded question tokens and people without a colour
    descriptor are handled; the mean-pooled head still accepts an averaged (B, H) question."""
    from chatpose_ros.models.default.llm import GroundingHead
    from chatpose_ros.models.default.person_features import COLOUR_DESCRIPTOR_DIM

    torch.manual_seed(0)
    H, F_, B, N, T = 16, 10, 2, 3, 5
    head = GroundingHead(H, 8, F_, question_pool=True, mlp=True, colour_dim=COLOUR_DESCRIPTOR_DIM, question_heads=2)
    pose, people, feats = torch.randn(B, H), torch.randn(B, N, H), torch.randn(B, N, F_)
    colours = torch.rand(B, N, COLOUR_DESCRIPTOR_DIM)
    q = torch.randn(B, T, H)
    mask = torch.tensor([[True] * T, [True] * 3 + [False] * 2])
    out = head(pose, people, feats, q, mask, colours)
    assert out.shape == (B, N)
    q2 = q.clone()
    q2[1, 3:] = 100.0  # padding must not matter
    assert torch.allclose(head(pose, people, feats, q2, mask, colours), out)
    with pytest.raises(ValueError):
        head(pose, people, feats, q, mask)  # needs the colour descriptor
    mean_head = GroundingHead(H, 8, F_, question_pool=True, mlp=True)
    assert torch.allclose(mean_head(pose, people, feats, q), mean_head(pose, people, feats, q.mean(1)))
