"""`ChatPosePipeline`: the PosePipeline of the 'chatpose' profile (LLaVA-style ChatPose model)."""
from __future__ import annotations

import gc
import logging
import re
import time

import numpy as np
import torch

from chatpose_ros.core.body import SmplBody
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, InferenceError, ModelLoadError
from chatpose_ros.core.pipeline import validate_image, validate_query
from chatpose_ros.core.types import PersonPose, PoseResult

from .checkpoints import checkpoint_fingerprint, load_checkpoint
from .model import ChatPoseModel
from .vision_backends import VisionBackend, create_vision_backend

log = logging.getLogger(__name__)

ESTIMATOR = "chatpose"
FORCED_POSE_CONFIDENCE = 0.5  # a pose the model did not choose to give (see PoseResult.pose_forced)

# Whether a query asks for a pose: `chatpose_force_pose_token` only ever applies to those. Counting and
# yes/no-existence questions never do; then pose words win; a question about something else
# ("what is he wearing?", "describe the scene") is answered in text; a bare referring expression
# ("the man on the left") or a who/which question picks a person, whose pose is what the node is for.
_POSE_WORDS = re.compile(
    r"\b(pose[sd]?|posture|stance|position(ed)?|body|smpl|skeleton|joints?|limbs?|doing|stand(s|ing)?|"
    r"sit(s|ting)?|lying|lie[sd]?|kneel(s|ing)?|crouch(es|ing)?|squat(s|ting)?|jump(s|ing)?|run(s|ning)?|"
    r"walk(s|ing)?|wav(e|es|ing)|rais(e|es|ed|ing)|bend(s|ing)?|lean(s|ing)?|stretch(es|ing)?|danc(e|es|ing)|"
    r"fight(s|ing)?|throw(s|ing)?|kick(s|ing)?|pose of)\b", re.IGNORECASE)
_COUNT_QUESTION = re.compile(r"^\s*(how many|count|are there|is there|is anyone|is somebody|is someone)\b",
                             re.IGNORECASE)
_PERSON_QUESTION = re.compile(r"^\s*(who|whom|which)\b", re.IGNORECASE)
_OTHER_QUESTION = re.compile(
    r"^\s*(what|how|where|when|why|is|are|was|were|does|do|did|can|could|will|would|should|has|have|"
    r"describe|tell|count|explain|list|name)\b", re.IGNORECASE)


def asks_for_pose(query: str) -> bool:
    """Whether `query` asks for a body pose (module comment above); pure, no model."""
    if _COUNT_QUESTION.match(query):
        return False
    if _POSE_WORDS.search(query) or _PERSON_QUESTION.match(query):
        return True
    return not (_OTHER_QUESTION.match(query) or query.rstrip().endswith("?"))


