"""The pose head of ChatPose: the hidden state of the pose token -> 24 SMPL rotations (6D)."""
from __future__ import annotations

import torch
from torch import nn

from .body import NUM_JOINTS
from .geometry import rot6d_to_matrix


class PoseHead(nn.Module):
    """``Linear(hidden, inner) -> ReLU -> Linear(inner, 24 * 6)`` then 6D -> rotation matrix.

    Its parameters are named like ChatPose's `text_hidden_fcs.0` (`net.0`, `net.2`) so that the
    released weights map one to one.
    """

    def __init__(self, hidden_size: int, inner_size: int | None = None, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        inner = inner_size or hidden_size
        self.num_joints = num_joints
        self.net = nn.Sequential(nn.Linear(hidden_size, inner), nn.ReLU(), nn.Linear(inner, num_joints * 6))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, hidden) -> (B, 24, 3, 3) rotation matrices, SMPL joint order (joint 0 global)."""
        x = self.net(hidden).reshape(hidden.shape[0], self.num_joints, 6)
        return rot6d_to_matrix(x)
