"""Follow-me: where the followed person was last seen, and how uncertain that position becomes while they
are hidden (ROS-free).

    memory = TargetMemory()
    memory.seen(person, t)               # a tracking update published the target (translation known)
    held = memory.held(t_now)            # HeldTarget (last position, age, covariance) or None

A robot following someone who steps behind a pillar should slow down and head for where they were, not
stop dead nor drive on as if it saw them: the last known position goes on, with its age (now - when seen)
and a covariance that grows with it. The position's standard deviation is SEEN_SIGMA_M when just seen and
grows by WALK_SPEED_MPS per second hidden (a walker may have gone that far in any direction); the heading's
by TURN_RATE_RADPS from SEEN_HEADING_SIGMA_RAD. After HOLD_S hidden nothing is held (the node's search for
the person, core.session.REACQUIRE_S, has ended by then too).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import PersonPose

SEEN_SIGMA_M = 0.15  # position std of a fresh monocular placement at a few metres (body-size prior: about 4 %)
WALK_SPEED_MPS = 1.4  # a brisk walk: how fast the position's std grows while hidden
SEEN_HEADING_SIGMA_RAD = 0.3  # heading std of a fresh pose
TURN_RATE_RADPS = 1.0  # how fast the heading's std grows while hidden
HOLD_S = 10.0  # hidden longer than this: nothing held


def covariance(age_s: float) -> np.ndarray:
    """(6, 6) float64 covariance of a pose seen `age_s` ago, ROS order (x, y, z, rotation about x, y, z;
    m^2 and rad^2), row-major as geometry_msgs/PoseWithCovariance: diagonal, position variance
    (SEEN_SIGMA_M + WALK_SPEED_MPS * age)^2, rotation variance (SEEN_HEADING_SIGMA_RAD + TURN_RATE_RADPS *
    age)^2, capped at pi^2."""
    age = max(0.0, float(age_s))
    pos = (SEEN_SIGMA_M + WALK_SPEED_MPS * age) ** 2
    rot = min((SEEN_HEADING_SIGMA_RAD + TURN_RATE_RADPS * age) ** 2, np.pi ** 2)
    return np.diag([pos, pos, pos, rot, rot, rot]).astype(np.float64)


@dataclass(frozen=True)
class HeldTarget:
    """The followed person as last seen: `person` (track_id, translation in m, camera frame), `seen_at`
    (the clock's seconds), `age_s` (how long ago) and `covariance` ((6, 6), see `covariance`)."""

    person: PersonPose
    seen_at: float
    age_s: float
    covariance: np.ndarray


class TargetMemory:
    """The last sighting of the followed person with a known translation (see the module docstring)."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self.hold_s = float(hold_s)
        self._person: PersonPose | None = None
        self._seen_at = 0.0

    def seen(self, person: PersonPose, t: float) -> None:
        """The target was published at time `t` (seconds); a person without a translation is not kept."""
        if person.translation is not None and person.track_id >= 0:
            self._person, self._seen_at = person, float(t)

    def forget(self) -> None:
        self._person = None

    def held(self, t: float, track_id: int | None = None) -> HeldTarget | None:
        """The last sighting at time `t` (of track `track_id` when given), None when there is none, it is
        of another track, or older than hold_s."""
        person = self._person
        if person is None or (track_id is not None and person.track_id != track_id):
            return None
        age = float(t) - self._seen_at
        if age > self.hold_s:
            return None
        return HeldTarget(person, self._seen_at, max(0.0, age), covariance(age))
