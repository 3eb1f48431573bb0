"""Default profile end to end on real photos: grounding, shapes, text-only poses, typed errors,
tracking. The shipped model is loaded once for the module."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import CheckpointError, InvalidImageError, InvalidQueryError, ModelLoadError
from conftest import load_photo

pytest.importorskip("mediapipe")
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
    assert 0.0 <= p.confidence <= 1.0
    assert {"detect", "regress", "llm"} <= set(res.timings_ms)
    json.dumps(res.to_json())


def test_text_only_question_uses_llm_pose_head(pipe):
    res = pipe.estimate(None, "What pose would a tired person take?")
    assert res.image_size is None and res.selected == 0
    p = res.people[0]
    assert p.estimator == "llm_pose_head" and p.box is None
    assert p.theta.shape == (72,) and np.isfinite(p.theta).all() and p.joints.shape == (24, 3)


def test_image_without_people_falls_back_to_pose_head(pipe):
    res = pipe.estimate(np.full((120, 160, 3), 90, np.uint8), "the person on the left")
    assert res.people and res.people[0].estimator == "llm_pose_head"


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


def test_tracker_keeps_id_across_real_frames(pipe):
    from chatpose_ros.models.default.tracking import PersonTracker

    res = pipe.estimate(load_photo("basketball1.png"), "the person on the right")
    tracker = PersonTracker()
    start = tracker.start(res.selected_person)
    for name in ("basketball2.png", "basketball1.png", "basketball2.png"):
        people = pipe.observe(load_photo(name))
        assert all(p.appearance is not None for p in people)
        got = tracker.update(people)
        assert got is not None and got.track_id == start.track_id
        assert _cx(got) > 320  # still the person on the right


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
