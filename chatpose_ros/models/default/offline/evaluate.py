"""Evaluate the shipped default model; print a table and write JSON.

    chatpose-eval-default [--weights-dir DIR] [--json build/eval_default.json] [--grounding-only] [--families]

With --families only the question-family rows (offline/query_families.py): synthetic grounding in
distribution vs held-out wording families and held-out colour words, and the ablations (LLM
person-token / pose / all states zeroed, question words shuffled).

Rows:
- grounding accuracy on held-out synthetic scenes (mocap test split 01_01, unseen in
  training), per query kind; the answer is teacher-forced ("Sure, it is [POSE].") and the
  grounding head reads the pose token's state, as at inference;
- grounding on real photos (opencv-doc examples) for the labelled cases in REAL_CASES;
- regressor MPJPE / PA-MPJPE from clean, noisy (MediaPipe-like 3D) and COCO-17 2D-only synthetic
  keypoints vs the mean-pose baseline
  (the regressor module's own evaluation, train_regressor.evaluate / baselines);
- text-to-pose: MPJPE / PA-MPJPE of the LLM pose head on posecode descriptions of held-out mocap
  poses vs the mean training pose;
- speed at 640x480 on this machine: p50/p95 of one query end to end, tracking frames per second
  (observe near the tracked box + PersonTracker.update).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.image_files import read_image

log = logging.getLogger(__name__)

PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
# (image, query, expected person: "left" / "right" = smaller / larger box centre x, "only" = the one person)
REAL_CASES: tuple[tuple[str, str, str], ...] = (
    ("basketball1.png", "the person on the left", "left"),
    ("basketball1.png", "the person on the right", "right"),
    ("basketball1.png", "What is the pose of the leftmost person?", "left"),
    ("basketball1.png", "Show me the pose of the person on the far right.", "right"),
    ("basketball2.png", "the person on the left", "left"),
    ("basketball2.png", "the person on the right", "right"),
    ("basketball2.png", "Give me the 3D pose of the rightmost person.", "right"),
    ("basketball2.png", "Where is the one on the left?", "left"),
    ("messi5.jpg", "the person kicking", "only"),
    ("messi5.jpg", "What is the pose of the person in the red shirt?", "only"),
)


def load_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an opencv-doc photo; InvalidImageError when missing."""
    return read_image(str(PHOTOS / name))


def expected_index(people, expect: str) -> int:
    """Index into `people` (PersonPose with boxes) of the person a REAL_CASES label means."""
    cx = [0.5 * (p.box[0] + p.box[2]) for p in people]
    if expect == "left":
        return int(np.argmin(cx))
    if expect == "right":
        return int(np.argmax(cx))
    if expect == "only":
        return 0 if len(people) == 1 else -1
    raise ValueError(expect)


def real_grounding(pipe) -> list[dict]:
    rows = []
    for name, query, expect in REAL_CASES:
        res = pipe.estimate(load_photo(name), query)
        want = expected_index(res.people, expect) if res.people else -1
        rows.append({"image": name, "query": query, "expected": expect, "answer": res.answer,
                     "people": len(res.people), "selected": res.selected,
                     "correct": bool(want >= 0 and res.selected == want)})
    return rows


def regressor_3d_features(regressor):
    """scene -> person features whose 3D keypoints come from the regressor's skeleton, lifted
    from the 2D keypoints alone with the feet hidden (what the pipeline does for MoveNet's COCO-17
    people), instead of the synthetic world keypoints the LLM was trained on."""
    import dataclasses

    from chatpose_ros.models.default.person_features import keypoint_box, scene_features
    from chatpose_ros.models.default.pipeline import lift_people

    from chatpose_ros.perception.keypoints import KEYPOINT_NAMES

    feet = [KEYPOINT_NAMES.index("left_foot"), KEYPOINT_NAMES.index("right_foot")]

    def features(scene) -> np.ndarray:
        kp2d = np.stack([p.obs.kp2d for p in scene.people]).astype(np.float32)
        vis = np.ones(kp2d.shape[:2], np.float32)
        vis[:, feet] = 0.0
        boxes = np.stack([keypoint_box(k) for k in kp2d])
        _, _, skeleton = lift_people(regressor, kp2d, vis, boxes, [None] * len(kp2d))
        return scene_features([dataclasses.replace(p.obs, kp3d=skeleton[i]) for i, p in enumerate(scene.people)])

    return features


