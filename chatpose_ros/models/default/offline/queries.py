"""Text-to-pose samples for training and evaluating the scene reader's pose head.

- text-to-pose: :func:`posecodes.describe_pose` of a mocap pose -> that pose;
- speculative text-to-pose ("what pose would a tired person take?" -> a bending / crouching
  pose, by :func:`posecodes.posture_labels`).

The target pose is :func:`canonical_pose` of the mocap frame: facing the camera, upright.
Questions about people in a scene come from :mod:`scene_questions`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatpose_ros.models.default.offline.mocap import MocapSet
from chatpose_ros.models.default.offline.posecodes import describe_pose, posture_labels

# canonical SMPL frame (y up, facing +z) -> camera optical frame (y down, facing the camera)
CANON_TO_CAMERA = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
TEXT_POSE_TEMPLATES = ("Generate this pose: {d}", "Give me the SMPL pose. {d}", "{d} Show me this pose.",
                       "Can you make a 3D pose? {d}")
SPECULATIVE_POSE: dict[str, tuple[str, ...]] = {
    "What pose would a tired person take?": ("bending forward", "crouching"),
    "Show me how someone celebrates a goal.": ("raising both arms",),
    "What does a person waving look like?": ("raising the left arm", "raising the right arm"),
    "How does someone look when they kick a ball?": ("kicking",),
    "Show me a person resting.": ("sitting", "squatting"),
    "What pose would someone hiding take?": ("crouching", "squatting"),
    "Show me someone standing to attention.": ("standing straight",),
    "What pose does a person balancing take?": ("arms stretched out",),
}


@dataclass(frozen=True)
class Sample:
    """One text-to-pose sample: the question and its target pose.

    rotmats: (24, 3, 3) local rotations, joint 0 in the camera optical frame (canonical_pose);
    kind: "text2pose" or "speculative_pose"."""

    query: str
    rotmats: np.ndarray
    kind: str


def canonical_pose(rotmats: np.ndarray) -> np.ndarray:
    """(24, 3, 3) mocap rotations (canonical y-up frame, any heading) -> the same pose facing
    the camera, upright, joint 0 in the camera optical frame (for text-to-pose targets)."""
    R0 = rotmats[0]
    fwd = R0[:, 2]
    yaw = float(np.arctan2(fwd[0], fwd[2]))
    c, s = np.cos(-yaw), np.sin(-yaw)
    unyaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)
    out = rotmats.astype(np.float32).copy()
    out[0] = CANON_TO_CAMERA @ unyaw @ R0
    return out


class SampleStream:
    """Random text-to-pose samples from a mocap split."""

    def __init__(self, mocap: MocapSet, seed: int) -> None:
        self.mocap = mocap
        self.rng = np.random.default_rng(seed)
        self._labels: list[frozenset[str]] | None = None
        self.max_sentences = 3  # short descriptions keep sequences short on a CPU

    def labels(self) -> list[frozenset[str]]:
        if self._labels is None:
            self._labels = [posture_labels(j) for j in self.mocap.joints]
        return self._labels

    def text_pose(self) -> Sample:
        """A posecode description of a random frame -> that frame's pose."""
        i = int(self.rng.integers(len(self.mocap)))
        d = " ".join(describe_pose(self.mocap.joints[i], self.rng).split(". ")[:self.max_sentences]).strip()
        d = d if d.endswith(".") else d + "."
        q = TEXT_POSE_TEMPLATES[int(self.rng.integers(len(TEXT_POSE_TEMPLATES)))].format(d=d)
        return Sample(q, canonical_pose(self.mocap.rotmats[i]), "text2pose")

    def speculative_pose(self) -> Sample:
        """A SPECULATIVE_POSE question -> a random frame with one of its posture labels."""
        labels = self.labels()
        keys = list(SPECULATIVE_POSE)
        while True:
            q = keys[int(self.rng.integers(len(keys)))]
            cand = [i for i, ls in enumerate(labels) if ls & set(SPECULATIVE_POSE[q])]
            if cand:
                i = cand[int(self.rng.integers(len(cand)))]
                return Sample(q, canonical_pose(self.mocap.rotmats[i]), "speculative_pose")
