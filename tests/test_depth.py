"""Depth input (core/depth.py, ROS-free): REP-118 encodings and "no reading", the approximate
sync by stamp, the person's translation from the depth under the torso, and every bad input
falling back to the monocular fit with its own error code."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from chatpose_ros.core import depth as D
from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.errors import (DepthEncodingError, DepthFrameMismatchError, DepthInputError,
                                      DepthSizeMismatchError, DepthStaleError, NoDepthCameraInfoError)
from chatpose_ros.core.placement import DEFAULT15, place_result
from chatpose_ros.core.smpl_layout import SMPL_JOINT_NAMES
from chatpose_ros.core.types import PersonPose, PoseResult
from fakes import make_person

W, H = 320, 240
CAM = CameraIntrinsics(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=W, height=H)
FRAME = "camera_color_optical_frame"
WALL_M = 9.0


def _person(seed: int, t: np.ndarray) -> PersonPose:
    """A fake person whose 15 keypoints are its joints projected at pelvis position t with CAM."""
    p = make_person(seed)
    kp = np.full((len(DEFAULT15), 2), np.nan, np.float32)
    for i, name in enumerate(DEFAULT15):
        if name in SMPL_JOINT_NAMES:
            kp[i] = CAM.project((p.joints[SMPL_JOINT_NAMES.index(name)] + t)[None])[0]
    return dataclasses.replace(p, keypoints_2d=kp)


def _torso_depth_m(p: PersonPose, t: np.ndarray, wall_m: float = WALL_M) -> np.ndarray:
    """(H, W) float32 metres: a wall, and the person's torso quad (grown 20 %) as a surface
    SURFACE_TO_CENTRE_M in front of its joints' mean depth."""
    z = np.full((H, W), wall_m, np.float32)
    idx = [DEFAULT15.index(n) for n in D.TORSO_KEYPOINTS]
    quad = p.keypoints_2d[idx].astype(np.float64)
    quad = quad.mean(0) + 1.2 * (quad - quad.mean(0))
    centre = np.mean([p.joints[SMPL_JOINT_NAMES.index(n)] for n in D.TORSO_KEYPOINTS], axis=0) + t
    cv2.fillConvexPoly(z, np.round(quad).astype(np.int32), float(centre[2] - D.SURFACE_TO_CENTRE_M))
    return z


def _image(z_m: np.ndarray, encoding: str = "16UC1", stamp: float = 10.0, frame_id: str = FRAME,
           bigendian: bool = False, pad: int = 0) -> D.DepthImage:
    """A DepthImage of metres `z_m` in `encoding` (mm for 16UC1; NaN -> 0), rows padded by `pad` bytes."""
    if encoding == "16UC1":
        arr = np.where(np.isfinite(z_m), np.round(z_m * 1000.0), 0).astype(">u2" if bigendian else "<u2")
    else:
        arr = z_m.astype(">f4" if bigendian else "<f4")
    rows = arr.view(np.uint8).reshape(z_m.shape[0], -1)
    data = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1).tobytes()
    return D.DepthImage(data, z_m.shape[1], z_m.shape[0], encoding, rows.shape[1] + pad, bigendian, stamp, frame_id)


T = np.array([0.3, 0.2, 4.0])


@pytest.mark.parametrize("encoding,bigendian,pad", [("16UC1", False, 0), ("32FC1", False, 0), ("16UC1", True, 6),
                                                    ("32FC1", True, 4)])
def test_translation_from_depth_in_either_encoding(encoding, bigendian, pad):
    p = _person(1, T)
    img = _image(_torso_depth_m(p, T), encoding, bigendian=bigendian, pad=pad)
    t = D.depth_translation(p, img, CAM)
    assert t is not None
    np.testing.assert_allclose(t, T, atol=0.03)


