"""`chatpose-export`: build the vision encoder's ONNX model and TensorRT engine ahead of time.

Writes into the cache the node reads (`engine_cache_dir`, same file names and keys as
`vision_backends.create_vision_backend`), so a robot never builds an engine at start-up: the
node finds the engine for its TensorRT version and GPU and uses it (an engine already cached is
never rebuilt unless `--force`). Prints, for the ONNX file and the engine: path, size, build time
and the parity figure (smallest cosine similarity of the features against the torch encoder on
a fixed input; the engine is used only at >= PARITY_MIN_COSINE, fp16 first, else fp32, also when
the fp16 build fails). Export errors (an operator torch cannot export) end with exit code 2 and
one error line.
Run it on the robot itself (an engine only runs on the GPU and TensorRT version that built it).
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError

from . import vision_backends as vb
from .checkpoints import checkpoint_fingerprint, load_checkpoint

log = logging.getLogger(__name__)

EXIT_FAILED = 2
EXIT_NO_TENSORRT = 3


@dataclass(frozen=True)
class ExportReport:
    """What was written (or found) in the cache."""

    onnx_path: Path
    onnx_mb: float
    onnx_export_s: float | None  # None: already cached
    onnx_parity: float | None  # ONNX Runtime vs torch (cosine), when ONNX Runtime is installed
    engine_path: Path | None = None
    engine_mb: float | None = None
    engine_precision: str | None = None
    engine_build_s: float | None = None
    engine_built_now: bool = False
    engine_parity: float | None = None

    def lines(self) -> list[str]:
        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)

        out = [f"onnx   {self.onnx_path}",
               f"       size {self.onnx_mb:.1f} MB, "
               + ("cached (not exported again)" if self.onnx_export_s is None else f"exported in {self.onnx_export_s:.1f} s")
               + f", ONNX Runtime parity {fmt(self.onnx_parity, '.5f')} (cosine)"]
        if self.engine_path is not None:
            state = "built now" if self.engine_built_now else "cached (not rebuilt)"
            out += [f"engine {self.engine_path}",
                    f"       {self.engine_precision}, size {self.engine_mb:.1f} MB, {state}, build time "
                    f"{fmt(self.engine_build_s, '.1f')} s, parity {fmt(self.engine_parity, '.5f')} "
                    f"(cosine, threshold {vb.PARITY_MIN_COSINE})"]
        return out


def export(checkpoint: str | Path, cache_dir: str | Path, *, lora_adapter: str | None = None, device: str = "auto",
           dtype: str = "auto", onnx_only: bool = False, precisions: tuple[str, ...] = vb.PRECISIONS,
           force: bool = False) -> ExportReport:
    """Export ONNX (and build the TensorRT engine unless `onnx_only`) into `cache_dir`.

    Raises BackendUnavailableError when TensorRT is wanted but unavailable or no engine passes
    the parity check; CheckpointError for a bad checkpoint."""
    cache = Path(cache_dir).expanduser()
    model = load_checkpoint(checkpoint, device=device, dtype=dtype, lora_adapter=lora_adapter)
    model_id = "chatpose:" + checkpoint_fingerprint(checkpoint, lora_adapter)
    trt = None
    if not onnx_only:
        ok, why = vb.tensorrt_available()
        if not ok:
            raise vb.BackendUnavailableError(f"cannot build a TensorRT engine: {why} (use --onnx-only for ONNX)")
        trt = vb._import_tensorrt()
    opset = vb.onnx_opset_for(trt)
    onnx_path = vb._onnx_path_for(model, cache, model_id, opset)
    exported_s = None
    if force or not onnx_path.exists():
        t0 = time.perf_counter()
        vb.export_onnx(model.encoder, onnx_path, model.preprocessor.crop, opset=opset)
        exported_s = time.perf_counter() - t0
    onnx_parity = None
    try:
        ort = vb.OnnxVisionBackend(model, onnx_path, export=False)
        x = vb.parity_input(model.preprocessor.crop)
        onnx_parity = vb.feature_cosine(ort.encode(x), vb.TorchVisionBackend(model).encode(x))
    except vb.BackendUnavailableError as exc:
        log.info("no ONNX Runtime parity: %s", exc)
    report = ExportReport(onnx_path, onnx_path.stat().st_size / 2**20, exported_s, onnx_parity)
    if onnx_only:
        return report
    backend = vb.tensorrt_with_parity(model, onnx_path, cache, precisions=precisions, force_rebuild=force)
    info = backend.info
    return ExportReport(onnx_path, report.onnx_mb, exported_s, onnx_parity, info.path, info.size_mb,
                        info.precision, info.build_s, info.built_now, info.parity_cosine)


def main(argv: list[str] | None = None) -> int:
    """`chatpose-export --checkpoint DIR [--cache-dir DIR] [--onnx-only] [--precision fp16|fp32] [--force]`."""
    d = PipelineConfig()
    ap = argparse.ArgumentParser(prog="chatpose-export", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint folder in our layout (chatpose-convert)")
    ap.add_argument("--lora-adapter", default=None, help="as the node's model.lora_adapter (does not change vision)")
    ap.add_argument("--cache-dir", default=d.engine_cache_dir, help="the node's model.engine_cache_dir")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"))
    ap.add_argument("--precision", default="auto", choices=("auto", *vb.PRECISIONS),
                    help="auto: fp16, fp32 when fp16 fails the parity check (as the node)")
    ap.add_argument("--onnx-only", action="store_true", help="export ONNX only (no TensorRT needed)")
    ap.add_argument("--force", action="store_true", help="export and build again even when cached")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    precisions = vb.PRECISIONS if args.precision == "auto" else (args.precision,)
    try:
        report = export(args.checkpoint, args.cache_dir, lora_adapter=args.lora_adapter, device=args.device,
                        dtype=args.dtype, onnx_only=args.onnx_only, precisions=precisions, force=args.force)
    except vb.BackendUnavailableError as exc:
        log.error("%s", exc)
        return EXIT_NO_TENSORRT
    except ChatPoseError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
