"""Model pieces: templates, image-token splicing, sizes from the config, preprocessing, backends."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ConfigError
from chatpose_ros.models.chatpose.model import (
    IMAGE_TOKEN_INDEX, ChatPoseModel, ChatPoseModelConfig, get_template, tokenizer_image_token,
)
from chatpose_ros.models.chatpose.tiny import (
    TinySizes, tiny_clip_vision_config, tiny_image_processor_config, tiny_llama, tiny_tokenizer,
)


def _model(sizes=TinySizes(), **cfg):
    tok = tiny_tokenizer()
    lm = tiny_llama(len(tok), sizes)
    return ChatPoseModel.build(ChatPoseModelConfig(**cfg), tiny_clip_vision_config(sizes), lm, tok,
                               tiny_image_processor_config(sizes))


def test_llava_v1_template():
    p = get_template("llava_v1").question("What is the pose?", True)
    assert p.startswith("A chat between a curious human and an artificial intelligence assistant.")
    assert p.endswith("USER: <image>\nWhat is the pose? ASSISTANT:")
    with pytest.raises(ConfigError):
        get_template("nope")


def test_tokenizer_image_token_is_pure_split():
    tok = tiny_tokenizer()
    ids = tokenizer_image_token("user : <image>\nwhat is the pose ?", tok)
    assert ids[0] == tok.bos_token_id and ids.count(IMAGE_TOKEN_INDEX) == 1
    plain = tok("what is the pose ?", add_special_tokens=False)["input_ids"]
    assert ids[-len(plain):] == plain


@pytest.mark.parametrize("image_size,patch", [(32, 8), (48, 16)])
@pytest.mark.parametrize("start_end", [True, False])
def test_image_tokens_come_from_vision_config(image_size, patch, start_end):
    m = _model(TinySizes(image_size=image_size, patch_size=patch), mm_use_im_start_end=start_end)
    n = (image_size // patch) ** 2
    assert m.num_image_tokens == n
    feats = m.encode_images(torch.randn(1, 3, image_size, image_size))
    assert feats.shape == (1, n, m.hidden_size)
    prompt = m.question_prompt("what is the pose ?", True)
    ids = m.prompt_ids(prompt)
    emb = m.embed_ids(ids, feats)
    assert emb.shape == (len(ids) - 1 + n, m.hidden_size)
    k = ids.index(IMAGE_TOKEN_INDEX)
    assert torch.equal(emb[k:k + n], feats[0])
    if start_end:
        assert ids[k - 1] == m.im_start_id and ids[k + 1] == m.im_end_id
    else:
        assert "<im_start>" not in prompt


def test_cls_patch_keeps_cls():
    m = _model(mm_vision_select_feature="cls_patch")
    assert m.encode_images(torch.randn(2, 3, 32, 32)).shape[1] == m.num_image_tokens == 17


def test_embed_ids_checks_image_count():
    m = _model()
    ids = m.prompt_ids(m.question_prompt("what ?", True))
    with pytest.raises(ValueError):
        m.embed_ids(ids, None)


def test_preprocessor_pad_option_pads_resizes_and_normalises():
    m = _model(image_aspect_ratio="pad")  # LLaVA-1.5's pad-to-square, kept as an option
    x = m.preprocessor(np.full((10, 50, 3), 255, np.uint8))
    assert x.shape == (1, 3, 32, 32)
    mean = torch.tensor(m.preprocessor.mean).view(3, 1)
    std = torch.tensor(m.preprocessor.std).view(3, 1)
    # the padded rows hold the mean colour (~0 after normalisation), the image rows white
    top = x[0, :, 0, :].reshape(3, -1)
    assert top.abs().max() < 0.05
    mid = x[0, :, 16, :].reshape(3, -1)
    torch.testing.assert_close(mid, ((1.0 - mean) / std).expand_as(mid), atol=0.05, rtol=0)


def test_pose_rotmats_and_theta_shapes():
    m = _model()
    R = m.pose_rotmats(torch.randn(3, m.hidden_size))
    assert R.shape == (3, 24, 3, 3)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand_as(R), atol=1e-5, rtol=0)
    assert m.rotmats_to_theta(R).shape == (3, 72)


def test_config_json_round_trip():
    c = ChatPoseModelConfig(pose_head_inner=7)
    assert ChatPoseModelConfig.from_json(c.to_json()) == c
    with pytest.raises(Exception):
        ChatPoseModelConfig.from_json({**c.to_json(), "bogus": 1})


def test_backend_factory(tmp_path, caplog):
    from chatpose_ros.models.chatpose.vision_backends import (
        OnnxVisionBackend, TorchVisionBackend, create_vision_backend, tensorrt_available,
    )

    m = _model()
    base = PipelineConfig(profile="chatpose", engine_cache_dir=str(tmp_path))
    assert isinstance(create_vision_backend(base, m), TorchVisionBackend)
    onnx = create_vision_backend(dataclasses.replace(base, vision_backend="onnx"), m, "chatpose:abc")
    assert isinstance(onnx, OnnxVisionBackend) and onnx.onnx_path.parent == tmp_path
    px = torch.randn(3, 3, 32, 32)  # dynamic batch
    assert (onnx.encode(px) - m.encode_images(px)).abs().max().item() < 1e-4
    if not tensorrt_available()[0]:
        with caplog.at_level(logging.WARNING):
            b = create_vision_backend(dataclasses.replace(base, vision_backend="tensorrt"), m)
        assert isinstance(b, TorchVisionBackend)
        assert sum("falling back" in r.message for r in caplog.records) == 1
    bad = dataclasses.replace(base)
    object.__setattr__(bad, "vision_backend", "magic")
    with pytest.raises(ConfigError):
        create_vision_backend(bad, m)


def test_tensorrt_parity(tmp_path):
    from chatpose_ros.models.chatpose.vision_backends import TensorRTVisionBackend, tensorrt_available

    ok, why = tensorrt_available()
    if not ok:
        pytest.skip(why)
    m = _model().to("cuda")
    trt_b = TensorRTVisionBackend(m, tmp_path / "v.onnx", tmp_path)
    px = torch.randn(1, 3, 32, 32, device="cuda")
    assert (trt_b.encode(px).float() - m.encode_images(px).float()).abs().max().item() < 2e-2  # fp16 engine
    again = TensorRTVisionBackend(m, tmp_path / "v.onnx", tmp_path)  # cached engine reused
    assert again.engine_path == trt_b.engine_path and trt_b.info.built_now and not again.info.built_now
