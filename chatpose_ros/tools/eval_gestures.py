"""How well gestures are read over time (core.gestures): synthetic sequences with known timing and
real motion capture.

    python -m chatpose_ros.tools.eval_gestures [--n 200] [--json build/eval_gestures.json]

Synthetic: a person in front of a pinhole camera (640x480, focal 500 px) whose arms wave, rise,
point, swing while walking, gesture at the chest, scratch the head..., observed at an uneven frame
rate with dropped frames, pixel noise and keypoints not seen (NaN), as COCO-17 keypoints plus 3D
joints. Two splits draw the timings, amplitudes, rates and noise from disjoint ranges (`RANGES`):
the rules' thresholds were set on "tune" only; "heldout" is reported. A positive sequence counts as
found when the gesture is reported on the right side while it is made (waving: from its start to
0.3 s after it ends); a negative sequence counts as a false alarm when the gesture is reported at
any time. Pointing sequences also check the object the ray meets (3D and in the image).

Motion capture: CMU 01_01, 01_03 (playground) and Boxing_Toes (boxing), retargeted to SMPL
(models.default.offline.mocap), seen from four sides at 4 m and 15 Hz with keypoint noise: nobody
waves in them, so every waving report is false; hand_raised and pointing are counted too (the
clips may really contain them: not scored).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatpose_ros.core.gestures import GESTURE_NAMES, GestureConfig, GestureRecogniser, Target, pointed_at
from chatpose_ros.core.scene import COCO17
from chatpose_ros.core.smpl_layout import SMPL_JOINT_NAMES
from chatpose_ros.core.types import PersonPose

log = logging.getLogger(__name__)

F_PX, CX, CY = 500.0, 320.0, 240.0
UPPER_ARM_M, FOREARM_M = 0.28, 0.26
# the body at rest, camera optical axes (x right, y down, z forward), pelvis-relative, facing the
# camera (the person's left is the image's right)
_REST = {
    "pelvis": (0.0, 0.0, 0.0), "left_hip": (0.09, 0.05, 0.0), "right_hip": (-0.09, 0.05, 0.0),
    "spine1": (0.0, -0.1, 0.0), "spine2": (0.0, -0.25, 0.0), "spine3": (0.0, -0.38, 0.0),
    "left_knee": (0.1, 0.45, 0.0), "right_knee": (-0.1, 0.45, 0.0), "left_ankle": (0.1, 0.85, 0.0),
    "right_ankle": (-0.1, 0.85, 0.0), "left_foot": (0.1, 0.88, -0.1), "right_foot": (-0.1, 0.88, -0.1),
    "neck": (0.0, -0.55, 0.0), "left_collar": (0.07, -0.5, 0.0), "right_collar": (-0.07, -0.5, 0.0),
    "head": (0.0, -0.65, 0.0), "left_shoulder": (0.18, -0.5, 0.0), "right_shoulder": (-0.18, -0.5, 0.0),
    "nose": (0.0, -0.68, -0.1), "left_eye": (0.035, -0.71, -0.08), "right_eye": (-0.035, -0.71, -0.08),
    "left_ear": (0.075, -0.69, 0.0), "right_ear": (-0.075, -0.69, 0.0),
}

# (tune range, held-out ranges): the held-out values lie outside the tuning range
RANGES: dict[str, tuple[tuple[float, float], tuple[tuple[float, float], ...]]] = {
    "wave_hz": ((1.2, 2.2), ((0.9, 1.2), (2.2, 3.0))),
    "wave_amp_deg": ((25.0, 40.0), ((17.0, 25.0), (40.0, 55.0))),
    "rate_hz": ((13.0, 17.0), ((9.0, 12.0), (20.0, 30.0))),
    "jitter": ((0.0, 0.3), ((0.3, 0.5),)),
    "kp_drop": ((0.0, 0.05), ((0.05, 0.15),)),
    "frame_drop": ((0.0, 0.05), ((0.05, 0.1),)),
    "noise_px": ((1.0, 2.5), ((2.5, 4.0),)),
    "joint_noise_m": ((0.0, 0.015), ((0.015, 0.03),)),  # 3D joints, each axis
    "yaw_deg": ((-20.0, 20.0), ((-45.0, -20.0), (20.0, 45.0))),
    "distance_m": ((2.5, 3.5), ((1.8, 2.5), (3.5, 6.0))),
    "hold_s": ((1.0, 3.0), ((0.7, 1.0), (3.0, 5.0))),
    "brief_s": ((0.15, 0.3), ((0.05, 0.15), (0.3, 0.38))),
    "gesture_hz": ((1.0, 2.0), ((0.6, 1.0), (2.0, 3.0))),
    "sweep_deg_s": ((100.0, 160.0), ((80.0, 100.0), (160.0, 220.0))),
}
KINDS = ("wave", "raise", "point", "raise_brief", "point_brief", "walk_swing", "chest_gesture", "low_wave",
         "scratch_head", "point_sweep", "idle")
# labels: gesture -> True (made), False (not made), absent = not scored (e.g. a wave's hand is raised)
LABELS: dict[str, dict[str, bool]] = {
    "wave": {"waving": True, "pointing": False},
    "raise": {"waving": False, "hand_raised": True, "pointing": False},
    "point": {"waving": False, "hand_raised": False, "pointing": True},
    "raise_brief": {"waving": False, "hand_raised": False, "pointing": False},
    "point_brief": {"waving": False, "hand_raised": False, "pointing": False},
    "walk_swing": {"waving": False, "hand_raised": False, "pointing": False},
    "chest_gesture": {"waving": False, "hand_raised": False, "pointing": False},
    "low_wave": {"waving": False, "hand_raised": False, "pointing": False},
    "scratch_head": {"waving": False, "pointing": False},
    "point_sweep": {"waving": False, "hand_raised": False, "pointing": False},
    "idle": {"waving": False, "hand_raised": False, "pointing": False},
}


@dataclass(frozen=True)
class Scenario:
    kind: str
    side: str
    p: dict
    seed: int
    start: float = 1.0  # when the gesture starts (s)
    end: float = 0.0    # when it ends (s)
    total: float = 0.0  # sequence length (s)
    objects: tuple = field(default=())  # pointing: ((name, (3,) position m), ...), the first is the one pointed at

    @property
    def labels(self) -> dict[str, bool]:
        """gesture -> made or not; a gesture left out is not scored (e.g. the raised hand of a wave,
        or of an arm pointing up with the wrist above the nose)."""
        labels = dict(LABELS[self.kind])
        if self.kind in ("point", "point_brief") and -math.cos(math.radians(self.p["point_el"])) * 0.54 > 0.13:
            labels.pop("hand_raised", None)
        return labels


def _draw(rng: np.random.Generator, split: str, name: str) -> float:
    tune, held = RANGES[name]
    lo, hi = tune if split == "tune" else held[int(rng.integers(len(held)))]
    return float(rng.uniform(lo, hi))


def make_scenarios(split: str, n: int, seed: int = 0) -> list[Scenario]:
    """`n` scenarios of every kind in turn, parameters drawn from `split`'s ranges ("tune" or
    "heldout")."""
    if split not in ("tune", "heldout"):
        raise ValueError(f"unknown split {split!r}")
    rng = np.random.default_rng(seed + (0 if split == "tune" else 1_000_003))
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        p = {k: _draw(rng, split, k) for k in RANGES}
        side = "left" if rng.random() < 0.5 else "right"
        pre = float(rng.uniform(0.5, 1.5))
        dur = {"wave": float(rng.uniform(2.5, 4.0)), "raise": p["hold_s"], "point": p["hold_s"],
               "raise_brief": p["brief_s"], "point_brief": p["brief_s"]}.get(kind, float(rng.uniform(2.5, 4.0)))
        objects = ()
        if kind in ("point", "point_brief"):
            az = float(rng.uniform(-70, 70))  # of the arm, from straight outward (toward the camera: negative)
            el = float(rng.uniform(60, 120))  # from hanging down
            p.update(point_az=az, point_el=el)
            objects = _objects(rng, p, side)
        out.append(Scenario(kind, side, p, seed=int(rng.integers(2**31)), start=pre, end=pre + dur,
                            total=pre + dur + 1.0, objects=objects))
    return out


def _yaw(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])


def _dir(side: str, from_down_deg: float, az_deg: float = 0.0) -> np.ndarray:
    """Unit vector (body axes) `from_down_deg` from hanging down, toward the outside of `side`,
    turned by `az_deg` toward the camera (positive: away from it)."""
    s = 1.0 if side == "left" else -1.0
    a, b = math.radians(from_down_deg), math.radians(az_deg)
    return np.array([s * math.sin(a) * math.cos(b), math.cos(a), math.sin(a) * math.sin(b)])


def _pelvis(sc: Scenario) -> np.ndarray:
    return np.array([0.0, 0.25, sc.p["distance_m"]])


def _objects(rng: np.random.Generator, p: dict, side: str) -> tuple:
    body = _yaw(p["yaw_deg"])
    pel = np.array([0.0, 0.25, p["distance_m"]])
    sh = pel + body @ np.array(_REST[f"{side}_shoulder"])
    d = body @ _dir(side, p["point_el"], p["point_az"])
    target = sh + d * float(rng.uniform(1.0, 3.0))
    objs = [("target", target)]
    for k in range(2):  # distractors at least 30 degrees off the ray
        while True:
            cand = sh + body @ _dir(side, float(rng.uniform(40, 140)), float(rng.uniform(-80, 80))) * float(rng.uniform(1.0, 3.0))
            v = cand - sh
            if math.degrees(math.acos(np.clip(v @ d / np.linalg.norm(v), -1, 1))) > 30 and cand[2] > 0.5:
                objs.append((f"other{k}", cand))
                break
    return tuple((n, tuple(float(x) for x in v)) for n, v in objs)


def _arm(sc: Scenario, side: str, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(elbow - shoulder, wrist - elbow) in body axes at time t."""
    rest = (UPPER_ARM_M * _dir(side, 5.0), FOREARM_M * _dir(side, 3.0))
    if side != sc.side:
        return rest
    p, k = sc.p, sc.kind
    active = sc.start <= t < sc.end
    s = 1.0 if side == "left" else -1.0
    ph = 2 * math.pi * p["gesture_hz"] * t
    if k == "walk_swing":  # arms swing forward and back while walking (the whole sequence)
        a = 25.0 * math.sin(2 * math.pi * 0.9 * t)
        up = UPPER_ARM_M * np.array([s * 0.1, math.cos(math.radians(a)), math.sin(math.radians(a))])
        return up, FOREARM_M * np.array([s * 0.1, math.cos(math.radians(2 * a)), math.sin(math.radians(2 * a))])
    if not active:
        return rest
    if k in ("wave", "low_wave"):
        up_deg = 110.0 if k == "wave" else 25.0
        theta = math.radians(10.0 + p["wave_amp_deg"] * math.sin(2 * math.pi * p["wave_hz"] * (t - sc.start)))
        fore_up = np.array([s * math.sin(theta), -math.cos(theta), -0.1])
        if k == "low_wave":  # forearm forward at the waist, swinging sideways
            fore_up = np.array([s * math.sin(theta), 0.0, -math.cos(theta)])
        return UPPER_ARM_M * _dir(side, up_deg), FOREARM_M * fore_up / np.linalg.norm(fore_up)
    if k in ("raise", "raise_brief"):
        d = _dir(side, 172.0)
        return UPPER_ARM_M * d, FOREARM_M * d
    if k in ("point", "point_brief"):
        d = _dir(side, p["point_el"], p["point_az"])
        return UPPER_ARM_M * d, FOREARM_M * d
    if k == "point_sweep":  # a straight arm sweeping to and fro over 120 degrees (showing round)
        u = (t - sc.start) * p["sweep_deg_s"] / 120.0
        d = _dir(side, 90.0, 60.0 - 120.0 * abs(u - 2.0 * math.floor(u / 2.0 + 0.5)))
        return UPPER_ARM_M * d, FOREARM_M * d
    if k == "chest_gesture":  # forearms in front of the chest, moving sideways as when talking
        fore = np.array([s * 0.8 * math.sin(ph), -0.2, -1.0])
        return UPPER_ARM_M * _dir(side, 20.0, -60.0), FOREARM_M * fore / np.linalg.norm(fore)
    if k == "scratch_head":  # hand at the side of the head, small fast movements
        fore = np.array([s * (-0.35 + 0.05 * math.sin(3 * ph)), -1.0, 0.0])
        return UPPER_ARM_M * _dir(side, 100.0), FOREARM_M * fore / np.linalg.norm(fore)
    return rest


