"""Gestures over time from tracked poses (pure: no ROS, no model): waving, a hand raised, pointing.

    recogniser = GestureRecogniser()
    people = recogniser.observe(t, people)      # each frame: PersonPose list -> same list, `gestures` set
    recogniser.for_box(box)                     # a person of another frame (a query's scene) -> gestures / None
    gesture_flags(recogniser.for_box(box))      # {"waving": True, "hand_raised": False, "pointing": False} / {}
    pointed_at(gesture, targets)                # what a pointing gesture's ray meets

Each person in view keeps a short history (GestureConfig.history_s) of their 2D keypoints and,
where the pipeline gives them, their 3D joints, with the time of each observation (seconds, any
monotonic clock: the node passes the frame's arrival time). Histories follow people by their
track id when they have one, else by box overlap with the history's last box (greedy, IoU >=
`match_iou`). Every rule reads timestamps, never frame counts, so an uneven or low frame rate
changes only how finely a gesture is seen; a keypoint not seen (NaN) leaves a gap that rules
bridge when it is short (`max_gap_s`), and a held gesture survives its rule failing on a frame or
two (`glitch_s`: a detector's bad frame) but ends at once when the latest frame fails it.

Units: 2D positions are divided by the person's torso length in pixels (mid-shoulders to
mid-hips, the median over the history; box height / 3 while the torso is not seen), so the
thresholds hold at any distance. "Up" is against the image's y axis.

Rules, per side (the person's own left / right, as in the keypoint names):
- waving: within the last `wave_window_s`, while the wrist is above the shoulder (by `wave_min_up`
  torso lengths; the latest such stretch, gaps up to `max_gap_s` bridged), its sideways offset
  from the shoulder swinging back and forth: at least `wave_min_half_swings` swings (3 = 1.5 cycles) each
  of at least `wave_min_swing` torso lengths peak to peak (hysteresis: noise smaller than a
  swing does not count; in far, noisy people a swing must also be `wave_noise_swings` times the
  keypoint noise measured on the shoulder), while the shoulder itself stays (its image x, a steady drift such as
  walking taken out, varies less than `wave_max_sway` of the wrist's: a body swinging under a
  hand that holds on is no wave). Frequency = swings / 2 / their duration.
- hand_raised: the wrist above the head (nose, else eyes / ears, else the shoulders +
  `head_above_shoulder` torso lengths) held for `hold_s` without a sample saying otherwise.
- pointing: the arm straight (elbow angle >= `point_elbow_deg`, from the 3D joints when there are
  any, else in the image) and held away from the body (>= `point_min_elevation_deg` from the
  torso's downward axis, and at most `point_max_elevation_deg`: straight up is a raised hand),
  its direction steady (within `point_steady_deg` of the latest) for `hold_s`. The ray
  runs from the shoulder through the wrist: in 3D (m, camera optical frame: x right, y down, z
  forward; the pose's joints + translation) and in the image (px).
"""
from __future__ import annotations

import collections
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .geometry_np import box_iou
from .placement import KEYPOINT_NAMES_BY_COUNT
from .smpl_layout import SMPL_JOINT_NAMES
from .types import PersonPose

Box = tuple[float, float, float, float]
Vec3 = tuple[float, float, float]
SIDES = ("left", "right")
GESTURE_NAMES = ("waving", "hand_raised", "pointing")
SEEN_3D = 0.3  # joint_confidence from which a 3D joint counts as seen (else the arm is read in the image)

# keypoints read, in this order, in every sample ((12, 2) px, NaN where not seen)
_KP = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
       "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip")
