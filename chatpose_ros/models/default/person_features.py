"""The person token input: one fixed-length float vector per person.

The same functions build the vector for a real person (perception keypoints + pixels) and
for a synthetic person (mocap keypoints projected with a random camera + sampled clothing
pixels), so that what the language model learns on synthetic scenes transfers to photos:

    PersonObservation (kp2d px, kp3d m camera axes, image size, upper/lower clothing pixels)
        -> scene_features([...]) -> (N, FEATURE_DIM)

Blocks of the vector (FEATURE_BLOCKS gives the slices):
- ``kp2d``: the 15 keypoints (keypoints.KEYPOINT_NAMES) in the keypoint box, centred, / box size;
- ``kp3d``: the 15 keypoints, 3D, root-relative (mid-hip), camera optical axes (x right, y down,
  z forward), m;
- ``box``: box of the keypoints relative to the image (centre x, centre y, width, height,
  sqrt(area)) and its rank among the people of the scene (left-to-right, size, depth
  order by box bottom), plus the number of people: these encode left/right/middle/nearest;
- ``upper`` / ``lower``: colour statistics of the torso (shoulder-hip quad) and of the legs
  (hip-knee quad): mean CIE Lab, chroma-weighted 8-bin hue histogram, achromatic fraction;
- ``posture``: angles and relative heights from the 3D keypoints (arms raised, knees bent,
  torso lean, feet apart, one foot up).

:func:`colour_descriptor` derives an interpretable colour-name descriptor from the ``upper``
and ``lower`` blocks of that vector (a soft assignment of each region's mean Lab to the
NAMED_COLOURS prototypes of perception.colours); it is read by the grounding head's keys, not by the projector, so
the vector layout is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chatpose_ros.perception import keypoints as kp
from chatpose_ros.perception.colours import COLOUR_NAME_TEMPERATURE, NUM_COLOUR_NAMES, colour_prototypes_lab, region_pixels

if TYPE_CHECKING:
    import torch

NUM_KP = len(kp.KEYPOINT_NAMES)
HUE_BINS = 8
COLOUR_DIM = 3 + HUE_BINS + 1
POSTURE_DIM = 16
BOX_DIM = 12
FEATURE_BLOCKS: dict[str, slice] = {}
_o = 0
for _name, _n in (("kp2d", NUM_KP * 2), ("kp3d", NUM_KP * 3), ("box", BOX_DIM), ("upper", COLOUR_DIM),
                  ("lower", COLOUR_DIM), ("posture", POSTURE_DIM)):
    FEATURE_BLOCKS[_name] = slice(_o, _o + _n)
    _o += _n
FEATURE_DIM = _o
APPEARANCE_BLOCKS = ("upper", "lower")

COLOUR_DESCRIPTOR_DIM = len(APPEARANCE_BLOCKS) * NUM_COLOUR_NAMES
LAB_SCALE = (100.0, 128.0, 128.0)  # colour_stats stores L/100, a/128, b/128


def _find(*names: str) -> int:
    for n in names:
        if n in kp.KEYPOINT_NAMES:
            return kp.KEYPOINT_NAMES.index(n)
    raise KeyError(f"none of {names} in KEYPOINT_NAMES {kp.KEYPOINT_NAMES}")


NOSE = _find("nose")
L_SH, R_SH = _find("left_shoulder", "l_shoulder"), _find("right_shoulder", "r_shoulder")
L_EL, R_EL = _find("left_elbow", "l_elbow"), _find("right_elbow", "r_elbow")
L_WR, R_WR = _find("left_wrist", "l_wrist"), _find("right_wrist", "r_wrist")
L_HIP, R_HIP = _find("left_hip", "l_hip"), _find("right_hip", "r_hip")
L_KN, R_KN = _find("left_knee", "l_knee"), _find("right_knee", "r_knee")
L_AN, R_AN = _find("left_ankle", "l_ankle"), _find("right_ankle", "r_ankle")


@dataclass(frozen=True)
class PersonObservation:
    """What the features are computed from (real or synthetic).

    kp2d: (15, 2) px; kp3d: (15, 3) m, camera optical axes (any origin); image_size: (W, H);
    upper / lower: (P, 3) uint8 RGB pixels of the torso / legs (P may be 0).
    """

    kp2d: np.ndarray
    kp3d: np.ndarray
    image_size: tuple[int, int]
    upper: np.ndarray
    lower: np.ndarray


def keypoint_box(kp2d: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """(15, 2) px -> (4,) xyxy box of the keypoints, widened by `margin` of its size on each
    side and made at least a quarter as wide as tall (arms down) with extra head room."""
    x0, y0 = kp2d.min(0)
    x1, y1 = kp2d.max(0)
    h = max(y1 - y0, 1.0)
    y0 = y0 - 0.12 * h  # the top of the head is above the nose
    w = max(x1 - x0, 0.25 * h)
    cx = 0.5 * (x0 + x1)
    x0, x1 = cx - w / 2, cx + w / 2
    h = y1 - y0
    return np.array([x0 - margin * w, y0 - margin * h, x1 + margin * w, y1 + margin * h], np.float32)


def colour_stats(pixels: np.ndarray) -> np.ndarray:
    """(P, 3) uint8 RGB pixels -> (COLOUR_DIM,) float32: mean Lab (L/100, a/128, b/128),
    chroma-weighted hue histogram (HUE_BINS, sums to the mean chroma fraction), achromatic fraction."""
    import cv2

    out = np.zeros(COLOUR_DIM, np.float32)
    if pixels is None or len(pixels) == 0:
        return out
    px = np.asarray(pixels, np.uint8).reshape(-1, 1, 3)
    lab = cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    L, a, b = lab[:, 0] * (100.0 / 255.0), lab[:, 1] - 128.0, lab[:, 2] - 128.0
    out[0:3] = [L.mean() / 100.0, a.mean() / 128.0, b.mean() / 128.0]
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    hue = hsv[:, 0] * 2.0  # degrees
    chroma = np.sqrt(a * a + b * b)
    wgt = np.clip(chroma / 40.0, 0.0, 1.0)
    bins = np.floor(((hue + 360.0 / HUE_BINS / 2) % 360.0) / (360.0 / HUE_BINS)).astype(int) % HUE_BINS
    hist = np.bincount(bins, weights=wgt, minlength=HUE_BINS) / len(hue)
    out[3:3 + HUE_BINS] = hist
    out[3 + HUE_BINS] = float((chroma < 12.0).mean())
    return out


def colour_name_scores(stats: torch.Tensor, temperature: float = COLOUR_NAME_TEMPERATURE) -> torch.Tensor:
    """(..., COLOUR_DIM) colour_stats of a region -> (..., NUM_COLOUR_NAMES) soft assignment of
    its mean Lab to the named colours (softmax of -Lab distance / temperature; sums to 1).

    A region without pixels (all-zero stats) gets all zeros."""
    import torch

    lab = stats[..., :3] * stats.new_tensor(LAB_SCALE)
    proto = torch.from_numpy(colour_prototypes_lab()).to(lab)
    d = (lab[..., None, :] - proto).norm(dim=-1)
    p = torch.softmax(-d / temperature, dim=-1)
    empty = (stats.abs().sum(-1, keepdim=True) == 0)
    return p.masked_fill(empty, 0.0)


def colour_descriptor(feats: torch.Tensor) -> torch.Tensor:
    """(..., FEATURE_DIM) raw (not standardised) person features -> (..., COLOUR_DESCRIPTOR_DIM):
    colour_name_scores of the upper then the lower region (COLOUR_NAMES order each).

    The same function serves real detections and synthetic people (both go through
    colour_stats), so a colour word means the same pixels in training and at inference."""
    import torch

    return torch.cat([colour_name_scores(feats[..., FEATURE_BLOCKS[b]]) for b in APPEARANCE_BLOCKS], -1)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle at b (rad, /pi) of the segment a-b-c."""
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-8))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi)


