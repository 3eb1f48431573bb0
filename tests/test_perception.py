"""Default perception (MoveNet MultiPose + NanoDet ONNX, attributes) on real pixels: Debian
opencv-doc photos and vtest.avi frames, cropped and rescaled into the hard cases (nobody, a
half-body close-up, a person cut by the image edge, small far people)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import REAL_PHOTOS, load_photo

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from chatpose_ros.core.errors import ConfigError, InferenceError, InvalidImageError, ModelLoadError  # noqa: E402
from chatpose_ros.core.geometry import box_iou  # noqa: E402
from chatpose_ros.core.scene import COCO17, Scene  # noqa: E402
from chatpose_ros.perception.perception import (  # noqa: E402
    DEFAULT_PRESET,
    PERCEPTION_DIR,
    PERCEPTION_PRESETS,
    Perception,
    PerceptionConfig,
)

ANKLES = [COCO17.index("left_ankle"), COCO17.index("right_ankle")]
KNEES = [COCO17.index("left_knee"), COCO17.index("right_knee")]
SHOULDERS = [COCO17.index("left_shoulder"), COCO17.index("right_shoulder")]


@pytest.fixture(scope="module")
def perception():
    return Perception(PERCEPTION_PRESETS[DEFAULT_PRESET])


def vtest_frame(index: int = 0) -> np.ndarray:
    """Frame `index` of opencv-doc's vtest.avi as (576, 768, 3) uint8 RGB."""
    path = REAL_PHOTOS / "vtest.avi"
    if not path.exists():
        pytest.skip(f"{path} missing (apt-get install opencv-doc)")
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok, "cannot decode vtest.avi"
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def test_shipped_models_match_model_card():
    card = (PERCEPTION_DIR.parent / "MODEL_CARD.md").read_text()
    rows = re.findall(r"\| perception/(\S+\.onnx) \|.*\| ([0-9a-f]{64}) \| ([0-9a-f]{64}) \|", card)
    assert {r[0] for r in rows} == {p.name for p in PERCEPTION_DIR.glob("*.onnx")}
    for name, sha, _graph in rows:
        assert hashlib.sha256((PERCEPTION_DIR / name).read_bytes()).hexdigest() == sha, name


def test_empty_image_has_nobody(perception):
    wall = cv2.resize(load_photo("basketball1.png")[0:330, 210:420], (640, 480))  # wall and door, no one
    scene = perception.see(wall)
    assert isinstance(scene, Scene) and scene.empty and scene.image_size == (640, 480)
    assert "people" in scene.timings_ms and scene.timings_ms["total"] > 0


def test_two_people_with_keypoints(perception):
    scene = perception.see(load_photo("basketball1.png"))
    assert len(scene.people) == 2
    left, right = sorted(scene.people, key=lambda p: p.box[0])
    assert left.box[2] < 250 and right.box[0] > 380
    assert left.layout == "coco17" and left.keypoints.shape == (17, 2) and left.keypoint_scores.shape == (17,)
    assert not left.truncated  # the whole body is in the frame
    assert right.truncated     # cut by the right edge
    assert (left.keypoint_scores[ANKLES] > 0.3).all()
    x, y = left.keypoint("nose")[0]
    assert left.box[0] <= x <= left.box[2] and left.box[1] <= y <= left.box[3]


def test_half_body_close_up(perception):
    """The upper body of the left basketball player filling the frame (legs below the image)."""
    crop = cv2.resize(load_photo("basketball1.png")[60:300, 0:240], (480, 480))
    scene = perception.see(crop)
    assert len(scene.people) == 1
    p = scene.people[0]
    assert p.truncated
    assert (p.box[3] - p.box[1]) > 0.7 * 480
    assert (p.keypoint_scores[SHOULDERS] > 0.3).all()
    assert (p.keypoint_scores[KNEES + ANKLES] == 0).all()  # outside the image: not seen
    assert "posture" not in p.attributes  # legs unseen: no guess
    assert p.attribute("upper_colour").value in ("black", "grey")  # dark t-shirt, grayscale photo


