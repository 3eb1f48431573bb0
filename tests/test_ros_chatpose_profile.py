"""The node serves the ChatPose pipeline when given a checkpoint path (parameter), with the real
pipeline factory (no test double): a tiny random checkpoint in the released CHATPOSE-V0 layout,
converted to ours."""
from __future__ import annotations

import numpy as np
import pytest

from chatpose_ros.profiles import build_pipeline
from chatpose_ros.models.chatpose import checkpoints as ck
from chatpose_ros.models.chatpose.tiny import TINY_IMAGE_TOKENS, write_tiny_released

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("chatpose_ckpt")
    write_tiny_released(root / "released", root / "vision")
    ck.convert_released(root / "released", root / "vision", root / "ours", image_tokens=TINY_IMAGE_TOKENS)
    return root / "ours"


def test_node_answers_with_chatpose_profile(ros_harness, tiny_checkpoint):
    h = ros_harness(build_pipeline, **{"model.profile": "chatpose", "model.checkpoint": str(tiny_checkpoint),
                                       "model.chatpose_max_new_tokens": 8,
                                       "model.chatpose_force_pose_token": True})
    assert h.node.model.runner.model_id.startswith("chatpose:")
    h.publish_and_wait(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    h.ask("what is the pose of the man?")
    arr = h.wait_for("poses", timeout=60)[0]
    assert arr.poses and arr.selected == 0  # chatpose_force_pose_token: a pose question always gets a pose
    pose = arr.poses[0]
    assert pose.estimator == "chatpose" and not pose.box_known and not pose.translation_known
    assert np.isfinite(np.asarray(pose.theta)).all() and len(pose.joints) == 24
    assert "[POSE]" in h.wait_for("answer")[0].data


def test_missing_checkpoint_fails_configure_with_clear_message(ros_harness, tmp_path):
    h = ros_harness(build_pipeline, autostart=False, **{"model.profile": "chatpose", "model.checkpoint": str(tmp_path / "nope")})
    assert h.node.autostart() is False
    assert "nope" in h.node.model_state