def posture_features(kp3d: np.ndarray) -> np.ndarray:
    """(15, 3) keypoints (m, camera optical axes, y down) -> (POSTURE_DIM,) float32.

    Heights are measured along the torso's up direction (mid-hip -> mid-shoulder) blended with
    the image vertical, in units of torso length; angles are /pi."""
    k = np.asarray(kp3d, np.float32)
    hip = 0.5 * (k[L_HIP] + k[R_HIP])
    sh = 0.5 * (k[L_SH] + k[R_SH])
    torso = sh - hip
    tl = float(np.linalg.norm(torso)) + 1e-6
    up_img = np.array([0.0, -1.0, 0.0], np.float32)
    lean = float(np.arccos(np.clip(np.dot(torso / tl, up_img), -1, 1)) / np.pi)

    def h(p: np.ndarray, ref: np.ndarray) -> float:
        return float(np.dot(p - ref, up_img) / tl)

    f = [
        h(k[L_WR], k[L_SH]), h(k[R_WR], k[R_SH]),          # wrists above shoulders
        h(k[L_EL], k[L_SH]), h(k[R_EL], k[R_SH]),
        _angle(k[L_SH], k[L_EL], k[L_WR]), _angle(k[R_SH], k[R_EL], k[R_WR]),  # elbow flexion
        _angle(k[L_HIP], k[L_KN], k[L_AN]), _angle(k[R_HIP], k[R_KN], k[R_AN]),  # knee flexion
        _angle(sh, k[L_HIP], k[L_KN]), _angle(sh, k[R_HIP], k[R_KN]),          # hip flexion
        h(k[L_AN], hip), h(k[R_AN], hip),                   # ankle heights (crouch: high)
        h(k[L_AN], k[R_AN]),                                # one foot up (kick)
        float(np.linalg.norm(k[L_AN] - k[R_AN]) / tl),      # feet apart
        float(np.linalg.norm(k[L_WR] - k[R_WR]) / tl),      # hands apart
        lean,
    ]
    return np.asarray(f, np.float32)


