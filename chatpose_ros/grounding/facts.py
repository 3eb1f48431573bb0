"""What can be measured of each person in view: the facts the scorers read (no ROS, no model).

    facts = measure(image, scene)   # one PersonFacts per scene person, same order

Regions follow the keypoints (COCO names; BlazePose layouts carry the same names): the torso quad
(shoulders, hips) is "upper", the legs (hips, knees, ankles) "lower"; where the keypoints were not
seen, a fixed part of the box stands in (and the fact says so). Each region's colours are a palette
(`colours.palette`), its pattern an edge measure (how much of the region is strong, aligned
edges: stripes). Gestures come from 2D keypoints in units of the torso length, as PoseScript's
pose codes do from 3D joints. Bare skin is measured on the forearms, the shins and the torso (what
tells a tee from a jacket, shorts from trousers, a bare chest from a shirt): the share of the part's
pixels close (CIEDE2000) to the person's own face colour, or inside a generic YCrCb skin range when
the face was not seen (then only a mostly bare part is reported: a grey image or odd light hides skin
from the generic range, and "covered" must not be read from that).
Distance to the camera is read from where each person meets the ground (`ground_contact`): lower in
the image is closer, for people on one floor seen from about head height. Box height, head or
shoulder size and the 3D fit's depth order people worse on the labelled photos (seated front rows,
standing back rows, people cut by the image edge: python -m chatpose_ros.perception.offline.eval_posture).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from chatpose_ros.core.scene import Scene, ScenePerson

from .colours import Palette, delta_e, is_monochrome, palette, rgb_to_lab

SEEN = 0.3                 # keypoint confidence at which a joint counts as seen
# the chest of a person whose shoulders were not seen, in head widths from the face centre (an adult's
# shoulders are about 2.5-3 head widths apart and their line about 1.5 below the nose)
EYES_TO_HEAD = 2.2          # head width / distance between the eyes
CHEST_HALF_WIDTH, CHEST_TOP, CHEST_BOTTOM = 1.0, 1.7, 3.2
HIDDEN_SHARE = 0.3          # a region this much covered by a nearer person's face or chest is hidden
NEARER = 0.03               # a person whose ground contact is this much lower (share of the image height) is in front
EDGE_SHARE = 0.01           # a box this close (share of the image size) to an image side touches it
SHRINK = 0.2               # region quads shrink towards their centre by this share (skin, background)
RAISED_MARGIN = 0.10       # wrist above the shoulder by this share of the torso: arm raised
HEAD_REACH = 0.45          # wrist within this share of the torso from nose / ears: hand at the head
HIP_REACH = 0.35           # wrist within this share of the torso from a hip: hand on the hip
LAP_REACH = 0.3            # both wrists this near (share of the torso) the hips' centre and each other: hands in the lap
CHEST_REACH = 0.2          # wrist this near (share of the torso) the torso's midline: a hand on the chest or belly
POINT_ELBOW_DEG = 150.0    # elbow straighter than this and the arm held out: pointing
POINT_REACH = 0.75         # wrist this far (share of the torso) sideways from the shoulder
SKIN_DE = 13.0             # CIEDE2000 (textiles) from the face colour under which a pixel is skin
SKIN_MIN_PIXELS = 12       # fewer pixels on a part: its skin was not measured
FACE_MIN_PIXELS = 6        # fewer face pixels: the generic skin range stands in
GENERIC_SKIN_TRUSTED = 0.55  # without a face colour, a part is only reported when at least this share is skin
# A standing person's height from the eyes to the soles, in units of what is seen of them: the widest
# spread of the face keypoints (nose, eyes, ears; about 0.15 m), the shoulder width (about 0.38 m), the
# torso length (about 0.5 m); the largest of these heights is used (turning and leaning only shorten them).
EYES_TO_SOLES = {"face": 10.0, "shoulders": 4.0, "torso": 3.0}
SEATED_EYES_SHARE = 0.7    # a seated or crouching person's eyes are this share of the standing height above the floor
HIDDEN_OVERLAP = 0.5       # a box ending inside another's, overlapping this share of its width: hidden behind it
BEHIND_SHARE = 0.1         # a hidden person meets the ground at least this share of the hider's box height above the
                           # hider's contact (about 0.5 m behind, for a camera at head height 5 m away)


@dataclass(frozen=True)
class PersonFacts:
    """One person's measurable facts.

    Attributes:
        index: index into Scene.people (and the pipeline's people list).
        box: (x_min, y_min, x_max, y_max) px.
        rank_left: 0 for the leftmost person (by box centre).
        depth: a distance proxy, larger is farther: how far above the image bottom the person meets the
            ground (`ground_contact`), in image heights (only compared between people of one frame).
        palettes: region ("upper", "lower") -> Palette, or None when the region was not seen.
        pattern: region -> strong, aligned edge share in [0, 1] (stripes, prints).
        gestures: gesture name -> True / False, absent when the joints were not seen.
        posture / facing: (value, confidence) from perception's attributes, or None.
        holding / near: COCO class -> confidence of the objects perception related to this person.
        skin: body part ("arms": forearms, "legs": shins, "torso") -> share of its pixels that are
            bare skin, in [0, 1]; absent when the part was not seen.
        monochrome: the whole picture is black and white (colours.is_monochrome): hues cannot be
            told, only grey levels.
        face: (p_male, face width px) read by a face model, or None when no face was read (not
            asked for, not seen, facing away).
        edges: the image sides ("left", "right", "top", "bottom") the box touches (the person is
            cut off there).
        hidden: the regions covered by the face or chest of a nearer person (`_behind`): their
            colours may be that person's.
    """

    index: int
    box: tuple[float, float, float, float]
    rank_left: int
    n: int
    depth: float
    palettes: dict[str, Palette | None]
    pattern: dict[str, float]
    gestures: dict[str, bool]
    posture: tuple[str, float] | None
    facing: tuple[str, float] | None
    holding: dict[str, float] = field(default_factory=dict)
    near: dict[str, float] = field(default_factory=dict)
    skin: dict[str, float] = field(default_factory=dict)
    monochrome: bool = False
    edges: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    face: tuple[float, float] | None = None

    @property
    def cx(self) -> float:
        return 0.5 * (self.box[0] + self.box[2])

    @property
    def height(self) -> float:
        return max(1.0, self.box[3] - self.box[1])

    @property
    def rank_right(self) -> int:
        return self.n - 1 - self.rank_left


def _kp(p: ScenePerson, name: str) -> np.ndarray | None:
    return p.seen_keypoint(name, SEEN)


def _torso(p: ScenePerson) -> float:
    ls, rs, lh, rh = (_kp(p, n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    if ls is not None and rs is not None and lh is not None and rh is not None:
        return float(np.linalg.norm(0.5 * (ls + rs) - 0.5 * (lh + rh))) or 1.0
    return max(1.0, (p.box[3] - p.box[1]) / 3.0)


def ground_contact(p: ScenePerson) -> float:
    """Image y (px) where the person meets the ground: the lowest of the ankles seen and the box bottom
    when an ankle is seen; else the lowest of the box bottom and the soles of a person of the size seen
    (the eye line plus EYES_TO_SOLES of the face spread, shoulder width or torso length; a SEATED_EYES_SHARE
    of it when the posture is sitting or crouching), so that a back row hidden below the chest by the row
    in front is placed behind it. The box bottom alone when neither face nor shoulders were seen."""
    ankles = [a for a in (_kp(p, "left_ankle"), _kp(p, "right_ankle")) if a is not None]
    if ankles:
        return max(float(p.box[3]), max(float(a[1]) for a in ankles))
    face = [v for v in (_kp(p, n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")) if v is not None]
    ls, rs, lh, rh = (_kp(p, n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    heights = []
    if len(face) >= 2:
        heights.append(EYES_TO_SOLES["face"] * max(float(np.linalg.norm(a - b)) for a in face for b in face))
    if ls is not None and rs is not None:
        heights.append(EYES_TO_SOLES["shoulders"] * float(np.linalg.norm(ls - rs)))
        if lh is not None and rh is not None:
            heights.append(EYES_TO_SOLES["torso"] * float(np.linalg.norm(0.5 * (ls + rs) - 0.5 * (lh + rh))))
    if not face or not heights:
        return float(p.box[3])
    post = p.attribute("posture")
    share = SEATED_EYES_SHARE if post is not None and post.value in ("sitting", "crouching") else 1.0
    eyes = min(float(v[1]) for v in face)
    return max(float(p.box[3]), eyes + share * max(heights))


def behind_hiders(people: tuple[ScenePerson, ...] | list[ScenePerson], contacts: list[float]) -> list[float]:
    """Ground contacts (px, `ground_contact` of each person) moved up behind whoever hides the person's
    lower body: no ankle seen, and the box ends inside another person's box (overlapping at least
    HIDDEN_OVERLAP of its width) whose ground contact is lower: then at least BEHIND_SHARE of the hider's
    box height above the hider's contact. Hiders are settled nearest first, so a back row ends behind
    the middle row that ends behind the front row."""
    out = list(contacts)
    for a in sorted(range(len(people)), key=lambda i: -contacts[i]):
        ax0, ay0, ax1, ay1 = people[a].box
        behind = out[a] - BEHIND_SHARE * (ay1 - ay0)
        for b, p in enumerate(people):
            bx0, _, bx1, by1 = p.box
            if b == a or not ay0 < by1 < ay1 or out[b] <= behind:
                continue
            if any(_kp(p, n) is not None for n in ("left_ankle", "right_ankle")):
                continue
            if min(ax1, bx1) - max(ax0, bx0) >= HIDDEN_OVERLAP * max(1.0, bx1 - bx0):
                out[b] = behind
    return out


def _head(p: ScenePerson) -> tuple[np.ndarray, float] | None:
    """The face's centre ((2,) px: the nose, else between the eyes / ears) and the head's width (px:
    the ears apart, else EYES_TO_HEAD x the eyes apart); None when neither pair was seen."""
    nose, le, re_, lear, rear = (_kp(p, n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))
    if lear is not None and rear is not None:
        width, mid = float(np.linalg.norm(lear - rear)), 0.5 * (lear + rear)
    elif le is not None and re_ is not None:
        width, mid = EYES_TO_HEAD * float(np.linalg.norm(le - re_)), 0.5 * (le + re_)
    else:
        return None
    if width < 4.0:
        return None
    return (nose if nose is not None else mid), width


def _front_rects(head: tuple[np.ndarray, float] | None,
                 chest: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
    """The rectangles (xyxy px) of what of a person hides people behind them: the face (`head`:
    their `_head`) and the chest (`chest`: their upper-region quads, region_quads(p, head)["upper"])."""
    rects = [tuple(float(v) for v in (*q.min(axis=0), *q.max(axis=0))) for q in chest]
    if head is not None:
        (cx, cy), w = head
        rects.append((cx - 0.5 * w, cy - 0.7 * w, cx + 0.5 * w, cy + 0.7 * w))
    return rects


def _behind(quad: np.ndarray, near: float, others: list[tuple[float, list[tuple[float, float, float, float]]]]) -> bool:
    """Is the region of points `quad` ((K, 2) px) of a person whose ground contact is at `near`
    (share of the image height: lower is nearer) covered, over HIDDEN_SHARE of its bounding box, by
    the face or chest of a person nearer by NEARER of the image height?"""
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    area = max(1.0, float((x1 - x0) * (y1 - y0)))
    for other_near, rects in others:
        if other_near <= near + NEARER:
            continue
        for a0, b0, a1, b1 in rects:
            inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
            if inter / area > HIDDEN_SHARE:
                return True
    return False


def _edges(box, width: int, height: int) -> tuple[str, ...]:
    """The image sides a box (xyxy px) touches, within EDGE_SHARE of the image's size."""
    mx, my = max(2.0, EDGE_SHARE * width), max(2.0, EDGE_SHARE * height)
    return tuple(side for side, cut in (("left", box[0] <= mx), ("right", box[2] >= width - mx),
                                         ("top", box[1] <= my), ("bottom", box[3] >= height - my)) if cut)


