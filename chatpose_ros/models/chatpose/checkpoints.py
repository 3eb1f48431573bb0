"""ChatPose checkpoints: our layout (save / load), the CHATPOSE-V0 converter, LoRA merging.

Our layout (a folder)::

    chatpose_config.json      ChatPoseModelConfig
    llm/                      Hugging Face LlamaForCausalLM (config.json + *.safetensors)
    vision/                   Hugging Face CLIPVisionModel (config.json + *.safetensors)
    projector.safetensors     keys 0.weight 0.bias 2.weight 2.bias (Linear, GELU, Linear)
    pose_head.safetensors     keys net.0.weight net.0.bias net.2.weight net.2.bias
    preprocessor_config.json  CLIP image processor settings
    tokenizer files           with the pose token ("[SEG]")

The released CHATPOSE-V0 layout (converted by `chatpose-convert`): a merged LLaVA-1.5 folder
(`config.json` with `mm_*` keys, sharded `model-*.safetensors` or `pytorch_model-*.bin` with an
index, tokenizer with `[SEG]`) whose state dict holds the Llama weights under their Hugging
Face names (`model.embed_tokens`, `model.layers.N.*`, `model.norm`, `lm_head`), the projector as
`model.mm_projector.{0,2}` and the pose head as `model.text_hidden_fcs.0.{0,2}`; the CLIP tower
comes from its own folder (`--vision`). Only safetensors or `torch.load(weights_only=True)` is
ever used to read weights.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch

from chatpose_ros.core.body import NUM_JOINTS
from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from chatpose_ros.core.pose_head import PoseHead

from .model import ChatPoseModel, ChatPoseModelConfig, ImagePreprocessor, make_projector
from .tokenizer import load_tokenizer

log = logging.getLogger(__name__)

ROT6D_DIM = 6
CONFIG_FILE = "chatpose_config.json"
LLM_DIR = "llm"
VISION_DIR = "vision"
PROJECTOR_FILE = "projector.safetensors"
POSE_HEAD_FILE = "pose_head.safetensors"
PREPROCESSOR_FILE = "preprocessor_config.json"

# released CHATPOSE-V0 names
RELEASED_PROJECTOR_PREFIX = "model.mm_projector."
RELEASED_POSE_HEAD = {"model.text_hidden_fcs.0.0.weight": "net.0.weight", "model.text_hidden_fcs.0.0.bias": "net.0.bias",
                      "model.text_hidden_fcs.0.2.weight": "net.2.weight", "model.text_hidden_fcs.0.2.bias": "net.2.bias"}
RELEASED_IGNORED_PREFIXES = ("model.vision_tower.", "model.visual_model.", "model.vision_model.")
PROJECTOR_KEYS = ("0.weight", "0.bias", "2.weight", "2.bias")
LLAVA_CONFIG_KEYS = ("mm_vision_tower", "mm_hidden_size", "mm_projector_type", "mm_use_im_start_end",
                     "mm_use_im_patch_token", "mm_vision_select_layer", "mm_vision_select_feature",
                     "image_aspect_ratio", "freeze_mm_mlp_adapter", "tune_mm_mlp_adapter", "mm_patch_merge_type",
                     "image_grid_pinpoints", "mm_projector_lr", "tokenizer_model_max_length", "tokenizer_padding_side",
                     "use_mm_proj", "mm_vision_tower_lr", "unfreeze_mm_vision_tower", "out_dim", "train_mask_decoder",
                     "vision_pretrained", "vision_tower", "seg_token_idx")
# Image tokens the released model was trained with: its inference code hard-codes the image
# embedding length 575 (= 576 patches - 1) of CLIP ViT-L/14 at 336 px. The hidden size alone (1024)
# cannot tell that tower from the 224-px one (256 patches).
RELEASED_IMAGE_TOKENS = 576
# CLIP ViT-L/14-336 preprocessing (LLaVA-1.5) when the vision folder carries no preprocessor file
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# --------------------------------------------------------------------------- helpers
def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"{what} missing: {path}")
    return path


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    _require(path, "weights file")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], file: Path) -> None:
    """Strict load with a CheckpointError naming missing/unexpected keys and wrong shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{file.name}: missing keys {missing}, unexpected keys {unexpected}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{file.name}: key {k!r} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    module.load_state_dict(state)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA as the released inference (`--precision bf16`), float16 on a GPU
    without bf16 (before Ampere: Turing, Volta), float32 on CPU; otherwise the named dtype."""
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for but CUDA is not available")
    return dev


# --------------------------------------------------------------------------- our layout
def save_checkpoint(model: ChatPoseModel, out: str | Path) -> Path:
    """Write `model` in our layout under `out` (created)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(model.config.to_json(), indent=2))
    model.lm.save_pretrained(out / LLM_DIR)
    model.vision.save_pretrained(out / VISION_DIR)
    _save_safetensors(model.projector.state_dict(), out / PROJECTOR_FILE)
    _save_safetensors(model.pose_head.state_dict(), out / POSE_HEAD_FILE)
    model.tokenizer.save_pretrained(out)
    p = model.preprocessor
    (out / PREPROCESSOR_FILE).write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": p.size},
        "crop_size": {"height": p.crop, "width": p.crop}, "image_mean": list(p.mean), "image_std": list(p.std),
        "rescale_factor": p.rescale, "do_resize": True, "do_center_crop": True, "do_normalize": True,
        "do_rescale": True}, indent=2))
    log.info("checkpoint written to %s", out)
    return out


