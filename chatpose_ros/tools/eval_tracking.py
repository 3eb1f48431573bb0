"""The tracked target on hand-labelled video: id switches, losses, time to reacquire, and the standard
multi-object tracking figures (IDF1, ID switches, MOTA, with motmetrics), tracker variants side by side.

    OMP_NUM_THREADS=1 .venv/bin/python -m chatpose_ros.tools.eval_tracking [--json build/eval_tracking.json]
        [--stretch tuning|held_out|all] [--step N] [--labels PATH] [--video PATH]

Labels: ``tests/data/vtest_tracks.json`` by default (every person's box in vtest.avi frames 480-790, keyframes
every 10 frames by hand, interpolated between; protocol in tests/data/README.md). Its tuning stretch (480-639)
chose the thresholds; the held-out stretch (640-790) is reported apart. ``--labels`` evaluates another file of
the same format: its ``tuning`` and ``held_out`` fields ([first, last] frames; an empty list: no such stretch)
say which stretches there are; its ``video_path`` field (a path relative to the repository root, e.g.
``tests/data/market_street_tracks.mp4``) names the video it labels, vtest.avi (VIDEO) when absent; ``--video``
overrides both. Frame numbers are the video's own, read in order from its first frame, at FPS.

How a target is run (as the node runs it, without ROS): for each labelled person, at their first labelled
frame of the stretch where the default pipeline, observing the whole frame, detects them (a box that is
theirs: IoU >= MATCH_IOU, more than with anyone else), the query's answer chooses that detection among
everyone detected; the node's Session
(core.session) starts the track, and every later frame goes through Session.take -> TrackerHost.track
(the profile's tracker beside the model, `observe(near=...)`) -> Session.finish_track, whose target check
decides what is published under the track's id. Frames arrive every `step` video frames (10 fps / step),
one tracking update each.

Figures per variant (one row each; the same frames and seeds):
- target: for each run, each published box is given to the labelled person it overlaps most (IoU >=
  MATCH_IOU); ``target_id_switches`` counts the times the published person became someone else than the
  target (a switch to a neighbour counts, whatever the published id says), ``target_wrong_frames`` the
  frames published on someone else, ``target_lost`` the track_lost reports, ``target_coverage`` the share of
  frames where the target is labelled (not hidden) and published as themselves (``small_target_coverage``:
  of the targets at most SMALL_PX tall, median over the run), ``target_reacquire_s`` the
  longest time from the target's reappearing (labelled again after being hidden or out of view) to being
  published as themselves again (None: never within the run);
- all people: the published boxes of every run together (one hypothesis id per run) against every labelled
  box: IDF1, ID switches, MOTA, misses, false positives (motmetrics, IoU >= MATCH_IOU).

Variants (`_variants`): ``before`` = the tracker as it was (the pipeline's colour-statistics descriptor, L1
appearance cost), ``after`` = as shipped (reacquisition by appearance for the node's default reacquire_s),
``after+reacquire`` = as shipped with reacquisition for REACQUIRE_S.
How the figures can mislead: boxes between keyframes are interpolated (a walker's box wobbles by a few
px around the line); a person is labelled only between the keyframes they are seen in; the single-target
runs are not a multi-object tracker (two runs on one person count a false positive); one video, one camera.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.geometry_np import box_iou
from chatpose_ros.core.model_runners import TrackerHost
from chatpose_ros.core.session import Frame, Output, Report, Session, Track
from chatpose_ros.core.types import PoseResult

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "tests" / "data" / "vtest_tracks.json"
VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FPS = 10.0
SEED_FRAMES = 30  # a target not found by the detector within this many frames of their first labelled one is skipped
REACQUIRE_S = 10.0  # the after+reacquire variant's NodeConfig.reacquire_s
SMALL_PX = 75  # targets whose median labelled height is at most this are "small" (issue 23: 40-70 px)
MATCH_IOU = 0.5  # a published box is a labelled person's when they overlap at least this much (MOT convention)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GroundTruth:
    """One labelled person in one frame: box (xyxy px) and whether they are fully hidden."""

    box: Box
    hidden: bool = False


def load_tracks(path: Path = LABELS) -> tuple[dict, dict[int, dict[int, GroundTruth]]]:
    """(the label file's header, {frame: {person id: GroundTruth}}) for every frame from first to last:
    keyframe boxes as labelled, boxes in between linearly interpolated between the two keyframes around
    them when the person is labelled in both. Keyframes are `keyframe_step` frames apart, the last one possibly
    nearer (a stretch that ends between two steps, e.g. 0-149). A keyframe's `hidden` flag holds for the frames
    nearer to it than to the other keyframe."""
    data = json.loads(Path(path).read_text())
    step = int(data["keyframe_step"])
    keys = sorted(int(k) for k in data["keyframes"])
    rows = {k: {r["id"]: r for r in data["keyframes"][str(k)]} for k in keys}
    frames: dict[int, dict[int, GroundTruth]] = {}
    for k, nxt in zip(keys, [*keys[1:], None]):
        frames[k] = {i: GroundTruth(tuple(r["box"]), bool(r.get("hidden", False))) for i, r in rows[k].items()}
        if nxt is None or nxt - k > step:
            continue
        for f in range(k + 1, nxt):
            a = (f - k) / (nxt - k)
            frames[f] = {}
            for i in rows[k].keys() & rows[nxt].keys():
                b0, b1 = np.asarray(rows[k][i]["box"], float), np.asarray(rows[nxt][i]["box"], float)
                near = rows[k][i] if a <= 0.5 else rows[nxt][i]
                frames[f][i] = GroundTruth(tuple(float(v) for v in (1 - a) * b0 + a * b1), bool(near.get("hidden", False)))
    return {k: v for k, v in data.items() if k != "keyframes"}, frames


def label_stretches(path: Path, which: str = "all") -> dict[str, tuple[int, int]]:
    """The stretches of a label file to evaluate: {"tuning" / "held_out": (first, last)} for `which`
    ("tuning", "held_out" or "all"), leaving out a stretch whose field is an empty list (none)."""
    header, _ = load_tracks(path)
    out = {}
    for k in ("tuning", "held_out"):
        span = header.get(k) or []
        if which not in (k, "all") or not span:
            continue
        if len(span) != 2 or int(span[0]) > int(span[1]):
            raise ValueError(f"{path}: {k} must be [first, last] frames or [], got {span}")
        out[k] = (int(span[0]), int(span[1]))
    return out


def label_video(path: Path = LABELS) -> Path:
    """The video a label file labels: its ``video_path`` field resolved against the repository root (an
    absolute path kept as is), else VIDEO (vtest.avi, the first label files' video)."""
    header, _ = load_tracks(path)
    video = header.get("video_path")
    if video is None:
        return VIDEO
    if not isinstance(video, str) or not video:
        raise ValueError(f"{path}: video_path must be a path, got {video!r}")
    return REPO / video  # an absolute video_path stays absolute (pathlib)


def read_frames(first: int, last: int, video: Path = VIDEO) -> dict[int, np.ndarray]:
    """Frames first..last of `video` as (H, W, 3) uint8 RGB."""
    import cv2

    if not video.exists():
        hint = " (apt-get install opencv-doc)" if video == VIDEO else ""
        raise FileNotFoundError(f"{video} missing{hint}")
    cap = cv2.VideoCapture(str(video))
    out = {}
    try:
        for i in range(last + 1):
            ok, frame = cap.read()
            if not ok:
                raise ValueError(f"{video} has no frame {i}")
            if i >= first:
                out[i] = np.ascontiguousarray(frame[..., ::-1])
    finally:
        cap.release()
    return out


def whose(box: Box | None, truth: dict[int, GroundTruth]) -> int | None:
    """The labelled person a published box belongs to (most overlap, IoU >= MATCH_IOU), else None."""
    if box is None:
        return None
    best, best_iou = None, MATCH_IOU
    for pid, gt in truth.items():
        iou = box_iou(box, gt.box)
        if iou >= best_iou:
            best, best_iou = pid, iou
    return best


@dataclass
class Run:
    """One target followed through a stretch: what was published per frame and the reports."""

    target: int
    frames: list[int]
    published: list[Box | None]
    track_id: int
    codes: list[str]


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_target(pipeline, make_tracker: Callable, frames: dict[int, np.ndarray], truth: dict[int, dict[int, GroundTruth]],
               target: int, first: int, last: int, step: int = 1, reacquire_s: float = 0.0) -> Run | None:
    """Follow `target` from the first frame from `first` on where the detector finds them (a detected box
    that is theirs, see `whose`) to `last` through the node's Session and the tracker host; None when that
    does not happen within SEED_FRAMES frames."""
    chosen = None
    for first in range(first, min(first + SEED_FRAMES, last)):  # the first frame the detector finds them alone
        gt = truth.get(first, {})
        if target not in gt or gt[target].hidden:
            continue
        everyone = list(pipeline.observe(frames[first]))
        found = [p for p in everyone if whose(p.box, gt) == target]
        if found:
            chosen = max(found, key=lambda p: box_iou(p.box, gt[target].box))
            break
    if chosen is None:
        return None
    selected = next(i for i, p in enumerate(everyone) if p is chosen)
    clock = _Clock()
    session = Session(NodeConfig(tracking_rate_hz=FPS, reacquire_s=reacquire_s), max_query_chars=100,
                      can_track=True, clock=clock)
    host = TrackerHost(make_tracker)
    session.put_frame(Frame(image=first))
    session.submit("the labelled person")
    events = session.finish_answer(session.take(), PoseResult(query="q", answer="a", people=tuple(everyone),
                                                                    selected=selected))
    track_id = next(e for e in events if isinstance(e, Output)).tracked[0].track_id
    run = Run(target, [], [], track_id, [])
    for f in range(first + step, last + 1, step):
        clock.t += step / FPS
        session.put_frame(Frame(image=f))
        work = session.take()
        box = None
        if isinstance(work, Track):
            update = host.track(pipeline, frames[f], work.request)
            for e in session.finish_track(work, update):
                if isinstance(e, Output):
                    box = next((p.box for p in e.tracked if p.track_id == track_id), box)
                elif isinstance(e, Report) and e:
                    run.codes.append(e.code)
        run.frames.append(f)
        run.published.append(box)
    return run


def target_figures(run: Run, truth: dict[int, dict[int, GroundTruth]]) -> dict:
    """Id switches, wrong frames, losses, coverage and reacquisition times of one run (module docstring)."""
    switches, wrong, seen, right = 0, 0, 0, 0
    current = run.target
    reacquire: list[float | None] = []
    waiting_since: int | None = None  # frame where the target reappeared, not yet published as themselves
    was_visible = True
    for f, box in zip(run.frames, run.published):
        gt = truth.get(f, {})
        who = whose(box, gt)
        visible = run.target in gt and not gt[run.target].hidden
        if who is not None:
            if who != run.target:
                wrong += 1
                if who != current:
                    switches += 1
            current = who
        if visible:
            seen += 1
            right += who == run.target
            if not was_visible:
                waiting_since = f
        if waiting_since is not None and who == run.target:
            reacquire.append((f - waiting_since) / FPS)
            waiting_since = None
        was_visible = visible
    if waiting_since is not None:
        reacquire.append(None)
    heights = [truth[f][run.target].box[3] - truth[f][run.target].box[1] for f in run.frames if run.target in truth.get(f, {})]
    return {"target": run.target, "frames": len(run.frames), "height_px": float(np.median(heights)) if heights else None,
            "id_switches": switches, "wrong_frames": wrong,
            "lost": run.codes.count("track_lost"), "uncertain": run.codes.count("target_uncertain"),
            "coverage": right / seen if seen else None, "reacquire_s": reacquire}


def mot_figures(runs: list[Run], truth: dict[int, dict[int, GroundTruth]], first: int, last: int, step: int) -> dict:
    """IDF1, ID switches, MOTA, misses and false positives of all runs' published boxes against every
    labelled (not hidden) box in first..last (motmetrics)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    by_frame = {r.target: dict(zip(r.frames, r.published)) for r in runs}
    for f in range(first, last + 1, step):
        gt = {pid: g.box for pid, g in truth.get(f, {}).items() if not g.hidden}
        hyp = {run.track_id: by_frame[run.target].get(f) for run in runs}
        hyp = {h: b for h, b in hyp.items() if b is not None}
        dist = np.full((len(gt), len(hyp)), np.nan)
        for i, g in enumerate(gt.values()):
            for j, h in enumerate(hyp.values()):
                iou = box_iou(g, h)
                if iou >= MATCH_IOU:
                    dist[i, j] = 1.0 - iou
        acc.update(list(gt), list(hyp), dist)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "num_switches", "mota", "num_misses",
                                                        "num_false_positives", "num_objects"], name="all")
    row = summary.loc["all"]
    return {"idf1": float(row["idf1"]), "id_switches": int(row["num_switches"]), "mota": float(row["mota"]),
            "misses": int(row["num_misses"]), "false_positives": int(row["num_false_positives"]),
            "labelled_boxes": int(row["num_objects"])}


@dataclass(frozen=True)
class Variant:
    """A tracker set-up to compare: the pipeline's appearance descriptor and the tracker factory."""

    name: str
    descriptor: str
    make_tracker: Callable
    reacquire_s: float  # NodeConfig.reacquire_s: 0 = a lost track ends


def _variants() -> list[Variant]:
    """before: the colour statistics and the L1 appearance cost (main before issue 23's re-identification
    work); after: as shipped (chroma-aware region histograms, cosine cost; reacquisition for the node's
    default reacquire_s); after+reacquire: the same with reacquisition by appearance for REACQUIRE_S."""
    from chatpose_ros.perception.tracking import PersonTracker
    from chatpose_ros.profiles import tracker_factory

    default = NodeConfig().reacquire_s
    before = functools.partial(PersonTracker, appearance_metric="l1", verify=False, search_ahead=False)
    return [Variant("before", "colour_stats", before, 0.0),
            Variant("after", "region_histograms", tracker_factory("default"), default),
            Variant("after+reacquire", "region_histograms", tracker_factory("default"), REACQUIRE_S)]


def evaluate(pipeline, variants: list[Variant], stretches: dict[str, tuple[int, int]], step: int = 1,
             path: Path = LABELS, video: Path | None = None) -> dict:
    """Every labelled person of every stretch followed with every variant: {stretch: {variant: figures}}.
    `video`: the labelled video, the label file's own (`label_video`) when None."""
    _, truth = load_tracks(path)
    video = label_video(path) if video is None else video
    out: dict = {}
    for sname, (first, last) in stretches.items():
        frames = read_frames(first, last, video)
        out[sname] = {}
        starts = {}
        for f in range(first, last + 1):
            for pid, gt in truth.get(f, {}).items():
                if pid not in starts and not gt.hidden:
                    starts[pid] = f
        for v in variants:
            pipeline.appearance_descriptor = v.descriptor
            t0 = time.perf_counter()
            runs, skipped = [], []
            for pid, f0 in sorted(starts.items()):
                run = run_target(pipeline, v.make_tracker, frames, truth, pid, f0, last, step, v.reacquire_s)
                (runs.append(run) if run is not None else skipped.append(pid))
            targets = [target_figures(r, truth) for r in runs]
            reacq = [s for t in targets for s in t["reacquire_s"]]
            out[sname][v.name] = {
                "targets": targets, "not_detected_at_start": skipped,
                "target_id_switches": sum(t["id_switches"] for t in targets),
                "target_wrong_frames": sum(t["wrong_frames"] for t in targets),
                "target_lost": sum(t["lost"] for t in targets),
                "target_coverage": _mean([t["coverage"] for t in targets]),
                "target_reacquire_s": None if any(s is None for s in reacq) else max(reacq, default=0.0),
                "target_reacquire_events": reacq,
                "small_target_coverage": _mean([t["coverage"] for t in targets
                                                if t["height_px"] is not None and t["height_px"] <= SMALL_PX]),
                **mot_figures(runs, truth, first, last, step),
                "seconds": round(time.perf_counter() - t0, 1)}
            log.info("%s %s done in %.0f s", sname, v.name, time.perf_counter() - t0)
    return out


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _fmt(v) -> str:
    if v is None:
        return "never"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def report_lines(results: dict) -> list[str]:
    cols = ("target_id_switches", "target_wrong_frames", "target_lost", "target_coverage", "small_target_coverage",
            "target_reacquire_s",
            "idf1", "id_switches", "mota", "misses", "false_positives")
    lines = []
    for sname, variants in results.items():
        lines.append(f"[{sname}] " + " | ".join(cols))
        for vname, r in variants.items():
            lines.append(f"  {vname:15s} " + " | ".join(_fmt(r[c]) for c in cols))
            per = ", ".join(f"{t['target']} ({_fmt(t['height_px'])} px): sw {t['id_switches']} lost {t['lost']} "
                            f"cov {_fmt(t['coverage'])} "
                            f"reacq {[_fmt(s) for s in t['reacquire_s']]}" for t in r["targets"])
            lines.append(f"          per target: {per}")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default="build/eval_tracking.json", help="where to write the figures")
    ap.add_argument("--stretch", choices=("tuning", "held_out", "all"), default="all")
    ap.add_argument("--step", type=int, default=1, help="use every step-th video frame (10 fps / step)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of the pipeline")
    ap.add_argument("--labels", type=Path, default=LABELS,
                    help="label file (tests/data/README.md); its tuning / held_out fields name the stretches")
    ap.add_argument("--video", type=Path, default=None,
                    help="the labelled video (default: the label file's video_path, else vtest.avi)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from chatpose_ros.profiles import build_pipeline

    stretches = label_stretches(args.labels, args.stretch)
    if not stretches:
        ap.error(f"{args.labels} has no {args.stretch} stretch")
    video = label_video(args.labels) if args.video is None else args.video
    pipeline = build_pipeline(PipelineConfig(profile="default", cpu_threads=args.threads))  # its observe + tracker
    try:
        results = evaluate(pipeline, _variants(), stretches, args.step, path=args.labels, video=video)
    finally:
        pipeline.close()
    cmd = "python -m chatpose_ros.tools.eval_tracking " + " ".join(argv if argv is not None else sys.argv[1:])
    held = results.get("held_out") or next(iter(results.values()))
    summary = {"command": cmd.strip(), "labels": str(args.labels.name), "video": video.name, "step": args.step,
               "fps": FPS / args.step,
               "headline_stretch": "held_out" if "held_out" in results else next(iter(results)),
               "target_id_switches": held["after"]["target_id_switches"],
               "target_reacquire_s": held["after"]["target_reacquire_s"],
               "idf1_before": held["before"]["idf1"], "idf1_after": held["after"]["idf1"],
               "stretches": {k: list(v) for k, v in stretches.items()}, "results": results}
    for line in report_lines(results):
        log.info("%s", line)
    log.info("headline (%s, after): target id switches %s, reacquire %s s, IDF1 %.3f -> %.3f",
             summary["headline_stretch"], summary["target_id_switches"], _fmt(summary["target_reacquire_s"]),
             summary["idf1_before"], summary["idf1_after"])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
