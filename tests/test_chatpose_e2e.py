"""End to end on a tiny random model: released layout -> convert -> load -> LoRA merge -> ONNX
export + ORT parity -> short training (loss falls) -> answer with a pose token -> SMPL result ->
evaluation output. CPU only, offline."""
from __future__ import annotations

import json

import numpy as np
import torch

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.pipeline import PosePipeline
from chatpose_ros.core.types import PoseResult
from chatpose_ros.models.chatpose import checkpoints as ck
from chatpose_ros.models.chatpose.tiny import TINY_IMAGE_TOKENS, write_tiny_released


def _write_data(folder, n=6, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        theta = (rng.normal(size=72) * 0.3).tolist()
        if i % 3 == 2:
            lines.append({"image": None, "task": "chat", "theta": None, "conversations": [
                {"from": "human", "value": "who is in the image ?"}, {"from": "gpt", "value": "one man ."}]})
            continue
        img = None
        if i % 3 == 0:
            Image.fromarray(rng.integers(0, 255, (24 + i, 40, 3), dtype=np.uint8)).save(folder / "img" / f"{i}.png")
            img = f"img/{i}.png"
        cands = [theta, (rng.normal(size=72) * 0.3).tolist()]
        lines.append({"image": img, "task": "image_to_pose" if img else "text_to_pose", "theta": theta,
                      "person_index": 0, "candidates": cands, "conversations": [
                          {"from": "human", "value": ("<image>\n" if img else "") + "what is the pose of the man ?"},
                          {"from": "gpt", "value": "sure , it is [POSE] ."}]})
    path = folder / "data.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    return path


def test_end_to_end(tmp_path):
    from chatpose_ros.models.chatpose.evaluate import evaluate, format_table
    from chatpose_ros.models.chatpose.pipeline import ChatPosePipeline
    from chatpose_ros.models.chatpose.train import TrainConfig, train
    from chatpose_ros.models.chatpose.vision_backends import OnnxVisionBackend, TorchVisionBackend

    src, vis, ours = tmp_path / "released", tmp_path / "clip", tmp_path / "ours"
    write_tiny_released(src, vis)
    assert ck.convert_main(["--src", str(src), "--vision", str(vis), "--out", str(ours),
                            "--image-tokens", str(TINY_IMAGE_TOKENS)]) == 0
    model = ck.load_checkpoint(ours)
    assert model.num_image_tokens == (32 // 8) ** 2

    # ONNX export + ONNX Runtime parity with torch
    px = torch.randn(2, 3, 32, 32)
    ref = TorchVisionBackend(model).encode(px)
    onnx = OnnxVisionBackend(model, tmp_path / "cache" / "vision.onnx")
    assert ref.shape == (2, model.num_image_tokens, model.hidden_size)
    assert (onnx.encode(px) - ref).abs().max().item() < 1e-4

    # short training: the loss falls
    data = _write_data(tmp_path)
    cfg = TrainConfig(lora_r=8, lora_alpha=16, lr=1e-2, batch=2, max_steps=20, pose_loss_weight=1.0, seed=0)
    log = train(data, ours, tmp_path / "adapter", cfg, progress=False)
    losses = log["losses"]
    assert len(losses) == 20 and np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert (tmp_path / "adapter" / "pose_head.safetensors").exists()
    adapter_cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_cfg["target_modules"]) == {"q_proj", "v_proj"}  # upstream's LoRA targets

    # offline LoRA merge == merge at load time
    merged = tmp_path / "merged"
    assert ck.merge_main(["--checkpoint", str(ours), "--adapter", str(tmp_path / "adapter"), "--out", str(merged)]) == 0
    m1 = ck.load_checkpoint(merged)
    m2 = ck.load_checkpoint(ours, lora_adapter=tmp_path / "adapter")
    w1 = m1.lm.model.layers[0].self_attn.q_proj.weight
    assert torch.allclose(w1, m2.lm.model.layers[0].self_attn.q_proj.weight, atol=1e-6)
    assert not torch.allclose(w1, model.lm.model.layers[0].self_attn.q_proj.weight)

    # the pipeline: an answer with a pose token -> one SMPL pose
    pcfg = PipelineConfig(profile="chatpose", checkpoint=str(merged), device="cpu", vision_backend="onnx",
                          engine_cache_dir=str(tmp_path / "cache"), chatpose_max_new_tokens=8)
    pipe = ChatPosePipeline.from_config(pcfg)
    assert isinstance(pipe, PosePipeline) and pipe.model_id.startswith("chatpose:")
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    res = pipe.estimate(image, "what is the pose of the man ?")
    assert isinstance(res, PoseResult) and "[POSE]" in res.answer
    assert not res.pose_forced  # the trained model emits the pose token itself (forcing is off)
    assert len(res.people) == 1
    p = res.people[0]
    assert p.theta.shape == (72,) and np.isfinite(p.theta).all() and p.estimator == "chatpose"
    assert p.joints.shape == (24, 3) and p.box is None and p.translation is None
    assert res.image_size == (64, 48) and pipe.observe(image) == []
    text_only = pipe.estimate(None, "what is the pose of the man ?")
    assert len(text_only.people) == 1 and not text_only.pose_forced

    # evaluation output
    metrics = evaluate(data, merged, pipeline=pipe)
    assert metrics["image_to_pose"]["n"] == 2 and metrics["text_to_pose"]["n"] == 2
    assert metrics["image_to_pose"]["mpjpe_mm"] > 0 and metrics["grounding"]["n"] == 4
    assert metrics["retrieval"]["R@5"] is None
    table = format_table(metrics)
    assert "PA-MPJPE" in table and "n/a" in table
    pipe.close()