def _project(x: np.ndarray) -> np.ndarray:
    return np.stack([F_PX * x[..., 0] / x[..., 2] + CX, F_PX * x[..., 1] / x[..., 2] + CY], axis=-1)


def body_points(sc: Scenario, t: float) -> dict[str, np.ndarray]:
    """Every body point (m, camera frame) of the scenario's person at time t."""
    body = _yaw(sc.p["yaw_deg"])
    pel = _pelvis(sc)
    pts = {n: np.array(v, np.float64) for n, v in _REST.items()}
    for side in ("left", "right"):
        up, fore = _arm(sc, side, t)
        pts[f"{side}_elbow"] = pts[f"{side}_shoulder"] + up
        pts[f"{side}_wrist"] = pts[f"{side}_elbow"] + fore
        pts[f"{side}_hand"] = pts[f"{side}_wrist"] + 0.3 * fore
    return {n: pel + body @ v for n, v in pts.items()}


def person_at(sc: Scenario, t: float, rng: np.random.Generator) -> PersonPose:
    """The scenario's person at time t as the tracker would give it: COCO-17 keypoints (px, with
    noise, NaN where dropped), SMPL joints (pelvis-relative) and translation (m)."""
    pts = body_points(sc, t)
    kp = _project(np.stack([pts[n] for n in COCO17]))
    kp = kp + rng.normal(0.0, sc.p["noise_px"], kp.shape)
    kp[rng.random(len(COCO17)) < sc.p["kp_drop"]] = np.nan
    pel = pts["pelvis"]
    joints = np.stack([pts[n] - pel for n in SMPL_JOINT_NAMES])
    joints = (joints + rng.normal(0.0, sc.p["joint_noise_m"], joints.shape)).astype(np.float32)
    seen = np.isfinite(kp).all(1)
    lo, hi = np.nanmin(kp[seen], 0), np.nanmax(kp[seen], 0)
    box = (float(lo[0] - 10), float(lo[1] - 20), float(hi[0] + 10), float(hi[1] + 10))
    return PersonPose(theta=np.zeros(72, np.float32), joints=joints, translation=pel.astype(np.float32), box=box,
                      keypoints_2d=kp.astype(np.float32), track_id=1)


