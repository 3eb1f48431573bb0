"""Mocap parsing/retargeting, keypoint mapping and pose codes of the default model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from chatpose_ros.core.body import SMPL_JOINT_NAMES, forward_kinematics
from chatpose_ros.core.errors import ConfigError, ModelLoadError
from chatpose_ros.models.default.offline import mocap
from chatpose_ros.perception import keypoints as kp

BVH = mocap.BVH_DIR
needs_bvh = pytest.mark.skipif(not (BVH / "01_01.bvh").is_file(), reason="apt-get install assimp-testmodels")


@needs_bvh
def test_parse_real_bvh():
    clip = mocap.load_bvh(BVH / "01_01.bvh")
    assert clip.num_frames == 2752 and len(clip.names) == 31
    assert clip.motion.shape == (2752, 6 + 30 * 3)
    assert clip.frame_time == pytest.approx(1 / 120, rel=1e-3)
    assert clip.channels[0][3:] == ("Zrotation", "Yrotation", "Xrotation")
    assert clip.first_motion_frame == 1  # calibration T-pose first
    box = mocap.load_bvh(BVH / "Boxing_Toes.bvh")
    assert box.num_frames == 3069 and len(box.names) == 21 and box.frame_time == pytest.approx(0.01)
    assert box.channels[1] == ("Zrotation", "Xrotation", "Yrotation")


def test_bvh_euler_order_and_errors(tmp_path):
    text = """HIERARCHY
