"""Where the model runs, the part every runner shares (ROS-free): the `ModelRunner` protocol, the
runner in the caller's process (`InProcessRunner`), the tracker beside the model (`TrackerHost`)
and the streaming call of a pipeline (`estimate_streaming`, `timed_estimate`). The runner in a
worker process of its own is core.worker_process.ProcessRunner.

Streaming: `estimate(..., on_pose, on_text)` passes the callbacks to the pipeline (see
core.pipeline.PosePipeline.estimate); a pipeline that does not call them streams nothing (the
caller publishes the returned result). Stages: `on_stage(name)` is called when the runner decodes
the image (``decoding_image``) and, for a pipeline that takes `on_stage`, at each of its stages
(the default profile: ``perceiving``, ``posing``, ``grounding``).

Tracking: the profile's tracker lives where the model lives (`tracker_factory`, a picklable
callable making a core.session.Tracker); `track` observes a frame and matches the tracked person
in one round trip (core.session.TrackRequest in, TrackUpdate out), so the caller's process never
imports a profile's tracker.

Gestures: beside the tracker, a core.gestures.GestureRecogniser reads every person observed at
each tracking update over time (at the request's `stamp`); the people of the TrackUpdate carry
their `gestures`. A pipeline whose `estimate` takes `gestures=` is handed the recogniser with
every query (`gestures.for_box(box)`: the gestures of a person of the query's image).
"""
from __future__ import annotations

import inspect
import logging
import time
from typing import Any, Callable, Protocol

import numpy as np

from .config import PipelineConfig
from .gestures import GestureRecogniser
from .images import Image, Size, image_size
from .pipeline import PosePipeline
from .session import Tracker, TrackRequest, TrackUpdate
from .types import PersonPose, PoseResult

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
PipelineFactory = Callable[[PipelineConfig], PosePipeline]
TrackerFactory = Callable[[], Tracker]
OnPose = Callable[[PoseResult], None] | None
OnText = Callable[[str], None] | None
OnStage = Callable[[str], None] | None
DECODING = "decoding_image"  # the stage of a runner decoding the question's image


class ModelRunner(Protocol):
    """What the node needs to run the model, wherever it runs."""

    model_id: str
    runtime: str  # what runs where ("perception cuda; llm cuda:0 float16"), '' when the pipeline does not say

    def start(self) -> None:
        """Load the model (ModelLoadError / ChatPoseError when it cannot be loaded)."""
        ...

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None, conversation: str = "", on_stage: OnStage = None) -> tuple[PoseResult, Size | None]:
        """Decode `image` and answer `query` about it; also returns the image size. `on_pose` /
        `on_text`: the pipeline's streaming callbacks, called in this thread before it returns.
        `conversation`: who asked (follow-ups resolve within it, where the profile keeps one).
        `on_stage(name)`: each stage reached (see the module docstring), in this thread."""
        ...

    def observe(self, image: Image, near: Box | None) -> tuple[list[PersonPose], Size]:
        """Decode `image` and find every person in it (near `near` when given)."""
        ...

    def track(self, image: Image, request: TrackRequest) -> tuple[TrackUpdate, Size]:
        """Decode `image`, (re)start the tracker when `request.seed` is set, observe and match."""
        ...

    def close(self) -> None:
        ...

    @property
    def alive(self) -> bool:
        """False when the model's process died (then `restart()` it)."""
        ...

    def restart(self) -> None:
        """Stop and start again (a new process, the model loaded anew)."""
        ...


class InProcessRunner:
    """The model in this process (tests, debugging): decode and call the pipeline here."""

    def __init__(self, factory: PipelineFactory, config: PipelineConfig, tracker_factory: TrackerFactory | None = None) -> None:
        self._factory, self._config = factory, config
        self.pipeline: PosePipeline | None = None
        self._tracking = TrackerHost(tracker_factory)
        self.model_id = ""
        self.runtime = ""

    alive = True  # lives and dies with this process

    def start(self) -> None:
        self.pipeline = self._factory(self._config)
        self.model_id = self.pipeline.model_id
        self.runtime = str(getattr(self.pipeline, "runtime", ""))
        self._tracking.reset()

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None, conversation: str = "", on_stage: OnStage = None) -> tuple[PoseResult, Size | None]:
        # a callback's error is logged, as across the pipe: the answer goes on
        stage_cb = None if on_stage is None else (lambda name: run_callback(on_stage, name))
        if image is not None and stage_cb is not None:
            stage_cb(DECODING)
        rgb = None if image is None else image.decode(self._config.max_image_pixels)
        pose_cb = None if on_pose is None else (lambda result: run_callback(on_pose, result))
        text_cb = None if on_text is None else (lambda delta: run_callback(on_text, delta))
        return (estimate_streaming(self.pipeline, rgb, query, pose_cb, text_cb, conversation, self._tracking.gestures,
                                   on_stage=stage_cb),
                None if rgb is None else image_size(rgb))

    def observe(self, image: Image, near: Box | None) -> tuple[list[PersonPose], Size]:
        rgb = image.decode(self._config.max_image_pixels)
        return list(self.pipeline.observe(rgb, near=near)), image_size(rgb)

    def track(self, image: Image, request: TrackRequest) -> tuple[TrackUpdate, Size]:
        rgb = image.decode(self._config.max_image_pixels)
        return self._tracking.track(self.pipeline, rgb, request), image_size(rgb)

    def close(self) -> None:
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()

    def restart(self) -> None:
        self.close()
        self.start()


