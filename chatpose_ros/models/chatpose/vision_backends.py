"""Vision encoder backends behind one interface: `encode(pixels) -> features`.

    pixels:   (B, 3, H, W) float, CLIP-normalised
    features: (B, N, hidden_llm) projected patch features, in the LLM's dtype and device

- TorchVisionBackend: the model's own vision tower + projector.
- OnnxVisionBackend: vision tower + projector exported to ONNX (opset 17, or 16 for TensorRT
  8.5; dynamic batch) and run with ONNX Runtime (CUDA provider when present, else CPU).
- TensorRTVisionBackend: an engine built from that ONNX file (explicit batch on TensorRT 8.5 to
  10), cached under `engine_cache_dir` keyed by the ONNX file's sha256, the TensorRT version,
  the GPU name and the precision, with a JSON note beside it (build time, parity), warmed up.
  `tensorrt_with_parity` checks an fp16 engine against torch on a fixed input (cosine
  similarity >= PARITY_MIN_COSINE) and falls back to fp32 (also when the fp16 build fails),
  then torch. Engines are keyed by batch size too. `create_vision_backend`
  never lets TensorRT fail configure: without TensorRT/CUDA or when a parse/build fails it
  falls back to ONNX Runtime on CUDA, then torch, with one log line. `chatpose-export`
  (export.py) builds the same files ahead of time.

Heavy optional libraries (onnxruntime, tensorrt) are imported only inside these classes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError

from .model import ChatPoseModel, VisionEncoder

log = logging.getLogger(__name__)

ONNX_OPSET = 17
ONNX_OPSET_TRT85 = 16
TRT_LAYERNORM_VERSION = (8, 6)  # first TensorRT whose ONNX parser reads LayerNormalization
TRT_IMPLICIT_BATCH_REMOVED = 10  # major version from which every network is explicit-batch
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "image_features"
PRECISIONS = ("fp16", "fp32")
# Parity of an engine with the torch encoder: the smallest cosine similarity between matching
# feature vectors (576 x hidden for ViT-L/14-336) on one fixed seeded input. fp16 engines of a
# healthy export reach > 0.999; a broken one (overflow in fp16, a wrong export) falls far below.
PARITY_MIN_COSINE = 0.99
PARITY_SEED = 0


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


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within the process (an ONNX file of
    ViT-L is over 1 GB)."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


class OnnxExportError(ModelLoadError):
    """torch could not export the vision encoder to ONNX."""


def export_onnx(encoder: VisionEncoder, path: str | Path, image_size: int, *, opset: int = ONNX_OPSET) -> Path:
    """Export vision tower + projector (float32, on CPU) to ONNX with a dynamic batch axis.

    The TorchScript exporter is asked for (`dynamo=False`: newer torch defaults to the dynamo
    exporter); a torch older than that keyword (older Jetson wheels) is called without it.

    Args:
        encoder: the model's VisionEncoder (copied to float32 CPU for export; left unchanged).
        path: output .onnx file.
        image_size: side of the square input (the CLIP crop size).
    Raises:
        OnnxExportError naming torch's error.
    """
    import copy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = copy.deepcopy(encoder).float().cpu().eval()
    dummy = torch.zeros(1, 3, image_size, image_size)
    kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, do_constant_folding=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about Python-side shape checks in CLIP; shapes are fixed per engine
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            try:
                torch.onnx.export(enc, (dummy,), str(path), dynamo=False, **kwargs)
            except TypeError as exc:
                if "dynamo" not in str(exc):
                    raise
                log.info("this torch (%s) has no dynamo keyword in torch.onnx.export: exporting without it",
                         torch.__version__)
                torch.onnx.export(enc, (dummy,), str(path), **kwargs)
        except Exception as exc:  # torch raises RuntimeError, OnnxExporterError, SymbolicValueError, ...
            raise OnnxExportError(f"ONNX export of the vision encoder failed ({type(exc).__name__}: {exc})") from exc
    log.info("vision encoder exported to %s (opset %d)", path, opset)
    return path


def _onnx_path_for(model: ChatPoseModel, cache_dir: Path, model_id: str, opset: int = ONNX_OPSET) -> Path:
    """Cache path of the exported encoder: keyed by the vision/projector files when the model came
    from a checkpoint folder (so rewritten weights never reuse a stale export), else by model_id;
    and by opset (TensorRT 8.5 needs an older one)."""
    from .checkpoints import vision_fingerprint

    src = getattr(model, "checkpoint_dir", None)
    key = vision_fingerprint(src) if src is not None else model_id.replace(":", "_")
    suffix = "" if opset == ONNX_OPSET else f"_op{opset}"
    return cache_dir / f"vision_{key}{suffix}.onnx"


class OnnxVisionBackend:
    """ONNX Runtime session on the exported vision encoder."""

    name = "onnx"

    def __init__(self, model: ChatPoseModel, onnx_path: str | Path, *, export: bool = True,
                 opset: int = ONNX_OPSET) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed") from exc
        self.model = model
        self.onnx_path = Path(onnx_path)
        if export and not self.onnx_path.exists():
            export_onnx(model.encoder, self.onnx_path, model.preprocessor.crop, opset=opset)
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


def _import_tensorrt():
    """The `tensorrt` module (a seam for tests)."""
    import tensorrt

    return tensorrt


def tensorrt_available() -> tuple[bool, str]:
    """(available, reason) for TensorRT + CUDA."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    try:
        _import_tensorrt()
    except ImportError:
        return False, "the tensorrt Python package is not installed"
    return True, ""


