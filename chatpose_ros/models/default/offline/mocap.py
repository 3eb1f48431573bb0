"""Real motion capture for training: a BVH parser and a retargeter onto the SMPL kinematic tree.

The CMU mocap BVH files of Debian's ``assimp-testmodels`` (``/usr/share/assimp/models/BVH``)
are parsed, posed by forward kinematics, and retargeted to SMPL local rotations:

1. Each SMPL joint gets a *target point* on the mocap skeleton (``_SKELETON_MAPS``): hips,
   knees, ankles, toes, shoulders, elbows, wrists map to the same-named mocap joints; spine1/2/3
   lie on the mocap spine polyline (pelvis -> neck) at the arc-length fractions of the SMPL rest
   spine; collars lie between the mocap collar and shoulder; hands extend the forearm.
2. Rotations are solved top-down. The pelvis (three children) and spine3 (neck + two collars)
   get their world rotation from a frame fitted to a lateral line (hips / shoulders) and an up
   vector. Every other joint gets the minimal swing that points its SMPL rest bone along the
   mocap bone; hips and shoulders take their twist from the knee / elbow hinge plane when the
   limb is bent. The head keeps the mocap head's world rotation (it drives the nose keypoint);
   feet and hands (leaves) keep identity local rotations.

Units do not matter: only bone *directions* are taken from the mocap; positions come from
``core.body.forward_kinematics`` on the SMPL rest skeleton (metres). BVH and SMPL share the
axes (y up, x to the body's left, z forward in the rest pose); each clip is turned about y so
that the pelvis faces +z at its first frame, and keeps its real heading changes afterwards.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS, SMPL_REST_JOINTS, forward_kinematics
from chatpose_ros.core.errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

BVH_DIR = Path("/usr/share/assimp/models/BVH")
BVH_FILES: tuple[str, ...] = ("01_01.bvh", "01_03.bvh", "Boxing_Toes.bvh")
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("01_03", "Boxing_Toes"),
    "test": ("01_01",),
    "all": ("01_01", "01_03", "Boxing_Toes"),
}
DEFAULT_CACHE_DIR = Path("~/.cache/chatpose_ros/mocap")
_CACHE_VERSION = "4"  # bump when the retargeting changes so stale caches are ignored

# Target collar = mocap collar + this fraction of (mocap shoulder - mocap collar): mocap collars
# sit at the neck base, SMPL collars roughly 40% of the way out to the shoulder.
COLLAR_FRACTION = 0.4
# Below this sine of the knee/elbow bend the hinge plane is unreliable; use pure swing.
MIN_HINGE_SIN = 0.2
# Hand target = wrist + this fraction of the forearm vector (only its direction is used).
HAND_EXTENSION = 0.25
_EPS = 1e-9

_IDX = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

# SMPL joint -> mocap joint for directly mapped joints; per skeleton family. The spine polyline
# runs from the root to the joint mapped to SMPL "neck".
_SKELETON_MAPS: dict[str, dict[str, object]] = {
    "cmu": {
        "detect": "LeftUpLeg",
        "direct": {
            "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg",
            "left_knee": "LeftLeg", "right_knee": "RightLeg", "left_ankle": "LeftFoot",
            "right_ankle": "RightFoot", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
            "neck": "Neck1", "head": "Head", "left_shoulder": "LeftArm", "right_shoulder": "RightArm",
            "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm", "left_wrist": "LeftHand",
            "right_wrist": "RightHand",
        },
        "spine": ("Hips", "Spine", "Spine1", "Neck1"),
        "collars": ("LeftShoulder", "RightShoulder"),
    },
    "motionbuilder": {  # Boxing_Toes.bvh and similar (Ab/Chest/Collar naming)
        "detect": "LeftCollar",
        "direct": {
            "pelvis": "Hips", "left_hip": "LeftHip", "right_hip": "RightHip",
            "left_knee": "LeftKnee", "right_knee": "RightKnee", "left_ankle": "LeftAnkle",
            "right_ankle": "RightAnkle", "left_foot": "LeftToes", "right_foot": "RightToes",
            "neck": "Neck", "head": "Head", "left_shoulder": "LeftShoulder",
            "right_shoulder": "RightShoulder", "left_elbow": "LeftElbow", "right_elbow": "RightElbow",
            "left_wrist": "LeftWrist", "right_wrist": "RightWrist",
        },
        "spine": ("Hips", "Ab", "Chest", "Neck"),
        "collars": ("LeftCollar", "RightCollar"),
    },
}


@dataclass(frozen=True)
class BvhClip:
    """A parsed BVH file.

    names: joint names (End Sites excluded), J; parents: (J,) parent index, -1 for the root;
    offsets: (J, 3) rest offsets from the parent (file units); channels: per joint the channel
    names in file order; frame_time: seconds per frame; motion: (F, C) float64 channel values
    (positions in file units, rotations in degrees); end_sites: (parent index, (3,) offset) pairs.
    """

    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frame_time: float
    motion: np.ndarray
    end_sites: tuple[tuple[int, tuple[float, float, float]], ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def first_motion_frame(self) -> int:
        """0, or 1 when frame 0 is a calibration T-pose (root rotation exactly zero, as in the
        cgspeed CMU conversions, whose frame 0 is the rest pose)."""
        rot_cols = [i for i, ch in enumerate(self.channels[0]) if ch.endswith("rotation")]
        return int(self.num_frames > 1 and bool(np.all(self.motion[0, rot_cols] == 0.0)))

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError as exc:
            raise ModelLoadError(f"BVH {self.name}: no joint named {name!r}") from exc


@dataclass(frozen=True)
class MocapSet:
    """Retargeted mocap frames.

    rotmats: (N, 24, 3, 3) float32 SMPL local rotations, joint 0 = global orientation in the
    SMPL canonical frame (y up); joints: (N, 24, 3) float32 forward_kinematics(rotmats), pelvis
    at the origin (m); source: per-frame source file stem, len N.
    """

    rotmats: np.ndarray
    joints: np.ndarray
    source: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.rotmats.shape[0])


# --------------------------------------------------------------------------- BVH parsing


def default_bvh_files() -> list[Path]:
    """The Debian ``assimp-testmodels`` CMU/MotionBuilder BVH files that exist on this machine."""
    found = [BVH_DIR / f for f in BVH_FILES if (BVH_DIR / f).is_file()]
    if not found:
        raise ModelLoadError(
            f"no mocap BVH files found in {BVH_DIR}; install them with "
            "`sudo apt-get install assimp-testmodels`"
        )
    return found


def load_bvh(path: str | Path) -> BvhClip:
    """Parse a BVH file (hierarchy, offsets, channel orders, frame time, motion)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ModelLoadError(f"cannot read BVH file {path}: {exc}") from exc
    tokens = text.split()
    try:
        return _parse_tokens(tokens, path.stem)
    except (IndexError, ValueError) as exc:
        raise ModelLoadError(f"malformed BVH file {path}: {exc}") from exc


