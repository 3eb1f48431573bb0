"""Is the person a tracking update matched still the one the query chose? (ROS-free.)

    check = TargetCheck(chosen)            # when a query starts a track (chosen has a box)
    reason = check.verify(matched)         # every tracking update: "" = the same person
    check.missed()                         # an update where the tracker found nobody
    if reason and check.failures >= TARGET_MAX_FAILURES: ...   # give the track up

Two cues, each skipped when it cannot be read:
- appearance: cosine between the update's `PersonPose.appearance` and the track's running
  appearance (updated only by verified matches, momentum APPEARANCE_MOMENTUM) below
  MIN_APPEARANCE_COSINE fails; a descriptor of another shape, or a (near) zero one, is not compared;
- motion: the box centre moving more than MAX_JUMP_HEIGHTS box heights (of the last verified
  box) per tracking update since the last verified match fails.

How far it goes, on the default profile's descriptor (colour statistics of torso and legs: mean
Lab, chroma-weighted hue histogram, achromatic fraction) in vtest.avi frames 548-596: a tracked
person's own matches stay at cosine >= 0.78 (median 0.98; the lowest while half hidden), people
in dark against light or coloured clothes are at 0.21-0.47, but the man in the red and navy
jacket and the woman in the black coat are at 0.94 (the achromatic fractions dominate): the
appearance cue catches a slide onto someone dressed differently, not onto someone dressed alike
(then only the motion cue and the tracker's own cost stand between them).
"""
from __future__ import annotations

import numpy as np

from .types import PersonPose

MIN_APPEARANCE_COSINE = 0.7  # below a tracked person's own worst match in vtest.avi (0.78), above different clothes (<= 0.47)
MAX_JUMP_HEIGHTS = 0.5  # per update: a walking person moves about 0.1 of their height per update at 7 Hz
APPEARANCE_MOMENTUM = 0.8  # how much of the running appearance a verified match keeps
TARGET_MAX_FAILURES = 5  # failed checks in a row after which the target is lost
_MIN_NORM = 1e-6

Box = tuple[float, float, float, float]


def appearance_cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """How alike two appearance descriptors are, in [-1, 1]: for (D,) ones the cosine over the entries
    both saw (NaN = not seen); for (R, D) per-region ones (perception.appearance: torso, legs) the lowest
    cosine of the regions both saw (the same person matches in every part: a shared dark coat does not
    make a red jacket alike). None when they cannot be compared (missing, other shapes, nothing seen by
    both, a (near) zero vector)."""
    if a is None or b is None or np.shape(a) != np.shape(b):
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 2:
        rows = [_cosine(x, y) for x, y in zip(a, b) if np.isfinite(x).all() and np.isfinite(y).all()]
        rows = [r for r in rows if r is not None]
        return min(rows) if rows else None
    a, b = a.ravel(), b.ravel()
    both = np.isfinite(a) & np.isfinite(b)
    return _cosine(a[both], b[both])


def gallery_cosine(a: np.ndarray | None, gallery: np.ndarray | None) -> float | None:
    """How alike descriptor `a` is to the most alike of a gallery of descriptors (stacked: (N, R, D) for
    (R, D) ones, (N, D) for (D,) ones): the highest `appearance_cosine` of `a` with an entry, None when no
    entry can be compared."""
    cos = gallery_cosines(a, gallery)
    return None if cos is None or np.isnan(cos).all() else float(np.nanmax(cos))


def gallery_cosines(a: np.ndarray | None, gallery: np.ndarray | None) -> np.ndarray | None:
    """`appearance_cosine` of `a` with each entry of a stacked gallery (see gallery_cosine): (N,) float64,
    NaN where an entry cannot be compared; None when `a` or the gallery is missing or of another shape.
    Vectorised for per-region descriptors (a tracker compares every candidate with every entry at each
    update)."""
    if a is None or gallery is None or len(gallery) == 0 or np.shape(gallery)[1:] != np.shape(a):
        return None
    a, g = np.asarray(a, np.float64), np.asarray(gallery, np.float64)
    if a.ndim != 2:
        return np.array([np.nan if v is None else v for v in (appearance_cosine(a, e) for e in g)], np.float64)
    seen = np.isfinite(a).all(-1)[None] & np.isfinite(g).all(-1)  # (N, R): regions both saw
    a0, g0 = np.nan_to_num(a), np.nan_to_num(g)
    na, ng = np.linalg.norm(a0, axis=-1)[None], np.linalg.norm(g0, axis=-1)
    seen &= (na >= _MIN_NORM) & (ng >= _MIN_NORM)
    cos = np.einsum("rd,nrd->nr", a0, g0) / np.maximum(na * ng, _MIN_NORM)
    per_entry = np.where(seen, cos, np.inf).min(-1)  # the least alike region of each entry
    return np.where(seen.any(-1), per_entry, np.nan)


def _cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < _MIN_NORM or nb < _MIN_NORM:
        return None
    return float(a @ b / (na * nb))


class TargetCheck:
    """The chosen person's running appearance and last verified box (see the module docstring).

    Args:
        person: the chosen person (needs a box).
    """

    def __init__(self, person: PersonPose) -> None:
        if person.box is None:
            raise ValueError("cannot check a person without a box (text-only pose)")
        self.last = person  # the last verified person (their box: where the target was)
        self._appearance = None if person.appearance is None else np.asarray(person.appearance, np.float32).copy()
        self._updates = 0  # tracking updates since the last verified match
        self.failures = 0  # failed checks in a row

    def missed(self) -> None:
        """The tracker found nobody in an update."""
        self._updates += 1

    def verify(self, person: PersonPose) -> str:
        """"" when `person` (a tracking update's match) is the chosen person, else why not.
        A verified match becomes the reference; a failure leaves it untouched."""
        self._updates += 1
        reason = ""
        cos = appearance_cosine(person.appearance, self._appearance)
        if cos is not None and cos < MIN_APPEARANCE_COSINE:
            reason = f"appearance differs (cosine {cos:.2f} < {MIN_APPEARANCE_COSINE})"
        elif person.box is not None:
            jump = _centre_jump(self.last.box, person.box)
            if jump > MAX_JUMP_HEIGHTS * self._updates:
                reason = f"box moved {jump:.1f} box heights in {self._updates} update(s)"
        if reason:
            self.failures += 1
            return reason
        self.failures, self._updates, self.last = 0, 0, person
        if person.appearance is not None:
            self._appearance = blend_appearance(self._appearance, person.appearance, APPEARANCE_MOMENTUM)
        return ""


def blend_appearance(old: np.ndarray | None, new: np.ndarray, momentum: float) -> np.ndarray:
    """A running (D,) descriptor after a match with `new`: momentum * old + (1 - momentum) * new where
    both saw the entry, the one that saw it elsewhere (NaN = not seen); `new` when there is no `old` (or
    it has another shape)."""
    new = np.asarray(new, np.float32)
    if old is None or np.shape(old) != new.shape:
        return new.copy()
    out = (momentum * old + (1 - momentum) * new).astype(np.float32)
    out = np.where(np.isfinite(new), out, old)
    return np.where(np.isfinite(old), out, new).astype(np.float32)


def _centre_jump(old: Box, new: Box) -> float:
    """Distance between the box centres, in heights of `old` (xyxy px)."""
    dx = (new[0] + new[2] - old[0] - old[2]) / 2.0
    dy = (new[1] + new[3] - old[1] - old[3]) / 2.0
    return float(np.hypot(dx, dy) / max(old[3] - old[1], 1.0))
