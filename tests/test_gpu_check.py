"""The prepared GPU check (chatpose_ros/tools/gpu_check.py, issue 22) runs its code paths on the
CPU (`--cpu`): a broken script is found here, not on the GPU machine's short lease."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")


def test_gpu_check_dry_run_on_cpu(tmp_path, capsys):
    from chatpose_ros.tools.gpu_check import main

    out = tmp_path / "gpu_check.json"
    rc = main(["--cpu", "--sections", "vision,perception,chatpose_e2e", "--frames", "1", "--repeats", "2",
               "--out", str(out)])
    table = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert rc == 0, result
    assert result["cpu_dry_run"] and set(result["sections"]) == {"vision", "perception", "chatpose_e2e"}
    assert not [n for n, s in result["sections"].items() if "error" in s or "skipped" in s]
    vision = result["sections"]["vision"]
    assert vision["tokens"] == 16 and vision["torch_fp16_cosine_min"] > 0.999
    assert vision["tensorrt"].startswith("n/a") and vision["onnx_runtime_cosine_min"] > 0.999
    assert result["sections"]["perception"]["cpu_ms"] > 0
    e2e = result["sections"]["chatpose_e2e"]
    assert e2e["people"] == 1 and e2e["to_pose_ms"] > 0
    assert "device: CPU" in table and "TensorRT fp16 engine" in table and "n/a" in table


def test_gpu_check_refuses_a_gpu_run_without_cuda(monkeypatch, tmp_path):
    import torch

    from chatpose_ros.tools.gpu_check import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--out", str(tmp_path / "x.json")]) == 2


def test_perception_parity_figures_on_one_provider(tmp_path):
    """The per-provider measurement and its parity with the CPU, run with the CPU provider on both
    sides: every person matched, keypoints 0 px apart."""
    from chatpose_ros.perception.perception import DEFAULT_PRESET, PERCEPTION_PRESETS, Perception
    from chatpose_ros.tools import gpu_check as g

    imgs = g.frames(2)
    preset = PERCEPTION_PRESETS[DEFAULT_PRESET]
    cpu = Perception(preset)
    scenes = [cpu.see(im) for im in imgs]
    check = g.Check(100)
    r = g._perception_on(check, "cpu", "CPUExecutionProvider", preset, imgs, scenes, 100.0, tmp_path, 1)
    parity = r["parity"]
    assert parity["people_cpu"] == parity["people_gpu"] > 0 and parity["found"] == parity["confident"] > 0
    assert parity["keypoint_px_max"] == 0.0 and r["parity_ok"] and r["ms"] > 0 and len(check.rows) == 2
