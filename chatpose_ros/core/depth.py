"""A person's position from an aligned depth image (REP-118), ROS-free.

API (what the ROS layer calls; it copies the fields of ``sensor_msgs/Image`` and ``CameraInfo``):

    depth = DepthImage(data, width, height, encoding, step, is_bigendian, stamp_s, frame_id)
        # raises DepthEncodingError (not 16UC1 / 32FC1) or InvalidDepthError (empty, step, truncated)
    placer = DepthPlacer(slop_s=0.05)
    placer.add(depth)                      # every depth frame (keeps those of the last `history_s`)
    placer.set_intrinsics(intr_or_none)    # the depth image's camera_info (core.camera)
    out = placer.place(result, stamp_s, frame_id)
        # -> DepthPlacement(result, error): each person's translation from the depth under their
        #    torso where it can be read (translation_source "depth"), else the monocular fit that
        #    `result` already carries ("monocular"); `error` (a DepthInputError) when the whole frame
        #    fell back, with the reason

Units and "no reading" (REP-118): ``16UC1`` is millimetres, ``32FC1`` metres; 0, NaN and +-inf
are no reading, and so is anything outside ``MIN_RANGE_M`` .. ``MAX_RANGE_M``. The depth image
must be ALIGNED (registered) to the colour image: same frame_id, same size, pixel (u, v) of one
is pixel (u, v) of the other (``aligned_depth_to_color`` of a RealSense, ``depth/depth_registered``
of a ZED, an OAK-D's depth aligned to its RGB socket). Anything else is refused with a status
(``DepthFrameMismatchError``, ``DepthSizeMismatchError``) and never used: a wrong position is
worse than the monocular fit.

Synchronisation (``DepthSync``): message_filters' ApproximateTime policy for two topics with the
colour image as the pivot: the depth frame whose stamp is nearest the colour stamp, if within
``slop_s``; else ``DepthStaleError``. The node places people after the model ran on the colour
frame (tens of ms later), so the matching depth frame has arrived by then.

Method (``torso_reading``, ``depth_translation``): the torso is the quad of the shoulder and hip
keypoints the pose model saw. Depth is read in small windows (half size ``WINDOW_FRACTION`` of
the torso's size in px, 1 .. ``WINDOW_MAX_PX``) around the torso's centre and around points
40 % and 80 % of the way from the centre to each keypoint and to the middle of each side, so
that windows stay on the body when a keypoint sits on its silhouette (a person seen side on).
The surface depth is the median of the valid readings after rejecting those further than
``OUTLIER_MAD_K`` robust standard deviations (or ``OUTLIER_FLOOR_M``) from a first median
(background, flying pixels at the silhouette, an arm in front). Fewer than ``MIN_READINGS``
readings, or under ``MIN_VALID_SHARE`` of the pixels looked at: no reading (monocular). The
surface is in front of the torso's joints by about half a chest depth (``SURFACE_TO_CENTRE_M``),
so the torso centre is the window centres' mean pixel back-projected at that depth plus the
offset, and the pelvis is the torso centre minus the pose model's own torso-centre-to-pelvis
offset (the mean of the same joints, pelvis-relative: a few cm of body-size error, not tens).
A depth position more than ``MAX_MONO_RATIO`` times nearer or further than the monocular fit is
not used (an object in front of the person, a wrong window): the monocular fit stays.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .camera import CameraIntrinsics
from .errors import (DepthEncodingError, DepthFrameMismatchError, DepthInputError, DepthSizeMismatchError,
                     DepthStaleError, NoDepthCameraInfoError)
from .logs import clip
from .placement import keypoint_names
from .smpl_layout import SMPL_JOINT_NAMES
from .types import PersonPose, PoseResult

log = logging.getLogger(__name__)

# REP-118 encodings: numpy kind and metres per unit
DEPTH_ENCODINGS: dict[str, tuple[str, float]] = {"16UC1": ("u2", 0.001), "32FC1": ("f4", 1.0)}
MIN_RANGE_M = 0.1          # readings nearer than this are no reading (sensor minimum range)
MAX_RANGE_M = 20.0         # ... and further than this
DEFAULT_SLOP_S = 0.05      # approximate-sync tolerance (s)
# Depth frames are kept this long (by stamp, behind the newest) and at most this many: a query's
# answer is placed when the model is done with its frame, up to seconds later (about 54 MB for
# 640 x 480 16UC1 at 30 Hz; a frame is the received message's buffer, not a copy)
DEFAULT_HISTORY_S = 3.0
DEFAULT_MAX_FRAMES = 100
# The torso quad, in order around it: shoulders then hips
TORSO_KEYPOINTS = ("left_shoulder", "right_shoulder", "right_hip", "left_hip")
SAMPLE_FRACTIONS = (0.4, 0.8)  # window centres this far from the torso centre towards each point
WINDOW_FRACTION = 0.1      # window half size / the torso's size (mean keypoint distance from its centre, px)
WINDOW_MAX_PX = 8          # window half size at most (px)
MIN_READINGS = 8           # valid readings needed
MIN_VALID_SHARE = 0.2      # ... and this share of the pixels looked at
OUTLIER_MAD_K = 3.0        # readings beyond K robust SDs (1.4826 MAD) of the first median are dropped ...
OUTLIER_FLOOR_M = 0.05     # ... but never those within this distance of it
SURFACE_TO_CENTRE_M = 0.10  # the torso's joints are this far behind its visible surface (half a chest depth)
MAX_MONO_RATIO = 2.0       # a depth position this many times nearer/further than the monocular fit is not used
DEPTH, MONOCULAR = "depth", "monocular"  # PersonPose.translation_source


@dataclass(frozen=True)
class DepthImage:
    """One depth image as received, not decoded. `data`: a buffer of at least `step * height`
    bytes (e.g. a memoryview into the serialised message); `stamp_s`: its header stamp (s);
    `frame_id`: its header frame. Raises DepthEncodingError / InvalidDepthError when the layout is
    unusable (checked here, at arrival, reading no pixel)."""

    data: Any
    width: int
    height: int
    encoding: str
    step: int
    is_bigendian: bool = False
    stamp_s: float = 0.0
    frame_id: str = ""

    def __post_init__(self) -> None:
        if self.encoding not in DEPTH_ENCODINGS:
            raise DepthEncodingError(f"depth image encoding '{clip(self.encoding)}' is not a REP-118 depth encoding "
                                     f"({' or '.join(DEPTH_ENCODINGS)})")
        if self.width <= 0 or self.height <= 0:
            raise DepthInputError(f"depth image is empty ({self.width}x{self.height})")
        row = self.width * np.dtype(DEPTH_ENCODINGS[self.encoding][0]).itemsize
        if self.step < row:
            raise DepthInputError(f"depth image step {self.step} does not hold a row of {self.width} "
                                  f"{self.encoding} pixels ({row} bytes)")
        nbytes = memoryview(self.data).nbytes
        if nbytes < self.step * (self.height - 1) + row:
            raise DepthInputError(f"depth image data truncated: {nbytes} bytes, expected {self.step * self.height}")

    def array(self) -> np.ndarray:
        """(H, W) read-only view of the raw values (uint16 mm or float32 m, in the byte order sent; no copy)."""
        kind, _ = DEPTH_ENCODINGS[self.encoding]
        dtype = np.dtype(kind).newbyteorder(">" if self.is_bigendian else "<")
        return np.ndarray((self.height, self.width), dtype=dtype, buffer=memoryview(self.data).cast("B"),
                          strides=(self.step, dtype.itemsize))

    def metres(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N,) float32 depth (m) at pixels (rows, cols) (int arrays inside the image); NaN where
        there is no reading (0, NaN, inf, outside MIN_RANGE_M .. MAX_RANGE_M)."""
        _, scale = DEPTH_ENCODINGS[self.encoding]
        z = self.array()[rows, cols].astype(np.float32) * np.float32(scale)
        z[~np.isfinite(z) | (z < MIN_RANGE_M) | (z > MAX_RANGE_M)] = np.nan
        return z


