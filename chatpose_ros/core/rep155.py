"""REP-155 (ROS4HRI) body conventions from SMPL results: ROS-free geometry for the ROS layer.

What the ROS layer (chatpose_ros.ros.hri, chatpose_ros.ros.tf) publishes, computed here:

- body ids: short, letter-first, stable per track (``body_id``);
- the ``body_<id>`` frame: origin at the mid point of the hips, x forward out of the body, y to
  the person's left, z toward the head (``body_frame``), in the camera optical frame;
- the 18-point Skeleton2D (OpenPose COCO order of ``hri_msgs/Skeleton2D``) from a keypoint
  layout (``skeleton18``);
- joint angles of the REP's human kinematic model (the ``human_description`` URDF: ``waist``,
  ``r_head``/``y_head``/``p_head``, ``{l,r}_{y,p,r}_shoulder``, ``{l,r}_elbow``,
  ``{l,r}_{y,p,r}_hip``, ``{l,r}_knee``, each suffixed with ``_<bodyID>`` when published)
  derived from SMPL theta (``joint_angles``).

Frames: SMPL's canonical body frame is x = the person's left, y = up, z = forward; REP-155's body
frame (REP-103) is x = forward, y = left, z = up. ``SMPL_TO_REP`` maps the first to the second.

Joint angles (method). The URDF's links at zero angles: torso and head upright, arms hanging
down (-z), legs down (-z); SMPL's rest pose is a T-pose (arms along +-x of SMPL, i.e. +-y of the
REP frame). For each URDF chain we take the SMPL orientation of the matching segment relative
to the URDF parent link (rest-pose offset included: a quarter turn about x for the arms) and
decompose it into the chain's joint axes (intrinsic Euler angles; of the two solutions, the one
closer to the URDF's joint limits). 3-DoF chains (head, shoulders, hips) reproduce the segment
orientation exactly; 1-DoF joints (waist, elbows, knees) keep the bend in the joint's plane
(angle of the child segment's direction about the joint axis) and drop the rest.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry_np import axis_angle_to_matrix, matrix_to_quaternion
from .smpl_layout import SMPL_PARENTS

# rows: REP x (forward) = SMPL z, REP y (left) = SMPL x, REP z (up) = SMPL y
SMPL_TO_REP = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

# SMPL joint indices used below (chatpose_ros.core.body.SMPL_JOINT_NAMES order)
_PELVIS, _L_HIP, _R_HIP, _SPINE1, _L_KNEE, _R_KNEE, _SPINE2 = 0, 1, 2, 3, 4, 5, 6
_SPINE3, _NECK, _L_COLLAR, _R_COLLAR, _HEAD = 9, 12, 13, 14, 15
_L_SHOULDER, _R_SHOULDER, _L_ELBOW, _R_ELBOW = 16, 17, 18, 19

# Joint names of the REP-155 kinematic model (human_description URDF), in publishing order,
# with the URDF's limits (rad): used to choose between the two Euler solutions.
REP155_JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "waist": (-0.2, 1.0),
    "r_head": (-1.0, 1.0), "y_head": (-1.4, 1.4), "p_head": (-1.5, 1.5),
    "l_y_shoulder": (-1.1, 1.9), "l_p_shoulder": (-0.4, 3.3), "l_r_shoulder": (-1.7, 1.5), "l_elbow": (0.0, 2.5),
    "r_y_shoulder": (-1.1, 1.9), "r_p_shoulder": (-0.4, 3.3), "r_r_shoulder": (-1.7, 1.5), "r_elbow": (0.0, 2.5),
    "l_y_hip": (-0.1, 0.6), "l_p_hip": (-0.4, 3.3), "l_r_hip": (-0.4, 0.7), "l_knee": (-2.5, 0.0),
    "r_y_hip": (-0.1, 0.6), "r_p_hip": (-0.4, 3.3), "r_r_hip": (-0.4, 0.7), "r_knee": (-2.5, 0.0),
}
REP155_JOINT_NAMES: tuple[str, ...] = tuple(REP155_JOINT_LIMITS)

# Skeleton2D's 18 points (hri_msgs/Skeleton2D constants NOSE = 0 ... RIGHT_EAR = 17, OpenPose COCO).
SKELETON18_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "left_eye", "right_eye", "left_ear", "right_ear",
)

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    """Non-negative integer -> its base-36 digits (0-9, a-z)."""
    if n < 0:
        raise ValueError(f"expected n >= 0, got {n}")
    digits = ""
    while True:
        n, r = divmod(int(n), 36)
        digits = _BASE36[r] + digits
        if n == 0:
            return digits


def body_id(track_id: int, prefix: str = "b") -> str:
    """A REP-155 body id for a track: `prefix` (a letter) + the track id in base 36 ("b0", "bz",
    "b10", ...): short, starts with a letter, the same for the whole life of the track."""
    if track_id < 0:
        raise ValueError(f"track_id must be >= 0, got {track_id}")
    if not prefix or not prefix[0].isalpha():
        raise ValueError(f"prefix must start with a letter, got {prefix!r}")
    return prefix + base36(track_id)


def _rotations(theta: np.ndarray) -> np.ndarray:
    """(72,) axis-angle -> (24, 3, 3) float64 local rotation matrices."""
    return axis_angle_to_matrix(np.asarray(theta, dtype=np.float64).reshape(24, 3))


def _to_rep(R: np.ndarray) -> np.ndarray:
    """A rotation expressed in SMPL canonical axes -> the same rotation in REP body axes."""
    return SMPL_TO_REP @ R @ SMPL_TO_REP.T


def body_rotation(theta: np.ndarray) -> np.ndarray:
    """(72,) SMPL theta -> (3, 3) orientation of the REP body frame in the camera optical frame
    (columns: body x forward, y left, z up, in camera axes)."""
    pelvis = np.asarray(theta, dtype=np.float64).reshape(24, 3)[_PELVIS]  # only its rotation: not all 24
    return axis_angle_to_matrix(pelvis) @ SMPL_TO_REP.T


def body_origin(translation: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(3,) pelvis translation (m, camera frame) and (24, 3) pelvis-relative joints -> (3,) the
    mid point of the hips in the camera frame (the REP's body frame origin)."""
    j = np.asarray(joints, dtype=np.float64)
    return np.asarray(translation, dtype=np.float64) + 0.5 * (j[_L_HIP] + j[_R_HIP])


def quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (4,) unit quaternion (x, y, z, w), w >= 0."""
    return matrix_to_quaternion(R)


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
    raise ValueError(f"unknown axis {axis!r}")


def compose(axes: str, angles: tuple[float, float, float]) -> np.ndarray:
    """R = Rot(axes[0], a0) @ Rot(axes[1], a1) @ Rot(axes[2], a2) (intrinsic rotations)."""
    return _rot(axes[0], angles[0]) @ _rot(axes[1], angles[1]) @ _rot(axes[2], angles[2])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def euler_solutions(R: np.ndarray, axes: str) -> list[tuple[float, float, float]]:
    """Both intrinsic Euler decompositions of (3, 3) `R` for `axes` in ("zxz", "zxy", "xzy"):
    the angles (a0, a1, a2) with compose(axes, angles) == R. At a singularity (gimbal lock) the
    first angle is set to 0."""
    R = np.asarray(R, dtype=np.float64)
    if axes == "zxz":  # R = Rz(a) Rx(b) Rz(c)
        b = math.acos(max(-1.0, min(1.0, R[2, 2])))
        if math.sin(b) < 1e-9:  # b = 0: R = Rz(a + c); b = pi: R = Rz(a - c) Rx(pi)
            a = 0.0
            c = math.atan2(R[1, 0], R[0, 0]) if R[2, 2] > 0 else -math.atan2(R[1, 0], R[0, 0])
        else:
            a, c = math.atan2(R[0, 2], -R[1, 2]), math.atan2(R[2, 0], R[2, 1])
        first = (a, b, c)
        second = (_wrap(a + math.pi), -b, _wrap(c + math.pi))
    elif axes == "zxy":  # R = Rz(a) Rx(b) Ry(c)
        b = math.asin(max(-1.0, min(1.0, R[2, 1])))
        if math.cos(b) < 1e-9:
            a, c = 0.0, math.atan2(R[0, 2], R[0, 0])
        else:
            a, c = math.atan2(-R[0, 1], R[1, 1]), math.atan2(-R[2, 0], R[2, 2])
        first = (a, b, c)
        second = (_wrap(a + math.pi), _wrap(math.pi - b), _wrap(c + math.pi))
    elif axes == "xzy":  # R = Rx(a) Rz(b) Ry(c)
        b = math.asin(max(-1.0, min(1.0, -R[0, 1])))
        if math.cos(b) < 1e-9:
            a, c = 0.0, math.atan2(-R[2, 0], R[2, 2])
        else:
            a, c = math.atan2(R[2, 1], R[1, 1]), math.atan2(R[0, 2], R[0, 0])
        first = (a, b, c)
        second = (_wrap(a + math.pi), _wrap(math.pi - b), _wrap(c + math.pi))
    else:
        raise ValueError(f"unsupported Euler sequence {axes!r}: expected 'zxz', 'zxy' or 'xzy'")
    return [first, second]


def _limit_violation(values: dict[str, float]) -> float:
    return sum(max(lo - v, 0.0, v - hi) for name, v in values.items() for lo, hi in [REP155_JOINT_LIMITS[name]])


def _chain(R: np.ndarray, axes: str, names: tuple[str, str, str], signs: tuple[float, float, float]) -> dict[str, float]:
    """Joint values of a 3-joint chain whose i-th joint turns about +axes[i] scaled by signs[i]
    (a joint about -z is ('z', -1)): the Euler solution closest to the URDF limits."""
    best: dict[str, float] | None = None
    for sol in euler_solutions(R, axes):
        values = {n: s * a for n, s, a in zip(names, signs, sol)}
        if best is None or _limit_violation(values) < _limit_violation(best) - 1e-9:
            best = values
    return best


def _bend(R: np.ndarray) -> float:
    """Angle of a segment hanging along -z, turned by (3, 3) R, about the -y axis (rad)."""
    d = R @ np.array([0.0, 0.0, -1.0])
    return math.atan2(d[0], -d[2])


# URDF rest pose -> SMPL rest pose of the upper arms: a quarter turn about x takes the hanging
# arm (-z) to the T-pose arm (+y left, -y right).
_ARM_REST = {"l": _rot("x", math.pi / 2), "r": _rot("x", -math.pi / 2)}


def joint_angles(theta: np.ndarray) -> dict[str, float]:
    """(72,) SMPL theta -> {REP-155 joint name (no id suffix): angle (rad)} for every name in
    REP155_JOINT_NAMES. See the module docstring for the method."""
    L = _rotations(theta)
    out: dict[str, float] = {}
    spine = L[_SPINE1] @ L[_SPINE2] @ L[_SPINE3]          # torso relative to the pelvis (SMPL axes)
    up = _to_rep(spine) @ np.array([0.0, 0.0, 1.0])
    out["waist"] = math.atan2(up[0], up[2])               # about +y: leaning forward is positive
    torso = _rot("y", out["waist"])                        # the URDF torso link, relative to body_<id>
    head = torso.T @ _to_rep(spine @ L[_NECK] @ L[_HEAD])
    out.update(_chain(head, "xzy", ("r_head", "y_head", "p_head"), (1.0, 1.0, -1.0)))
    for side, collar, shoulder, elbow, reflect in (("l", _L_COLLAR, _L_SHOULDER, _L_ELBOW, 1.0),
                                                  ("r", _R_COLLAR, _R_SHOULDER, _R_ELBOW, -1.0)):
        rest = _ARM_REST[side]
        upper = torso.T @ _to_rep(spine @ L[collar] @ L[shoulder]) @ rest
        # y_shoulder about (0, 0, -reflect), p_shoulder about (reflect, 0, 0), r_shoulder about (0, 0, reflect)
        out.update(_chain(upper, "zxz", (f"{side}_y_shoulder", f"{side}_p_shoulder", f"{side}_r_shoulder"),
                          (-reflect, reflect, reflect)))
        out[f"{side}_elbow"] = _bend(rest.T @ _to_rep(L[elbow]) @ rest)
    for side, hip, knee, reflect in (("l", _L_HIP, _L_KNEE, 1.0), ("r", _R_HIP, _R_KNEE, -1.0)):
        # y_hip about (0, 0, -1), p_hip about (reflect, 0, 0), r_hip about (0, -1, 0)
        out.update(_chain(_to_rep(L[hip]), "zxy", (f"{side}_y_hip", f"{side}_p_hip", f"{side}_r_hip"),
                          (-1.0, reflect, -1.0)))
        out[f"{side}_knee"] = _bend(_to_rep(L[knee]))
    return {name: out[name] for name in REP155_JOINT_NAMES}


def urdf_segment_directions(angles: dict[str, float]) -> dict[str, np.ndarray]:
    """Forward kinematics of the REP-155 URDF's orientations: {segment: (3,) unit direction in the
    body frame} for "torso" (up), "l_upper_arm", "l_forearm", "r_upper_arm", "r_forearm",
    "l_thigh", "l_shin", "r_thigh", "r_shin" (each from its proximal to its distal joint). Used
    to check ``joint_angles`` against the SMPL skeleton."""
    down = np.array([0.0, 0.0, -1.0])
    torso = _rot("y", angles["waist"])
    out = {"torso": torso @ np.array([0.0, 0.0, 1.0])}
    for side, reflect in (("l", 1.0), ("r", -1.0)):
        upper = torso @ compose("zxz", (-reflect * angles[f"{side}_y_shoulder"], reflect * angles[f"{side}_p_shoulder"],
                                        reflect * angles[f"{side}_r_shoulder"]))
        out[f"{side}_upper_arm"] = upper @ down
        out[f"{side}_forearm"] = upper @ _rot("y", -angles[f"{side}_elbow"]) @ down
        thigh = compose("zxy", (-angles[f"{side}_y_hip"], reflect * angles[f"{side}_p_hip"], -angles[f"{side}_r_hip"]))
        out[f"{side}_thigh"] = thigh @ down
        out[f"{side}_shin"] = thigh @ _rot("y", -angles[f"{side}_knee"]) @ down
    return out


# Per-joint frames (optional TF): REP-155 link name -> SMPL joint at that link's origin
JOINT_FRAME_SMPL: dict[str, int] = {
    "head": _HEAD, "l_shoulder": _L_SHOULDER, "l_elbow": _L_ELBOW, "l_wrist": 20,
    "r_shoulder": _R_SHOULDER, "r_elbow": _R_ELBOW, "r_wrist": 21,
    "l_hip": _L_HIP, "l_knee": _L_KNEE, "l_ankle": 7, "r_hip": _R_HIP, "r_knee": _R_KNEE, "r_ankle": 8,
}


def joint_frames(theta: np.ndarray, joints: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-joint frames relative to the body frame: {link name (JOINT_FRAME_SMPL, no id suffix):
    ((3,) position m, (3, 3) orientation)}. A joint's frame is the body frame carried along by
    the SMPL rotations from the pelvis to that joint (at rest every joint frame is parallel to
    the body frame). `joints`: (24, 3) m, pelvis-relative, camera axes."""
    L = _rotations(theta)
    R_body = L[_PELVIS] @ SMPL_TO_REP.T
    j = np.asarray(joints, dtype=np.float64)
    mid = 0.5 * (j[_L_HIP] + j[_R_HIP])
    G = [np.eye(3)] * len(SMPL_PARENTS)
    for k in range(1, len(SMPL_PARENTS)):
        G[k] = G[SMPL_PARENTS[k]] @ L[k]
    return {name: (R_body.T @ (j[k] - mid), _to_rep(G[k])) for name, k in JOINT_FRAME_SMPL.items()}


