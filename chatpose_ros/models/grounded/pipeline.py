"""The `grounded` profile: compositional grounding over the embedded perception stack.

    image -> perception (the embedded ONNX models: every person, box + keypoints, objects,
             posture / facing attributes) -> per person the SMPL pose (keypoint regressor)
          -> facts per person (grounding.facts: garment colour palettes, stripes, pose codes,
             objects held / near, position, distance; when the question names a gender, "the
             man", "the ladies": p(male) of every seen face, perception.face_attributes)
    query -> a typed request (grounding.parse: intent, constraints in the user's own words)
          -> every constraint scored on every person (grounding.ground), then: the person
             (pose published), a clarifying question (`clarify`: `selected` -1), nobody (with the
             reason), a count, a yes/no, a description; answers say what was checked and what
             could not be.
    "what pose would a tired person take?" and chat -> the reader profile's LLM (SmolLM2 + LoRA
             with ChatPose's pose token and pose head: a pose made from the words, marked generated).

Follow-ups ("is he waving?", "the other one", "and the one next to her?") resolve against the
person chosen last in the same conversation: `estimate(..., conversation=ID)` keeps one per ID
(the node passes who asked: the query topic, the action, or a ROS4HRI voice id), each forgotten
after `CONVERSATION_TIMEOUT_S` or on `reset_conversation(ID)`, matched on the current frame by box
overlap; at most MAX_CONVERSATIONS are kept (the oldest is dropped).

Perception, the regressor and the generated pose are the reader profile's own
(`chatpose_ros.models.default.reader_pipeline.ReaderPipeline`: `scene_and_people`, and `estimate`
for imagined poses and chat), composed here.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, ConfigError, InferenceError
from chatpose_ros.core.gestures import GestureRecogniser, gesture_flags
from chatpose_ros.core.pipeline import validate_image, validate_query
from chatpose_ros.core.types import PersonPose, PoseResult
from chatpose_ros.grounding.facts import measure
from chatpose_ros.grounding.ground import Context, Grounder, Outcome
from chatpose_ros.grounding.parse import QuestionParser
from chatpose_ros.grounding.request import Reference, Request
from chatpose_ros.grounding.words import Lexicon

log = logging.getLogger(__name__)

PARSERS = ("grammar", "llm")  # grounding.parse.QuestionParser, models.grounded.llm_parse.LlmQuestionParser
PARSER_ENV = "CHATPOSE_PARSER"  # picks the question parser when from_config is not told (default "grammar")
CONVERSATION_TIMEOUT_S = 120.0  # a follow-up later than this after the last answer starts afresh
MAX_CONVERSATIONS = 64          # conversations kept at once (voices come and go)


@dataclass
class _Conversation:
    box: tuple[float, float, float, float] | None = None
    at: float = 0.0


class GroundedPipeline:
    """The grounded profile. Build with :meth:`from_config`; thread-safe (one lock)."""

    def __init__(self, config: PipelineConfig, base, parser, grounder: Grounder, model_id: str,
                 clock=time.monotonic, faces=None) -> None:
        """`base`: a ReaderPipeline (perception, regressor, the LLM for imagined poses and chat); `parser`: a
        QuestionParser or an LlmQuestionParser (anything with `parse(question) -> Request` and `colours`);
        `faces`: a perception.face_attributes.FaceGenderModel (None: gender words stay unchecked)."""
        self.config = config
        self.base = base
        self.parser = parser
        self.grounder = grounder
        self.model_id = model_id
        self.runtime = str(getattr(base, "runtime", ""))  # the reader's perception provider and LLM device
        self._lock = threading.Lock()
        self._clock = clock
        self._convs: dict[str, _Conversation] = {}
        self.faces = faces

    @classmethod
    def from_config(cls, config: PipelineConfig, parser: str | None = None) -> "GroundedPipeline":
        """Load the reader profile's models, WordNet and the colour table. Raises ModelLoadError
        for missing files (WordNet: install the Debian package wordnet-base).

        `parser`: "grammar" (the deterministic parser) or "llm" (the LLM tagger, models.grounded.llm_parse);
        None reads $CHATPOSE_PARSER (default "grammar"). ConfigError for any other value."""
        parser = parser or os.environ.get(PARSER_ENV) or "grammar"
        if parser not in PARSERS:
            raise ConfigError(f"unknown question parser {parser!r} (${PARSER_ENV}); expected one of {PARSERS}")
        # imported here: the reader brings torch and transformers (seconds), which the registry
        # should not load for a profile that is never built
        from chatpose_ros.models.default.reader_pipeline import ReaderPipeline
        from chatpose_ros.perception.face_attributes import GENDER_MODEL, FaceGenderModel

        t0 = time.perf_counter()
        base = ReaderPipeline.from_config(config)
        if parser == "llm":
            from chatpose_ros.models.grounded.llm_parse import LlmQuestionParser

            question_parser = LlmQuestionParser.load()
        else:
            question_parser = QuestionParser()
        grounder = Grounder(question_parser.colours, Lexicon.shipped())
        faces = None
        if GENDER_MODEL.is_file():  # optional (its licence note says why one may remove it): without it
            faces = FaceGenderModel.load(threads=max(1, int(config.cpu_threads)))  # gender words stay unchecked
        else:
            log.warning("face gender model %s not installed: gender words ('the man') stay unchecked", GENDER_MODEL)
        model_id = "grounded:" + base.model_id.split(":", 1)[-1]
        log.info("grounded model %s loaded in %.1f s", model_id, time.perf_counter() - t0)
        return cls(config, base, question_parser, grounder, model_id, faces=faces)

    def close(self) -> None:
        if self.base is not None:
            self.base.close()
        self.base = None

    def reset_conversation(self, conversation: str | None = None) -> None:
        """Forget the person chosen last in `conversation` (every conversation when None): the
        next "he" / "the other one" there has nobody to refer to."""
        with self._lock:
            if conversation is None:
                self._convs.clear()
            else:
                self._convs.pop(conversation, None)

    def observe(self, image: np.ndarray, near=None) -> list[PersonPose]:
        if self.base is None:
            raise InferenceError("pipeline is closed")
        return self.base.observe(image, near)

    # -- public ---------------------------------------------------------------------------
    def estimate(self, image: np.ndarray | None, query: str, on_pose=None, on_text=None,
                 conversation: str = "", gestures: GestureRecogniser | None = None,
                 on_stage=None) -> PoseResult:
        """Answer `query` about `image` ((H, W, 3) uint8 RGB, or None for a text-only question).

        `selected` indexes `people` (scene order, left to right is not implied) for a chosen
        person; -1 for a clarifying question (`clarify` True), nobody (`no_match` True), counts,
        yes/no and chat. A pose made from the words (imagine) comes first in `people`, marked
        generated. Streaming: `on_pose(result)` once the decision and the pose are ready, then
        `on_text` with the answer. `conversation`: whose follow-ups these are ("" = the default one).
        `gestures`: the gestures read over time from tracking (waving, a hand raised, pointing),
        which replace the one-frame pose codes for the people it watched. `on_stage(name)` as each
        stage begins: ``perceiving`` (people, objects and their poses) and ``grounding`` (every
        constraint checked on every person) for a question about the image."""
        query = validate_query(query, self.config.max_query_chars)
        if image is not None:
            image = validate_image(image, self.config.max_image_pixels)
        with self._lock:
            if self.base is None:
                raise InferenceError("pipeline is closed")
            t_parse = time.perf_counter()
            request = self.parser.parse(query)
            if request.intent in ("imagine", "chat") or image is None:
                return self._delegate(image, query, on_pose, on_text)
            try:
                return self._ground(request, image, query, on_pose, on_text, str(conversation), gestures, t_parse,
                                    on_stage or (lambda _name: None))
            except (ValueError, RuntimeError) as exc:
                if isinstance(exc, ChatPoseError):  # typed (a bad image found by perception): keeps its code
                    raise
                raise InferenceError(f"grounded pipeline failed: {exc}") from exc

    def _asks_gender(self, request: Request) -> bool:
        """Does the question name a gender anywhere (its reference, its predicate, a related person)."""
        todo = [request.ref or Reference(), Reference(constraints=tuple(request.predicate))]
        while todo:
            ref = todo.pop()
            for c in ref.constraints:
                if self.grounder.gender(c):
                    return True
                todo.extend(r for r in (c.ref, c.ref2) if r is not None)
        return False

    def _delegate(self, image, query: str, on_pose, on_text) -> PoseResult:
        """Imagined poses and chat: the LLM, from the words alone."""
        result = self.base.estimate(None, query, on_pose, on_text)
        return replace(result, model_id=self.model_id,
                       image_size=None if image is None else (int(image.shape[1]), int(image.shape[0])))

    def _ground(self, request: Request, image: np.ndarray, query: str, on_pose, on_text, conv_id: str,
                gestures: GestureRecogniser | None = None, t_parse: float | None = None,
                stage=lambda _name: None) -> PoseResult:
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        if t_parse is not None:  # the question is parsed first: the time to the pose counts it
            timings["parse"] = (t_start - t_parse) * 1e3
            t_start = t_parse
        stage("perceiving")
        scene, people = self.base.scene_and_people(image, timings)
        stage("grounding")
        t = time.perf_counter()
        over_time = [gesture_flags(gestures.for_box(p.box)) for p in scene.people] if gestures is not None else None
        faces = None
        if self.faces is not None and self._asks_gender(request):  # only then: the face model costs time
            t_faces = time.perf_counter()
            faces = {i: (fg.p_male, fg.face_px) for i, fg in self.faces.read(image, scene).items()}
            timings["faces"] = (time.perf_counter() - t_faces) * 1e3
        facts = measure(image, scene, over_time, faces)
        timings["measure"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        now = self._clock()
        conv = self._convs.get(conv_id)
        if conv is not None and now - conv.at > CONVERSATION_TIMEOUT_S:  # too long ago: start afresh
            del self._convs[conv_id]
            conv = None
        out: Outcome = self.grounder.answer(request, facts, Context(previous_box=None if conv is None else conv.box))
        timings["ground"] = (time.perf_counter() - t) * 1e3
        timings["to_pose"] = (time.perf_counter() - t_start) * 1e3
        if out.selected >= 0 and out.kind in ("person", "yes", "no", "unknown", "describe"):
            self._convs.pop(conv_id, None)
            self._convs[conv_id] = _Conversation(facts[out.selected].box, now)
            while len(self._convs) > MAX_CONVERSATIONS:
                self._convs.pop(next(iter(self._convs)))
        scores = out.scores if out.scores.size == len(people) else None
        total = float(scores.sum()) if scores is not None else 0.0
        ranked = tuple(replace(p, confidence=float(scores[i] / total)) if scores is not None and total > 0 else p
                       for i, p in enumerate(people))
        # the person chosen, or asked about in a yes/no (their pose is published too)
        selected = out.selected if out.kind in ("person", "describe", "yes", "no", "unknown") else -1
        result = PoseResult(query, out.answer, ranked, selected, self.model_id,
                            (int(image.shape[1]), int(image.shape[0])), timings,
                            no_match=out.kind in ("no_match", "not_person"),
                            grounding_confidence=out.confidence, clarify=out.kind == "clarify")
        if on_pose is not None:  # the words are ready with the pose: no need to hold them back
            on_pose(result)
        if on_text is not None:
            on_text(result.answer)
        return result
