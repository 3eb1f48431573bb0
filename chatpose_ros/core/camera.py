"""Camera intrinsics and the metric position of a person in front of the camera (ROS-free).

API (what the ROS layer calls; it copies the fields of ``sensor_msgs/CameraInfo``):

    intr = CameraIntrinsics.from_camera_info(k=msg.k, d=msg.d, distortion_model=msg.distortion_model,
                                             width=msg.width, height=msg.height,
                                             binning_x=msg.binning_x, binning_y=msg.binning_y,
                                             roi=(msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height))
        # raises InvalidCameraInfoError: zero/negative/non-finite focal length (an uncalibrated
        # camera publishes K = 0), bad principal point or size, unknown distortion model
    intr = CameraIntrinsics.from_projection(p=msg.p, width=msg.width, height=msg.height)
        # for rectified images (image_rect topics): P, no distortion
    intr.matches_image(width, height) -> bool        # camera_info size == image size?
    intr.check_image_size(width, height)             # raises InvalidCameraInfoError if not
    est = estimate_translation(keypoints_px, points_3d, intr, scores=scores)
        # -> TranslationEstimate(translation (3,) m, reprojection_rms_px, num_points) or None
        #    when too few keypoints are seen (then translation_known = false)

Frames and units: the camera OPTICAL frame (x right, y down, z forward out of the lens), metres;
pixels with the origin at the centre of the top-left pixel, as in ``sensor_msgs/CameraInfo``.

Method (``estimate_translation``): the pose model gives the body's 3D shape but not where it
is: ``points_3d`` (N, 3) are the person's keypoints in metres, in camera axes, relative to the
point whose position we want (the pelvis). Two sources in the default profile, row for row with
the 2D keypoints: the detector's metric 3D keypoints when it has them (MediaPipe world
landmarks through ``keypoints.mediapipe_to_keypoints``; hip-centred, so ``t`` is then the
mid-hip), else the regressor's pose (``keypoints.smpl_to_keypoints(joints, rotmats)``, the
same 15 keypoints). On 2000 mocap poses (``tools/eval_depth``, body sizes spread by 5%) the
world landmarks gave a median depth error of 3.7%, the regressor's skeleton 4.2%. We look for
the translation ``t`` that puts this skeleton where it projects onto the detected 2D keypoints:

1. Keypoints are undistorted (``cv2.undistortPoints`` / ``cv2.fisheye.undistortPoints``) to
   normalised image coordinates ``x = (u - cx) / fx``, ``y = (v - cy) / fy``.
2. Linear full-perspective solution (as SPIN / HMR 2.0's ``estimate_translation_np``): each seen
   keypoint i gives two equations linear in t, ``tx - x_i tz = x_i Z_i - X_i`` and
   ``ty - y_i tz = y_i Z_i - Y_i``, solved by weighted least squares (weights = scores).
3. A few Gauss-Newton steps on the reprojection error itself (pixels), with Huber weights so
   that one wrong keypoint cannot pull the body far.

Only seen keypoints count (score >= ``min_score`` and inside the image), so a person cut by the
image border (truncated) is placed from the joints that are visible; at least ``min_points``
are needed. The depth is as good as the skeleton's SIZE: the default profile's skeleton is the
mean SMPL adult (about 1.7 m), so a person 10% smaller than that is placed about 10% too far
(the body-size prior is implicit in the skeleton). ``python -m chatpose_ros.tools.eval_depth``
measures the error against distance on mocap poses.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import InvalidCameraInfoError

log = logging.getLogger(__name__)

# Distortion models of sensor_msgs/CameraInfo (sensor_msgs/distortion_models.hpp) and how many
# coefficients each uses at least. "" / "none": no distortion (all-zero coefficients also mean none).
PLUMB_BOB = "plumb_bob"                      # k1 k2 t1 t2 k3
RATIONAL_POLYNOMIAL = "rational_polynomial"  # k1 k2 t1 t2 k3 k4 k5 k6
EQUIDISTANT = "equidistant"                  # fisheye k1 k2 k3 k4
NO_DISTORTION = ("", "none")
DISTORTION_MIN_COEFFS = {PLUMB_BOB: 4, RATIONAL_POLYNOMIAL: 4, EQUIDISTANT: 4}

DEFAULT_MIN_SCORE = 0.5    # keypoints with a score below this are not seen
DEFAULT_MIN_POINTS = 4     # fewer seen keypoints -> no translation
MIN_DEPTH_M = 0.1          # a solution closer than this (or behind the camera) is refused
HUBER_PX = 5.0             # reprojection residuals beyond this many pixels are down-weighted
REFINE_ITERATIONS = 10     # Gauss-Newton steps after the linear solution
REFINE_TOL_M = 1e-6        # stop refining when the step is shorter than this
UNDISTORT_ITERATIONS = 20  # cv2.undistortPointsIter: iterations and tolerance for strong lenses
UNDISTORT_EPS = 1e-9


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics (px) and lens distortion of one camera, as in ``sensor_msgs/CameraInfo``.

    fx, fy: focal lengths (px, > 0); cx, cy: principal point (px); width, height: the image size
    (px) these intrinsics belong to; distortion_model: ``plumb_bob``, ``rational_polynomial``,
    ``equidistant`` or "" (none); distortion: its coefficients (CameraInfo ``d``). Skew is not
    modelled (CameraInfo cameras have K[0, 1] = 0).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion_model: str = ""
    distortion: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            v = getattr(self, name)
            try:
                f = float(v)
            except (TypeError, ValueError):
                f = math.nan
            if not math.isfinite(f):
                raise InvalidCameraInfoError(f"camera intrinsics: {name} = {v!r} is not a finite number")
            object.__setattr__(self, name, f)
        if self.fx <= 0 or self.fy <= 0:
            raise InvalidCameraInfoError(
                f"camera intrinsics: focal length fx = {self.fx}, fy = {self.fy} must be > 0 "
                "(an uncalibrated camera publishes K = 0)")
        if int(self.width) != self.width or int(self.height) != self.height or self.width <= 0 or self.height <= 0:
            raise InvalidCameraInfoError(f"camera intrinsics: image size {self.width} x {self.height} must be > 0")
        model = self.distortion_model.strip().lower()
        coeffs = tuple(float(c) for c in self.distortion)
        if not all(math.isfinite(c) for c in coeffs):
            raise InvalidCameraInfoError(f"camera intrinsics: non-finite distortion coefficients {coeffs}")
        if model not in NO_DISTORTION and model not in DISTORTION_MIN_COEFFS and any(coeffs):
            raise InvalidCameraInfoError(
                f"camera intrinsics: unknown distortion model {self.distortion_model!r} with non-zero coefficients; "
                f"expected one of {sorted(DISTORTION_MIN_COEFFS)}")
        if model in DISTORTION_MIN_COEFFS and any(coeffs) and len(coeffs) < DISTORTION_MIN_COEFFS[model]:
            raise InvalidCameraInfoError(
                f"camera intrinsics: {model} needs at least {DISTORTION_MIN_COEFFS[model]} coefficients, got {len(coeffs)}")
        object.__setattr__(self, "distortion_model", model)
        object.__setattr__(self, "distortion", coeffs)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @classmethod
    def from_camera_info(
        cls, k: Sequence[float], d: Sequence[float], distortion_model: str, width: int, height: int,
        binning_x: int = 0, binning_y: int = 0, roi: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> "CameraIntrinsics":
        """From the fields of a ``sensor_msgs/CameraInfo``: ``k`` the 9 values of K (row-major),
        ``d`` the distortion coefficients, ``width`` x ``height`` the calibrated resolution.

        A camera publishing a binned and/or cropped image (``binning_x/y`` > 1, ``roi`` =
        (x_offset, y_offset, width, height) non-zero) gets intrinsics of the image it actually
        publishes, as image_geometry's PinholeCameraModel does: the principal point moves by the
        ROI offset, focal lengths and principal point divide by the binning, and the size is
        the ROI's (or the full size) divided by the binning. Raises InvalidCameraInfoError on
        unusable values.
        """
        k_arr = np.asarray(k, dtype=float).reshape(-1)
        if k_arr.size != 9:
            raise InvalidCameraInfoError(f"camera_info K must have 9 values, got {k_arr.size}")
        bx, by = max(int(binning_x), 1), max(int(binning_y), 1)
        x_off, y_off, roi_w, roi_h = (int(v) for v in roi)
        if min(x_off, y_off, roi_w, roi_h) < 0:
            raise InvalidCameraInfoError(f"camera_info ROI {roi} has negative values")
        full_w, full_h = (roi_w or int(width)), (roi_h or int(height))
        return cls(fx=float(k_arr[0]) / bx, fy=float(k_arr[4]) / by, cx=(float(k_arr[2]) - x_off) / bx,
                   cy=(float(k_arr[5]) - y_off) / by, width=full_w // bx, height=full_h // by,
                   distortion_model=str(distortion_model), distortion=tuple(float(c) for c in d))

    @classmethod
    def from_projection(cls, p: Sequence[float], width: int, height: int) -> "CameraIntrinsics":
        """For a RECTIFIED image (``image_rect*`` topics): from CameraInfo's 3x4 projection
        matrix ``p`` (12 values, row-major), no distortion. Raises InvalidCameraInfoError."""
        p_arr = np.asarray(p, dtype=float).reshape(-1)
        if p_arr.size != 12:
            raise InvalidCameraInfoError(f"camera_info P must have 12 values, got {p_arr.size}")
        return cls(fx=float(p_arr[0]), fy=float(p_arr[5]), cx=float(p_arr[2]), cy=float(p_arr[6]),
                   width=int(width), height=int(height))

    @classmethod
    def from_focal(cls, focal_px: float, width: int, height: int) -> "CameraIntrinsics":
        """A distortion-free camera with square pixels and the principal point at the image centre."""
        return cls(fx=focal_px, fy=focal_px, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def has_distortion(self) -> bool:
        return self.distortion_model not in NO_DISTORTION and any(self.distortion)

    def matches_image(self, width: int, height: int) -> bool:
        """Whether an image of ``width`` x ``height`` px is the one these intrinsics describe."""
        return int(width) == self.width and int(height) == self.height

    def check_image_size(self, width: int, height: int) -> None:
        """Raise InvalidCameraInfoError when the image size differs from the camera_info size
        (intrinsics of another resolution would place people at wrong distances)."""
        if not self.matches_image(width, height):
            raise InvalidCameraInfoError(
                f"camera_info is for {self.width} x {self.height} px but the image is {int(width)} x {int(height)} px")

    def normalise(self, points_px: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) float64 undistorted normalised coordinates ((u - cx) / fx, ...)."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        if pts.shape[0] == 0:
            return pts.copy()
        if not self.has_distortion:
            return np.stack([(pts[:, 0] - self.cx) / self.fx, (pts[:, 1] - self.cy) / self.fy], axis=1)
        import cv2  # only where distortion is given

        src = pts.reshape(-1, 1, 2)
        D = np.asarray(self.distortion, dtype=np.float64)
        if self.distortion_model == EQUIDISTANT:
            out = cv2.fisheye.undistortPoints(src, self.K, D[:4])
        else:
            crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, UNDISTORT_ITERATIONS, UNDISTORT_EPS)
            out = cv2.undistortPointsIter(src, self.K, D, None, None, crit)
        return out.reshape(-1, 2).astype(np.float64)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(N, 3) points (m, optical frame, z > 0) -> (N, 2) float64 pixels, with lens distortion."""
        p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        if p.shape[0] == 0:
            return np.zeros((0, 2))
        if not self.has_distortion:
            return np.stack([self.fx * p[:, 0] / p[:, 2] + self.cx, self.fy * p[:, 1] / p[:, 2] + self.cy], axis=1)
        import cv2

        D = np.asarray(self.distortion, dtype=np.float64)
        zero = np.zeros(3)
        if self.distortion_model == EQUIDISTANT:
            out, _ = cv2.fisheye.projectPoints(p.reshape(-1, 1, 3), zero, zero, self.K, D[:4])
        else:
            out, _ = cv2.projectPoints(p, zero, zero, self.K, D)
        return out.reshape(-1, 2).astype(np.float64)

    def inside(self, points_px: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N,) bool: inside the image (pixel centres 0 .. size - 1, half a pixel margin)."""
        p = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        return ((p[:, 0] >= -0.5) & (p[:, 0] <= self.width - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= self.height - 0.5)
                & np.isfinite(p).all(1))


@dataclass(frozen=True)
class TranslationEstimate:
    """translation: (3,) float64 pelvis position (m) in the camera optical frame;
    reprojection_rms_px: RMS distance (px) between the placed skeleton's projection and the
    seen keypoints; num_points: how many keypoints were used."""

    translation: np.ndarray
    reprojection_rms_px: float
    num_points: int


def _linear_translation(xy: np.ndarray, P: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Weighted linear least squares for t: (N, 2) normalised coords, (N, 3) points, (N,) weights."""
    n = xy.shape[0]
    A = np.zeros((2 * n, 3))
    b = np.empty(2 * n)
    A[0::2, 0] = 1.0
    A[0::2, 2] = -xy[:, 0]
    b[0::2] = xy[:, 0] * P[:, 2] - P[:, 0]
    A[1::2, 1] = 1.0
    A[1::2, 2] = -xy[:, 1]
    b[1::2] = xy[:, 1] * P[:, 2] - P[:, 1]
    sw = np.sqrt(np.repeat(w, 2))
    t, _, rank, _ = np.linalg.lstsq(A * sw[:, None], b * sw, rcond=None)
    return t if rank == 3 else None


