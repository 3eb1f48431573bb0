"""The profile registry: which model profiles exist and how each is built.

Dependencies point one way: core <- profiles (chatpose_ros.models.*) <- this registry <- ros /
cli / tools. The core names no profile; a profile is imported only when it is built.

    pipeline = build_pipeline(PipelineConfig(profile="default"))   # a core.pipeline.PosePipeline
    make_tracker = tracker_factory("default")                      # a core.session.Tracker factory
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Callable

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ConfigError
from chatpose_ros.core.pipeline import PosePipeline
from chatpose_ros.core.session import Tracker


@dataclass(frozen=True)
class Profile:
    """Where a profile's pipeline class (with a `from_config(PipelineConfig)` constructor) and
    its tracker class live, as "module:attribute" (imported on first use)."""

    pipeline: str
    tracker: str = "chatpose_ros.perception.tracking:PersonTracker"  # generic: box, keypoints, appearance


PROFILES: dict[str, Profile] = {
    "default": Profile(pipeline="chatpose_ros.models.default.pipeline:DefaultPipeline"),
    # experimental: the default profile's perception and regressor with the scene reader (issue 12)
    "reader": Profile(pipeline="chatpose_ros.models.default.reader_pipeline:ReaderPipeline"),
    # compositional grounding (issue 24): a typed parse, open-vocabulary scorers, answers that say what was checked
    "grounded": Profile(pipeline="chatpose_ros.models.grounded.pipeline:GroundedPipeline"),
    "chatpose": Profile(pipeline="chatpose_ros.models.chatpose.pipeline:ChatPosePipeline"),
}


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: expected one of {', '.join(repr(p) for p in PROFILES)}")
    return PROFILES[name]


def build_pipeline(config: PipelineConfig) -> PosePipeline:
    """Build the pipeline that `config.profile` names (and set torch's thread count when
    `config.cpu_threads` > 0).

    Raises ConfigError for an unknown profile, ModelLoadError when weights are missing or bad.
    """
    profile = _profile(config.profile)
    if config.cpu_threads > 0:
        import torch

        torch.set_num_threads(config.cpu_threads)
    return _load(profile.pipeline).from_config(config)


def _make_tracker(spec: str) -> Tracker:
    return _load(spec)()


def tracker_factory(name: str) -> Callable[[], Tracker]:
    """A callable making a fresh tracker for profile `name` (ConfigError when unknown); picklable
    (the model's worker process makes the trackers), and importing the tracker only when called."""
    return functools.partial(_make_tracker, _profile(name).tracker)