def test_person_cut_by_the_image_edge(perception):
    """basketball1 with its left 95 columns removed: the left player is cut in half."""
    scene = perception.see(np.ascontiguousarray(load_photo("basketball1.png")[:, 95:]))
    cut = [p for p in scene.people if p.box[0] < 5]
    assert len(cut) == 1 and cut[0].truncated
    assert (cut[0].keypoints[cut[0].keypoint_scores > 0] >= 0).all()


def test_small_far_people():
    """vtest.avi frame 0 at half size (three pedestrians about 40-50 px tall)."""
    small = cv2.resize(vtest_frame(0), (384, 288), interpolation=cv2.INTER_AREA)
    scene = Perception(replace(PERCEPTION_PRESETS["movenet_multiscale"], objects=False)).see(small)
    heights = sorted(p.box[3] - p.box[1] for p in scene.people)
    assert len(scene.people) == 3, heights
    assert all(35 <= h <= 60 for h in heights), heights


@pytest.mark.parametrize("preset", ["movenet_tiles3x2", DEFAULT_PRESET])
def test_far_people_in_a_640x480_frame(preset):
    """The same three pedestrians about 40 px tall inside a 640x480 frame: a whole-image pass
    at 256 misses them; overlapping tiles, or the default's second whole-image pass at 480
    (with its lower person score), find them."""
    frame = vtest_frame(0)
    canvas = np.empty((480, 640, 3), np.uint8)
    canvas[:] = frame.reshape(-1, 3).mean(0).astype(np.uint8)
    canvas[96:384, 128:512] = cv2.resize(frame, (384, 288), interpolation=cv2.INTER_AREA)
    assert not Perception(replace(PERCEPTION_PRESETS["movenet256"], objects=False)).see(canvas).people
    found = Perception(replace(PERCEPTION_PRESETS[preset], objects=False)).see(canvas)
    assert len(found.people) == 3
    assert all(p.box[3] - p.box[1] < 60 for p in found.people)


def test_person_score_per_pass():
    """person_scores filters each whole-image pass by its own score: raising the 480 pass's
    score above every person's drops the far people that only it finds."""
    frame = vtest_frame(0)
    canvas = np.empty((480, 640, 3), np.uint8)
    canvas[:] = frame.reshape(-1, 3).mean(0).astype(np.uint8)
    canvas[96:384, 128:512] = cv2.resize(frame, (384, 288), interpolation=cv2.INTER_AREA)
    cfg = replace(PERCEPTION_PRESETS[DEFAULT_PRESET], objects=False, attributes=False)
    assert cfg.person_sizes == (256, 480) and len(cfg.person_scores) == 2
    assert len(Perception(cfg).see(canvas).people) == 3
    assert not Perception(replace(cfg, person_scores=(cfg.person_scores[0], 0.99))).see(canvas).people
    with pytest.raises(ConfigError):
        PerceptionConfig(person_sizes=(256, 480), person_scores=(0.2,))


def test_objects_and_relations(perception):
    scene = perception.see(load_photo("messi5.jpg"))
    assert len(scene.people) == 1
    balls = [o for o in scene.objects if o.label == "sports ball"]
    assert balls, [(o.label, o.score) for o in scene.objects]
    assert all(o.label != "person" for o in scene.objects)
    ball = max(balls, key=lambda o: o.score)
    assert ball.box[1] > 0.6 * scene.image_size[1]  # at the player's feet
    related = [o.label for o, _ in scene.objects_of(0)]
    assert "sports ball" in related


