"""Posture and closeness to the camera, measured per person against by-eye labels
(tests/data/posture_depth_labels.json).

    python -m chatpose_ros.perception.offline.eval_posture [--sets 2,3,4] [--failures] [--json OUT]
                                                                              (make eval-posture)

Each labelled image goes through what the grounded profile runs before its grounding (perception,
default preset, everything on: the scene of the pipeline's `scene_and_people`; then
`grounding.facts.measure`); every person found is matched to a labelled box (eval_perception.match,
IoU >= 0.5).

- posture: over the labelled people with a clear posture (not "unclear") that perception found:
  coverage (the share given a posture at all) and accuracy (right / answered); postures given to
  people labelled "unclear" are counted apart.
- depth order: over the labelled pairs of different rank (and the label file's "closer" pairs)
  with both people found: the share that a depth proxy orders like the labels (a tie is wrong).
  Proxies side by side: `facts` (PersonFacts.depth, where the person meets the ground: what the
  grounding reads), `box` (1 / box height: what `measure` read for people the regressor's 3D fit
  could not place) and `head` (1 / the widest spread of the face keypoints). The 3D fit itself
  (the regressor is a profile's part, not perception's) was measured on the branch point:
  docs/grounded.md.

Sets 3 and 4 are spent (the posture and depth rules were tuned on them); set 2 is the check.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatpose_ros.perception.offline.eval_perception import REPO_ROOT, load_image, load_labels, match
from chatpose_ros.perception.perception import DEFAULT_PRESET, Perception
from chatpose_ros.perception.perception_attributes import SEEN_SCORE

log = logging.getLogger(__name__)

LABELS = REPO_ROOT / "tests" / "data" / "posture_depth_labels.json"
SETS = {"2": "perception_labels2.json", "3": "perception_labels3.json", "4": "perception_labels4.json"}
POSTURES = ("standing", "sitting", "crouching", "lying", "unclear")
PROXIES = ("facts", "box", "head")
FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


@dataclass(frozen=True)
class Found:
    """What the pipeline measured of one labelled person (None fields: not found)."""

    posture: tuple[str, float] | None
    depth: dict[str, float]


def closer_pairs(marks: dict) -> list[tuple[int, int]]:
    """(a, b) label index pairs where a is labelled closer to the camera than b: from `depth_rank`
    (different, non-null ranks) and the optional `closer` list."""
    rank = marks.get("depth_rank") or []
    pairs = {(a, b) for a, ra in enumerate(rank) for b, rb in enumerate(rank)
             if ra is not None and rb is not None and ra < rb}
    pairs.update((int(a), int(b)) for a, b in marks.get("closer", ()))
    return sorted(pairs)


def depth_proxies(fact, person) -> dict[str, float]:
    """Each proxy's depth of one person (larger: further; `fact` PersonFacts, `person` its ScenePerson):
    see the module docstring. `head` is +inf without two face keypoints."""
    face = [xy.astype(np.float64) for xy in (person.seen_keypoint(n, SEEN_SCORE) for n in FACE) if xy is not None]
    spread = max((float(np.linalg.norm(a - b)) for a in face for b in face), default=0.0)
    return {"facts": float(fact.depth), "box": 1.0 / fact.height, "head": 1.0 / spread if spread > 0 else float("inf")}


def measure_set(perception, set_file: str, marks: dict) -> list[dict]:
    """One row per labelled person of the set: its labels and what was found (Found or None)."""
    from chatpose_ros.grounding.facts import measure

    rows = []
    for item in load_labels(REPO_ROOT / "tests" / "data" / set_file):
        m = marks[item.id]
        if len(m["posture"]) != len(item.people):
            raise ValueError(f"{set_file} {item.id}: {len(m['posture'])} postures for {len(item.people)} boxes")
        image = load_image(item)
        scene = perception.see(image)
        facts = measure(image, scene)
        res = match([p.box for p in item.people], [p.box for p in scene.people], [p.score for p in scene.people])
        found = {j: i for i, j in res.pairs}
        for j, post in enumerate(m["posture"]):
            if post not in POSTURES:
                raise ValueError(f"{set_file} {item.id}: unknown posture {post!r}")
            i = found.get(j)
            f = None if i is None else Found(facts[i].posture, depth_proxies(facts[i], scene.people[i]))
            rows.append({"image": item.id, "label": j, "posture": post, "found": f})
        for a, b in closer_pairs(m):
            rows.append({"image": item.id, "pair": (a, b)})
    return rows


def tally(rows: list[dict]) -> dict:
    """Posture coverage / accuracy and per-proxy pairwise depth-order accuracy of one set's rows."""
    people = [r for r in rows if "label" in r]
    by = {(r["image"], r["label"]): r["found"] for r in people}
    clear = [r for r in people if r["posture"] != "unclear"]
    found = [r for r in clear if r["found"] is not None]
    answered = [r for r in found if r["found"].posture is not None]
    right = [r for r in answered if r["found"].posture[0] == r["posture"]]
    per_class = collections.defaultdict(collections.Counter)
    for r in found:
        per_class[r["posture"]]["answered" if r["found"].posture else "none"] += 1
        if r["found"].posture:
            per_class[r["posture"]][r["found"].posture[0]] += 1
    pairs = [r["pair"] for r in rows if "pair" in r]
    both = [(r["image"], a, b) for r in rows if "pair" in r for a, b in [r["pair"]]
            if by[(r["image"], a)] is not None and by[(r["image"], b)] is not None]
    depth = {}
    for proxy in PROXIES:
        ok = sum(by[(im, a)].depth[proxy] < by[(im, b)].depth[proxy] for im, a, b in both)
        depth[proxy] = {"right": ok, "pairs": len(both), "accuracy": round(ok / len(both), 3) if both else None}
    return {"posture": {"clear": len(clear), "found": len(found), "answered": len(answered), "right": len(right),
                        "coverage": round(len(answered) / len(found), 3) if found else None,
                        "accuracy": round(len(right) / len(answered), 3) if answered else None,
                        "answered_on_unclear": sum(r["found"] is not None and r["found"].posture is not None
                                                   for r in people if r["posture"] == "unclear"),
                        "per_class": {k: dict(v) for k, v in sorted(per_class.items())}},
            "depth": depth, "labelled_pairs": len(pairs)}


