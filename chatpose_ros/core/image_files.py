"""Image files to arrays: the photo loader of the runtime and its tools (CLI, demo, perception
bench, benchmarks, evaluations). The chatpose profile's training data (models/chatpose/data.py)
is read with Pillow instead, and tests read their fixtures with OpenCV directly."""
from __future__ import annotations

import numpy as np

from .errors import InvalidImageError


def read_image(path: str) -> np.ndarray:
    """Read an image file to (H, W, 3) uint8 RGB; InvalidImageError when unreadable."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidImageError(f"cannot read image file {str(path)!r} (missing or not an image)")
    return np.ascontiguousarray(img[..., ::-1])