def frame_times(sc: Scenario, rng: np.random.Generator) -> list[float]:
    """Observation times: an uneven rate with dropped frames."""
    out, t = [], 0.0
    while t < sc.total:
        if rng.random() >= sc.p["frame_drop"]:
            out.append(t)
        t += (1.0 / sc.p["rate_hz"]) * float(rng.uniform(1 - sc.p["jitter"], 1 + sc.p["jitter"]))
    return out


@dataclass
class Outcome:
    kind: str
    side: str
    reported: dict  # gesture -> list of report times (right side)
    latency: dict   # gesture -> s from the gesture's start to the first report, or None
    target_3d: object = None
    target_2d: object = None


def run_scenario(sc: Scenario, config: GestureConfig | None = None) -> Outcome:
    rng = np.random.default_rng(sc.seed)
    rec = GestureRecogniser(config)
    reported: dict[str, list[float]] = {g: [] for g in GESTURE_NAMES}
    t3 = t2 = None
    for t in frame_times(sc, rng):
        (person,) = rec.observe(t, [person_at(sc, t, rng)])
        for g in person.gestures:
            if g.side == sc.side:
                reported[g.name].append(t)
                if g.name == "pointing" and sc.objects and sc.start <= t < sc.end:
                    t3 = _target(g, sc, metric=True)
                    t2 = _target(g, sc, metric=False)
    latency = {g: (min(ts) - sc.start if ts else None) for g, ts in reported.items()}
    return Outcome(sc.kind, sc.side, reported, latency, t3, t2)