def trt_version(trt) -> tuple[int, int]:
    """(major, minor) of a tensorrt module ("8.5.2.2" -> (8, 5))."""
    parts = [int(p) for p in str(trt.__version__).split(".")[:2] if p.isdigit()]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def onnx_opset_for(trt=None) -> int:
    """ONNX opset for the exported encoder: 17 (LayerNormalization as one op), but 16 for
    TensorRT < 8.6 (JetPack 5 ships 8.5, whose ONNX parser lacks LayerNormalization)."""
    if trt is not None and trt_version(trt) < TRT_LAYERNORM_VERSION:
        return ONNX_OPSET_TRT85
    return ONNX_OPSET


def create_network(builder, trt):
    """An explicit-batch network definition on any TensorRT from 8.5 (JetPack 5) to 10.x.

    TensorRT 10 has only explicit batch (`create_network(0)`, the flag is deprecated); 8.x needs
    the EXPLICIT_BATCH creation flag, otherwise the ONNX parser refuses the model."""
    if trt_version(trt)[0] >= TRT_IMPLICIT_BATCH_REMOVED:
        return builder.create_network(0)
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))


def build_engine(trt, logger, onnx_path: Path, side: int, max_batch: int, precision: str) -> bytes:
    """Parse `onnx_path` and build a serialized engine for (1..max_batch, 3, side, side) input.

    Raises BackendUnavailableError (with the parser's errors) when parsing or building fails."""
    if precision not in PRECISIONS:
        raise ConfigError(f"TensorRT precision must be one of {PRECISIONS}, got {precision!r}")
    builder = trt.Builder(logger)
    network = create_network(builder, trt)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT cannot parse {onnx_path}: {errs}")
    cfg = builder.create_builder_config()
    if precision == "fp16":
        cfg.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shape = (3, side, side)
    profile.set_shape(INPUT_NAME, (1, *shape), (1, *shape), (max_batch, *shape))
    cfg.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, cfg)
    if blob is None:
        raise BackendUnavailableError(f"TensorRT {precision} engine build failed (see the TensorRT log)")
    return bytes(blob)


def engine_cache_key(onnx_path: Path, trt_ver: str, gpu: str, max_batch: int) -> str:
    """sha256(ONNX file) + TensorRT version + GPU name + largest batch of the optimisation
    profile, shortened, filesystem-safe."""
    raw = f"{_file_sha256(onnx_path)}|trt{trt_ver}|{gpu}|b{max_batch}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def engine_path_for(onnx_path: Path, cache_dir: Path, trt_ver: str, gpu: str, precision: str, max_batch: int) -> Path:
    """Where the engine of this ONNX file, TensorRT version, GPU, precision and batch is cached."""
    return Path(cache_dir) / f"vision_{engine_cache_key(onnx_path, trt_ver, gpu, max_batch)}_{precision}.engine"


def recorded_parity(onnx_path: Path, cache_dir: Path, precision: str, max_batch: int = 1) -> float | None:
    """The parity figure noted beside a cached engine for this TensorRT, GPU and batch (None: no
    engine, no note, or not checked)."""
    if not Path(onnx_path).exists():
        return None
    gpu = torch.cuda.get_device_name(torch.cuda.current_device())
    path = engine_path_for(onnx_path, Path(cache_dir).expanduser(), str(_import_tensorrt().__version__), gpu,
                           precision, max_batch)
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        return None
    try:
        value = json.loads(meta.read_text()).get("parity_cosine")
        return None if value is None else float(value)
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return None


@dataclass
class EngineInfo:
    """A cached engine and what is known about it (kept beside it as JSON)."""

    path: Path
    precision: str
    trt_version: str
    gpu: str
    build_s: float
    built_now: bool
    parity_cosine: float | None = None

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def save_meta(self) -> None:
        meta = {"precision": self.precision, "trt_version": self.trt_version, "gpu": self.gpu,
                "build_s": round(self.build_s, 3), "parity_cosine": self.parity_cosine,
                "parity_threshold": PARITY_MIN_COSINE}
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(self.meta_path)


