"""Person attributes from COCO-17 keypoints and pixels: clothing colours, facing, posture,
objects held / next to. Pure functions on numpy arrays (no model, no ROS).

Every attribute carries a confidence in [0, 1]; an attribute whose keypoints were not seen is
left out rather than guessed. Image conventions as in `core.scene`: x right, y down, pixels.
"""
from __future__ import annotations

import math

import numpy as np

from chatpose_ros.core.scene import COCO17, Attribute, ObjectRelation, SceneObject
from chatpose_ros.perception import colours

_I = {name: i for i, name in enumerate(COCO17)}
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = (_I[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))
L_SH, R_SH, L_EL, R_EL, L_WR, R_WR = (_I[n] for n in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"))
L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN = (_I[n] for n in (
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"))

SEEN_SCORE = 0.3  # a keypoint counts as seen for an attribute at or above this confidence

# Colour: mean CIE Lab of the region against the named-colour prototypes of perception.colours.
COLOUR_REGION_SHRINK = 0.2     # shrink the torso / leg quad towards its centre (skin, background)
COLOUR_MAX_PIXELS = 400
COLOUR_MIN_PIXELS = 12         # fewer pixels than this: no colour attribute
CHEST_DEPTH_PER_SHOULDER_WIDTH = 0.8  # upper colour without hips: this deep below the shoulders

# Facing: the signed shoulder width (left shoulder right of the right shoulder = chest to the
# camera) divided by the torso length.
FACING_FRONT_RATIO = 0.25      # |ratio| above this: "camera" or "away"
FACING_PROFILE_NOSE = 0.15     # profile: nose offset from the shoulder midpoint / torso length
FACE_CUE_WEIGHT = 0.5          # share of the facing confidence from the face / ear cue
EAR_ONLY_CONFIDENCE = 0.5      # profile read from one ear only (nose unseen)

# Posture from 2D geometry (angles in degrees from the image vertical; drops are how far a joint lies
# below the hips, in torso lengths).
LYING_TORSO_DEG = 60.0         # torso (mid-shoulder -> mid-hip) further from vertical: lying
SITTING_THIGH_DEG = 55.0       # thigh (hip -> knee) further from vertical: sitting
SITTING_KNEE_DROP = 0.45       # knees less than this below the hips (thighs level or pointing at the camera):
                               # sitting; standing knees lie 0.6-1.0 below them
KNEE_WEAK_SCORE = 0.2          # a knee counts for the knee-height cue at this confidence (seated knees in dark
                               # clothes score low); its confidence scales the posture's
LEG_BELOW_KNEE = 0.3           # the box goes on this far below a knee level with the hips (the shins): else
                               # the knee may be a guess at a cut image edge, and says nothing
SITTING_ANKLE_DROP = 1.0       # thighs pointing at the camera (image length under SITTING_THIGH_RATIO) and ankles
                               # less than this below the hips: a low seat or a squat (facing the camera, seated
                               # on chairs 1.1-1.4, squatting 0.9): no call
SITTING_THIGH_RATIO = 0.45     # thigh image length under this fraction of the torso length: pointing at the camera
CROUCH_KNEE_DEG = 110.0        # knee angle (hip-knee-ankle) under this with hips low: crouching
CROUCH_HIP_ANKLE_RATIO = 0.6   # hip-to-ankle height under this fraction of the torso length (seated people
                               # facing the camera come down to 0.7)
STANDING_KNEE_DEG = 150.0      # knee angle over this with the thigh upright: standing
SITTING_CONFIDENCE = 0.8       # thigh geometry alone (foreshortening also looks like sitting)
STANDING_NO_SHINS_CONFIDENCE = 0.6  # upright thighs, shins unseen

# Relations to objects (distances in units of the person's torso length, or box height / 3).
HOLD_DISTANCE = 0.35           # wrist within this distance of the object box: holding
NEXT_TO_DISTANCE = 1.5         # box gap within this: next to
HOLD_DISTANCE_PENALTY = 0.5    # holding confidence falls by this share at HOLD_DISTANCE
TORSO_PER_BOX_HEIGHT = 1 / 3.0  # torso length estimate from the box when shoulders/hips unseen


def _seen(scores: np.ndarray, *idx: int) -> bool:
    return all(scores[i] >= SEEN_SCORE for i in idx)


def _mid(kp: np.ndarray, a: int, b: int) -> np.ndarray:
    return 0.5 * (kp[a] + kp[b])


def torso_length(kp: np.ndarray, scores: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Mid-shoulder to mid-hip distance (px), or a third of the box height when not seen."""
    if _seen(scores, L_SH, R_SH, L_HIP, R_HIP):
        return float(np.linalg.norm(_mid(kp, L_SH, R_SH) - _mid(kp, L_HIP, R_HIP))) + 1e-6
    return max(box[3] - box[1], 1.0) * TORSO_PER_BOX_HEIGHT


def _angle_from_vertical(a: np.ndarray, b: np.ndarray) -> float:
    d = b - a
    return math.degrees(math.atan2(abs(float(d[0])), abs(float(d[1])) + 1e-9))


def _joint_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def clothing_colours(image: np.ndarray, kp: np.ndarray, scores: np.ndarray) -> dict[str, Attribute]:
    """upper_colour (shoulder-hip quad; the chest below the shoulders when the hips are not
    seen) and lower_colour (hip-knee quad) of one person.

    image: (H, W, 3) uint8 RGB; kp: (17, 2) px COCO-17; scores: (17,). Confidence: the
    softmax share of the nearest named colour (colours' prototypes and temperature),
    times the mean confidence of the quad's keypoints."""
    out: dict[str, Attribute] = {}
    quads = {"upper_colour": (L_SH, R_SH, R_HIP, L_HIP), "lower_colour": (L_HIP, R_HIP, R_KN, L_KN)}
    protos = colours.colour_prototypes_lab()
    for name, idx in quads.items():
        quad = kp[list(idx)]
        if not _seen(scores, *idx):
            if name != "upper_colour" or not _seen(scores, L_SH, R_SH):
                continue
            # hips unseen (close-up): the chest below the shoulders, as deep as they are wide
            width = float(np.linalg.norm(kp[L_SH] - kp[R_SH]))
            down = np.array([0.0, CHEST_DEPTH_PER_SHOULDER_WIDTH * width], np.float32)
            quad = np.stack([kp[L_SH], kp[R_SH], kp[R_SH] + down, kp[L_SH] + down])
            idx = (L_SH, R_SH)
        px = colours.region_pixels(image, quad, shrink=COLOUR_REGION_SHRINK, max_pixels=COLOUR_MAX_PIXELS)
        if len(px) < COLOUR_MIN_PIXELS:
            continue
        import cv2

        lab = cv2.cvtColor(px.reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
        mean = np.array([lab[:, 0].mean() * (100.0 / 255.0), lab[:, 1].mean() - 128.0, lab[:, 2].mean() - 128.0])
        logits = -np.linalg.norm(protos - mean, axis=1) / colours.COLOUR_NAME_TEMPERATURE
        p = np.exp(logits - logits.max())
        p /= p.sum()
        best = int(np.argmax(p))
        conf = float(p[best] * np.mean(scores[list(idx)]))
        out[name] = Attribute(colours.COLOUR_NAMES[best], round(min(1.0, conf), 3))
    return out


def facing(kp: np.ndarray, scores: np.ndarray, box: tuple[float, float, float, float]) -> Attribute | None:
    """Which way the person faces: "camera", "away", "left" or "right" (image left / right).

    Chest to the camera puts the left shoulder on the image right. A small signed shoulder
    width means a profile: the nose (or the visible ear) says which side."""
    if not _seen(scores, L_SH, R_SH):
        return None
    torso = torso_length(kp, scores, box)
    ratio = float(kp[L_SH, 0] - kp[R_SH, 0]) / torso
    face_seen = float(max(scores[NOSE], 0.5 * (scores[L_EYE] + scores[R_EYE])))
    sh_conf = float(min(scores[L_SH], scores[R_SH]))
    if abs(ratio) >= FACING_FRONT_RATIO:
        value = "camera" if ratio > 0 else "away"
        # a face seen agrees with "camera"; ears seen without the face agree with "away"
        agree = face_seen if value == "camera" else 1.0 - face_seen
        conf = sh_conf * min(1.0, abs(ratio) / (2 * FACING_FRONT_RATIO)) * (1.0 - FACE_CUE_WEIGHT + FACE_CUE_WEIGHT * agree)
        return Attribute(value, round(float(conf), 3))
    mid_x = 0.5 * (kp[L_SH, 0] + kp[R_SH, 0])
    if scores[NOSE] >= SEEN_SCORE:
        offset = float(kp[NOSE, 0] - mid_x) / torso
        conf = float(scores[NOSE]) * min(1.0, abs(offset) / FACING_PROFILE_NOSE) * sh_conf
    elif max(scores[L_EAR], scores[R_EAR]) >= SEEN_SCORE:
        ear = L_EAR if scores[L_EAR] >= scores[R_EAR] else R_EAR
        # only the left ear seen: the right side of the head is away, the person faces image left
        offset = -1.0 if ear == L_EAR else 1.0
        conf = EAR_ONLY_CONFIDENCE * float(scores[ear]) * sh_conf
    else:
        return None
    return Attribute("left" if offset < 0 else "right", round(conf, 3))


def posture(kp: np.ndarray, scores: np.ndarray, box: tuple[float, float, float, float]) -> Attribute | None:
    """"standing", "sitting", "lying" or "crouching" from 2D keypoint geometry, or None when it
    cannot be told (the hips or a shoulder unseen, the legs unseen or ambiguous: no guess).

    kp: (17, 2) px COCO-17; scores: (17,); box: (x_min, y_min, x_max, y_max) px. Read in torso
    lengths (mid-shoulder to mid-hip, from the shoulders and hips seen): a torso far from vertical
    is lying (both shoulders and hips seen; else no call); hip-knee-ankle seen: a bent knee with
    the hips low is crouching, a straight leg with an upright thigh standing; knees seen level with
    the hips (thighs level or pointing at the camera) or a thigh far from vertical is sitting, a
    knee hanging below the hips standing; thighs pointing at the camera with the ankles close below
    the hips is a low seat or a squat (no call). Confidence: the mean confidence of the joints read, lowered
    for the weaker cues (SITTING_CONFIDENCE, STANDING_NO_SHINS_CONFIDENCE)."""
    shoulders = [i for i in (L_SH, R_SH) if scores[i] >= SEEN_SCORE]
    hips = [i for i in (L_HIP, R_HIP) if scores[i] >= SEEN_SCORE]
    if not shoulders or not hips:
        return None
    sh, hip = kp[shoulders].mean(0), kp[hips].mean(0)
    torso = float(np.linalg.norm(sh - hip)) + 1e-6
    torso_conf = float(np.mean(scores[[L_SH, R_SH, L_HIP, R_HIP]]))
    if _angle_from_vertical(sh, hip) > LYING_TORSO_DEG:
        # lying is read from the whole torso only: one shoulder against the mid-hip leans with the arm
        return Attribute("lying", round(torso_conf, 3)) if len(shoulders) == len(hips) == 2 else None
    knees = [k for k in (L_KN, R_KN) if scores[k] >= KNEE_WEAK_SCORE]
    full = [(h, k, a) for h, k, a in ((L_HIP, L_KN, L_AN), (R_HIP, R_KN, R_AN))
            if k in knees and scores[h] >= SEEN_SCORE and scores[a] >= SEEN_SCORE]
    if knees:
        leg_conf = float(np.mean(scores[knees]))
        conf = min(torso_conf, leg_conf)
        if full:
            knee_deg = float(np.mean([_joint_angle(kp[h], kp[k], kp[a]) for h, k, a in full]))
            hip_ankle = float(np.mean([kp[a, 1] - kp[h, 1] for h, _, a in full])) / torso
            thigh_up = all(_angle_from_vertical(kp[h], kp[k]) < SITTING_THIGH_DEG for h, k, _ in full)
            if knee_deg < CROUCH_KNEE_DEG and hip_ankle < CROUCH_HIP_ANKLE_RATIO:
                return Attribute("crouching", round(conf, 3))
            drop = float(np.mean([kp[k, 1] - kp[h, 1] for h, k, _ in full])) / torso
            if knee_deg > STANDING_KNEE_DEG and thigh_up and drop >= SITTING_KNEE_DROP:
                return Attribute("standing", round(conf, 3))
        drop = float(kp[knees, 1].mean() - hip[1]) / torso
        thigh_deg = max(_angle_from_vertical(hip, kp[k]) for k in knees)
        if drop < SITTING_KNEE_DROP or thigh_deg > SITTING_THIGH_DEG:
            # the shins must go on below the knees inside the box: a knee guessed at a cut image edge says nothing
            if box[3] - float(kp[knees, 1].max()) < LEG_BELOW_KNEE * torso:
                return None
            ankles = [a for a in (L_AN, R_AN) if scores[a] >= SEEN_SCORE]
            side_hip = {L_KN: L_HIP, R_KN: R_HIP}
            thigh = max(float(np.linalg.norm(kp[k] - (kp[side_hip[k]] if side_hip[k] in hips else hip)))
                        for k in knees) / torso
            if ankles and thigh < SITTING_THIGH_RATIO and float(kp[ankles, 1].max() - hip[1]) / torso < SITTING_ANKLE_DROP:
                return None  # a low seat or a squat: they look alike from the front
            return Attribute("sitting", round(SITTING_CONFIDENCE * conf, 3))
        # thighs hanging below the hips without a straight leg seen: most likely standing
        return Attribute("standing", round(STANDING_NO_SHINS_CONFIDENCE * conf, 3))
    return None


def _box_distance(p: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Distance (px) from a point to a box (0 inside)."""
    dx = max(box[0] - p[0], 0.0, p[0] - box[2])
    dy = max(box[1] - p[1], 0.0, p[1] - box[3])
    return math.hypot(dx, dy)


def _box_gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    dx = max(a[0] - b[2], 0.0, b[0] - a[2])
    dy = max(a[1] - b[3], 0.0, b[1] - a[3])
    return math.hypot(dx, dy)


def relations(people: list[tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]],
              objects: tuple[SceneObject, ...]) -> list[tuple[ObjectRelation, ...]]:
    """For each person (kp (17, 2) px, scores (17,), box), the objects held (box within
    HOLD_DISTANCE torso lengths of a seen wrist; each object goes to the nearest such person)
    and next to (box gap within NEXT_TO_DISTANCE torso lengths)."""
    out: list[list[ObjectRelation]] = [[] for _ in people]
    torsos = [torso_length(k, s, b) for k, s, b in people]
    for j, obj in enumerate(objects):
        best, best_d, best_conf = -1, math.inf, 0.0
        for i, (k, s, _) in enumerate(people):
            for w in (L_WR, R_WR):
                if s[w] < SEEN_SCORE:
                    continue
                d = _box_distance(k[w], obj.box) / torsos[i]
                if d < HOLD_DISTANCE and d < best_d:
                    best, best_d = i, d
                    best_conf = float(s[w]) * obj.score * (1.0 - HOLD_DISTANCE_PENALTY * d / HOLD_DISTANCE)
        if best >= 0:
            out[best].append(ObjectRelation(j, "holding", round(best_conf, 3)))
        for i, (_, _, b) in enumerate(people):
            if i == best:
                continue
            gap = _box_gap(b, obj.box) / torsos[i]
            if gap < NEXT_TO_DISTANCE:
                out[i].append(ObjectRelation(j, "next_to", round(obj.score * (1.0 - gap / NEXT_TO_DISTANCE), 3)))
    return [tuple(r) for r in out]
