"""Greedy decoding that captures the hidden state feeding the pose head (ChatPose / LISA style).

ChatPose's answer contains a special token (trained as `[SEG]`, shown as `[POSE]`). Which
last-layer hidden state (after the final norm) goes through the pose head is a convention the
head was trained with, so it must match or every pose is wrong:

- `pose_state="before"` (ChatPose, LISA; the default): the state at the position *before* the
  pose token, i.e. the state whose logits produced it (training: `input_ids[:, 1:] == seg_id`).
  With a KV cache that is the last-position state of the decoding step whose argmax is the pose
  token (the prefill's last prompt position for the first step). A forced pose token uses the
  state of the step before it is appended.
- `pose_state="at"`: the state at the pose token itself (one step after it was sampled, when it
  is fed in). The default profile's heads were trained this way.

The cached path runs the LM's decoder and its output layer separately
(`get_decoder()` / `get_output_embeddings()`): the last-position state comes with every step at
no extra cost, logits are computed for the last position only, and no layer's states are kept.

`use_cache=False` reproduces the upstream way (the whole sequence recomputed at every step,
every layer's hidden states requested at every step); it exists for the decoding benchmark and
for tests that check both paths agree.
"""
from __future__ import annotations

import inspect
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
        pose_hidden: (P, H) last-layer hidden state (after the final norm) feeding the pose head,
            one per pose token (P may be 0): by default the state whose logits produced it.
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


POSE_STATE_BEFORE = "before"
POSE_STATE_AT = "at"
POSE_STATES = (POSE_STATE_BEFORE, POSE_STATE_AT)


class _CachedSteps:
    """KV-cached decoding steps; each returns (last-position last-layer state (H,), logits (V,))."""

    def __init__(self, lm, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, want_prompt: bool) -> None:
        self.lm = lm
        self.decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else None
        self.head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
        cfg = getattr(lm, "config", None)
        # logits = head(last state) only where the LM adds nothing after its output layer
        # (Llama, SmolLM2 do; Gemma 2's soft-capping or Cohere's logit scale do not)
        rescaled = any(getattr(cfg, k, None) for k in ("final_logit_softcapping", "logit_scale"))
        self.split = self.decoder is not None and self.head is not None and not rescaled
        self.mask = attention_mask
        self.past = None
        self.steps = 0
        self.prompt_hidden = None
        # transformers >= 5.2x names the KV cache argument `cache` (`past_key_values` before)
        fwd = self.decoder if self.split else lm
        params = inspect.signature(getattr(fwd, "forward", fwd)).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        state, logits, hidden = self._run(inputs_embeds=inputs_embeds, want_all=want_prompt)
        if want_prompt:
            self.prompt_hidden = hidden[0].detach().clone()
        self.first = (state, logits)

    def _run(self, want_all: bool = False, **inputs):
        if self.split:
            o = self.decoder(attention_mask=self.mask, use_cache=True, **{self.cache_arg: self.past}, **inputs)
            hidden = o.last_hidden_state  # (1, T, H), after the final norm
            logits = self.head(hidden[:, -1])[0]
        else:  # a model without a separable decoder: ask for the last layer's states
            o = self.lm(attention_mask=self.mask, use_cache=True, output_hidden_states=True,
                        **{self.cache_arg: self.past}, **inputs)
            hidden = _last_hidden(o)
            logits = o.logits[0, -1]
        self.past = o.cache if getattr(o, "cache", None) is not None else o.past_key_values
        self.steps += 1
        return hidden[0, -1], logits, (hidden if want_all else None)

    def feed(self, ids: list[int]):
        """Append `ids` (1..k tokens) to the cache; the state and logits at the last of them."""
        t = torch.tensor([ids], device=self.mask.device)
        self.mask = torch.cat((self.mask, self.mask.new_ones(1, len(ids))), dim=1)
        state, logits, _ = self._run(input_ids=t)
        return state, logits


