"""TensorRT deployment without a GPU (issue 10, defect 6): a fake `tensorrt` module stands in for
TensorRT 8.5 (JetPack 5) and 10.x; the runtime part of the backend is replaced by a CPU fake.
Checks the explicit-batch flag, the fallbacks (TensorRT absent, a build that raises), the fp16
parity check with fp32/torch fallback, the engine cache (never rebuilt) and `chatpose-export`."""
from __future__ import annotations

import dataclasses
import json
import logging
import types

import pytest
import torch

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import BackendUnavailableError
from chatpose_ros.models.chatpose import checkpoints as ck
from chatpose_ros.models.chatpose import vision_backends as vb
from chatpose_ros.models.chatpose.tiny import TINY_IMAGE_TOKENS, write_tiny_released


class FakeTensorRT(types.SimpleNamespace):
    """The parts of the `tensorrt` module the builder uses; records what it was asked."""

    def __init__(self, version: str, parse_ok: bool = True, build_ok: bool = True) -> None:
        rec = {"create_network": [], "builds": 0, "flags": []}
        fake = self

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                rec["create_network"].append(flags)
                if flags == 0 and fake.version_major < 10:
                    raise RuntimeError("implicit batch network: the ONNX parser needs explicit batch on TensorRT 8")
                return object()

            def create_builder_config(self):
                return types.SimpleNamespace(set_flag=rec["flags"].append, add_optimization_profile=lambda p: 0)

            def create_optimization_profile(self):
                return types.SimpleNamespace(set_shape=lambda *a: None)

            def build_serialized_network(self, network, cfg):
                rec["builds"] += 1
                return b"engine-bytes" if build_ok else None

        class OnnxParser:
            num_errors = 0 if parse_ok else 1

            def __init__(self, network, logger):
                pass

            def parse(self, data):
                return parse_ok

            def get_error(self, i):
                return "In node 12 (LayerNormalization): unsupported operator"

        super().__init__(
            __version__=version, version_major=int(version.split(".")[0]), rec=rec, Builder=Builder,
            OnnxParser=OnnxParser, Logger=types.SimpleNamespace(WARNING=2, __call__=None),
            NetworkDefinitionCreationFlag=types.SimpleNamespace(EXPLICIT_BATCH=0),
            BuilderFlag=types.SimpleNamespace(FP16="FP16"))
        self.Logger = lambda level: object()
        self.Logger.WARNING = 2


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("trt")
    write_tiny_released(d / "src", d / "clip")
    return d / "ours", ck.load_checkpoint(ck.convert_released(d / "src", d / "clip", d / "ours", image_tokens=TINY_IMAGE_TOKENS))


@pytest.fixture
def fake_trt(monkeypatch):
    """Install a fake TensorRT (version chosen by the test) and a CPU runtime whose output is the
    torch encoder's plus `noise[precision]`."""
    state = {"noise": {"fp16": 0.0, "fp32": 0.0}, "trt": None, "loaded": []}

    def install(version="8.5.2.2", **kw):
        state["trt"] = FakeTensorRT(version, **kw)
        monkeypatch.setattr(vb, "_import_tensorrt", lambda: state["trt"])
        monkeypatch.setattr(vb, "tensorrt_available", lambda: (True, ""))
        monkeypatch.setattr(vb.torch.cuda, "get_device_name", lambda *a: "Orin (fake)")
        monkeypatch.setattr(vb.torch.cuda, "current_device", lambda: 0)
        return state["trt"]

    def load_runtime(self):
        self.engine = self.context = None
        state["loaded"].append(self.precision)

    def encode(self, pixels):
        ref = self.model.encode_images(pixels)
        g = torch.Generator().manual_seed(1)
        return ref + state["noise"][self.precision] * torch.randn(ref.shape, generator=g)

    monkeypatch.setattr(vb.TensorRTVisionBackend, "_load_runtime", load_runtime)
    monkeypatch.setattr(vb.TensorRTVisionBackend, "encode", encode)
    state["install"] = install
    return state


def _cfg(tmp_path, **kw):
    return PipelineConfig(profile="chatpose", vision_backend="tensorrt", engine_cache_dir=str(tmp_path), **kw)


@pytest.mark.parametrize("version,flags", [("8.5.2.2", 1), ("8.6.1", 1), ("10.3.0", 0)])
def test_network_is_explicit_batch_on_every_tensorrt(version, flags):
    trt = FakeTensorRT(version)
    vb.create_network(trt.Builder(None), trt)
    assert trt.rec["create_network"] == [flags]


