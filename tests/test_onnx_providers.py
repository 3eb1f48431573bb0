"""ONNX Runtime provider selection for the default profile on a GPU (issue 22): the pure plan and
selection with onnxruntime's real provider list (CPU only here) and with a GPU build's list, the
fallback chain TensorRT -> CUDA -> CPU with one log line, and the LLM's placement."""
from __future__ import annotations

import logging
import types

import pytest
import torch

from chatpose_ros.core import onnx_providers as op
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ConfigError, ModelLoadError

ort = pytest.importorskip("onnxruntime")

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_provider_list_is_validated():
    assert op.parse_providers("TensorRT, cuda,cpu") == ("tensorrt", "cuda", "cpu")
    for bad in ("", "gpu", "cuda,cuda", "openvino,cpu"):
        with pytest.raises(ConfigError):
            op.parse_providers(bad)
    with pytest.raises(ConfigError, match="perception_providers"):
        PipelineConfig(perception_providers="rocm")
    assert PipelineConfig().perception_providers == "tensorrt,cuda,cpu"


def test_plan_follows_the_device(tmp_path):
    assert op.plan_providers("cpu", "tensorrt,cuda,cpu", str(tmp_path), cuda_available=True) == op.ProviderPlan()
    assert not op.plan_providers("auto", "tensorrt,cuda,cpu", cuda_available=False).gpu
    plan = op.plan_providers("auto", "tensorrt,cuda", str(tmp_path), fp16=False, cuda_available=True)
    assert plan.providers == ("tensorrt", "cuda", "cpu") and plan.gpu and not plan.fp16
    assert plan.engine_cache_dir == str(tmp_path / op.ENGINE_SUBDIR)
    plan = op.plan_providers("cuda:1", "cuda", cuda_available=False)  # what was asked for, CUDA or not
    assert plan.providers == ("cuda", "cpu") and plan.device_id == 1 and plan.engine_cache_dir == ""
    with pytest.raises(ConfigError):
        op.ProviderPlan(("cuda",))  # cpu must close the list


def test_selection_with_the_installed_onnxruntime():
    """This machine's onnxruntime is the CPU build (the package's dependency): a GPU plan runs
    on the CPU and names what it lacks."""
    available = ort.get_available_providers()
    assert "CPUExecutionProvider" in available
    plan = op.plan_providers("cuda", "tensorrt,cuda,cpu", cuda_available=True)
    chosen, missing = op.select_providers(plan, available)
    assert chosen[-1] == "CPUExecutionProvider"
    assert set(chosen[:-1]) | set(missing) == {"TensorrtExecutionProvider", "CUDAExecutionProvider"}
    assert all(m not in available for m in missing)


def test_selection_with_a_gpu_build():
    plan = op.plan_providers("cuda", "tensorrt,cuda,cpu", "/cache", cuda_available=True)
    assert op.select_providers(plan, GPU_BUILD) == (GPU_BUILD, [])
    plan = op.plan_providers("cuda", "cuda,tensorrt", cuda_available=True)
    assert op.select_providers(plan, GPU_BUILD)[0] == ["CUDAExecutionProvider", "TensorrtExecutionProvider",
                                                       "CPUExecutionProvider"]
    chosen, missing = op.select_providers(plan, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen == ["CUDAExecutionProvider", "CPUExecutionProvider"] and missing == ["TensorrtExecutionProvider"]
    trt = op.provider_options("TensorrtExecutionProvider", op.plan_providers("cuda:2", "tensorrt", "/c", fp16=True,
                                                                             cuda_available=True))
    assert trt["trt_fp16_enable"] == "True" and trt["trt_engine_cache_enable"] == "True"
    assert trt["trt_engine_cache_path"].endswith(op.ENGINE_SUBDIR) and trt["device_id"] == "2"
    assert op.provider_options("CUDAExecutionProvider", plan) == {"device_id": "0"}


class _FakeSession:
    def __init__(self, providers):
        self.providers = providers

    def get_providers(self):
        return self.providers


def test_fallback_chain_tensorrt_cuda_cpu(monkeypatch, tmp_path):
    """A provider that fails to start (no TensorRT libraries, no driver) falls to the next."""
    asked = []

    def session(path, options, providers):
        names = [p[0] for p in providers]
        asked.append(names)
        if names[0] in failing:
            raise RuntimeError(f"{names[0]}: libnvinfer.so.10: cannot open shared object file\nmore detail")
        return _FakeSession(names)

    monkeypatch.setattr(ort, "InferenceSession", session)
    plan = op.plan_providers("cuda", "tensorrt,cuda,cpu", str(tmp_path), cuda_available=True)
    for failing, runs in (((), "tensorrt"), (("TensorrtExecutionProvider",), "cuda"),
                          (("TensorrtExecutionProvider", "CUDAExecutionProvider"), "cpu")):
        asked.clear()
        f = op.OnnxSessionFactory(plan)
        monkeypatch.setattr(f, "available", lambda: GPU_BUILD)
        f.session(tmp_path / "m.onnx", None)
        assert f.short_provider() == runs and len(asked) == len(failing) + 1
        line = f.summary()
        assert "\n" not in line and f.provider in line
        if failing:
            assert "libnvinfer" in line and "not used" in line
    failing = tuple(GPU_BUILD)
    with pytest.raises(ModelLoadError):
        op.OnnxSessionFactory(plan).session(tmp_path / "m.onnx", None)
    assert (tmp_path / op.ENGINE_SUBDIR).is_dir()  # the TensorRT engine cache is made for it


def test_perception_on_a_gpu_plan_runs_and_says_which_provider(caplog):
    """The real perception with the GPU plan (device cuda) on this CPU-only onnxruntime: it runs on
    the CPU and says so in one warning line; the CPU plan logs nothing."""
    import numpy as np

    from chatpose_ros.models.default.pipeline import build_perception

    gpu_build = "CUDAExecutionProvider" in ort.get_available_providers()
    with caplog.at_level(logging.INFO, logger="chatpose_ros"):
        p = build_perception(PipelineConfig(device="cuda"))
    lines = [r.getMessage() for r in caplog.records if "perception:" in r.getMessage()]
    assert len(lines) == 1 and p.provider in ("tensorrt", "cuda", "cpu")
    if not gpu_build:
        assert p.provider == "cpu" and "CPUExecutionProvider" in lines[0] and "not in this onnxruntime build" in lines[0]
    assert p.see(np.zeros((48, 64, 3), np.uint8)).people == ()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="chatpose_ros"):
        q = build_perception(PipelineConfig(device="cpu"))
    assert q.provider == "cpu" and not [r for r in caplog.records if "perception:" in r.getMessage()]