def _parse_tokens(tok: list[str], name: str) -> BvhClip:
    pos = 0
    if tok[pos].upper() != "HIERARCHY":
        raise ValueError("missing HIERARCHY")
    pos += 1
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: list[tuple[int, tuple[float, float, float]]] = []
    stack: list[int] = []  # joint index per open brace; -2 marks an End Site block
    last = -1
    while pos < len(tok):
        t = tok[pos]
        if t in ("ROOT", "JOINT"):
            names.append(tok[pos + 1])
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            last = len(names) - 1
            pos += 2
        elif t == "End":
            last = -2
            pos += 2  # "End Site"
        elif t == "{":
            stack.append(last)
            pos += 1
        elif t == "}":
            stack.pop()
            pos += 1
        elif t == "OFFSET":
            vals = [float(v) for v in tok[pos + 1:pos + 4]]
            if stack[-1] == -2:
                parent = next(i for i in reversed(stack[:-1]) if i >= 0)
                end_sites.append((parent, (vals[0], vals[1], vals[2])))
            else:
                offsets[stack[-1]] = vals
            pos += 4
        elif t == "CHANNELS":
            n = int(tok[pos + 1])
            channels[stack[-1]] = tuple(tok[pos + 2:pos + 2 + n])
            pos += 2 + n
        elif t.upper() == "MOTION":
            pos += 1
            break
        else:
            raise ValueError(f"unexpected token {t!r}")
    if stack or not names:
        raise ValueError("unbalanced or empty hierarchy")
    # "Frames: N" and "Frame Time: t"
    if tok[pos] != "Frames:":
        raise ValueError("missing 'Frames:'")
    n_frames = int(tok[pos + 1])
    if tok[pos + 2] != "Frame" or tok[pos + 3] != "Time:":
        raise ValueError("missing 'Frame Time:'")
    frame_time = float(tok[pos + 4])
    n_ch = sum(len(c) for c in channels)
    values = np.asarray(tok[pos + 5:pos + 5 + n_frames * n_ch], dtype=np.float64)
    if values.size != n_frames * n_ch:
        raise ValueError(f"expected {n_frames}x{n_ch} motion values, got {values.size}")
    for c in channels:
        for ch in c:
            if ch not in _CHANNEL_AXES:
                raise ValueError(f"unknown channel {ch!r}")
    return BvhClip(
        name=name, names=tuple(names), parents=tuple(parents),
        offsets=np.asarray(offsets, dtype=np.float64), channels=tuple(channels),
        frame_time=frame_time, motion=values.reshape(n_frames, n_ch), end_sites=tuple(end_sites),
    )


