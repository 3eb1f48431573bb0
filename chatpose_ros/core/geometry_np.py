"""Rotation and box geometry in numpy: what the ROS node needs, without importing torch.

core/geometry.py holds the batched torch versions the models train through (autograd, any
device); the formulas both use are written once, here, over the array module's `stack` (the
same call in numpy and torch): `rodrigues` (axis-angle -> matrix) and `quaternion_candidates`
(matrix -> quaternion). Same conventions and results (tests/test_node_imports.py).

- Axis-angle: a 3-vector whose direction is the axis and whose norm is the angle (rad).
- Quaternions are ``(x, y, z, w)`` (the order of geometry_msgs/Quaternion), unit norm, w >= 0.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

_EPS = 1e-8

Stack = Callable[..., Any]  # np.stack or torch.stack: (arrays, axis) -> array


def rodrigues(x: Any, y: Any, z: Any, zero: Any, s: Any, c: Any, eye: Any, stack: Stack) -> Any:
    """Rotation matrices from unit axes and the angle's sine and cosine (numpy or torch).

    x, y, z, zero: (...) axis components and zeros; s, c: (..., 1, 1) sin and cos of the angle;
    eye: the (3, 3) identity -> (..., 3, 3) ``I + s K + (1 - c) K^2``, K the cross-product matrix."""
    K = stack((zero, -z, y, z, zero, -x, -y, x, zero), -1).reshape(*x.shape, 3, 3)
    return eye + s * K + (1.0 - c) * (K @ K)


def quaternion_candidates(m: Any, stack: Stack) -> tuple[Any, Any]:
    """(..., 3, 3) rotation matrices (numpy or torch) -> four candidate unnormalised quaternions
    (..., 4, 4) (rows: the candidate accurate when w, x, y, z is the largest; each (w, x, y, z)),
    and (..., 4) the diagonal that says which is largest."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    m01, m02, m10, m12, m20, m21 = m[..., 0, 1], m[..., 0, 2], m[..., 1, 0], m[..., 1, 2], m[..., 2, 0], m[..., 2, 1]
    cands = stack((stack((1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01), -1),
                   stack((m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20), -1),
                   stack((m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21), -1),
                   stack((m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22), -1)), -2)
    diag = stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1)
    return cands, diag


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle (rad) -> (..., 3, 3) float64 rotation matrices (Rodrigues)."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    x, y, z = np.moveaxis(aa / np.maximum(angle, _EPS), -1, 0)
    return rodrigues(x, y, z, np.zeros_like(x), np.sin(angle)[..., None], np.cos(angle)[..., None], np.eye(3), np.stack)


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) float64 unit quaternions (x, y, z, w), w >= 0,
    from the numerically stable candidate (the largest of w, x, y, z) for every element."""
    cands, diag = quaternion_candidates(np.asarray(R, dtype=np.float64), np.stack)
    q = np.take_along_axis(cands, diag.argmax(-1)[..., None, None], axis=-2)[..., 0, :]
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)
    q = np.where(q[..., :1] < 0, -q, q)
    return np.concatenate((q[..., 1:], q[..., :1]), axis=-1)


def box_inside_fraction(box: tuple[float, float, float, float], region: tuple[float, float, float, float]) -> float:
    """The share of `box`'s area inside `region` (both (x_min, y_min, x_max, y_max), pixels); 0 when
    `box` is empty."""
    ix = max(0.0, min(box[2], region[2]) - max(box[0], region[0]))
    iy = max(0.0, min(box[3], region[3]) - max(box[1], region[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(ix * iy / area) if area > 0 else 0.0


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes (pixels); 0 when
    either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
