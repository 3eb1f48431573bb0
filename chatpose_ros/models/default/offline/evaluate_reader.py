"""``make eval-reader``: every figure of the `reader` profile (the scene reader) in one run.

    python -m chatpose_ros.models.default.offline.evaluate_reader [--weights-dir DIR]
        [--json build/eval_reader.json] [--quick]

Sections:
- the scene reader on synthetic questions it was never trained on (offline.eval_reader):
  in-distribution, held-out template families, held-out words, held-out layout; per category;
  counting; pose yes/no; no-match refusals; ECE; the ablations (LLM states zeroed, question
  shuffled, question removed, scene cut to positions);
- the hand-written questions about real photos (offline.eval_questions, through the whole
  pipeline as the node asks it): accuracy per category, refusals, counting;
- regressor MPJPE / PA-MPJPE (held-out mocap) against the mean pose, and text-to-pose with the
  reader's pose head;
- speed at 640x480 on this machine: one query to the pose (p50 / p95, the figure issue 12's
  target names), to the whole answer, and the tracking pass.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.models.default.offline.evaluate import _report as report
from chatpose_ros.models.default.offline.evaluate import pose_errors, regressor_metrics, speed, tracking_row

log = logging.getLogger(__name__)


def text_to_pose(reader, n: int = 48, seed: int = 4321) -> dict:
    """Pose head on posecode descriptions of held-out poses (mocap 01_01) vs the mean training
    pose (MPJPE mm); the pose head reads the state that emits [POSE] (no image in the prompt),
    whichever token the reader chose (`pose_token_rate`: how often it chose [POSE])."""
    from chatpose_ros.core.body import forward_kinematics
    from chatpose_ros.core.metrics import mpjpe_mm, pa_mpjpe_mm
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.queries import SampleStream, canonical_pose

    stream = SampleStream(load_mocap("test"), seed)
    samples = [stream.text_pose() for _ in range(n)]
    train = load_mocap("train")
    canon = np.stack([canonical_pose(r) for r in train.rotmats[::4]])
    mean_joints = forward_kinematics(torch.from_numpy(canon)).numpy().mean(0)
    preds, trues, chose = [], [], 0
    for s in samples:
        d = reader.decide(None, s.query, 0)
        chose += int(d.first == reader.pose_id)
        with torch.no_grad():
            R = reader.pose_head(d.hidden.float())
        preds.append(forward_kinematics(R)[0].numpy())
        trues.append(forward_kinematics(torch.from_numpy(s.rotmats[None]))[0].numpy())
    P, T = np.stack(preds), np.stack(trues)
    M = np.repeat(mean_joints[None], len(T), 0)
    return {"n": n, "pose_token_rate": chose / n, "llm_pose_head": {"mpjpe_mm": mpjpe_mm(P, T), "pa_mpjpe_mm": pa_mpjpe_mm(P, T)},
            "mean_pose": {"mpjpe_mm": mpjpe_mm(M, T), "pa_mpjpe_mm": pa_mpjpe_mm(M, T)}}


def format_table(r: dict) -> str:
    from chatpose_ros.models.default.offline import eval_questions, eval_reader

    parts = ["## Scene reader, synthetic questions (never trained on)", "", eval_reader.table(r["reader"])]
    if "real_questions" in r:
        parts += ["", "## Hand-written questions about real photos", "",
                  eval_questions.format_table(r["real_questions"])]
    lines = ["| metric | value |", "|---|---|"]
    for cond, v in r.get("regressor", {}).items():
        lines.append(f"| regressor MPJPE / PA-MPJPE, {cond} (mm) | {pose_errors(v['regressor'], v['mean_pose'])} |")
    if "text_to_pose" in r:
        t = r["text_to_pose"]
        lines.append(f"| text-to-pose MPJPE / PA-MPJPE (mm, n={t['n']}, [POSE] chosen {t['pose_token_rate']:.0%}) | "
                     f"{pose_errors(t['llm_pose_head'], t['mean_pose'])} |")
    if "speed" in r:
        s = r["speed"]
        lines.append(f"| one query at 640x480, to the pose p50 / p95 (ms) | {s['to_pose_p50_ms']:.0f} / "
                     f"{s['to_pose_p95_ms']:.0f} |")
        lines.append(f"| one query at 640x480, to the whole answer p50 / p95 (ms) | {s['query_p50_ms']:.0f} / "
                     f"{s['query_p95_ms']:.0f} |")
        lines.append(tracking_row(s))
        lines.append(f"| stages of the last query (ms) | {s['last_timings_ms']} |")
    if len(lines) > 2:
        parts += ["", "## Poses and speed", ""] + lines
    return "\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate the reader profile (reader, real questions, poses, speed).")
    p.add_argument("--weights-dir", default="", help="weights folder (default: the shipped ones)")
    p.add_argument("--json", type=Path, default=Path("build/eval_reader.json"), help="where to write the JSON")
    p.add_argument("-n", type=int, default=120, help="synthetic questions per split")
    p.add_argument("--text-poses", type=int, default=48, help="held-out text-to-pose samples")
    p.add_argument("--runs", type=int, default=10, help="timed queries / tracking frames")
    p.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime CPU threads")
    p.add_argument("--quick", action="store_true", help="only the synthetic reader section")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.default.offline import eval_questions, eval_reader
    from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR
    from chatpose_ros.models.default.reader_pipeline import ReaderPipeline

    folder = Path(args.weights_dir).expanduser() if args.weights_dir else DEFAULT_WEIGHTS_DIR
    r: dict = {"reader": eval_reader.evaluate(folder, args.n)}
    if args.quick:
        return _report(r, args.json)
    pipe = ReaderPipeline.from_config(PipelineConfig(profile="reader", weights_dir=args.weights_dir,
                                                     cpu_threads=args.threads))
    try:
        r["model_id"] = pipe.model_id
        labels = eval_questions.load_labels(eval_questions.DEFAULT_LABELS)
        outcomes = eval_questions.run(pipe, eval_questions.load_questions(labels=labels), labels)
        r["real_questions"] = eval_questions.summarise(outcomes)
        try:
            r["regressor"] = regressor_metrics(pipe.regressor)
        except (ImportError, AttributeError) as exc:  # the regressor's evaluation API changed
            log.warning("regressor metrics unavailable: %s", exc)
        r["text_to_pose"] = text_to_pose(pipe.reader, n=args.text_poses)
        r["speed"] = speed(pipe, runs=args.runs)
    finally:
        pipe.close()
    return _report(r, args.json)


def _report(r: dict, path: Path) -> int:
    """Print the tables of `r` and write it with the figures to `path` (JSON)."""
    return report(r, path, table_of=format_table)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