def _box_quad(box, y0: float, y1: float, x_share: float = 0.4) -> np.ndarray:
    x_min, y_min, x_max, y_max = box
    h, w, cx = y_max - y_min, x_max - x_min, 0.5 * (x_min + x_max)
    a, b = y_min + y0 * h, y_min + y1 * h
    half = 0.5 * x_share * w
    return np.array([[cx - half, a], [cx + half, a], [cx + half, b], [cx - half, b]], np.float32)


def region_quads(p: ScenePerson, head: tuple[np.ndarray, float] | None) -> dict[str, list[np.ndarray]]:
    """Region name -> quads ((4, 2) px) covering it; a fixed part of the box where the keypoints
    were not seen. `head`: the person's `_head(p)` (it places the chest when the shoulders were not seen)."""
    g = {n: _kp(p, n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee",
                                "right_knee", "left_ankle", "right_ankle")}
    quads: dict[str, list[np.ndarray]] = {"upper": [], "lower": []}
    ls, rs, lh, rh = g["left_shoulder"], g["right_shoulder"], g["left_hip"], g["right_hip"]
    if (ls is None) != (rs is None) and head is not None:  # one shoulder: the other mirrored about the face
        seen = ls if ls is not None else rs
        mirror = np.array([2.0 * head[0][0] - seen[0], seen[1]], np.float32)
        if abs(float(mirror[0] - seen[0])) >= 0.5 * head[1]:
            ls, rs = (seen, mirror) if ls is not None else (mirror, seen)
    if ls is not None and rs is not None and lh is not None and rh is not None:
        quads["upper"].append(np.stack([ls, rs, rh, lh]))
    elif ls is not None and rs is not None:
        down = np.array([0.0, 0.8 * max(8.0, float(np.linalg.norm(ls - rs)))], np.float32)
        quads["upper"].append(np.stack([ls, rs, rs + down, ls + down]))
    elif head is not None:  # shoulders unseen (a close-up, a crowd): the chest below the face
        (cx, cy), w = head
        quads["upper"].append(np.array([[cx - CHEST_HALF_WIDTH * w, cy + CHEST_TOP * w],
                                        [cx + CHEST_HALF_WIDTH * w, cy + CHEST_TOP * w],
                                        [cx + CHEST_HALF_WIDTH * w, cy + CHEST_BOTTOM * w],
                                        [cx - CHEST_HALF_WIDTH * w, cy + CHEST_BOTTOM * w]], np.float32))
    else:
        quads["upper"].append(_box_quad(p.box, 0.2, 0.45))
    for side in ("left", "right"):
        hip, knee, ankle = g[f"{side}_hip"], g[f"{side}_knee"], g[f"{side}_ankle"]
        for a, b in ((hip, knee), (knee, ankle)):
            if a is None or b is None:
                continue
            quads["lower"].append(_limb_quad(a, b, 0.22 * max(8.0, float(np.linalg.norm(b - a)))))
    if not quads["lower"]:
        if lh is not None and rh is not None and p.box[3] - max(lh[1], rh[1]) > 10:
            bottom = min(p.box[3], max(lh[1], rh[1]) + 1.2 * abs(float(lh[0] - rh[0])) + 10)
            quads["lower"].append(np.array([lh, rh, [rh[0], bottom], [lh[0], bottom]], np.float32))
        elif not p.truncated:
            quads["lower"].append(_box_quad(p.box, 0.6, 0.85))
    return quads