_CHANNEL_AXES = {
    "Xposition": ("pos", 0), "Yposition": ("pos", 1), "Zposition": ("pos", 2),
    "Xrotation": ("rot", 0), "Yrotation": ("rot", 1), "Zrotation": ("rot", 2),
}


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """(F,) angles (rad) about axis 0/1/2 -> (F, 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def bvh_forward_kinematics(clip: BvhClip, frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions and rotations of a BVH clip.

    Rotation channels compose in file order (``Zrotation Yrotation Xrotation`` -> Rz @ Ry @ Rx);
    a joint's world transform is parent_world @ T(offset [+ position channels]) @ R.
    Returns (F, J, 3) positions (file units) and (F, J, 3, 3) world rotations.
    """
    motion = clip.motion if frames is None else clip.motion[frames]
    F_ = motion.shape[0]
    J = len(clip.names)
    pos = np.zeros((F_, J, 3))
    rot = np.zeros((F_, J, 3, 3))
    col = 0
    for j in range(J):
        local_t = np.broadcast_to(clip.offsets[j], (F_, 3)).copy()
        local_R = np.broadcast_to(np.eye(3), (F_, 3, 3)).copy()
        for ch in clip.channels[j]:
            kind, axis = _CHANNEL_AXES[ch]
            if kind == "pos":
                local_t[:, axis] += motion[:, col]
            else:
                local_R = local_R @ _axis_rotation(axis, np.deg2rad(motion[:, col]))
            col += 1
        p = clip.parents[j]
        if p < 0:
            pos[:, j] = local_t
            rot[:, j] = local_R
        else:
            pos[:, j] = pos[:, p] + np.einsum("fij,fj->fi", rot[:, p], local_t)
            rot[:, j] = rot[:, p] @ local_R
    return pos, rot


# --------------------------------------------------------------------------- retargeting


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _skeleton_family(clip: BvhClip) -> dict[str, object]:
    for fam in _SKELETON_MAPS.values():
        if fam["detect"] in clip.names:
            return fam
    raise ModelLoadError(f"BVH {clip.name}: unknown skeleton (joints {clip.names[:8]}...)")


