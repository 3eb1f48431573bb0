"""Vision encoder backends behind one interface: `encode(pixels) -> features`.

    pixels:   (B, 3, H, W) float, CLIP-normalised
    features: (B, N, hidden_llm) projected patch features, in the LLM's dtype and device

- TorchVisionBackend: the model's own vision tower + projector.
- OnnxVisionBackend: vision tower + projector exported to ONNX (opset 17, dynamic batch) and
  run with ONNX Runtime (CUDA provider when present, else CPU).
- TensorRTVisionBackend: an fp16 engine built from that ONNX file, cached under
  `engine_cache_dir` keyed by the ONNX file's sha256, the TensorRT version and the GPU name,
  warmed up once. Without `tensorrt` or CUDA it logs one line and falls back to torch.

Heavy optional libraries (onnxruntime, tensorrt) are imported only inside these classes.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import BackendUnavailableError, ConfigError, InferenceError

from .model import ChatPoseModel, VisionEncoder

log = logging.getLogger(__name__)

ONNX_OPSET = 17
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "image_features"


@runtime_checkable
class VisionBackend(Protocol):
    name: str

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float pixels -> (B, N, hidden_llm) features (LLM dtype and device)."""
        ...


class TorchVisionBackend:
    """The PyTorch vision tower + projector of the model."""

    name = "torch"

    def __init__(self, model: ChatPoseModel) -> None:
        self.model = model

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_images(pixels)


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def export_onnx(encoder: VisionEncoder, path: str | Path, image_size: int, *, opset: int = ONNX_OPSET) -> Path:
    """Export vision tower + projector (float32, on CPU) to ONNX with a dynamic batch axis.

    Args:
        encoder: the model's VisionEncoder (copied to float32 CPU for export; left unchanged).
        path: output .onnx file.
        image_size: side of the square input (the CLIP crop size).
    """
    import copy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = copy.deepcopy(encoder).float().cpu().eval()
    dummy = torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about Python-side shape checks in CLIP; shapes are fixed per engine
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            enc, (dummy,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=opset,
            dynamo=False, do_constant_folding=True,
        )
    log.info("vision encoder exported to %s (opset %d)", path, opset)
    return path


def _onnx_path_for(model: ChatPoseModel, cache_dir: Path, model_id: str) -> Path:
    """Cache path of the exported encoder: keyed by the vision/projector files when the model came
    from a checkpoint folder (so rewritten weights never reuse a stale export), else by model_id."""
    from .checkpoints import vision_fingerprint

    src = getattr(model, "checkpoint_dir", None)
    key = vision_fingerprint(src) if src is not None else model_id.replace(":", "_")
    return cache_dir / f"vision_{key}.onnx"


class OnnxVisionBackend:
    """ONNX Runtime session on the exported vision encoder."""

    name = "onnx"

    def __init__(self, model: ChatPoseModel, onnx_path: str | Path, *, export: bool = True) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed") from exc
        self.model = model
        self.onnx_path = Path(onnx_path)
        if export and not self.onnx_path.exists():
            export_onnx(model.encoder, self.onnx_path, model.preprocessor.crop)
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        if model.device.type != "cuda":
            providers = ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.onnx_path), sess_options=opts, providers=providers)
        log.info("ONNX Runtime vision backend on %s", self.session.get_providers()[0])

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.detach().float().cpu().numpy()
        try:
            (y,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x)})
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
            raise InferenceError(f"ONNX Runtime vision encoder failed: {exc}") from exc
        return torch.from_numpy(y).to(self.model.device, self.model.dtype)


