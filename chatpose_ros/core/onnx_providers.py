"""ONNX Runtime execution providers: which to ask for, with which options, and which one runs.

The embedded default's perception runs ONNX models through ONNX Runtime. On a CPU-only install
(the package's own dependency, `onnxruntime`) that is the CPU provider. With a GPU build
installed (`onnxruntime-gpu`, plus TensorRT for its TensorRT provider; docs/gpu.md) and
`PipelineConfig.device` `cuda` / `auto`, the providers named in
`PipelineConfig.perception_providers` are asked for in order, those the installed build lacks
are skipped, and the CPU provider always closes the list. When a provider fails to start, the
next is tried; `OnnxSessionFactory.provider` then names what runs, and one log line says so
(`summary()`).

The TensorRT provider builds one engine per model and input shape on first use (seconds to
minutes) and keeps it under `<engine_cache_dir>/perception` (keyed by ONNX Runtime by model,
shape and GPU), in fp16 when `fp16` is set.

Pure selection (`plan_providers`, `select_providers`, `provider_options`) is separate from the
session creation, so it is testable with any list of available providers. onnxruntime is
imported only inside `OnnxSessionFactory`.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

# short names (configuration) -> ONNX Runtime provider names
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
CPU = PROVIDERS["cpu"]
GPU_PROVIDERS = ("tensorrt", "cuda")
ENGINE_SUBDIR = "perception"


def parse_providers(spec: str) -> tuple[str, ...]:
    """'tensorrt,cuda,cpu' -> ('tensorrt', 'cuda', 'cpu'); unknown or repeated names raise ConfigError."""
    names = tuple(p.strip().lower() for p in spec.split(",") if p.strip())
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown or not names:
        raise ConfigError(f"perception_providers {spec!r}: expected a comma-separated list of {sorted(PROVIDERS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"perception_providers {spec!r} names a provider twice")
    return names


def device_wants_gpu(device: str, cuda_available: bool) -> bool:
    """Whether the torch-style `device` ('auto', 'cpu', 'cuda', 'cuda:N') asks for the GPU."""
    if device == "auto":
        return cuda_available
    return device.startswith("cuda")


def device_index(device: str) -> int:
    """'cuda:1' -> 1; 'cuda' / 'auto' -> 0."""
    _, _, idx = device.partition(":")
    try:
        return int(idx) if idx else 0
    except ValueError:
        raise ConfigError(f"bad device {device!r}: expected 'cuda:N'") from None


@dataclass(frozen=True)
class ProviderPlan:
    """What to ask ONNX Runtime for.

    Attributes:
        providers: short names in order of preference (a subset of PROVIDERS), CPU last.
        engine_cache_dir: folder of the TensorRT provider's engines ('' = no cache: rebuilt at
            every start).
        fp16: TensorRT engines in fp16.
        device_id: the GPU's index.
    """

    providers: tuple[str, ...] = ("cpu",)
    engine_cache_dir: str = ""
    fp16: bool = True
    device_id: int = 0

    def __post_init__(self) -> None:
        if not self.providers or self.providers[-1] != "cpu" or any(p not in PROVIDERS for p in self.providers):
            raise ConfigError(f"provider plan {self.providers}: names from {sorted(PROVIDERS)}, 'cpu' last")

    @property
    def gpu(self) -> bool:
        return any(p in GPU_PROVIDERS for p in self.providers)


def plan_providers(device: str, providers: str, engine_cache_dir: str = "", fp16: bool = True,
                   cuda_available: bool = False) -> ProviderPlan:
    """The plan for a pipeline's `device` and `perception_providers`: CPU alone unless the device
    asks for the GPU; else the configured order with 'cpu' appended when missing."""
    names = parse_providers(providers)
    if not device_wants_gpu(device, cuda_available):
        return ProviderPlan()
    names = tuple(n for n in names if n != "cpu") + ("cpu",)
    cache = str(Path(engine_cache_dir).expanduser() / ENGINE_SUBDIR) if engine_cache_dir else ""
    return ProviderPlan(names, cache, fp16, device_index(device))


def select_providers(plan: ProviderPlan, available: Sequence[str]) -> tuple[list[str], list[str]]:
    """(ONNX Runtime provider names to ask for, in order, CPU last; the plan's providers this
    ONNX Runtime build lacks)."""
    chosen, missing = [], []
    for short in plan.providers:
        name = PROVIDERS[short]
        if name == CPU or name in available:
            chosen.append(name)
        else:
            missing.append(name)
    return chosen, missing


def provider_options(name: str, plan: ProviderPlan) -> dict[str, str]:
    """ONNX Runtime options of provider `name` under `plan` (strings, as the C API takes them)."""
    if name == PROVIDERS["tensorrt"]:
        opts = {"device_id": str(plan.device_id), "trt_fp16_enable": str(plan.fp16)}
        if plan.engine_cache_dir:
            opts.update(trt_engine_cache_enable="True", trt_engine_cache_path=plan.engine_cache_dir,
                        trt_timing_cache_enable="True", trt_timing_cache_path=plan.engine_cache_dir)
        return opts
    if name == PROVIDERS["cuda"]:
        return {"device_id": str(plan.device_id)}
    return {}


@dataclass
class OnnxSessionFactory:
    """Creates ONNX Runtime sessions under one plan and remembers which provider runs them."""

    plan: ProviderPlan = field(default_factory=ProviderPlan)
    provider: str = ""  # the provider of the last session made ('' before the first)
    notes: list[str] = field(default_factory=list)  # why providers of the plan do not run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def available(self) -> list[str]:
        import onnxruntime as ort

        return list(ort.get_available_providers())

    def session(self, path: Path, options):
        """An InferenceSession on `path` with the first provider of the plan that starts.

        Raises ModelLoadError when not even the CPU provider can load the model."""
        import onnxruntime as ort

        chain, missing = select_providers(self.plan, self.available())
        notes = [f"{m} not in this onnxruntime build" for m in missing]
        if self.plan.engine_cache_dir and PROVIDERS["tensorrt"] in chain:
            Path(self.plan.engine_cache_dir).mkdir(parents=True, exist_ok=True)
        last: Exception | None = None
        for i in range(len(chain)):
            names = chain[i:]
            try:
                sess = ort.InferenceSession(str(path), options,
                                            providers=[(n, provider_options(n, self.plan)) for n in names])
            except Exception as exc:  # onnxruntime raises its own types (Fail, RuntimeException, ...)
                notes.append(f"{names[0]} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                last = exc
                continue
            running = sess.get_providers()[0]
            if running != names[0]:  # onnxruntime's own fallback dropped the first
                notes.append(f"{names[0]} did not start")
            with self._lock:
                self.provider = running
                self.notes = list(dict.fromkeys(self.notes + notes))
            return sess
        raise ModelLoadError(f"cannot load the ONNX model {path}: {last}")

    def summary(self) -> str:
        """One line: what runs, and why not what the plan preferred."""
        wanted = PROVIDERS[self.plan.providers[0]]
        extra = ""
        if self.provider == PROVIDERS["tensorrt"]:
            extra = f" ({'fp16' if self.plan.fp16 else 'fp32'}, engine cache {self.plan.engine_cache_dir or 'off'})"
        why = f"; {wanted} not used: {'; '.join(self.notes)}" if self.provider != wanted and self.notes else ""
        return f"ONNX Runtime on {self.provider or 'nothing yet'}{extra}{why}"

    def short_provider(self) -> str:
        """'tensorrt', 'cuda' or 'cpu' (what runs), '' before the first session."""
        return next((k for k, v in PROVIDERS.items() if v == self.provider), self.provider)