def test_zero_nan_inf_and_out_of_range_are_no_reading():
    z = np.array([[0.0, np.nan, np.inf, -np.inf, 0.05, 25.0, 2.5, 0.5]], np.float32)
    img = _image(z, "32FC1")
    got = img.metres(np.zeros(8, int), np.arange(8))
    assert np.isnan(got[:6]).all() and np.allclose(got[6:], [2.5, 0.5])
    mm = _image(np.array([[0.0, 1.234]], np.float32), "16UC1")
    got = mm.metres(np.zeros(2, int), np.arange(2))
    assert np.isnan(got[0]) and got[1] == pytest.approx(1.234, abs=1e-6)


def test_holes_flying_pixels_and_an_arm_in_front_are_rejected():
    p = _person(2, T)
    z = _torso_depth_m(p, T)
    rng = np.random.default_rng(0)
    z[rng.random(z.shape) < 0.3] = 0.0  # 30 % holes
    body = z < WALL_M - 0.5
    flying = body & (rng.random(z.shape) < 0.1)
    z[flying] = rng.uniform(T[2], WALL_M, flying.sum())  # readings between the person and the wall
    rows, cols = np.nonzero(body)
    arm = (rows < rows.min() + 0.2 * (rows.max() - rows.min()))
    z[rows[arm], cols[arm]] = T[2] - 0.5  # an arm across the chest, 0.5 m in front
    t = D.depth_translation(p, _image(z), CAM)
    assert t is not None and abs(t[2] - T[2]) < 0.05


def test_too_few_readings_or_torso_keypoints_give_none():
    p = _person(3, T)
    assert D.depth_translation(p, _image(np.zeros((H, W), np.float32)), CAM) is None  # all holes
    kp = p.keypoints_2d.copy()
    kp[[DEFAULT15.index(n) for n in D.TORSO_KEYPOINTS[1:]]] = np.nan  # one torso keypoint seen
    assert D.depth_translation(dataclasses.replace(p, keypoints_2d=kp), _image(_torso_depth_m(p, T)), CAM) is None


def test_layout_errors():
    with pytest.raises(DepthEncodingError):
        D.DepthImage(b"\0" * 12, 3, 2, "rgb8", 9)
    with pytest.raises(DepthEncodingError):
        D.DepthImage(b"\0" * 12, 3, 2, "mono16", 6)  # not a REP-118 depth encoding
    with pytest.raises(DepthInputError, match="truncated") as exc:
        D.DepthImage(b"\0" * 10, 3, 2, "16UC1", 6)
    assert exc.value.code == "invalid_depth"
    with pytest.raises(DepthInputError, match="step"):
        D.DepthImage(b"\0" * 12, 3, 2, "32FC1", 6)
    with pytest.raises(DepthInputError, match="empty"):
        D.DepthImage(b"", 0, 2, "32FC1", 0)


# ---------------------------------------------------------------------------------- sync
def _frame(stamp: float) -> D.DepthImage:
    return _image(np.full((2, 2), 1.0, np.float32), "32FC1", stamp=stamp)


def test_sync_takes_the_nearest_stamp_within_the_slop():
    sync = D.DepthSync(slop_s=0.02, history_s=1.0, max_frames=5)
    with pytest.raises(DepthStaleError, match="no depth image"):
        sync.match(1.0)
    for s in (1.000, 1.066, 1.033):  # out of order
        sync.add(_frame(s))
    assert sync.match(1.030).stamp_s == 1.033
    assert sync.match(1.010).stamp_s == 1.000
    assert sync.match(1.080).stamp_s == 1.066
    with pytest.raises(DepthStaleError, match="-50 ms"):
        sync.match(1.116)  # the nearest is 50 ms earlier
    with pytest.raises(DepthStaleError, match=r"\+33 ms"):
        sync.match(0.967)  # ... 33 ms later
    sync.add(_frame(2.05))  # frames more than history_s behind the newest go
    with pytest.raises(DepthStaleError):
        sync.match(1.0)
    assert sync.match(1.07).stamp_s == 1.066
    for s in (2.0, 2.1, 2.2, 2.3, 2.4):  # at most max_frames: the oldest (2.0) goes
        sync.add(_frame(s))
    with pytest.raises(DepthStaleError):
        sync.match(1.995)
    assert sync.match(2.41).stamp_s == pytest.approx(2.4) and sync.match(2.04).stamp_s == 2.05