def _polyline_points(points: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """(F, P, 3) polyline, (K,) arc-length fractions -> (F, K, 3) points along it."""
    seg = np.linalg.norm(np.diff(points, axis=1), axis=-1)  # (F, P-1)
    cum = np.concatenate([np.zeros_like(seg[:, :1]), np.cumsum(seg, axis=1)], axis=1)  # (F, P)
    out = np.zeros((points.shape[0], len(fractions), 3))
    for k, fr in enumerate(fractions):
        s = fr * cum[:, -1]
        idx = np.clip((cum[:, 1:] < s[:, None]).sum(1), 0, seg.shape[1] - 1)
        rows = np.arange(points.shape[0])
        a = (s - cum[rows, idx]) / np.maximum(seg[rows, idx], _EPS)
        out[:, k] = points[rows, idx] + a[:, None] * (points[rows, idx + 1] - points[rows, idx])
    return out


def _rest_spine_fractions() -> np.ndarray:
    r = SMPL_REST_JOINTS.astype(np.float64)
    chain = [r[_IDX[n]] for n in ("pelvis", "spine1", "spine2", "spine3", "neck")]
    seg = np.linalg.norm(np.diff(np.stack(chain), axis=0), axis=-1)
    cum = np.cumsum(seg)
    return cum[:3] / cum[-1]


def _yaw_rotation(angle: float) -> np.ndarray:
    return _axis_rotation(1, np.asarray(angle))


def mocap_smpl_targets(clip: BvhClip, frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Target points of the 24 SMPL joints on the mocap skeleton.

    Returns (F, 24, 3) points (file units, pelvis at the origin, turned so that the pelvis faces
    +z at the clip's first frame) and (F, 3, 3) world rotations of the mocap head in that frame.
    """
    fam = _skeleton_family(clip)
    pos, rot = bvh_forward_kinematics(clip, frames)
    F_ = pos.shape[0]
    tgt = np.zeros((F_, NUM_JOINTS, 3))
    for smpl_name, bvh_name in fam["direct"].items():  # type: ignore[union-attr]
        tgt[:, _IDX[smpl_name]] = pos[:, clip.index(bvh_name)]
    spine = np.stack([pos[:, clip.index(n)] for n in fam["spine"]], axis=1)  # type: ignore[union-attr]
    sp = _polyline_points(spine, _rest_spine_fractions())
    for k, n in enumerate(("spine1", "spine2", "spine3")):
        tgt[:, _IDX[n]] = sp[:, k]
    for side, bvh_collar in zip(("left", "right"), fam["collars"]):  # type: ignore[arg-type]
        c = pos[:, clip.index(bvh_collar)]
        s = tgt[:, _IDX[f"{side}_shoulder"]]
        tgt[:, _IDX[f"{side}_collar"]] = c + COLLAR_FRACTION * (s - c)
        w, e = tgt[:, _IDX[f"{side}_wrist"]], tgt[:, _IDX[f"{side}_elbow"]]
        tgt[:, _IDX[f"{side}_hand"]] = w + HAND_EXTENSION * (w - e)
    tgt -= tgt[:, :1]
    head_rot = rot[:, clip.index(fam["direct"]["head"])]  # type: ignore[index]
    # heading: pelvis frame at the clip's first frame (the whole clip, not the subsample)
    first = mocap_first_heading(clip)
    Ry = _yaw_rotation(-first)
    tgt = np.einsum("ij,fkj->fki", Ry, tgt)
    head_rot = Ry @ head_rot
    return tgt, head_rot


def mocap_first_heading(clip: BvhClip) -> float:
    """Yaw (rad, about +y) of the pelvis forward direction at the clip's first motion frame."""
    fam = _skeleton_family(clip)
    pos, _ = bvh_forward_kinematics(clip, np.array([clip.first_motion_frame]))
    d = fam["direct"]
    lateral = pos[0, clip.index(d["left_hip"])] - pos[0, clip.index(d["right_hip"])]  # type: ignore[index]
    fwd = np.cross(lateral, np.array([0.0, 1.0, 0.0]))
    return float(np.arctan2(fwd[0], fwd[2]))


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotations (F, 3, 3) taking unit vectors a (F, 3) onto b (F, 3)."""
    a, b = _normalize(a), _normalize(b)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    s = np.linalg.norm(v, axis=-1)
    # anti-parallel: rotate pi about any axis orthogonal to a
    ortho = np.cross(a, np.array([1.0, 0.0, 0.0]))
    ortho = np.where(np.linalg.norm(ortho, axis=-1, keepdims=True) < 1e-3, np.cross(a, np.array([0.0, 1.0, 0.0])), ortho)
    axis = np.where((s < 1e-8)[:, None] & (c < 0)[:, None], _normalize(ortho), v / np.maximum(s, _EPS)[:, None])
    angle = np.arctan2(s, c)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[:, 0, 1], K[:, 0, 2] = -axis[:, 2], axis[:, 1]
    K[:, 1, 0], K[:, 1, 2] = axis[:, 2], -axis[:, 0]
    K[:, 2, 0], K[:, 2, 1] = -axis[:, 1], axis[:, 0]
    sa, ca = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + sa * K + (1 - ca) * (K @ K)


def _frame(lateral: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 3) lateral (x) and up (y) vectors -> (..., 3, 3) orthonormal frame [x, y, z] columns."""
    x = _normalize(lateral)
    z = _normalize(np.cross(x, up))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


# (upper joint, middle joint, child of middle) for hinge-plane twist: hips and shoulders
_HINGES = (
    ("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"),
    ("left_shoulder", "left_elbow", "left_wrist"), ("right_shoulder", "right_elbow", "right_wrist"),
)
# Rest hinge axes (rest frame): knees bend backwards, elbows forwards (see module docstring).
_HINGE_REST_AXES = {
    "left_hip": np.array([1.0, 0.0, 0.0]), "right_hip": np.array([1.0, 0.0, 0.0]),
    "left_shoulder": np.array([0.0, -1.0, 0.0]), "right_shoulder": np.array([0.0, 1.0, 0.0]),
}
_DRIVING_CHILD = {
    "spine1": "spine2", "spine2": "spine3", "neck": "head", "left_collar": "left_shoulder",
    "right_collar": "right_shoulder", "left_hip": "left_knee", "right_hip": "right_knee",
    "left_knee": "left_ankle", "right_knee": "right_ankle", "left_ankle": "left_foot",
    "right_ankle": "right_foot", "left_shoulder": "left_elbow", "right_shoulder": "right_elbow",
    "left_elbow": "left_wrist", "right_elbow": "right_wrist", "left_wrist": "left_hand",
    "right_wrist": "right_hand",
}


def solve_smpl_rotations(targets: np.ndarray, head_world: np.ndarray | None = None) -> np.ndarray:
    """SMPL local rotations whose bones point along the target bones.

    Args:
        targets: (F, 24, 3) target joint points, any units, canonical axes (y up).
        head_world: (F, 3, 3) world rotation for the head (leaf) or None (identity local).
    Returns:
        (F, 24, 3, 3) float64 local rotations; joint 0 = global orientation.
    """
    rest = SMPL_REST_JOINTS.astype(np.float64)
    F_ = targets.shape[0]
    G = np.zeros((F_, NUM_JOINTS, 3, 3))
    local = np.broadcast_to(np.eye(3), (F_, NUM_JOINTS, 3, 3)).copy()
    t = targets
    # pelvis: hip line + lower-spine up vector
    Ft = _frame(t[:, _IDX["left_hip"]] - t[:, _IDX["right_hip"]], t[:, _IDX["spine1"]] - t[:, 0])
    Fr = _frame(rest[_IDX["left_hip"]] - rest[_IDX["right_hip"]], rest[_IDX["spine1"]] - rest[0])
    G[:, 0] = Ft @ Fr.T
    hinge = {h[0]: h for h in _HINGES}
    for j in range(1, NUM_JOINTS):
        name = SMPL_JOINT_NAMES[j]
        Gp = G[:, SMPL_PARENTS[j]]
        if name == "spine3":
            Ft = _frame(t[:, _IDX["left_shoulder"]] - t[:, _IDX["right_shoulder"]], t[:, _IDX["neck"]] - t[:, j])
            Fr = _frame(rest[_IDX["left_shoulder"]] - rest[_IDX["right_shoulder"]], rest[_IDX["neck"]] - rest[j])
            G[:, j] = Ft @ Fr.T
        elif name in _DRIVING_CHILD:
            c = _IDX[_DRIVING_CHILD[name]]
            rest_dir = rest[c] - rest[j]
            tgt_dir = _normalize(t[:, c] - t[:, j])
            G[:, j] = _swing(np.einsum("fij,j->fi", Gp, rest_dir), tgt_dir) @ Gp
            if name in hinge:
                _, mid, end = hinge[name]
                n = np.cross(tgt_dir, _normalize(t[:, _IDX[end]] - t[:, _IDX[mid]]))
                bent = np.linalg.norm(n, axis=-1) > MIN_HINGE_SIN
                Fh = _frame(tgt_dir, n)  # x = bone, y = hinge normal
                Fh_rest = _frame(_normalize(rest_dir), _HINGE_REST_AXES[name])
                G[:, j] = np.where(bent[:, None, None], Fh @ Fh_rest.T, G[:, j])
        elif name == "head" and head_world is not None:
            G[:, j] = head_world
        else:
            G[:, j] = Gp  # leaves: identity local rotation
        local[:, j] = np.swapaxes(Gp, -1, -2) @ G[:, j]
    local[:, 0] = G[:, 0]
    return local


def bone_direction_error_deg(targets: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(F, 24, 3) target points, (F, 24, 3) FK joints -> (F, 23) angle (deg) per non-root bone."""
    idx = np.arange(1, NUM_JOINTS)
    par = np.asarray(SMPL_PARENTS[1:])
    a = _normalize(targets[:, idx] - targets[:, par])
    b = _normalize(joints[:, idx] - joints[:, par])
    return np.rad2deg(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


def retarget_to_smpl(clip: BvhClip, frames: np.ndarray | None = None) -> MocapSet:
    """Retarget a BVH clip (``frames``: indices, default all) to SMPL: see the module docstring.

    Returns a MocapSet with N = len(frames) frames.
    """
    targets, head = mocap_smpl_targets(clip, frames)
    rot = solve_smpl_rotations(targets, head)
    rot_t = torch.as_tensor(rot, dtype=torch.float64)
    joints = forward_kinematics(rot_t).numpy()
    return MocapSet(rot.astype(np.float32), joints.astype(np.float32), (clip.name,) * rot.shape[0])


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_mocap(split: str, fps: float = 30.0, cache_dir: str | None = None) -> MocapSet:
    """Retargeted SMPL mocap frames of a split, subsampled to about ``fps``.

    'train' = 01_03 + Boxing_Toes, 'test' = 01_01 (held out), 'all' = the three. Arrays are
    cached as .npz under ``cache_dir`` (default ~/.cache/chatpose_ros/mocap), keyed by the file's
    sha256, the fps and the retargeting version.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown mocap split {split!r}; expected one of {sorted(SPLITS)}")
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    files = {p.stem: p for p in default_bvh_files()}
    missing = [s for s in SPLITS[split] if s not in files]
    if missing:
        raise ModelLoadError(f"mocap files {missing} missing from {BVH_DIR}; `sudo apt-get install assimp-testmodels`")
    cache = Path(os.path.expanduser(str(cache_dir) if cache_dir else str(DEFAULT_CACHE_DIR)))
    parts: list[MocapSet] = []
    for stem in SPLITS[split]:
        path = files[stem]
        key = f"{stem}_{_file_sha(path)}_fps{fps:g}_v{_CACHE_VERSION}.npz"
        cpath = cache / key
        if cpath.is_file():
            with np.load(cpath) as z:
                parts.append(MocapSet(z["rotmats"], z["joints"], (stem,) * len(z["rotmats"])))
            continue
        clip = load_bvh(path)
        step = max(1, int(round(1.0 / (clip.frame_time * fps))))
        ms = retarget_to_smpl(clip, np.arange(clip.first_motion_frame, clip.num_frames, step))
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cpath.with_name(f"{cpath.stem}.{os.getpid()}.tmp.npz")  # concurrent writers
            np.savez_compressed(tmp, rotmats=ms.rotmats, joints=ms.joints)
            os.replace(tmp, cpath)
        except OSError as exc:  # a read-only cache is not fatal
            log.warning("cannot write mocap cache %s: %s", cpath, exc)
        log.info("retargeted %s: %d frames (every %d of %d)", stem, len(ms), step, clip.num_frames)
        parts.append(ms)
    return MocapSet(
        np.concatenate([p.rotmats for p in parts]), np.concatenate([p.joints for p in parts]),
        tuple(s for p in parts for s in p.source),
    )