def _target(g, sc: Scenario, metric: bool):
    targets = []
    for name, pos in sc.objects:
        if metric:
            targets.append(Target(name, position=pos))
        else:
            c = _project(np.asarray(pos))
            half = 0.15 * F_PX / pos[2]  # a 30 cm object
            targets.append(Target(name, box=(c[0] - half, c[1] - half, c[0] + half, c[1] + half)))
    if not metric:
        g = dataclasses.replace(g, ray_metric=False)
    hit = pointed_at(g, targets, max_angle_deg=15.0 if metric else 10.0)
    return None if hit is None else hit[0]


def _found(sc: Scenario, out: Outcome, gesture: str) -> bool:
    ts = out.reported[gesture]
    if sc.labels.get(gesture):
        return any(sc.start <= t <= sc.end + 0.3 for t in ts)
    return bool(ts)


def score(scenarios: list[Scenario], outcomes: list[Outcome]) -> dict:
    """Precision, recall, counts and median latency per gesture; pointing target accuracy."""
    res: dict[str, dict] = {}
    for g in GESTURE_NAMES:
        tp = fp = fn = tn = 0
        lat = []
        fps: dict[str, int] = {}
        for sc, out in zip(scenarios, outcomes):
            label = sc.labels.get(g)
            if label is None:
                continue
            hit = _found(sc, out, g)
            if label and hit:
                tp += 1
                if out.latency[g] is not None:
                    lat.append(out.latency[g])
            elif label:
                fn += 1
            elif hit:
                fp += 1
                fps[sc.kind] = fps.get(sc.kind, 0) + 1
            else:
                tn += 1
        res[g] = {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
                  "tp": tp, "fp": fp, "fn": fn, "tn": tn, "false_alarms_by_kind": fps,
                  "median_latency_s": float(np.median(lat)) if lat else None}
    pts = [(o.target_3d, o.target_2d) for sc, o in zip(scenarios, outcomes) if sc.kind == "point" and o.reported["pointing"]]
    res["pointing_target"] = {"n": len(pts), "correct_3d": sum(a == "target" for a, _ in pts),
                              "correct_2d": sum(b == "target" for _, b in pts)}
    return res


