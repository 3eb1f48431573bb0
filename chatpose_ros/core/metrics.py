"""3D pose error metrics (numpy): MPJPE and PA-MPJPE, per pose (m) or as a mean (mm).

Shared by the default model's and the ChatPose evaluations."""
from __future__ import annotations

import numpy as np

_M_TO_MM = 1000.0


def _check(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (B, J, 3) arrays of the same shape, got {pred.shape}, {true.shape}")
    return pred, true


def mpjpe(pred_joints: np.ndarray, true_joints: np.ndarray, root: int = 0) -> np.ndarray:
    """(B, J, 3), (B, J, 3) joints (m) -> (B,) mean per-joint position error (m) after aligning
    joint ``root`` (pelvis)."""
    p, t = _check(pred_joints, true_joints)
    p = p - p[:, root:root + 1]
    t = t - t[:, root:root + 1]
    return np.linalg.norm(p - t, axis=-1).mean(-1)


def mpjpe_mm(pred_joints: np.ndarray, true_joints: np.ndarray, root: int = 0) -> float:
    """MPJPE (mm) averaged over the batch; (B, J, 3) inputs in metres."""
    return float(mpjpe(pred_joints, true_joints, root).mean() * _M_TO_MM)


def procrustes_align(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(B, J, 3), (B, J, 3) -> pred aligned to true by the best similarity transform
    (rotation, uniform scale, translation; Umeyama)."""
    p, t = _check(pred, true)
    mp, mt = p.mean(1, keepdims=True), t.mean(1, keepdims=True)
    p0, t0 = p - mp, t - mt
    H = np.einsum("bji,bjk->bik", p0, t0)  # (B, 3, 3)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("bij,bjk->bik", Vt.transpose(0, 2, 1), U.transpose(0, 2, 1))))
    D = np.broadcast_to(np.eye(3), H.shape).copy()
    D[:, 2, 2] = d
    R = np.einsum("bij,bjk,bkl->bil", Vt.transpose(0, 2, 1), D, U.transpose(0, 2, 1))  # maps p0 -> t0
    var = (p0 ** 2).sum(axis=(1, 2))
    scale = (S * D.diagonal(axis1=1, axis2=2)).sum(1) / np.maximum(var, 1e-12)
    return scale[:, None, None] * np.einsum("bij,bkj->bki", R, p0) + mt


def pa_mpjpe(pred_joints: np.ndarray, true_joints: np.ndarray) -> np.ndarray:
    """(B, J, 3), (B, J, 3) joints (m) -> (B,) MPJPE (m) after similarity Procrustes alignment
    of each predicted pose to the truth."""
    p, t = _check(pred_joints, true_joints)
    return np.linalg.norm(procrustes_align(p, t) - t, axis=-1).mean(-1)


def pa_mpjpe_mm(pred_joints: np.ndarray, true_joints: np.ndarray) -> float:
    """PA-MPJPE (mm) averaged over the batch; (B, J, 3) inputs in metres."""
    return float(pa_mpjpe(pred_joints, true_joints).mean() * _M_TO_MM)