class DepthSync:
    """The depth frames of the last `history_s` seconds (by stamp, behind the newest; at most
    `max_frames`); `match(stamp_s)` the one nearest a colour stamp within `slop_s` (message_filters
    ApproximateTime for two topics, the colour image as the pivot). Thread-safe (frames come in
    the executor's thread, matches are asked in another)."""

    def __init__(self, slop_s: float = DEFAULT_SLOP_S, history_s: float = DEFAULT_HISTORY_S,
                 max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        if slop_s < 0 or history_s < 0 or max_frames < 1:
            raise ValueError(f"slop_s and history_s must be >= 0 and max_frames >= 1, got {slop_s}, {history_s}, "
                             f"{max_frames}")
        self.slop_s, self.history_s, self.max_frames = float(slop_s), float(history_s), int(max_frames)
        self._stamps: list[float] = []
        self._frames: list[DepthImage] = []
        self._lock = threading.Lock()

    def add(self, frame: DepthImage) -> None:
        with self._lock:
            i = bisect.bisect_right(self._stamps, frame.stamp_s)  # frames may arrive out of order
            self._stamps.insert(i, frame.stamp_s)
            self._frames.insert(i, frame)
            while len(self._stamps) > self.max_frames or self._stamps[0] < self._stamps[-1] - self.history_s:
                del self._stamps[0], self._frames[0]

    def clear(self) -> None:
        with self._lock:
            self._stamps, self._frames = [], []

    def match(self, stamp_s: float) -> DepthImage:
        """The depth frame nearest `stamp_s` (s); DepthStaleError when none is within slop_s
        (the message says how far the nearest one is, or that none came yet)."""
        with self._lock:
            if not self._stamps:
                raise DepthStaleError("no depth image received yet")
            i = bisect.bisect_left(self._stamps, stamp_s)
            near = min((j for j in (i - 1, i) if 0 <= j < len(self._stamps)), key=lambda j: abs(self._stamps[j] - stamp_s))
            dt = self._stamps[near] - stamp_s
            if abs(dt) > self.slop_s:
                raise DepthStaleError(f"the depth image nearest the colour image is {dt * 1000:+.0f} ms from it "
                                      f"(slop {self.slop_s * 1000:.0f} ms)")
            return self._frames[near]


@dataclass(frozen=True)
class TorsoReading:
    """surface_m: robust depth of the torso's visible surface (m); centre_px: (2,) the mean of the
    window centres (px); used: indices (into the person's keypoints) of the torso keypoints used;
    valid / looked: readings kept / pixels looked at."""

    surface_m: float
    centre_px: np.ndarray
    used: tuple[int, ...]
    valid: int
    looked: int


def _sample_points(corners: np.ndarray) -> tuple[np.ndarray, float]:
    """(S, 2) window centres inside the torso polygon `corners` (C, 2) px (C >= 2, in order around
    it) and the torso's size (px); the centres' mean is the corners' mean."""
    c = corners.mean(0)
    targets = [corners]
    if len(corners) >= 3:  # the middle of each side
        targets.append(0.5 * (corners + np.roll(corners, -1, axis=0)))
    t = np.concatenate(targets)
    pts = [c[None]] + [c + f * (t - c) for f in SAMPLE_FRACTIONS]
    size = float(np.linalg.norm(corners - c, axis=1).mean())
    return np.concatenate(pts), size


def torso_reading(depth: DepthImage, keypoints_px: np.ndarray, names: tuple[str, ...]) -> TorsoReading | None:
    """The robust depth of the torso under the keypoints (see the module docstring), or None
    when fewer than 2 torso keypoints are seen or too few valid readings are found.

    Args:
        depth: the aligned depth image.
        keypoints_px: (K, 2) keypoints in the depth (= colour) image, NaN where not seen.
        names: the K keypoint names (``placement.keypoint_names``).
    """
    kp = np.asarray(keypoints_px, dtype=np.float64)
    used = tuple(names.index(n) for n in TORSO_KEYPOINTS if n in names and np.isfinite(kp[names.index(n)]).all())
    if len(used) < 2:
        return None
    pts, size = _sample_points(kp[list(used)])
    half = int(min(WINDOW_MAX_PX, max(1, round(WINDOW_FRACTION * size))))
    offs = np.arange(-half, half + 1)
    dv, du = np.meshgrid(offs, offs, indexing="ij")
    rows = (np.round(pts[:, 1])[:, None] + dv.reshape(1, -1)).astype(np.int64).reshape(-1)
    cols = (np.round(pts[:, 0])[:, None] + du.reshape(1, -1)).astype(np.int64).reshape(-1)
    inside = (rows >= 0) & (rows < depth.height) & (cols >= 0) & (cols < depth.width)
    looked = int(rows.size)
    z = depth.metres(rows[inside], cols[inside])
    z = z[np.isfinite(z)]
    if z.size < MIN_READINGS or z.size < MIN_VALID_SHARE * looked:
        return None
    m = float(np.median(z))
    spread = 1.4826 * float(np.median(np.abs(z - m)))
    keep = z[np.abs(z - m) <= max(OUTLIER_MAD_K * spread, OUTLIER_FLOOR_M)]
    if keep.size < MIN_READINGS:
        return None
    return TorsoReading(surface_m=float(np.median(keep)), centre_px=pts.mean(0), used=used, valid=int(keep.size),
                        looked=looked)


def depth_translation(person: PersonPose, depth: DepthImage, intrinsics: CameraIntrinsics) -> np.ndarray | None:
    """(3,) float32 pelvis position (m, the depth image's optical frame = the colour image's) of
    `person` from the depth under their torso, or None (no keypoints, too few torso keypoints,
    too few valid readings). `intrinsics`: the depth image's camera_info."""
    names = keypoint_names(person)
    if names is None:
        return None
    reading = torso_reading(depth, np.asarray(person.keypoints_2d), names)
    if reading is None:
        return None
    ray = np.append(intrinsics.normalise(reading.centre_px[None])[0], 1.0)
    centre = ray * (reading.surface_m + SURFACE_TO_CENTRE_M / float(np.linalg.norm(ray)))
    joints = np.asarray(person.joints, dtype=np.float64)
    offset = np.mean([joints[SMPL_JOINT_NAMES.index(names[i])] for i in reading.used], axis=0)  # torso centre - pelvis
    return (centre - offset).astype(np.float32)


@dataclass(frozen=True)
class DepthPlacement:
    """result: the people with their translations and `translation_source`; error: why the whole
    frame fell back to the monocular fit (None: depth was read); counts: per outcome
    (``depth``, ``monocular``, ``no_reading``, ``disagrees``) how many people."""

    result: PoseResult
    error: DepthInputError | None
    counts: collections.Counter


class DepthPlacer:
    """Depth frames in (`add`, `set_intrinsics`), people placed from them (`place`). See the
    module docstring."""

    def __init__(self, slop_s: float = DEFAULT_SLOP_S, history_s: float = DEFAULT_HISTORY_S,
                 max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self.sync = DepthSync(slop_s, history_s, max_frames)
        self._intrinsics: CameraIntrinsics | None = None
        self._lock = threading.Lock()

    def add(self, frame: DepthImage) -> None:
        self.sync.add(frame)

    def set_intrinsics(self, intrinsics: CameraIntrinsics | None) -> None:
        with self._lock:
            self._intrinsics = intrinsics

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        """The depth image's intrinsics (its camera_info), None until a valid one came."""
        with self._lock:
            return self._intrinsics

    def check(self, stamp_s: float, frame_id: str, image_size: tuple[int, int] | None) -> tuple[DepthImage, CameraIntrinsics]:
        """The depth frame and intrinsics for a colour image (stamp s, frame id, (width, height)),
        or the DepthInputError that says why there is none usable."""
        intr = self.intrinsics
        depth = self.sync.match(stamp_s)
        if intr is None:
            raise NoDepthCameraInfoError("no valid camera_info for the depth image yet")
        if depth.frame_id != frame_id:
            raise DepthFrameMismatchError(f"the depth image is in frame '{clip(depth.frame_id)}', the colour image in "
                                          f"'{clip(frame_id)}': use a depth image aligned (registered) to the colour image")
        if image_size is not None and (depth.width, depth.height) != tuple(image_size):
            raise DepthSizeMismatchError(f"the depth image is {depth.width} x {depth.height} px, the colour image "
                                         f"{image_size[0]} x {image_size[1]} px: use a depth image aligned to the colour image")
        if not intr.matches_image(depth.width, depth.height):
            raise DepthSizeMismatchError(f"the depth camera_info is for {intr.width} x {intr.height} px, the depth image "
                                         f"is {depth.width} x {depth.height} px")
        return depth, intr

    def place(self, result: PoseResult, stamp_s: float, frame_id: str) -> DepthPlacement:
        """`result` (translations from the monocular fit, or None) with each person's translation
        from the depth image matched to the colour image (stamp s, frame id) where it can be read;
        generated poses keep no translation."""
        counts: collections.Counter = collections.Counter()
        try:
            depth, intr = self.check(stamp_s, frame_id, result.image_size)
        except DepthInputError as exc:
            people = tuple(_monocular(p, counts) for p in result.people)
            return DepthPlacement(dataclasses.replace(result, people=people), exc, counts)
        people = []
        for p in result.people:
            t = None if p.generated else depth_translation(p, depth, intr)
            if t is None:
                if not p.generated:
                    counts["no_reading"] += 1
                people.append(_monocular(p, counts))
            elif p.translation is not None and not _agrees(t, np.asarray(p.translation)):
                counts["disagrees"] += 1
                log.debug("depth %.2f m and monocular %.2f m disagree: monocular kept", t[2], p.translation[2])
                people.append(_monocular(p, counts))
            else:
                counts[DEPTH] += 1
                people.append(dataclasses.replace(p, translation=t, translation_source=DEPTH))
        return DepthPlacement(dataclasses.replace(result, people=tuple(people)), None, counts)


def _monocular(p: PersonPose, counts: collections.Counter) -> PersonPose:
    if p.translation is None:
        return dataclasses.replace(p, translation_source="")
    counts[MONOCULAR] += 1
    return dataclasses.replace(p, translation_source=MONOCULAR)


def _agrees(t_depth: np.ndarray, t_mono: np.ndarray) -> bool:
    """Whether the depth and monocular distances are within MAX_MONO_RATIO of each other."""
    a, b = float(np.linalg.norm(t_depth)), float(np.linalg.norm(t_mono))
    return b > 0 and math.isfinite(a) and 1.0 / MAX_MONO_RATIO <= a / b <= MAX_MONO_RATIO
