"""Measure the face gender model against the by-eye labels (tests/data/face_gender_labels.json).

    python -m chatpose_ros.perception.offline.eval_faces [--sets 1,2] [--grid] [--json OUT]

For each labelled image: the shipped perception (default preset) finds the people, each found
person is matched to a labelled box (eval_perception.match, IoU >= 0.5), and the face model reads
every matched person whose face keypoints were seen. Per set: how many labelled people of a known
gender were found, how many faces were read, and, at the grounding thresholds (face width >=
GENDER_MIN_FACE_PX, p(male) >= GENDER_SURE_MALE or p(female) >= GENDER_SURE), how many calls were made (coverage) and
how many were right (accuracy). `--grid` prints the same for a grid of thresholds (choose them on
sets 1 and 2 only: sets 3 to 7 are held out; 7 is held_out7, never used to choose them).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from chatpose_ros.grounding.ground import GENDER_MIN_FACE_PX, GENDER_SURE, GENDER_SURE_MALE
from chatpose_ros.perception.face_attributes import FaceGenderModel
from chatpose_ros.perception.offline.eval_perception import REPO_ROOT, load_image, load_labels, match
from chatpose_ros.perception.perception import DEFAULT_PRESET, Perception

log = logging.getLogger(__name__)

LABELS = REPO_ROOT / "tests" / "data" / "face_gender_labels.json"
SETS = {"1": "perception_labels.json", "2": "perception_labels2.json", "3": "perception_labels3.json",
        "4": "perception_labels4.json", "5": "perception_labels5.json", "6": "perception_labels6.json",
        "7": "perception_labels7.json"}
GRID_PX = (8.0, 12.0, 16.0, 20.0, 24.0, 32.0)
GRID_SURE = (0.6, 0.7, 0.8, 0.9, 0.95)


def read_set(name: str, perception: Perception, faces: FaceGenderModel, labels: dict) -> list[dict]:
    """One row per labelled person: its label, whether perception found it, and the face reading."""
    rows = []
    for item in load_labels(REPO_ROOT / "tests" / "data" / name):
        marks = labels[name][item.id]
        image = load_image(item)
        scene = perception.see(image)
        res = match([p.box for p in item.people], [p.box for p in scene.people], [p.score for p in scene.people])
        found = {j: i for i, j in res.pairs}
        read = faces.read(image, scene, sorted(found.values()))
        for j, mark in enumerate(marks):
            i = found.get(j)
            fg = read.get(i) if i is not None else None
            rows.append({"image": item.id, "label": j, "gender": mark[0], "face": mark[1] == "+",
                         "found": i is not None, "p_male": None if fg is None else round(fg.p_male, 4),
                         "face_px": None if fg is None else round(fg.face_px, 1)})
    return rows


def _calls(r: dict, min_px: float, sure: float, sure_male: float) -> bool:
    """Does the face say which (p(male) >= sure_male or p(female) >= sure), at least min_px wide?"""
    return r["p_male"] is not None and r["face_px"] >= min_px and (r["p_male"] >= sure_male or 1 - r["p_male"] >= sure)


def tally(rows: list[dict], min_px: float, sure: float, sure_male: float | None = None) -> dict:
    """Coverage and accuracy of the calls at these thresholds (`sure_male` None: `sure` for both)."""
    sure_male = sure if sure_male is None else sure_male
    known = [r for r in rows if r["gender"] in "mf"]
    calls = [r for r in known if _calls(r, min_px, sure, sure_male)]
    right = sum((r["p_male"] >= 0.5) == (r["gender"] == "m") for r in calls)
    return {"known": len(known), "found": sum(r["found"] for r in known),
            "read": sum(r["p_male"] is not None for r in known), "calls": len(calls), "right": right,
            "accuracy": round(right / len(calls), 3) if calls else None,
            "coverage": round(len(calls) / len(known), 3) if known else None,
            "calls_on_unknown": sum(_calls(r, min_px, sure, sure_male) for r in rows if r["gender"] == "?")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="1,2,3", help="comma-separated: 1 (diagnosis), 2 (held_out), 3-7 (held_out3 to held_out7)")
    ap.add_argument("--grid", action="store_true", help="also tally a grid of thresholds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write every row and tally here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    labels = json.loads(LABELS.read_text())["sets"]
    perception = Perception.from_preset(DEFAULT_PRESET, threads=args.threads)
    faces = FaceGenderModel.load(threads=args.threads)
    out = {}
    for key in args.sets.split(","):
        rows = read_set(SETS[key], perception, faces, labels)
        t = tally(rows, GENDER_MIN_FACE_PX, GENDER_SURE, GENDER_SURE_MALE)
        out[key] = {"rows": rows, "tally": t}
        print(f"set {key} ({SETS[key]}), face >= {GENDER_MIN_FACE_PX:g} px, p(male) >= {GENDER_SURE_MALE:g} "
              f"or p(female) >= {GENDER_SURE:g}: {t}")
        if args.grid:
            for px in GRID_PX:
                print(f"  px >= {px:4.0f}: " + "  ".join(
                    f"p>={s:.2f} {(g := tally(rows, px, s))['right']}/{g['calls']}" for s in GRID_SURE))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
