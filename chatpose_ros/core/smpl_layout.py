"""The SMPL skeleton's layout (sizes, joint names, parents, bones): plain constants, importable
without torch (core/body.py, which builds bodies with torch, re-exports them)."""
from __future__ import annotations

NUM_JOINTS = 24
NUM_BETAS = 10

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# parent of each joint; -1 for the root (pelvis)
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# Bones drawn by visualisations and markers: (parent, child) for every non-root joint.
SMPL_BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(SMPL_PARENTS) if p >= 0)