# --------------------------------------------------------------------------- motion capture
MOCAP_CLIPS = ("01_01", "01_03", "Boxing_Toes")


def mocap_people(stem: str, yaw_deg: float, rate_hz: float = 15.0, noise_px: float = 2.0, seed: int = 0,
                 distance_m: float = 4.0) -> list[tuple[float, PersonPose]]:
    """A mocap clip (retargeted to SMPL, 30 fps) seen from `yaw_deg`, as tracked people: (t, PersonPose)
    with the default profile's 15 keypoints (px, with noise) and the SMPL joints."""
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.perception.keypoints import smpl_to_keypoints

    ms = load_mocap("all", fps=30.0)
    sel = np.array([s == stem for s in ms.source])
    joints, rot = ms.joints[sel].astype(np.float64), ms.rotmats[sel].astype(np.float64)
    kp3 = smpl_to_keypoints(joints, rot)  # (N, 15, 3) canonical: x left, y up, z forward
    to_cam = np.diag([1.0, -1.0, -1.0]) @ _yaw(yaw_deg)  # facing the camera, then turned
    pel = np.array([0.0, 0.2, distance_m])
    rng = np.random.default_rng(seed)
    step = max(1, int(round(30.0 / rate_hz)))
    out = []
    for i in range(0, len(joints), step):
        j = joints[i] @ to_cam.T
        kp = _project(kp3[i] @ to_cam.T + pel) + rng.normal(0, noise_px, (kp3.shape[1], 2))
        lo, hi = kp.min(0), kp.max(0)
        out.append((i / 30.0, PersonPose(theta=np.zeros(72, np.float32), joints=j.astype(np.float32),
                                         translation=pel.astype(np.float32), keypoints_2d=kp.astype(np.float32),
                                         box=(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), track_id=1)))
    return out


