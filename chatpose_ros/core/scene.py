"""What perception sees in one image: the `Scene` every later stage reads.

Perception (a profile's detector, keypoint and attribute models) returns one `Scene`; the
person tokens, grounding, the pose regressor, the answer generator and the tracker read it.
The type knows nothing of ROS and nothing of any model: it is plain data.

Conventions:
- pixel coordinates: x right, y down, origin at the top-left corner of the image;
- boxes: (x_min, y_min, x_max, y_max) px;
- keypoints: a named layout (`KEYPOINT_LAYOUTS`), (K, 2) px with (K,) confidences in [0, 1];
  a keypoint outside the image or not seen has confidence 0 (its position is then a guess);
- world keypoints: (K, 3) m, hip-centred, camera optical axes (x right, y down, z forward),
  only where a model gives them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# COCO-17 (MoveNet, CenterNet keypoints) and BlazePose-33 (BlazePose landmark models).
COCO17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
BLAZEPOSE33: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
KEYPOINT_LAYOUTS: dict[str, tuple[str, ...]] = {"coco17": COCO17, "blazepose33": BLAZEPOSE33}

# Attribute names a person may carry (`ScenePerson.attributes`); values are lower-case words.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "upper_colour",   # clothing colour of the torso, e.g. "red"
    "lower_colour",   # clothing colour of the legs
    "facing",         # "camera", "away", "left", "right" (image left / right)
    "posture",        # "standing", "sitting", "lying", "crouching", "walking", ...
    "gender",         # from a face model, where one with a suitable licence ships
    "age",            # an age band, e.g. "adult", "child"
    "expression",     # from a face model, e.g. "neutral", "happy", "angry"
)


@dataclass(frozen=True)
class Attribute:
    """One attribute value with its confidence in [0, 1]."""

    value: str
    confidence: float


@dataclass(frozen=True)
class SceneObject:
    """An object a question may refer to.

    Attributes:
        label: COCO class name ("sports ball", "chair", ...).
        box: (x_min, y_min, x_max, y_max) px.
        score: detector confidence in [0, 1].
    """

    label: str
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class ObjectRelation:
    """A person's relation to an object: `relation` is "holding" (object box at a wrist) or
    "next_to"; `object_index` indexes `Scene.objects`."""

    object_index: int
    relation: str
    confidence: float


@dataclass(frozen=True)
class ScenePerson:
    """One person as perception saw them.

    Attributes:
        box: (x_min, y_min, x_max, y_max) px, clipped to the image.
        score: detection confidence in [0, 1].
        layout: key of `KEYPOINT_LAYOUTS` naming the order of the keypoints.
        keypoints: (K, 2) float32 px.
        keypoint_scores: (K,) float32 in [0, 1]; 0 for joints not seen (cut by the image
            edge, occluded).
        world_keypoints: (K, 3) float32 m (hip-centred, camera optical axes), or None.
        truncated: True when the body is cut by the image edge (keypoints expected outside).
        attributes: name (`ATTRIBUTE_NAMES`) -> Attribute; only what was measured.
        relations: objects held or next to this person.
    """

    box: tuple[float, float, float, float]
    score: float
    layout: str
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    world_keypoints: np.ndarray | None = None
    truncated: bool = False
    attributes: dict[str, Attribute] = field(default_factory=dict)
    relations: tuple[ObjectRelation, ...] = ()

    def __post_init__(self) -> None:
        names = KEYPOINT_LAYOUTS.get(self.layout)
        if names is None:
            raise ValueError(f"unknown keypoint layout {self.layout!r}: expected one of {sorted(KEYPOINT_LAYOUTS)}")
        k = len(names)
        if np.shape(self.keypoints) != (k, 2) or np.shape(self.keypoint_scores) != (k,):
            raise ValueError(f"{self.layout} keypoints must be ({k}, 2) with ({k},) scores, got "
                             f"{np.shape(self.keypoints)} and {np.shape(self.keypoint_scores)}")
        if self.world_keypoints is not None and np.shape(self.world_keypoints) != (k, 3):
            raise ValueError(f"world keypoints must be ({k}, 3), got {np.shape(self.world_keypoints)}")

    def keypoint(self, name: str) -> tuple[np.ndarray, float]:
        """((2,) px, confidence) of the named keypoint of this person's layout."""
        i = KEYPOINT_LAYOUTS[self.layout].index(name)
        return self.keypoints[i], float(self.keypoint_scores[i])

    def seen_keypoint(self, name: str, min_score: float) -> np.ndarray | None:
        """(2,) float32 px of the named keypoint when its confidence is at least `min_score`; None
        when it is lower or the layout has no such keypoint."""
        try:
            xy, score = self.keypoint(name)
        except ValueError:
            return None
        return np.asarray(xy, np.float32) if score >= min_score else None

    def attribute(self, name: str) -> Attribute | None:
        return self.attributes.get(name)


@dataclass(frozen=True)
class Scene:
    """Everything perception found in one image.

    Attributes:
        image_size: (width, height) px.
        people: the people, in no particular order (indices are what grounding returns).
        objects: the objects (COCO classes other than person).
        timings_ms: stage name -> milliseconds.
    """

    image_size: tuple[int, int]
    people: tuple[ScenePerson, ...] = ()
    objects: tuple[SceneObject, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when no person was found."""
        return not self.people

    def objects_of(self, person: int, relation: str | None = None) -> list[tuple[SceneObject, ObjectRelation]]:
        """The objects related to people[person] (optionally only one relation kind)."""
        return [(self.objects[r.object_index], r) for r in self.people[person].relations
                if relation is None or r.relation == relation]