def vision_fingerprint(ckpt: str | Path) -> str:
    """Short sha256 over name, size and mtime of the vision tower and projector files: the key of
    exported ONNX files (changes whenever those weights are rewritten)."""
    root = Path(ckpt)
    h = hashlib.sha256()
    for f in sorted((root / VISION_DIR).glob("*")) + [root / PROJECTOR_FILE, root / CONFIG_FILE]:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def checkpoint_fingerprint(ckpt: str | Path, lora_adapter: str | Path | None = None) -> str:
    """Short sha256 over the checkpoint's config and weight-file names and sizes (cheap)."""
    h = hashlib.sha256()
    for root in [Path(ckpt)] + ([Path(lora_adapter)] if lora_adapter else []):
        for f in sorted(root.rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(root)).encode())
                if f.suffix == ".json":
                    h.update(f.read_bytes())
                else:
                    h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:12]


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                    lora_adapter: str | Path | None = None) -> ChatPoseModel:
    """Load a checkpoint in our layout (optionally merging a PEFT LoRA adapter into the LLM).

    Raises CheckpointError naming the missing file / key / bad shape.
    """
    from transformers import CLIPVisionModel, LlamaForCausalLM

    root = Path(path).expanduser()
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {root}")
    dev = resolve_device(device) if isinstance(device, str) else device
    dt = resolve_dtype(dtype, dev) if isinstance(dtype, str) else dtype
    config = ChatPoseModelConfig.load(_require(root / CONFIG_FILE, "model config"))
    for sub in (LLM_DIR, VISION_DIR):
        _require(root / sub / "config.json", f"{sub}/config.json")
    tokenizer = load_tokenizer(root)
    try:
        lm = LlamaForCausalLM.from_pretrained(str(root / LLM_DIR), dtype=dt, local_files_only=True)
        vision = CLIPVisionModel.from_pretrained(str(root / VISION_DIR), dtype=dt, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot load the LLM or vision tower from {root}: {exc}") from exc
    if lora_adapter:
        lm = merge_lora_into(lm, lora_adapter)
    hidden = lm.config.hidden_size
    projector = make_projector(vision.config.hidden_size, hidden)
    _load_into(projector, _load_safetensors(root / PROJECTOR_FILE), root / PROJECTOR_FILE)
    head = PoseHead(hidden, config.pose_head_inner, config.num_joints)
    head_file = root / POSE_HEAD_FILE
    if lora_adapter and (Path(lora_adapter) / POSE_HEAD_FILE).exists():
        head_file = Path(lora_adapter) / POSE_HEAD_FILE  # training saves its pose head beside the adapter
    _load_into(head, _load_safetensors(head_file), head_file)
    pre_dict = json.loads(_require(root / PREPROCESSOR_FILE, "image processor config").read_text())
    pre = ImagePreprocessor.from_dict(pre_dict, pad_to_square=config.image_aspect_ratio == "pad")
    model = ChatPoseModel(config, vision, projector.to(dt), lm, head, tokenizer, pre)
    model.pose_head.float()  # tiny; float32 keeps the 6D Gram-Schmidt accurate
    model.checkpoint_dir = root
    return model.to(dev).eval()


def merge_lora_into(lm, adapter: str | Path):
    """Load a PEFT LoRA adapter onto `lm` and merge it (`merge_and_unload`). Returns the plain LM."""
    from peft import PeftModel

    adapter = Path(adapter).expanduser()
    _require(adapter / "adapter_config.json", "LoRA adapter_config.json")
    try:
        merged = PeftModel.from_pretrained(lm, str(adapter), is_trainable=False).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"cannot apply LoRA adapter {adapter}: {exc}") from exc
    log.info("LoRA adapter %s merged into the LLM", adapter)
    return merged