def mocap_rates(config: GestureConfig | None = None, yaws: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)) -> dict:
    """Per clip: seconds seen, share of observations with each gesture reported, and waving episodes."""
    res = {}
    for stem in MOCAP_CLIPS:
        n = 0
        counts = {g: 0 for g in GESTURE_NAMES}
        episodes = 0
        secs = 0.0
        for k, yaw in enumerate(yaws):
            rec = GestureRecogniser(config)
            seq = mocap_people(stem, yaw, seed=k)
            waving = False
            for t, p in seq:
                (q,) = rec.observe(t, [p])
                names = {g.name for g in q.gestures}
                for g in names:
                    counts[g] += 1
                episodes += int("waving" in names and not waving)
                waving = "waving" in names
                n += 1
            secs += seq[-1][0] if seq else 0.0
        res[stem] = {"seconds": round(secs, 1), "observations": n, "views": len(yaws),
                     "share": {g: round(c / max(1, n), 4) for g, c in counts.items()}, "waving_episodes": episodes}
    return res


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=220, help="synthetic sequences per split")
    ap.add_argument("--split", default="heldout", choices=("tune", "heldout"))
    ap.add_argument("--seed", type=int, default=0, help="draws of the sequences (the ranges stay those of the split)")
    ap.add_argument("--no-mocap", action="store_true", help="skip the motion capture clips")
    ap.add_argument("--json", default="build/eval_gestures.json", help="where to write the figures ('' = nowhere)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scenarios = make_scenarios(args.split, args.n, args.seed)
    outcomes = [run_scenario(sc) for sc in scenarios]
    figures = {"split": args.split, "n": args.n, "seed": args.seed, "synthetic": score(scenarios, outcomes)}
    print(f"# gestures over time: {args.n} synthetic sequences ({args.split} ranges, seed {args.seed}), "
          f"`python -m chatpose_ros.tools.eval_gestures --n {args.n} --split {args.split} --seed {args.seed}`")
    for g in GESTURE_NAMES:
        r = figures["synthetic"][g]
        print(f"{g:12s} precision {_f(r['precision'])}  recall {_f(r['recall'])}  (tp {r['tp']}, fp {r['fp']}, "
              f"fn {r['fn']}, tn {r['tn']})  median latency {_f(r['median_latency_s'])} s  "
              f"false alarms {r['false_alarms_by_kind']}")
    pt = figures["synthetic"]["pointing_target"]
    print(f"pointing target: {pt['correct_3d']}/{pt['n']} right in 3D, {pt['correct_2d']}/{pt['n']} in the image")
    if not args.no_mocap:
        figures["mocap"] = mocap_rates()
        for stem, r in figures["mocap"].items():
            print(f"mocap {stem:12s} {r['seconds']:6.1f} s x {r['views']} views: share of observations "
                  + ", ".join(f"{g} {v:.4f}" for g, v in r["share"].items()) + f"; waving episodes {r['waving_episodes']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
