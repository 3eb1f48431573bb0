"""Greedy decoding that captures the hidden state of pose tokens (ChatPose / LISA style).

ChatPose's answer contains a special token (trained as `[SEG]`, shown as `[POSE]`); the
last-layer hidden state of the language model at that token goes through the pose head. With a
KV cache that hidden state is the last layer's output at the step where the token is *fed in*
(one step after it was sampled), so we ask the model for hidden states only at those steps
instead of keeping every layer's states for every step as the released code does.

`use_cache=False` reproduces the upstream way (the whole sequence recomputed at every step,
every layer's hidden states requested at every step); it exists for the decoding benchmark and
for tests that check both paths agree.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

POSE_TEXT = "[POSE]"


@dataclass(frozen=True)
class Generation:
    """The result of one greedy generation.

    Attributes:
        token_ids: generated ids, prompt excluded (an end-of-sequence id is kept when emitted;
            a forced pose token is included).
        text: decoded answer, special tokens stripped, each pose token rendered as "[POSE]".
        pose_hidden: (P, H) last-layer hidden state of each emitted pose token (P may be 0).
        forced_pose: True when `force_pose_token` appended the pose token.
        steps: number of forward passes run (prefill included).
        prompt_hidden: (T, H) last-layer hidden states of the prompt from the prefill pass, when
            asked for with `return_prompt_hidden` (saves a second pass over the prompt).
    """

    token_ids: list[int]
    text: str
    pose_hidden: torch.Tensor
    forced_pose: bool
    steps: int
    prompt_hidden: torch.Tensor | None = None

    @property
    def num_poses(self) -> int:
        return int(self.pose_hidden.shape[0])


def _last_hidden(out) -> torch.Tensor:
    """(B, T, H) last layer's output (after the final norm, as `hidden_states[-1]`)."""
    hs = getattr(out, "hidden_states", None)
    if not hs:
        raise RuntimeError("the language model returned no hidden_states although output_hidden_states=True")
    return hs[-1]