def ensure_engine(trt, logger, onnx_path: Path, cache_dir: Path, side: int, max_batch: int, precision: str,
                  gpu: str, force_rebuild: bool = False) -> EngineInfo:
    """The engine for this ONNX file, TensorRT version, GPU, precision and batch: read from `cache_dir`
    when there, else built once and written atomically (never rebuilt unless `force_rebuild`)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = engine_path_for(onnx_path, cache_dir, str(trt.__version__), gpu, precision, max_batch)
    info = EngineInfo(path, precision, str(trt.__version__), gpu, 0.0, False)
    if path.exists() and not force_rebuild:
        if info.meta_path.exists():
            try:
                meta = json.loads(info.meta_path.read_text())
                info.build_s = float(meta.get("build_s", 0.0))
                info.parity_cosine = meta.get("parity_cosine")
            except (json.JSONDecodeError, TypeError, ValueError):
                log.warning("ignoring unreadable %s", info.meta_path)
        return info
    log.info("building TensorRT %s engine from %s (TensorRT %s, %s; the first build can take minutes)",
             precision, onnx_path, trt.__version__, gpu)
    t0 = time.perf_counter()
    blob = build_engine(trt, logger, onnx_path, side, max_batch, precision)
    info.build_s = time.perf_counter() - t0
    info.built_now = True
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    info.save_meta()
    return info


def parity_input(side: int, batch: int = 1) -> torch.Tensor:
    """The fixed input of the parity check: (batch, 3, side, side) seeded normal pixels."""
    g = torch.Generator().manual_seed(PARITY_SEED)
    return torch.randn(batch, 3, side, side, generator=g)


def feature_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest cosine similarity between matching feature vectors of (B, N, D) tensors."""
    a = a.detach().float().cpu().reshape(-1, a.shape[-1])
    b = b.detach().float().cpu().reshape(-1, b.shape[-1])
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-12).min())


class TensorRTVisionBackend:
    """A TensorRT engine of the vision encoder (built once per ONNX file, TensorRT version, GPU
    and precision, cached, warmed up)."""

    name = "tensorrt"

    def __init__(self, model: ChatPoseModel, onnx_path: str | Path, cache_dir: str | Path, *,
                 precision: str = "fp16", max_batch: int = 1, warmup: int = 2, force_rebuild: bool = False) -> None:
        ok, why = tensorrt_available()
        if not ok:
            raise BackendUnavailableError(f"TensorRT backend unavailable: {why}")
        trt = _import_tensorrt()
        self.model = model
        self.trt = trt
        self.precision = precision
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.exists():
            export_onnx(model.encoder, self.onnx_path, model.preprocessor.crop, opset=onnx_opset_for(trt))
        self.side = model.preprocessor.crop
        self.max_batch = max_batch
        self.logger = trt.Logger(trt.Logger.WARNING)
        gpu = torch.cuda.get_device_name(torch.cuda.current_device())
        self.info = ensure_engine(trt, self.logger, self.onnx_path, Path(cache_dir).expanduser(), self.side,
                                  max_batch, precision, gpu, force_rebuild)
        self.engine_path = self.info.path
        self._load_runtime()
        for _ in range(warmup):
            self.encode(torch.zeros(1, 3, self.side, self.side))
        log.info("TensorRT %s vision engine ready: %s", precision, self.engine_path)

    def _load_runtime(self) -> None:
        runtime = self.trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise BackendUnavailableError(f"cannot deserialize TensorRT engine {self.engine_path}")
        self.context = self.engine.create_execution_context()
        self.device = torch.device("cuda", torch.cuda.current_device())

    def check_parity(self, reference) -> float:
        """Cosine similarity (smallest over feature vectors) of this engine against `reference`
        (a backend, normally torch) on the fixed parity input; stored beside the engine."""
        x = parity_input(self.side)
        cos = feature_cosine(self.encode(x), reference.encode(x))
        self.info.parity_cosine = cos
        self.info.save_meta()
        return cos

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


class ParityError(BackendUnavailableError):
    """No TensorRT engine matches the torch encoder closely enough."""