class _RecomputeSteps:
    """Upstream-style steps: the whole sequence recomputed, every layer's states requested."""

    def __init__(self, lm, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, want_prompt: bool) -> None:
        self.lm = lm
        self.prompt = inputs_embeds
        self.prompt_mask = attention_mask
        self.fed: list[int] = []
        self.steps = 0
        o = self._run(inputs_embeds, attention_mask)
        hidden = _last_hidden(o)
        self.prompt_hidden = hidden[0].detach().clone() if want_prompt else None
        self.first = (hidden[0, -1], o.logits[0, -1])

    def _run(self, embeds, mask):
        # upstream keeps every layer's states at every step; we request them the same way
        o = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False, output_hidden_states=True)
        self.steps += 1
        return o

    def feed(self, ids: list[int]):
        self.fed.extend(ids)
        t = torch.tensor([self.fed], device=self.prompt.device)
        emb = self.lm.get_input_embeddings()(t).to(self.prompt.dtype)
        full = torch.cat((self.prompt, emb), dim=1)
        mask = torch.cat((self.prompt_mask, self.prompt_mask.new_ones(1, t.shape[1])), dim=1)
        o = self._run(full, mask)
        return _last_hidden(o)[0, -1], o.logits[0, -1]


@torch.no_grad()
def generate_with_pose_tokens(
    lm,
    tokenizer,
    inputs_embeds: torch.Tensor,
    pose_token_id: int,
    *,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 512,
    force_pose_token: bool = False,
    eos_token_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    return_prompt_hidden: bool = False,
    pose_state: str = POSE_STATE_BEFORE,
) -> Generation:
    """Greedy decoding of one answer that records the hidden state of each pose token.

    Args:
        lm: a Hugging Face causal LM (e.g. `LlamaForCausalLM`) accepting `inputs_embeds`.
        tokenizer: its tokenizer (used for decoding and the default end-of-sequence id).
        inputs_embeds: (1, T, H) prompt embeddings (image tokens already spliced in).
        pose_token_id: id of the pose token (`[SEG]` in the released checkpoint).
        attention_mask: (1, T) optional mask of the prompt (ones when None).
        max_new_tokens: most tokens sampled (a forced pose token may add one); 512 as upstream.
        force_pose_token: when the answer ends without a pose token, append one (before the
            end-of-sequence token when there is one). The caller decides whether a pose was
            asked for; `Generation.forced_pose` says whether it happened.
        eos_token_ids: ids that end the answer; default `tokenizer.eos_token_id`.
        use_cache: KV-cached decoding (True) or upstream-style full recomputation (False).
        return_prompt_hidden: also return the prompt's last-layer hidden states from the prefill.
        pose_state: "before" (the state whose logits produced the pose token: ChatPose, LISA)
            or "at" (the state at the pose token once fed in); see the module docstring.
    Returns:
        Generation; `pose_hidden` is (P, H) in the LM's dtype, on its device.
    """
    if inputs_embeds.ndim != 3 or inputs_embeds.shape[0] != 1:
        raise ValueError(f"inputs_embeds must be (1, T, H), got {tuple(inputs_embeds.shape)}")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if pose_state not in POSE_STATES:
        raise ValueError(f"pose_state must be one of {POSE_STATES}, got {pose_state!r}")
    if eos_token_ids is None:
        eos = getattr(tokenizer, "eos_token_id", None)
        eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    eos_set = {int(e) for e in eos_token_ids}
    if attention_mask is None:
        attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
    at = pose_state == POSE_STATE_AT
    run = (_CachedSteps if use_cache else _RecomputeSteps)(lm, inputs_embeds, attention_mask, return_prompt_hidden)

    generated: list[int] = []
    pose_states: list[torch.Tensor] = []
    n_fed = 0
    state, logits = run.first  # `state` is always the one whose logits are `logits`

    def feed_pending():
        nonlocal n_fed
        out = run.feed(generated[n_fed:])
        n_fed = len(generated)
        return out

    while True:
        tok = int(logits.argmax())
        generated.append(tok)
        is_pose = tok == pose_token_id
        if is_pose and not at:
            pose_states.append(state)
        if tok in eos_set:
            break
        if len(generated) >= max_new_tokens and not (is_pose and at):
            break
        state, logits = feed_pending()
        if is_pose and at:
            pose_states.append(state)
        if len(generated) >= max_new_tokens:
            break

    forced = False
    if force_pose_token and not pose_states:
        ended = generated[-1] in eos_set
        if ended:
            generated.pop()  # the pose token goes before the end of the answer
        if at:
            generated.append(int(pose_token_id))
            state, _ = feed_pending()
        elif not ended:
            state, _ = feed_pending()  # the answer was cut off: the state after its last token
            generated.append(int(pose_token_id))
        else:
            generated.append(int(pose_token_id))  # the state that produced the end token
        pose_states.append(state)
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
        steps=run.steps,
        prompt_hidden=run.prompt_hidden,
    )
