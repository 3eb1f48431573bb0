"""Rotation geometry, batched over any leading dimensions (torch).

Conventions:
- Rotation matrices act on column vectors: ``v' = R @ v``.
- 6D rotations follow HMR 2.0 / ChatPose: the 6 numbers are the first column of R (3) then
  its second column (3); ``x.reshape(..., 2, 3).transpose(-1, -2)`` gives the two columns.
- Axis-angle: a 3-vector whose direction is the axis and whose norm is the angle (rad).
- Quaternions are ``(x, y, z, w)`` (the order of geometry_msgs/Quaternion), unit norm, w >= 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry_np import box_iou  # noqa: F401  (re-exported: boxes need no torch)
from .geometry_np import quaternion_candidates, rodrigues

_EPS = 1e-8


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D rotations -> (..., 3, 3) rotation matrices (Gram-Schmidt)."""
    if x.shape[-1] != 6:
        raise ValueError(f"rot6d_to_matrix expects (..., 6), got {tuple(x.shape)}")
    cols = x.reshape(*x.shape[:-1], 2, 3)
    a1, a2 = cols[..., 0, :], cols[..., 1, :]
    b1 = F.normalize(a1, dim=-1, eps=_EPS)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=_EPS)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): first column then second column."""
    return torch.cat((R[..., :, 0], R[..., :, 1]), dim=-1)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (rad) -> (..., 3, 3) rotation matrices (Rodrigues)."""
    angle = aa.norm(dim=-1, keepdim=True)  # (..., 1)
    axis = aa / angle.clamp_min(_EPS)
    x, y, z = axis.unbind(-1)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return rodrigues(x, y, z, torch.zeros_like(x), torch.sin(angle)[..., None], torch.cos(angle)[..., None], eye, torch.stack)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (x, y, z, w), w >= 0.

    Uses the numerically stable branch on the largest of (w, x, y, z) for every element.
    """
    cands, diag = quaternion_candidates(R, torch.stack)  # (..., 4, 4) rows: candidate (w, x, y, z)
    best = diag.argmax(-1)
    q_wxyz = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q_wxyz = F.normalize(q_wxyz, dim=-1, eps=_EPS)
    q_wxyz = torch.where(q_wxyz[..., :1] < 0, -q_wxyz, q_wxyz)
    return torch.cat((q_wxyz[..., 1:], q_wxyz[..., :1]), dim=-1)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (x, y, z, w), any norm > 0 -> (..., 3, 3) rotation matrices."""
    q = F.normalize(q, dim=-1, eps=_EPS)
    x, y, z, w = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (x, y, z, w) -> (..., 3) axis-angle with angle in [0, pi]."""
    q = F.normalize(q, dim=-1, eps=_EPS)
    q = torch.where(q[..., 3:] < 0, -q, q)
    xyz, w = q[..., :3], q[..., 3:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, w)
    # angle / sin(angle/2) -> 2 as angle -> 0 (keeps gradients and precision near identity)
    scale = torch.where(sin_half > 1e-6, angle / sin_half.clamp_min(_EPS), 2.0 + angle * angle / 12.0)
    return xyz * scale


def axis_angle_to_quaternion(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (rad) -> (..., 4) unit quaternions (x, y, z, w)."""
    angle = aa.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    scale = torch.where(angle > 1e-6, torch.sin(half) / angle.clamp_min(_EPS), 0.5 - angle * angle / 48.0)
    q = torch.cat((aa * scale, torch.cos(half)), dim=-1)
    return torch.where(q[..., 3:] < 0, -q, q)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle (rad), angle in [0, pi]."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3), (..., 3, 3) -> (...) angle (rad) of the rotation R1^T R2."""
    tr = (R1.transpose(-1, -2) @ R2).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.acos(((tr - 1.0) / 2.0).clamp(-1.0, 1.0))