def tensorrt_available() -> tuple[bool, str]:
    """(available, reason) for TensorRT + CUDA."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "the tensorrt Python package is not installed"
    return True, ""


def engine_cache_key(onnx_path: Path) -> str:
    """sha256(ONNX file) + TensorRT version + GPU name, shortened, filesystem-safe."""
    import tensorrt as trt

    gpu = torch.cuda.get_device_name(torch.cuda.current_device())
    raw = f"{_file_sha256(onnx_path)}|trt{trt.__version__}|{gpu}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


class TensorRTVisionBackend:
    """fp16 TensorRT engine of the vision encoder (built once, cached, warmed up)."""

    name = "tensorrt"

    def __init__(self, model: ChatPoseModel, onnx_path: str | Path, cache_dir: str | Path, *,
                 max_batch: int = 1, warmup: int = 2, force_rebuild: bool = False) -> None:
        ok, why = tensorrt_available()
        if not ok:
            raise BackendUnavailableError(f"TensorRT backend unavailable: {why}")
        import tensorrt as trt

        self.model = model
        self.trt = trt
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.exists():
            export_onnx(model.encoder, self.onnx_path, model.preprocessor.crop)
        cache_dir = Path(cache_dir).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.engine_path = cache_dir / f"vision_{engine_cache_key(self.onnx_path)}.engine"
        self.side = model.preprocessor.crop
        self.max_batch = max_batch
        self.logger = trt.Logger(trt.Logger.WARNING)
        if force_rebuild or not self.engine_path.exists():
            self._build()
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise BackendUnavailableError(f"cannot deserialize TensorRT engine {self.engine_path}")
        self.context = self.engine.create_execution_context()
        self.device = torch.device("cuda", torch.cuda.current_device())
        for _ in range(warmup):
            self.encode(torch.zeros(1, 3, self.side, self.side, device=self.device))
        log.info("TensorRT vision engine ready: %s", self.engine_path)

    def _build(self) -> None:
        trt = self.trt
        log.info("building TensorRT fp16 engine from %s (first build can take minutes)", self.onnx_path)
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(self.onnx_path.read_bytes()):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendUnavailableError(f"TensorRT cannot parse {self.onnx_path}: {errs}")
        cfg = builder.create_builder_config()
        cfg.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        shape = (3, self.side, self.side)
        profile.set_shape(INPUT_NAME, (1, *shape), (1, *shape), (self.max_batch, *shape))
        cfg.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, cfg)
        if blob is None:
            raise BackendUnavailableError("TensorRT engine build failed (see TensorRT log)")
        tmp = self.engine_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(blob))
        tmp.replace(self.engine_path)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(self.device, torch.float32).contiguous()
        b = x.shape[0]
        if b > self.max_batch:
            return torch.cat([self.encode(x[i:i + self.max_batch]) for i in range(0, b, self.max_batch)])
        self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
        out_shape = tuple(self.context.get_tensor_shape(OUTPUT_NAME))
        out_dtype = {self.trt.float32: torch.float32, self.trt.float16: torch.float16}[
            self.engine.get_tensor_dtype(OUTPUT_NAME)]
        y = torch.empty(out_shape, dtype=out_dtype, device=self.device)
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, y.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise InferenceError("TensorRT execution failed")
        stream.synchronize()
        return y.to(self.model.device, self.model.dtype)


def create_vision_backend(config: PipelineConfig, model: ChatPoseModel, model_id: str = "model") -> VisionBackend:
    """The backend `config.vision_backend` names; TensorRT falls back to torch (one log line)."""
    kind = config.vision_backend
    cache = Path(config.engine_cache_dir).expanduser()
    if kind == "torch":
        return TorchVisionBackend(model)
    if kind == "onnx":
        return OnnxVisionBackend(model, _onnx_path_for(model, cache, model_id))
    if kind == "tensorrt":
        ok, why = tensorrt_available()
        if not ok:
            log.warning("vision_backend=tensorrt but %s: falling back to the torch vision encoder", why)
            return TorchVisionBackend(model)
        return TensorRTVisionBackend(model, _onnx_path_for(model, cache, model_id), cache)
    raise ConfigError(f"unknown vision_backend {kind!r}: expected 'torch', 'onnx' or 'tensorrt'")