# ---------------------------------------------------------------------------------- placer
def _result(people, size=(W, H)) -> PoseResult:
    return place_result(PoseResult(query="", answer="", people=tuple(people), selected=0, image_size=size), CAM)


def _placer(z: np.ndarray, stamp: float = 10.0, frame_id: str = FRAME, intr: CameraIntrinsics | None = CAM):
    placer = D.DepthPlacer(slop_s=0.05)
    placer.add(_image(z, stamp=stamp, frame_id=frame_id))
    placer.set_intrinsics(intr)
    return placer


def test_placer_uses_depth_and_names_the_source():
    p = _person(1, T)
    small = dataclasses.replace(p, joints=p.joints * 0.8)  # a skeleton 20 % small: the monocular fit is 20 % near
    out = _placer(_torso_depth_m(p, T)).place(_result([small]), 10.01, FRAME)
    assert out.error is None and out.counts == {"depth": 1}
    person = out.result.people[0]
    assert person.translation_source == "depth"
    assert abs(person.translation[2] - T[2]) < 0.05
    mono = _result([small]).people[0]
    assert mono.translation_source == "monocular" and mono.translation[2] < T[2] * 0.85


@pytest.mark.parametrize("case,error", [
    ("frame", DepthFrameMismatchError), ("size", DepthSizeMismatchError), ("info_size", DepthSizeMismatchError),
    ("stale", DepthStaleError), ("no_info", NoDepthCameraInfoError)])
def test_bad_input_falls_back_to_the_monocular_fit(case, error):
    p = _person(1, T)
    z = _torso_depth_m(p, T) - 1.0  # a depth that would move the person by 1 m: it must not be used
    placer = _placer(z, frame_id="camera_depth_optical_frame" if case == "frame" else FRAME,
                     intr=None if case == "no_info" else
                     dataclasses.replace(CAM, width=2 * W, height=2 * H) if case == "info_size" else CAM)
    mono = _result([p], size=(2 * W, 2 * H) if case == "size" else (W, H))
    out = placer.place(mono, 10.2 if case == "stale" else 10.0, FRAME)
    assert isinstance(out.error, error) and out.error.code == error.code
    assert out.counts == {"monocular": 1}
    got = out.result.people[0]
    assert got.translation_source == "monocular"
    np.testing.assert_array_equal(got.translation, mono.people[0].translation)


def test_no_reading_and_disagreement_keep_the_monocular_fit():
    p, q = _person(1, T), _person(2, T + np.array([-1.2, 0.0, 0.0]))
    z = _torso_depth_m(p, T)
    z_q = _torso_depth_m(q, T + np.array([-1.2, 0.0, 0.0]), wall_m=0.0)
    z = np.where(z_q > 0, T[2] / 2.5, z).astype(np.float32)  # q's torso reads 1.6 m: 2.5x nearer than their fit
    made_up = dataclasses.replace(make_person(5), generated=True)
    out = _placer(z).place(_result([p, q, made_up]), 10.0, FRAME)
    assert out.error is None and out.counts == {"depth": 1, "disagrees": 1, "monocular": 1}
    assert [x.translation_source for x in out.result.people] == ["depth", "monocular", ""]
    assert out.result.people[2].translation is None
    blank = _placer(np.zeros((H, W), np.float32)).place(_result([p]), 10.0, FRAME)
    assert blank.counts == {"no_reading": 1, "monocular": 1} and blank.result.people[0].translation_source == "monocular"
