"""Where a person is, from the camera's real intrinsics (camera_info), for any pose result.

A pipeline places people with the camera it assumes (the default profile: focal length = image
width); with the camera's ``camera_info`` the ROS layer places them again here with the real
intrinsics: ``core.camera.estimate_translation`` fits the person's own 3D joints (SMPL,
pelvis-relative, camera axes) to the 2D keypoints the pipeline saw. Keypoints are matched to
SMPL joints by name (``left_shoulder`` ... ``right_foot`` are SMPL joint names); keypoints
without a SMPL joint (nose, eyes, ears) are not used.

Keypoint layouts are known by their count (``KEYPOINT_NAMES_BY_COUNT``): the 15 keypoints of
the default profile, COCO-17 and BlazePose-33 (``core.scene``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .smpl_layout import SMPL_JOINT_NAMES
from .camera import CameraIntrinsics, estimate_translation
from .scene import BLAZEPOSE33, COCO17
from .types import PersonPose, PoseResult

# The default profile's keypoints (chatpose_ros.perception.keypoints.KEYPOINT_NAMES; a test
# keeps the two equal): MediaPipe's nose, shoulders, elbows, wrists, hips, knees, ankles, feet.
DEFAULT15: tuple[str, ...] = (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_foot", "right_foot",
)
KEYPOINT_NAMES_BY_COUNT: dict[int, tuple[str, ...]] = {len(n): n for n in (DEFAULT15, COCO17, BLAZEPOSE33)}
# SMPL joints of BlazePose's foot landmark: its toe tip stands for SMPL's foot joint
_ALIASES = {"left_foot_index": "left_foot", "right_foot_index": "right_foot"}


def keypoint_names(person: PersonPose) -> tuple[str, ...] | None:
    """The names of `person.keypoints_2d` (by their count), or None when there are none or the
    layout is unknown."""
    if person.keypoints_2d is None:
        return None
    return KEYPOINT_NAMES_BY_COUNT.get(int(np.shape(person.keypoints_2d)[0]))


def place_person(person: PersonPose, intrinsics: CameraIntrinsics) -> np.ndarray | None:
    """(3,) float32 pelvis position (m, camera optical frame) of `person` with the camera's real
    intrinsics, or None when its keypoints are unknown or too few are seen (then the
    translation is unknown). Unseen keypoints are NaN in `person.keypoints_2d`."""
    names = keypoint_names(person)
    if names is None:
        return None
    kp = np.asarray(person.keypoints_2d, dtype=np.float64)
    joints = np.asarray(person.joints, dtype=np.float64)
    rows, points = [], []
    for i, name in enumerate(names):
        smpl = _ALIASES.get(name, name)
        if smpl in SMPL_JOINT_NAMES and np.isfinite(kp[i]).all():
            rows.append(i)
            points.append(joints[SMPL_JOINT_NAMES.index(smpl)])
    if not rows:
        return None
    est = estimate_translation(kp[rows], np.asarray(points), intrinsics)
    return None if est is None else est.translation.astype(np.float32)


def place_result(result: PoseResult, intrinsics: CameraIntrinsics | None) -> PoseResult:
    """`result` with every person's translation from the real intrinsics (``place_person``):
    None (unknown) where the person's keypoints do not allow it, for poses made from the text
    alone, and for everybody when `intrinsics` is None (no camera_info: a pipeline's own guess
    from an assumed focal length is not passed on as metric). `translation_source` is
    "monocular" where a translation was found, else ""."""
    people = []
    for p in result.people:
        t = None if intrinsics is None or p.generated else place_person(p, intrinsics)
        people.append(dataclasses.replace(p, translation=t, translation_source="" if t is None else "monocular"))
    return dataclasses.replace(result, people=tuple(people))