ROOT A
{
 OFFSET 0 0 0
 CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
 JOINT B
 {
  OFFSET 1 0 0
  CHANNELS 3 Zrotation Yrotation Xrotation
  End Site
  {
   OFFSET 1 0 0
  }
 }
}
MOTION
Frames: 1
Frame Time: 0.1
0 0 0 90 0 0 0 0 0
"""
    p = tmp_path / "a.bvh"
    p.write_text(text)
    clip = mocap.load_bvh(p)
    pos, _ = mocap.bvh_forward_kinematics(clip)
    np.testing.assert_allclose(pos[0, 1], [0.0, 1.0, 0.0], atol=1e-9)  # 90 deg about z takes x to y
    (tmp_path / "b.bvh").write_text(text.replace("0 0 0 90 0 0 0 0 0", "0 0 0"))
    with pytest.raises(ModelLoadError):
        mocap.load_bvh(tmp_path / "b.bvh")
    with pytest.raises(ModelLoadError):
        mocap.load_bvh(tmp_path / "missing.bvh")


@needs_bvh
@pytest.mark.parametrize("name", ["01_01.bvh", "Boxing_Toes.bvh"])
def test_retarget_bone_directions(name):
    clip = mocap.load_bvh(BVH / name)
    frames = np.arange(clip.first_motion_frame, clip.num_frames, 10)
    targets, _ = mocap.mocap_smpl_targets(clip, frames)
    ms = mocap.retarget_to_smpl(clip, frames)
    assert ms.rotmats.shape == (len(frames), 24, 3, 3) and ms.joints.shape == (len(frames), 24, 3)
    np.testing.assert_allclose(np.linalg.det(ms.rotmats), 1.0, atol=1e-4)
    fk = forward_kinematics(torch.from_numpy(ms.rotmats)).numpy()
    np.testing.assert_allclose(fk, ms.joints, atol=1e-4)
    err = mocap.bone_direction_error_deg(targets, ms.joints)  # (F, 23)
    assert err.mean() < 10.0
    limbs = [SMPL_JOINT_NAMES.index(n) - 1 for n in ("left_knee", "left_ankle", "left_elbow", "right_wrist", "spine2")]
    assert err[:, limbs].max() < 1.0
    # plausible upright body at the first motion frame, facing +z
    assert ms.joints[0, SMPL_JOINT_NAMES.index("head"), 1] > 0.4
    assert ms.rotmats[0, 0, 2, 2] > 0.9


@needs_bvh
def test_load_mocap_splits_and_cache(tmp_path):
    test = mocap.load_mocap("test", cache_dir=str(tmp_path))
    assert len(test) == len(test.source) and set(test.source) == {"01_01"}
    assert 600 < len(test) < 800  # 2751 frames at 120 Hz -> 30 fps
    assert list(tmp_path.glob("*.npz"))
    again = mocap.load_mocap("test", cache_dir=str(tmp_path))
    np.testing.assert_array_equal(again.rotmats, test.rotmats)
    with pytest.raises(ConfigError):
        mocap.load_mocap("validation", cache_dir=str(tmp_path))


def test_keypoint_mapping_shapes():
    lm = np.random.default_rng(0).normal(size=(2, 33, 4))
    out = kp.mediapipe_to_keypoints(lm)
    assert out.shape == (2, 15, 4)
    np.testing.assert_array_equal(out[:, 1], lm[:, 11])
    with pytest.raises(ValueError):
        kp.mediapipe_to_keypoints(lm[:, :20])
    rot = np.broadcast_to(np.eye(3, dtype=np.float32), (3, 24, 3, 3)).copy()
    joints = forward_kinematics(torch.from_numpy(rot)).numpy()
    k = kp.smpl_to_keypoints(joints, rot)
    assert k.shape == (3, 15, 3)
    np.testing.assert_allclose(k[0, 0], joints[0, 15] + kp.NOSE_OFFSET_M, atol=1e-6)
    assert all(0 <= a < 15 and 0 <= b < 15 for a, b in kp.KEYPOINT_EDGES)
    # the nose turns with the head: global 180 deg yaw puts it behind (-z)
    rot[:, 0] = np.diag([-1.0, 1.0, -1.0])
    joints = forward_kinematics(torch.from_numpy(rot)).numpy()
    k = kp.smpl_to_keypoints(joints, rot)
    assert k[0, 0, 2] < joints[0, 15, 2]


def _pose(**local_aa: tuple[float, float, float]) -> np.ndarray:
    """(24, 3) FK joints of a pose given by axis-angle (deg) for named joints; rest otherwise."""
    from chatpose_ros.core.geometry import axis_angle_to_matrix

    aa = torch.zeros(1, 24, 3, dtype=torch.float64)
    for name, v in local_aa.items():
        aa[0, SMPL_JOINT_NAMES.index(name)] = torch.deg2rad(torch.tensor(v, dtype=torch.float64))
    return forward_kinematics(axis_angle_to_matrix(aa))[0].numpy()


def test_posecode_labels_constructed_poses():
    from chatpose_ros.models.default.offline import posecodes as pc

    arms_down = {"left_shoulder": (0, 0, -80), "right_shoulder": (0, 0, 80)}
    stand = _pose(**arms_down)
    assert "standing straight" in pc.posture_labels(stand)
    assert "raising the left arm" not in pc.posture_labels(stand)
    left_up = pc.posture_labels(_pose(left_shoulder=(0, 0, 80), right_shoulder=(0, 0, 80)))
    assert "raising the left arm" in left_up and "raising the right arm" not in left_up
    both = pc.posture_labels(_pose(left_shoulder=(0, 0, 80), right_shoulder=(0, 0, -80)))
    assert {"raising both arms", "raising the left arm", "raising the right arm"} <= both
    assert "arms stretched out" in pc.posture_labels(_pose())  # T-pose
    kick = pc.posture_labels(_pose(right_hip=(-90, 0, 0), **arms_down))
    assert "kicking" in kick
    squat = pc.posture_labels(_pose(pelvis=(0, 0, 0), left_hip=(-120, 0, 0), right_hip=(-120, 0, 0),
                                    left_knee=(130, 0, 0), right_knee=(130, 0, 0), **arms_down))
    assert squat & {"squatting", "crouching", "sitting"}
    bend = pc.posture_labels(_pose(spine1=(40, 0, 0), spine2=(20, 0, 0), **arms_down))
    assert "bending forward" in bend
    lean = pc.posture_labels(_pose(spine1=(0, 0, 20), spine2=(0, 0, 10), **arms_down))
    assert "leaning" in lean and "standing straight" not in lean
    text = pc.describe_pose(_pose(left_shoulder=(0, 0, 80), left_elbow=(0, -90, 0), **{"right_shoulder": (0, 0, 80)}))
    assert "raising the left arm" in text and "left elbow is bent at a right angle" in text
    rng_text = pc.describe_pose(stand, rng=np.random.default_rng(0))
    assert isinstance(rng_text, str) and rng_text
