"""The ChatPose model: CLIP vision tower -> MLP projector -> Llama with a pose token -> pose head.

LLaVA-1.5 style. The prompt carries one image placeholder that is replaced by the N projected
patch features of the image, N read from the vision config ((image_size / patch_size)^2, CLS
dropped as LLaVA does) — never a constant. The pose token's last-layer hidden state goes
through `PoseHead` -> 24 rotations (joint 0 = global orientation) -> axis-angle theta.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chatpose_ros.core.body import NUM_JOINTS
from chatpose_ros.core.decoding import Generation, generate_with_pose_tokens
from chatpose_ros.core.errors import CheckpointError, ConfigError, InvalidImageError
from chatpose_ros.core.geometry import matrix_to_axis_angle
from chatpose_ros.core.pose_head import PoseHead

from .tokenizer import encode_upstream

log = logging.getLogger(__name__)

# LLaVA's sentinel id for the image placeholder inside token id lists (never a real token id).
IMAGE_TOKEN_INDEX = -200
IMAGE_PLACEHOLDER = "<image>"
POSE_TEXT = "[POSE]"
CONFIG_FORMAT = "chatpose_ros/1"


# --------------------------------------------------------------------------- conversation templates
@dataclass(frozen=True)
class ConversationTemplate:
    """A LLaVA-style template: system line, two roles, separators."""

    system: str
    roles: tuple[str, str]
    sep: str
    sep2: str

    def prompt(self, turns: list[tuple[str, str | None]]) -> str:
        """The prompt for `turns` [(role_index 0|1 as str role name, text or None)].

        A final assistant turn with text None leaves the prompt open ("... ASSISTANT:").
        """
        out = self.system + self.sep
        for i, (role, text) in enumerate(turns):
            if text is None:
                out += role + ":"
            else:
                out += role + ": " + text + (self.sep if role == self.roles[0] else self.sep2)
        return out

    def question(self, query: str, with_image: bool) -> str:
        """The open prompt for one question: "<system> USER: <image>\\n{query} ASSISTANT:"."""
        user = f"{IMAGE_PLACEHOLDER}\n{query}" if with_image else query
        return self.prompt([(self.roles[0], user), (self.roles[1], None)])


CONVERSATION_TEMPLATES: dict[str, ConversationTemplate] = {
    "llava_v1": ConversationTemplate(
        system="A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions.",
        roles=("USER", "ASSISTANT"),
        sep=" ",
        sep2="</s>",
    ),
}


def get_template(name: str) -> ConversationTemplate:
    try:
        return CONVERSATION_TEMPLATES[name]
    except KeyError:
        raise ConfigError(f"unknown conversation template {name!r}; known: {sorted(CONVERSATION_TEMPLATES)}") from None


def tokenizer_image_token(prompt: str, tokenizer, image_token_index: int = IMAGE_TOKEN_INDEX,
                          add_bos: bool = True) -> list[int]:
    """Token ids of `prompt` with each "<image>" replaced by `image_token_index` (pure).

    As LLaVA's `tokenizer_image_token` under the released code's slow tokenizer: the text
    between placeholders is tokenized piece by piece with `tokenizer.encode_upstream` rules
    (whitespace next to added tokens stripped, each piece encoded on its own); a BOS id is
    prepended when `add_bos` and the tokenizer has one.
    """
    chunks = prompt.split(IMAGE_PLACEHOLDER)
    ids: list[int] = []
    if add_bos and getattr(tokenizer, "bos_token_id", None) is not None:
        ids.append(int(tokenizer.bos_token_id))
    for i, chunk in enumerate(chunks):
        if i > 0:
            ids.append(image_token_index)
        if chunk:
            ids.extend(encode_upstream(tokenizer, chunk))
    return ids


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ChatPoseModelConfig:
    """What the checkpoint says about the model (saved as `chatpose_config.json`).

    Attributes:
        conv_template: name in CONVERSATION_TEMPLATES.
        pose_token: the token whose hidden state gives the pose ("[SEG]" in CHATPOSE-V0).
        mm_use_im_start_end: wrap the image placeholder in <im_start> ... <im_end> (as tokens when
            the tokenizer has them, else as plain text: the released inference wraps it either way).
        im_start_token / im_end_token: those strings.
        mm_vision_select_layer: which hidden state of the vision tower feeds the projector.
        mm_vision_select_feature: "patch" (drop CLS, LLaVA default) or "cls_patch".
        image_aspect_ratio: "crop" (the released ChatPose code: resize the short side, centre
            crop; the default) or "pad" (LLaVA-1.5 training: pad to square with the mean colour).
        pose_head_inner: inner width of the pose head (None = LLM hidden size).
        image_tokens: image tokens the LLM was trained with (576 for CHATPOSE-V0); the vision
            tower must give as many (None: not recorded, not checked).
        num_joints: rotations predicted (24: SMPL incl. global orientation).
        format: layout version.
    """

    conv_template: str = "llava_v1"
    pose_token: str = "[SEG]"
    mm_use_im_start_end: bool = True
    im_start_token: str = "<im_start>"
    im_end_token: str = "<im_end>"
    mm_vision_select_layer: int = -2
    mm_vision_select_feature: str = "patch"
    image_aspect_ratio: str = "crop"
    pose_head_inner: int | None = None
    image_tokens: int | None = None
    num_joints: int = NUM_JOINTS
    format: str = CONFIG_FORMAT

    def __post_init__(self) -> None:
        if self.mm_vision_select_feature not in ("patch", "cls_patch"):
            raise ConfigError(f"mm_vision_select_feature must be 'patch' or 'cls_patch', got {self.mm_vision_select_feature!r}")
        if self.image_aspect_ratio not in ("pad", "crop"):
            raise ConfigError(f"image_aspect_ratio must be 'pad' or 'crop', got {self.image_aspect_ratio!r}")
        get_template(self.conv_template)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ChatPoseModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise CheckpointError(f"chatpose_config.json has unknown keys {sorted(unknown)}")
        if data.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
            raise CheckpointError(f"chatpose_config.json format {data.get('format')!r}, expected {CONFIG_FORMAT!r}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise CheckpointError(f"chatpose_config.json: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> ChatPoseModelConfig:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from exc


# --------------------------------------------------------------------------- image preprocessing
@dataclass(frozen=True)
class ImagePreprocessor:
    """CLIP preprocessing from a `preprocessor_config.json`: resize the shortest edge, centre
    crop, rescale, normalise (as `CLIPImageProcessor`, which the released code runs); with
    `pad_to_square` (LLaVA-1.5's "pad") the image is first padded to a square of the mean colour."""

    size: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1.0 / 255.0
    pad_to_square: bool = False

    @classmethod
    def from_dict(cls, d: dict, pad_to_square: bool) -> ImagePreprocessor:
        try:
            size = d["size"]
            size = int(size["shortest_edge"] if isinstance(size, dict) else size)
            crop = d.get("crop_size", size)
            crop = int(crop["height"] if isinstance(crop, dict) else crop)
            return cls(size=size, crop=crop, mean=tuple(float(v) for v in d["image_mean"]),
                       std=tuple(float(v) for v in d["image_std"]),
                       rescale=float(d.get("rescale_factor", 1.0 / 255.0)), pad_to_square=pad_to_square)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"preprocessor_config.json lacks or has a bad field: {exc}") from exc

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, crop, crop) float32 normalised pixels.

        Resize as `CLIPImageProcessor` (transformers 4.31): the short side to `size`, the long
        side to int(size * long / short), PIL bicubic on uint8; then the centre crop."""
        from PIL import Image

        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidImageError("image must be (H, W, 3) uint8 RGB")
        if self.pad_to_square:  # LLaVA's expand2square: the mean colour around the centred image
            h, w = image.shape[:2]
            side = max(h, w)
            canvas = np.empty((side, side, 3), np.uint8)
            canvas[:] = [int(m * 255) for m in self.mean]
            top, left = (side - h) // 2, (side - w) // 2
            canvas[top:top + h, left:left + w] = image
            image = canvas
        h, w = image.shape[:2]
        short, long = min(h, w), max(h, w)
        new_long = max(self.size, int(self.size * long / short))
        nh, nw = (new_long, self.size) if w <= h else (self.size, new_long)
        resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BICUBIC))
        top, left = (nh - self.crop) // 2, (nw - self.crop) // 2
        x = torch.from_numpy(np.array(resized[top:top + self.crop, left:left + self.crop], copy=True))
        x = x.permute(2, 0, 1).float() * self.rescale
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return ((x - mean) / std)[None]


# --------------------------------------------------------------------------- the model
class VisionEncoder(nn.Module):
    """CLIP vision tower + projector: (B, 3, H, W) pixels -> (B, N, hidden_llm) features.

    The seam the vision backends (torch / ONNX / TensorRT) implement.
    """

    def __init__(self, tower: nn.Module, projector: nn.Module, select_layer: int, select_feature: str) -> None:
        super().__init__()
        self.tower = tower
        self.projector = projector
        self.select_layer = select_layer
        self.select_feature = select_feature

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.tower(pixel_values=pixels, output_hidden_states=True)
        feats = out.hidden_states[self.select_layer]
        if self.select_feature == "patch":
            feats = feats[:, 1:]
        return self.projector(feats)


def make_projector(vision_hidden: int, llm_hidden: int) -> nn.Sequential:
    """LLaVA-1.5 `mlp2x_gelu`: Linear(vision, llm) -> GELU -> Linear(llm, llm)."""
    return nn.Sequential(nn.Linear(vision_hidden, llm_hidden), nn.GELU(), nn.Linear(llm_hidden, llm_hidden))


class ChatPoseModel(nn.Module):
    """The whole model. Build with `checkpoints.load_checkpoint` or `ChatPoseModel.build`."""

    def __init__(self, config: ChatPoseModelConfig, vision, projector: nn.Module, lm, pose_head: PoseHead,
                 tokenizer, preprocessor: ImagePreprocessor) -> None:
        super().__init__()
        self.config = config
        self.vision = vision
        self.projector = projector
        self.lm = lm
        self.pose_head = pose_head
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.checkpoint_dir: Path | None = None  # set by checkpoints.load_checkpoint
        self.template = get_template(config.conv_template)
        self.pose_token_id = self._token_id(config.pose_token)
        self.encoder = VisionEncoder(vision, projector, config.mm_vision_select_layer, config.mm_vision_select_feature)
        # ids of the image wrappers when the tokenizer has them as tokens; None: plain text
        self.im_start_id = self._optional_token_id(config.im_start_token) if config.mm_use_im_start_end else None
        self.im_end_id = self._optional_token_id(config.im_end_token) if config.mm_use_im_start_end else None
        if config.image_tokens is not None and self.num_image_tokens != config.image_tokens:
            vc = vision.config
            raise CheckpointError(f"the vision tower gives {self.num_image_tokens} image tokens ({vc.image_size} px, "
                                  f"patch {vc.patch_size}) but the model was trained with {config.image_tokens}")
        if lm.get_input_embeddings().weight.shape[0] < len(tokenizer):
            raise CheckpointError(f"LLM has {lm.get_input_embeddings().weight.shape[0]} token embeddings but the "
                                  f"tokenizer has {len(tokenizer)} tokens")

    def _token_id(self, token: str) -> int:
        tid = self._optional_token_id(token)
        if tid is None:
            raise CheckpointError(f"the tokenizer has no {token!r} token")
        return tid

    def _optional_token_id(self, token: str) -> int | None:
        if token not in self.tokenizer.get_vocab():
            return None
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == getattr(self.tokenizer, "unk_token_id", None):
            return None
        return int(tid)

    @classmethod
    def build(cls, config: ChatPoseModelConfig, vision_config, lm, tokenizer, preprocessor_dict: dict) -> ChatPoseModel:
        """A fresh model around `lm` (random vision tower, projector and pose head); adds the pose
        (and im_start/im_end) tokens to the tokenizer and resizes the embeddings."""
        from transformers import CLIPVisionModel

        new = [config.pose_token] if config.pose_token not in tokenizer.get_vocab() else []
        extra = [t for t in (config.im_start_token, config.im_end_token)
                 if config.mm_use_im_start_end and t not in tokenizer.get_vocab()]
        if new:
            tokenizer.add_tokens(new, special_tokens=False)
        if extra:
            tokenizer.add_tokens(extra, special_tokens=True)
        if lm.get_input_embeddings().weight.shape[0] < len(tokenizer):
            lm.resize_token_embeddings(len(tokenizer))
        vision = CLIPVisionModel(vision_config).eval()
        hidden = lm.config.hidden_size
        projector = make_projector(vision_config.hidden_size, hidden)
        head = PoseHead(hidden, config.pose_head_inner, config.num_joints)
        pre = ImagePreprocessor.from_dict(preprocessor_dict, pad_to_square=config.image_aspect_ratio == "pad")
        return cls(config, vision, projector, lm, head, tokenizer, pre).eval()

    # ---- sizes
    @property
    def hidden_size(self) -> int:
        return int(self.lm.config.hidden_size)

    @property
    def num_image_tokens(self) -> int:
        """N patch features per image, from the vision config ((image / patch)^2, + CLS if kept)."""
        vc = self.vision.config
        n = (vc.image_size // vc.patch_size) ** 2
        return n + (1 if self.config.mm_vision_select_feature == "cls_patch" else 0)

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm.get_input_embeddings().weight.dtype

    # ---- prompts
    def question_prompt(self, query: str, with_image: bool) -> str:
        prompt = self.template.question(query, with_image)
        return self._wrap_image(prompt)

    def _wrap_image(self, text: str) -> str:
        if self.config.mm_use_im_start_end:
            return text.replace(IMAGE_PLACEHOLDER, self.config.im_start_token + IMAGE_PLACEHOLDER + self.config.im_end_token)
        return text

    def prompt_ids(self, prompt: str) -> list[int]:
        return tokenizer_image_token(prompt, self.tokenizer)

    # ---- embeddings
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, hidden) projected patch features (torch path)."""
        return self.encoder(pixels.to(self.device, self.dtype))

    def embed_ids(self, ids: list[int], image_features: torch.Tensor | None) -> torch.Tensor:
        """Token ids with IMAGE_TOKEN_INDEX placeholders -> (T, hidden) embeddings.

        Args:
            ids: token ids; each IMAGE_TOKEN_INDEX is replaced by one image's N features.
            image_features: (I, N, hidden) for the I placeholders, or None when there are none.
        """
        n_img = sum(1 for t in ids if t == IMAGE_TOKEN_INDEX)
        have = 0 if image_features is None else image_features.shape[0]
        if n_img != have:
            raise ValueError(f"prompt has {n_img} image placeholders but {have} images were given")
        embed = self.lm.get_input_embeddings()
        pieces: list[torch.Tensor] = []
        run: list[int] = []
        k = 0
        for t in list(ids) + [None]:
            if t is None or t == IMAGE_TOKEN_INDEX:
                if run:
                    pieces.append(embed(torch.tensor(run, device=self.device)))
                    run = []
                if t is not None:
                    pieces.append(image_features[k].to(self.dtype))
                    k += 1
            else:
                run.append(int(t))
        return torch.cat(pieces, dim=0)

    # ---- inference
    @torch.no_grad()
    def generate(self, image_features: torch.Tensor | None, query: str, *, max_new_tokens: int = 512,
                 force_pose_token: bool = False, use_cache: bool = True) -> Generation:
        """Answer `query`. image_features: (1, N, hidden) from a vision backend, or None.

        The pose head's input is the state before each `[SEG]` (upstream's convention)."""
        prompt = self.question_prompt(query, image_features is not None)
        emb = self.embed_ids(self.prompt_ids(prompt), image_features)[None]
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        return generate_with_pose_tokens(self.lm, self.tokenizer, emb, self.pose_token_id,
                                         max_new_tokens=max_new_tokens, force_pose_token=force_pose_token,
                                         eos_token_ids=eos, use_cache=use_cache)

    def pose_rotmats(self, pose_hidden: torch.Tensor) -> torch.Tensor:
        """(P, hidden) -> (P, 24, 3, 3) rotation matrices (float32)."""
        head_dtype = next(self.pose_head.parameters()).dtype
        return self.pose_head(pose_hidden.to(head_dtype)).float()

    @staticmethod
    def rotmats_to_theta(rotmats: torch.Tensor) -> torch.Tensor:
        """(P, 24, 3, 3) -> (P, 72) axis-angle theta (rad)."""
        return matrix_to_axis_angle(rotmats).reshape(rotmats.shape[0], rotmats.shape[1] * 3)  # P may be 0
