"""The pipeline seam: the one small interface between the node (or CLI) and a model.

    result = pipeline.estimate(image, query)   # a question about an image (or text only)
    people = pipeline.observe(image)           # every person in a frame, for tracking

Profiles implement this seam; the registry (chatpose_ros.profiles.build_pipeline) picks one by
name: the core imports no profile.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import InvalidImageError, InvalidQueryError
from .types import PersonPose, PoseResult


@runtime_checkable
class PosePipeline(Protocol):
    """What every model profile provides."""

    model_id: str

    def estimate(self, image: np.ndarray | None, query: str, on_pose: Callable[[PoseResult], None] | None = None,
                 on_text: Callable[[str], None] | None = None) -> PoseResult:
        """Answer `query` about `image`.

        Streaming (optional; a profile that does not stream may ignore both callbacks, and the
        caller then publishes everything from the returned result):
        - `on_pose(result)` is called at most once, as soon as the model has decided who is
          meant (or that nobody is) and the pose is ready, before the answer's words are
          generated: `result` holds people, selected, no_match, grounding_confidence and the
          timings so far; its `answer` may be "" or partial;
        - `on_text(delta)` is called with each new piece of the answer text, in order; the
          pieces joined are the returned result's `answer`.

        Args:
            image: (H, W, 3) uint8 RGB, or None for text-only questions.
            query: the natural-language question (validated by `validate_query`).
        Raises:
            InvalidImageError, InvalidQueryError, InferenceError.
        """
        ...

    def observe(self, image: np.ndarray, near: tuple[float, float, float, float] | None = None) -> list[PersonPose]:
        """Every person found in `image` ((H, W, 3) uint8 RGB) with box, pose and appearance,
        for tracking; an empty list when the profile cannot localise people. `near` (xyxy px)
        hints where the tracked person is expected: a profile may search only there."""
        ...

    def close(self) -> None:
        """Release the model (GPU memory, threads)."""
        ...


def validate_query(query: object, max_chars: int) -> str:
    """Return the cleaned query (control characters removed, whitespace collapsed).

    Raises InvalidQueryError when it is not text, not valid UTF-8, empty, or too long.
    """
    if isinstance(query, bytes):
        try:
            query = query.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidQueryError(f"query is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be text, got {type(query).__name__}")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in query):
        raise InvalidQueryError("query is not valid UTF-8 (contains surrogate code points)")
    if len(query) > max_chars:
        raise InvalidQueryError(f"query has {len(query)} characters, more than max_query_chars={max_chars}")
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in query)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InvalidQueryError("query is empty (or only whitespace and control characters)")
    return cleaned


def validate_image(image: object, max_pixels: int) -> np.ndarray:
    """Check an RGB image: (H, W, 3) uint8 with 0 < H*W <= max_pixels. Returns it unchanged."""
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidImageError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise InvalidImageError(f"image is empty ({w}x{h})")
    if h * w > max_pixels:
        raise InvalidImageError(f"image has {w}x{h}={w * h} pixels, more than max_image_pixels={max_pixels}")
    return image