def tensorrt_with_parity(model: ChatPoseModel, onnx_path: Path, cache_dir: Path, *,
                         precisions: tuple[str, ...] = PRECISIONS, force_rebuild: bool = False, max_batch: int = 1):
    """The first engine in `precisions` (fp16, then fp32) that builds and whose parity with the
    torch encoder on the fixed input reaches PARITY_MIN_COSINE. A cached engine's recorded parity
    is trusted (no rebuild, no re-check); an engine that failed stays cached and is skipped next
    time. When an engine is used after others failed, one warning line names their failures.

    Raises ParityError when every engine built but none passes; BackendUnavailableError naming
    each failure when none could be built (or the last error of another kind)."""
    reference = TorchVisionBackend(model)
    figures = []
    build_errors: list[str] = []
    for precision in precisions:
        known = None if force_rebuild else recorded_parity(onnx_path, cache_dir, precision, max_batch)
        if known is not None and known < PARITY_MIN_COSINE:  # failed before: not even loaded
            figures.append(f"{precision} {known:.5f} (cached)")
            log.info("skipping the cached TensorRT %s engine (parity %.5f < %.4f)", precision, known,
                     PARITY_MIN_COSINE)
            continue
        try:
            backend = TensorRTVisionBackend(model, onnx_path, cache_dir, precision=precision, max_batch=max_batch,
                                            force_rebuild=force_rebuild)
        except Exception as exc:  # parser, builder and runtime errors of any TensorRT version
            build_errors.append(f"{precision}: {type(exc).__name__}: {exc}")
            log.info("TensorRT %s engine unusable (%s)", precision, exc)
            continue
        cos = backend.info.parity_cosine
        if cos is None or backend.info.built_now:
            cos = backend.check_parity(reference)
        if cos >= PARITY_MIN_COSINE:
            if figures or build_errors:  # one line for the engines that failed before this one
                why = ([f"parity below {PARITY_MIN_COSINE:.4f} for {', '.join(figures)}"] if figures else []) + \
                      ([f"build failed for {'; '.join(build_errors)}"] if build_errors else [])
                log.warning("TensorRT %s: using the %s engine (cosine %.5f)", "; ".join(why), precision, cos)
            return backend
        figures.append(f"{precision} {cos:.5f}")
        log.info("TensorRT %s engine differs from torch (cosine %.5f < %.4f)", precision, cos, PARITY_MIN_COSINE)
    if build_errors:
        raise BackendUnavailableError("no TensorRT engine could be built or loaded (" + "; ".join(build_errors)
                                      + (f"; parity below threshold: {', '.join(figures)}" if figures else "") + ")")
    raise ParityError(f"no TensorRT engine passes the parity check (cosine {', '.join(figures)}; "
                      f"threshold {PARITY_MIN_COSINE})")


def _onnx_cuda_available(model: ChatPoseModel) -> bool:
    """ONNX Runtime can run on the model's GPU (CUDA execution provider present)."""
    if model.device.type != "cuda":
        return False
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def _fallback_backend(model: ChatPoseModel, onnx_path: Path, opset: int = ONNX_OPSET) -> VisionBackend:
    """ONNX Runtime on CUDA when possible, else the torch encoder."""
    if _onnx_cuda_available(model):
        try:
            return OnnxVisionBackend(model, onnx_path, opset=opset)
        except Exception as exc:  # onnxruntime raises its own types; torch is always there
            log.debug("ONNX Runtime fallback failed too: %s", exc)
    return TorchVisionBackend(model)


def create_vision_backend(config: PipelineConfig, model: ChatPoseModel, model_id: str = "model") -> VisionBackend:
    """The backend `config.vision_backend` names.

    TensorRT never fails configure: without TensorRT/CUDA, or when parsing, building or loading the
    engine fails, it falls back to ONNX Runtime on CUDA, then torch; when no engine passes the
    parity check, to torch. Each fallback is one warning line naming the reason."""
    kind = config.vision_backend
    cache = Path(config.engine_cache_dir).expanduser()
    if kind == "torch":
        return TorchVisionBackend(model)
    if kind == "onnx":
        return OnnxVisionBackend(model, _onnx_path_for(model, cache, model_id))
    if kind == "tensorrt":
        ok, why = tensorrt_available()
        if not ok:
            fb = _fallback_backend(model, _onnx_path_for(model, cache, model_id))
            log.warning("vision_backend=tensorrt but %s: falling back to the %s vision encoder", why, fb.name)
            return fb
        opset = onnx_opset_for(_import_tensorrt())
        onnx_path = _onnx_path_for(model, cache, model_id, opset)
        try:
            return tensorrt_with_parity(model, onnx_path, cache)
        except ParityError as exc:
            log.warning("%s: falling back to the torch vision encoder", exc)
            return TorchVisionBackend(model)
        except Exception as exc:  # parser, builder and runtime errors of any TensorRT version
            fb = _fallback_backend(model, onnx_path, opset)
            log.warning("TensorRT vision engine unusable (%s: %s): falling back to the %s vision encoder",
                        type(exc).__name__, exc, fb.name)
            return fb
    raise ConfigError(f"unknown vision_backend {kind!r}: expected 'torch', 'onnx' or 'tensorrt'")
