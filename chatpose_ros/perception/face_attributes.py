"""Gender from the face, read on a face crop made from the body keypoints perception already has.

    faces = FaceGenderModel.load()
    evidence = faces.read(image, scene, indices=[0, 2])   # {person index: FaceGender}

No face detector runs: the crop is centred between the eyes and the nose of the person's COCO
keypoints (MoveNet: nose, eyes, ears) and sized from them (the eye distance, the ear distance or
the nose-to-ear distance, whichever says the face is widest: a profile shrinks the eye distance).
The model is oarriaga/face_classification's gender mini-Xception (MIT; trained on IMDB-WIKI face
crops with a 40 % margin, so the crop keeps a margin around the face): grey 64 x 64 in [-1, 1]
-> softmax (woman, man), converted to ONNX by scripts/convert_perception_models.py. Each face is
read twice, as seen and mirrored, and the two logits averaged (on the diagnosis sets this separated
men from women better: ROC AUC 0.85 against 0.82 at the chosen crop).

A face is read only when the nose and both eyes were seen (keypoint score >= FACE_SEEN) and the
person does not face away; what comes back is p(male) with the face width in px, so that the
caller decides how big and how sure a face must be (grounding.ground's GENDER_* thresholds).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from chatpose_ros.core.errors import InferenceError, ModelLoadError
from chatpose_ros.core.scene import Scene, ScenePerson

log = logging.getLogger(__name__)

GENDER_MODEL = Path(__file__).resolve().parents[1] / "assets" / "default" / "perception" / "gender.onnx"
INPUT = 64             # the model's input side (px)
FACE_SEEN = 0.3        # keypoint score at which the nose / eyes / ears count as seen
CROP_SCALE = 1.5       # crop side = this x the face width (1.2 / 1.5 / 1.8 / 2.2 / 2.6 tried on sets 1 + 2: 1.5 best)
EYES_TO_FACE = 2.4     # face width ~ this x the distance between the eyes (frontal)
NOSE_EAR_TO_FACE = 1.7  # face width ~ this x the nose-to-ear distance (profile)
MIN_FACE_PX = 6.0      # narrower faces are not read at all


@dataclass(frozen=True)
class FaceGender:
    """What the face says.

    Attributes:
        p_male: the model's probability that the face is a man's, in [0, 1].
        face_px: the face width in image px (how much the model had to read).
        box: the crop (x_min, y_min, x_max, y_max) px, before clipping to the image.
    """

    p_male: float
    face_px: float
    box: tuple[float, float, float, float]


def _seen(p: ScenePerson, name: str) -> np.ndarray | None:
    return p.seen_keypoint(name, FACE_SEEN)


def face_box(p: ScenePerson) -> tuple[tuple[float, float, float, float], float] | None:
    """(crop box (x_min, y_min, x_max, y_max) px, face width px) from the person's face keypoints,
    or None when the nose or either eye was not seen, the person faces away, or the face is
    narrower than MIN_FACE_PX."""
    facing = p.attribute("facing")
    if facing is not None and facing.value == "away":
        return None
    nose, le, re_ = _seen(p, "nose"), _seen(p, "left_eye"), _seen(p, "right_eye")
    if nose is None or le is None or re_ is None:
        return None
    eyes = 0.5 * (le + re_)
    widths = [EYES_TO_FACE * float(np.linalg.norm(le - re_))]
    ears = [e for e in (_seen(p, "left_ear"), _seen(p, "right_ear")) if e is not None]
    if len(ears) == 2:
        widths.append(float(np.linalg.norm(ears[0] - ears[1])))
    widths += [NOSE_EAR_TO_FACE * float(np.linalg.norm(nose - e)) for e in ears]
    width = max(widths)
    if width < MIN_FACE_PX:
        return None
    centre = 0.5 * (eyes + nose)
    half = 0.5 * CROP_SCALE * width
    return (float(centre[0] - half), float(centre[1] - half), float(centre[0] + half), float(centre[1] + half)), width


def face_crop(grey: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(INPUT, INPUT) uint8 crop of `grey` ((H, W) uint8) inside `box` (px; the part outside the
    image is filled by replicating the border)."""
    h, w = grey.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = grey[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    interp = cv2.INTER_AREA if crop.shape[0] > INPUT else cv2.INTER_LINEAR
    return cv2.resize(crop, (INPUT, INPUT), interpolation=interp)


class FaceGenderModel:
    """The gender model on ONNX Runtime (CPU). Thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, session) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name

    @classmethod
    def load(cls, path: Path | str = GENDER_MODEL, threads: int = 1) -> "FaceGenderModel":
        """ModelLoadError when the file is missing or not a model ONNX Runtime can load."""
        import onnxruntime as ort  # noqa: PLC0415 - as perception.py: only profiles that read faces load it

        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"face gender model not found: {path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
            raise ModelLoadError(f"cannot load the face gender model {path}: {exc}") from exc
        return cls(session)

    def p_male(self, crops: np.ndarray) -> np.ndarray:
        """(N,) p(male) of (N, 64, 64) uint8 grey face crops."""
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (INPUT, INPUT):
            raise InferenceError(f"face crops must be (N, {INPUT}, {INPUT}), got {crops.shape}")
        if not len(crops):
            return np.zeros(0, np.float32)
        x = (crops.astype(np.float32) / 255.0 - 0.5) * 2.0
        x = np.concatenate([x, x[:, :, ::-1]])[..., None]  # each face and its mirror image
        probs = np.clip(self.session.run(None, {self.input: x})[0][:, 1], 1e-6, 1 - 1e-6)  # (woman, man)
        logit = np.log(probs / (1.0 - probs))
        return (1.0 / (1.0 + np.exp(-0.5 * (logit[:len(crops)] + logit[len(crops):])))).astype(np.float32)

    def read(self, image: np.ndarray, scene: Scene, indices=None) -> dict[int, FaceGender]:
        """{index into scene.people: FaceGender} for the people (all, or `indices`) whose face
        keypoints were seen; `image` is (H, W, 3) uint8 RGB, the one `scene` was seen on."""
        wanted = range(len(scene.people)) if indices is None else indices
        found = [(i, fb) for i in wanted if (fb := face_box(scene.people[i])) is not None]
        if not found:
            return {}
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        p = self.p_male(np.stack([face_crop(grey, box) for _, (box, _) in found]))
        return {i: FaceGender(float(pm), width, box) for (i, (box, width)), pm in zip(found, p, strict=True)}
