"""Checkpoint layout: conversion from the released layout, round trip, clear errors."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import CheckpointError, ModelLoadError
from chatpose_ros.models.chatpose import checkpoints as ck
from chatpose_ros.models.chatpose.tiny import TINY_IMAGE_TOKENS, TinySizes, write_tiny_released


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    d = tmp_path_factory.mktemp("rel")
    write_tiny_released(d / "src", d / "clip")
    return d


def _copy(released, tmp_path):
    import shutil

    shutil.copytree(released / "src", tmp_path / "src")
    return tmp_path / "src", released / "clip"


def test_convert_maps_weights_exactly(released, tmp_path):
    out = ck.convert_released(released / "src", released / "clip", tmp_path / "ours", image_tokens=TINY_IMAGE_TOKENS)
    model = ck.load_checkpoint(out)
    src = {}
    for f in sorted((released / "src").glob("*.safetensors")):
        src.update(load_file(str(f)))
    assert torch.equal(model.pose_head.net[0].weight, src["model.text_hidden_fcs.0.0.weight"])
    assert torch.equal(model.pose_head.net[2].bias, src["model.text_hidden_fcs.0.2.bias"])
    assert torch.equal(model.projector[2].weight, src["model.mm_projector.2.weight"])
    assert torch.equal(model.lm.model.layers[1].mlp.down_proj.weight, src["model.layers.1.mlp.down_proj.weight"])
    assert torch.equal(model.lm.lm_head.weight, src["lm_head.weight"])
    assert model.config.mm_use_im_start_end and model.config.pose_token == "[SEG]"
    assert model.pose_token_id == model.tokenizer.convert_tokens_to_ids("[SEG]")


def test_save_load_round_trip(released, tmp_path):
    out = ck.convert_released(released / "src", released / "clip", tmp_path / "a", image_tokens=TINY_IMAGE_TOKENS)
    m1 = ck.load_checkpoint(out)
    ck.save_checkpoint(m1, tmp_path / "b")
    m2 = ck.load_checkpoint(tmp_path / "b")
    for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1
    assert m1.preprocessor == m2.preprocessor and m1.config == m2.config
    assert ck.checkpoint_fingerprint(out) == ck.checkpoint_fingerprint(out)


def _edit_shard(src, key, fn):
    index = json.loads((src / "model.safetensors.index.json").read_text())
    shard = src / index["weight_map"][key]
    state = load_file(str(shard))
    fn(state)
    save_file(state, str(shard))


def test_missing_pose_head_key_is_named(released, tmp_path):
    src, clip = _copy(released, tmp_path)
    _edit_shard(src, "model.text_hidden_fcs.0.2.weight", lambda s: s.pop("model.text_hidden_fcs.0.2.weight"))
    with pytest.raises(CheckpointError, match="text_hidden_fcs.0.2.weight"):
        ck.convert_released(src, clip, tmp_path / "out", image_tokens=TINY_IMAGE_TOKENS)


def test_wrong_projector_shape_is_named(released, tmp_path):
    src, clip = _copy(released, tmp_path)
    _edit_shard(src, "model.mm_projector.0.weight",
                lambda s: s.__setitem__("model.mm_projector.0.weight", torch.zeros(3, 3)))
    with pytest.raises(CheckpointError, match=r"mm_projector.0.weight.*shape"):
        ck.convert_released(src, clip, tmp_path / "out", image_tokens=TINY_IMAGE_TOKENS)


def test_missing_llm_key_and_shard(released, tmp_path):
    src, clip = _copy(released, tmp_path)
    _edit_shard(src, "model.norm.weight", lambda s: s.pop("model.norm.weight"))
    with pytest.raises(CheckpointError, match="model.norm.weight"):
        ck.convert_released(src, clip, tmp_path / "out", image_tokens=TINY_IMAGE_TOKENS)
    index = json.loads((src / "model.safetensors.index.json").read_text())
    (src / sorted(set(index["weight_map"].values()))[0]).unlink()
    with pytest.raises(CheckpointError, match="weight shard"):
        ck.convert_released(src, clip, tmp_path / "out2", image_tokens=TINY_IMAGE_TOKENS)


def test_missing_files(released, tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        ck.convert_released(tmp_path / "nowhere", released / "clip", tmp_path / "out", image_tokens=TINY_IMAGE_TOKENS)
    out = ck.convert_released(released / "src", released / "clip", tmp_path / "ours", image_tokens=TINY_IMAGE_TOKENS)
    (out / ck.POSE_HEAD_FILE).unlink()
    with pytest.raises(CheckpointError, match="pose_head.safetensors"):
        ck.load_checkpoint(out)
    with pytest.raises(CheckpointError, match="not found"):
        ck.load_checkpoint(tmp_path / "absent")


def test_bad_head_file_in_our_layout(released, tmp_path):
    out = ck.convert_released(released / "src", released / "clip", tmp_path / "ours", image_tokens=TINY_IMAGE_TOKENS)
    state = load_file(str(out / ck.POSE_HEAD_FILE))
    state["net.2.weight"] = state["net.2.weight"][:10]
    save_file(state, str(out / ck.POSE_HEAD_FILE))
    with pytest.raises(CheckpointError, match=r"net.2.weight.*shape"):
        ck.load_checkpoint(out)


def test_pipeline_errors(tmp_path):
    from chatpose_ros.models.chatpose.pipeline import ChatPosePipeline

    with pytest.raises(ModelLoadError):
        ChatPosePipeline.from_config(PipelineConfig(profile="chatpose", checkpoint=""))
    with pytest.raises(CheckpointError):
        ChatPosePipeline.from_config(PipelineConfig(profile="chatpose", checkpoint=str(tmp_path)))


def test_convert_main_returns_error_code(tmp_path, released):
    assert ck.convert_main(["--src", str(tmp_path / "x"), "--vision", str(released / "clip"),
                            "--out", str(tmp_path / "o")]) == 2


def test_a_tower_of_another_patch_count_is_refused(tmp_path):
    """The released code assumes 576 image tokens (ViT-L/14 at 336 px); a 224-px CLIP tower with
    the same hidden size (256 patches) must not pass silently."""
    src, clip = tmp_path / "src", tmp_path / "clip224"
    write_tiny_released(src, clip, TinySizes(image_size=224, patch_size=14))
    with pytest.raises(CheckpointError, match=r"256 image tokens.*576"):
        ck.convert_released(src, clip, tmp_path / "out")
    assert ck.RELEASED_IMAGE_TOKENS == 576
    out = ck.convert_released(src, clip, tmp_path / "out", image_tokens=256)  # when it is meant
    assert ck.load_checkpoint(out).num_image_tokens == 256
    assert ck.convert_main(["--src", str(src), "--vision", str(clip), "--out", str(tmp_path / "o2")]) == 2


def test_loading_checks_the_tower_against_the_recorded_image_tokens(released, tmp_path):
    out = ck.convert_released(released / "src", released / "clip", tmp_path / "ours", image_tokens=TINY_IMAGE_TOKENS)
    cfg = json.loads((out / ck.CONFIG_FILE).read_text())
    assert cfg["image_tokens"] == TINY_IMAGE_TOKENS
    cfg["image_tokens"] = 576
    (out / ck.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="576"):
        ck.load_checkpoint(out)
