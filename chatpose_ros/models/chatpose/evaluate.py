"""`chatpose-eval`: MPJPE / PA-MPJPE, grounding accuracy and R-precision of a ChatPose checkpoint.

- MPJPE / PA-MPJPE (mm) on image_to_pose and text_to_pose samples with a true theta: joints of
  predicted and true theta by forward kinematics on the SMPL tree (mean shape), pelvis-aligned;
  PA after a similarity Procrustes alignment.
- Grounding accuracy on samples with `person_index` and `candidates` (thetas of all people in
  the image): the predicted pose is assigned to the candidate with the lowest PA-MPJPE; correct
  when that is `person_index`.
- R-precision (text-to-pose retrieval, PoseScript style) only with a text-pose embedding
  (`--embedding module:factory`, the factory returning an object with `encode_text(list[str]) ->
  (N, D)` and `encode_pose((N, 72) tensor) -> (N, D)`); otherwise reported as n/a.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.body import forward_kinematics, theta_to_rotmats
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, ConfigError
from chatpose_ros.core.metrics import mpjpe, pa_mpjpe

from .data import Sample, load_image, load_jsonl

log = logging.getLogger(__name__)

M_TO_MM = 1000.0
POSE_TASKS = ("image_to_pose", "text_to_pose")
R_AT = (1, 5, 10)


def joints_from_theta(theta: np.ndarray | torch.Tensor) -> np.ndarray:
    """(B, 72) theta -> (B, 24, 3) joints (m) by forward kinematics, mean shape."""
    t = torch.as_tensor(np.asarray(theta), dtype=torch.float32).reshape(-1, 72)
    return forward_kinematics(theta_to_rotmats(t)).numpy()


def r_precision(text_emb: np.ndarray, pose_emb: np.ndarray, ks: tuple[int, ...] = R_AT) -> dict[str, float]:
    """Pose-to-text retrieval over a gallery: (N, D) texts and (N, D) poses, pair i matches i.

    Returns {"R@k": fraction of poses whose own text ranks within the top k (cosine)}.
    """
    t = text_emb / np.linalg.norm(text_emb, axis=1, keepdims=True).clip(1e-8)
    p = pose_emb / np.linalg.norm(pose_emb, axis=1, keepdims=True).clip(1e-8)
    sim = p @ t.T
    ranks = (sim > np.diag(sim)[:, None]).sum(1)  # 0 = best
    return {f"R@{k}": float((ranks < k).mean()) for k in ks}


def _load_embedding(spec: str):
    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise ConfigError(f"--embedding must be 'module:factory', got {spec!r}")
    return getattr(importlib.import_module(mod), fn)()


def evaluate(data: str | Path, checkpoint: str | Path, *, device: str = "auto", vision_backend: str = "torch",
             embedding: str | None = None, max_new_tokens: int = 512, pipeline=None) -> dict:
    """Run the checkpoint over the samples; returns the metrics dict (also what --json writes)."""
    from .pipeline import ChatPosePipeline

    samples: list[Sample] = [s for s in load_jsonl(data) if s.task in POSE_TASKS]
    if pipeline is None:
        cfg = PipelineConfig(profile="chatpose", checkpoint=str(checkpoint), device=device,
                             vision_backend=vision_backend, chatpose_force_pose_token=True,
                             chatpose_max_new_tokens=max_new_tokens)
        pipeline = ChatPosePipeline.from_config(cfg)
    per_task: dict[str, dict[str, list[float]]] = {t: {"mpjpe": [], "pa_mpjpe": []} for t in POSE_TASKS}
    grounding: list[bool] = []
    emitted = forced = 0
    pred_thetas, texts = [], []
    for s in samples:
        image = load_image(s.image) if s.image is not None else None
        res = pipeline.estimate(image, s.query)
        if not res.people:
            continue
        pred = res.people[0].theta[None]
        emitted += int("[POSE]" in res.answer and not res.pose_forced)
        forced += int(res.pose_forced)
        if s.task == "text_to_pose":
            pred_thetas.append(pred[0])
            texts.append(s.query)
        pj = joints_from_theta(pred)
        if s.theta is not None:
            gj = joints_from_theta(s.theta[None])
            per_task[s.task]["mpjpe"].append(float(mpjpe(pj, gj)[0]) * M_TO_MM)
            per_task[s.task]["pa_mpjpe"].append(float(pa_mpjpe(pj, gj)[0]) * M_TO_MM)
        if s.person_index is not None and s.candidates is not None and len(s.candidates):
            cj = joints_from_theta(s.candidates)
            errs = pa_mpjpe(np.repeat(pj, len(cj), 0), cj)
            grounding.append(int(errs.argmin()) == int(s.person_index))
    result: dict = {"checkpoint": str(checkpoint), "model_id": pipeline.model_id, "samples": len(samples),
                    "pose_token_emitted": emitted, "pose_forced": forced}
    for t, m in per_task.items():
        n = len(m["mpjpe"])
        result[t] = {"n": n, "mpjpe_mm": float(np.mean(m["mpjpe"])) if n else None,
                     "pa_mpjpe_mm": float(np.mean(m["pa_mpjpe"])) if n else None}
    result["grounding"] = {"n": len(grounding), "accuracy": float(np.mean(grounding)) if grounding else None}
    if embedding and texts:
        enc = _load_embedding(embedding)
        te = np.asarray(enc.encode_text(texts))
        pe = np.asarray(enc.encode_pose(torch.as_tensor(np.stack(pred_thetas))))
        result["retrieval"] = {"n": len(texts), **r_precision(te, pe)}
    else:
        result["retrieval"] = {"n": len(texts), **{f"R@{k}": None for k in R_AT},
                               "note": "n/a: no text-pose embedding given (--embedding)"}
    return result


def format_table(result: dict) -> str:
    def f(v, unit=""):
        return "n/a" if v is None else f"{v:.1f}{unit}"

    rows = [("metric", "value", "n")]
    for t in POSE_TASKS:
        r = result[t]
        rows.append((f"{t} MPJPE (mm)", f(r["mpjpe_mm"]), str(r["n"])))
        rows.append((f"{t} PA-MPJPE (mm)", f(r["pa_mpjpe_mm"]), str(r["n"])))
    g = result["grounding"]
    rows.append(("grounding accuracy", "n/a" if g["accuracy"] is None else f"{100 * g['accuracy']:.1f}%", str(g["n"])))
    for k in R_AT:
        v = result["retrieval"][f"R@{k}"]
        rows.append((f"text-to-pose R@{k}", "n/a" if v is None else f"{100 * v:.1f}%", str(result["retrieval"]["n"])))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`chatpose-eval --data JSONL --checkpoint DIR [--json out.json]`."""
    ap = argparse.ArgumentParser(prog="chatpose-eval", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--json", default=None, help="write the metrics here")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--vision-backend", default="torch", choices=("torch", "onnx", "tensorrt"))
    ap.add_argument("--embedding", default=None, help="text-pose embedding 'module:factory' for R-precision")
    ap.add_argument("--max-new-tokens", type=int, default=512, help="as the released code")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = evaluate(args.data, args.checkpoint, device=args.device, vision_backend=args.vision_backend,
                          embedding=args.embedding, max_new_tokens=args.max_new_tokens)
    except ChatPoseError as exc:
        log.error("%s", exc)
        return 2
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