def test_opset_for_tensorrt_85_has_no_layernorm_op():
    assert vb.onnx_opset_for(FakeTensorRT("8.5.2.2")) == vb.ONNX_OPSET_TRT85
    assert vb.onnx_opset_for(FakeTensorRT("10.3.0")) == vb.onnx_opset_for(None) == vb.ONNX_OPSET


def test_tensorrt_absent_falls_back_with_one_log_line(model, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(vb, "tensorrt_available", lambda: (False, "the tensorrt Python package is not installed"))
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path), model[1])
    assert isinstance(b, vb.TorchVisionBackend)
    lines = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "not installed" in lines[0] and "torch" in lines[0]


@pytest.mark.parametrize("failure", ["parse", "build", "raise"])
def test_build_failure_falls_back_to_onnx_runtime_cuda_then_torch(model, tmp_path, fake_trt, monkeypatch, caplog,
                                                                  failure):
    fake_trt["install"]("8.5.2.2", parse_ok=failure != "parse", build_ok=failure != "build")
    if failure == "raise":
        def boom(*a, **k):
            raise RuntimeError("[TRT] Error Code 2: Internal Error (Assertion failed)")
        monkeypatch.setattr(vb, "build_engine", boom)
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path), model[1])  # no CUDA for ONNX Runtime here: torch
    assert isinstance(b, vb.TorchVisionBackend)
    lines = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "falling back to the torch" in lines[0]
    assert {"parse": "LayerNormalization", "build": "build failed", "raise": "Assertion failed"}[failure] in lines[0]
    caplog.clear()
    monkeypatch.setattr(vb, "_onnx_cuda_available", lambda m: True)  # with ONNX Runtime's CUDA provider
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path), model[1])
    assert isinstance(b, vb.OnnxVisionBackend)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_fp16_parity_failure_falls_back_to_fp32_then_torch(model, tmp_path, fake_trt, caplog):
    fake_trt["install"]("10.3.0")
    fake_trt["noise"].update(fp16=1.0, fp32=0.0)  # a broken fp16 engine, a good fp32 one
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path / "a"), model[1])
    lines = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "fp16" in lines[0] and "using the fp32 engine" in lines[0]
    caplog.clear()
    assert isinstance(b, vb.TensorRTVisionBackend) and b.precision == "fp32"
    assert b.info.parity_cosine >= vb.PARITY_MIN_COSINE
    notes = {p.stem.rsplit("_", 1)[1]: json.loads(p.read_text()) for p in (tmp_path / "a").glob("*.json")}
    assert notes["fp16"]["parity_cosine"] < vb.PARITY_MIN_COSINE <= notes["fp32"]["parity_cosine"]
    fake_trt["noise"].update(fp16=1.0, fp32=1.0)
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path / "b"), model[1])
    assert isinstance(b, vb.TorchVisionBackend)
    lines = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "parity" in lines[0] and "torch" in lines[0]
    fake_trt["noise"].update(fp16=0.0, fp32=0.0)
    b = vb.create_vision_backend(_cfg(tmp_path / "c"), model[1])
    assert b.precision == "fp16" and b.info.parity_cosine > 0.9999


def test_cached_engine_is_never_rebuilt(model, tmp_path, fake_trt):
    trt = fake_trt["install"]("8.5.2.2")
    fake_trt["noise"].update(fp16=1.0)  # fp16 fails parity once: fp32 is used
    first = vb.create_vision_backend(_cfg(tmp_path), model[1])
    assert first.precision == "fp32" and trt.rec["builds"] == 2 and "FP16" in trt.rec["flags"]
    fake_trt["loaded"].clear()
    again = vb.create_vision_backend(_cfg(tmp_path), model[1])  # a node restart
    assert again.precision == "fp32" and trt.rec["builds"] == 2 and not again.info.built_now
    assert fake_trt["loaded"] == ["fp32"]  # the fp16 engine that failed parity is not even loaded
    assert again.engine_path == first.engine_path
    trt2 = fake_trt["install"]("10.3.0")  # another TensorRT version: its own engines
    vb.create_vision_backend(_cfg(tmp_path), model[1])
    assert trt2.rec["builds"] >= 1