def _limb_quad(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    axis = b - a
    normal = np.array([-axis[1], axis[0]], np.float32) / max(1e-6, float(np.linalg.norm(axis))) * width
    return np.stack([a - normal, a + normal, b + normal, b - normal])


def skin_quads(p: ScenePerson) -> dict[str, list[np.ndarray]]:
    """Body part ("arms", "legs", "torso") -> quads ((4, 2) px) on the forearms (elbow to wrist),
    the shins (knee to ankle) and the torso; a part whose joints were not seen has none."""
    out: dict[str, list[np.ndarray]] = {"arms": [], "legs": [], "torso": []}
    for part, (j0, j1) in (("arms", ("elbow", "wrist")), ("legs", ("knee", "ankle"))):
        for side in ("left", "right"):
            a, b = _kp(p, f"{side}_{j0}"), _kp(p, f"{side}_{j1}")
            if a is not None and b is not None and float(np.linalg.norm(b - a)) >= 4.0:
                width = 0.18 * float(np.linalg.norm(b - a))
                out[part].append(_limb_quad(a + 0.15 * (b - a), b - 0.1 * (b - a), width))
    g = [_kp(p, n) for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip")]
    if all(v is not None for v in g):
        out["torso"].append(np.stack(g))
    return out


def face_colour(image: np.ndarray, p: ScenePerson) -> np.ndarray | None:
    """(3,) CIELAB median of the face between the eyes and the nose, or None when the face was not
    seen (back to the camera, eyes or nose missing)."""
    nose, le, re_ = _kp(p, "nose"), _kp(p, "left_eye"), _kp(p, "right_eye")
    if nose is None or le is None or re_ is None:
        return None
    eyes = float(np.linalg.norm(le - re_))
    if eyes < 3.0:
        return None
    c = (0.5 * (le + re_) + nose) / 2.0
    r = max(1, int(round(0.45 * eyes)))
    x, y = int(round(c[0])), int(round(c[1]))
    h, w = image.shape[:2]
    patch = image[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)].reshape(-1, 3)
    if len(patch) < FACE_MIN_PIXELS or not _generic_skin(np.median(patch, axis=0)[None].astype(np.uint8)).all():
        return None  # too small, or not skin-coloured (a mask, a blurred or shaded face): not a reference
    return np.median(rgb_to_lab(patch), axis=0)


def _generic_skin(px: np.ndarray) -> np.ndarray:
    """(N,) bool: (N, 3) uint8 RGB pixels inside a generic YCrCb skin range."""
    ycc = cv2.cvtColor(px.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.int32)
    y, cr, cb = ycc[:, 0], ycc[:, 1], ycc[:, 2]
    return (y > 40) & (cr >= 136) & (cr <= 175) & (cb >= 80) & (cb <= 128)


def skin_share(image: np.ndarray, mask: np.ndarray, face: np.ndarray | None) -> float | None:
    """Share of the masked pixels that are skin: near `face` ((3,) CIELAB) in CIEDE2000, or in a
    generic YCrCb skin range without one; None under SKIN_MIN_PIXELS pixels."""
    px = image[mask]
    if len(px) < SKIN_MIN_PIXELS:
        return None
    px = px[:: max(1, len(px) // 800)]
    if face is not None:
        return float((delta_e(rgb_to_lab(px), face[None]) < SKIN_DE).mean())
    return float(_generic_skin(px).mean())


def region_mask(shape: tuple[int, int], quads: list[np.ndarray], shrink: float = SHRINK) -> np.ndarray:
    """(H, W) bool mask of the union of quads, each shrunk towards its centre."""
    mask = np.zeros(shape, np.uint8)
    for q in quads:
        q = np.asarray(q, np.float32)
        q = q.mean(0) + (1.0 - shrink) * (q - q.mean(0))
        cv2.fillPoly(mask, [np.round(q).astype(np.int32)], 1)
    return mask.astype(bool)


def stripe_share(grey: np.ndarray, mask: np.ndarray) -> float:
    """Share of the region's pixels on strong edges, weighted by how aligned the edges are
    (structure-tensor coherence): high for stripes, lower for prints, near 0 for plain cloth."""
    if mask.sum() < 30:
        return 0.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)[mask]
    strong = mag > max(40.0, 0.5 * float(np.percentile(mag, 90)))
    jxx, jyy, jxy = (gx * gx)[mask].mean(), (gy * gy)[mask].mean(), (gx * gy)[mask].mean()
    coherence = float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / max(1e-6, jxx + jyy))
    return float(strong.mean()) * (0.5 + 0.5 * coherence)


def gestures(p: ScenePerson) -> dict[str, bool]:
    """Pose codes from 2D keypoints; a gesture is absent when its joints were not seen."""
    k = {n: _kp(p, n) for n in ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
                                "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip")}
    t = _torso(p)
    out: dict[str, bool] = {}
    raised = []
    for side in ("left", "right"):
        sh, el, wr = k[f"{side}_shoulder"], k[f"{side}_elbow"], k[f"{side}_wrist"]
        if sh is not None and wr is not None:
            raised.append(bool(wr[1] < sh[1] - RAISED_MARGIN * t))
        if sh is not None and el is not None and wr is not None:
            a, b = sh - el, wr - el
            ang = np.degrees(np.arccos(np.clip(a @ b / max(1e-6, np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)))
            out.setdefault("pointing", False)
            if ang > POINT_ELBOW_DEG and abs(float(wr[0] - sh[0])) > POINT_REACH * t:
                out["pointing"] = True
    if raised:
        out["arm_raised"] = any(raised)
    if len(raised) == 2:
        out["both_arms_raised"] = all(raised)
    heads = [h for h in (k["nose"], k["left_ear"], k["right_ear"]) if h is not None]
    wrists = [w for w in (k["left_wrist"], k["right_wrist"]) if w is not None]
    if heads and wrists:
        out["hand_at_head"] = any(float(np.linalg.norm(w - h)) < HEAD_REACH * t for w in wrists for h in heads)
    lw, rw, le, re_ = k["left_wrist"], k["right_wrist"], k["left_elbow"], k["right_elbow"]
    if lw is not None and rw is not None and le is not None and re_ is not None:
        out["arms_crossed"] = bool(float(np.linalg.norm(lw - re_)) < 0.4 * t and float(np.linalg.norm(rw - le)) < 0.4 * t)
    lh, rh = k["left_hip"], k["right_hip"]
    if lw is not None and rw is not None and lh is not None and rh is not None:
        hips = 0.5 * (lh + rh)  # both hands together at the hips' centre: in the lap (seated) or clasped in front
        out["hands_in_lap"] = bool(float(np.linalg.norm(lw - hips)) < LAP_REACH * t
                                   and float(np.linalg.norm(rw - hips)) < LAP_REACH * t
                                   and float(np.linalg.norm(lw - rw)) < LAP_REACH * t)
        out["hands_on_hips"] = bool(float(np.linalg.norm(lw - lh)) < HIP_REACH * t
                                    and float(np.linalg.norm(rw - rh)) < HIP_REACH * t and not out["hands_in_lap"])
    ls, rs = k["left_shoulder"], k["right_shoulder"]
    if wrists and ls is not None and rs is not None and lh is not None and rh is not None:
        top, bottom = 0.5 * (ls + rs), 0.5 * (lh + rh)  # a hand on the chest or belly: on the torso's midline
        out["hand_at_chest"] = any(_on_midline(w, top, bottom, t) for w in wrists)
    return out


def _on_midline(w: np.ndarray, top: np.ndarray, bottom: np.ndarray, torso: float) -> bool:
    """Is point `w` (px) on the torso, within CHEST_REACH torsos of the shoulder-to-hip midline and
    between the shoulders and the hips?"""
    axis = bottom - top
    u = float((w - top) @ axis) / max(1e-6, float(axis @ axis))
    off = float(np.linalg.norm(w - (top + u * axis)))
    return 0.1 <= u <= 1.0 and off < CHEST_REACH * torso


def _with_time(one_frame: dict[str, bool], flags: dict[str, bool]) -> dict[str, bool]:
    out = dict(one_frame)
    if "pointing" in flags and "pointing" in one_frame:
        # an arm held out straight in this frame is "pointing" and "arm_out" (one measure, two words: the
        # grounder reads "arm_out" as "pointing", ground.READ_AS); where tracking's pointing replaces it,
        # the frame's own measure stays under "arm_out"
        out["arm_out"] = one_frame["pointing"]
    for name, made in flags.items():
        out["arm_raised" if name == "hand_raised" else name] = made
    return out


def measure(image: np.ndarray, scene: Scene, over_time: list[dict[str, bool]] | None = None,
            faces: dict[int, tuple[float, float]] | None = None) -> list[PersonFacts]:
    """Facts of every person of `scene` measured on `image` ((H, W, 3) uint8 RGB).

    `over_time[i]`: gestures read over time by tracking ("waving", "hand_raised", "pointing" ->
    made now; core.gestures.gesture_flags), {} when the person was not watched: they replace the
    one-frame codes (a hand raised is "arm_raised"; waving exists only over time).
    `faces[i]`: (p_male, face width px) of the people whose face a face model read."""
    n = len(scene.people)
    if n == 0:
        return []
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    mono = is_monochrome(image)
    order = np.argsort([0.5 * (p.box[0] + p.box[2]) for p in scene.people], kind="stable")
    height = scene.image_size[1]
    contacts = behind_hiders(scene.people, [ground_contact(p) for p in scene.people])
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    out = []
    heads = [_head(q) for q in scene.people]
    all_quads = [region_quads(q, head) for q, head in zip(scene.people, heads)]
    fronts = [(float(contacts[j]) / max(1, height), _front_rects(heads[j], all_quads[j]["upper"]))
              for j in range(n)]
    for i, p in enumerate(scene.people):
        quads = all_quads[i]
        pals: dict[str, Palette | None] = {}
        pattern: dict[str, float] = {}
        hidden = []
        for region, qs in quads.items():
            if not qs:
                pals[region], pattern[region] = None, 0.0
                continue
            if _behind(np.concatenate(qs), fronts[i][0], [f for j, f in enumerate(fronts) if j != i]):
                hidden.append(region)  # a nearer person's face or chest covers this garment
            mask = region_mask(image.shape[:2], qs)
            pals[region] = palette(image[mask])
            pattern[region] = stripe_share(grey, mask)
        depth = (height - contacts[i]) / max(1, height)
        holding: dict[str, float] = {}
        near: dict[str, float] = {}
        for obj, rel in scene.objects_of(i):
            d = holding if rel.relation == "holding" else near
            d[obj.label] = max(d.get(obj.label, 0.0), float(rel.confidence))
        post = p.attribute("posture")
        facing = p.attribute("facing")
        face = face_colour(image, p)
        skin = {}
        for part, qs in skin_quads(p).items():
            share = skin_share(image, region_mask(image.shape[:2], qs, shrink=0.0), face) if qs else None
            if share is not None and (face is not None or share >= GENERIC_SKIN_TRUSTED):
                skin[part] = share  # the generic range misses skin in grey or odd light: only its "bare" counts
        out.append(PersonFacts(
            index=i, box=tuple(float(v) for v in p.box), rank_left=int(rank[i]), n=n, depth=depth,
            palettes=pals, pattern=pattern, gestures=_with_time(gestures(p), over_time[i] if over_time else {}),
            posture=None if post is None else (post.value, float(post.confidence)),
            facing=None if facing is None else (facing.value, float(facing.confidence)), holding=holding, near=near,
            skin=skin, face=None if faces is None else faces.get(i), monochrome=mono,
            edges=_edges(p.box, image.shape[1], image.shape[0]), hidden=tuple(hidden)))
    return out
