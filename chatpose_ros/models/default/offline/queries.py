"""Questions and answers for training and evaluating the default LLM.

- grounding queries about a synthetic scene: appearance ("the person in the red shirt"), space
  ("the leftmost person", "the one nearest the camera"), posture from
  :func:`posecodes.posture_labels` ("the person raising the left arm") and speculative
  phrasings mapped to posture labels ("who seems to be celebrating?"); a query is kept only
  when exactly one person of the scene satisfies it;
- counting questions (a short text answer, no pose);
- text-to-pose: :func:`posecodes.describe_pose` of a mocap pose -> that pose, and speculative
  text-to-pose ("what pose would a tired person take?" -> a bending/crouching pose).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from chatpose_ros.models.default.offline.mocap import MocapSet
from chatpose_ros.models.default.offline.posecodes import describe_pose, posture_labels
from chatpose_ros.models.default.offline.scenes import CANON_TO_CAMERA, Scene, make_scene

POSE_ANSWER = "Sure, it is [POSE]."

WRAPPERS = ("{x}", "What is the pose of {x}?", "Show me the pose of {x}.", "Give me the 3D pose of {x}.",
            "Can you find {x}?", "Where is {x}?", "{X}, please.", "I mean {x}.")
UPPER_TEMPLATES = ("the person in the {c} shirt", "the one wearing a {c} top", "the person dressed in {c} on top",
                   "the person with the {c} jacket")
LOWER_TEMPLATES = ("the one wearing {c} trousers", "the person in {c} pants", "the person with {c} shorts")
SPACE_TEMPLATES = {
    "left2": ("the person on the left", "the one on the left"),
    "right2": ("the person on the right", "the one on the right"),
    "leftmost": ("the leftmost person", "the person on the far left", "the person furthest to the left"),
    "rightmost": ("the rightmost person", "the person on the far right", "the person furthest to the right"),
    "middle": ("the person in the middle", "the one in the centre"),
    "nearest": ("the one nearest the camera", "the closest person", "the person in front"),
    "farthest": ("the person farthest away", "the one in the back", "the person furthest from the camera"),
}
POSTURE_TEMPLATES = ("the person {l}", "the one {l}", "who is {l}?", "the person who is {l}")
# speculative phrasing -> any of these posture labels
SPECULATIVE: dict[str, tuple[str, ...]] = {
    "who looks ready to fight?": ("raising both arms",),
    "who seems to be celebrating?": ("raising both arms",),
    "who is cheering?": ("raising both arms",),
    "who wants to ask a question?": ("raising the left arm", "raising the right arm"),
    "who is waving?": ("raising the left arm", "raising the right arm"),
    "who looks ready to sprint?": ("crouching",),
    "who seems to be hiding?": ("crouching", "squatting"),
    "who is picking something up?": ("squatting", "bending forward"),
    "who looks tired?": ("bending forward",),
    "who is playing football?": ("kicking",),
    "who seems to be resting?": ("sitting",),
    "who is balancing?": ("arms stretched out",),
    "who is standing to attention?": ("standing straight",),
}
COUNT_QUESTIONS = ("How many people are in the image?", "How many people do you see?", "Count the people.")
TEXT_POSE_TEMPLATES = ("Generate this pose: {d}", "Give me the SMPL pose. {d}", "{d} Show me this pose.",
                       "Can you make a 3D pose? {d}")
SPECULATIVE_POSE: dict[str, tuple[str, ...]] = {
    "What pose would a tired person take?": ("bending forward", "crouching"),
    "Show me how someone celebrates a goal.": ("raising both arms",),
    "What does a person waving look like?": ("raising the left arm", "raising the right arm"),
    "How does someone look when they kick a ball?": ("kicking",),
    "Show me a person resting.": ("sitting", "squatting"),
    "What pose would someone hiding take?": ("crouching", "squatting"),
    "Show me someone standing to attention.": ("standing straight",),
    "What pose does a person balancing take?": ("arms stretched out",),
}


@dataclass(frozen=True)
class Sample:
    """One training / evaluation example.

    features: (N, F) person features (N = 0 for text-only); target: index of the person meant
    (-1 for none); rotmats: (24, 3, 3) target pose (joint 0 in the camera frame) or None."""

    query: str
    answer: str
    features: np.ndarray
    target: int
    rotmats: np.ndarray | None
    kind: str


def _wrap(rng: np.random.Generator, x: str) -> str:
    w = WRAPPERS[int(rng.integers(len(WRAPPERS)))]
    if x.endswith("?"):
        return x[0].upper() + x[1:]
    return w.format(x=x, X=x[0].upper() + x[1:])


def scene_queries(scene: Scene, rng: np.random.Generator) -> list[tuple[str, int, str]]:
    """Every (query, target index, kind) that identifies exactly one person in `scene`."""
    people = scene.people
    n = len(people)
    W, _ = scene.image_size
    out: list[tuple[str, int, str]] = []

    def add(phrases: tuple[str, ...], members: set[int], kind: str, **fmt: str) -> None:
        if len(members) == 1:
            (t,) = members
            out.append((_wrap(rng, phrases[int(rng.integers(len(phrases)))].format(**fmt)), t, kind))

    if not scene.gray:
        for c in {p.upper for p in people}:
            add(UPPER_TEMPLATES, {i for i, p in enumerate(people) if p.upper == c}, "appearance", c=c)
        for c in {p.lower for p in people}:
            add(LOWER_TEMPLATES, {i for i, p in enumerate(people) if p.lower == c}, "appearance", c=c)
    u = np.array([p.obs.kp2d[:, 0].mean() for p in people]) / W
    z = np.array([p.position[2] for p in people])
    order = np.argsort(u)
    if n >= 2:
        gaps = np.diff(u[order])
        if gaps[0] > 0.05:
            add(SPACE_TEMPLATES["left2" if n == 2 else "leftmost"], {int(order[0])}, "space")
            if n > 2:
                add(SPACE_TEMPLATES["leftmost"], {int(order[0])}, "space")
        if gaps[-1] > 0.05:
            add(SPACE_TEMPLATES["right2" if n == 2 else "rightmost"], {int(order[-1])}, "space")
        if n == 3 and gaps.min() > 0.05:
            add(SPACE_TEMPLATES["middle"], {int(order[1])}, "space")
        zo = np.argsort(z)
        if z[zo[1]] > 1.3 * z[zo[0]]:
            add(SPACE_TEMPLATES["nearest"], {int(zo[0])}, "space")
        if z[zo[-1]] > 1.3 * z[zo[-2]]:
            add(SPACE_TEMPLATES["farthest"], {int(zo[-1])}, "space")
    labels = [posture_labels(p.joints_canon) for p in people]
    for lab in set().union(*labels):
        add(POSTURE_TEMPLATES, {i for i, ls in enumerate(labels) if lab in ls}, "posture", l=lab)
    for phrase, labs in SPECULATIVE.items():
        members = {i for i, ls in enumerate(labels) if ls & set(labs)}
        if len(members) == 1:
            out.append((phrase[0].upper() + phrase[1:], next(iter(members)), "speculative"))
    if n == 1 and not out:
        out.append((_wrap(rng, "the person"), 0, "space"))
    return out


def canonical_pose(rotmats: np.ndarray) -> np.ndarray:
    """(24, 3, 3) mocap rotations (canonical y-up frame, any heading) -> the same pose facing
    the camera, upright, joint 0 in the camera optical frame (for text-to-pose targets)."""
    R0 = rotmats[0]
    fwd = R0[:, 2]
    yaw = float(np.arctan2(fwd[0], fwd[2]))
    c, s = np.cos(-yaw), np.sin(-yaw)
    unyaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)
    out = rotmats.astype(np.float32).copy()
    out[0] = CANON_TO_CAMERA @ unyaw @ R0
    return out


class SampleStream:
    """Random samples from a mocap split: the training / evaluation data of the LLM.

    mix: probabilities of (grounding, counting, text-to-pose, speculative text-to-pose)."""

    def __init__(self, mocap: MocapSet, seed: int, mix: tuple[float, float, float, float] = (0.65, 0.05, 0.2, 0.1),
                 features: Callable[[Scene], np.ndarray] | None = None) -> None:
        """`features` (scene -> (N, FEATURE_DIM)) replaces the scenes' own person features (e.g.
        3D keypoints from the regressor instead of the synthetic world keypoints); the samples
        drawn stay the same."""
        self.mocap = mocap
        self.features = features
        self.rng = np.random.default_rng(seed)
        self.mix = np.asarray(mix) / np.sum(mix)
        self._labels: list[frozenset[str]] | None = None
        self.max_sentences = 3  # short descriptions keep sequences short on a CPU

    def labels(self) -> list[frozenset[str]]:
        if self._labels is None:
            self._labels = [posture_labels(j) for j in self.mocap.joints]
        return self._labels

    def grounding(self) -> Sample:
        while True:
            scene = make_scene(self.rng, self.mocap)
            qs = scene_queries(scene, self.rng)
            if qs:
                kinds = sorted({k for _, _, k in qs})  # balance kinds, then pick a query of that kind
                kind = kinds[int(self.rng.integers(len(kinds)))]
                qs = [x for x in qs if x[2] == kind]
                q, t, kind = qs[int(self.rng.integers(len(qs)))]
                feats = scene.features if self.features is None else self.features(scene)
                return Sample(q, POSE_ANSWER, feats, t, scene.people[t].rotmats_cam, kind)

    def counting(self) -> Sample:
        scene = make_scene(self.rng, self.mocap)
        n = len(scene.people)
        ans = "There is one person." if n == 1 else f"There are {n} people."
        return Sample(COUNT_QUESTIONS[int(self.rng.integers(len(COUNT_QUESTIONS)))], ans, scene.features, -1, None, "count")

    def text_pose(self) -> Sample:
        i = int(self.rng.integers(len(self.mocap)))
        d = " ".join(describe_pose(self.mocap.joints[i], self.rng).split(". ")[:self.max_sentences]).strip()
        d = d if d.endswith(".") else d + "."
        q = TEXT_POSE_TEMPLATES[int(self.rng.integers(len(TEXT_POSE_TEMPLATES)))].format(d=d)
        return Sample(q, POSE_ANSWER, np.zeros((0, 0), np.float32), -1, canonical_pose(self.mocap.rotmats[i]), "text2pose")

    def speculative_pose(self) -> Sample:
        labels = self.labels()
        keys = list(SPECULATIVE_POSE)
        while True:
            q = keys[int(self.rng.integers(len(keys)))]
            cand = [i for i, ls in enumerate(labels) if ls & set(SPECULATIVE_POSE[q])]
            if cand:
                i = cand[int(self.rng.integers(len(cand)))]
                return Sample(q, POSE_ANSWER, np.zeros((0, 0), np.float32), -1,
                              canonical_pose(self.mocap.rotmats[i]), "speculative_pose")

    def __next__(self) -> Sample:
        k = int(self.rng.choice(4, p=self.mix))
        return (self.grounding, self.counting, self.text_pose, self.speculative_pose)[k]()

    def __iter__(self) -> "SampleStream":
        return self
