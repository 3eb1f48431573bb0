"""Default profile: the per-person feature vector of real people (perception Scene on real photos),
the colour statistics it carries (the tracker's appearance vector) and the named-colour
prototypes perception names clothing with."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_photo

cv2 = pytest.importorskip("cv2")

SKIN = (200, 160, 130)  # sRGB of the skin that contaminates garment pixels


def garment_pixels(rng: np.random.Generator, colour: str, n: int, cast: np.ndarray | None = None) -> np.ndarray:
    """(n, 3) uint8 RGB pixels of a garment of a named colour as a camera sees it: hue,
    saturation and value jitter, per-pixel shading (folds), a colour cast, up to 25 % of the
    pixels skin or background, sensor noise."""
    from chatpose_ros.models.default.person_features import NAMED_COLOURS

    base = np.array(NAMED_COLOURS[colour], np.uint8).reshape(1, 1, 3)
    hsv = cv2.cvtColor(base, cv2.COLOR_RGB2HSV).astype(np.float32)[0, 0]
    hsv[0] = (hsv[0] + rng.uniform(-6, 6)) % 180
    hsv[1] = np.clip(hsv[1] * rng.uniform(0.7, 1.15), 0, 255)
    hsv[2] = np.clip(hsv[2] * rng.uniform(0.65, 1.1), 0, 255)
    rgb = cv2.cvtColor(hsv.astype(np.uint8).reshape(1, 1, 3), cv2.COLOR_HSV2RGB).astype(np.float32)[0, 0]
    px = rgb[None] * np.clip(rng.normal(1.0, 0.15, (n, 1)), 0.4, 1.5)
    if cast is not None:
        px = px + cast[None]
    k = int(rng.uniform(0.0, 0.25) * n)
    if k:
        idx = rng.choice(n, k, replace=False)
        px[idx] = np.where(rng.random((k, 1)) < 0.5, np.array(SKIN, np.float32)[None],
                           rng.uniform(0, 255, (k, 3)).astype(np.float32))
    return np.clip(px + rng.normal(0, 5.0, px.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def perception():
    from chatpose_ros.models.default.perception import Perception

    return Perception()


def test_features_of_real_people(perception):
    from chatpose_ros.models.default.person_features import FEATURE_BLOCKS, FEATURE_DIM, observe_detection, scene_features
    from chatpose_ros.models.default.scene_input import person_keypoints

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
    # the leftmost-rank feature orders the real people as their boxes do
    rank_x = real[:, FEATURE_BLOCKS["box"]][:, 5]
    cx = [0.5 * (p.box[0] + p.box[2]) for p in scene.people]
    assert (np.argsort(rank_x) == np.argsort(cx)).all()
    # torso colour of a grayscale photo is achromatic
    assert (real[:, FEATURE_BLOCKS["upper"]][:, -1] > 0.5).all()


def test_colour_stats_separate_named_colours():
    from chatpose_ros.models.default.person_features import NAMED_COLOURS, colour_stats

    rng = np.random.default_rng(0)
    stats = {c: colour_stats(garment_pixels(rng, c, 300)) for c in NAMED_COLOURS}
    assert stats["white"][0] > stats["grey"][0] > stats["black"][0]  # Lab lightness
    assert stats["red"][1] > 0.2 and stats["blue"][2] < -0.2  # a* red, b* blue


def test_colour_prototypes_name_camera_seen_garments():
    """The nearest prototype of a garment's mean Lab (what perception_attributes.clothing_colours
    names) is its colour for most garments under shading, casts and contamination."""
    from chatpose_ros.models.default.person_features import COLOUR_NAMES, colour_prototypes_lab, colour_stats

    protos = colour_prototypes_lab()
    assert protos.shape == (len(COLOUR_NAMES), 3)
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(10 * len(COLOUR_NAMES)):
        c = i % len(COLOUR_NAMES)
        cast = rng.normal(0, 8.0, 3).astype(np.float32)
        lab = colour_stats(garment_pixels(rng, COLOUR_NAMES[c], 200, cast=cast))[:3] * np.array([100.0, 128.0, 128.0])
        hits += int(np.argmin(np.linalg.norm(protos - lab, axis=1)) == c)
    assert hits / (10 * len(COLOUR_NAMES)) >= 0.85, hits
