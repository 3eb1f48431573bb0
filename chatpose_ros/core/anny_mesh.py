"""A body mesh without the SMPL licence: the Anny body model driven by an SMPL pose (ROS-free).

Anny (PyPI ``anny``, NAVER; Apache-2.0 code, CC0 MakeHuman assets) is a skinned human mesh.
We load it once with its ``cmu_mb`` rig (31 bones named like the CMU mocap skeleton) and a
decimated topology (``notoes_collapse10pc``, about 2,000 vertices: a marker-friendly size), at
the mean phenotype (every phenotype parameter 0.5) unless told otherwise.

    body = AnnyBody()                          # first build ~90 s (more on a loaded machine) and
                                               # ~0.8 GB under cache_dir; later loads ~1 s
    out = body.mesh(rotmats)                   # (24, 3, 3) SMPL local rotations, joint 0 = global
                                               # orientation in the camera optical frame
    out.vertices  # (V, 3) float32 m, pelvis-relative, camera optical frame
    out.faces     # (F, 3) int32 vertex indices
    body.fast_enough(camera_rate_hz=30.0)      # time per frame measured on this machine fits?

Pose transfer (SMPL -> Anny): each Anny bone is tied to the SMPL joint whose rotation moves it
(``BONE_TO_SMPL``: e.g. ``LeftArm`` to ``left_shoulder``, the joint at the bone's head). At load,
a fixed rotation ``C_c`` per bone turns Anny's rest bone (its rest is an A-pose) onto the SMPL
rest bone (T-pose) by the shortest arc; per frame the bone's world orientation is
``G_j @ A @ C_c @ R_c`` (``R_c`` Anny's rest orientation, ``A`` Anny's axes (Blender: x left,
y back, z up) to SMPL's canonical axes (x left, y up, z forward), ``G_j`` the SMPL joint's
accumulated (world) rotation), and Anny's ``world-orient`` kinematics places every bone's head
on its parent. So each bone points the way the SMPL bone points and twists with it; an identity
SMPL pose gives Anny in SMPL's T-pose. Bones without an SMPL child (head, toes, fingers) take
the alignment of their parent bone. The pelvis is Anny's ``Hips`` bone head (within a few cm
of SMPL's pelvis joint); body proportions are Anny's, not the person's.

``topology="smpl"``/``"smplx"`` would download SMPL's non-commercial files and are refused.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .body import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS, SMPL_REST_JOINTS
from .errors import BackendUnavailableError, ConfigError, ModelLoadError
from .geometry import axis_angle_to_matrix

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = "~/.cache/chatpose_ros/anny"
RIG = "cmu_mb"
DEFAULT_TOPOLOGY = "notoes_collapse10pc"   # decimated MakeHuman mesh shipped in the wheel
# Dense linear blend skinning in torch: on a decimated mesh as fast as Warp's kernels, without
# Warp's per-machine kernel compilation and its own cache.
SKINNING = "lbs"
# Topologies that download licensed (non-commercial) data at build time.
DOWNLOADING_TOPOLOGIES = ("smpl", "smplx")
BENCHMARK_FRAMES = 20       # frames timed by benchmark() when fast_enough() has no figure yet
BENCHMARK_WARMUP = 2        # untimed frames first
_EPS = 1e-9
CACHE_LOCK = ".chatpose.lock"  # one builder at a time per cache folder (node, tests, benchmarks)

# Anny (Blender) axes -> SMPL canonical axes: x left stays, z up -> y up, -y (forward) -> z.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

# Anny cmu_mb bone -> (SMPL joint driving it, SMPL joint its tail points to, Anny bone whose head
# is its tail in the rest pose). For bones without an SMPL child the last two are None and the
# alignment of ALIGN_LIKE[bone] is used.
BONE_TO_SMPL: dict[str, tuple[str, str | None, str | None]] = {
    "Hips": ("pelvis", "spine1", "LowerBack"),
    "LHipJoint": ("pelvis", "left_hip", "LeftUpLeg"),
    "RHipJoint": ("pelvis", "right_hip", "RightUpLeg"),
    "LeftUpLeg": ("left_hip", "left_knee", "LeftLeg"),
    "RightUpLeg": ("right_hip", "right_knee", "RightLeg"),
    "LeftLeg": ("left_knee", "left_ankle", "LeftFoot"),
    "RightLeg": ("right_knee", "right_ankle", "RightFoot"),
    "LeftFoot": ("left_ankle", "left_foot", "LeftToeBase"),
    "RightFoot": ("right_ankle", "right_foot", "RightToeBase"),
    "LeftToeBase": ("left_foot", None, None),
    "RightToeBase": ("right_foot", None, None),
    "LowerBack": ("spine1", "spine2", "Spine"),
    "Spine": ("spine2", "spine3", "Spine1"),
    "Spine1": ("spine3", "neck", "Neck"),
    "Neck": ("neck", "head", "Neck1"),
    "Neck1": ("neck", "head", "Head"),
    "Head": ("head", None, None),
    "LeftShoulder": ("left_collar", "left_shoulder", "LeftArm"),
    "RightShoulder": ("right_collar", "right_shoulder", "RightArm"),
    "LeftArm": ("left_shoulder", "left_elbow", "LeftForeArm"),
    "RightArm": ("right_shoulder", "right_elbow", "RightForeArm"),
    "LeftForeArm": ("left_elbow", "left_wrist", "LeftHand"),
    "RightForeArm": ("right_elbow", "right_wrist", "RightHand"),
    "LeftHand": ("left_wrist", "left_hand", "LeftFingerBase"),
    "RightHand": ("right_wrist", "right_hand", "RightFingerBase"),
    "LeftFingerBase": ("left_hand", None, None),
    "RightFingerBase": ("right_hand", None, None),
    "LeftHandFinger1": ("left_hand", None, None),
    "RightHandFinger1": ("right_hand", None, None),
    "LThumb": ("left_hand", None, None),
    "RThumb": ("right_hand", None, None),
}
ALIGN_LIKE: dict[str, str] = {
    "LeftToeBase": "LeftFoot", "RightToeBase": "RightFoot", "Head": "Neck1",
    "LeftFingerBase": "LeftHand", "RightFingerBase": "RightHand", "LeftHandFinger1": "LeftHand",
    "RightHandFinger1": "RightHand", "LThumb": "LeftHand", "RThumb": "RightHand",
}


@dataclass(frozen=True)
class MeshOutput:
    """vertices: (V, 3) float32 m, pelvis-relative, camera optical frame; faces: (F, 3) int32;
    bone_heads: (B, 3) float32 m, the posed head of each Anny bone (``AnnyBody.bone_labels``
    order), same frame."""

    vertices: np.ndarray
    faces: np.ndarray
    bone_heads: np.ndarray


def _shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3,), (3,) directions -> (3, 3) rotation turning a onto b by the smallest angle."""
    a = a / max(np.linalg.norm(a), _EPS)
    b = b / max(np.linalg.norm(b), _EPS)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-9:  # opposite: any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    K = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + K + K @ K / (1.0 + c)