_K = {n: i for i, n in enumerate(_KP)}
_HEAD = [_K[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
_J = {n: SMPL_JOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                                              "left_wrist", "right_wrist", "left_hip", "right_hip")}


@dataclass(frozen=True)
class GestureConfig:
    """Thresholds of the rules (see the module docstring). Lengths in torso lengths, times in s."""

    history_s: float = 3.0           # observations kept per person
    forget_s: float = 2.0            # a history not observed for this long is dropped
    match_iou: float = 0.3           # an untracked person continues the history whose last box overlaps this much
    max_gap_s: float = 0.4           # longer without a usable sample: a held gesture starts again
    glitch_s: float = 0.2            # a held gesture survives its rule failing for at most this long
    hold_s: float = 0.5              # hand_raised and pointing: held at least this long
    wave_window_s: float = 2.0       # waving is read over this much of the latest history
    wave_min_up: float = 0.25        # wrist at least this far above the shoulder line while waving (about the chin)
    wave_min_swing: float = 0.2      # peak-to-peak sideways swing of the wrist (from the shoulder)
    wave_min_half_swings: int = 3    # swings within the window (3 = 1.5 cycles)
    wave_max_hz: float = 5.0         # faster "swings" are keypoint noise
    wave_max_sway: float = 0.5       # the shoulder moving (detrended) more than this share of the wrist: body sway
    wave_noise_swings: float = 4.0   # a swing is at least this many times the keypoint noise (wrist - shoulder)
    head_above_shoulder: float = 0.45  # where the head is when no head keypoint is seen
    raise_margin: float = 0.0        # hand_raised: wrist above the head by this much
    point_elbow_deg: float = 150.0   # pointing: elbow at least this straight
    point_min_elevation_deg: float = 40.0  # arm at least this far from hanging down along the torso
    point_max_elevation_deg: float = 140.0  # ... and not straight up (a raised hand)
    point_steady_deg: float = 15.0   # the pointing direction stays this close to the latest while held

    def __post_init__(self) -> None:
        if min(self.history_s, self.hold_s, self.wave_window_s, self.wave_min_swing, self.max_gap_s) <= 0:
            raise ValueError("GestureConfig: times and the swing must be > 0")
        if self.wave_window_s > self.history_s or self.hold_s > self.history_s:
            raise ValueError("GestureConfig: wave_window_s and hold_s must fit in history_s")


@dataclass(frozen=True)
class Gesture:
    """One gesture a person is making now.

    Attributes:
        name: "waving", "hand_raised" or "pointing".
        side: the hand, "left" or "right" (the person's own).
        confidence: in [0, 1].
        start: when it began (s, the clock of the observations).
        duration: s from `start` to the latest observation.
        frequency_hz: waving: swings per second / 2; 0.0 otherwise.
        ray_origin: pointing: (3,) shoulder position (m, camera optical frame), None when the pose has
            no 3D joints; pelvis-relative (translation unknown) when `ray_metric` is False.
        ray_direction: pointing: (3,) unit vector shoulder -> wrist (camera optical frame), or None.
        ray_metric: the 3D ray is placed in the camera frame (the pose had a translation).
        ray_origin_px, ray_direction_px: pointing: the ray in the image (px; unit vector), or None.
    """

    name: str
    side: str
    confidence: float
    start: float
    duration: float
    frequency_hz: float = 0.0
    ray_origin: Vec3 | None = None
    ray_direction: Vec3 | None = None
    ray_metric: bool = False
    ray_origin_px: tuple[float, float] | None = None
    ray_direction_px: tuple[float, float] | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "side": self.side, "confidence": round(float(self.confidence), 3),
               "duration_s": round(float(self.duration), 3)}
        if self.name == "waving":
            out["frequency_hz"] = round(float(self.frequency_hz), 2)
        if self.ray_direction is not None:
            out["ray_origin_m" if self.ray_metric else "ray_origin_pelvis_m"] = [round(float(v), 3) for v in self.ray_origin]
            out["ray_direction"] = [round(float(v), 4) for v in self.ray_direction]
        if self.ray_direction_px is not None:
            out["ray_origin_px"] = [round(float(v), 1) for v in self.ray_origin_px]
            out["ray_direction_px"] = [round(float(v), 4) for v in self.ray_direction_px]
        return out


