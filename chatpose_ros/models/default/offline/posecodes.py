"""PoseScript-style pose codes: posture labels and natural descriptions from 3D joints.

Inputs are SMPL joints (..., 24, 3) in metres in a frame whose y axis points up (the SMPL
canonical frame); the body's own left/forward directions are taken from the hip line, so a
turned body gets the same labels. As in PoseScript (Delmas et al. 2022), elementary
measurements (angles, distances, relative positions) are quantised with the named thresholds
below into *posecodes*, which are then aggregated into labels and phrased into sentences.
"""
from __future__ import annotations

import numpy as np

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES

_J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

# --- thresholds (metres / degrees) ---------------------------------------------------------
ARM_RAISED_ABOVE_SHOULDER_M = 0.15   # wrist this far above its shoulder = arm raised
HAND_ABOVE_HEAD_M = 0.05             # wrist above the head joint
ELBOW_STRAIGHT_DEG = 150.0           # elbow/knee interior angle above this = straight
KNEE_STRAIGHT_DEG = 160.0
LIMB_BENT_DEG = 120.0                # interior angle below this = bent
LIMB_RIGHT_ANGLE_DEG = (75.0, 105.0) # "bent at a right angle"
LIMB_FULLY_BENT_DEG = 60.0           # below this = completely bent
ARM_OUT_SHOULDER_HEIGHT_M = 0.20     # stretched-out wrist within this of shoulder height
ARM_OUT_LATERAL_M = 0.45             # ... and at least this far sideways from the spine
PELVIS_HEIGHT_STANDING = 0.85        # (pelvis - lowest ankle) height / rest leg length
PELVIS_HEIGHT_CROUCH = 0.75          # below: crouching
PELVIS_HEIGHT_SQUAT = 0.55           # below (with knees strongly bent): squatting
THIGH_HORIZONTAL_DEG = 55.0          # thigh this far from vertical = thigh raised / seated
KICK_FOOT_HEIGHT_M = 0.30            # one ankle this much higher than the other
TORSO_BEND_FORWARD_DEG = 30.0        # torso tilt forward from vertical
TORSO_LEAN_DEG = 12.0                # sideways or backward tilt = leaning
TORSO_UPRIGHT_DEG = 10.0             # standing straight: torso within this of vertical
FEET_WIDE_APART_M = 0.50             # ankles farther apart than this
FEET_TOGETHER_M = 0.20               # ankles closer than this
HANDS_TOGETHER_M = 0.15              # wrists closer than this
FOOT_IN_FRONT_M = 0.20               # one ankle ahead of the other (body forward axis)
FEET_LEVEL_M = 0.10                  # both feet on the ground: ankle heights within this

_REST_LEG_LENGTH_M = 0.87            # SMPL rest pelvis -> ankle height (core.body rest joints)