@torch.no_grad()
def synthetic_grounding(llm, n: int = 200, seed: int = 1234, batch: int = 16, features=None) -> dict:
    """Accuracy of the grounding head on held-out scenes, per query kind (`features`: see
    queries.SampleStream, e.g. :func:`regressor_3d_features`)."""
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.queries import SampleStream
    from chatpose_ros.models.default.offline.train_llm import collate

    stream = SampleStream(load_mocap("test"), seed, features=features)
    samples = [stream.grounding() for _ in range(n)]
    per: dict[str, list[int]] = {}
    chance = []
    tok = []
    for i in range(0, n, batch):
        part = samples[i:i + batch]
        b = collate(llm, part)
        emb = llm.embed(b["ids"], b["feats"], b["counts"])
        h = llm.backbone(emb, b["att"])
        pred_pos = b["tgt"][:, 1:]
        logits = llm.lm_head_logits(h[:, :-1][pred_pos])
        tok.append(float((logits.argmax(-1) == b["ids"][:, 1:][pred_pos]).float().mean()))
        for j, s in enumerate(part):
            ids = b["ids"][j]
            hp = h[j, int((ids == llm.pose_token_id).nonzero()[0])]
            pred = int(llm.ground_sequence(ids, h[j], hp, torch.from_numpy(np.asarray(s.features, np.float32))).argmax())
            per.setdefault(s.kind, []).append(int(pred == s.target))
            chance.append(1.0 / int(s.features.shape[0]))
    allc = [c for v in per.values() for c in v]
    return {"n": n, "accuracy": float(np.mean(allc)), "chance": float(np.mean(chance)),
            "answer_token_accuracy": float(np.mean(tok)),
            "per_kind": {k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(per.items())}}


@torch.no_grad()
def text_to_pose(llm, n: int = 48, seed: int = 4321) -> dict:
    """Pose head on posecode descriptions of held-out poses vs the mean training pose (MPJPE mm)."""
    from chatpose_ros.core.body import forward_kinematics
    from chatpose_ros.core.decoding import POSE_STATE_AT, generate_with_pose_tokens
    from chatpose_ros.core.metrics import mpjpe_mm, pa_mpjpe_mm
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.queries import SampleStream, canonical_pose

    stream = SampleStream(load_mocap("test"), seed)
    samples = [stream.text_pose() for _ in range(n)]
    train = load_mocap("train")
    canon = np.stack([canonical_pose(r) for r in train.rotmats[::4]])
    mean_joints = forward_kinematics(torch.from_numpy(canon)).numpy().mean(0)
    preds, trues = [], []
    for s in samples:
        ids = torch.tensor([llm.prompt_ids(s.query, 0)])
        emb = llm.embed(ids, torch.zeros((0, llm.spec.feature_dim)), [0])
        gen = generate_with_pose_tokens(llm.lm, llm.tokenizer, emb, llm.pose_token_id, max_new_tokens=12,
                                        force_pose_token=True, eos_token_ids=[llm.end_token_id],
                                        pose_state=POSE_STATE_AT)
        R = llm.pose_head(gen.pose_hidden[:1].float())
        preds.append(forward_kinematics(R)[0].numpy())
        trues.append(forward_kinematics(torch.from_numpy(s.rotmats[None]))[0].numpy())
    P, T = np.stack(preds), np.stack(trues)
    M = np.repeat(mean_joints[None], len(T), 0)
    return {"n": n, "llm_pose_head": {"mpjpe_mm": mpjpe_mm(P, T), "pa_mpjpe_mm": pa_mpjpe_mm(P, T)},
            "mean_pose": {"mpjpe_mm": mpjpe_mm(M, T), "pa_mpjpe_mm": pa_mpjpe_mm(M, T)}}


