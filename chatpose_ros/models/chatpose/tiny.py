"""Tiny random models and tokenizers, built offline, for tests, CI and the decoding benchmark.

Nothing here downloads: the tokenizer is a `tokenizers` WordLevel model wrapped in
`PreTrainedTokenizerFast`, the models are random `transformers` configs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Words of the tiny vocabulary: enough for the conversation template and the test answers.
TINY_WORDS: tuple[str, ...] = tuple(
    """a chat between curious human and an artificial intelligence assistant . the gives helpful ,
    detailed polite answers to human's questions user : assistant: user: sure it is what pose of
    person who in image ? describe body sitting standing running man woman left right arm leg
    raised up down with hands on hips yes no there one two people please output smpl can you
    doing jumping waving walking lying""".split()
)
TINY_SPECIAL: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<pad>")
TINY_ADDED: tuple[str, ...] = ("<im_patch>", "<im_start>", "<im_end>")
POSE_TOKEN = "[SEG]"


def tiny_tokenizer(with_pose_token: bool = True):
    """A word-level `PreTrainedTokenizerFast` (whitespace split, case-sensitive, no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys(TINY_SPECIAL + TINY_WORDS))
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    fast.add_tokens(list(TINY_ADDED), special_tokens=True)
    if with_pose_token:
        fast.add_tokens([POSE_TOKEN], special_tokens=False)
    return fast


@dataclass(frozen=True)
class TinySizes:
    """Sizes of the tiny random model (defaults: fast enough for CI on one CPU core)."""

    hidden: int = 32
    layers: int = 2
    heads: int = 4
    intermediate: int = 64
    vision_hidden: int = 32
    vision_layers: int = 2
    vision_heads: int = 4
    image_size: int = 32
    patch_size: int = 8
    max_positions: int = 256


TINY_IMAGE_TOKENS = (TinySizes().image_size // TinySizes().patch_size) ** 2  # the tiny tower's patch count


def tiny_llama(vocab_size: int, sizes: TinySizes = TinySizes(), seed: int = 0):
    """A random `LlamaForCausalLM` with the given vocabulary size."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
        num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads, num_key_value_heads=sizes.heads,
        max_position_embeddings=sizes.max_positions, bos_token_id=1, eos_token_id=2, pad_token_id=3,
        tie_word_embeddings=False, initializer_range=0.1,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_clip_vision_config(sizes: TinySizes = TinySizes()):
    """A tiny `CLIPVisionConfig`."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=sizes.vision_hidden, intermediate_size=sizes.vision_hidden * 2,
        num_hidden_layers=sizes.vision_layers, num_attention_heads=sizes.vision_heads,
        image_size=sizes.image_size, patch_size=sizes.patch_size, projection_dim=sizes.vision_hidden,
    )


def tiny_image_processor_config(sizes: TinySizes = TinySizes()) -> dict:
    """A CLIP image processor config (as `preprocessor_config.json`) for the tiny tower."""
    return {
        "image_processor_type": "CLIPImageProcessor",
        "crop_size": {"height": sizes.image_size, "width": sizes.image_size},
        "size": {"shortest_edge": sizes.image_size},
        "do_resize": True, "do_center_crop": True, "do_normalize": True, "do_rescale": True,
        "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    }


def write_tiny_released(src_dir, vision_dir, sizes: TinySizes = TinySizes(), seed: int = 0, shards: int = 2, *,
                        tokenizer_dir=None, config_overrides: dict | None = None) -> None:
    """Write a tiny random checkpoint in EXACTLY the released CHATPOSE-V0 layout.

    `src_dir`: LLaVA-style `config.json` (with `mm_*` keys), sharded `model-0000K-of-0000N.safetensors`
    + `model.safetensors.index.json` (Llama weights, `model.mm_projector.{0,2}`,
    `model.text_hidden_fcs.0.{0,2}`), tokenizer with `[SEG]`. `vision_dir`: a CLIP vision folder
    with `preprocessor_config.json`.

    `tokenizer_dir`: a slow-tokenizer folder (sentencepiece `tokenizer.model`, `added_tokens.json`,
    ... as the released checkpoint ships it) copied in instead of the tiny word-level tokenizer;
    `config_overrides`: keys replaced in the released `config.json` (None values are removed).
    """
    import shutil

    import json
    from pathlib import Path

    from safetensors.torch import save_file
    from transformers import CLIPVisionModel

    src, vis = Path(src_dir), Path(vision_dir)
    src.mkdir(parents=True, exist_ok=True)
    vis.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        from .tokenizer import load_tokenizer

        for f in Path(tokenizer_dir).iterdir():
            if f.is_file():
                shutil.copyfile(f, src / f.name)
        tok = load_tokenizer(src)
    else:
        tok = tiny_tokenizer()
    lm = tiny_llama(len(tok), sizes, seed)
    torch.manual_seed(seed + 1)
    vision = CLIPVisionModel(tiny_clip_vision_config(sizes)).eval()
    vision.save_pretrained(vis)
    (vis / "preprocessor_config.json").write_text(json.dumps(tiny_image_processor_config(sizes)))
    h, vh = sizes.hidden, sizes.vision_hidden
    state = {k: v.clone() for k, v in lm.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 2)
    state.update({
        "model.mm_projector.0.weight": torch.randn(h, vh, generator=g) * 0.1, "model.mm_projector.0.bias": torch.zeros(h),
        "model.mm_projector.2.weight": torch.randn(h, h, generator=g) * 0.1, "model.mm_projector.2.bias": torch.zeros(h),
        "model.text_hidden_fcs.0.0.weight": torch.randn(h, h, generator=g) * 0.1,
        "model.text_hidden_fcs.0.0.bias": torch.zeros(h),
        "model.text_hidden_fcs.0.2.weight": torch.randn(144, h, generator=g) * 0.1,
        "model.text_hidden_fcs.0.2.bias": torch.zeros(144),
    })
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        part = keys[i::shards]
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k].contiguous() for k in part}, str(src / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (src / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cfg = lm.config.to_dict()
    cfg.update({
        "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
        "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": vh,
        "mm_projector_type": "mlp2x_gelu", "mm_use_im_start_end": True, "mm_use_im_patch_token": False,
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "image_aspect_ratio": "pad",
        "tune_mm_mlp_adapter": False, "freeze_mm_mlp_adapter": False, "out_dim": 144,
    })
    for k, v in (config_overrides or {}).items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (src / "config.json").write_text(json.dumps(cfg, indent=2))
    if tokenizer_dir is None:
        tok.save_pretrained(src)
