"""Person detection on real photos: recall, precision and time per image, every candidate side by side.

Offline tooling (`make eval-perception`); runtime code never imports this module.

The labelled set is `tests/data/perception_labels.json`: real photos with two or more people each
(Debian `opencv-doc` photos and `vtest.avi` frames, the sample photos of the npm package
`@vladmandic/face-api`, and crops of them), every person boxed by hand and tagged
`closeup` / `edge_cut` / `small` / `group` (the file's header states the protocol). Each candidate
detector (the old MediaPipe detector and every preset of the new perception stage) runs on every
image; its person boxes are matched greedily to the labels (highest score first, each to the
unmatched label of highest IoU, at IoU >= 0.5); unmatched predictions that lie mostly inside an
`ignore` region (people too small or too blurred to label) count neither way. The run prints one
markdown table: person recall, precision, recall per tag, true/false positives and misses, and the
median milliseconds per image (over the set as it is, of the people stage alone where the candidate
reports it, and wall and CPU time of repeated runs on two 640x480 frames). A candidate that cannot
be built (e.g. mediapipe not installed) is listed as unavailable.

    python -m chatpose_ros.models.default.eval_perception [--only NAME ...] [--threads N] [--misses]
        [--json FILE] [--draw DIR] [--no-timing] [--labels FILE]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chatpose_ros.core.errors import BackendUnavailableError, ChatPoseError, InvalidImageError
from chatpose_ros.core.geometry import box_iou

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_LABELS = REPO_ROOT / "tests" / "data" / "perception_labels.json"
TAGS: tuple[str, ...] = ("closeup", "edge_cut", "small", "group")
LOAD_KINDS: tuple[str, ...] = ("file", "repo_file", "video_frame")
MATCH_IOU = 0.5            # a prediction matches a label at IoU >= this (COCO AP50 criterion)
IGNORE_MIN_INSIDE = 0.5    # an unmatched prediction this much inside an ignore region is not a false positive
WARMUP_RUNS = 1            # untimed runs on the first image before timing each candidate


# -- the labelled set ---------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledPerson:
    """One labelled person: box (x_min, y_min, x_max, y_max) px in the loaded image, one tag."""

    box: Box
    tag: str


@dataclass(frozen=True)
class LabelledImage:
    """One image of the set: where it comes from, how to load it, and its people.

    Attributes:
        id: unique name.
        source: provenance (package, path in it, licence, notes); free-form strings.
        load: how to read the pixels: {"kind": "file", "path": absolute path of an installed
            package's file} | {"kind": "repo_file", "path": relative to the repository root} |
            {"kind": "video_frame", "path": ..., "frame": index from 0}.
        crop: (x_min, y_min, x_max, y_max) px cut from the read image, or None.
        scale: resize factor applied after the crop (1.0: none), to make far people smaller.
        people: the labelled people (boxes in the loaded, cropped image).
        ignore: regions (boxes) where unlabelled people may be found without penalty.
    """

    id: str
    source: dict
    load: dict
    crop: tuple[int, int, int, int] | None
    people: tuple[LabelledPerson, ...]
    ignore: tuple[Box, ...] = ()
    scale: float = 1.0


def _box(v: Sequence[float], what: str) -> Box:
    if len(v) != 4 or not all(isinstance(x, (int, float)) for x in v):
        raise ValueError(f"{what}: a box is 4 numbers (x_min, y_min, x_max, y_max), got {v!r}")
    x0, y0, x1, y1 = (float(x) for x in v)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"{what}: empty box {v!r}")
    return (x0, y0, x1, y1)


def load_labels(path: Path | str = DEFAULT_LABELS) -> list[LabelledImage]:
    """Parse the label file; ValueError on anything malformed (unknown tag or load kind, bad box)."""
    data = json.loads(Path(path).read_text())
    out: list[LabelledImage] = []
    seen: set[str] = set()
    for rec in data["images"]:
        iid = rec["id"]
        if iid in seen:
            raise ValueError(f"duplicate image id {iid!r}")
        seen.add(iid)
        load = rec["load"]
        if load.get("kind") not in LOAD_KINDS:
            raise ValueError(f"{iid}: load kind must be one of {LOAD_KINDS}, got {load.get('kind')!r}")
        people = []
        for p in rec["people"]:
            if p["tag"] not in TAGS:
                raise ValueError(f"{iid}: tag must be one of {TAGS}, got {p['tag']!r}")
            people.append(LabelledPerson(_box(p["box"], iid), p["tag"]))
        crop = rec.get("crop")
        scale = float(rec.get("scale", 1.0))
        if not scale > 0:
            raise ValueError(f"{iid}: scale must be > 0, got {scale}")
        out.append(LabelledImage(
            id=iid, source=rec["source"], load=load,
            crop=tuple(int(v) for v in _box(crop, iid)) if crop is not None else None,
            people=tuple(people), ignore=tuple(_box(b, iid) for b in rec.get("ignore", ())),
            scale=scale))
    return out


def load_image(item: LabelledImage, root: Path = REPO_ROOT) -> np.ndarray:
    """The pixels the labels refer to: (H, W, 3) uint8 RGB. InvalidImageError when unreadable."""
    import cv2

    kind, path = item.load["kind"], Path(item.load["path"])
    if kind == "repo_file":
        path = root / path
    if not path.is_file():
        raise InvalidImageError(f"{item.id}: {path} is missing (source: {item.source.get('package', '?')})")
    if kind == "video_frame":
        cap = cv2.VideoCapture(str(path))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(item.load["frame"]))
            ok, bgr = cap.read()
        finally:
            cap.release()
        if not ok:
            raise InvalidImageError(f"{item.id}: cannot read frame {item.load['frame']} of {path}")
    else:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InvalidImageError(f"{item.id}: cannot decode {path}")
    rgb = bgr[..., ::-1]
    if item.crop is not None:
        x0, y0, x1, y1 = item.crop
        h, w = rgb.shape[:2]
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise InvalidImageError(f"{item.id}: crop {item.crop} outside the {w}x{h} image")
        rgb = rgb[y0:y1, x0:x1]
    if item.scale != 1.0:
        h, w = rgb.shape[:2]
        size = (round(w * item.scale), round(h * item.scale))
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


# -- matching ----------------------------------------------------------------------------
@dataclass
class MatchResult:
    """Greedy matching of one image's predictions to its labels.

    Attributes:
        pairs: (prediction index, label index) of every match.
        missed: label indices left unmatched (false negatives).
        false_positives: prediction indices left unmatched and not inside an ignore region.
        ignored: prediction indices left unmatched but inside an ignore region.
    """

    pairs: list[tuple[int, int]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    false_positives: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)


def _inside_fraction(box: Box, region: Box) -> float:
    """Fraction of `box`'s area inside `region`."""
    ix = max(0.0, min(box[2], region[2]) - max(box[0], region[0]))
    iy = max(0.0, min(box[3], region[3]) - max(box[1], region[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(ix * iy / area) if area > 0 else 0.0


def match(labels: Sequence[Box], predictions: Sequence[Box], scores: Sequence[float] | None = None,
          iou_threshold: float = MATCH_IOU, ignore: Sequence[Box] = ()) -> MatchResult:
    """Match predictions to labels greedily: predictions in descending score order (given order when
    no scores), each to the still unmatched label of highest IoU if that IoU >= `iou_threshold`."""
    order = list(range(len(predictions)))
    if scores is not None:
        if len(scores) != len(predictions):
            raise ValueError(f"{len(scores)} scores for {len(predictions)} predictions")
        order.sort(key=lambda i: -float(scores[i]))
    free = set(range(len(labels)))
    res = MatchResult()
    for i in order:
        best, best_iou = -1, iou_threshold
        for j in sorted(free):
            iou = box_iou(tuple(predictions[i]), tuple(labels[j]))
            if iou >= best_iou and (best < 0 or iou > best_iou):
                best, best_iou = j, iou
        if best >= 0:
            free.discard(best)
            res.pairs.append((i, best))
        elif any(_inside_fraction(tuple(predictions[i]), r) >= IGNORE_MIN_INSIDE for r in ignore):
            res.ignored.append(i)
        else:
            res.false_positives.append(i)
    res.missed = sorted(free)
    return res


@dataclass
class Tally:
    """Counts over a set: true positives, false positives, false negatives, per-tag hits."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tag_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TAGS, 0))
    tag_found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TAGS, 0))

    def add(self, tags: Sequence[str], result: MatchResult) -> None:
        self.tp += len(result.pairs)
        self.fp += len(result.false_positives)
        self.fn += len(result.missed)
        for t in tags:
            self.tag_total[t] += 1
        for _, j in result.pairs:
            self.tag_found[tags[j]] += 1

    @property
    def recall(self) -> float:
        n = self.tp + self.fn
        return self.tp / n if n else float("nan")

    @property
    def precision(self) -> float:
        n = self.tp + self.fp
        return self.tp / n if n else float("nan")

    def tag_recall(self, tag: str) -> float:
        n = self.tag_total[tag]
        return self.tag_found[tag] / n if n else float("nan")


# -- candidates ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    """What a candidate found in one image: person boxes (xyxy px), their scores, and the
    milliseconds of its people stage alone where it reports one (None otherwise)."""

    boxes: list[Box]
    scores: list[float]
    people_ms: float | None = None


# A candidate detector: (H, W, 3) uint8 RGB -> Found.
Detect = Callable[[np.ndarray], Found]


@dataclass
class Candidate:
    name: str
    detect: Detect | None
    unavailable: str = ""
    close: Callable[[], None] = lambda: None


def old_detector_candidate() -> Candidate:
    """The detector being replaced: MediaPipe's legacy single-person pose run repeatedly with the
    found person masked out, plus HOG proposals (models/default/detector.py)."""
    name = "old: MediaPipe legacy + HOG"
    try:
        from chatpose_ros.models.default.detector import MediaPipePersonDetector

        det = MediaPipePersonDetector()
    except (ImportError, BackendUnavailableError) as exc:
        return Candidate(name, None, f"unavailable ({exc})")

    def detect(image: np.ndarray) -> Found:
        found = det.detect(image)
        return Found([d.box for d in found], [d.score for d in found])

    return Candidate(name, detect, close=det.close)


def perception_candidates(threads: int | None) -> list[Candidate]:
    """One candidate per preset of the new perception stage (models/default/perception.py)."""
    try:
        from chatpose_ros.models.default import perception as perception_mod
    except ImportError as exc:
        return [Candidate("new: perception", None, f"unavailable ({exc})")]
    presets = getattr(perception_mod, "PERCEPTION_PRESETS", None)
    if not presets:
        return [Candidate("new: perception", None, "unavailable (no PERCEPTION_PRESETS)")]
    out = []
    for key in presets:
        name = f"new: {key}"
        try:
            p = _make_perception(perception_mod, key, threads)
        except (ChatPoseError, ImportError, OSError) as exc:
            out.append(Candidate(name, None, f"unavailable ({exc})"))
            continue

        def detect(image: np.ndarray, p=p) -> Found:
            scene = p.see(image)
            return Found([tuple(float(v) for v in q.box) for q in scene.people],
                         [float(q.score) for q in scene.people], scene.timings_ms.get("people"))

        out.append(Candidate(name, detect, close=getattr(p, "close", lambda: None)))
    return out


def _make_perception(mod, key: str, threads: int | None):
    """Build the perception stage for one preset (PERCEPTION_PRESETS[key]), with `threads`
    ONNX Runtime threads when given (the preset's own setting otherwise)."""
    if threads is None:
        return mod.Perception(mod.PERCEPTION_PRESETS[key])
    return mod.Perception.from_preset(key, threads=threads)


# -- evaluation ----------------------------------------------------------------------------
TIMING_SIZE = (640, 480)   # (W, H) of the fixed-size timing images
TIMING_IMAGES = ("ocv_basketball1", "ocv_vtest_f300")  # resized to TIMING_SIZE for the timing column
TIMING_REPEATS = 5         # timed runs per timing image


@dataclass
class CandidateReport:
    """One candidate's results: the tally (None when unavailable), ms per set image, ms of
    the people stage per set image (where reported), ms per run on the 640x480 timing images."""

    name: str
    tally: Tally | None
    ms: list[float] = field(default_factory=list)
    people_ms: list[float] = field(default_factory=list)
    ms_640: list[float] = field(default_factory=list)
    cpu_ms_640: list[float] = field(default_factory=list)
    unavailable: str = ""
    misses: list[str] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)


def timing_images(items: Sequence[LabelledImage], images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The set's TIMING_IMAGES resized to TIMING_SIZE (those present in the set)."""
    import cv2

    by_id = {it.id: im for it, im in zip(items, images)}
    return [cv2.resize(by_id[i], TIMING_SIZE, interpolation=cv2.INTER_AREA) for i in TIMING_IMAGES if i in by_id]


def evaluate_candidate(cand: Candidate, items: Sequence[LabelledImage], images: Sequence[np.ndarray],
                       timing: Sequence[np.ndarray] = ()) -> CandidateReport:
    """Run one candidate over the set (tally of matches, time of each image) and then
    TIMING_REPEATS times over each `timing` image."""
    if cand.detect is None:
        return CandidateReport(cand.name, None, unavailable=cand.unavailable)
    for _ in range(WARMUP_RUNS):
        cand.detect(images[0])
    rep = CandidateReport(cand.name, Tally())
    for item, image in zip(items, images):
        t0 = time.perf_counter()
        found = cand.detect(image)
        rep.ms.append(1000.0 * (time.perf_counter() - t0))
        rep.found.append(found)
        if found.people_ms is not None:
            rep.people_ms.append(found.people_ms)
        res = match([p.box for p in item.people], found.boxes, found.scores, ignore=item.ignore)
        rep.tally.add([p.tag for p in item.people], res)
        for j in res.missed:
            p = item.people[j]
            best = max((box_iou(tuple(b), p.box) for b in found.boxes), default=0.0)
            rep.misses.append(f"{item.id}: missed {p.tag} {[round(v) for v in p.box]} (best IoU of any box {best:.2f})")
        for i in res.false_positives:
            rep.misses.append(f"{item.id}: false positive {[round(v) for v in found.boxes[i]]} "
                              f"score {found.scores[i]:.2f}")
    for image in timing:
        cand.detect(image)  # warm-up for this input shape
        for _ in range(TIMING_REPEATS):
            t0, c0 = time.perf_counter(), time.process_time()
            cand.detect(image)
            rep.ms_640.append(1000.0 * (time.perf_counter() - t0))
            rep.cpu_ms_640.append(1000.0 * (time.process_time() - c0))
    return rep


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def _median_ms(v: Sequence[float]) -> str:
    return f"{statistics.median(v):.0f}" if v else "-"


def markdown_table(reports: Sequence[CandidateReport], n_images: int, n_people: int) -> str:
    """The side-by-side table (markdown)."""
    head = ["candidate", "recall", "precision", *[f"recall {t}" for t in TAGS], "TP / FP / FN",
            "ms/image (set)", "ms people stage (set)", "ms @640x480", "CPU ms @640x480"]
    lines = [f"Person boxes on {n_images} labelled images ({n_people} people), greedy matching at IoU >= {MATCH_IOU}.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        if r.tally is None:
            lines.append(f"| {r.name} | {r.unavailable} |" + " |" * (len(head) - 2))
            continue
        t = r.tally
        row = [r.name, _fmt(t.recall), _fmt(t.precision), *[_fmt(t.tag_recall(g)) for g in TAGS],
               f"{t.tp} / {t.fp} / {t.fn}", _median_ms(r.ms), _median_ms(r.people_ms), _median_ms(r.ms_640),
               _median_ms(r.cpu_ms_640)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def reports_to_json(reports: Sequence[CandidateReport], items: Sequence[LabelledImage]) -> dict:
    """The figures of a run as plain data (for a results file)."""
    out = {"images": len(items), "people": sum(len(it.people) for it in items), "match_iou": MATCH_IOU,
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "candidates": []}
    for r in reports:
        if r.tally is None:
            out["candidates"].append({"name": r.name, "unavailable": r.unavailable})
            continue
        t = r.tally
        out["candidates"].append({
            "name": r.name, "recall": t.recall, "precision": t.precision, "tp": t.tp, "fp": t.fp, "fn": t.fn,
            "tag_recall": {g: t.tag_recall(g) for g in TAGS if t.tag_total[g]},
            "ms_per_image_median": statistics.median(r.ms) if r.ms else None,
            "ms_people_stage_median": statistics.median(r.people_ms) if r.people_ms else None,
            "ms_640x480_median": statistics.median(r.ms_640) if r.ms_640 else None,
            "cpu_ms_640x480_median": statistics.median(r.cpu_ms_640) if r.cpu_ms_640 else None,
            "misses": r.misses})
    return out


def draw_results(report: CandidateReport, items: Sequence[LabelledImage], images: Sequence[np.ndarray],
                 out_dir: Path) -> None:
    """One PNG per image: labels (green, tag initial; ignore regions grey) and the candidate's boxes
    (red, score), to look at the misses."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "_" for ch in report.name).strip("_")
    for item, image, found in zip(items, images, report.found):
        canvas = np.ascontiguousarray(image[..., ::-1])
        for r in item.ignore:
            cv2.rectangle(canvas, _pt(r[:2]), _pt(r[2:]), (128, 128, 128), 1)
        for p in item.people:
            cv2.rectangle(canvas, _pt(p.box[:2]), _pt(p.box[2:]), (0, 200, 0), 2)
            cv2.putText(canvas, p.tag[0], _pt((p.box[0] + 3, p.box[1] + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1)
        for b, sc in zip(found.boxes, found.scores):
            cv2.rectangle(canvas, _pt(b[:2]), _pt(b[2:]), (0, 0, 255), 1)
            cv2.putText(canvas, f"{sc:.2f}", _pt((b[0] + 3, b[3] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
        cv2.imwrite(str(out_dir / f"{slug}__{item.id}.png"), canvas)


def _pt(xy: Sequence[float]) -> tuple[int, int]:
    return int(round(xy[0])), int(round(xy[1]))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="label file (JSON)")
    ap.add_argument("--only", nargs="*", default=None, help="run only candidates whose name contains one of these")
    ap.add_argument("--threads", type=int, default=None,
                    help="ONNX Runtime threads for the perception presets (the presets' own setting if unset)")
    ap.add_argument("--misses", action="store_true", help="also list every miss and false positive")
    ap.add_argument("--no-timing", action="store_true", help="skip the repeated runs on the 640x480 timing images")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (and misses) to this JSON file")
    ap.add_argument("--draw", type=Path, default=None, help="write each image with labels and found boxes to this folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    items = load_labels(args.labels)
    images = [load_image(it) for it in items]
    timing = [] if args.no_timing else timing_images(items, images)
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
    cands = [old_detector_candidate(), *perception_candidates(args.threads)]
    if args.only:
        cands = [c for c in cands if any(s in c.name for s in args.only)]
    reports = []
    for c in cands:
        log.info("running %s", c.name)
        try:
            reports.append(evaluate_candidate(c, items, images, timing))
            if args.draw is not None and reports[-1].tally is not None:
                draw_results(reports[-1], items, images, args.draw)
        finally:
            c.close()
    n_people = sum(len(it.people) for it in items)
    print(markdown_table(reports, len(items), n_people))
    print(f"\nSet image sizes: {', '.join(sizes)}. 'ms @640x480': median of {TIMING_REPEATS} runs on each of "
          f"{', '.join(TIMING_IMAGES)} resized to {TIMING_SIZE[0]}x{TIMING_SIZE[1]}. 'ms people stage': the "
          f"stage's own timing (no objects or attributes). 'CPU ms': process CPU time of the same runs (all threads; "
          f"less disturbed than wall time by other load, higher than wall time where a candidate runs threads). "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
          f"whole see() call including pre- and post-processing; a shared machine: times are noisy.")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports_to_json(reports, items), indent=1))
    if args.misses:
        for r in reports:
            if r.tally is not None:
                print(f"\n### {r.name}\n" + "\n".join(f"- {m}" for m in r.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