@dataclass(frozen=True)
class _Sample:
    t: float
    kp: np.ndarray            # (13, 2) px, NaN where not seen (order _KP)
    torso: float              # px, NaN when the shoulders and hips were not all seen
    box: Box
    joints: np.ndarray | None  # (24, 3) m, camera optical axes (+ translation when known), or None
    metric: bool              # joints include the translation
    seen3d: np.ndarray | None  # (24,) bool: the joint was seen (joint_confidence >= SEEN_3D), None = unknown
    # what the rules read from this sample alone, computed once (a sample stays in the history
    # for history_s: read again at every frame); key -> value
    memo: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class _History:
    key: int
    track_id: int
    samples: collections.deque = field(default_factory=collections.deque)
    gestures: tuple[Gesture, ...] = ()
    starts: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def last(self) -> _Sample:
        return self.samples[-1]


def _sample(t: float, person: PersonPose) -> _Sample:
    kp = np.full((len(_KP), 2), np.nan)
    names = KEYPOINT_NAMES_BY_COUNT.get(int(np.shape(person.keypoints_2d)[0])) if person.keypoints_2d is not None else None
    if names is not None:
        src = np.asarray(person.keypoints_2d, np.float64)
        for i, n in enumerate(_KP):
            if n in names:
                kp[i] = src[names.index(n)]
    sh = 0.5 * (kp[_K["left_shoulder"]] + kp[_K["right_shoulder"]])
    hip = 0.5 * (kp[_K["left_hip"]] + kp[_K["right_hip"]])
    torso = float(np.linalg.norm(sh - hip))
    joints, metric = None, False
    j = np.asarray(person.joints, np.float64)
    if np.all(np.isfinite(j)) and np.abs(j).max() > 0:  # a pose without 3D joints carries zeros
        joints = j.copy()
        tr = person.translation
        if tr is not None and np.all(np.isfinite(tr)):
            joints += np.asarray(tr, np.float64)
            metric = True
    seen = None if person.joint_confidence is None else np.asarray(person.joint_confidence) >= SEEN_3D
    return _Sample(t=float(t), kp=kp, torso=torso if np.isfinite(torso) and torso > 1.0 else float("nan"),
                   box=tuple(float(v) for v in person.box), joints=joints, metric=metric, seen3d=seen)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-9 or nb < 1e-9:
        return float("nan")
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb)))))