def test_chatpose_export_fills_the_cache_the_node_reads(model, tmp_path, fake_trt, capsys):
    from chatpose_ros.models.chatpose.export import main

    ckpt, m = model
    trt = fake_trt["install"]("8.5.2.2")
    cache = tmp_path / "cache"
    assert main(["--checkpoint", str(ckpt), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "onnx" in out and "engine" in out and "built now" in out and "parity" in out and "MB" in out
    assert trt.rec["builds"] == 1
    node = vb.create_vision_backend(dataclasses.replace(_cfg(cache)), m, "chatpose:x")
    assert isinstance(node, vb.TensorRTVisionBackend) and not node.info.built_now and trt.rec["builds"] == 1
    assert str(node.engine_path) in out
    assert main(["--checkpoint", str(ckpt), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    assert "cached (not rebuilt)" in capsys.readouterr().out and trt.rec["builds"] == 1


def test_chatpose_export_onnx_only_without_tensorrt(model, tmp_path, monkeypatch, capsys):
    from chatpose_ros.models.chatpose.export import EXIT_NO_TENSORRT, main

    ckpt, m = model
    monkeypatch.setattr(vb, "tensorrt_available", lambda: (False, "CUDA is not available"))
    assert main(["--checkpoint", str(ckpt), "--cache-dir", str(tmp_path), "--device", "cpu"]) == EXIT_NO_TENSORRT
    assert main(["--checkpoint", str(ckpt), "--cache-dir", str(tmp_path), "--device", "cpu", "--onnx-only"]) == 0
    out = capsys.readouterr().out
    onnx = next(tmp_path.glob("*.onnx"))
    assert str(onnx) in out
    assert float(out.split("ONNX Runtime parity ")[1].split()[0]) > 0.9999
    before = onnx.stat().st_mtime_ns
    node = vb.create_vision_backend(PipelineConfig(profile="chatpose", vision_backend="onnx",
                                                   engine_cache_dir=str(tmp_path)), m, "chatpose:x")
    assert node.onnx_path == onnx and onnx.stat().st_mtime_ns == before  # found, not exported again


def test_parity_figure():
    a = torch.randn(1, 16, 8)
    assert vb.feature_cosine(a, a) == pytest.approx(1.0)
    assert vb.feature_cosine(a, -a) == pytest.approx(-1.0)
    with pytest.raises(BackendUnavailableError):
        raise vb.ParityError("x")


# --------------------------------------------------------------------------- issue 22
def test_onnx_export_without_the_dynamo_keyword(model, tmp_path, monkeypatch):
    """Older torch builds (older Jetson wheels) have no `dynamo` keyword: export without it."""
    real = torch.onnx.export
    calls = []

    def old_export(*args, **kwargs):
        calls.append(sorted(kwargs))
        if "dynamo" in kwargs:
            raise TypeError("export() got an unexpected keyword argument 'dynamo'")
        return real(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", old_export)
    path = vb.export_onnx(model[1].encoder, tmp_path / "v.onnx", model[1].preprocessor.crop)
    assert path.exists() and len(calls) == 2 and "dynamo" in calls[0] and "dynamo" not in calls[1]


def test_chatpose_export_reports_export_errors(model, tmp_path, monkeypatch, caplog):
    from chatpose_ros.models.chatpose.export import EXIT_FAILED, main

    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator scaled_dot_product_attention")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with caplog.at_level(logging.ERROR):
        rc = main(["--checkpoint", str(model[0]), "--cache-dir", str(tmp_path), "--device", "cpu", "--onnx-only"])
    assert rc == EXIT_FAILED
    assert any("ONNX export" in r.message and "scaled_dot_product_attention" in r.message for r in caplog.records)


def test_fp16_build_failure_tries_fp32_with_one_log_line(model, tmp_path, fake_trt, monkeypatch, caplog):
    fake_trt["install"]("10.3.0")
    real = vb.build_engine

    def fp16_fails(trt, logger, onnx_path, side, max_batch, precision):
        if precision == "fp16":
            raise vb.BackendUnavailableError("TensorRT fp16 engine build failed (see the TensorRT log)")
        return real(trt, logger, onnx_path, side, max_batch, precision)

    monkeypatch.setattr(vb, "build_engine", fp16_fails)
    with caplog.at_level(logging.WARNING):
        b = vb.create_vision_backend(_cfg(tmp_path), model[1])
    assert isinstance(b, vb.TensorRTVisionBackend) and b.precision == "fp32"
    lines = [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "fp16" in lines[0] and "fp32" in lines[0], lines


def test_engine_cache_key_includes_the_batch_size(model, tmp_path):
    onnx = vb.export_onnx(model[1].encoder, tmp_path / "v.onnx", model[1].preprocessor.crop)
    one = vb.engine_path_for(onnx, tmp_path, "10.3.0", "gpu", "fp16", max_batch=1)
    four = vb.engine_path_for(onnx, tmp_path, "10.3.0", "gpu", "fp16", max_batch=4)
    assert one != four and one == vb.engine_path_for(onnx, tmp_path, "10.3.0", "gpu", "fp16", max_batch=1)
