"""The SMPL body: kinematic tree, rest joints, forward kinematics, optional SMPL mesh.

Without a SMPL model file (its licence forbids shipping one) joints come from forward
kinematics on the SMPL kinematic tree with the rest joint positions below. With a user-supplied
SMPL file (`SMPL_NEUTRAL.pkl` etc.) `SmplBody` runs `smplx.SMPL` and also returns the mesh.

Canonical body frame (as in SMPL): y up, x towards the body's left, z forward (the way the
body faces). Units: metres.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import BackendUnavailableError, ModelLoadError
from .geometry import axis_angle_to_matrix
# the skeleton's layout lives in smpl_layout (torch-free: the ROS node imports it); re-exported here
from .smpl_layout import NUM_BETAS, NUM_JOINTS, SMPL_BONES, SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: F401

log = logging.getLogger(__name__)

# Rest (T-pose) joint positions of the mean SMPL body, metres, canonical body frame, pelvis
# at the origin. Approximately the joints of the SMPL neutral template (J_regressor applied to
# the mean shape), rounded to the centimetre; used when no SMPL file is given.
SMPL_REST_JOINTS = np.array(
    [
        [0.000, 0.000, 0.000],    # pelvis
        [0.070, -0.090, -0.005],  # left_hip
        [-0.068, -0.090, -0.004], # right_hip
        [-0.002, 0.110, -0.025],  # spine1
        [0.105, -0.470, -0.010],  # left_knee
        [-0.105, -0.470, -0.010], # right_knee
        [0.005, 0.245, -0.005],   # spine2
        [0.090, -0.870, -0.050],  # left_ankle
        [-0.090, -0.870, -0.050], # right_ankle
        [0.003, 0.300, 0.000],    # spine3
        [0.115, -0.925, 0.070],   # left_foot
        [-0.115, -0.925, 0.070],  # right_foot
        [-0.010, 0.515, -0.030],  # neck
        [0.075, 0.420, -0.020],   # left_collar
        [-0.080, 0.420, -0.025],  # right_collar
        [0.005, 0.575, 0.020],    # head
        [0.170, 0.450, -0.035],   # left_shoulder
        [-0.170, 0.450, -0.035],  # right_shoulder
        [0.430, 0.430, -0.055],   # left_elbow
        [-0.430, 0.430, -0.055],  # right_elbow
        [0.680, 0.440, -0.055],   # left_wrist
        [-0.680, 0.440, -0.055],  # right_wrist
        [0.765, 0.430, -0.065],   # left_hand
        [-0.765, 0.430, -0.065],  # right_hand
    ],
    dtype=np.float32,
)


def forward_kinematics(rotmats: torch.Tensor, rest_joints: torch.Tensor | None = None) -> torch.Tensor:
    """Posed joint positions from local joint rotations.

    Args:
        rotmats: (B, 24, 3, 3) local rotations, SMPL joint order; joint 0 is the global
            orientation.
        rest_joints: (24, 3) or (B, 24, 3) rest joint positions (m); default SMPL_REST_JOINTS.
    Returns:
        (B, 24, 3) joint positions (m), pelvis at the origin, in the frame the global
        orientation maps into.
    """
    if rotmats.ndim != 4 or rotmats.shape[1:] != (NUM_JOINTS, 3, 3):
        raise ValueError(f"forward_kinematics expects (B, 24, 3, 3), got {tuple(rotmats.shape)}")
    if rest_joints is None:
        rest_joints = torch.as_tensor(SMPL_REST_JOINTS, dtype=rotmats.dtype, device=rotmats.device)
    rest = rest_joints.expand(rotmats.shape[0], NUM_JOINTS, 3)
    world_R: list[torch.Tensor] = []
    world_t: list[torch.Tensor] = []
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            world_R.append(rotmats[:, 0])
            world_t.append(torch.zeros_like(rest[:, 0]))
        else:
            offset = rest[:, j] - rest[:, p]
            world_R.append(world_R[p] @ rotmats[:, j])
            world_t.append(world_t[p] + (world_R[p] @ offset[..., None])[..., 0])
    return torch.stack(world_t, dim=1)


@dataclass(frozen=True)
class BodyOutput:
    """joints: (B, 24, 3) m, pelvis-relative; vertices: (B, V, 3) m or None; faces: (F, 3) or None."""

    joints: torch.Tensor
    vertices: torch.Tensor | None
    faces: np.ndarray | None


class SmplBody:
    """SMPL forward pass: the real mesh through `smplx` when a model file is given, else
    forward kinematics on the kinematic tree (joints only)."""

    def __init__(self, model_path: str | Path | None = None, gender: str = "neutral") -> None:
        self._smpl = None
        self.model_path = str(model_path) if model_path else ""
        if model_path:
            path = Path(model_path).expanduser()
            if not path.exists():
                raise ModelLoadError(f"SMPL model file not found: {path}")
            try:
                import smplx  # heavy optional dependency, only when asked for
            except ImportError as exc:  # pragma: no cover - smplx is in requirements
                raise BackendUnavailableError("smplx is not installed; cannot load SMPL files") from exc
            try:
                self._smpl = smplx.SMPL(model_path=str(path), gender=gender, batch_size=1)
            except Exception as exc:  # smplx raises bare exceptions/asserts on bad files
                raise ModelLoadError(f"cannot load SMPL model {path}: {exc}") from exc
            self._smpl.eval()
            log.info("SMPL body model loaded from %s (mesh available)", path)
        else:
            log.info("no SMPL model file given: joints by forward kinematics on the SMPL tree; "
                     "the body mesh needs SMPL files (parameter smpl_model_path)")

    @property
    def has_mesh(self) -> bool:
        return self._smpl is not None

    @torch.no_grad()
    def __call__(self, rotmats: torch.Tensor, betas: torch.Tensor | None = None) -> BodyOutput:
        """rotmats: (B, 24, 3, 3); betas: (B, 10) or None (mean shape) -> BodyOutput."""
        if self._smpl is None:
            return BodyOutput(forward_kinematics(rotmats), None, None)
        B = rotmats.shape[0]
        if betas is None:
            betas = torch.zeros(B, NUM_BETAS, dtype=rotmats.dtype)
        out = self._smpl(
            betas=betas.float(), global_orient=rotmats[:, :1].float(), body_pose=rotmats[:, 1:].float(),
            pose2rot=False,
        )
        root = out.joints[:, :1]
        return BodyOutput(out.joints[:, :NUM_JOINTS] - root, out.vertices - root, np.asarray(self._smpl.faces, dtype=np.int64))


def theta_to_rotmats(theta: torch.Tensor) -> torch.Tensor:
    """(B, 72) or (B, 24, 3) axis-angle theta -> (B, 24, 3, 3) rotation matrices."""
    return axis_angle_to_matrix(theta.reshape(theta.shape[0], NUM_JOINTS, 3))