LABELS: tuple[str, ...] = (
    "raising the left arm", "raising the right arm", "raising both arms", "arms stretched out",
    "crouching", "squatting", "sitting", "kicking", "bending forward", "standing straight",
    "leaning",
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Interior angle (deg) at b between b->a and b->c."""
    return float(np.degrees(np.arccos(np.clip(np.dot(_unit(a - b), _unit(c - b)), -1.0, 1.0))))


def _body_axes(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal body left, world up, horizontal body forward for one (24, 3) pose."""
    up = np.array([0.0, 1.0, 0.0])
    lateral = j[_J["left_hip"]] - j[_J["right_hip"]] + j[_J["left_shoulder"]] - j[_J["right_shoulder"]]
    lateral[1] = 0.0
    left = _unit(lateral)
    fwd = np.cross(left, up)
    return left, up, fwd


def measure(joints: np.ndarray) -> dict[str, float]:
    """Elementary measurements (deg, m) of one (24, 3) pose; the inputs of the pose codes."""
    j = np.asarray(joints, dtype=np.float64)
    if j.shape != (NUM_JOINTS, 3):
        raise ValueError(f"expected (24, 3) joints, got {j.shape}")
    left, up, fwd = _body_axes(j)
    m: dict[str, float] = {}
    for s in ("left", "right"):
        m[f"{s}_elbow"] = _angle(j[_J[f"{s}_shoulder"]], j[_J[f"{s}_elbow"]], j[_J[f"{s}_wrist"]])
        m[f"{s}_knee"] = _angle(j[_J[f"{s}_hip"]], j[_J[f"{s}_knee"]], j[_J[f"{s}_ankle"]])
        m[f"{s}_wrist_above_shoulder"] = float(j[_J[f"{s}_wrist"], 1] - j[_J[f"{s}_shoulder"], 1])
        m[f"{s}_wrist_above_head"] = float(j[_J[f"{s}_wrist"], 1] - j[_J["head"], 1])
        m[f"{s}_wrist_lateral"] = float(abs(np.dot(j[_J[f"{s}_wrist"]] - j[_J["spine3"]], left)))
        thigh = j[_J[f"{s}_knee"]] - j[_J[f"{s}_hip"]]
        m[f"{s}_thigh_from_vertical"] = float(np.degrees(np.arccos(np.clip(np.dot(_unit(thigh), -up), -1, 1))))
    torso = _unit(j[_J["neck"]] - j[_J["pelvis"]])
    m["torso_from_vertical"] = float(np.degrees(np.arccos(np.clip(torso[1], -1, 1))))
    m["torso_forward"] = float(np.degrees(np.arcsin(np.clip(np.dot(torso, fwd), -1, 1))))
    m["torso_sideways"] = float(np.degrees(np.arcsin(np.clip(np.dot(torso, left), -1, 1))))
    low = min(j[_J["left_ankle"], 1], j[_J["right_ankle"], 1])
    m["pelvis_height"] = float((j[_J["pelvis"], 1] - low) / _REST_LEG_LENGTH_M)
    m["ankle_height_diff"] = float(j[_J["left_ankle"], 1] - j[_J["right_ankle"], 1])
    m["feet_distance"] = float(np.linalg.norm(j[_J["left_ankle"]] - j[_J["right_ankle"]]))
    m["hands_distance"] = float(np.linalg.norm(j[_J["left_wrist"]] - j[_J["right_wrist"]]))
    m["left_foot_ahead"] = float(np.dot(j[_J["left_ankle"]] - j[_J["right_ankle"]], fwd))
    return m


def posture_labels(joints: np.ndarray) -> frozenset[str]:
    """(24, 3) joints (m, y up) -> the subset of LABELS that applies."""
    m = measure(joints)
    out: set[str] = set()
    raised = {s: m[f"{s}_wrist_above_shoulder"] > ARM_RAISED_ABOVE_SHOULDER_M for s in ("left", "right")}
    for s in ("left", "right"):
        if raised[s]:
            out.add(f"raising the {s} arm")
    if raised["left"] and raised["right"]:
        out.add("raising both arms")
    if all(
        m[f"{s}_elbow"] > ELBOW_STRAIGHT_DEG
        and abs(m[f"{s}_wrist_above_shoulder"]) < ARM_OUT_SHOULDER_HEIGHT_M
        and m[f"{s}_wrist_lateral"] > ARM_OUT_LATERAL_M
        for s in ("left", "right")
    ):
        out.add("arms stretched out")
    knees_bent = min(m["left_knee"], m["right_knee"]) < LIMB_BENT_DEG
    both_knees_bent = max(m["left_knee"], m["right_knee"]) < LIMB_BENT_DEG
    kicking = abs(m["ankle_height_diff"]) > KICK_FOOT_HEIGHT_M
    if kicking:
        out.add("kicking")
    if not kicking and both_knees_bent:
        if m["pelvis_height"] < PELVIS_HEIGHT_SQUAT and max(m["left_knee"], m["right_knee"]) < LIMB_RIGHT_ANGLE_DEG[0]:
            out.add("squatting")
        elif m["pelvis_height"] < PELVIS_HEIGHT_CROUCH:
            out.add("crouching")
        if (
            min(m["left_thigh_from_vertical"], m["right_thigh_from_vertical"]) > THIGH_HORIZONTAL_DEG
            and m["torso_from_vertical"] < TORSO_BEND_FORWARD_DEG
        ):
            out.add("sitting")
    if m["torso_forward"] > TORSO_BEND_FORWARD_DEG:
        out.add("bending forward")
    elif abs(m["torso_sideways"]) > TORSO_LEAN_DEG or m["torso_forward"] < -TORSO_LEAN_DEG:
        out.add("leaning")
    if (
        not knees_bent
        and min(m["left_knee"], m["right_knee"]) > KNEE_STRAIGHT_DEG
        and m["torso_from_vertical"] < TORSO_UPRIGHT_DEG
        and m["pelvis_height"] > PELVIS_HEIGHT_STANDING
        and abs(m["ankle_height_diff"]) < FEET_LEVEL_M
    ):
        out.add("standing straight")
    return frozenset(out)


def _bend_phrase(angle: float, straight: float) -> str:
    if angle >= straight:
        return "straight"
    if angle < LIMB_FULLY_BENT_DEG:
        return "completely bent"
    if LIMB_RIGHT_ANGLE_DEG[0] <= angle <= LIMB_RIGHT_ANGLE_DEG[1]:
        return "bent at a right angle"
    if angle < LIMB_BENT_DEG:
        return "bent"
    return "slightly bent"


_OPENERS = ("The person is {}.", "Someone {}.", "A person {}.", "The body is {}.")
_LABEL_VERBS = {
    "raising the left arm": "raising the left arm", "raising the right arm": "raising the right arm",
    "raising both arms": "raising both arms", "arms stretched out": "holding the arms stretched out",
    "crouching": "crouching", "squatting": "squatting", "sitting": "in a sitting posture",
    "kicking": "kicking with one leg up", "bending forward": "bending forward",
    "standing straight": "standing straight", "leaning": "leaning to one side",
}


def describe_pose(joints: np.ndarray, rng: np.random.Generator | None = None) -> str:
    """(24, 3) joints (m, y up) -> a PoseScript-like English description.

    With ``rng`` the phrasing, the order of sentences and the subset of minor details are
    sampled (for text-to-pose training); without it the output is deterministic and complete.
    """
    m = measure(joints)
    labels = sorted(posture_labels(joints))
    sentences: list[str] = []
    if labels:
        one_arm = ("raising the left arm", "raising the right arm")
        main = [x for x in labels if x not in one_arm] if "raising both arms" in labels else labels
        text = " and ".join(_LABEL_VERBS[x] for x in main)
        opener = _OPENERS[0] if rng is None else _OPENERS[int(rng.integers(len(_OPENERS)))]
        if opener.startswith("Someone") or opener.startswith("A person"):
            text = "is " + text
        sentences.append(opener.format(text))
    details: list[str] = []
    for s in ("left", "right"):
        details.append(f"The {s} knee is {_bend_phrase(m[f'{s}_knee'], KNEE_STRAIGHT_DEG)}.")
        details.append(f"The {s} elbow is {_bend_phrase(m[f'{s}_elbow'], ELBOW_STRAIGHT_DEG)}.")
        if m[f"{s}_wrist_above_head"] > HAND_ABOVE_HEAD_M:
            details.append(f"The {s} hand is above the head.")
        elif m[f"{s}_wrist_above_shoulder"] < -ARM_RAISED_ABOVE_SHOULDER_M:
            details.append(f"The {s} hand is below the shoulder.")
    if m["feet_distance"] > FEET_WIDE_APART_M:
        details.append("The feet are wide apart.")
    elif m["feet_distance"] < FEET_TOGETHER_M:
        details.append("The feet are close together.")
    else:
        details.append("The feet are about shoulder-width apart.")
    if m["hands_distance"] < HANDS_TOGETHER_M:
        details.append("The hands are close together.")
    elif m["hands_distance"] > 2 * FEET_WIDE_APART_M:
        details.append("The hands are far apart.")
    if abs(m["left_foot_ahead"]) > FOOT_IN_FRONT_M:
        a, b = ("left", "right") if m["left_foot_ahead"] > 0 else ("right", "left")
        details.append(f"The {a} foot is in front of the {b} foot.")
    if abs(m["ankle_height_diff"]) > FEET_LEVEL_M:
        hi = "left" if m["ankle_height_diff"] > 0 else "right"
        details.append(f"The {hi} foot is raised off the ground.")
    if m["torso_forward"] > TORSO_LEAN_DEG:
        details.append("The torso leans forward.")
    elif m["torso_forward"] < -TORSO_LEAN_DEG:
        details.append("The torso leans backward.")
    if rng is not None:
        keep = rng.random(len(details)) < 0.7
        keep[int(rng.integers(len(details)))] = True
        details = [d for d, k in zip(details, keep) if k]
        details = [details[i] for i in rng.permutation(len(details))]
    return " ".join(sentences + details)