def skeleton18(keypoints_px: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of a named layout -> the 18 Skeleton2D points.

    Args:
        keypoints_px: (K, 2) px; NaN rows are keypoints not seen.
        names: the K keypoint names (e.g. core.scene.COCO17); names not in SKELETON18_NAMES are
            ignored, Skeleton2D points the layout lacks stay unseen.
    Returns:
        (18, 2) float64 px (0 where unseen) and (18,) bool seen, in SKELETON18_NAMES order. The
        neck is the mid point of the shoulders when both are seen.
    """
    kp = np.asarray(keypoints_px, dtype=np.float64)
    if kp.shape != (len(names), 2):
        raise ValueError(f"expected ({len(names)}, 2) keypoints, got {kp.shape}")
    pts = np.zeros((len(SKELETON18_NAMES), 2))
    seen = np.zeros(len(SKELETON18_NAMES), dtype=bool)
    index = {n: i for i, n in enumerate(names)}
    for j, name in enumerate(SKELETON18_NAMES):
        i = index.get(name)
        if i is not None and np.isfinite(kp[i]).all():
            pts[j], seen[j] = kp[i], True
    ls, rs, neck = SKELETON18_NAMES.index("left_shoulder"), SKELETON18_NAMES.index("right_shoulder"), 1
    if seen[ls] and seen[rs]:
        pts[neck], seen[neck] = 0.5 * (pts[ls] + pts[rs]), True
    return pts, seen
