"""core/decoding.py on a tiny random LlamaForCausalLM (offline)."""
from __future__ import annotations

import pytest
import torch

from chatpose_ros.core.decoding import POSE_STATE_AT, Generation, generate_with_pose_tokens, render_answer
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


def test_pose_hidden_is_the_state_before_the_pose_token_in_a_real_llama(lm, tok):
    """Upstream (ChatPose/LISA): the last-layer state at the position *before* the pose token;
    the default profile's "at" option: the state at the pose token itself."""
    emb = _prompt(lm, tok)
    lm2, pose = _make_emit_pose(lm, tok, emb)
    g = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=6, eos_token_ids=[])
    g_at = generate_with_pose_tokens(lm2, tok, emb, pose, max_new_tokens=6, eos_token_ids=[], pose_state=POSE_STATE_AT)
    k = g.token_ids.index(pose)
    ids = torch.tensor([g.token_ids[: k + 1]])
    with torch.no_grad():
        full = torch.cat((emb, lm2.get_input_embeddings()(ids)), 1)
        states = lm2(inputs_embeds=full, output_hidden_states=True).hidden_states[-1][0]
    seg = emb.shape[1] + k  # position of the pose token in the full sequence
    torch.testing.assert_close(g.pose_hidden[0], states[seg - 1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(g_at.pose_hidden[0], states[seg], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(states[seg - 1], states[seg], atol=1e-3)


class _Out:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _PositionLM(torch.nn.Module):
    """A causal LM built so that the pose head's input is known: the last-layer state at position
    p is [p, id of the token at p (-1 in the prompt), 0, 0], and the answer is scripted by position
    (`script[i]` is the i-th answer token). Supports the cached and the recompute path."""

    H = 4

    def __init__(self, prompt_len: int, script: list[int], vocab: int = 12) -> None:
        super().__init__()
        self.prompt_len, self.script, self.vocab = prompt_len, script, vocab
        table = torch.zeros(vocab, self.H)
        table[:, 1] = torch.arange(vocab, dtype=torch.float32)
        self.embed = torch.nn.Embedding.from_pretrained(table)
        lm = self

        class Head(torch.nn.Module):
            def forward(self, h):  # (..., H) -> (..., V): one-hot of the scripted next token
                i = (h[..., 0].round().long() - lm.prompt_len + 1).clamp(0, len(lm.script) - 1)
                return torch.nn.functional.one_hot(torch.tensor(lm.script)[i], lm.vocab).float()

        self.head = Head()

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.head

    def get_decoder(self):
        lm = self

        def decoder(attention_mask=None, cache=None, use_cache=True, input_ids=None, inputs_embeds=None):
            x = lm.embed(input_ids) if inputs_embeds is None else inputs_embeds
            start = cache or 0
            return _Out(last_hidden_state=lm._states(x, start), cache=start + x.shape[1])

        return decoder

    def _states(self, x, start):
        pos = torch.arange(start, start + x.shape[1], dtype=torch.float32)
        h = torch.zeros(1, x.shape[1], self.H)
        h[0, :, 0] = pos
        h[0, :, 1] = x[0, :, 1]
        return h

    def forward(self, inputs_embeds=None, attention_mask=None, use_cache=False, output_hidden_states=True):
        h = self._states(inputs_embeds, 0)
        return _Out(hidden_states=(h, h), logits=self.head(h))


class _Tok:
    eos_token_id = 2
    all_special_ids = [2]

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(map(str, ids))

    def convert_ids_to_tokens(self, i):
        return str(i)


def _position_prompt(n: int = 3) -> torch.Tensor:
    emb = torch.zeros(1, n, _PositionLM.H)
    emb[0, :, 1] = -1.0
    return emb


@pytest.mark.parametrize("use_cache", [True, False])
def test_pose_head_input_is_the_state_that_emitted_the_pose_token(use_cache):
    T, POSE = 3, 7
    lm = _PositionLM(T, [5, POSE, 8, 2])
    g = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, use_cache=use_cache)
    assert g.token_ids == [5, POSE, 8, 2] and not g.forced_pose
    # the pose token sits at position T + 1; the head reads position T (the token 5 before it)
    assert g.pose_hidden.tolist() == [[T, 5, 0, 0]]
    g_at = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, use_cache=use_cache, pose_state=POSE_STATE_AT)
    assert g_at.pose_hidden.tolist() == [[T + 1, POSE, 0, 0]]


@pytest.mark.parametrize("use_cache", [True, False])
def test_forced_pose_uses_the_state_of_the_step_before_it_is_appended(use_cache):
    T, POSE = 3, 7
    lm = _PositionLM(T, [5, 6, 2])  # ends without a pose token
    g = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, force_pose_token=True, use_cache=use_cache)
    # the pose token replaces the end token: the state whose logits produced the end token
    assert g.token_ids == [5, 6, POSE] and g.forced_pose
    assert g.pose_hidden.tolist() == [[T + 1, 6, 0, 0]]
    # cut off after two tokens: the state after the last token (where the next token would come from)
    lm = _PositionLM(T, [5, 6, 8, 9, 2])
    g = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, max_new_tokens=2, force_pose_token=True,
                                  use_cache=use_cache)
    assert g.token_ids == [5, 6, POSE] and g.forced_pose
    assert g.pose_hidden.tolist() == [[T + 1, 6, 0, 0]]
    g_at = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, max_new_tokens=2, force_pose_token=True,
                                     use_cache=use_cache, pose_state=POSE_STATE_AT)
    assert g_at.pose_hidden.tolist() == [[T + 2, POSE, 0, 0]]
    # without forcing: no pose, none made up
    g = generate_with_pose_tokens(lm, _Tok(), _position_prompt(T), POSE, max_new_tokens=2, use_cache=use_cache)
    assert g.pose_hidden.shape == (0, _PositionLM.H) and not g.forced_pose


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
    assert g.token_ids == [pose] and g.forced_pose and g.steps == 1  # the prefill's state: nothing to feed
    g = generate_with_pose_tokens(lm, tok, emb, pose, max_new_tokens=8, eos_token_ids=[eos], force_pose_token=True,
                                  pose_state=POSE_STATE_AT)
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
