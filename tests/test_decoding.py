"""core/decoding.py on a tiny random LlamaForCausalLM (offline)."""
from __future__ import annotations

import pytest
import torch

from chatpose_ros.core.decoding import Generation, generate_with_pose_tokens, render_answer
from chatpose_ros.models.chatpose.tiny import POSE_TOKEN, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def lm(tok):
    return tiny_llama(len(tok))


def _prompt(lm, tok, text="user : what is the pose ? assistant:"):
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return lm.get_input_embeddings()(ids)


def _make_emit_pose(lm, tok, emb):
    """Copy of `lm` whose second answer token is the pose token (row of lm_head reused)."""
    import copy

    lm2 = copy.deepcopy(lm)
    pose = tok.convert_tokens_to_ids(POSE_TOKEN)
    first = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=2, eos_token_ids=[])
    with torch.no_grad():
        # make the pose token the argmax after the first answer token: scale its output row
        lm2.lm_head.weight[pose] = lm2.lm_head.weight[first.token_ids[0]] * 3.0
    return lm2, pose


def test_cache_and_recompute_agree_with_pose(lm, tok):
    emb = _prompt(lm, tok)
    lm2, pose = _make_emit_pose(lm, tok, emb)
    a = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=8, eos_token_ids=[], use_cache=True)
    b = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=8, eos_token_ids=[], use_cache=False)
    assert isinstance(a, Generation)
    assert a.token_ids == b.token_ids
    assert pose in a.token_ids
    assert a.pose_hidden.shape[0] == a.token_ids.count(pose) >= 1
    assert a.pose_hidden.shape[1] == lm.config.hidden_size
    torch.testing.assert_close(a.pose_hidden, b.pose_hidden, atol=1e-4, rtol=1e-4)
    assert not a.forced_pose
    assert "[POSE]" in a.text and POSE_TOKEN not in a.text


def test_pose_hidden_is_last_layer_state_where_fed(lm, tok):
    emb = _prompt(lm, tok)
    lm2, pose = _make_emit_pose(lm, tok, emb)
    g = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=6, eos_token_ids=[])
    k = g.token_ids.index(pose)
    ids = torch.tensor([g.token_ids[: k + 1]])
    with torch.no_grad():
        full = torch.cat((emb, lm2.get_input_embeddings()(ids)), 1)
        ref = lm2(inputs_embeds=full, output_hidden_states=True).hidden_states[-1][0, -1]
    torch.testing.assert_close(g.pose_hidden[0], ref, atol=1e-4, rtol=1e-4)


def test_force_pose_token_appends_and_feeds(lm, tok):
    emb = _prompt(lm, tok)
    plain = generate_with_pose_tokens(lm, tok, emb, -1, max_new_tokens=4, eos_token_ids=[])
    pose = next(i for i in range(4, len(tok)) if i not in plain.token_ids)  # never emitted here
    for use_cache in (True, False):
        g = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=4, force_pose_token=True,
                                      eos_token_ids=[], use_cache=use_cache)
        assert g.forced_pose and g.token_ids[-1] == pose and g.pose_hidden.shape[0] == 1
        assert len(g.token_ids) == 5
        assert torch.isfinite(g.pose_hidden).all()
    gc = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=4, force_pose_token=True, eos_token_ids=[])
    gn = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=4, force_pose_token=True, eos_token_ids=[],
                                   use_cache=False)
    torch.testing.assert_close(gc.pose_hidden, gn.pose_hidden, atol=1e-4, rtol=1e-4)
    g0 = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=4, eos_token_ids=[])
    assert g0.pose_hidden.shape == (0, lm.config.hidden_size) and not g0.forced_pose


def test_eos_stops_and_forced_pose_goes_before_eos(lm, tok):
    emb = _prompt(lm, tok)
    pose = tok.convert_tokens_to_ids(POSE_TOKEN)
    first = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=1, eos_token_ids=[])
    eos = first.token_ids[0]  # treat the first answer token as end of sequence
    g = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=8, eos_token_ids=[eos])
    assert g.token_ids == [eos] and g.steps == 1
    g = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=8, eos_token_ids=[eos], force_pose_token=True)
    assert g.token_ids == [pose] and g.forced_pose and g.steps == 2


def test_render_answer(tok):
    pose = tok.convert_tokens_to_ids(POSE_TOKEN)
    ids = tok("sure , it is", add_special_tokens=False)["input_ids"] + [pose] + tok(".", add_special_tokens=False)["input_ids"]
    ids = ids + [tok.eos_token_id]
    assert render_answer(tok, ids, pose) == "sure, it is [POSE]."


def test_rejects_batch(lm, tok):
    emb = _prompt(lm, tok).repeat(2, 1, 1)
    with pytest.raises(ValueError):
        generate_with_pose_tokens(lm, tok, emb, 5)


def test_prompt_hidden_equals_a_separate_pass_over_the_prompt(lm, tok):
    emb = _prompt(lm, tok)
    pose = tok.convert_tokens_to_ids(POSE_TOKEN)
    gen = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=3, return_prompt_hidden=True)
    with torch.no_grad():
        ref = lm(inputs_embeds=emb, output_hidden_states=True).hidden_states[-1][0]
    assert gen.prompt_hidden.shape == ref.shape
    assert torch.allclose(gen.prompt_hidden, ref, atol=1e-5)
    assert generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=3).prompt_hidden is None
