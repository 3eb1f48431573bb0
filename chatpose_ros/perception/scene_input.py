"""What the default profile reads from a perception `Scene`: per person, the 15 keypoints of
``keypoints.KEYPOINT_NAMES`` and the confidence of each of the 24 SMPL joints.

Layouts (``core.scene.KEYPOINT_LAYOUTS``):
- ``coco17`` (MoveNet): 13 of the 15 keypoints; the feet are missing: their position is the
  ankle's and their score 0 (not seen), so the regressor treats them as hidden;
- ``blazepose33`` (BlazePose, MediaPipe): all 15 (``keypoints.MEDIAPIPE_INDEX``), plus world 3D.

Per-joint confidence: each SMPL joint takes the scores of the keypoints that locate it
(``SMPL_JOINT_SOURCES``), keypoints under ``SEEN_SCORE`` counting as not seen (0); a joint with
no keypoint in the layout (e.g. the feet and hands in COCO-17) is not seen (0): its rotation is
the regressor's prior, not an observation.
"""
from __future__ import annotations

import numpy as np

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES
from chatpose_ros.core.scene import KEYPOINT_LAYOUTS, ScenePerson
from chatpose_ros.perception import keypoints as kp

# a keypoint with a lower score is not seen (MoveNet / BlazePose scores are in [0, 1])
SEEN_SCORE = 0.3
# where a 15-keypoint name has no keypoint of the same name in a layout: the one standing in for
# its position (its score is then 0)
STAND_IN: dict[str, dict[str, str]] = {
    "coco17": {"left_foot": "left_ankle", "right_foot": "right_ankle"},
    "blazepose33": {"left_foot": "left_foot_index", "right_foot": "right_foot_index"},
}
# keypoint names of a layout that count as the SAME point as a 15-keypoint name (seen)
SAME_POINT: dict[str, dict[str, str]] = {"blazepose33": {"left_foot": "left_foot_index",
                                                          "right_foot": "right_foot_index"}}
_FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_HIPS = ("left_hip", "right_hip")
_SHOULDERS = ("left_shoulder", "right_shoulder")
# SMPL joint -> (keypoints that locate it, how their scores combine: "mean" or "max")
SMPL_JOINT_SOURCES: dict[str, tuple[tuple[str, ...], str]] = {
    "pelvis": (_HIPS, "mean"),
    "left_hip": (("left_hip",), "mean"),
    "right_hip": (("right_hip",), "mean"),
    "spine1": (_HIPS + _SHOULDERS, "mean"),
    "left_knee": (("left_knee",), "mean"),
    "right_knee": (("right_knee",), "mean"),
    "spine2": (_HIPS + _SHOULDERS, "mean"),
    "left_ankle": (("left_ankle",), "mean"),
    "right_ankle": (("right_ankle",), "mean"),
    "spine3": (_SHOULDERS + _HIPS, "mean"),
    "left_foot": (("left_foot_index", "left_heel"), "mean"),
    "right_foot": (("right_foot_index", "right_heel"), "mean"),
    "neck": (_SHOULDERS + ("nose",), "mean"),
    "left_collar": (("left_shoulder",), "mean"),
    "right_collar": (("right_shoulder",), "mean"),
    "head": (_FACE, "max"),
    "left_shoulder": (("left_shoulder",), "mean"),
    "right_shoulder": (("right_shoulder",), "mean"),
    "left_elbow": (("left_elbow",), "mean"),
    "right_elbow": (("right_elbow",), "mean"),
    "left_wrist": (("left_wrist",), "mean"),
    "right_wrist": (("right_wrist",), "mean"),
    "left_hand": (("left_index", "left_pinky"), "mean"),
    "right_hand": (("right_index", "right_pinky"), "mean"),
}
assert tuple(SMPL_JOINT_SOURCES) == tuple(SMPL_JOINT_NAMES) and len(SMPL_JOINT_SOURCES) == NUM_JOINTS


def _index(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(15,) layout index of each keypoint (its stand-in where missing) and (15,) whether the
    layout has that very point."""
    names = KEYPOINT_LAYOUTS[layout]
    idx, real = [], []
    for n in kp.KEYPOINT_NAMES:
        same = SAME_POINT.get(layout, {}).get(n, n)
        if same in names:
            idx.append(names.index(same))
            real.append(True)
        else:
            idx.append(names.index(STAND_IN[layout][n]))
            real.append(False)
    return np.asarray(idx), np.asarray(real)


def person_keypoints(person: ScenePerson) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One person's 15 keypoints: ((15, 2) px, (15,) scores in [0, 1], (15, 3) m world or None).

    Scores under SEEN_SCORE become 0; a keypoint the layout lacks has its stand-in's position
    and score 0."""
    idx, real = _index(person.layout)
    xy = np.asarray(person.keypoints, np.float32)[idx]
    score = np.asarray(person.keypoint_scores, np.float32)[idx] * real
    score = np.where(score >= SEEN_SCORE, score, 0.0).astype(np.float32)
    world = None if person.world_keypoints is None else np.asarray(person.world_keypoints, np.float32)[idx]
    return xy, score, world


def joint_confidence(person: ScenePerson) -> np.ndarray:
    """(24,) float32 in [0, 1], SMPL joint order: how well the camera saw each joint (0 = not
    seen: cut by the image edge, occluded, or not a keypoint of the layout)."""
    names = KEYPOINT_LAYOUTS[person.layout]
    s = np.asarray(person.keypoint_scores, np.float32)
    s = np.where(s >= SEEN_SCORE, s, 0.0)
    out = np.zeros(NUM_JOINTS, np.float32)
    for j, joint in enumerate(SMPL_JOINT_NAMES):
        sources, how = SMPL_JOINT_SOURCES[joint]
        vals = [float(s[names.index(n)]) for n in sources if n in names]
        if vals:
            out[j] = max(vals) if how == "max" else float(np.mean(vals))
    return np.clip(out, 0.0, 1.0)