def test_attributes(perception):
    img = load_photo("basketball1.png")
    scene = perception.see(img)
    left = min(scene.people, key=lambda p: p.box[0])
    assert left.attribute("posture").value == "standing"
    assert left.attribute("facing").value == "camera"
    for name in ("upper_colour", "lower_colour", "facing", "posture"):
        a = left.attribute(name)
        assert a is not None and 0.0 < a.confidence <= 1.0, name
    assert left.attribute("upper_colour").value in ("black", "grey")  # dark t-shirt (grayscale photo)
    # the same pixels with the torso turned red
    k = left.keypoints
    torso = np.array([k[COCO17.index(n)] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip")])
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(torso).astype(np.int32)], 1)
    red = img.copy()
    grey = img[mask.astype(bool)].astype(np.float32).mean(1, keepdims=True)
    red[mask.astype(bool)] = np.clip(grey * [2.2, 0.25, 0.25] + [60, 0, 0], 0, 255).astype(np.uint8)
    left_red = min(perception.see(red).people, key=lambda p: p.box[0])
    assert left_red.attribute("upper_colour").value == "red"
    assert left_red.attribute("lower_colour").value == left.attribute("lower_colour").value


def test_see_near_follows_the_tracked_person(perception):
    first = perception.see(load_photo("basketball1.png"))
    left = min(first.people, key=lambda p: p.box[0])
    img2 = load_photo("basketball2.png")
    near = perception.see_near(img2, left.box)
    assert len(near.people) >= 1 and not near.objects
    best = max(near.people, key=lambda p: box_iou(p.box, left.box))
    assert box_iou(best.box, left.box) > 0.6
    full = min(perception.see(img2).people, key=lambda p: p.box[0])
    assert box_iou(best.box, full.box) > 0.7
    assert set(near.timings_ms) >= {"people", "total"}


def test_blazepose_refinement_gives_33_landmarks_and_world():
    p = Perception(replace(PERCEPTION_PRESETS["movenet_multiscale+blazepose"], objects=False, attributes=False))
    scene = p.see(load_photo("messi5.jpg"))
    assert len(scene.people) == 1
    person = scene.people[0]
    assert person.layout == "blazepose33" and person.keypoints.shape == (33, 2)
    assert person.world_keypoints is not None and np.abs(person.world_keypoints).max() < 2.0
    nose, conf = person.keypoint("nose")
    assert conf > 0.5 and person.box[0] <= nose[0] <= person.box[2]