class GestureRecogniser:
    """Histories of the people in view and their gestures (see the module docstring).

    Not thread-safe: one caller (the tracker beside the model). `observe` in time order."""

    def __init__(self, config: GestureConfig | None = None, max_people: int = 32) -> None:
        self.config = config or GestureConfig()
        self.max_people = int(max_people)
        self._histories: list[_History] = []
        self._next_key = 0
        self.now = -math.inf  # time of the latest observation

    def reset(self) -> None:
        self._histories = []
        self.now = -math.inf

    # ------------------------------------------------------------------ input
    def observe(self, t: float, people: Sequence[PersonPose]) -> list[PersonPose]:
        """One frame's people seen at time `t` (s): extend their histories, read their gestures.

        Returns `people` in order, each with `gestures` set (a person without a box, e.g. a pose
        made from text, is returned unchanged). A `t` earlier than the latest is ignored (returns
        the people unchanged): observations must come in time order."""
        if t < self.now:
            return list(people)
        self.now = float(t)
        cfg = self.config
        self._histories = [h for h in self._histories if t - h.last.t <= cfg.forget_s]
        claimed: set[int] = set()
        assigned: list[_History | None] = [None] * len(people)
        order = sorted(range(len(people)), key=lambda i: people[i].track_id < 0)  # tracked people first
        for i in order:
            p = people[i]
            if p.box is None or p.generated:
                continue
            h = next((h for h in self._histories if p.track_id >= 0 and h.track_id == p.track_id
                      and h.key not in claimed), None)
            if h is None:
                free = [h for h in self._histories if h.key not in claimed and (h.track_id < 0 or h.track_id == p.track_id)]
                best = max(free, key=lambda h: box_iou(h.last.box, p.box), default=None)
                if best is not None and box_iou(best.last.box, p.box) >= cfg.match_iou:
                    h = best
            if h is None:
                h = _History(key=self._next_key, track_id=p.track_id)
                self._next_key += 1
                self._histories.append(h)
            if p.track_id >= 0:
                h.track_id = p.track_id
            claimed.add(h.key)
            h.samples.append(_sample(t, p))
            while h.samples and t - h.samples[0].t > cfg.history_s:
                h.samples.popleft()
            h.gestures = self._read(h)
            assigned[i] = h
        if len(self._histories) > self.max_people:  # the least recently seen go first
            self._histories.sort(key=lambda h: h.last.t)
            self._histories = self._histories[-self.max_people:]
        return [p if h is None else dataclasses.replace(p, gestures=h.gestures) for p, h in zip(people, assigned)]

    # ------------------------------------------------------------------ queries
    def for_track(self, track_id: int) -> tuple[Gesture, ...] | None:
        """The current gestures of the history that follows `track_id`; None when no history
        follows it (or it was not seen within `max_gap_s` of the latest observation)."""
        h = next((h for h in self._histories if h.track_id == track_id and track_id >= 0), None)
        return None if h is None or self.now - h.last.t > self.config.max_gap_s else h.gestures

    def for_box(self, box: Box, max_age_s: float | None = None) -> tuple[Gesture, ...] | None:
        """The current gestures of the person whose latest box overlaps `box` most (IoU >=
        `match_iou`), seen at most `max_age_s` (default `forget_s`) before the latest
        observation: how a person of another frame (a query's scene) finds their history.
        () = watched, no gesture now; None = nobody watched there (gestures unknown)."""
        age = self.config.forget_s if max_age_s is None else float(max_age_s)
        live = [h for h in self._histories if self.now - h.last.t <= age]
        best = max(live, key=lambda h: box_iou(h.last.box, box), default=None)
        if best is None or box_iou(best.last.box, box) < self.config.match_iou:
            return None
        return best.gestures

    # ------------------------------------------------------------------ rules
    def _read(self, h: _History) -> tuple[Gesture, ...]:
        samples = list(h.samples)
        torsos = [s.torso for s in samples if np.isfinite(s.torso)]
        boxes = [(s.box[3] - s.box[1]) / 3.0 for s in samples]
        unit = float(np.median(torsos)) if torsos else max(1.0, float(np.median(boxes)))
        found: list[Gesture] = []
        for side in SIDES:
            for g in (self._waving(samples, side, unit), self._raised(samples, side, unit),
                      self._pointing(samples, side, unit)):
                if g is not None:
                    found.append(g)
        # a gesture that goes on keeps the start it had (a window slides past the real start)
        starts = {}
        out = []
        for g in found:
            k = (g.name, g.side)
            start = min(g.start, h.starts.get(k, g.start))
            starts[k] = start
            out.append(dataclasses.replace(g, start=start, duration=h.last.t - start))
        h.starts = starts
        return tuple(out)

    def _series(self, samples: list[_Sample], side: str, unit: float) -> tuple[np.ndarray, ...]:
        """(N,) times, (N,) sideways offset of the wrist from the shoulder, (N,) its height above
        the shoulder and (N,) the shoulder's own image x, in torso lengths, for the samples where
        both were seen."""
        w, s = _K[f"{side}_wrist"], _K[f"{side}_shoulder"]
        t, x, up, sx = [], [], [], []
        for smp in samples:
            d = smp.kp[w] - smp.kp[s]
            if np.all(np.isfinite(d)):
                t.append(smp.t)
                x.append(d[0] / unit)
                up.append(-d[1] / unit)
                sx.append(smp.kp[s, 0] / unit)
        return np.asarray(t), np.asarray(x), np.asarray(up), np.asarray(sx)

    def _waving(self, samples: list[_Sample], side: str, unit: float) -> Gesture | None:
        cfg = self.config
        now = samples[-1].t
        t, x, up, sx = self._series([s for s in samples if now - s.t <= cfg.wave_window_s], side, unit)
        if t.size == 0 or now - t[-1] > cfg.max_gap_s:
            return None
        # only the latest stretch with the hand up counts (not the swing of the arm coming up)
        start = self._held(list(zip(t.tolist(), (up >= cfg.wave_min_up).tolist())))
        if start is None:
            return None
        keep = t >= start
        t, x, sx = t[keep], x[keep], sx[keep]
        if t.size < 2 * cfg.wave_min_half_swings:
            return None
        if _detrended_std(t, sx) > cfg.wave_max_sway * _detrended_std(t, x):
            return None  # the body sways under a still hand (hanging, swinging): not a wave
        # keypoint noise (from the shoulder's frame-to-frame jitter) must not make swings of its own
        swing = max(cfg.wave_min_swing, cfg.wave_noise_swings * keypoint_noise(sx) * math.sqrt(2.0))
        extremes = swing_extremes(t, x, swing)
        swings = len(extremes) - 1
        if swings < cfg.wave_min_half_swings:
            return None
        span = extremes[-1][0] - extremes[0][0]
        freq = swings / (2.0 * span) if span > 0 else math.inf
        if freq > cfg.wave_max_hz:
            return None
        amp = float(np.median([abs(b[1] - a[1]) for a, b in zip(extremes, extremes[1:])]))
        conf = min(1.0, 0.5 + 0.1 * (swings - cfg.wave_min_half_swings) + 0.25 * min(1.0, amp / swing - 1.0))
        return Gesture("waving", side, round(conf, 4), start=float(extremes[0][0]), duration=0.0,
                       frequency_hz=float(freq))

    def _head_y(self, smp: _Sample, unit: float) -> float:
        """Image row of the head: the nose, else the mean of the eyes / ears seen, else the
        shoulders + head_above_shoulder torso lengths (NaN when none of them was seen)."""
        nose = smp.kp[_K["nose"], 1]
        if np.isfinite(nose):
            return float(nose)
        head = smp.kp[_HEAD, 1]
        head = head[np.isfinite(head)]
        if head.size:
            return float(head.mean())
        sh = smp.kp[[_K["left_shoulder"], _K["right_shoulder"]], 1]
        sh = sh[np.isfinite(sh)]
        return float(sh.mean()) - self.config.head_above_shoulder * unit if sh.size else float("nan")

    def _held(self, flags: list[tuple[float, bool]]) -> float | None:
        """Start time of the run of True flags that reaches the latest sample ((t, flag) in time
        order; unseen samples are left out), or None when the latest is False. The run ends where
        two True samples are more than `max_gap_s` apart or a False stretch lasts more than
        `glitch_s` (a single bad frame of a detector does not end a held gesture)."""
        if not flags or not flags[-1][1]:
            return None
        start = last_true = flags[-1][0]
        for t, flag in reversed(flags[:-1]):
            if last_true - t > (self.config.max_gap_s if flag else self.config.glitch_s):
                break
            if flag:
                start = last_true = t
        return start

    def _raised(self, samples: list[_Sample], side: str, unit: float) -> Gesture | None:
        cfg = self.config
        w = _K[f"{side}_wrist"]
        flags, heights = [], []
        for smp in samples:
            head = self._head_y(smp, unit)
            if np.isfinite(smp.kp[w, 1]) and np.isfinite(head):
                above = (head - smp.kp[w, 1]) / unit
                flags.append((smp.t, bool(above > cfg.raise_margin)))
                heights.append(above)
        start = self._held(flags)
        if start is None or samples[-1].t - flags[-1][0] > cfg.max_gap_s:
            return None
        held = flags[-1][0] - start
        if held < cfg.hold_s:
            return None
        recent = [hgt for (t, _), hgt in zip(flags, heights) if t >= start]
        conf = min(1.0, 0.6 + 0.4 * min(1.0, float(np.median(recent)) / 0.5)) * min(1.0, 0.8 + 0.2 * held / cfg.hold_s / 2)
        return Gesture("hand_raised", side, round(conf, 4), start=start, duration=0.0)

    def _arm(self, smp: _Sample, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(shoulder, elbow, wrist, torso-down vector) of one side, 3D when the sample has joints
        else 2D px; None when not seen."""
        arm = [_J[f"{side}_shoulder"], _J[f"{side}_elbow"], _J[f"{side}_wrist"]]
        if smp.joints is not None and (smp.seen3d is None or bool(smp.seen3d[arm].all())):
            j = smp.joints
            down = 0.5 * (j[_J["left_hip"]] + j[_J["right_hip"]]) - 0.5 * (j[_J["left_shoulder"]] + j[_J["right_shoulder"]])
            return j[_J[f"{side}_shoulder"]], j[_J[f"{side}_elbow"]], j[_J[f"{side}_wrist"]], down
        k = smp.kp
        pts = k[_K[f"{side}_shoulder"]], k[_K[f"{side}_elbow"]], k[_K[f"{side}_wrist"]]
        if not all(np.all(np.isfinite(p)) for p in pts):
            return None
        down = 0.5 * (k[_K["left_hip"]] + k[_K["right_hip"]]) - 0.5 * (k[_K["left_shoulder"]] + k[_K["right_shoulder"]])
        if not np.all(np.isfinite(down)):
            down = np.array([0.0, 1.0])  # image down
        return pts[0], pts[1], pts[2], down

    def _arm_pointing(self, smp: _Sample, side: str) -> tuple[bool, np.ndarray] | None:
        """(the arm of `side` points in this sample: straight and raised enough, its unit shoulder-to-wrist
        direction), None when the arm was not seen."""
        cfg = self.config
        arm = self._arm(smp, side)
        if arm is None:
            return None
        sh, el, wr, down = arm
        straight = _angle_deg(sh - el, wr - el)
        elevation = _angle_deg(wr - sh, down)
        ok = bool(straight >= cfg.point_elbow_deg and cfg.point_min_elevation_deg <= elevation <= cfg.point_max_elevation_deg)
        return ok, (wr - sh) / max(1e-9, float(np.linalg.norm(wr - sh)))

    def _pointing(self, samples: list[_Sample], side: str, unit: float) -> Gesture | None:
        cfg = self.config
        flags, dirs = [], []
        for smp in samples:
            key = ("pointing", side)
            if key not in smp.memo:
                smp.memo[key] = self._arm_pointing(smp, side)
            if smp.memo[key] is None:
                continue
            ok, direction = smp.memo[key]
            flags.append((smp.t, ok))
            dirs.append(direction)
        start = self._held(flags)
        if start is None or samples[-1].t - flags[-1][0] > cfg.max_gap_s:
            return None
        ref = np.mean(dirs[-3:], axis=0)  # the latest direction (a few samples: less noise)
        for (t, _), d in zip(reversed(flags), reversed(dirs)):  # steady: the run ends where the direction moved
            if t < start:
                break
            if _angle_deg(d, ref) > cfg.point_steady_deg:
                start = t + 1e-9
                break
        run = [(t, d) for (t, _), d in zip(flags, dirs) if t >= start]
        held = run[-1][0] - run[0][0] if run else 0.0
        if held < cfg.hold_s:
            return None
        start = run[0][0]
        o3 = d3 = o2 = d2 = None
        recent = [s for s in samples if s.t >= start]
        arm = [_J[f"{side}_shoulder"], _J[f"{side}_wrist"]]
        js = [s for s in recent if s.joints is not None and (s.seen3d is None or bool(s.seen3d[arm].all()))]
        if js:
            d = np.mean([(s.joints[_J[f"{side}_wrist"]] - s.joints[_J[f"{side}_shoulder"]])
                         / max(1e-9, float(np.linalg.norm(s.joints[_J[f"{side}_wrist"]] - s.joints[_J[f"{side}_shoulder"]])))
                         for s in js[-5:]], axis=0)
            o3 = tuple(float(v) for v in js[-1].joints[_J[f"{side}_shoulder"]])
            d3 = tuple(float(v) for v in d / max(1e-9, float(np.linalg.norm(d))))
        for smp in reversed(recent):  # the image ray of the latest sample where both joints were seen
            sh, wr = smp.kp[_K[f"{side}_shoulder"]], smp.kp[_K[f"{side}_wrist"]]
            if np.all(np.isfinite(sh)) and np.all(np.isfinite(wr)) and np.linalg.norm(wr - sh) > 1e-6:
                o2 = (float(sh[0]), float(sh[1]))
                d2 = tuple(float(v) for v in (wr - sh) / float(np.linalg.norm(wr - sh)))
                break
        conf = min(1.0, 0.6 + 0.4 * min(1.0, held / (2 * cfg.hold_s)))
        return Gesture("pointing", side, round(conf, 4), start=start, duration=0.0, ray_origin=o3, ray_direction=d3,
                       ray_metric=bool(js and js[-1].metric), ray_origin_px=o2, ray_direction_px=d2)


def gesture_flags(gestures: tuple[Gesture, ...] | None) -> dict[str, bool]:
    """What a question can check: gesture name -> made now (either hand), for every name of
    GESTURE_NAMES, from `for_box` / `for_track`; {} when unknown (None: nobody was watched)."""
    if gestures is None:
        return {}
    made = {g.name for g in gestures}
    return {name: name in made for name in GESTURE_NAMES}


def keypoint_noise(x: np.ndarray) -> float:
    """Per-sample noise (standard deviation) of a keypoint coordinate series that moves smoothly
    ((N,), N >= 3): from the median absolute second difference (robust; motion at the frame rate
    barely contributes). 0.0 when too short."""
    if x.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(x, 2))) / math.sqrt(6.0))


def _detrended_std(t: np.ndarray, x: np.ndarray) -> float:
    """Standard deviation of `x` about its least-squares line over `t` (steady drift, e.g. walking,
    taken out)."""
    if t.size < 3:
        return 0.0
    a = np.vstack([t - t.mean(), np.ones_like(t)]).T
    coef, *_ = np.linalg.lstsq(a, x, rcond=None)
    return float(np.std(x - a @ coef))


def swing_extremes(t: np.ndarray, x: np.ndarray, swing: float) -> list[tuple[float, float]]:
    """Turning points (t, x) of the signal `x` ((N,) over times `t`) with hysteresis: a turning
    point counts once the signal has come back from it by at least `swing`. The list holds the
    first turning point, every later one, and the latest point once it is `swing` past the last
    one; consecutive entries differ by at least `swing`, so len - 1 = completed swings."""
    if t.size == 0:
        return []
    lo = hi = (float(t[0]), float(x[0]))
    extremes: list[tuple[float, float]] = []
    direction = 0
    cand = lo
    for ti, xi in zip(t.tolist(), x.tolist()):
        if direction == 0:
            if xi < lo[1]:
                lo = (ti, xi)
            if xi > hi[1]:
                hi = (ti, xi)
            if xi - lo[1] >= swing:
                extremes, direction, cand = [lo], 1, (ti, xi)
            elif hi[1] - xi >= swing:
                extremes, direction, cand = [hi], -1, (ti, xi)
        elif direction * (xi - cand[1]) > 0:
            cand = (ti, xi)
        elif direction * (cand[1] - xi) >= swing:
            extremes.append(cand)
            direction, cand = -direction, (ti, xi)
    if direction != 0 and abs(cand[1] - extremes[-1][1]) >= swing:
        extremes.append(cand)
    return extremes


@dataclass(frozen=True)
class Target:
    """Something a ray may meet: `key` (the caller's: a body id, an object label and index...),
    its position (3,) m in the camera optical frame and / or its box (xyxy px)."""

    key: object
    position: Vec3 | None = None
    box: Box | None = None


def pointed_at(gesture: Gesture, targets: Iterable[Target], max_angle_deg: float = 15.0) -> tuple[object, float] | None:
    """(key, angle in degrees) of the target the pointing `gesture` meets best, or None.

    In 3D (the gesture's metric ray and a target's position): the angle between the ray and the
    line from its origin to the target. Else in the image: 0 when the 2D ray crosses the target's
    box, else the smallest angle to its centre or a corner. Targets behind the ray (more than 90
    degrees) never count; of those within `max_angle_deg`, the smallest angle wins, ties going to
    the nearer one along the ray."""
    best = None
    for tg in targets:
        ang, dist = math.inf, math.inf
        if gesture.ray_metric and gesture.ray_direction is not None and tg.position is not None:
            v = np.asarray(tg.position, np.float64) - np.asarray(gesture.ray_origin, np.float64)
            ang, dist = _angle_deg(np.asarray(gesture.ray_direction), v), float(np.linalg.norm(v))
        elif gesture.ray_direction_px is not None and tg.box is not None:
            o, d = np.asarray(gesture.ray_origin_px), np.asarray(gesture.ray_direction_px)
            x0, y0, x1, y1 = tg.box
            if x0 <= o[0] <= x1 and y0 <= o[1] <= y1:
                continue  # the pointer's own box (or one around it)
            hit = _ray_box(o, d, tg.box)
            pts = np.array([[0.5 * (x0 + x1), 0.5 * (y0 + y1)], [x0, y0], [x1, y0], [x0, y1], [x1, y1]])
            angs = [_angle_deg(d, p - o) for p in pts]
            ang = 0.0 if hit is not None else float(np.nanmin(angs))
            dist = hit if hit is not None else float(np.linalg.norm(pts[0] - o))
        if not np.isfinite(ang) or ang > min(90.0, max_angle_deg):
            continue
        if best is None or (ang, dist) < (best[1], best[2]):
            best = (tg.key, ang, dist)
    return None if best is None else (best[0], float(best[1]))


def place_ray(gesture: Gesture, person: PersonPose) -> Gesture:
    """`gesture` with its 3D ray starting at `person`'s shoulder as the person is placed now (the
    ROS layer places people again with the camera's intrinsics after the gesture was read):
    metric when the person has a translation, pelvis-relative otherwise."""
    if gesture.ray_direction is None:
        return gesture
    sh = np.asarray(person.joints, np.float64)[_J[f"{gesture.side}_shoulder"]]
    tr = person.translation
    if tr is None or not np.all(np.isfinite(tr)):
        return dataclasses.replace(gesture, ray_origin=tuple(float(v) for v in sh), ray_metric=False)
    return dataclasses.replace(gesture, ray_origin=tuple(float(v) for v in sh + np.asarray(tr, np.float64)), ray_metric=True)


def _ray_box(o: np.ndarray, d: np.ndarray, box: Box) -> float | None:
    """Distance along the 2D ray (origin o, unit direction d) to where it enters `box`, or None."""
    lo, hi = np.array(box[:2], np.float64), np.array(box[2:], np.float64)
    t0, t1 = 0.0, math.inf
    for a in range(2):
        if abs(d[a]) < 1e-12:
            if not lo[a] <= o[a] <= hi[a]:
                return None
            continue
        ta, tb = (lo[a] - o[a]) / d[a], (hi[a] - o[a]) / d[a]
        t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
    return t0 if t0 <= t1 else None
