"""REP-155 geometry from SMPL (core.rep155) and placement with real intrinsics (core.placement): no ROS."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chatpose_ros.core import rep155
from chatpose_ros.core.body import SMPL_JOINT_NAMES, SMPL_PARENTS, SMPL_REST_JOINTS, forward_kinematics
from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.geometry import axis_angle_to_matrix
from chatpose_ros.core.placement import DEFAULT15, KEYPOINT_NAMES_BY_COUNT, place_person
from chatpose_ros.core.scene import COCO17
from chatpose_ros.core.types import PersonPose

J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


@pytest.mark.parametrize("axes", ["zxz", "zxy", "xzy"])
def test_both_euler_solutions_recompose_the_rotation(axes):
    rng = np.random.default_rng(0)
    cases = [tuple(rng.uniform(-3, 3, 3)) for _ in range(300)]
    singular = (0.0, math.pi) if axes == "zxz" else (math.pi / 2, -math.pi / 2)
    cases += [(0.3, b, -0.7) for b in singular]
    for angles in cases:
        R = rep155.compose(axes, angles)
        sols = rep155.euler_solutions(R, axes)
        assert len(sols) == 2
        for sol in sols:
            np.testing.assert_allclose(rep155.compose(axes, sol), R, atol=1e-9)


def _ideal_rest() -> np.ndarray:
    """SMPL rest joints with every limb bone exactly along a body axis (so that a segment's
    direction is its rotation applied to that axis)."""
    rest = SMPL_REST_JOINTS.astype(np.float64).copy()
    for side, s in (("left", 1.0), ("right", -1.0)):
        rest[J[f"{side}_elbow"]] = rest[J[f"{side}_shoulder"]] + [s * 0.26, 0, 0]
        rest[J[f"{side}_wrist"]] = rest[J[f"{side}_elbow"]] + [s * 0.25, 0, 0]
        rest[J[f"{side}_knee"]] = rest[J[f"{side}_hip"]] + [0, -0.38, 0]
        rest[J[f"{side}_ankle"]] = rest[J[f"{side}_knee"]] + [0, -0.40, 0]
    return rest


def _theta(local: dict[str, np.ndarray]) -> np.ndarray:
    theta = np.zeros((24, 3))
    for name, aa in local.items():
        theta[J[name]] = aa
    return theta.reshape(72)


def _bone(joints: np.ndarray, a: str, b: str) -> np.ndarray:
    d = rep155.SMPL_TO_REP @ (joints[J[b]] - joints[J[a]])
    return d / np.linalg.norm(d)


def test_joint_angles_reproduce_limb_directions_of_the_smpl_skeleton():
    """URDF forward kinematics of the joint angles puts upper arms, forearms, thighs and shins
    along the SMPL skeleton's bones (3-DoF shoulders and hips on random rotations, spine and
    neck rotated too; elbows and knees bent in their own plane)."""
    rng = np.random.default_rng(1)
    rest = torch.from_numpy(_ideal_rest())
    for _ in range(50):
        local = {n: rng.normal(0, 0.5, 3) for n in ("spine1", "spine2", "spine3", "neck", "head", "left_collar",
                                                    "right_collar", "left_shoulder", "right_shoulder", "left_hip",
                                                    "right_hip")}
        a_el, a_er, a_kl, a_kr = rng.uniform(0, 2.0, 4)
        local["left_elbow"] = np.array([0.0, -a_el, 0.0])   # flexion: forearm turns forward
        local["right_elbow"] = np.array([0.0, a_er, 0.0])
        local["left_knee"] = np.array([a_kl, 0.0, 0.0])     # flexion: shin turns backward
        local["right_knee"] = np.array([a_kr, 0.0, 0.0])
        theta = _theta(local)
        rot = axis_angle_to_matrix(torch.from_numpy(theta).reshape(1, 24, 3))
        joints = forward_kinematics(rot, rest_joints=rest)[0].numpy()
        angles = rep155.joint_angles(theta)
        dirs = rep155.urdf_segment_directions(angles)
        for side, s in (("l", "left"), ("r", "right")):
            for seg, a, b in (("upper_arm", "shoulder", "elbow"), ("forearm", "elbow", "wrist"),
                              ("thigh", "hip", "knee"), ("shin", "knee", "ankle")):
                np.testing.assert_allclose(dirs[f"{side}_{seg}"], _bone(joints, f"{s}_{a}", f"{s}_{b}"), atol=1e-6,
                                           err_msg=f"{side}_{seg}")
        np.testing.assert_allclose(angles["l_elbow"], a_el, atol=1e-6)
        np.testing.assert_allclose(angles["r_knee"], -a_kr, atol=1e-6)


def test_joint_angles_mean_what_the_urdf_means():
    tpose = rep155.joint_angles(np.zeros(72))
    assert tpose["l_p_shoulder"] == pytest.approx(math.pi / 2) and tpose["r_p_shoulder"] == pytest.approx(math.pi / 2)
    assert all(abs(tpose[n]) < 1e-9 for n in rep155.REP155_JOINT_NAMES if "p_shoulder" not in n)
    arms_down = rep155.joint_angles(_theta({"left_shoulder": [0, 0, -math.pi / 2], "right_shoulder": [0, 0, math.pi / 2]}))
    for n in ("l_y_shoulder", "l_p_shoulder", "l_r_shoulder", "r_y_shoulder", "r_p_shoulder", "r_r_shoulder"):
        assert abs(arms_down[n]) < 1e-6, n
    lean = rep155.joint_angles(_theta({"spine1": [0.5, 0, 0]}))
    assert lean["waist"] == pytest.approx(0.5)
    look_left = rep155.joint_angles(_theta({"head": [0, 0.5, 0]}))
    assert look_left["y_head"] == pytest.approx(0.5) and abs(look_left["r_head"]) < 1e-9
    knee = rep155.joint_angles(_theta({"left_knee": [math.pi / 2, 0, 0]}))
    assert knee["l_knee"] == pytest.approx(-math.pi / 2)
    step = rep155.joint_angles(_theta({"left_hip": [-0.5, 0, 0]}))  # thigh forward
    assert step["l_r_hip"] == pytest.approx(0.5) and abs(step["l_p_hip"]) < 1e-9


def test_body_frame_of_a_person_facing_the_camera():
    theta = np.zeros(72)
    theta[:3] = [math.pi, 0, 0]  # upright, facing the camera
    R = rep155.body_rotation(theta)
    np.testing.assert_allclose(R[:, 0], [0, 0, -1], atol=1e-9)  # x: out of the body, toward the camera
    np.testing.assert_allclose(R[:, 1], [1, 0, 0], atol=1e-9)   # y: the person's left = image right
    np.testing.assert_allclose(R[:, 2], [0, -1, 0], atol=1e-9)  # z: up = camera -y
    q = rep155.quaternion_xyzw(R)
    assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
    joints = np.zeros((24, 3))
    joints[1], joints[2] = [0.1, 0.09, 0], [-0.1, 0.07, 0]
    np.testing.assert_allclose(rep155.body_origin(np.array([0, 0, 3.0]), joints), [0, 0.08, 3.0])


def test_joint_frames_sit_on_the_joints_in_body_axes():
    theta = np.zeros(72)
    theta[:3] = [math.pi, 0, 0]
    rot = axis_angle_to_matrix(torch.from_numpy(theta).reshape(1, 24, 3))
    joints = forward_kinematics(rot)[0].numpy()
    frames = rep155.joint_frames(theta, joints)
    pos, R = frames["l_wrist"]
    assert pos[1] > 0.5 and abs(pos[0]) < 0.1  # T-pose: the left wrist is far to the body's left
    np.testing.assert_allclose(R, np.eye(3), atol=1e-9)
    assert frames["head"][0][2] > 0.4           # the head is above the hips


def test_body_ids_are_short_letter_first_and_stable():
    assert [rep155.body_id(i) for i in (0, 35, 36, 1295)] == ["b0", "bz", "b10", "bzz"]
    assert all(rep155.body_id(i)[0].isalpha() for i in range(100))
    with pytest.raises(ValueError):
        rep155.body_id(-1)


def test_skeleton18_from_coco17_and_the_default_layout():
    kp = np.arange(34, dtype=float).reshape(17, 2)
    pts, seen = rep155.skeleton18(kp, COCO17)
    assert seen.all()
    np.testing.assert_allclose(pts[1], 0.5 * (kp[5] + kp[6]))        # neck = mid shoulders
    assert tuple(pts[2]) == tuple(kp[COCO17.index("right_shoulder")])
    kp15 = np.arange(30, dtype=float).reshape(15, 2)
    kp15[DEFAULT15.index("left_knee")] = np.nan
    pts, seen = rep155.skeleton18(kp15, DEFAULT15)
    names = rep155.SKELETON18_NAMES
    assert not seen[names.index("left_eye")] and not seen[names.index("left_knee")] and seen[names.index("nose")]


def test_the_default_profiles_keypoint_layout_is_known_by_its_count():
    # the ROS layer (Skeleton2D, placement) names the keypoints of PersonPose.keypoints_2d by their count
    from chatpose_ros.perception.keypoints import KEYPOINT_NAMES

    assert KEYPOINT_NAMES_BY_COUNT[len(KEYPOINT_NAMES)] == tuple(KEYPOINT_NAMES)
    assert KEYPOINT_NAMES_BY_COUNT[15] == DEFAULT15 and KEYPOINT_NAMES_BY_COUNT[17] == COCO17


def test_place_person_recovers_the_translation_with_real_intrinsics():
    rng = np.random.default_rng(3)
    theta = rng.normal(0, 0.2, 72)
    theta[:3] = [math.pi, 0, 0]
    rot = axis_angle_to_matrix(torch.from_numpy(theta).reshape(1, 24, 3))
    joints = forward_kinematics(rot)[0].numpy()
    cam = CameraIntrinsics(fx=900.0, fy=910.0, cx=330.0, cy=250.0, width=640, height=480)
    t = np.array([0.4, 0.2, 4.5])
    kp = np.full((15, 2), np.nan)
    for i, name in enumerate(DEFAULT15):
        if name in SMPL_JOINT_NAMES:
            kp[i] = cam.project((joints[J[name]] + t)[None])[0]
    person = PersonPose(theta=theta.astype(np.float32), joints=joints, box=(0, 0, 10, 10), keypoints_2d=kp)
    np.testing.assert_allclose(place_person(person, cam), t, atol=1e-3)
    # the focal length a pipeline assumes (= width) would put the person elsewhere
    wrong = place_person(person, CameraIntrinsics.from_focal(640.0, 640, 480))
    assert abs(wrong[2] - t[2]) > 1.0
    assert place_person(PersonPose(theta=theta, joints=joints), cam) is None


def test_smpl_parents_match_the_chains_used():
    # the chains in joint_angles assume SMPL's tree: collar under spine3, shoulder under collar ...
    assert SMPL_PARENTS[J["left_collar"]] == J["spine3"] and SMPL_PARENTS[J["left_shoulder"]] == J["left_collar"]
    assert SMPL_PARENTS[J["left_elbow"]] == J["left_shoulder"] and SMPL_PARENTS[J["head"]] == J["neck"]