# --------------------------------------------------------------------------- converter
def _released_weight_files(src: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.exists():
            try:
                files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError) as exc:
                raise CheckpointError(f"{index}: bad index ({exc})") from exc
            for f in files:
                _require(src / f, f"weight shard named in {index_name}")
            return [src / f for f in files]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).exists():
            return [src / single]
    raise CheckpointError(f"no weights in {src}: expected model.safetensors[.index.json] or pytorch_model.bin[.index.json]")


def _iter_shard(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    if path.suffix == ".safetensors":
        yield from _load_safetensors(path).items()
    else:
        try:  # weights_only: never unpickle arbitrary objects
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors of many kinds
            raise CheckpointError(f"cannot read {path} safely (weights_only=True): {exc}") from exc
        yield from state.items()


def convert_released(src: str | Path, vision: str | Path, out: str | Path, *, pose_token: str = "[SEG]",
                     image_processor: str | Path | None = None, image_tokens: int = RELEASED_IMAGE_TOKENS) -> Path:
    """Convert a released CHATPOSE-V0 folder (+ CLIP tower folder) into our layout.

    The Llama weights are streamed shard by shard (never the whole 13B model in memory).
    `image_tokens`: the image tokens the checkpoint was trained with (576: CLIP ViT-L/14 at 336
    px); a tower giving another count is refused, and the count is recorded for every load.
    The tokenizer needs the pose token; `<im_start>`/`<im_end>` are used as tokens when it has
    them (merged with `--use_mm_start_end`), else as plain text, as the released inference does.
    """
    from safetensors.torch import save_file
    from transformers import CLIPVisionModel, LlamaConfig

    src, vision, out = Path(src).expanduser(), Path(vision).expanduser(), Path(out).expanduser()
    src_cfg_file = _require(src / "config.json", "released config.json")
    try:
        src_cfg = json.loads(src_cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{src_cfg_file}: {exc}") from exc
    for key in ("hidden_size", "vocab_size", "num_hidden_layers"):
        if key not in src_cfg:
            raise CheckpointError(f"{src_cfg_file} lacks {key!r}")
    hidden, vocab = int(src_cfg["hidden_size"]), int(src_cfg["vocab_size"])
    _require(vision / "config.json", "CLIP vision tower config.json (--vision)")
    tokenizer = load_tokenizer(src)  # the released slow tokenizer: tokenizer.model + added_tokens.json
    try:
        tower = CLIPVisionModel.from_pretrained(str(vision), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the CLIP tower ({vision}): {exc}") from exc
    if pose_token not in tokenizer.get_vocab():
        raise CheckpointError(f"the released tokenizer has no {pose_token!r} token")
    mm_hidden = int(src_cfg.get("mm_hidden_size", tower.config.hidden_size))
    if mm_hidden != tower.config.hidden_size:
        raise CheckpointError(f"mm_hidden_size={mm_hidden} but the CLIP tower has hidden size {tower.config.hidden_size}")
    select_feature = str(src_cfg.get("mm_vision_select_feature", "patch"))
    side, patch = int(tower.config.image_size), int(tower.config.patch_size)
    n_tokens = (side // patch) ** 2 + (1 if select_feature == "cls_patch" else 0)
    if n_tokens != image_tokens:
        raise CheckpointError(
            f"the CLIP tower in {vision} gives {n_tokens} image tokens ({side} px, patch {patch}) but the checkpoint "
            f"was trained with {image_tokens} (the released ChatPose: {RELEASED_IMAGE_TOKENS}, CLIP ViT-L/14 at 336 px, "
            f"e.g. clip-vit-large-patch14-336); give the tower it was trained with (or --image-tokens {n_tokens} "
            "if this tower is meant)")
    if src_cfg.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise CheckpointError(f"mm_projector_type {src_cfg['mm_projector_type']!r} unsupported (expected mlp2x_gelu)")

    out.mkdir(parents=True, exist_ok=True)
    (out / LLM_DIR).mkdir(exist_ok=True)
    projector: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    weight_map: dict[str, str] = {}
    ignored = 0
    total_size = 0
    for i, shard in enumerate(_released_weight_files(src)):
        llm_part: dict[str, torch.Tensor] = {}
        for k, v in _iter_shard(shard):
            if k.startswith(RELEASED_PROJECTOR_PREFIX):
                projector[k[len(RELEASED_PROJECTOR_PREFIX):]] = v
            elif k in RELEASED_POSE_HEAD:
                head[RELEASED_POSE_HEAD[k]] = v
            elif k.startswith(RELEASED_IGNORED_PREFIXES) or k.startswith("model.text_hidden_fcs."):
                ignored += 1
            elif k.startswith("model.") or k == "lm_head.weight":
                llm_part[k] = v.contiguous()
            else:
                ignored += 1
                log.warning("ignoring unknown key %s in %s", k, shard.name)
        if llm_part:
            name = f"model-{i + 1:05d}.safetensors"
            save_file(llm_part, str(out / LLM_DIR / name), metadata={"format": "pt"})
            weight_map.update({k: name for k in llm_part})
            total_size += sum(v.numel() * v.element_size() for v in llm_part.values())
    if ignored:
        log.info("%d released keys not used (vision tower copies, dropout)", ignored)

    # check the Llama keys and shapes against the config
    layers = int(src_cfg["num_hidden_layers"])
    expect = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}
    for n in range(layers):
        expect[f"model.layers.{n}.self_attn.q_proj.weight"] = (hidden, hidden)
        expect[f"model.layers.{n}.input_layernorm.weight"] = (hidden,)
    missing = sorted(k for k in expect if k not in weight_map)
    if missing:
        raise CheckpointError(f"released weights lack LLM keys: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    shapes = _shapes_of(out / LLM_DIR, weight_map, list(expect))
    for k, shape in expect.items():
        if shapes[k] != shape:
            raise CheckpointError(f"released key {k!r} has shape {shapes[k]}, expected {shape}")
    if len(tokenizer) > vocab:
        raise CheckpointError(f"tokenizer has {len(tokenizer)} tokens but the embeddings only {vocab}")
    for k in PROJECTOR_KEYS:
        if k not in projector:
            raise CheckpointError(f"released weights lack projector key {RELEASED_PROJECTOR_PREFIX + k!r}")
    proj_shapes = {"0.weight": (hidden, mm_hidden), "0.bias": (hidden,), "2.weight": (hidden, hidden), "2.bias": (hidden,)}
    for k, shape in proj_shapes.items():
        if tuple(projector[k].shape) != shape:
            raise CheckpointError(
                f"released key {RELEASED_PROJECTOR_PREFIX + k!r} has shape {tuple(projector[k].shape)}, expected {shape}")
    inv = {v: k for k, v in RELEASED_POSE_HEAD.items()}
    for k in inv:
        if k not in head:
            raise CheckpointError(f"released weights lack pose head key {inv[k]!r}")
    inner = int(head["net.0.weight"].shape[0])
    out_dim = NUM_JOINTS * ROT6D_DIM
    head_shapes = {"net.0.weight": (inner, hidden), "net.0.bias": (inner,), "net.2.bias": (out_dim,),
                   "net.2.weight": (out_dim, inner)}
    for k, shape in head_shapes.items():
        if tuple(head[k].shape) != shape:
            raise CheckpointError(f"released key {inv[k]!r} has shape {tuple(head[k].shape)}, expected {shape}")

    llama_cfg = {k: v for k, v in src_cfg.items() if k not in LLAVA_CONFIG_KEYS and not k.startswith("mm_")}
    llama_cfg.update(model_type="llama", architectures=["LlamaForCausalLM"])
    for k in ("_name_or_path", "transformers_version"):
        llama_cfg.pop(k, None)
    LlamaConfig(**llama_cfg).save_pretrained(out / LLM_DIR)
    (out / LLM_DIR / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total_size}, "weight_map": weight_map}, indent=2))
    _save_safetensors(projector, out / PROJECTOR_FILE)
    _save_safetensors(head, out / POSE_HEAD_FILE)
    tower.save_pretrained(out / VISION_DIR)
    tokenizer.save_pretrained(out)
    pre_src = Path(image_processor) if image_processor else vision / PREPROCESSOR_FILE
    if pre_src.exists():
        crop = ImagePreprocessor.from_dict(json.loads(pre_src.read_text()), pad_to_square=False).crop
        if crop != side:
            raise CheckpointError(f"{pre_src} crops images to {crop} px but the CLIP tower takes {side} px")
        shutil.copyfile(pre_src, out / PREPROCESSOR_FILE)
    else:
        log.warning("no %s in %s: using CLIP defaults at %d px", PREPROCESSOR_FILE, vision, side)
        (out / PREPROCESSOR_FILE).write_text(json.dumps({
            "size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side},
            "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}, indent=2))
    # The released inference code always wraps the image in <im_start>/<im_end> and always
    # resizes + centre-crops, whatever config.json says (LLaVA's "pad" was for its own training).
    for key, upstream in (("mm_use_im_start_end", True), ("image_aspect_ratio", "crop")):
        if key in src_cfg and src_cfg[key] != upstream:
            log.info("config.json says %s=%r; the released inference code uses %r, and so do we",
                     key, src_cfg[key], upstream)
    config = ChatPoseModelConfig(
        pose_token=pose_token,
        mm_use_im_start_end=True,
        mm_vision_select_layer=int(src_cfg.get("mm_vision_select_layer", -2)),
        mm_vision_select_feature=str(src_cfg.get("mm_vision_select_feature", "patch")),
        image_aspect_ratio="crop",
        pose_head_inner=inner,
        image_tokens=image_tokens,
    )
    absent = [t for t in (config.im_start_token, config.im_end_token) if t not in tokenizer.get_vocab()]
    if absent:
        log.info("the tokenizer has no %s token (merged without --use_mm_start_end): the image is wrapped in "
                 "them as plain text, as the released inference does", " / ".join(absent))
    (out / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2))
    log.info("converted %s (+ vision %s) into %s", src, vision, out)
    return out


def _shapes_of(folder: Path, weight_map: dict[str, str], keys: list[str]) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    by_file: dict[str, list[str]] = {}
    for k in keys:
        by_file.setdefault(weight_map[k], []).append(k)
    for fname, ks in by_file.items():
        with safe_open(str(folder / fname), framework="pt") as f:
            for k in ks:
                shapes[k] = tuple(f.get_slice(k).get_shape())
    return shapes


# --------------------------------------------------------------------------- console tools
def convert_main(argv: list[str] | None = None) -> int:
    """`chatpose-convert --src DIR --vision DIR --out DIR`."""
    ap = argparse.ArgumentParser(prog="chatpose-convert", description="Convert a released CHATPOSE-V0 folder "
                                 "(+ its CLIP tower folder) into the chatpose_ros checkpoint layout.")
    ap.add_argument("--src", required=True, help="released merged LLaVA-1.5 ChatPose folder")
    ap.add_argument("--vision", required=True, help="CLIP vision tower folder (e.g. clip-vit-large-patch14-336)")
    ap.add_argument("--out", required=True, help="output folder (our layout)")
    ap.add_argument("--pose-token", default="[SEG]", help="the pose token in the released tokenizer")
    ap.add_argument("--image-processor", default=None, help="preprocessor_config.json (default: from --vision)")
    ap.add_argument("--image-tokens", type=int, default=RELEASED_IMAGE_TOKENS,
                    help="image tokens the checkpoint was trained with; the --vision tower must give as many "
                         f"(default {RELEASED_IMAGE_TOKENS}: CLIP ViT-L/14 at 336 px, as the released ChatPose)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        convert_released(args.src, args.vision, args.out, pose_token=args.pose_token,
                         image_processor=args.image_processor, image_tokens=args.image_tokens)
    except ModelLoadError as exc:
        log.error("%s", exc)
        return 2
    return 0


def merge_main(argv: list[str] | None = None) -> int:
    """`chatpose-merge-lora --checkpoint DIR --adapter DIR --out DIR`."""
    ap = argparse.ArgumentParser(prog="chatpose-merge-lora", description="Merge a PEFT LoRA adapter (and the "
                                 "pose head trained with it) into a checkpoint; writes a new checkpoint.")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = load_checkpoint(args.checkpoint, lora_adapter=args.adapter, dtype="float32")
        save_checkpoint(model, args.out)
    except ModelLoadError as exc:
        log.error("%s", exc)
        return 2
    return 0