def scene_features(people: list[PersonObservation]) -> np.ndarray:
    """Features of all the people in one image (ranks are within the scene) -> (N, FEATURE_DIM)."""
    n = len(people)
    out = np.zeros((n, FEATURE_DIM), np.float32)
    if n == 0:
        return out
    boxes = np.stack([keypoint_box(p.kp2d) for p in people])
    W, H = people[0].image_size
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2]) / W
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3]) / H
    bw = (boxes[:, 2] - boxes[:, 0]) / W
    bh = (boxes[:, 3] - boxes[:, 1]) / H
    bottom = boxes[:, 3] / H

    def rank(v: np.ndarray) -> np.ndarray:
        r = np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(np.float32)
        return r / max(n - 1, 1) if n > 1 else np.full(n, 0.5, np.float32)

    rx, rs, rb = rank(cx), rank(bh), rank(bottom)
    for i, p in enumerate(people):
        kp2d = np.asarray(p.kp2d, np.float32)
        b = boxes[i]
        c = 0.5 * (b[:2] + b[2:])
        size = max(b[2] - b[0], b[3] - b[1], 1e-3)
        k3 = np.asarray(p.kp3d, np.float32)
        k3 = k3 - 0.5 * (k3[L_HIP] + k3[R_HIP])
        out[i, FEATURE_BLOCKS["kp2d"]] = ((kp2d - c) / size).ravel()
        out[i, FEATURE_BLOCKS["kp3d"]] = k3.ravel()
        out[i, FEATURE_BLOCKS["box"]] = [
            cx[i], cy[i], bw[i], bh[i], np.sqrt(bw[i] * bh[i]), rx[i], rs[i], rb[i],
            float(rx[i] == 0.0 and n > 1), float(rx[i] == 1.0 and n > 1), float(rs[i] == 1.0 and n > 1),
            n / 5.0,
        ]
        out[i, FEATURE_BLOCKS["upper"]] = colour_stats(p.upper)
        out[i, FEATURE_BLOCKS["lower"]] = colour_stats(p.lower)
        out[i, FEATURE_BLOCKS["posture"]] = posture_features(k3)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def clothing_quads(kp2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(15, 2) px -> torso quad (shoulders, hips) and legs quad (hips, knees), (4, 2) each."""
    k = np.asarray(kp2d, np.float32)
    upper = np.stack([k[L_SH], k[R_SH], k[R_HIP], k[L_HIP]])
    lower = np.stack([k[L_HIP], k[R_HIP], k[R_KN], k[L_KN]])
    return upper, lower


def observe_detection(image: np.ndarray, kp2d: np.ndarray, kp3d: np.ndarray) -> PersonObservation:
    """A real person: (15, 2) px keypoints, (15, 3) m 3D keypoints (world keypoints, or the
    regressor's skeleton), pixels from `image` (RGB)."""
    uq, lq = clothing_quads(kp2d)
    H, W = image.shape[:2]
    return PersonObservation(np.asarray(kp2d, np.float32), np.asarray(kp3d, np.float32), (W, H),
                             region_pixels(image, uq), region_pixels(image, lq))