class _FakePerception:
    """A perception on provider `provider` whose scenes are the CPU's with keypoints moved by `shift` px."""

    def __init__(self, provider, reference, shift=0.0, drop=False):
        self.provider, self.reference, self.shift, self.drop = provider, reference, shift, drop
        self.provider_summary = f"ONNX Runtime on {op.PROVIDERS[provider]}"
        self.closed = False

    def see(self, image):
        import dataclasses

        people = [dataclasses.replace(p, keypoints=p.keypoints + self.shift) for p in self.reference.people]
        return dataclasses.replace(self.reference, people=tuple(people[1:] if self.drop else people))

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def parity_scene():
    from chatpose_ros.perception.gpu_parity import parity_image
    from chatpose_ros.perception.perception import Perception

    scene = Perception().see(parity_image())
    assert len(scene.people) >= 2
    return scene


@pytest.mark.parametrize("trt,expect", [(dict(), "tensorrt"), (dict(shift=20.0), "cuda"), (dict(drop=True), "cuda")])
def test_gpu_perception_is_checked_against_the_cpu(parity_scene, caplog, trt, expect):
    """A GPU provider whose people move or vanish on the parity image is not used: the next one is."""
    from chatpose_ros.perception.gpu_parity import checked_perception

    made = []

    def make(plan):
        p = _FakePerception(plan.providers[0], parity_scene, **(trt if plan.providers[0] == "tensorrt" else {}))
        made.append(p)
        return p

    plan = op.plan_providers("cuda", "tensorrt,cuda,cpu", cuda_available=True)
    with caplog.at_level(logging.INFO, logger="chatpose_ros"):
        p = checked_perception(plan, make)
    assert p.provider == expect and not p.closed
    assert [m.provider for m in made] == ["tensorrt", "cpu"] + (["cuda"] if expect == "cuda" else [])
    lines = [r for r in caplog.records if "perception:" in r.getMessage()]
    assert len(lines) == 1
    if expect == "cuda":
        assert lines[0].levelno == logging.WARNING and "differs from the CPU" in lines[0].getMessage()
        assert made[0].closed
    assert checked_perception(op.ProviderPlan(), make).provider == "cpu"


def test_llm_placement(monkeypatch):
    from chatpose_ros.models.default.pipeline import llm_placement

    assert llm_placement(PipelineConfig(device="cpu")) == (torch.device("cpu"), torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert llm_placement(PipelineConfig(device="auto")) == (torch.device("cpu"), torch.float32)
    with pytest.raises(ModelLoadError, match="CUDA"):
        llm_placement(PipelineConfig(device="cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert llm_placement(PipelineConfig(device="auto")) == (torch.device("cuda"), torch.float16)
    assert llm_placement(PipelineConfig(device="cuda:0", dtype="float32")) == (torch.device("cuda:0"), torch.float32)


def test_runtime_reaches_the_runner():
    from chatpose_ros.core.model_worker import InProcessRunner

    pipe = types.SimpleNamespace(model_id="x:1", runtime="perception cuda; llm cuda:0 float16", close=lambda: None)
    r = InProcessRunner(lambda cfg: pipe, PipelineConfig())
    r.start()
    assert r.runtime == "perception cuda; llm cuda:0 float16"


def test_default_pipeline_says_what_runs_and_its_fp16_llm_answers_alike():
    """The LLM in fp16 (as on CUDA; here on the CPU) next to float32: same answer, same choice."""
    import numpy as np

    from chatpose_ros.models.default.pipeline import DefaultPipeline
    from chatpose_ros.tools.gpu_check import frames

    p32 = DefaultPipeline.from_config(PipelineConfig(device="cpu"))
    assert p32.runtime == "perception cpu; llm cpu float32" and p32.device == torch.device("cpu")
    p16 = DefaultPipeline.from_config(PipelineConfig(device="cpu", dtype="float16"), perception=p32.perception)
    assert p16.runtime.endswith("llm cpu float16") and next(p16.llm.pose_head.parameters()).dtype == torch.float32
    image = frames(1)[0]
    a, b = p32.estimate(image, "the person on the left"), p16.estimate(image, "the person on the left")
    assert a.answer == b.answer and a.selected == b.selected and len(a.people) == len(b.people) > 0
    a, b = p32.estimate(None, "a man raising his arms"), p16.estimate(None, "a man raising his arms")
    assert a.people and b.people and np.abs(a.people[0].theta - b.people[0].theta).max() < 0.2
    p32.close()