def regressor_metrics(regressor) -> dict:
    """The regressor module's own held-out evaluation (train_regressor.EVAL_CONDITIONS) with baselines."""
    from chatpose_ros.models.default.offline import train_regressor as tr
    from chatpose_ros.models.default.offline.mocap import load_mocap

    train_bank = tr.PoseBank.from_mocap(load_mocap("train", tr.TrainConfig.fps), mirror=True)
    test_bank = tr.PoseBank.from_mocap(load_mocap("test", tr.TrainConfig.fps), mirror=False)
    mean_body = tr.mean_body_pose(train_bank.rotmats)
    out = {}
    for cond, b in tr.eval_batches(test_bank).items():
        b = {k: (v.to(regressor.init6d.dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
             for k, v in b.items()}
        out[cond] = {"regressor": tr.evaluate(regressor, b),
                                              **tr.baselines(b, mean_body)}
    return out


def speed(pipe, runs: int = 10) -> dict:
    """p50/p95 latency of one query at 640x480 (to the pose: for a streaming pipeline the
    decision and the pose ready, before the answer's words; and to the whole answer) and
    tracking frames per second."""
    import cv2

    from chatpose_ros.core.model_runners import timed_estimate
    from chatpose_ros.perception.tracking import PersonTracker

    frames = [cv2.resize(load_photo(n), (640, 480)) for n in ("basketball1.png", "basketball2.png")]
    pipe.estimate(frames[0], "the person on the left")  # warm-up
    lat, to_pose = [], []
    for i in range(runs):
        res, pose_ms, whole_ms = timed_estimate(pipe, frames[i % 2], "the person on the left")
        to_pose.append(pose_ms)
        lat.append(whole_ms)
    tracker = PersonTracker()
    tracker.start(res.selected_person)
    kept = 0
    track_ms, track_cpu_ms = [], []
    for i in range(runs):  # the node's tracking pass: perception only around the tracked box
        t, c = time.perf_counter(), time.process_time()
        got = tracker.update(pipe.observe(frames[i % 2], near=tracker.last_box))
        track_ms.append((time.perf_counter() - t) * 1e3)
        track_cpu_ms.append((time.process_time() - c) * 1e3)
        kept += int(got is not None and got.track_id == tracker.track_id)
    return {"to_pose_p50_ms": float(np.percentile(to_pose, 50)), "to_pose_p95_ms": float(np.percentile(to_pose, 95)),
            "query_p50_ms": float(np.percentile(lat, 50)), "query_p95_ms": float(np.percentile(lat, 95)),
            "tracking_p50_ms": float(np.percentile(track_ms, 50)),
            "tracking_cpu_p50_ms": float(np.percentile(track_cpu_ms, 50)),
            "tracking_fps": float(1e3 / np.mean(track_ms)), "tracking_kept": f"{kept}/{runs}",
            "last_timings_ms": {k: round(v, 1) for k, v in res.timings_ms.items()}}


def format_table(r: dict) -> str:
    if "families" in r:  # --families: that table alone
        from chatpose_ros.models.default.offline.query_families import format_family_table

        return format_family_table(r["families"])
    lines = ["| metric | value |", "|---|---|"]
    g = r["synthetic_grounding"]
    lines.append(f"| synthetic grounding accuracy (held-out, n={g['n']}) | {g['accuracy']:.1%} "
                 f"(chance {g['chance']:.1%}) |")
    for k, v in g["per_kind"].items():
        lines.append(f"| - {k} (n={v['n']}) | {v['accuracy']:.1%} |")
    lines.append(f"| answer token accuracy (teacher-forced) | {g['answer_token_accuracy']:.1%} |")
    g3 = r.get("synthetic_grounding_regressor_3d")
    if g3 is not None:
        lines.append(f"| same scenes, 3D keypoints from the regressor (2D only, feet hidden, as for COCO-17) | "
                     f"{g3['accuracy']:.1%} |")
        for k, v in g3["per_kind"].items():
            lines.append(f"| - {k} (n={v['n']}) | {v['accuracy']:.1%} |")
    real = r["real_grounding"]
    lines.append(f"| real-photo grounding | {sum(x['correct'] for x in real)}/{len(real)} |")
    for x in real:
        lines.append(f"| - {x['image']}: \"{x['query']}\" -> {x['expected']} | "
                     f"{'ok' if x['correct'] else 'WRONG'} (people {x['people']}, answer \"{x['answer']}\") |")
    for cond, v in r.get("regressor", {}).items():
        lines.append(f"| regressor MPJPE / PA-MPJPE, {cond} landmarks (mm) | {pose_errors(v['regressor'], v['mean_pose'])} |")
    if "text_to_pose" in r:
        t = r["text_to_pose"]
        lines.append(f"| text-to-pose MPJPE / PA-MPJPE (mm, n={t['n']}) | {pose_errors(t['llm_pose_head'], t['mean_pose'])} |")
    if "speed" in r:
        s = r["speed"]
        lines.append(f"| query latency 640x480 p50 / p95 (ms) | {s['query_p50_ms']:.0f} / {s['query_p95_ms']:.0f} |")
        lines.append(tracking_row(s))
    return "\n".join(lines)


def pose_errors(model: dict, mean_pose: dict) -> str:
    """A table cell: MPJPE / PA-MPJPE (mm) of `model` with the mean pose's beside it (each a
    dict with mpjpe_mm and pa_mpjpe_mm)."""
    return (f"{model['mpjpe_mm']:.1f} / {model['pa_mpjpe_mm']:.1f} "
            f"(mean pose {mean_pose['mpjpe_mm']:.1f} / {mean_pose['pa_mpjpe_mm']:.1f})")


def tracking_row(s: dict) -> str:
    """The table row of the tracking pass from `speed`'s figures."""
    return (f"| tracking pass (observe near the tracked box + tracker) p50 wall / CPU (ms) | "
            f"{s['tracking_p50_ms']:.0f} / {s['tracking_cpu_p50_ms']:.0f} ({s['tracking_fps']:.1f} fps, "
            f"kept id {s['tracking_kept']}) |")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate the default profile (grounding, poses, speed).")
    p.add_argument("--weights-dir", default="", help="weights folder (default: the shipped ones)")
    p.add_argument("--json", type=Path, default=Path("build/eval_default.json"), help="where to write the JSON")
    p.add_argument("--scenes", type=int, default=200, help="held-out synthetic grounding samples")
    p.add_argument("--text-poses", type=int, default=48, help="held-out text-to-pose samples")
    p.add_argument("--runs", type=int, default=10, help="timed queries / tracking frames")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--grounding-only", action="store_true",
                   help="only the synthetic and real-photo grounding rows (about 1 min instead of several)")
    p.add_argument("--families", action="store_true",
                   help="only in-distribution vs held-out question families and the ablations (--scenes samples)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.models.default.pipeline import DefaultPipeline

    pipe = DefaultPipeline.from_config(PipelineConfig(weights_dir=args.weights_dir))
    try:
        r = {"model_id": pipe.model_id}
        if args.families:
            from chatpose_ros.models.default.offline.query_families import family_report

            r["families"] = family_report(pipe.llm, n=args.scenes)
            return _report(r, args.json)
        r["synthetic_grounding"] = synthetic_grounding(pipe.llm, n=args.scenes)
        r["synthetic_grounding_regressor_3d"] = synthetic_grounding(pipe.llm, n=args.scenes,
                                                                    features=regressor_3d_features(pipe.regressor))
        r["real_grounding"] = real_grounding(pipe)
        if args.grounding_only:
            return _report(r, args.json)
        try:
            r["regressor"] = regressor_metrics(pipe.regressor)
        except (ImportError, AttributeError) as exc:  # the regressor's evaluation API changed
            log.warning("regressor metrics unavailable: %s", exc)
        r["text_to_pose"] = text_to_pose(pipe.llm, n=args.text_poses)
        r["speed"] = speed(pipe, runs=args.runs)
    finally:
        pipe.close()
    return _report(r, args.json)


def _report(r: dict, path: Path, table_of=None) -> int:
    """Print the table of `r` (`table_of(r)`, default format_table) and write it with the figures
    to `path` (JSON; values JSON cannot hold are written as text)."""
    table = (table_of or format_table)(r)
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**r, "table": table}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