def test_errors(perception, tmp_path: Path):
    with pytest.raises(InvalidImageError):
        perception.see(np.zeros((10, 10), np.uint8))
    with pytest.raises(InvalidImageError):
        perception.see(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ConfigError):
        Perception.from_preset("no_such_preset")
    with pytest.raises(ConfigError):
        PerceptionConfig(person_sizes=(250,))
    with pytest.raises(ConfigError):
        PerceptionConfig(refine="mediapipe")
    with pytest.raises(ModelLoadError):
        Perception(PerceptionConfig(model_dir=str(tmp_path)))
    (tmp_path / "movenet_multipose.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        Perception(PerceptionConfig(model_dir=str(tmp_path), objects=False))


def test_presets_are_valid_and_deterministic(perception):
    assert DEFAULT_PRESET in PERCEPTION_PRESETS
    img = load_photo("basketball2.png")
    a, b = perception.see(img), perception.see(img)
    assert [p.box for p in a.people] == [p.box for p in b.people]
    assert all(np.array_equal(x.keypoints, y.keypoints) for x, y in zip(a.people, b.people))


def test_refine_one_person_on_request(perception):
    img = load_photo("messi5.jpg")
    person = perception.see(img).people[0]
    refined = perception.refine(img, person)
    assert person.layout == "coco17" and refined.layout == "blazepose33"
    assert refined.box == person.box and refined.attributes == person.attributes
    assert refined.world_keypoints.shape == (33, 3)
    # the refined nose lies near MoveNet's nose (within 5 % of the person's height)
    d = np.linalg.norm(refined.keypoint("nose")[0] - person.keypoint("nose")[0])
    assert d < 0.05 * (person.box[3] - person.box[1])


def test_per_call_overrides(perception):
    img = load_photo("messi5.jpg")
    bare = perception.see(img, objects=False, attributes=False)
    assert not bare.objects and "objects" not in bare.timings_ms
    assert bare.people and not bare.people[0].attributes and not bare.people[0].relations
    no_objects = Perception(replace(PERCEPTION_PRESETS["movenet256"], objects=False))
    assert no_objects.nanodet is None
    assert any(o.label == "sports ball" for o in no_objects.see(img, objects=True).objects)


def _skeleton(points: dict[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(17, 2) px and (17,) scores: the named joints seen (0.9), the others unseen (0)."""
    kp, sc = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    for name, xy in points.items():
        kp[COCO17.index(name)], sc[COCO17.index(name)] = xy, 0.9
    return kp, sc


STANDING = {"nose": (100, 20), "left_shoulder": (120, 50), "right_shoulder": (80, 50), "left_hip": (115, 130),
            "right_hip": (85, 130), "left_knee": (115, 200), "right_knee": (85, 200), "left_ankle": (115, 270),
            "right_ankle": (85, 270), "left_wrist": (125, 130), "right_wrist": (75, 130)}


def test_posture_and_facing_from_keypoint_geometry():
    from chatpose_ros.perception import perception_attributes as pa

    box = (60.0, 10.0, 140.0, 280.0)
    kp, sc = _skeleton(STANDING)
    assert pa.posture(kp, sc, box).value == "standing"
    assert pa.facing(kp, sc, box).value == "camera"  # left shoulder on the image right
    away = {k: ((200 - x) if "shoulder" in k or "hip" in k else x, y) for k, (x, y) in STANDING.items()
            if k != "nose"}
    assert pa.facing(*_skeleton(away), box).value == "away"
    sitting = dict(STANDING, left_knee=(175, 135), right_knee=(150, 135), left_ankle=(175, 205),
                   right_ankle=(150, 205))
    assert pa.posture(*_skeleton(sitting), box).value == "sitting"
    crouching = dict(STANDING, left_hip=(115, 150), right_hip=(85, 150), left_knee=(150, 130),
                     right_knee=(120, 130), left_ankle=(115, 185), right_ankle=(85, 185))
    assert pa.posture(*_skeleton(crouching), box).value == "crouching"
    lying = {k: (y + 50, 200 - 0.3 * x) for k, (x, y) in STANDING.items()}  # turned 90 degrees
    assert pa.posture(*_skeleton(lying), box).value == "lying"
    upper_only = {k: v for k, v in STANDING.items() if "knee" not in k and "ankle" not in k and "hip" not in k}
    assert pa.posture(*_skeleton(upper_only), box) is None


def test_posture_of_seated_and_half_seen_people():
    """Seated people facing the camera (thighs pointing at it, knees level with the hips and often
    scored low), knees guessed at a cut image edge, ankles close below the hips with the knees
    unseen, one shoulder seen: each read or left unread, never guessed."""
    from chatpose_ros.perception import perception_attributes as pa

    box = (60.0, 10.0, 140.0, 280.0)
    facing_seated = dict(STANDING, left_knee=(118, 150), right_knee=(82, 150), left_ankle=(118, 240),
                         right_ankle=(82, 240))
    kp, sc = _skeleton(facing_seated)
    got = pa.posture(kp, sc, box)
    assert got.value == "sitting" and 0 < got.confidence < 0.9
    sc[[pa.L_KN, pa.R_KN]] = 0.25  # knees in dark trousers: weakly seen still count for the knee height
    sc[[pa.L_AN, pa.R_AN]] = 0.0
    weak = pa.posture(kp, sc, box)
    assert weak.value == "sitting" and weak.confidence < got.confidence
    assert pa.posture(kp, sc, (60.0, 10.0, 140.0, 160.0)) is None  # the box ends at the knees: a guess at the edge
    low = dict(facing_seated, left_ankle=(118, 200), right_ankle=(82, 200))  # ankles 0.9 torso below the hips
    assert pa.posture(*_skeleton(low), box) is None  # a low seat or a squat: alike from the front
    no_knees = {k: v for k, v in STANDING.items() if "knee" not in k}
    assert pa.posture(*_skeleton(no_knees), box) is None  # ankles 1.75 torso below: standing or seated, unknown
    assert pa.posture(*_skeleton(dict(no_knees, left_ankle=(118, 200), right_ankle=(82, 200))), box) is None
    one_side = {k: v for k, v in facing_seated.items() if k not in ("left_shoulder", "right_hip")}
    assert pa.posture(*_skeleton(one_side), box).value == "sitting"
    assert pa.posture(*_skeleton({k: v for k, v in STANDING.items() if "hip" not in k}), box) is None
    leaning = dict(STANDING, left_shoulder=(30, 95))  # one shoulder seen far to the side of the hips
    assert pa.posture(*_skeleton({k: v for k, v in leaning.items() if k != "right_shoulder"}), box) is None
    hanging = dict(STANDING, left_ankle=(0, 0), right_ankle=(0, 0))
    kp, sc = _skeleton(hanging)
    sc[[pa.L_AN, pa.R_AN]] = 0.0
    assert pa.posture(kp, sc, box).value == "standing"  # knees hang below the hips: standing, less sure


def test_holding_and_next_to():
    from chatpose_ros.core.scene import SceneObject
    from chatpose_ros.perception import perception_attributes as pa

    kp, sc = _skeleton(STANDING)
    box = (60.0, 10.0, 140.0, 280.0)
    cup = SceneObject("cup", (120.0, 120.0, 140.0, 145.0), 0.8)   # at the left wrist
    chair = SceneObject("chair", (150.0, 150.0, 230.0, 280.0), 0.7)  # beside the person
    far = SceneObject("car", (600.0, 100.0, 700.0, 200.0), 0.9)
    rels = pa.relations([(kp, sc, box)], (cup, chair, far))[0]
    kinds = {r.object_index: r.relation for r in rels}
    assert kinds == {0: "holding", 1: "next_to"}
    assert all(0 < r.confidence <= 1 for r in rels)


@pytest.mark.parametrize("shape", [(2, 2), (3, 500), (500, 3), (1080, 1920)])
def test_odd_image_sizes(perception, shape):
    """Tiny, thin and large frames run (no person in flat grey) and keep their size."""
    scene = perception.see(np.full(shape + (3,), 128, np.uint8))
    assert scene.image_size == (shape[1], shape[0]) and scene.empty
    assert perception.see_near(np.full(shape + (3,), 128, np.uint8), (0.0, 0.0, 1.0, 1.0)).empty


def test_close_releases_sessions():
    from chatpose_ros.core.errors import InferenceError

    p = Perception(replace(PERCEPTION_PRESETS["movenet256"], objects=False))
    img = load_photo("messi5.jpg")
    assert p.see(img).people
    p.close()
    with pytest.raises(InferenceError):
        p.see(img)
    with pytest.raises(InferenceError):
        p.see_near(img, (0.0, 0.0, 100.0, 100.0))


def test_split_jobs_longest_first():
    from chatpose_ros.perception.perception import split_jobs

    assert split_jobs([184.0, 49.0, 100.0], 2) == [[0], [2, 1]]
    assert split_jobs([5.0], 3) == [[0], [], []]
    assert split_jobs([1.0, 2.0], 1) == [[1, 0]]


def test_concurrent_runs_find_what_sequential_runs_find():
    """With two threads, see() with objects runs the 480 pass beside the 256 pass + NanoDet
    (one-thread sessions); people-only runs stay sequential (the split would be uneven). Both
    find the same people and objects as the sequential runs."""
    img = vtest_frame(300)
    seq = Perception(replace(PERCEPTION_PRESETS[DEFAULT_PRESET], threads=2, concurrent=False))
    conc = Perception(replace(PERCEPTION_PRESETS[DEFAULT_PRESET], threads=2, concurrent=True))
    try:
        bare = conc.see(img, objects=False, attributes=False)
        assert conc._movenet1 is None  # 256 + 480 alone: too uneven to split
        a, b = seq.see(img), conc.see(img)
        assert conc._movenet1 is not None and conc._nanodet1 is not None
        assert len(a.people) == len(b.people) == len(bare.people) >= 4
        for p, q in zip(a.people, b.people):
            assert np.allclose(p.box, q.box, atol=1.0) and np.allclose(p.keypoints, q.keypoints, atol=1.0)
        assert [o.label for o in a.objects] == [o.label for o in b.objects]
        assert {"people", "objects", "merge", "attributes", "total"} <= set(b.timings_ms)
        assert b.timings_ms["total"] >= b.timings_ms["people"] > 0
    finally:
        conc.close()
        seq.close()
    with pytest.raises(InferenceError):
        conc.see(img)


def test_bench_variants():
    from chatpose_ros.perception.perception import parse_variant

    name, cfg = parse_variant("movenet_256_480:concurrent=0,threads=2,person_sizes=256/448,object_score=0.4")
    assert name.startswith("movenet_256_480:") and cfg.concurrent is False and cfg.threads == 2
    assert cfg.person_sizes == (256, 448) and cfg.object_score == 0.4
    with pytest.raises(ConfigError):
        parse_variant("movenet_256_480:no_such_field=1")
    with pytest.raises(ConfigError):
        parse_variant("no_such_preset")


def test_passes_rebuild_what_see_finds(perception):
    """The evaluation's held-out check scores configurations from cached passes: filtering the
    passes by each pass's score and merging them gives exactly see()'s people."""
    img = vtest_frame(300)
    cfg = perception.config
    cands = [c for size, score in zip(cfg.person_sizes, cfg.person_scores)
             for c in perception.person_pass(img, size) if c.score >= score]
    rebuilt = perception.people_from(img, cands).people
    seen = perception.see(img, objects=False, attributes=False).people
    assert len(rebuilt) == len(seen) >= 4
    assert [p.box for p in rebuilt] == [p.box for p in seen]


def test_bench_reports_every_variant_and_the_load():
    from chatpose_ros.perception.perception import bench

    img = cv2.resize(vtest_frame(300), (320, 240), interpolation=cv2.INTER_AREA)
    variants = [(name, Perception(replace(PERCEPTION_PRESETS["movenet256"], threads=2, concurrent=c)))
                for name, c in (("seq", False), ("conc", True))]
    try:
        lines = bench(variants, [("vtest", img)], repeat=1)
    finally:
        for _, p in variants:
            p.close()
    assert "other processes used" in lines[0] and len(lines) == 3
    assert lines[1].startswith("seq") and lines[2].startswith("conc")
    assert all("| people " in line and "| see " in line and "| near " in line for line in lines[1:])


def test_near_identical_boxes_are_one_person_whatever_their_keypoints():
    """Two passes that place a walker's joints differently must not list the walker twice (a
    vtest.avi street frame did: IoU 0.86); side-by-side people stay two."""
    from chatpose_ros.perception.perception import PerceptionConfig, _Candidate, _merge

    rng = np.random.default_rng(0)
    box = np.array([100.0, 50.0, 140.0, 200.0])
    a = _Candidate(box, 0.6, rng.uniform(100, 140, (17, 2)), np.full(17, 0.9))
    b = _Candidate(box + [2, 3, 1, -4], 0.3, rng.uniform(100, 140, (17, 2)), np.full(17, 0.9))  # keypoints disagree
    c = _Candidate(box + [45, 0, 45, 0], 0.5, rng.uniform(145, 185, (17, 2)), np.full(17, 0.9))  # the next person
    kept = _merge([a, b, c], PerceptionConfig())
    assert len(kept) == 2 and kept[0] is a and kept[1] is c