def _residuals_px(t: np.ndarray, xy: np.ndarray, P: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(N, 2) reprojection residuals in pixels (projection minus observation)."""
    Q = P + t
    return (Q[:, :2] / Q[:, 2:3] - xy) * f


def estimate_translation(
    keypoints_px: np.ndarray, points_3d: np.ndarray, intrinsics: CameraIntrinsics,
    scores: np.ndarray | None = None, min_score: float = DEFAULT_MIN_SCORE, min_points: int = DEFAULT_MIN_POINTS,
) -> TranslationEstimate | None:
    """Where the person is: the translation that makes ``points_3d`` project onto ``keypoints_px``.

    Args:
        keypoints_px: (N, 2) detected 2D keypoints (px, distorted image as published).
        points_3d: (N, 3) the same keypoints in 3D (m), pelvis-relative, camera optical axes
            (the pose model's skeleton, e.g. ``smpl_to_keypoints`` of the regressor's joints).
        intrinsics: the camera's intrinsics (``CameraIntrinsics``).
        scores: (N,) detection scores / visibilities in [0, 1], or None (all seen).
        min_score: keypoints scoring below this are not seen.
        min_points: minimum number of seen keypoints inside the image.
    Returns:
        TranslationEstimate (pelvis position, m, camera optical frame), or None when fewer than
        ``min_points`` keypoints are seen or no solution in front of the camera exists.
        See the module docstring for the method.
    """
    kp = np.asarray(keypoints_px, dtype=np.float64)
    P = np.asarray(points_3d, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2 or P.shape != (kp.shape[0], 3):
        raise ValueError(f"expected (N, 2) keypoints and (N, 3) points, got {kp.shape} and {P.shape}")
    w = np.ones(kp.shape[0]) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if w.shape != (kp.shape[0],):
        raise ValueError(f"expected ({kp.shape[0]},) scores, got {w.shape}")
    seen = (w >= min_score) & intrinsics.inside(kp) & np.isfinite(P).all(1) & np.isfinite(w)
    n = int(seen.sum())
    if n < max(min_points, 2):
        log.debug("translation: %d keypoints seen, need %d", n, min_points)
        return None
    kp, P, w = kp[seen], P[seen], w[seen]
    xy = intrinsics.normalise(kp)
    t = _linear_translation(xy, P, w)
    if t is None or t[2] < MIN_DEPTH_M:
        log.debug("translation: degenerate linear solution %s", t)
        return None
    f = np.array([intrinsics.fx, intrinsics.fy])
    for _ in range(REFINE_ITERATIONS):
        Q = P + t
        if np.any(Q[:, 2] <= 0):
            break
        r = _residuals_px(t, xy, P, f).reshape(-1)
        inv_z = 1.0 / Q[:, 2]
        J = np.zeros((2 * n, 3))
        J[0::2, 0] = f[0] * inv_z
        J[0::2, 2] = -f[0] * Q[:, 0] * inv_z ** 2
        J[1::2, 1] = f[1] * inv_z
        J[1::2, 2] = -f[1] * Q[:, 1] * inv_z ** 2
        a = np.abs(r)
        huber = np.where(a <= HUBER_PX, 1.0, HUBER_PX / np.maximum(a, 1e-12))
        W = np.repeat(w, 2) * huber
        H = (J * W[:, None]).T @ J
        g = (J * W[:, None]).T @ r
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        t = t + step
        if np.linalg.norm(step) < REFINE_TOL_M:
            break
    if not np.all(np.isfinite(t)) or t[2] < MIN_DEPTH_M or np.any(P[:, 2] + t[2] <= 0):
        log.debug("translation: no solution in front of the camera (%s)", t)
        return None
    rms = float(np.sqrt(np.mean(np.sum(_residuals_px(t, xy, P, f) ** 2, axis=1))))
    return TranslationEstimate(translation=t, reprojection_rms_px=rms, num_points=n)
