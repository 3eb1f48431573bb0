"""Default profile: multi-person MediaPipe detector and person features on real photos."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_photo

pytest.importorskip("mediapipe")
cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def detector():
    from chatpose_ros.models.default.detector import MediaPipePersonDetector

    with MediaPipePersonDetector(max_people=5) as d:
        yield d


def test_two_people_in_basketball(detector):
    for name in ("basketball1.png", "basketball2.png"):
        dets = detector.detect(load_photo(name))
        assert len(dets) == 2, name
        lefts = sorted(d.box[0] for d in dets)
        assert lefts[0] < 200 and lefts[1] > 400, name  # one on each side of the frame
        for d in dets:
            assert d.landmarks_2d.shape == (33, 2) and d.world.shape == (33, 3) and d.visibility.shape == (33,)
            assert 0.5 <= d.score <= 1.0
            assert np.isfinite(d.world).all() and np.abs(d.world).max() < 2.0  # metres, hip-centred


def test_one_person_in_messi_and_deterministic(detector):
    img = load_photo("messi5.jpg")
    a, b = detector.detect(img), detector.detect(img)
    assert len(a) == 1
    assert a[0].box == b[0].box and np.array_equal(a[0].landmarks_2d, b[0].landmarks_2d)


def test_empty_image_finds_nobody(detector):
    assert detector.detect(np.full((240, 320, 3), 127, np.uint8)) == []
