"""Synthetic scenes for training and evaluating grounding: 1-5 people with real mocap poses.

Each person gets a mocap frame, a heading, a position in front of a random pinhole camera, a
body scale and named clothing colours. Their 15 keypoints are projected to pixels; "world"
keypoints imitate BlazePose's (MediaPipe Pose) world landmarks (hip-centred, camera axes, flattened
depth, noise); clothing pixels are sampled from the named colour with shading, colour casts
and contamination. The person token features then come from
:func:`person_features.scene_features`, exactly as for a real detection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatpose_ros.models.default.offline.mocap import MocapSet
from chatpose_ros.models.default.person_features import PersonObservation, keypoint_box, scene_features
from chatpose_ros.perception import keypoints as kp
from chatpose_ros.perception.colours import NAMED_COLOURS

COLOURS: dict[str, tuple[int, int, int]] = NAMED_COLOURS  # garment colours drawn (and named by queries)
ACHROMATIC = ("black", "white", "grey")
IMAGE_SIZES = ((640, 480), (1280, 720), (960, 540), (480, 640))
SKIN = (200, 160, 130)
# canonical SMPL frame (y up, facing +z) -> camera optical frame (y down, facing the camera)
CANON_TO_CAMERA = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


@dataclass(frozen=True)
class SyntheticPerson:
    """rotmats_cam: (24, 3, 3) local rotations, joint 0 in the camera optical frame;
    joints_canon: (24, 3) FK joints in the canonical frame (y up) for posture labels;
    position: (3,) pelvis in the camera frame (m); upper/lower: colour names; frame: mocap index."""

    rotmats_cam: np.ndarray
    joints_canon: np.ndarray
    position: np.ndarray
    upper: str
    lower: str
    frame: int
    obs: PersonObservation


@dataclass(frozen=True)
class Scene:
    """people in generation order; features: (N, FEATURE_DIM); gray: the image is grayscale."""

    people: tuple[SyntheticPerson, ...]
    features: np.ndarray
    image_size: tuple[int, int]
    gray: bool


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)


def clothing_pixels(rng: np.random.Generator, colour: str, n: int, gray: bool = False,
                    cast: np.ndarray | None = None) -> np.ndarray:
    """(n, 3) uint8 RGB pixels of a garment of a named colour, as a camera would see it:
    colour jitter, illumination, per-pixel shading (folds), a colour cast, contamination by skin
    and background, sensor noise; grayscale when `gray`."""
    import cv2

    base = np.array(COLOURS[colour], np.uint8).reshape(1, 1, 3)
    hsv = cv2.cvtColor(base, cv2.COLOR_RGB2HSV).astype(np.float32)[0, 0]
    hsv[0] = (hsv[0] + rng.uniform(-6, 6)) % 180
    hsv[1] = np.clip(hsv[1] * rng.uniform(0.7, 1.15), 0, 255)
    hsv[2] = np.clip(hsv[2] * rng.uniform(0.65, 1.1), 0, 255)
    rgb = cv2.cvtColor(hsv.astype(np.uint8).reshape(1, 1, 3), cv2.COLOR_HSV2RGB).astype(np.float32)[0, 0]
    shade = np.clip(rng.normal(1.0, 0.15, (n, 1)), 0.4, 1.5)
    px = rgb[None] * shade
    if cast is not None:
        px = px + cast[None]
    k = int(rng.uniform(0.0, 0.25) * n)
    if k:
        idx = rng.choice(n, k, replace=False)
        other = np.where(rng.random((k, 1)) < 0.5, np.array(SKIN, np.float32)[None],
                         rng.uniform(0, 255, (k, 3)).astype(np.float32))
        px[idx] = other
    px = px + rng.normal(0, 5.0, px.shape)
    px = np.clip(px, 0, 255).astype(np.uint8)
    if gray:
        g = cv2.cvtColor(px.reshape(-1, 1, 3), cv2.COLOR_RGB2GRAY).reshape(-1, 1)
        px = np.repeat(g, 3, axis=1)
    return px


def make_scene(rng: np.random.Generator, mocap: MocapSet, num_people: int | None = None,
               gray_prob: float = 0.1, max_tries: int = 30) -> Scene:
    """One random scene of `num_people` (default 1-5) people from `mocap` frames."""
    n = int(num_people or rng.integers(1, 6))
    W, H = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
    f = W * rng.uniform(0.7, 1.3)
    cx, cy = W / 2.0, H / 2.0
    pitch = rng.uniform(-0.15, 0.15)
    cam_h = rng.uniform(0.9, 1.8)
    gray = bool(rng.random() < gray_prob)
    cast = rng.normal(0, 8.0, 3).astype(np.float32)
    R_cam = rot_x(pitch) @ CANON_TO_CAMERA
    people: list[SyntheticPerson] = []
    for _ in range(n):
        for _try in range(max_tries):
            i = int(rng.integers(len(mocap)))
            yaw = rng.uniform(-np.pi, np.pi)
            R = R_cam @ rot_y(yaw)
            scale = rng.uniform(0.88, 1.1)
            jc = mocap.joints[i].astype(np.float32)
            rot = mocap.rotmats[i].astype(np.float32)
            k_can = kp.smpl_to_keypoints(jc, rot).astype(np.float32)
            ground = float(min(jc[:, 1].min(), k_can[:, 1].min()))
            Z = rng.uniform(2.2, 9.0)
            u = rng.uniform(0.06, 0.94) * W
            X = (u - cx) * Z / f
            # pelvis height above the floor = -ground * scale; camera at cam_h above the floor
            Y = cam_h - (-ground * scale)
            T = np.array([X, Y, Z], np.float32)
            k_cam = scale * (k_can @ R.T) + T
            if (k_cam[:, 2] < 0.5).any():
                continue
            kp2d = f * k_cam[:, :2] / k_cam[:, 2:3] + np.array([cx, cy], np.float32)
            box = keypoint_box(kp2d)
            inside = (min(box[2], W) - max(box[0], 0)) * (min(box[3], H) - max(box[1], 0))
            if inside < 0.7 * (box[2] - box[0]) * (box[3] - box[1]) or box[3] - box[1] < 40:
                continue
            if any(_overlap(box, keypoint_box(p.obs.kp2d)) > 0.5 for p in people):
                continue
            hbox = box[3] - box[1]
            kp2d_obs = kp2d + rng.normal(0, 0.012 * hbox, kp2d.shape).astype(np.float32)
            k3 = scale * (k_can - 0.5 * (k_can[7] + k_can[8])) @ R.T
            k3 = k3 * np.array([1.0, 1.0, rng.uniform(0.55, 1.0)], np.float32)
            k3 = (k3 + rng.normal(0, 0.025, k3.shape)).astype(np.float32)
            upper = str(rng.choice(list(COLOURS)))
            lower = str(rng.choice(list(COLOURS)))
            npx_u = int(np.clip(hbox * hbox * 0.03, 20, 400))
            npx_l = int(np.clip(hbox * hbox * 0.02, 15, 400))
            obs = PersonObservation(kp2d_obs, k3, (W, H),
                                    clothing_pixels(rng, upper, npx_u, gray, cast),
                                    clothing_pixels(rng, lower, npx_l, gray, cast))
            rot_cam = rot.copy()
            rot_cam[0] = R @ rot[0]
            people.append(SyntheticPerson(rot_cam, jc, T, upper, lower, i, obs))
            break
    if not people:
        return make_scene(rng, mocap, num_people, gray_prob, max_tries)
    return Scene(tuple(people), scene_features([p.obs for p in people]), (W, H), gray)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(ix * iy / max(small, 1e-6))