def render_answer(tokenizer, token_ids: Sequence[int], pose_token_id: int) -> str:
    """Decode `token_ids`: special tokens other than the pose token dropped, the pose token
    rendered as "[POSE]"."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    kept = [int(t) for t in token_ids if int(t) == pose_token_id or int(t) not in special]
    if not kept:
        return ""
    text = tokenizer.decode(kept, skip_special_tokens=False)
    n_pose = kept.count(pose_token_id)
    pose_str = tokenizer.convert_ids_to_tokens(pose_token_id) if n_pose else None
    if n_pose and (not pose_str or text.count(pose_str) != n_pose):
        # the surface form is ambiguous: decode the pieces between pose tokens separately
        pieces: list[list[int]] = [[]]
        for t in kept:
            pieces.append([]) if t == pose_token_id else pieces[-1].append(t)
        text = f" {POSE_TEXT} ".join(tokenizer.decode(p, skip_special_tokens=False) for p in pieces)
    elif n_pose:
        text = text.replace(pose_str, f" {POSE_TEXT} ")
    # tidy the spaces the pose token leaves around punctuation ("is [POSE] ." -> "is [POSE].")
    text = " ".join(text.split())
    return re.sub(r"\s+([.,!?;:])", r"\1", text)


@torch.no_grad()
def generate_with_pose_tokens(
    lm,
    tokenizer,
    inputs_embeds: torch.Tensor,
    pose_token_id: int,
    *,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 32,
    force_pose_token: bool = False,
    eos_token_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    return_prompt_hidden: bool = False,
) -> Generation:
    """Greedy decoding of one answer that records the pose tokens' hidden states.

    Args:
        lm: a Hugging Face causal LM (e.g. `LlamaForCausalLM`) accepting `inputs_embeds`.
        tokenizer: its tokenizer (used for decoding and the default end-of-sequence id).
        inputs_embeds: (1, T, H) prompt embeddings (image tokens already spliced in).
        pose_token_id: id of the pose token (`[SEG]` in the released checkpoint).
        attention_mask: (1, T) optional mask of the prompt (ones when None).
        max_new_tokens: most tokens sampled (a forced pose token may add one).
        force_pose_token: when the answer ends without a pose token, append one and feed it.
        eos_token_ids: ids that end the answer; default `tokenizer.eos_token_id`.
        use_cache: KV-cached decoding (True) or upstream-style full recomputation (False).
        return_prompt_hidden: also return the prompt's last-layer hidden states from the prefill.
    Returns:
        Generation; `pose_hidden` is (P, H) in the LM's dtype, on its device.
    """
    if inputs_embeds.ndim != 3 or inputs_embeds.shape[0] != 1:
        raise ValueError(f"inputs_embeds must be (1, T, H), got {tuple(inputs_embeds.shape)}")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if eos_token_ids is None:
        eos = getattr(tokenizer, "eos_token_id", None)
        eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    eos_set = {int(e) for e in eos_token_ids}
    device = inputs_embeds.device
    if attention_mask is None:
        attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=device)
    embed = lm.get_input_embeddings()

    generated: list[int] = []
    pose_states: list[torch.Tensor] = []
    steps = 0
    forced = False

    if use_cache:
        out = lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=True,
                 output_hidden_states=return_prompt_hidden)
        steps += 1
        past = out.past_key_values
        mask = attention_mask
        n_fed = 0

        def feed(token: int, want_hidden: bool):
            # feeds every generated token not yet in the cache (`token` is already appended)
            nonlocal past, mask, steps, n_fed
            ids = torch.tensor([generated[n_fed:]], device=device)
            mask = torch.cat((mask, mask.new_ones(1, ids.shape[1])), dim=1)
            o = lm(input_ids=ids, attention_mask=mask, past_key_values=past, use_cache=True,
                   output_hidden_states=want_hidden)
            steps += 1
            n_fed = len(generated)
            past = o.past_key_values
            return o
    else:
        prompt = inputs_embeds
        out = lm(inputs_embeds=prompt, attention_mask=attention_mask, use_cache=False, output_hidden_states=True)
        steps += 1

        def feed(token: int, want_hidden: bool):
            nonlocal steps
            ids = torch.tensor([generated], device=device)  # `token` is already appended
            full = torch.cat((prompt, embed(ids).to(prompt.dtype)), dim=1)
            mask = torch.cat((attention_mask, attention_mask.new_ones(1, ids.shape[1])), dim=1)
            # upstream keeps every layer's states at every step; we request them the same way
            o = lm(inputs_embeds=full, attention_mask=mask, use_cache=False, output_hidden_states=True)
            steps += 1
            return o

    prompt_hidden = _last_hidden(out)[0].detach().clone() if return_prompt_hidden else None
    next_tok = int(out.logits[0, -1].argmax())
    while True:
        generated.append(next_tok)
        if next_tok in eos_set:
            break
        is_pose = next_tok == pose_token_id
        if len(generated) >= max_new_tokens and not is_pose:
            break
        out = feed(next_tok, want_hidden=is_pose)
        if is_pose:
            pose_states.append(_last_hidden(out)[0, -1])
        if len(generated) >= max_new_tokens:
            break
        next_tok = int(out.logits[0, -1].argmax())

    if force_pose_token and not pose_states:
        if generated and generated[-1] in eos_set:
            generated.pop()  # the pose token goes before the end of the answer
        generated.append(int(pose_token_id))
        out = feed(int(pose_token_id), want_hidden=True)
        pose_states.append(_last_hidden(out)[0, -1])
        forced = True
        log.debug("answer ended without a pose token; one was appended (force_pose_token)")

    hidden_size = inputs_embeds.shape[-1]
    pose_hidden = (torch.stack(pose_states) if pose_states
                   else inputs_embeds.new_zeros((0, hidden_size)))
    return Generation(
        token_ids=generated,
        text=render_answer(tokenizer, generated, pose_token_id),
        pose_hidden=pose_hidden.detach().clone(),
        forced_pose=forced,
        steps=steps,
        prompt_hidden=prompt_hidden,
    )
