"""Follow the person a query chose from frame to frame (pure: no ROS, no model).

    tracker = PersonTracker()
    tracker.start(result.selected_person)        # after a query grounded somebody
    for frame in frames:
        person = tracker.update(pipeline.observe(frame))   # PersonPose with track_id, or None
        if tracker.lost: ...

Association cost of a candidate = 1 - IoU(box, predicted box), plus the mean 2D keypoint
distance in units of the box height, plus the appearance distance (`appearance_metric`: "cosine",
COSINE_SCALE * (1 - cosine) of the descriptors, or "l1", 4 x the mean absolute difference, the cost
before issue 23); the cheapest candidate under `max_cost` wins. The box is predicted with a
constant-velocity model of its centre.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from chatpose_ros.core.geometry import box_iou
from chatpose_ros.core.target_check import appearance_cosine, blend_appearance
from chatpose_ros.core.types import PersonPose

_ids = itertools.count(1)
UNKNOWN_KEYPOINT_COST = 0.5  # keypoint term of a candidate whose keypoints cannot be compared
COSINE_SCALE = 4.0  # appearance term per unit of (1 - cosine)
# A lost person is found again (reacquire) by appearance alone when a candidate's descriptor has at least this
# cosine with theirs: on vtest.avi's tuning stretch (frames 480-639, region histograms) a person's own
# descriptors within 3 s are at >= 0.80 in 95 % of pairs, neighbours (within two box heights) at a median
# of 0.62 and 0.91 at the 90th percentile: a high bar, missing some returns rather than taking a neighbour.
REACQUIRE_COSINE = 0.85
REACQUIRE_HEIGHT_RATIO = 1.4  # a reacquired box is at most this much taller or shorter than the lost one
REACQUIRE_REACH = 1.0  # ... and its centre within this many (lost box) heights of the lost box's centre,
REACQUIRE_SPEED = 0.1  # ... plus this many per update since the loss (a walker: about one height a second at 10 Hz)
APPEARANCE_METRICS = ("cosine", "l1")



class PersonTracker:
    """Single-target tracker of a chosen person.

    Args:
        max_misses: frames without a match after which the person is reported lost.
        max_cost: candidates costlier than this are not the tracked person. On vtest.avi frames
            548-596 (two pedestrians crossing, one hidden behind the other for a few frames)
            1.5 let the track jump to the occluder, 1.0 keeps both ids (tests/test_tracking_near.py).
        w_iou, w_keypoints, w_appearance: weights of the cost terms.
        appearance_momentum: how much of the stored appearance is kept at each match.
        appearance_metric: "cosine" or "l1" (see the module docstring).
        reacquire_cosine, reacquire_speed: see REACQUIRE_COSINE, REACQUIRE_SPEED (`reacquire`).
    """

    def __init__(self, max_misses: int = 5, max_cost: float = 1.0, w_iou: float = 1.0, w_keypoints: float = 1.0,
                 w_appearance: float = 1.0, appearance_momentum: float = 0.8, appearance_metric: str = "cosine",
                 reacquire_cosine: float = REACQUIRE_COSINE, reacquire_speed: float = REACQUIRE_SPEED) -> None:
        if appearance_metric not in APPEARANCE_METRICS:
            raise ValueError(f"unknown appearance_metric {appearance_metric!r}: expected one of {APPEARANCE_METRICS}")
        self.metric = appearance_metric
        self.reacquire_cosine, self.reacquire_speed = float(reacquire_cosine), float(reacquire_speed)
        self.max_misses = int(max_misses)
        self.max_cost = float(max_cost)
        self.w = (float(w_iou), float(w_keypoints), float(w_appearance))
        self.momentum = float(appearance_momentum)
        self.track_id = -1
        self.misses = 0
        self._last: PersonPose | None = None
        self._velocity = np.zeros(2, np.float32)
        self._appearance: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """A person is being tracked (started and not lost)."""
        return self._last is not None and not self.lost

    @property
    def lost(self) -> bool:
        """True after more than `max_misses` consecutive frames without a match."""
        return self._last is not None and self.misses > self.max_misses

    def start(self, person: PersonPose, track_id: int | None = None) -> PersonPose:
        """Begin tracking `person` (needs a box); returns it with its new track id."""
        if person.box is None:
            raise ValueError("cannot track a person without a box (text-only pose)")
        self.track_id = int(track_id) if track_id is not None else next(_ids)
        self.misses = 0
        self._velocity[:] = 0
        self._appearance = None if person.appearance is None else np.asarray(person.appearance, np.float32).copy()
        self._last = dataclasses.replace(person, track_id=self.track_id)
        return self._last

    def reset(self) -> None:
        self._last = None
        self.track_id = -1
        self.misses = 0

    @property
    def last_box(self) -> tuple[float, float, float, float] | None:
        """The box of the last match (xyxy px): where to look for the person next (a search
        region around it is more stable than the velocity prediction on noisy detections)."""
        return None if self._last is None else self._last.box

    def predicted_box(self) -> tuple[float, float, float, float] | None:
        if self._last is None or self._last.box is None:
            return None
        x0, y0, x1, y1 = self._last.box
        dx, dy = self._velocity * (1 + self.misses)
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)

    def cost(self, person: PersonPose) -> float:
        """Association cost of a candidate (lower is better; inf without a box)."""
        if person.box is None or self._last is None:
            return float("inf")
        pred = self.predicted_box()
        w_iou, w_kp, w_app = self.w
        c = w_iou * (1.0 - box_iou(pred, person.box))
        if person.keypoints_2d is not None and self._last.keypoints_2d is not None \
                and np.shape(person.keypoints_2d) == np.shape(self._last.keypoints_2d):
            h = max(pred[3] - pred[1], 1.0)
            shift = np.array([pred[0] - self._last.box[0], pred[1] - self._last.box[1]], np.float32)
            d = np.linalg.norm(np.asarray(person.keypoints_2d) - (np.asarray(self._last.keypoints_2d) + shift), axis=1)
            d = d[np.isfinite(d)]  # keypoints seen in both frames (unseen ones are NaN)
            c += w_kp * (float(np.minimum(d.mean() / h, 2.0)) if d.size else UNKNOWN_KEYPOINT_COST)
        else:
            c += w_kp * UNKNOWN_KEYPOINT_COST
        if person.appearance is not None and self._appearance is not None \
                and np.shape(person.appearance) == np.shape(self._appearance):
            if self.metric == "l1":
                d = np.abs(np.asarray(person.appearance) - self._appearance)
                c += w_app * float(d[np.isfinite(d)].mean() * 4.0) if np.isfinite(d).any() else 0.0
            else:
                cos = appearance_cosine(person.appearance, self._appearance)
                c += w_app * COSINE_SCALE * (1.0 - cos) if cos is not None else 0.0
        return c

    def reacquire(self, people: list[PersonPose]) -> PersonPose | None:
        """Find the person again among `people` (e.g. the whole frame, after they were lost or hidden):
        the candidate whose appearance is most like theirs, if its cosine is at least reacquire_cosine
        and it could be them (`_plausible`: size, and how far they may have walked). Returns the match
        with `track_id` set (the track goes on from it, speed unknown), or None (counted as a miss)."""
        if self._last is None:
            return None
        scored = [(appearance_cosine(p.appearance, self._appearance), p) for p in people
                  if p.box is not None and self._plausible(p.box)]
        scored = [(c, p) for c, p in scored if c is not None and c >= self.reacquire_cosine]
        if not scored:
            self.misses += 1
            return None
        best = max(scored, key=lambda s: s[0])[1]
        self._velocity[:] = 0
        self.misses = 0
        self._last = dataclasses.replace(best, track_id=self.track_id)
        return self._last

    def _plausible(self, box: tuple[float, float, float, float]) -> bool:
        """Could the person lost at the last box be at `box` now? About as tall (within
        REACQUIRE_HEIGHT_RATIO: they walked a few metres at most) and not farther than
        REACQUIRE_REACH + reacquire_speed * misses of their heights."""
        last = self._last.box
        h0, h1 = max(last[3] - last[1], 1.0), max(box[3] - box[1], 1.0)
        if not 1 / REACQUIRE_HEIGHT_RATIO <= h1 / h0 <= REACQUIRE_HEIGHT_RATIO:
            return False
        dx = (box[0] + box[2] - last[0] - last[2]) / 2
        dy = (box[1] + box[3] - last[1] - last[3]) / 2
        return float(np.hypot(dx, dy)) / h0 <= REACQUIRE_REACH + self.reacquire_speed * self.misses

    def update(self, people: list[PersonPose]) -> PersonPose | None:
        """Match the tracked person among this frame's `people`.

        Returns the matched PersonPose with `track_id` set, or None (not found this frame, or
        nothing tracked). After `max_misses` misses in a row `lost` turns True; a later match
        within `max_cost` still recovers the track."""
        if self._last is None:
            return None
        costs = [self.cost(p) for p in people]
        if not costs or min(costs) > self.max_cost:
            self.misses += 1
            return None
        best = people[int(np.argmin(costs))]
        old = self._last.box
        new = best.box
        step = np.array([(new[0] + new[2] - old[0] - old[2]) / 2, (new[1] + new[3] - old[1] - old[3]) / 2],
                        np.float32) / (1 + self.misses)
        self._velocity = 0.5 * self._velocity + 0.5 * step
        if best.appearance is not None:
            self._appearance = blend_appearance(self._appearance, best.appearance, self.momentum)
        self.misses = 0
        self._last = dataclasses.replace(best, track_id=self.track_id)
        return self._last
