"""core.camera: intrinsics validation, undistortion, and the person's metric translation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES, forward_kinematics
from chatpose_ros.core.camera import CameraIntrinsics, estimate_translation
from chatpose_ros.core.errors import ChatPoseError, InvalidCameraInfoError
from chatpose_ros.core.geometry import axis_angle_to_matrix

W, H = 640, 480
PLUMB_BOB_D = (-0.28, 0.09, 0.001, -0.0005, -0.01)   # a wide-angle webcam's barrel distortion
FISHEYE_D = (0.08, -0.03, 0.01, -0.002)


def _skeleton(yaw_deg: float = 30.0) -> np.ndarray:
    """(24, 3) float64 joints (m, pelvis-relative, camera optical axes) of a posed body facing
    roughly the camera, one arm raised and one knee bent."""
    aa = torch.zeros(NUM_JOINTS, 3, dtype=torch.float64)
    aa[SMPL_JOINT_NAMES.index("left_shoulder")] = torch.tensor([0.0, 0.0, 1.2])
    aa[SMPL_JOINT_NAMES.index("right_knee")] = torch.tensor([0.8, 0.0, 0.0])
    R = axis_angle_to_matrix(aa)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # y up -> optical y down
    yaw = axis_angle_to_matrix(torch.tensor([0.0, math.radians(yaw_deg), 0.0], dtype=torch.float64))
    R[0] = flip @ yaw
    return forward_kinematics(R[None])[0].numpy()


def _camera(model: str = "", d: tuple = ()) -> CameraIntrinsics:
    return CameraIntrinsics(fx=600.0, fy=605.0, cx=318.0, cy=243.0, width=W, height=H, distortion_model=model, distortion=d)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("k", [
    [0.0] * 9,                                             # uncalibrated camera: K = 0
    [-500.0, 0, 320, 0, 500, 240, 0, 0, 1],                # negative focal
    [500.0, 0, 320, 0, 0.0, 240, 0, 0, 1],                 # fy = 0
    [float("nan"), 0, 320, 0, 500, 240, 0, 0, 1],          # not finite
    [500.0, 0, float("inf"), 0, 500, 240, 0, 0, 1],        # principal point not finite
    [500.0, 0, 320, 0, 500],                               # not 9 values
])
def test_unusable_camera_info_is_a_typed_error(k):
    with pytest.raises(InvalidCameraInfoError) as e:
        CameraIntrinsics.from_camera_info(k=k, d=[], distortion_model="plumb_bob", width=W, height=H)
    assert isinstance(e.value, ChatPoseError) and e.value.code == "invalid_camera_info"


def test_bad_size_and_distortion_are_typed_errors():
    k = [500.0, 0, 320, 0, 500, 240, 0, 0, 1]
    with pytest.raises(InvalidCameraInfoError, match="size"):
        CameraIntrinsics.from_camera_info(k=k, d=[], distortion_model="", width=0, height=H)
    with pytest.raises(InvalidCameraInfoError, match="unknown distortion model"):
        CameraIntrinsics.from_camera_info(k=k, d=[0.1, 0.0, 0.0, 0.0, 0.0], distortion_model="kannala_brandt", width=W, height=H)
    with pytest.raises(InvalidCameraInfoError, match="at least 4"):
        CameraIntrinsics.from_camera_info(k=k, d=[0.1], distortion_model="plumb_bob", width=W, height=H)
    # an unknown model with all-zero coefficients is harmless (no distortion)
    cam = CameraIntrinsics.from_camera_info(k=k, d=[0.0] * 5, distortion_model="whatever", width=W, height=H)
    assert not cam.has_distortion


def test_numpy_scalars_are_accepted():
    cam = CameraIntrinsics(fx=np.float32(500.0), fy=np.float64(501.0), cx=np.int64(320), cy=np.float32(240.0),
                           width=np.int32(W), height=H)
    assert isinstance(cam.fx, float) and cam.cx == 320.0 and cam.width == W
    with pytest.raises(InvalidCameraInfoError):
        CameraIntrinsics(fx="wide", fy=500.0, cx=320.0, cy=240.0, width=W, height=H)


def test_from_camera_info_reads_k_row_major():
    cam = CameraIntrinsics.from_camera_info(k=[525.0, 0, 319.5, 0, 526.0, 239.5, 0, 0, 1], d=PLUMB_BOB_D,
                                            distortion_model="plumb_bob", width=W, height=H)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (525.0, 526.0, 319.5, 239.5)
    assert cam.has_distortion and cam.distortion == PLUMB_BOB_D
    np.testing.assert_array_equal(cam.K, [[525.0, 0, 319.5], [0, 526.0, 239.5], [0, 0, 1]])


def test_binning_and_roi_give_the_published_image_intrinsics():
    """A 2x-binned crop of a calibrated 1280x960 camera: the same 3D point lands on the same
    (binned, cropped) pixel whether projected with the full camera or the derived one."""
    k = [1040.0, 0, 650.0, 0, 1044.0, 470.0, 0, 0, 1]
    full = CameraIntrinsics.from_camera_info(k=k, d=PLUMB_BOB_D, distortion_model="plumb_bob", width=1280, height=960)
    roi = (200, 100, 800, 600)
    cam = CameraIntrinsics.from_camera_info(k=k, d=PLUMB_BOB_D, distortion_model="plumb_bob", width=1280, height=960,
                                            binning_x=2, binning_y=2, roi=roi)
    assert (cam.width, cam.height) == (400, 300) and cam.matches_image(400, 300)
    pts = np.array([[0.1, -0.2, 3.0], [-0.3, 0.1, 2.0], [0.0, 0.0, 5.0]])
    expected = (full.project(pts) - np.array(roi[:2])) / 2.0
    np.testing.assert_allclose(cam.project(pts), expected, atol=1e-6)
    with pytest.raises(InvalidCameraInfoError, match="ROI"):
        CameraIntrinsics.from_camera_info(k=k, d=[], distortion_model="", width=1280, height=960, roi=(-1, 0, 0, 0))


def test_from_projection_for_rectified_images():
    p = [520.0, 0.0, 321.0, -52.0, 0.0, 522.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # right camera of a stereo pair
    cam = CameraIntrinsics.from_projection(p, W, H)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (520.0, 522.0, 321.0, 241.0) and not cam.has_distortion
    with pytest.raises(InvalidCameraInfoError):
        CameraIntrinsics.from_projection([0.0] * 12, W, H)
    with pytest.raises(InvalidCameraInfoError, match="12 values"):
        CameraIntrinsics.from_projection([1.0] * 9, W, H)


def test_image_size_mismatch_is_detected():
    cam = _camera()
    assert cam.matches_image(W, H)
    assert not cam.matches_image(1280, 720)
    cam.check_image_size(W, H)
    with pytest.raises(InvalidCameraInfoError, match="640 x 480.*1280 x 720"):
        cam.check_image_size(1280, 720)


# --------------------------------------------------------------------------- undistortion


@pytest.mark.parametrize("model,d", [("plumb_bob", PLUMB_BOB_D), ("equidistant", FISHEYE_D)])
def test_normalise_undoes_lens_distortion(model, d):
    cam = _camera(model, d)
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-0.45, 0.45, 50), rng.uniform(-0.35, 0.35, 50), np.ones(50)])
    px = cam.project(pts)
    np.testing.assert_allclose(cam.normalise(px), pts[:, :2], atol=1e-6)
    # the distortion is real: ignoring it moves the corner points by pixels
    plain = _camera()
    assert np.abs(plain.normalise(px) - pts[:, :2]).max() * cam.fx > 5.0


# --------------------------------------------------------------------------- translation


@pytest.mark.parametrize("model,d", [("", ()), ("plumb_bob", PLUMB_BOB_D), ("equidistant", FISHEYE_D)])
@pytest.mark.parametrize("t", [(0.0, 0.2, 2.0), (-0.8, 0.3, 4.5), (1.5, -0.2, 8.0)])
def test_exact_keypoints_give_the_exact_translation(model, d, t):
    cam = _camera(model, d)
    J = _skeleton()
    px = cam.project(J + np.array(t))
    est = estimate_translation(px, J, cam)
    assert est is not None and est.num_points == int(cam.inside(px).sum()) >= 10  # feet leave the image at 2 m
    np.testing.assert_allclose(est.translation, t, atol=1e-6)
    assert est.reprojection_rms_px < 1e-6


def test_distortion_matters_for_depth():
    """Ignoring a real lens distortion misplaces an off-centre person; undistorting does not."""
    cam = _camera("plumb_bob", PLUMB_BOB_D)
    J = _skeleton()
    t = np.array([1.3, 0.4, 3.5])
    px = cam.project(J + t)
    good = estimate_translation(px, J, cam).translation
    naive = estimate_translation(px, J, _camera()).translation
    assert np.linalg.norm(good - t) < 1e-5
    assert np.linalg.norm(naive - t) > 0.1


def test_noisy_keypoints_give_a_close_depth():
    cam = _camera()
    J = _skeleton()
    rng = np.random.default_rng(1)
    t = np.array([0.3, 0.1, 5.0])
    errs = []
    for _ in range(50):
        px = cam.project(J + t) + rng.normal(0.0, 2.0, (NUM_JOINTS, 2))
        errs.append(abs(estimate_translation(px, J, cam).translation[2] - t[2]) / t[2])
    assert np.median(errs) < 0.03


def test_truncated_person_is_placed_from_the_seen_joints():
    """Legs below the image border (as a detector extrapolates them) and low-score joints are ignored."""
    cam = _camera()
    J = _skeleton()
    t = np.array([0.0, 0.85, 2.2])  # pelvis low in the image: the legs leave it
    px = cam.project(J + t)
    outside = ~cam.inside(px)
    assert outside.sum() >= 4, "the test needs a truncated body"
    px_det = px.copy()
    px_det[outside] += np.array([25.0, 40.0])  # extrapolated positions (still outside): wrong
    scores = np.ones(NUM_JOINTS)
    scores[SMPL_JOINT_NAMES.index("head")] = 0.1
    px_det[SMPL_JOINT_NAMES.index("head")] += 60.0  # a low-score joint far off
    est = estimate_translation(px_det, J, cam, scores=scores)
    assert est is not None and est.num_points == NUM_JOINTS - int(outside.sum()) - 1
    np.testing.assert_allclose(est.translation, t, atol=1e-6)


def test_one_wrong_keypoint_moves_the_body_little():
    cam = _camera()
    J = _skeleton()
    t = np.array([0.2, 0.0, 4.0])
    px = cam.project(J + t)
    px[SMPL_JOINT_NAMES.index("left_wrist")] += np.array([80.0, -60.0])  # a confident mistake
    est = estimate_translation(px, J, cam)
    assert abs(est.translation[2] - t[2]) / t[2] < 0.02


def test_too_few_keypoints_give_none():
    cam = _camera()
    J = _skeleton()
    px = cam.project(J + np.array([0.0, 0.0, 3.0]))
    scores = np.zeros(NUM_JOINTS)
    scores[:3] = 1.0
    assert estimate_translation(px, J, cam, scores=scores) is None
    assert estimate_translation(np.full((NUM_JOINTS, 2), -100.0), J, cam) is None  # all outside the image


def test_shape_errors():
    cam = _camera()
    with pytest.raises(ValueError):
        estimate_translation(np.zeros((5, 2)), np.zeros((4, 3)), cam)
    with pytest.raises(ValueError):
        estimate_translation(np.zeros((5, 2)), np.zeros((5, 3)), cam, scores=np.ones(4))


def test_eval_depth_is_exact_without_noise_and_shows_the_focal_error():
    """tools/eval_depth on held-out mocap: exact keypoints and the true skeleton give the exact
    depth with the camera's intrinsics; the assumed focal length (image width) does not."""
    from chatpose_ros.tools.eval_depth import FOCALS_PX, IMAGE_WH, run

    res = run(samples=40, joints_source="true", noise_px=0.0, noise_3d_m=0.0, size_sd=0.0, seed=0)
    d, f = res["depth"], res["focal"]
    rel = np.abs(res["err"]["fit K"]) / d
    assert np.isfinite(rel).all() and rel.max() < 1e-6
    assumed = np.abs(res["err"]["fit f=W"]) / d
    assert np.allclose(assumed[f == IMAGE_WH[0]], 0.0, atol=1e-6)
    other = f != IMAGE_WH[0]
    assert len(set(FOCALS_PX)) > 1 and np.median(assumed[other]) > 0.1
