"""Test doubles of the pipeline seam (tests only; the shipped node never uses them)."""
from __future__ import annotations

import dataclasses
import os
import threading
import time

import numpy as np
import torch

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.core.errors import InferenceError, InvalidImageError
from chatpose_ros.core.geometry import axis_angle_to_matrix
from chatpose_ros.core.pipeline import validate_image
from chatpose_ros.core.types import PersonPose, PoseResult


def make_person(seed: int, box=None, track_id=-1, estimator="fake") -> PersonPose:
    rng = np.random.default_rng(seed)
    theta = (rng.normal(0, 0.2, 72)).astype(np.float32)
    theta[:3] = [np.pi, 0, 0]
    joints = forward_kinematics(axis_angle_to_matrix(torch.from_numpy(theta).reshape(1, 24, 3)))[0].numpy()
    return PersonPose(theta=theta, joints=joints, box=box, confidence=0.9, estimator=estimator, track_id=track_id,
                      appearance=np.array([seed], np.float32))


class FakePipeline:
    """Answers every query with two people (left and right halves of the image); the query
    chooses the right one when it contains 'right'. Can be told to fail or to be slow."""

    model_id = "fake:0"
    runtime = "fake runtime"

    def __init__(self, delay_s: float = 0.0, fail_with: Exception | None = None, observe_people: bool = True,
                 gate: threading.Event | None = None):
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.observe_people = observe_people
        self.gate = gate  # when set: every estimate waits until the test opens the gate
        self.started = threading.Event()  # set when an estimate begins
        self.calls: list[tuple[tuple | None, str]] = []
        self.images: list = []  # the images estimate was given (copies)
        self.closed = False
        self.lock = threading.Lock()

    def estimate(self, image, query):
        with self.lock:
            self.calls.append((None if image is None else image.shape, query))
            self.images.append(None if image is None else image.copy())
        self.started.set()
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        if image is None:
            return PoseResult(query=query, answer="Sure, it is [POSE].", people=(make_person(7),), selected=0,
                              model_id=self.model_id)
        validate_image(image, 10**8)
        people = self.observe(image)
        sel = 1 if "right" in query else 0
        return PoseResult(query=query, answer="Sure, it is [POSE].", people=tuple(people), selected=sel,
                          model_id=self.model_id, image_size=(image.shape[1], image.shape[0]))

    def observe(self, image, near=None):
        if not self.observe_people:
            return []
        h, w = image.shape[:2]
        return [make_person(1, box=(0.0, 0.0, w / 2 - 1, h - 1.0)), make_person(2, box=(w / 2, 0.0, w - 1.0, h - 1.0))]

    def close(self):
        self.closed = True


class CrashingPipeline(FakePipeline):
    """A FakePipeline whose process dies (as a native crash would) on a query containing 'crash'."""

    model_id = "fake:crashing"

    def estimate(self, image, query):
        if "crash" in query:
            os._exit(3)
        return super().estimate(image, query)


class EchoPipeline(FakePipeline):
    """A FakePipeline that tells what it was given: the answer is 'sum=S shape=HxW' of the image."""

    model_id = "fake:echo"

    def estimate(self, image, query):
        result = super().estimate(image, query)
        text = "none" if image is None else f"sum={int(image.astype(np.int64).sum())} shape={image.shape[0]}x{image.shape[1]}"
        return dataclasses.replace(result, answer=text)


class StreamingPipeline(FakePipeline):
    """A FakePipeline that streams (core.pipeline.PosePipeline.estimate's callbacks): on_pose once
    with the chosen person (answer ""), then on_text with each word of WORDS; a query containing
    'nobody' is a no_match (nobody selected). `hold`: when set, waits after the first word until
    the test sets it (so that a test sees the partial answer)."""

    model_id = "fake:streaming"
    WORDS = ("The person ", "on the ", "right ", "waves.")

    def __init__(self, hold: threading.Event | None = None, **kw) -> None:
        super().__init__(**kw)
        self.hold = hold
        self.events: list[tuple[str, object]] = []  # what it called back, in order

    def estimate(self, image, query, on_pose=None, on_text=None):
        result = super().estimate(image, query)
        if "nobody" in query:
            result = dataclasses.replace(result, selected=-1, no_match=True, grounding_confidence=0.1)
        else:
            result = dataclasses.replace(result, grounding_confidence=0.9)
        if on_pose is not None:
            self.events.append(("pose", result.selected))
            on_pose(dataclasses.replace(result, answer=""))
        for i, word in enumerate(self.WORDS):
            if on_text is not None:
                self.events.append(("text", word))
                on_text(word)
            if i == 0 and self.hold is not None:
                self.hold.wait()
        return dataclasses.replace(result, answer="".join(self.WORDS))


def streaming_pipeline(cfg) -> StreamingPipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return StreamingPipeline()


def echo_pipeline(cfg) -> EchoPipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return EchoPipeline()


def crashing_pipeline(cfg) -> CrashingPipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return CrashingPipeline()


def fake_pipeline(cfg) -> FakePipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return FakePipeline()


__all__ = ["FakePipeline", "CrashingPipeline", "EchoPipeline", "StreamingPipeline", "crashing_pipeline", "echo_pipeline",
           "fake_pipeline", "streaming_pipeline", "ProfileImageError", "profile_error_pipeline",
           "RewrappingPipeline", "rewrapping_pipeline",
           "make_person", "InferenceError",
           "InvalidImageError"]


class ProfileImageError(InvalidImageError):
    """A typed error a profile defines for itself (not in core.errors), like vision_backends.ParityError."""


def profile_error_pipeline(cfg) -> FakePipeline:
    """Fails every estimate with a ProfileImageError (picklable, for the worker process)."""
    return FakePipeline(fail_with=ProfileImageError("the profile found the image unusable"))


class RewrappingPipeline(FakePipeline):
    """Fails as a profile that re-raises a library's error as its own and keeps the last error
    (for a status, as libraries do): the frames of that error hold the image, a view into the
    worker's shared block, for as long as the error is kept."""

    last_error: Exception | None = None

    def estimate(self, image, query):
        try:
            raise ValueError(f"a library failed on {image.shape}")
        except ValueError as exc:
            self.last_error = exc
            raise InferenceError("the profile failed") from exc


def rewrapping_pipeline(cfg) -> RewrappingPipeline:
    return RewrappingPipeline()


class ConversationPipeline(FakePipeline):
    """A profile that keeps conversations: its answer names the conversation it was asked in."""

    def estimate(self, image, query, conversation=""):
        return dataclasses.replace(super().estimate(image, query), answer=f"conversation={conversation}")


def conversation_pipeline(cfg) -> ConversationPipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return ConversationPipeline()


class FakeClock:
    """A clock a test sets by hand (`clock.t += 1.0`)."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class StagedPipeline(FakePipeline):
    """A profile that reports its stages (on_stage), as the default profile does: perceiving,
    posing, grounding."""

    STAGES = ("perceiving", "posing", "grounding")

    def __init__(self, stage_s: float = 0.0, **kw) -> None:
        super().__init__(**kw)
        self.stage_s = stage_s  # how long each stage takes

    def estimate(self, image, query, on_stage=None):
        for stage in self.STAGES:
            if on_stage is not None:
                on_stage(stage)
            time.sleep(self.stage_s)
        return super().estimate(image, query)


def staged_pipeline(cfg) -> StagedPipeline:
    """Pipeline factory for a model worker process (module level: picklable)."""
    return StagedPipeline()