def drop_truncated_cache_files(cache: Path) -> list[Path]:
    """Delete Anny cache files (``*.safetensors`` under ``cache``) shorter than their own header
    says: what a build killed while writing leaves (Anny writes in place), which Anny would
    otherwise fail to load for ever. Returns the files deleted. Call with the cache lock held."""
    dropped = []
    for path in sorted(cache.glob("v*/*.safetensors")):
        try:
            with open(path, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            whole = path.stat().st_size == 8 + n + end
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            whole = False
        if not whole:
            log.warning("Anny cache file %s is truncated (a build was interrupted): deleted, it will be rebuilt", path)
            path.unlink(missing_ok=True)
            dropped.append(path)
    return dropped


def _world_rotations(rotmats: torch.Tensor) -> torch.Tensor:
    """(24, 3, 3) local SMPL rotations -> (24, 3, 3) accumulated (world) rotations."""
    out = [rotmats[0]]
    for j in range(1, NUM_JOINTS):
        out.append(out[SMPL_PARENTS[j]] @ rotmats[j])
    return torch.stack(out)


class AnnyBody:
    """Anny loaded once, posed by SMPL rotations. See the module docstring.

    Args:
        cache_dir: where Anny keeps its built model data (about 0.8 GB); default
            ``~/.cache/chatpose_ros/anny`` (``CHATPOSE_ANNY_CACHE`` overrides the default).
        topology: an Anny topology shipped in the wheel (default the decimated
            ``notoes_collapse10pc``; ``anny`` is the full 14k-vertex mesh).
        phenotype: Anny phenotype parameters in [0, 1] (``gender``, ``age``, ``muscle``,
            ``weight``, ``height``, ``proportions``), default all 0.5.
    Raises:
        ConfigError: a topology that would download licensed data.
        BackendUnavailableError: ``anny`` is not installed.
        ModelLoadError: Anny's data could not be built or loaded (e.g. an unwritable cache).
    """

    def __init__(self, cache_dir: str | Path | None = None, topology: str = DEFAULT_TOPOLOGY,
                 phenotype: dict[str, float] | None = None) -> None:
        if topology.split("-")[0] in DOWNLOADING_TOPOLOGIES:
            raise ConfigError(f"Anny topology {topology!r} downloads SMPL's non-commercial files; "
                              f"use an Anny topology such as {DEFAULT_TOPOLOGY!r}")
        cache = Path(os.path.expanduser(str(cache_dir or os.environ.get("CHATPOSE_ANNY_CACHE", DEFAULT_CACHE_DIR))))
        t0 = time.perf_counter()
        try:
            import anny
            from anny.paths import set_anny_cache_path
        except ImportError as exc:
            raise BackendUnavailableError("the Anny body model is not installed (pip install anny)") from exc
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with open(cache / CACHE_LOCK, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process building the same cache: wait for it
                drop_truncated_cache_files(cache)
                set_anny_cache_path(cache)  # Anny keeps one process-wide cache path
                model = anny.Anny(rig=RIG, topology=topology, skinning_method=SKINNING)
                model.eval()
                with torch.no_grad():
                    rest = model(pose_parameters=None, phenotype_kwargs=phenotype)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot build the Anny body model (cache {cache}): {exc}") from exc
        self.cache_dir = cache
        self.topology = topology
        self.load_seconds = time.perf_counter() - t0
        self._model = model
        self._dtype = rest["rest_vertices"].dtype
        self._rest_vertices = rest["rest_vertices"][:1]               # (1, V, 3)
        self._rest_bone_poses = rest["rest_bone_poses"][:1]           # (1, B, 4, 4)
        self.faces = np.ascontiguousarray(model.faces.detach().cpu().numpy().astype(np.int32))
        labels = list(model.bone_labels)
        missing = sorted(set(labels) ^ set(BONE_TO_SMPL))
        if missing:
            raise ModelLoadError(f"Anny rig {RIG!r} bones differ from the SMPL mapping: {missing}")
        self.bone_labels = tuple(labels)
        heads = rest["rest_bone_heads"][0].detach().double().numpy()  # (B, 3) Anny axes
        R_rest = self._rest_bone_poses[0, :, :3, :3].detach().double().numpy()
        A = ANNY_TO_SMPL
        smpl_rest = SMPL_REST_JOINTS.astype(np.float64)
        align: dict[str, np.ndarray] = {}
        for name, (_, smpl_tail, anny_tail) in BONE_TO_SMPL.items():
            if smpl_tail is None:
                continue
            smpl_head = BONE_TO_SMPL[name][0]
            d_anny = A @ (heads[labels.index(anny_tail)] - heads[labels.index(name)])   # SMPL axes
            d_smpl = smpl_rest[_J[smpl_tail]] - smpl_rest[_J[smpl_head]]
            align[name] = _shortest_arc(d_anny, d_smpl)
        # per bone: (3, 3) A_c = alignment @ A @ R_rest (rest bone axes -> SMPL canonical, T-pose)
        fixed = np.stack([align[ALIGN_LIKE.get(n, n)] @ A @ R_rest[i] for i, n in enumerate(labels)])
        self._fixed = torch.as_tensor(fixed, dtype=self._dtype)
        self._smpl_index = torch.tensor([_J[BONE_TO_SMPL[n][0]] for n in labels])
        self.ms_per_frame: float | None = None
        log.info("Anny body (%s rig, %s topology: %d vertices, %d faces) ready in %.1f s (cache %s)",
                 RIG, topology, self.num_vertices, self.num_faces, self.load_seconds, cache)

    @property
    def num_vertices(self) -> int:
        return int(self._rest_vertices.shape[1])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @torch.no_grad()
    def mesh(self, rotmats: np.ndarray | torch.Tensor) -> MeshOutput:
        """(24, 3, 3) SMPL local rotations (joint 0 = global orientation in the camera optical
        frame) or (72,) axis-angle theta -> MeshOutput (vertices pelvis-relative, camera frame)."""
        R = torch.as_tensor(np.asarray(rotmats), dtype=self._dtype)
        if R.shape == (NUM_JOINTS * 3,):
            R = axis_angle_to_matrix(R.reshape(NUM_JOINTS, 3))
        if R.shape != (NUM_JOINTS, 3, 3):
            raise ValueError(f"expected (24, 3, 3) rotations or (72,) theta, got {tuple(R.shape)}")
        G = _world_rotations(R)                                          # (24, 3, 3)
        D = torch.zeros(1, len(self.bone_labels), 4, 4, dtype=self._dtype)
        D[0, :, :3, :3] = G[self._smpl_index] @ self._fixed
        D[0, :, 3, 3] = 1.0                                              # root head at the origin
        transforms, poses = self._model.get_bone_transforms(D, self._rest_bone_poses, pose_parameterization="world-orient")
        verts = self._model.get_skinned_vertices(self._rest_vertices, transforms)
        return MeshOutput(verts[0].float().numpy(), self.faces, poses[0, :, :3, 3].float().numpy())

    def benchmark(self, frames: int = BENCHMARK_FRAMES, rotmats: np.ndarray | None = None) -> float:
        """Median wall time (ms) of ``mesh`` over ``frames`` frames (after a short warm-up); also
        kept in ``ms_per_frame``. Depends on the machine and its load."""
        if rotmats is None:
            rotmats = np.tile(np.eye(3, dtype=np.float32), (NUM_JOINTS, 1, 1))
        for _ in range(BENCHMARK_WARMUP):
            self.mesh(rotmats)
        times = []
        for _ in range(max(1, frames)):
            t0 = time.perf_counter()
            self.mesh(rotmats)
            times.append(1000.0 * (time.perf_counter() - t0))
        self.ms_per_frame = float(np.median(times))
        return self.ms_per_frame

    def fast_enough(self, camera_rate_hz: float, budget_fraction: float = 1.0, ms_per_frame: float | None = None) -> bool:
        """Whether one mesh per frame fits in ``budget_fraction`` of the camera's frame period.

        Uses ``ms_per_frame`` if given, else the last ``benchmark()`` figure (measured now if none).
        A caller that also runs the pose model per frame gives the mesh a fraction of the period.
        """
        if camera_rate_hz <= 0 or not 0 < budget_fraction <= 1:
            raise ConfigError(f"camera_rate_hz must be > 0 and budget_fraction in (0, 1], "
                              f"got {camera_rate_hz}, {budget_fraction}")
        ms = ms_per_frame if ms_per_frame is not None else (self.ms_per_frame or self.benchmark())
        return ms <= budget_fraction * 1000.0 / camera_rate_hz


def main(argv: list[str] | None = None) -> None:
    """``python -m chatpose_ros.core.anny_mesh [--frames N] [--topology T]``: load time, mesh size
    and time per mesh frame (ms), and which camera rates it keeps up with."""
    import argparse

    ap = argparse.ArgumentParser(description="Time per Anny mesh frame")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--topology", default=DEFAULT_TOPOLOGY)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    body = AnnyBody(args.cache_dir, topology=args.topology)
    rng = np.random.default_rng(0)
    theta = torch.as_tensor(rng.normal(0.0, 0.3, (NUM_JOINTS, 3)))
    ms = body.benchmark(args.frames, axis_angle_to_matrix(theta).numpy())
    log.info("Anny %s: %d vertices, %d faces; load %.1f s; mesh %.1f ms/frame (median of %d, torch threads %d)",
             args.topology, body.num_vertices, body.num_faces, body.load_seconds, ms, args.frames, torch.get_num_threads())
    for hz in (10.0, 15.0, 30.0):
        log.info("  %.0f Hz camera: %s (budget %.0f ms)", hz, "fast enough" if body.fast_enough(hz) else "too slow", 1000 / hz)


if __name__ == "__main__":
    main()