def failures(rows: list[dict]) -> list[str]:
    """Lines for the posture answers that are wrong or missing and the pairs `facts` misorders."""
    out = []
    by = {(r["image"], r["label"]): r["found"] for r in rows if "label" in r}
    for r in rows:
        if "label" in r and r["posture"] != "unclear" and r["found"] is not None:
            got = r["found"].posture
            if got is None or got[0] != r["posture"]:
                out.append(f"posture {r['image']} #{r['label']}: labelled {r['posture']}, got {got}")
        elif "pair" in r:
            a, b = r["pair"]
            fa, fb = by[(r["image"], a)], by[(r["image"], b)]
            if fa is not None and fb is not None and not fa.depth["facts"] < fb.depth["facts"]:
                out.append(f"depth {r['image']}: #{a} labelled closer than #{b}, facts depth "
                           f"{fa.depth['facts']:.3g} vs {fb.depth['facts']:.3g}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="2,3,4", help="comma-separated: 2 (the check), 3, 4 (spent, tuned on)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--failures", action="store_true", help="print every posture miss and misordered pair")
    ap.add_argument("--json", type=Path, help="write each set's tally here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    marks = json.loads(LABELS.read_text())["sets"]
    perception = Perception.from_preset(DEFAULT_PRESET, threads=args.threads)
    out = {}
    try:
        for key in args.sets.split(","):
            rows = measure_set(perception, SETS[key], marks[SETS[key]])
            t = tally(rows)
            out[key] = t
            p = t["posture"]
            print(f"set {key} ({SETS[key]}{', the check' if key == '2' else ', tuned on'}): posture "
                  f"{p['right']}/{p['answered']} right (accuracy {p['accuracy']}), answered {p['answered']}/{p['found']} "
                  f"found with a clear label (coverage {p['coverage']}; {p['clear']} labelled), "
                  f"{p['answered_on_unclear']} answered on 'unclear'; per class {p['per_class']}")
            print(f"  depth order ({t['labelled_pairs']} labelled pairs, {t['depth']['facts']['pairs']} with both found): "
                  + ", ".join(f"{k} {v['right']}/{v['pairs']}" for k, v in t["depth"].items()))
            if args.failures:
                for line in failures(rows):
                    print("   ", line)
    finally:
        perception.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
