"""Perception on a GPU provider, checked against the CPU provider before it is used.

An fp16 TensorRT engine (or a CUDA kernel) can differ from the CPU enough to lose or move
people. `checked_perception` builds perception under a provider plan (core/onnx_providers.py);
when a GPU provider runs, it sees the parity image (a photo of three people shipped beside the
models) with it and with the CPU provider: every confident CPU person (score >= CONFIDENT) must
be found (box IoU >= MATCH_IOU) and their keypoints seen by both lie at most MAX_KEYPOINT_PX
apart on average. Otherwise the next provider of the plan is tried (TensorRT -> CUDA -> CPU).
One log line says what runs and why.

`compare_scenes` is also what the GPU check (tools/gpu_check.py) reports on its frames.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chatpose_ros.core.geometry import box_iou
from chatpose_ros.core.onnx_providers import PROVIDERS, ProviderPlan
from chatpose_ros.core.scene import Scene

log = logging.getLogger(__name__)

MATCH_IOU = 0.5  # a GPU person is the CPU person when their boxes overlap this much
CONFIDENT = 0.3  # CPU people (and keypoints) at or above this score must be found
MAX_KEYPOINT_PX = 8.0  # mean keypoint distance allowed (px): about one MoveNet heatmap cell at 480 px
MIN_FOUND = 1.0  # fraction of the confident CPU people the GPU must find


@dataclass(frozen=True)
class Parity:
    """How a GPU provider's scenes compare with the CPU's.

    Attributes:
        people_cpu / people_gpu: people found by each (all scores).
        confident: CPU people at or above CONFIDENT; found: those the GPU found (box IoU).
        keypoint_px_mean / keypoint_px_max: distance (px) of keypoints both see at or above
            CONFIDENT, over the found people (0 when there are none).
    """

    people_cpu: int
    people_gpu: int
    confident: int
    found: int
    keypoint_px_mean: float
    keypoint_px_max: float

    @property
    def ok(self) -> bool:
        return self.found >= MIN_FOUND * self.confident and self.keypoint_px_mean <= MAX_KEYPOINT_PX

    def line(self) -> str:
        return (f"{self.found}/{self.confident} confident people found ({self.people_gpu} vs {self.people_cpu} in all), "
                f"keypoints {self.keypoint_px_mean:.1f} px mean, {self.keypoint_px_max:.1f} px max")


def _match(cpu_people, gpu_people) -> tuple[int, int, list[float]]:
    """(confident CPU people, of them found on the GPU, keypoint distances px)."""
    used: set[int] = set()
    confident = found = 0
    dists: list[float] = []
    for p in cpu_people:
        if p.score < CONFIDENT:
            continue
        confident += 1
        ious = [box_iou(p.box, q.box) if k not in used else 0.0 for k, q in enumerate(gpu_people)]
        if not ious or max(ious) < MATCH_IOU:
            continue
        j = int(np.argmax(ious))
        used.add(j)
        found += 1
        q = gpu_people[j]
        seen = (p.keypoint_scores >= CONFIDENT) & (q.keypoint_scores >= CONFIDENT)
        dists.extend(np.linalg.norm(p.keypoints[seen] - q.keypoints[seen], axis=1).tolist())
    return confident, found, dists


def compare_scenes(cpu: Sequence[Scene], gpu: Sequence[Scene]) -> Parity:
    """Parity of matching scenes (same images) from the CPU and a GPU provider."""
    confident = found = 0
    dists: list[float] = []
    for a, b in zip(cpu, gpu, strict=True):
        c, f, d = _match(a.people, b.people)
        confident, found, dists = confident + c, found + f, dists + d
    return Parity(sum(len(s.people) for s in cpu), sum(len(s.people) for s in gpu), confident, found,
                  float(np.mean(dists)) if dists else 0.0, float(np.max(dists)) if dists else 0.0)


def parity_image() -> np.ndarray:
    """(H, W, 3) uint8 RGB: the photo of three people shipped beside the perception models."""
    from chatpose_ros.core.image_files import read_image

    from .perception import PERCEPTION_DIR

    return read_image(PERCEPTION_DIR / "parity.jpg")


def checked_perception(plan: ProviderPlan, make: Callable[[ProviderPlan], object],
                       image: np.ndarray | None = None):
    """`make(plan)` (a Perception), checked against `make(CPU plan)` on `image` (default: the
    parity image) when a GPU provider runs; on a mismatch the next provider of the plan is tried.
    Logs one line naming what runs (nothing for a CPU-only plan)."""
    if not plan.gpu:
        return make(plan)
    image = parity_image() if image is None else image
    reference: Scene | None = None
    rejected: list[str] = []
    current = plan
    while True:
        perception = make(current)
        provider = perception.provider
        if provider == "cpu":
            break
        if reference is None:
            cpu = make(ProviderPlan())
            reference = cpu.see(image)
            cpu.close()
        parity = compare_scenes([reference], [perception.see(image)])
        if parity.ok:
            break
        rejected.append(f"{PROVIDERS[provider]} differs from the CPU on the parity image ({parity.line()})")
        perception.close()
        rest = current.providers[current.providers.index(provider) + 1:]
        current = replace(current, providers=rest)
    why = "; ".join(rejected)
    summary = perception.provider_summary
    first = plan.providers[0]
    level = logging.INFO if provider == first else logging.WARNING
    log.log(level, "perception: %s%s", summary, f"; {why}" if why else ("" if provider == "cpu" else
                                                                          "; parity with the CPU checked"))
    return perception