class ChatPosePipeline:
    """Answers questions with ChatPose; an answer with a pose token gives one SMPL pose (with
    several pose tokens the last one, as the released code's `text_embeddings[-1:]`).

    ChatPose predicts no translation, box or shape: people carry theta, mean-shape joints by
    forward kinematics (or the SMPL mesh when a SMPL file is configured), box/translation None.
    """

    def __init__(self, config: PipelineConfig, model: ChatPoseModel, backend: VisionBackend, body: SmplBody,
                 model_id: str) -> None:
        self.config = config
        self.model = model
        self.backend = backend
        self.body = body
        self.model_id = model_id
        # what runs where, for /diagnostics: e.g. "vision tensorrt; llm cuda:0 bfloat16"
        self.runtime = f"vision {backend.name}; llm {model.device} {str(model.dtype).replace('torch.', '')}"

    @classmethod
    def from_config(cls, config: PipelineConfig) -> ChatPosePipeline:
        """Load the checkpoint (+ LoRA adapter) named in `config`.

        Raises CheckpointError / ModelLoadError on missing or malformed checkpoints.
        """
        if not config.checkpoint:
            raise ModelLoadError("profile 'chatpose' needs PipelineConfig.checkpoint (a folder in our layout; "
                                 "convert CHATPOSE-V0 with chatpose-convert)")
        torch.manual_seed(config.seed)
        model = load_checkpoint(config.checkpoint, device=config.device, dtype=config.dtype,
                                lora_adapter=config.lora_adapter or None)
        model_id = "chatpose:" + checkpoint_fingerprint(config.checkpoint, config.lora_adapter or None)
        backend = create_vision_backend(config, model, model_id)
        body = SmplBody(config.smpl_model_path or None)
        log.info("ChatPose pipeline ready: %s, device %s, dtype %s, vision backend %s", model_id, model.device,
                 model.dtype, backend.name)
        return cls(config, model, backend, body, model_id)

    def estimate(self, image: np.ndarray | None, query: str) -> PoseResult:
        """(H, W, 3) uint8 RGB image or None, query -> PoseResult (one person per pose token)."""
        query = validate_query(query, self.config.max_query_chars)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        features = None
        size = None
        try:
            if image is not None:
                validate_image(image, self.config.max_image_pixels)
                size = (int(image.shape[1]), int(image.shape[0]))
                pixels = self.model.preprocessor(image)
                timings["preprocess"] = (time.perf_counter() - t0) * 1e3
                t1 = time.perf_counter()
                features = self.backend.encode(pixels)
                timings["vision"] = (time.perf_counter() - t1) * 1e3
            t2 = time.perf_counter()
            force = self.config.chatpose_force_pose_token and asks_for_pose(query)
            gen = self.model.generate(features, query, max_new_tokens=self.config.chatpose_max_new_tokens,
                                      force_pose_token=force)
            timings["generate"] = (time.perf_counter() - t2) * 1e3
            t3 = time.perf_counter()
            if gen.num_poses > 1:
                log.debug("%d pose tokens in the answer: the last one gives the pose (as upstream)", gen.num_poses)
            with torch.no_grad():
                rotmats = self.model.pose_rotmats(gen.pose_hidden[-1:])  # (P <= 1, 24, 3, 3)
                theta = self.model.rotmats_to_theta(rotmats)  # (P, 72)
                people = []
                if rotmats.shape[0]:
                    out = self.body(rotmats.cpu())
                    for i in range(rotmats.shape[0]):
                        people.append(PersonPose(
                            theta=theta[i].cpu().numpy().astype(np.float32),
                            joints=out.joints[i].cpu().numpy().astype(np.float32),
                            vertices=None if out.vertices is None else out.vertices[i].cpu().numpy().astype(np.float32),
                            faces=out.faces, confidence=FORCED_POSE_CONFIDENCE if gen.forced_pose else 1.0,
                            estimator=ESTIMATOR))
            timings["pose"] = (time.perf_counter() - t3) * 1e3
        except ChatPoseError:
            raise
        except RuntimeError as exc:  # torch errors, CUDA out of memory included
            raise InferenceError(f"ChatPose inference failed: {exc}") from exc
        timings["total"] = (time.perf_counter() - t0) * 1e3
        if gen.forced_pose:
            log.info("the answer had no pose token; one was appended (chatpose_force_pose_token, a pose was asked for)")
        return PoseResult(query=query, answer=gen.text, people=tuple(people), selected=0 if people else -1,
                          model_id=self.model_id, image_size=size, timings_ms=timings, pose_forced=gen.forced_pose)

    def observe(self, image: np.ndarray, near: tuple[float, float, float, float] | None = None) -> list[PersonPose]:
        """ChatPose cannot localise people: always an empty list."""
        return []

    def close(self) -> None:
        """Drop the model and free (GPU) memory."""
        on_cuda = self.model is not None and self.model.device.type == "cuda"
        self.model = None  # type: ignore[assignment]
        self.backend = None  # type: ignore[assignment]
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

