"""The keypoint set shared by real detections (perception Scene people) and SMPL mocap.

K = 15 keypoints (``KEYPOINT_NAMES``). From BlazePose's 33 landmarks (the MediaPipe Pose
layout) they are picked by ``MEDIAPIPE_INDEX``; from MoveNet's COCO-17 keypoints by name, the
feet missing (``scene_input``); from SMPL they are the same-named joints, plus a nose placed on
the head.

Domain gap: BlazePose's hip landmarks sit lower and wider than SMPL's hip joints (they mark
the outside of the hips near the greater trochanter, SMPL's are the joint centres), and its
foot landmark is the toe tip where SMPL's foot joint is the ball of the foot. The regressor is
trained with a random hip offset and gaussian noise on top of the SMPL keypoints to absorb
this gap (see ``train_regressor.NoiseModel``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_foot", "right_foot",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
MEDIAPIPE_NUM_LANDMARKS = 33
# MediaPipe Pose landmark index of each keypoint (nose, shoulders, elbows, wrists, hips, knees,
# ankles, foot_index)
MEDIAPIPE_INDEX: tuple[int, ...] = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28, 31, 32)

_K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
KEYPOINT_EDGES: tuple[tuple[int, int], ...] = tuple(
    (_K[a], _K[b]) for a, b in (
        ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"), ("left_ankle", "left_foot"), ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"), ("right_ankle", "right_foot"), ("left_shoulder", "nose"),
        ("right_shoulder", "nose"),
    )
)

# SMPL joint of each keypoint except the nose (which comes from the head)
SMPL_KEYPOINT_JOINTS: tuple[int, ...] = tuple(
    SMPL_JOINT_NAMES.index(n) for n in KEYPOINT_NAMES[1:]
)
HEAD_JOINT = SMPL_JOINT_NAMES.index("head")
# Nose relative to the SMPL head joint in the head's own frame (canonical axes: y up, z
# forward), metres: about 10 cm in front of and 3 cm above the head joint.
NOSE_OFFSET_M = np.array([0.0, 0.03, 0.10], dtype=np.float32)


def mediapipe_to_keypoints(landmarks: np.ndarray) -> np.ndarray:
    """(..., 33, D) MediaPipe Pose landmarks -> (..., 15, D) keypoints in KEYPOINT_NAMES order."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim < 2 or landmarks.shape[-2] != MEDIAPIPE_NUM_LANDMARKS:
        raise ValueError(f"expected (..., 33, D) MediaPipe landmarks, got {landmarks.shape}")
    return landmarks[..., list(MEDIAPIPE_INDEX), :]


def world_rotations(rotmats: np.ndarray) -> np.ndarray:
    """(..., 24, 3, 3) local SMPL rotations -> (..., 24, 3, 3) world (accumulated) rotations."""
    out = np.empty_like(rotmats)
    for j, p in enumerate(SMPL_PARENTS):
        out[..., j, :, :] = rotmats[..., j, :, :] if p < 0 else out[..., p, :, :] @ rotmats[..., j, :, :]
    return out


def head_world_rotation(rotmats: np.ndarray) -> np.ndarray:
    """(..., 24, 3, 3) local rotations (numpy or torch) -> (..., 3, 3) world rotation of the head."""
    R = rotmats[..., 0, :, :]
    chain = []
    j = HEAD_JOINT
    while j > 0:
        chain.append(j)
        j = SMPL_PARENTS[j]
    for j in reversed(chain):
        R = R @ rotmats[..., j, :, :]
    return R


def smpl_to_keypoints(joints: np.ndarray, rotmats: np.ndarray) -> np.ndarray:
    """SMPL joints and local rotations -> the 15 keypoints.

    Args:
        joints: (..., 24, 3) joint positions (m) in the frame the global orientation maps into.
        rotmats: (..., 24, 3, 3) local rotations (joint 0 = global orientation, same frame).
    Returns:
        (..., 15, 3) keypoints, KEYPOINT_NAMES order; nose = head + R_head_world @ NOSE_OFFSET_M.
    """
    joints = np.asarray(joints)
    rotmats = np.asarray(rotmats)
    if joints.shape[-2:] != (NUM_JOINTS, 3) or rotmats.shape[-3:] != (NUM_JOINTS, 3, 3):
        raise ValueError(f"expected (..., 24, 3) joints and (..., 24, 3, 3) rotmats, got {joints.shape}, {rotmats.shape}")
    head_R = head_world_rotation(rotmats)
    nose = joints[..., HEAD_JOINT, :] + np.einsum("...ij,j->...i", head_R, NOSE_OFFSET_M.astype(head_R.dtype))
    body = joints[..., list(SMPL_KEYPOINT_JOINTS), :]
    return np.concatenate([nose[..., None, :], body], axis=-2).astype(joints.dtype, copy=False)


def smpl_to_keypoints_torch(joints: "torch.Tensor", rotmats: "torch.Tensor") -> "torch.Tensor":
    """Torch twin of ``smpl_to_keypoints`` (differentiable, same constants).

    (B, 24, 3) joints, (B, 24, 3, 3) local rotations -> (B, 15, 3) keypoints.
    """
    import torch  # the numpy API above must not need torch

    head_R = head_world_rotation(rotmats)  # indexing and @ work the same on tensors
    offset = torch.as_tensor(NOSE_OFFSET_M, dtype=joints.dtype, device=joints.device)
    nose = joints[:, HEAD_JOINT] + head_R @ offset
    return torch.cat([nose[:, None], joints[:, list(SMPL_KEYPOINT_JOINTS)]], dim=1)
