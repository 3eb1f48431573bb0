"""Several people per image with MediaPipe's legacy single-person pose solution.

The legacy ``mp.solutions.pose`` finds one person per call. To find several we run it, mask
the person it found (their box, filled with the image mean), and run it again, up to
``max_people`` times. People too small for the full-frame detector (under about 150 px tall)
are looked for in upscaled crops proposed by OpenCV's HOG people detector (no weights needed).

Only ``model_complexity=1`` is used: its model ships in the mediapipe wheel (complexities 0 and
2 try to download).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chatpose_ros.core.errors import BackendUnavailableError
from chatpose_ros.core.geometry import box_iou

if TYPE_CHECKING:
    from chatpose_ros.core.scene import Scene

log = logging.getLogger(__name__)

NUM_LANDMARKS = 33


@dataclass(frozen=True)
class Detection:
    """One person found by MediaPipe.

    Attributes:
        box: (x_min, y_min, x_max, y_max) px, from the visible landmarks (plus a margin).
        landmarks_2d: (33, 2) float32 image landmarks (px), MediaPipe order.
        world: (33, 3) float32 ``pose_world_landmarks`` (m, hip-centred; MediaPipe axes
            x right, y down, z away from the camera, i.e. camera optical axes).
        visibility: (33,) float32 in [0, 1].
        score: detection confidence in [0, 1] (mean visibility of the body landmarks).
    """

    box: tuple[float, float, float, float]
    landmarks_2d: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    score: float

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))



class MediaPipePersonDetector:
    """Find up to `max_people` people in an RGB image with 33 landmarks each.

    Args:
        max_people: most people returned per image.
        min_visibility: a pass whose mean body-landmark visibility is below this is rejected.
        min_box_px: people whose box is smaller than this (height, px) are dropped.
        use_hog: also look for small people in HOG proposals (upscaled crops).
        hog_min_frame_px: only images at least this tall are searched with HOG.
    """

    def __init__(self, max_people: int = 5, min_visibility: float = 0.5, min_box_px: float = 24.0,
                 use_hog: bool = True, hog_min_frame_px: int = 240) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - mediapipe is in requirements
            raise BackendUnavailableError("mediapipe (0.10.21, legacy solutions API) is not installed") from exc
        if not hasattr(mp, "solutions"):
            raise BackendUnavailableError("this mediapipe has no legacy 'solutions' API: install mediapipe==0.10.21")
        self.max_people = int(max_people)
        self.min_visibility = float(min_visibility)
        self.min_box_px = float(min_box_px)
        self.use_hog = bool(use_hog)
        self.hog_min_frame_px = int(hog_min_frame_px)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                            enable_segmentation=False, min_detection_confidence=0.5)
        self._lock = threading.Lock()
        self._hog = None

    def close(self) -> None:
        with self._lock:
            if self._pose is not None:
                self._pose.close()
                self._pose = None

    def __enter__(self) -> "MediaPipePersonDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one MediaPipe pass -------------------------------------------------------------
    def _run(self, image: np.ndarray, offset: tuple[float, float] = (0.0, 0.0),
             scale: float = 1.0) -> Detection | None:
        """Run MediaPipe on `image`; landmarks mapped back by (p / scale + offset)."""
        h, w = image.shape[:2]
        with self._lock:
            if self._pose is None:
                raise RuntimeError("detector is closed")
            res = self._pose.process(np.ascontiguousarray(image))
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        xy = np.array([[p.x * w, p.y * h] for p in lm], np.float32) / scale + np.float32(offset)
        vis = np.array([p.visibility for p in lm], np.float32)
        world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], np.float32)
        body = vis[11:29]  # shoulders .. ankles/heels
        score = float(body.mean())
        if score < self.min_visibility:
            return None
        return Detection(_landmark_box(xy, vis, w / scale, h / scale, offset), xy, world, vis, score)

    # -- public -------------------------------------------------------------------------
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> detections, largest first (deterministic)."""
        image = np.ascontiguousarray(image_rgb)
        H, W = image.shape[:2]
        fill = image.reshape(-1, 3).mean(0).astype(np.uint8)
        work = image.copy()
        found: list[Detection] = []
        for _ in range(self.max_people):
            det = self._run(work)
            if det is None or not self._accept(det, found, W, H):
                break
            found.append(det)
            _mask(work, det.box, fill)
        if self.use_hog and len(found) < self.max_people and H >= self.hog_min_frame_px:
            for crop_box in self._hog_proposals(image, found):
                if len(found) >= self.max_people:
                    break
                det = self._run_crop(image, crop_box)
                if det is not None and self._accept(det, found, W, H):
                    found.append(det)
        found.sort(key=lambda d: -d.area)
        return found

    def detect_near(self, image_rgb: np.ndarray, box: tuple[float, float, float, float],
                    margin: float = 0.3) -> Detection | None:
        """Look for one person only in `box` (xyxy px) grown by `margin` of its size on every side:
        one MediaPipe pass on the frame with everything outside that region filled with the image
        mean, instead of a full multi-person search (for tracking). Masking the full frame rather
        than cropping keeps MediaPipe's detector in the geometry it works best in (crops of a
        person near the border were seen to be missed where the masked frame was not)."""
        image = np.ascontiguousarray(image_rgb)
        H, W = image.shape[:2]
        x0, y0, x1, y1 = box
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        gx0, gy0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
        gx1, gy1 = int(min(W, x1 + mx)), int(min(H, y1 + my))
        if gx1 - gx0 < 8 or gy1 - gy0 < 8:
            return None
        work = np.empty_like(image)
        work[:] = image.reshape(-1, 3).mean(0).astype(np.uint8)
        work[gy0:gy1, gx0:gx1] = image[gy0:gy1, gx0:gx1]
        det = self._run(work)
        return det if det is not None and self._accept(det, [], W, H) else None

    def _accept(self, det: Detection, found: list[Detection], W: int, H: int) -> bool:
        if det.height < self.min_box_px:
            return False
        x0, y0, x1, y1 = det.box
        if x1 <= 0 or y1 <= 0 or x0 >= W or y0 >= H:
            return False
        return all(box_iou(det.box, f.box) < 0.4 for f in found)

    def _run_crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> Detection | None:
        import cv2

        x0, y0, x1, y1 = box
        crop = image[y0:y1, x0:x1]
        if crop.size == 0:
            return None
        scale = max(1.0, 384.0 / max(1, crop.shape[0]))
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        return self._run(crop, offset=(float(x0), float(y0)), scale=scale)

    def _hog_proposals(self, image: np.ndarray, found: list[Detection]) -> list[tuple[int, int, int, int]]:
        import cv2

        if self._hog is None:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        H, W = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        out = []
        order = np.argsort(-np.asarray(weights).ravel()) if len(rects) else []
        for i in order:
            x, y, w, h = (int(v) for v in rects[i])
            if float(np.ravel(weights)[i]) < 0.5:
                continue
            b = (max(0, x - w // 4), max(0, y - h // 8), min(W, x + w + w // 4), min(H, y + h + h // 8))
            if any(box_iou(tuple(float(v) for v in b), f.box) > 0.3 for f in found):
                continue
            out.append(b)
        return out


def _landmark_box(xy: np.ndarray, vis: np.ndarray, w: float, h: float,
                  offset: tuple[float, float]) -> tuple[float, float, float, float]:
    """Box around the landmarks that are visible enough (all of them if too few), +10% margin,
    clipped to the (offset) image."""
    pts = xy[vis > 0.3] if (vis > 0.3).sum() >= 4 else xy
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    ox, oy = offset
    return (float(max(ox, x0 - mx)), float(max(oy, y0 - my)),
            float(min(ox + w, x1 + mx)), float(min(oy + h, y1 + my)))


def _mask(image: np.ndarray, box: tuple[float, float, float, float], fill: np.ndarray) -> None:
    """Fill the box (in place) with `fill`, so the next pass finds somebody else."""
    H, W = image.shape[:2]
    x0, y0, x1, y1 = box
    image[max(0, int(y0)):min(H, int(np.ceil(y1))), max(0, int(x0)):min(W, int(np.ceil(x1)))] = fill


class MediaPipePerception:
    """MediaPipePersonDetector behind the perception interface: ``see(image) -> Scene`` with one
    ``blazepose33`` ScenePerson per detection (image landmarks, visibilities as scores, world
    landmarks), ``see_near(image, box) -> Scene`` (one pass around the box) and ``close()``."""

    def __init__(self, max_people: int = 5) -> None:
        self.detector = MediaPipePersonDetector(max_people=max_people)

    def close(self) -> None:
        self.detector.close()

    def see(self, image_rgb: np.ndarray, **_unused: object) -> "Scene":
        return _scene(image_rgb, self.detector.detect(image_rgb))

    def see_near(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> "Scene":
        det = self.detector.detect_near(image_rgb, box)
        return _scene(image_rgb, [] if det is None else [det])


def _scene(image: np.ndarray, dets: list[Detection]) -> "Scene":
    from chatpose_ros.core.scene import Scene, ScenePerson

    H, W = image.shape[:2]
    people = []
    for d in dets:
        xy = np.asarray(d.landmarks_2d, np.float32)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
        people.append(ScenePerson(box=d.box, score=d.score, layout="blazepose33", keypoints=xy,
                                  keypoint_scores=np.clip(d.visibility, 0, 1).astype(np.float32) * inside,
                                  world_keypoints=np.asarray(d.world, np.float32), truncated=not bool(inside.all())))
    return Scene(image_size=(W, H), people=tuple(people))