def _streams(pipeline: PosePipeline) -> bool:
    """Whether `pipeline.estimate` takes the streaming callbacks (a profile written before them,
    e.g. the chatpose profile, takes `(image, query)` only)."""
    try:
        params = inspect.signature(pipeline.estimate).parameters
    except (TypeError, ValueError):
        return False
    return {"on_pose", "on_text"} <= set(params) or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _takes(pipeline: PosePipeline, name: str) -> bool:
    """Whether `pipeline.estimate` takes the keyword `name` (`conversation`: it keeps
    conversations; `gestures`; `on_stage`: it reports its stages)."""
    try:
        return name in inspect.signature(pipeline.estimate).parameters
    except (TypeError, ValueError):
        return False


def estimate_streaming(pipeline: PosePipeline, rgb: np.ndarray | None, query: str, on_pose: OnPose,
                       on_text: OnText, conversation: str = "", gestures: GestureRecogniser | None = None,
                       on_stage: OnStage = None) -> PoseResult:
    """pipeline.estimate, with the streaming callbacks when there are any and it takes them, the
    asker's conversation where it keeps conversations, the gestures read over time where it
    takes them (`gestures=`), and `on_stage` where it reports its stages."""
    extra: dict[str, Any] = {"conversation": conversation} if _takes(pipeline, "conversation") else {}
    if gestures is not None and _takes(pipeline, "gestures"):
        extra["gestures"] = gestures
    if on_stage is not None and _takes(pipeline, "on_stage"):
        extra["on_stage"] = on_stage
    if (on_pose is None and on_text is None) or not _streams(pipeline):
        return pipeline.estimate(rgb, query, **extra)
    return pipeline.estimate(rgb, query, on_pose=on_pose, on_text=on_text, **extra)


def timed_estimate(pipeline: PosePipeline, rgb: np.ndarray | None, query: str) -> tuple[PoseResult, float, float]:
    """One query, timed: (result, ms to the pose, ms to the whole answer). A streaming pipeline
    hands the pose out (on_pose) before its words; for one that does not, both times are equal."""
    posed: list[float] = []
    t0 = time.perf_counter()
    result = estimate_streaming(pipeline, rgb, query, lambda _r: posed.append(time.perf_counter()), None)
    t_end = time.perf_counter()
    return result, ((posed[0] if posed else t_end) - t0) * 1e3, (t_end - t0) * 1e3


class TrackerHost:
    """The tracker of the person chosen last, beside the model: serves TrackRequests (see the
    module docstring). `factory` makes the profile's tracker; None = nobody is ever followed.
    `gestures` reads the gestures of everyone observed, over time."""

    def __init__(self, factory: TrackerFactory | None) -> None:
        self._factory = factory
        self._tracker: Tracker | None = None
        self.gestures = GestureRecogniser()

    def reset(self) -> None:
        self._tracker = None
        self.gestures.reset()

    def track(self, pipeline: PosePipeline, rgb: np.ndarray, request: TrackRequest) -> TrackUpdate:
        seed = request.seed
        if seed is not None and self._factory is not None:
            if not (request.keep and self._tracker is not None):
                self._tracker = self._factory()
            self._tracker.start(seed, track_id=seed.track_id)
            add_others = getattr(self._tracker, "add_others", None)
            if add_others is not None and request.others:
                add_others(list(request.others))
        people = list(pipeline.observe(rgb, near=request.near))
        stamp = time.monotonic() if request.stamp is None else request.stamp
        tracker = self._tracker
        if tracker is None:  # nothing to follow (e.g. a new worker after a crash): the track is lost
            people = self.gestures.observe(stamp, people)
            return TrackUpdate(person=None, people=tuple(people) if request.everyone else (), lost=True, box=None)
        reacquire = getattr(tracker, "reacquire", None) if request.reacquire else None  # a tracker without it: update
        person = reacquire(people) if reacquire is not None else tracker.update(people)
        if person is not None:  # read the match's gestures under its track id (it is one of `people`)
            i = next((k for k, p in enumerate(people) if p.box == person.box), len(people))
            people[i:i + 1] = [person]
            people = self.gestures.observe(stamp, people)
            person = people[i]
        else:
            people = self.gestures.observe(stamp, people)
        return TrackUpdate(person=person, people=tuple(people) if request.everyone else (), lost=bool(tracker.lost),
                           box=tracker.last_box, doubt=str(getattr(tracker, "doubt", "")))


def run_callback(callback: Callable | None, value: Any) -> None:
    """Run a streaming callback in the caller's process; what it raises is logged, not raised
    (the worker's further events and its reply must still be read)."""
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        log.exception("a streaming callback failed (the answer goes on)")
