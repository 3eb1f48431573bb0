"""Rotation and box geometry in numpy: what the ROS node needs, without importing torch (the
batched torch versions for models are in core/geometry.py, same conventions and results).

- Axis-angle: a 3-vector whose direction is the axis and whose norm is the angle (rad).
- Quaternions are ``(x, y, z, w)`` (the order of geometry_msgs/Quaternion), unit norm, w >= 0.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-8


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle (rad) -> (..., 3, 3) float64 rotation matrices (Rodrigues)."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    x, y, z = np.moveaxis(aa / np.maximum(angle, _EPS), -1, 0)
    zero = np.zeros_like(x)
    K = np.stack((zero, -z, y, z, zero, -x, -y, x, zero), axis=-1).reshape(*aa.shape[:-1], 3, 3)
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) float64 unit quaternions (x, y, z, w), w >= 0,
    from the numerically stable candidate (the largest of w, x, y, z) for every element."""
    m = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    m01, m02, m10, m12, m20, m21 = m[..., 0, 1], m[..., 0, 2], m[..., 1, 0], m[..., 1, 2], m[..., 2, 0], m[..., 2, 1]
    cands = np.stack((np.stack((1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01), -1),
                      np.stack((m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20), -1),
                      np.stack((m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21), -1),
                      np.stack((m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22), -1)), axis=-2)  # rows (w, x, y, z)
    diag = np.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1)
    q = np.take_along_axis(cands, diag.argmax(-1)[..., None, None], axis=-2)[..., 0, :]
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)
    q = np.where(q[..., :1] < 0, -q, q)
    return np.concatenate((q[..., 1:], q[..., :1]), axis=-1)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes (pixels); 0 when
    either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
