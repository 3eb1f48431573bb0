"""Result types of the core: what a pipeline returns for one query or one tracked frame."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .smpl_layout import NUM_BETAS, NUM_JOINTS

if TYPE_CHECKING:
    from .gestures import Gesture


@dataclass(frozen=True)
class PersonPose:
    """The SMPL pose of one person.

    Attributes:
        theta: (72,) float32 axis-angle (rad), SMPL joint order, joint 0 = global orientation
            in the camera optical frame (x right, y down, z forward).
        betas: (10,) float32 SMPL shape coefficients (zeros = mean body).
        joints: (24, 3) float32 joint positions (m), pelvis-relative, camera optical axes.
        translation: (3,) float32 pelvis position in the camera frame (m), or None if unknown.
        box: (x_min, y_min, x_max, y_max) in pixels, or None (text-only poses).
        confidence: in [0, 1].
        estimator: "smplr_regressor", "llm_generated" (a pose from the text alone), "llm_pose_head" or
            "chatpose".
        track_id: stable id of the tracked person, -1 when untracked.
        keypoints_2d: (K, 2) float32 image landmarks (px) for drawing, NaN where not seen, or None.
        keypoints_2d_edges: pairs of indices into keypoints_2d to draw as bones.
        vertices: (V, 3) float32 mesh vertices (m, pelvis-relative) when a SMPL file is set.
        faces: (F, 3) int64 mesh triangles, with vertices.
        appearance: (D,) or per-region (R, D) float32 appearance descriptor used to re-identify a tracked
            person (NaN = not seen; core.target_check.appearance_cosine compares two).
        joint_confidence: (24,) float32 in [0, 1] per SMPL joint: how well the camera saw it
            (0 = not seen, cut by the image edge or occluded: its rotation is a prior), or None
            when unknown (every joint then counts as estimated, not seen).
        generated: True for a pose made from the text alone (text-to-pose, speculative pose):
            it is not a person in view and carries no box or translation.
        gestures: the gestures the person is making now, read over time from the tracked poses
            (core.gestures.GestureRecogniser; set on tracking updates), () when none or not read.
        translation_source: where `translation` comes from: "depth" (the depth image under the
            torso, core/depth.py), "monocular" (the 2D keypoints fitted with camera_info,
            core/placement.py), or "" (unknown, or a pipeline's own guess).
    """

    theta: np.ndarray
    joints: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BETAS, np.float32))
    translation: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    confidence: float = 1.0
    estimator: str = ""
    track_id: int = -1
    keypoints_2d: np.ndarray | None = None
    keypoints_2d_edges: tuple[tuple[int, int], ...] = ()
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    appearance: np.ndarray | None = None
    joint_confidence: np.ndarray | None = None
    generated: bool = False
    gestures: tuple[Gesture, ...] = ()
    translation_source: str = ""

    def __post_init__(self) -> None:
        if np.shape(self.theta) != (NUM_JOINTS * 3,):
            raise ValueError(f"theta must be (72,), got {np.shape(self.theta)}")
        if np.shape(self.joints) != (NUM_JOINTS, 3):
            raise ValueError(f"joints must be (24, 3), got {np.shape(self.joints)}")
        if np.shape(self.betas) != (NUM_BETAS,):
            raise ValueError(f"betas must be (10,), got {np.shape(self.betas)}")
        if self.joint_confidence is not None and np.shape(self.joint_confidence) != (NUM_JOINTS,):
            raise ValueError(f"joint_confidence must be (24,), got {np.shape(self.joint_confidence)}")

    def to_json(self) -> dict:
        """A JSON-serialisable dict (lists of floats); mesh and appearance left out."""
        return {
            "track_id": self.track_id,
            "estimator": self.estimator,
            "generated": self.generated,
            "confidence": round(float(self.confidence), 4),
            "box_xyxy_px": None if self.box is None else [round(float(v), 1) for v in self.box],
            "theta_axis_angle_rad": [round(float(v), 5) for v in np.asarray(self.theta).ravel()],
            "betas": [round(float(v), 5) for v in np.asarray(self.betas).ravel()],
            "translation_m": None if self.translation is None else [round(float(v), 4) for v in self.translation],
            "translation_source": self.translation_source,
            "joints_m": [[round(float(v), 4) for v in j] for j in np.asarray(self.joints)],
            "joint_confidence": None if self.joint_confidence is None
            else [round(float(v), 3) for v in self.joint_confidence],
        }


@dataclass(frozen=True)
class PoseResult:
    """The answer to one query (or one tracking update).

    Attributes:
        query: the query answered ("" for tracking updates without a new query).
        answer: the model's text answer, pose tokens rendered as "[POSE]".
        people: the poses, best first.
        selected: index into `people` of the person the query refers to, -1 if none.
        model_id: profile name and weights hash of the model.
        image_size: (width, height) of the image used, or None for text-only answers.
        timings_ms: stage name -> milliseconds.
        pose_forced: True when the model did not emit the pose token by itself and it was
            appended (forced) to obtain a pose; such a pose is less trustworthy.
        no_match: True when the question asks about someone but nobody in view fits it (or the
            choice was less confident than the profile's threshold): `selected` is -1 and the
            answer says so; the node reports ``no_match`` on ``~/status``.
        grounding_confidence: calibrated probability that the selected person is the one the
            question means (before any threshold), or None when no choice was made.
        clarify: True when the answer asks which person is meant (several fit what could be
            checked): `selected` is -1; the node reports ``clarify`` on ``~/status``.
    """

    query: str
    answer: str
    people: tuple[PersonPose, ...] = ()
    selected: int = -1
    model_id: str = ""
    image_size: tuple[int, int] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    pose_forced: bool = False
    no_match: bool = False
    grounding_confidence: float | None = None
    clarify: bool = False

    @property
    def selected_person(self) -> PersonPose | None:
        return self.people[self.selected] if 0 <= self.selected < len(self.people) else None

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "answer": self.answer,
            "model_id": self.model_id,
            "selected": self.selected,
            "pose_forced": self.pose_forced,
            "no_match": self.no_match,
            "clarify": self.clarify,
            "grounding_confidence": self.grounding_confidence,
            "image_size": None if self.image_size is None else list(self.image_size),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "people": [p.to_json() for p in self.people],
        }
