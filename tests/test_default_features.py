"""Default profile: the person-token features, the same function for real people (perception
Scene on real photos) and synthetic ones, and the colour statistics they carry."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_photo

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def perception():
    from chatpose_ros.perception.perception import Perception

    return Perception()


def test_features_same_function_real_and_synthetic(perception):
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.scenes import make_scene
    from chatpose_ros.models.default.person_features import FEATURE_BLOCKS, FEATURE_DIM, observe_detection, scene_features
    from chatpose_ros.perception.scene_input import person_keypoints

    img = load_photo("basketball1.png")
    scene = perception.see(img)
    assert len(scene.people) == 2
    obs = []
    for p in scene.people:
        kp2d, score, world = person_keypoints(p)
        assert kp2d.shape == (15, 2) and score.shape == (15,)
        assert score[-2:].tolist() == [0.0, 0.0] or p.layout != "coco17"  # COCO-17 has no feet
        kp3d = world if world is not None else np.concatenate([kp2d, np.zeros((15, 1), np.float32)], 1)
        obs.append(observe_detection(img, kp2d, kp3d))
    real = scene_features(obs)
    assert real.shape == (2, FEATURE_DIM) and np.isfinite(real).all()
    synthetic = make_scene(np.random.default_rng(0), load_mocap("test"), num_people=2)
    assert synthetic.features.shape == (len(synthetic.people), FEATURE_DIM)
    # the leftmost-rank feature orders the real people as their boxes do
    rank_x = real[:, FEATURE_BLOCKS["box"]][:, 5]
    cx = [0.5 * (p.box[0] + p.box[2]) for p in scene.people]
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
        FEATURE_BLOCKS,
        FEATURE_DIM,
        colour_descriptor,
        colour_stats,
    )
    from chatpose_ros.perception.colours import COLOUR_NAMES, NUM_COLOUR_NAMES

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
