"""Default profile end to end on real photos: grounding, shapes, text-only poses, typed errors,
tracking. The shipped model is loaded once for the module."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import CheckpointError, ConfigError, InvalidImageError, InvalidQueryError, ModelLoadError
from conftest import load_photo

cv2 = pytest.importorskip("cv2")



@pytest.fixture(scope="module")
def pipe():
    import torch

    torch.set_num_threads(2)
    from chatpose_ros.profiles import build_pipeline

    p = build_pipeline(PipelineConfig(profile="default"))
    yield p
    p.close()


def _cx(person) -> float:
    return 0.5 * (person.box[0] + person.box[2])


@pytest.mark.parametrize("image,query,side", [
    ("basketball1.png", "the person on the left", "left"),
    ("basketball1.png", "the person on the right", "right"),
    ("basketball2.png", "What is the pose of the rightmost person?", "right"),
])
def test_real_photo_grounding(pipe, image, query, side):
    res = pipe.estimate(load_photo(image), query)
    assert len(res.people) == 2
    xs = [_cx(p) for p in res.people]
    want = int(np.argmin(xs)) if side == "left" else int(np.argmax(xs))
    assert res.selected == want, (res.answer, xs, [p.confidence for p in res.people])
    assert "[POSE]" in res.answer


def test_result_shapes_and_fields(pipe):
    res = pipe.estimate(load_photo("messi5.jpg"), "the person kicking")
    assert res.model_id.startswith("default:") and res.image_size == (548, 342)
    p = res.selected_person
    assert p is not None and p.estimator == "smplr_regressor"
    assert p.theta.shape == (72,) and np.isfinite(p.theta).all()
    assert p.joints.shape == (24, 3) and np.isfinite(p.joints).all()
    assert p.box is not None and p.keypoints_2d.shape == (15, 2) and p.keypoints_2d_edges
    assert p.translation is not None and p.translation[2] > 0
    assert 0.0 <= p.confidence <= 1.0 and not p.generated
    assert p.joint_confidence.shape == (24,) and ((p.joint_confidence >= 0) & (p.joint_confidence <= 1)).all()
    assert p.joint_confidence.max() > 0.5  # a whole person in view: most joints seen
    # seen keypoints are pixels, the others NaN; seen ones match the joints that are seen
    seen = np.isfinite(p.keypoints_2d).all(1)
    assert seen.sum() >= 8
    assert {"perception", "regress", "llm"} <= set(res.timings_ms)
    json.dumps(res.to_json())


@pytest.mark.parametrize("query", ["What pose would a tired person take?", "the person on the left"])
def test_text_only_question_gives_a_generated_pose(pipe, query):
    res = pipe.estimate(None, query)
    assert res.image_size is None and res.selected == 0
    p = res.people[0]
    assert p.estimator == "llm_generated" and p.generated
    assert p.box is None and p.translation is None
    assert p.theta.shape == (72,) and np.isfinite(p.theta).all() and p.joints.shape == (24, 3)
    assert res.to_json()["people"][0]["generated"] is True


@pytest.mark.parametrize("image", [np.zeros((480, 640, 3), np.uint8), np.full((120, 160, 3), 90, np.uint8)])
@pytest.mark.parametrize("query", ["the person on the left", "What is the pose of the man in red?", "how many people are there?"])
def test_image_without_people_says_so(pipe, image, query):
    """Nobody in the image: the answer says so, nothing is selected, no pose stands for a person."""
    from chatpose_ros.models.default.pipeline import NO_PERSON_ANSWER

    res = pipe.estimate(image, query)
    assert res.answer == NO_PERSON_ANSWER
    assert res.selected == -1 and res.selected_person is None and res.people == ()


def test_imagined_pose_with_an_empty_image_is_generated_not_selected(pipe):
    from chatpose_ros.models.default.pipeline import NO_PERSON_ANSWER

    res = pipe.estimate(np.zeros((480, 640, 3), np.uint8), "Show me how someone celebrates a goal.")
    assert res.answer.startswith(NO_PERSON_ANSWER) and res.selected == -1
    assert len(res.people) == 1 and res.people[0].generated and res.people[0].box is None


def test_imagined_pose_question_is_recognised():
    from chatpose_ros.models.default.pipeline import asks_imagined_pose

    for q in ("What pose would a tired person take?", "Show me how someone celebrates a goal.",
              "What does a person waving look like?", "Imagine a person balancing on one foot."):
        assert asks_imagined_pose(q), q
    for q in ("the person on the left", "Show me the pose of the person on the far right.",
              "What is the pose of the leftmost person?", "Who is waving?"):
        assert not asks_imagined_pose(q), q


def test_bad_inputs_raise_typed_errors(pipe):
    img = load_photo("messi5.jpg")
    with pytest.raises(InvalidQueryError):
        pipe.estimate(img, "   ")
    with pytest.raises(InvalidQueryError):
        pipe.estimate(img, "x" * 10_000)
    with pytest.raises(InvalidImageError):
        pipe.estimate(np.zeros((10, 10), np.uint8), "the person")
    with pytest.raises(InvalidImageError):
        pipe.estimate(img.astype(np.float32), "the person")
    with pytest.raises(InvalidImageError):
        pipe.observe("not an image")
    with pytest.raises(InvalidImageError):  # a layout that passes, found unusable by perception: still invalid_image
        pipe.estimate(np.zeros((1, 480, 3), np.uint8), "the person on the left")


def test_tracker_keeps_id_across_real_frames(pipe):
    from chatpose_ros.perception.tracking import PersonTracker

    res = pipe.estimate(load_photo("basketball1.png"), "the person on the right")
    tracker = PersonTracker()
    start = tracker.start(res.selected_person)
    matched = 0
    for name in ("basketball2.png", "basketball1.png", "basketball2.png"):
        people = pipe.observe(load_photo(name))
        assert all(p.appearance is not None for p in people)
        got = tracker.update(people)
        if got is None:  # the tracker may doubt (issue 23: the right man's appearance is unreadable in
            assert tracker.doubt  # basketball1.png's pixels): it says why and publishes nobody, never the other man
            continue
        matched += 1
        assert got.track_id == start.track_id
        assert _cx(got) > 320  # still the person on the right
    assert matched >= 2 and not tracker.lost


def test_missing_and_corrupt_weights(tmp_path):
    from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR, DefaultPipeline

    with pytest.raises(ModelLoadError):
        DefaultPipeline.from_config(PipelineConfig(weights_dir=str(tmp_path / "nowhere")))
    bad = tmp_path / "w"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, bad)
    (bad / "llm_adapter.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="llm_adapter"):
        DefaultPipeline.from_config(PipelineConfig(weights_dir=str(bad)))
    shutil.copy(DEFAULT_WEIGHTS_DIR / "llm_adapter.safetensors", bad)
    (bad / "llm.json").write_text("{not json")
    with pytest.raises(CheckpointError):
        DefaultPipeline.from_config(PipelineConfig(weights_dir=str(bad)))


def test_edge_cut_person_has_unseen_lower_joints(pipe):
    """Real pixels: the photo cut below the hips. The legs are not seen (confidence 0, keypoints
    NaN), the shoulders and head are; the picture draws the unseen joints differently."""
    from chatpose_ros.core.body import SMPL_JOINT_NAMES
    from chatpose_ros.core.viz import draw_skeleton_3d, seen_joints

    img = np.ascontiguousarray(load_photo("messi5.jpg")[:190])  # the person is 60-330 px tall
    people = pipe.observe(img)
    assert len(people) == 1
    p = people[0]
    conf = dict(zip(SMPL_JOINT_NAMES, p.joint_confidence))
    for j in ("left_ankle", "right_ankle", "left_foot", "right_foot"):  # far below the edge
        assert conf[j] == 0.0, (j, conf)
    # the knees are just below the edge (MoveNet may still guess one inside the image)
    assert min(conf["left_knee"], conf["right_knee"]) == 0.0, conf
    for j in ("left_shoulder", "right_shoulder", "neck", "head"):
        assert conf[j] > 0.3, (j, conf)
    assert not np.isfinite(p.keypoints_2d[-4:]).any()  # ankles and feet: not seen
    assert p.theta.shape == (72,) and np.isfinite(p.theta).all()  # still a whole body (prior below)
    seen = seen_joints(p)
    assert seen[SMPL_JOINT_NAMES.index("head")] and not seen[SMPL_JOINT_NAMES.index("left_ankle")]
    all_seen = draw_skeleton_3d(dataclasses.replace(p, joint_confidence=np.ones(24, np.float32)))
    assert (draw_skeleton_3d(p) != all_seen).any()


def test_whole_person_in_view_has_seen_legs(pipe):
    from chatpose_ros.core.body import SMPL_JOINT_NAMES

    p = pipe.observe(load_photo("messi5.jpg"))[0]
    conf = dict(zip(SMPL_JOINT_NAMES, p.joint_confidence))
    assert conf["left_knee"] > 0 and conf["right_knee"] > 0 and conf["pelvis"] > 0.3
    # COCO-17 has no foot or hand keypoints: those joints are never counted as seen
    assert conf["left_foot"] == conf["right_foot"] == conf["left_hand"] == conf["right_hand"] == 0.0


CLOSEUP = Path(__file__).resolve().parent / "data" / "people" / "faceapi_sample6.jpg"  # 4 women, half-body
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.mark.parametrize("query,expect", [("the person on the left", "left"), ("the person on the right", "right"),
                                          ("the woman in the green dress", "left")])
def test_close_up_of_four_people(pipe, query, expect):
    """Real pixels: four people cut by the bottom edge (half-body). Everyone is found, the
    grounding picks the asked-for one, and the legs below the image are not seen."""
    from chatpose_ros.core.body import SMPL_JOINT_NAMES

    if not CLOSEUP.exists():
        pytest.skip(f"{CLOSEUP} missing")
    img = cv2.cvtColor(cv2.imread(str(CLOSEUP)), cv2.COLOR_BGR2RGB)
    res = pipe.estimate(img, query)
    assert len(res.people) == 4
    xs = [_cx(p) for p in res.people]
    assert res.selected == (int(np.argmin(xs)) if expect == "left" else int(np.argmax(xs))), (res.answer, xs)
    p = res.selected_person
    conf = dict(zip(SMPL_JOINT_NAMES, p.joint_confidence))
    assert conf["left_ankle"] == conf["right_ankle"] == 0.0 and conf["head"] > 0.3


@pytest.mark.parametrize("query,side", [("the person on the left", "left"), ("the person on the right", "right")])
def test_small_far_people(pipe, query, side):
    """Real pixels: vtest.avi frame 0, three pedestrians under 100 px tall."""
    if not VTEST.exists():
        pytest.skip(f"{VTEST} missing (apt-get install opencv-doc)")
    cap = cv2.VideoCapture(str(VTEST))
    ok, frame = cap.read()
    cap.release()
    assert ok
    res = pipe.estimate(np.ascontiguousarray(frame[..., ::-1]), query)
    assert len(res.people) >= 2 and all(p.box[3] - p.box[1] < 100 for p in res.people)
    xs = [_cx(p) for p in res.people]
    assert res.selected == (int(np.argmin(xs)) if side == "left" else int(np.argmax(xs)))
    assert res.selected_person.translation is not None and res.selected_person.translation[2] > 3.0  # far away


def test_world_keypoints_path_with_blazepose_refinement(pipe):
    """Real pixels through the 3D path: perception refines each person with BlazePose (33
    landmarks + world 3D), the regressor reads the world keypoints, the features use them."""
    from chatpose_ros.perception.perception import Perception
    from chatpose_ros.models.default.pipeline import DefaultPipeline

    try:
        refined = Perception.from_preset("movenet_multiscale+blazepose")
    except ConfigError as exc:  # the preset renamed by the perception stage
        pytest.skip(f"no BlazePose preset: {exc}")
    img = load_photo("messi5.jpg")
    scene = refined.see(img, objects=False, attributes=False)
    if not any(p.world_keypoints is not None for p in scene.people):
        pytest.skip("BlazePose refused this person (pose-presence flag)")
    two = DefaultPipeline(pipe.config, refined, pipe.regressor, pipe.llm, pipe.model_id)
    res = two.estimate(img, "the person kicking")
    p = res.selected_person
    assert p is not None and p.estimator == "smplr_regressor" and np.isfinite(p.theta).all()
    assert p.translation is not None and p.translation[2] > 0
    # BlazePose has foot and hand landmarks: those joints can be seen on this layout
    assert p.joint_confidence.shape == (24,) and p.joint_confidence.max() > 0.5
