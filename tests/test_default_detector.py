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


def test_features_same_function_real_and_synthetic(detector):
    from chatpose_ros.models.default import keypoints as kp
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.scenes import make_scene
    from chatpose_ros.models.default.person_features import FEATURE_DIM, observe_detection, scene_features

    img = load_photo("basketball1.png")
    dets = detector.detect(img)
    obs = [observe_detection(img, kp.mediapipe_to_keypoints(d.landmarks_2d), kp.mediapipe_to_keypoints(d.world))
           for d in dets]
    real = scene_features(obs)
    assert real.shape == (2, FEATURE_DIM) and np.isfinite(real).all()
    scene = make_scene(np.random.default_rng(0), load_mocap("test"), num_people=2)
    assert scene.features.shape == (len(scene.people), FEATURE_DIM)
    # the leftmost-rank feature orders the real people as their boxes do
    from chatpose_ros.models.default.person_features import FEATURE_BLOCKS

    rank_x = real[:, FEATURE_BLOCKS["box"]][:, 5]
    cx = [0.5 * (d.box[0] + d.box[2]) for d in dets]
    assert (np.argsort(rank_x) == np.argsort(cx)).all()
    # torso colour of a grayscale photo is achromatic
    assert (real[:, FEATURE_BLOCKS["upper"]][:, -1] > 0.5).all()


def test_colour_stats_separate_named_colours():
    from chatpose_ros.models.default.offline.scenes import COLOURS, clothing_pixels
    from chatpose_ros.models.default.person_features import colour_stats

    rng = np.random.default_rng(0)
    stats = {c: colour_stats(clothing_pixels(rng, c, 300)) for c in COLOURS}
    assert stats["white"][0] > stats["grey"][0] > stats["black"][0]  # Lab lightness
    assert stats["red"][1] > 0.2 and stats["blue"][2] < -0.2  # a* red, b* blue


def test_colour_descriptor_names_synthetic_garments():
    import torch

    from chatpose_ros.models.default.offline.scenes import clothing_pixels
    from chatpose_ros.models.default.person_features import (
        COLOUR_DESCRIPTOR_DIM,
        COLOUR_NAMES,
        FEATURE_BLOCKS,
        FEATURE_DIM,
        NUM_COLOUR_NAMES,
        colour_descriptor,
        colour_stats,
    )

    rng = np.random.default_rng(0)
    feats = np.zeros((10 * len(COLOUR_NAMES), FEATURE_DIM), np.float32)
    truth = []
    for i in range(len(feats)):
        c = i % len(COLOUR_NAMES)
        cast = rng.normal(0, 8.0, 3).astype(np.float32)
        feats[i, FEATURE_BLOCKS["upper"]] = colour_stats(clothing_pixels(rng, COLOUR_NAMES[c], 200, cast=cast))
        truth.append(c)
    desc = colour_descriptor(torch.from_numpy(feats))
    assert desc.shape == (len(feats), COLOUR_DESCRIPTOR_DIM)
    upper, lower = desc[:, :NUM_COLOUR_NAMES], desc[:, NUM_COLOUR_NAMES:]
    assert torch.allclose(upper.sum(-1), torch.ones(len(feats)))  # a soft assignment
    assert (lower == 0).all()  # a region without pixels names no colour
    acc = float((upper.argmax(-1) == torch.tensor(truth)).float().mean())
    assert acc >= 0.85, acc
