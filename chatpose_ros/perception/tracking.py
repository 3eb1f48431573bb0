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

Verification (`verify`, on by default): the tracker keeps a gallery of the target's descriptors (its
accepted matches, up to GALLERY_SIZE distinct ones) and one of the other people seen beside them in the
search region or in view when the query chose them (`add_others`): the neighbours. An update or a
reacquisition gives no match, and says why in `doubt`, rather than guess when
- the cheapest candidate's appearance cannot be read (no torso seen: often the target hidden behind the
  person in front, whose box is then matched),
- it looks at least as much like a neighbour seen before as like the target (NEIGHBOUR_MARGIN), and
  no other candidate of the frame is that neighbour,
- a second candidate costs nearly as much (AMBIGUOUS_COST: two people close together, alike), or, when
  reacquiring, someone else in view is nearly as alike (REACQUIRE_MARGIN) or the person was matched too
  few times to be known by appearance (REACQUIRE_MIN_MATCHES).
A doubt counts as a miss: after `max_misses` of them in a row the track is lost.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from chatpose_ros.core.geometry_np import box_inside_fraction, box_iou
from chatpose_ros.core.target_check import appearance_cosine, blend_appearance, gallery_cosine, gallery_cosines
from chatpose_ros.core.types import PersonPose

_ids = itertools.count(1)
UNKNOWN_KEYPOINT_COST = 0.5  # keypoint term of a candidate whose keypoints cannot be compared
# appearance term of a candidate whose appearance cannot be read (no torso seen) while the target's can: about a
# small person's own match (cosine ~0.87), so that a half-hidden neighbour is not cheaper than the target seen
UNKNOWN_APPEARANCE_COST = 0.5
COSINE_SCALE = 4.0  # appearance term per unit of (1 - cosine)
# ... times the candidate's box height over this (px), at most 1: a person 60 px tall is read off so few pixels that
# their own descriptors frame to frame are at cosine 0.73-0.77 (vtest.avi frames 150-160), a cost above max_cost
APPEARANCE_FULL_HEIGHT = 120.0
# A lost person is found again (reacquire) by appearance alone when a candidate's descriptor has at least this
# cosine with theirs: on vtest.avi's tuning stretch (frames 480-639, region histograms) a person's own
# descriptors within 3 s are at >= 0.80 in 95 % of pairs, neighbours (within two box heights) at a median
# of 0.62 and 0.91 at the 90th percentile: a high bar, missing some returns rather than taking a neighbour.
REACQUIRE_COSINE = 0.85
REACQUIRE_HEIGHT_RATIO = 1.4  # a reacquired box is at most this much taller or shorter than the lost one
REACQUIRE_REACH = 1.0  # ... and its centre within this many (lost box) heights of the lost box's centre,
REACQUIRE_SPEED = 0.1  # ... plus this many per update since the loss (a walker: about one height a second at 10 Hz)
APPEARANCE_METRICS = ("cosine", "l1")
GALLERY_SIZE = 30  # distinct descriptors kept of the target, and of their neighbours
GALLERY_NOVELTY = 0.97  # a descriptor at least this alike to one of its gallery is not added
NEIGHBOUR_MARGIN = 0.05  # a match must be this much more alike the target's gallery than the neighbours'
AMBIGUOUS_COST = 0.2  # a second candidate within this cost of the cheapest: ambiguous, no match
REACQUIRE_MARGIN = 0.1  # reacquire only when nobody else in view is within this cosine of the best
REACQUIRE_MIN_MATCHES = 5  # reacquire only a person matched at least this often (one look is too little to tell them by)
MERGED_IOU = 0.5  # a box doubted as a neighbour's stays doubted while the one found overlaps it this much, alone
NEIGHBOUR_OVERLAP = 0.5  # a candidate with this much of its box inside the match's is not a neighbour (a fragment)



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
        verify: check each match against the galleries and the other candidates (module docstring);
            False = the tracker before this check (every cheapest candidate under max_cost is taken).
        appearance_full_height: see APPEARANCE_FULL_HEIGHT (0: appearance weighs the same at every height).
        search_ahead: while the person is missed, `last_box` moves along their velocity (False: it stays
            at the last match, the tracker before issue 23's third round).
    """

    def __init__(self, max_misses: int = 5, max_cost: float = 1.0, w_iou: float = 1.0, w_keypoints: float = 1.0,
                 w_appearance: float = 1.0, appearance_momentum: float = 0.8, appearance_metric: str = "cosine",
                 reacquire_cosine: float = REACQUIRE_COSINE, reacquire_speed: float = REACQUIRE_SPEED,
                 verify: bool = True, appearance_full_height: float = APPEARANCE_FULL_HEIGHT,
                 search_ahead: bool = True) -> None:
        if appearance_metric not in APPEARANCE_METRICS:
            raise ValueError(f"unknown appearance_metric {appearance_metric!r}: expected one of {APPEARANCE_METRICS}")
        self.metric = appearance_metric
        self.reacquire_cosine, self.reacquire_speed = float(reacquire_cosine), float(reacquire_speed)
        self.max_misses = int(max_misses)
        self.max_cost = float(max_cost)
        self.w = (float(w_iou), float(w_keypoints), float(w_appearance))
        self.momentum = float(appearance_momentum)
        self.appearance_full_height = float(appearance_full_height)
        self.search_ahead = bool(search_ahead)
        self.track_id = -1
        self.misses = 0
        self._last: PersonPose | None = None
        self._velocity = np.zeros(2, np.float32)
        self._appearance: np.ndarray | None = None
        self.verify = bool(verify)
        self.doubt = ""  # why the last update / reacquire gave no match although someone was there ("" = it did not doubt)
        self._gallery: list[np.ndarray] = []  # the target's descriptors (accepted matches)
        self._neighbours: list[np.ndarray] = []  # descriptors of others seen beside the target
        self._others: list[np.ndarray] = []  # descriptors of people known not to be the target (add_others)
        self.matches = 0  # accepted matches of this track (across restarts of the same track)
        self._beside: list[tuple[float, float, float, float]] = []  # boxes of the others found in the last update
        self._merged: tuple[float, float, float, float] | None = None  # the box doubted as a neighbour's in the last update

    @property
    def active(self) -> bool:
        """A person is being tracked (started and not lost)."""
        return self._last is not None and not self.lost

    @property
    def lost(self) -> bool:
        """True after more than `max_misses` consecutive frames without a match."""
        return self._last is not None and self.misses > self.max_misses

    def start(self, person: PersonPose, track_id: int | None = None) -> PersonPose:
        """Begin tracking `person` (needs a box); returns it with its new track id. Restarting the
        same track (its `track_id` again, e.g. from its last verified match) keeps the galleries."""
        if person.box is None:
            raise ValueError("cannot track a person without a box (text-only pose)")
        same = track_id is not None and int(track_id) == self.track_id
        self.track_id = int(track_id) if track_id is not None else next(_ids)
        if not same:
            self._gallery, self._neighbours, self._others, self.matches = [], [], [], 0
        self._remember(self._gallery, person.appearance)
        self.misses = 0
        self.doubt = ""
        self._beside, self._merged = [], None
        self._velocity[:] = 0
        self._appearance = None if person.appearance is None else np.asarray(person.appearance, np.float32).copy()
        self._last = dataclasses.replace(person, track_id=self.track_id)
        return self._last

    def add_others(self, people: list[PersonPose]) -> None:
        """Remember what `people` look like: people known not to be the target (e.g. the others in view
        when the query chose them), neighbours to `reacquire` (not to `update`, where the search region
        shows who is beside the target). Nothing without `verify`."""
        if self.verify:
            for p in people:
                self._remember(self._others, p.appearance)

    def reset(self) -> None:
        self._last = None
        self.track_id = -1
        self.misses = 0

    @property
    def last_box(self) -> tuple[float, float, float, float] | None:
        """Where to look for the person next (xyxy px): the box of the last match (a search region
        around it is more stable than the velocity prediction on noisy detections), moved along its
        velocity for each update missed since (a walker behind a sign comes out further on)."""
        if self._last is None or self._last.box is None or self.misses == 0 or not self.search_ahead:
            return None if self._last is None else self._last.box
        x0, y0, x1, y1 = self._last.box
        dx, dy = self._velocity * self.misses
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)

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
            else:  # a small person's colours are read off few pixels: their cosine wavers (0.73-0.77 frame to frame at 60 px)
                cos = appearance_cosine(person.appearance, self._appearance)
                trust = min(1.0, (person.box[3] - person.box[1]) / self.appearance_full_height) \
                    if self.appearance_full_height > 0 else 1.0
                c += w_app * trust * (COSINE_SCALE * (1.0 - cos) if cos is not None else UNKNOWN_APPEARANCE_COST)
        return c

    def reacquire(self, people: list[PersonPose]) -> PersonPose | None:
        """Find the person again among `people` (e.g. the whole frame, after they were lost or hidden):
        the candidate whose appearance is most like theirs, if its cosine is at least reacquire_cosine
        and it could be them (`_plausible`: size, and how far they may have walked); with `verify`, the
        cosine is with the target's gallery, and nobody else in view may be within REACQUIRE_MARGIN of
        it nor the candidate look like a neighbour (else `doubt` says so). Returns the match with
        `track_id` set (the track goes on from it, speed unknown), or None (counted as a miss)."""
        if self._last is None:
            return None
        self.doubt = ""
        scored = [(self._likeness(p), p) for p in people if p.box is not None]
        fits = [(c, p) for c, p in scored if c is not None and c >= self.reacquire_cosine and self._plausible(p.box)]
        if not fits:
            self.misses += 1
            return None
        cos, best = max(fits, key=lambda s: s[0])
        if self.verify:
            rival = max((c for c, p in scored if c is not None and p is not best), default=None)
            if self.matches < REACQUIRE_MIN_MATCHES:
                self.doubt = f"seen too little to be told by appearance ({self.matches} matches)"
            elif rival is not None and rival > cos - REACQUIRE_MARGIN:
                self.doubt = f"someone else in view is as alike (cosine {rival:.2f} vs {cos:.2f})"
            else:
                self.doubt = self._neighbour_doubt(best, cos, [p for p in people if p is not best],
                                                   self._neighbours + self._others)
            if self.doubt:
                self.misses += 1
                return None
            self._remember(self._gallery, best.appearance)
        self.matches += 1
        self._velocity[:] = 0
        self.misses = 0
        self._last = dataclasses.replace(best, track_id=self.track_id)
        return self._last

    def _likeness(self, person: PersonPose) -> float | None:
        """Cosine of `person`'s descriptor with the target's: the most alike entry of the gallery with
        `verify`, else the running appearance."""
        if self.verify and self._gallery:
            return gallery_cosine(person.appearance, np.stack(self._gallery))
        return appearance_cosine(person.appearance, self._appearance)

    def _neighbour_doubt(self, person: PersonPose, likeness: float | None, others: list[PersonPose],
                         neighbours: list[np.ndarray]) -> str:
        """Why `person` may be a neighbour rather than the target ("" = no reason): its appearance cannot
        be read, or it is at least as alike (within NEIGHBOUR_MARGIN) to one of `neighbours` as to
        the target's, unless one of `others` (the other candidates of this frame) is at least as alike to
        that descriptor (the neighbour is there, beside them)."""
        if likeness is None:
            return "appearance not seen" if self._gallery else ""  # nothing to compare with: not doubted
        if not neighbours:
            return ""
        gallery = np.stack(neighbours)
        cos = gallery_cosines(person.appearance, gallery)
        alike = np.nan_to_num(cos, nan=-1.0) > likeness - NEIGHBOUR_MARGIN
        for other in others:
            if alike.any() and other.appearance is not None:
                theirs = gallery_cosines(other.appearance, gallery)
                if theirs is not None:
                    alike &= ~(np.nan_to_num(theirs, nan=-1.0) >= cos)
        if alike.any():
            return f"looks like a neighbour seen before (cosine {np.nanmax(cos[alike]):.2f} vs {likeness:.2f} with the target)"
        return ""

    def _where_a_neighbour_was(self, person: PersonPose, others: list[PersonPose],
                               beside: list[tuple[float, float, float, float]]) -> str:
        """Why `person` may be a neighbour who hides the target ("" = no reason): their box overlaps the box
        of someone found beside the target in the last update more than the target's predicted box, and
        nobody else of this frame is there (two people crossing, one detection left: which is it?)."""
        on_target = box_iou(person.box, self.predicted_box())
        merged = [] if self._merged is None else [self._merged]
        for box in beside + merged:
            there = box_iou(person.box, box)
            if (there > on_target or (box in merged and there >= MERGED_IOU)) \
                    and not any(p.box is not None and box_iou(p.box, box) >= there for p in others):
                return f"where a neighbour was (box overlap {there:.2f} vs {on_target:.2f} with the target's)"
        return ""

    @staticmethod
    def _remember(gallery: list[np.ndarray], descriptor: np.ndarray | None) -> None:
        """Add `descriptor` to `gallery` unless it is missing or nearly one already there (oldest out)."""
        if descriptor is None:
            return
        d = np.asarray(descriptor, np.float32)
        if not np.isfinite(d).any() or (gallery and np.shape(gallery[0]) != d.shape):
            return  # nothing seen (e.g. no torso), or another kind of descriptor
        near = gallery_cosine(d, np.stack(gallery)) if gallery else None
        if near is None or near < GALLERY_NOVELTY:
            gallery.append(d.copy())
            del gallery[:-GALLERY_SIZE]

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
        self.doubt = ""
        costs = [self.cost(p) for p in people]
        if not costs or min(costs) > self.max_cost:
            self.misses += 1
            return None
        order = np.argsort(costs)
        best = people[int(order[0])]
        if self.verify:
            likeness = self._likeness(best)  # before `_remember` adds this match to the gallery
            beside, self._beside = self._beside, [p.box for p in people if p is not best and p.box is not None]
            if len(order) > 1 and costs[int(order[1])] - costs[int(order[0])] < AMBIGUOUS_COST:
                self.doubt = f"two candidates alike (costs {costs[int(order[0])]:.2f}, {costs[int(order[1])]:.2f})"
            else:
                self.doubt = self._where_a_neighbour_was(best, [p for p in people if p is not best], beside)
                self._merged = best.box if self.doubt else None  # one box for two people: until they are apart
                if not self.doubt:
                    self.doubt = self._neighbour_doubt(best, likeness, [p for p in people if p is not best],
                                                       self._neighbours)
            if self.doubt:
                self.misses += 1
                return None
            self._remember(self._gallery, best.appearance)
            for p in people:  # the others beside them, told apart from them (not a look-alike box of theirs)
                theirs = self._likeness(p)
                if p is not best and p.box is not None and theirs is not None and likeness is not None \
                        and theirs < likeness - NEIGHBOUR_MARGIN \
                        and max(box_inside_fraction(p.box, best.box), box_inside_fraction(best.box, p.box)) < NEIGHBOUR_OVERLAP:
                    self._remember(self._neighbours, p.appearance)
        old = self._last.box
        new = best.box
        step = np.array([(new[0] + new[2] - old[0] - old[2]) / 2, (new[1] + new[3] - old[1] - old[3]) / 2],
                        np.float32) / (1 + self.misses)
        self._velocity = 0.5 * self._velocity + 0.5 * step
        self.matches += 1
        if best.appearance is not None:
            self._appearance = blend_appearance(self._appearance, best.appearance, self.momentum)
        self.misses = 0
        self._last = dataclasses.replace(best, track_id=self.track_id)
        return self._last

