"""Real questions, every embedded profile side by side: right / wrong / asked / refused per category.

    python -m chatpose_ros.tools.eval_grounding [--profiles default,reader,grounded,grounded+llm]
        [--sets held_out7,held_out6,held_out5,held_out4,held_out3,held_out,diagnosis]
        [--threads N] [--json FILE] [--failures] [--no-ablations]        (make eval-grounding)

Sets: `held_out7` is tests/data/real_questions7.json (new images, tests/data/perception_labels7.json; written
blind and frozen during the seventh round, run once at its end; each count lists the labelled people it
counts in `members`; its hash is checked); `held_out6` is tests/data/real_questions6.json
(new images, tests/data/perception_labels6.json; written
blind and frozen during the fifth round, to be run once at its end; its hash is checked); `held_out5` is
tests/data/real_questions5.json (new images, tests/data/perception_labels5.json; written
and frozen before the fifth round's changes were measured on it, run once at its end; its hash is checked); `held_out4` is
tests/data/real_questions4.json (new images, tests/data/perception_labels4.json; written and frozen before
the third round of the grounded design, which was not tuned on it; its hash is checked); `held_out3` is
tests/data/real_questions3.json (frozen before the second round,
run once at its end, then read: diagnosis since); `held_out` is tests/data/real_questions2.json over
tests/data/perception_labels2.json (frozen before the first round; its failures were read after that round: diagnosis now);
`diagnosis` is tests/data/real_questions.json (the project's older hand-written set, looked at
while building). `grounded+llm` is the grounded profile with the LLM question parser
(models/grounded/llm_parse.py) instead of the grammar.

Scoring (the chosen person's box is matched to the labelled boxes at IoU >= 0.5):
- person categories: right (the expected person), wrong (someone else), asked (a clarifying
  question: `clarify`, nobody selected), refused (nobody selected otherwise);
- no_match: right when nobody is selected and the answer is not a question; asked when it asks;
- counting: the first number of the answer equals the expected count;
- counting, given found (issue 24's "counts exact, given the people perception found"): the labelled
  people each counting item counts are in tests/data/count_members.json; perception's people in the
  scene are matched to the labelled boxes with the same matcher (each found box to the label it overlaps
  most, IoU >= 0.5), and the expected count becomes the number of the item's members found; the first
  number of the answer must equal that (printed beside the plain figure: `2/13 (given found 5/13)`).
  Perception's extra people (false or unlabelled) are not members, so an answer that counts them is
  wrong on both figures; a member found with a box off by more than the IoU is counted as not found;
- yes_no / pose: the answer starts with the expected "yes" / "no"; beside it, how many of these items
  had the person asked about ('about') found by perception (same matcher), and the score on those;
- clarify: right when nobody is selected and the answer asks or says what it cannot see;
- follow_up: each turn's chosen person, the second resolved against the first (the conversation is
  reset between items where the profile keeps one);
- contradictions: yes/no answers that state the opposite of their own first word ("No, ... is
  standing." to "is ... standing?").
Ablations of the grounded profile (same scenes, the parser's or a scorer's part taken away): the
parse replaced by a bag of words (no structure: negation, corrections, relations, intent by
keyword only), and each scorer off (its constraints become "cannot check").
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import re
import statistics
import time
from dataclasses import replace
from pathlib import Path

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.grounding.facts import measure
from chatpose_ros.grounding.ground import Context
from chatpose_ros.grounding.request import Constraint, Reference, Request
from chatpose_ros.models.default.offline.eval_questions import (CHOSE_NOBODY, answer_count, answer_yes_no,
                                                                chosen_label)
from chatpose_ros.perception.offline.eval_perception import REPO_ROOT, load_image, load_labels
from chatpose_ros.profiles import build_pipeline

log = logging.getLogger(__name__)

SETS = {
    "held_out": (REPO_ROOT / "tests/data/real_questions2.json", REPO_ROOT / "tests/data/perception_labels2.json"),
    "held_out3": (REPO_ROOT / "tests/data/real_questions3.json", REPO_ROOT / "tests/data/perception_labels3.json"),
    "held_out4": (REPO_ROOT / "tests/data/real_questions4.json", REPO_ROOT / "tests/data/perception_labels4.json"),
    "held_out5": (REPO_ROOT / "tests/data/real_questions5.json", REPO_ROOT / "tests/data/perception_labels5.json"),
    "held_out6": (REPO_ROOT / "tests/data/real_questions6.json", REPO_ROOT / "tests/data/perception_labels6.json"),
    "held_out7": (REPO_ROOT / "tests/data/real_questions7.json", REPO_ROOT / "tests/data/perception_labels7.json"),
    "diagnosis": (REPO_ROOT / "tests/data/real_questions.json", REPO_ROOT / "tests/data/perception_labels.json"),
}
# the frozen sets: each question file's SHA-256 as recorded when it was written
FROZEN_SHA = {"held_out": REPO_ROOT / "tests/data/real_questions2.sha256",
              "held_out3": REPO_ROOT / "tests/data/real_questions3.sha256",
              "held_out4": REPO_ROOT / "tests/data/real_questions4.sha256",
              "held_out5": REPO_ROOT / "tests/data/real_questions5.sha256",
              "held_out6": REPO_ROOT / "tests/data/real_questions6.sha256",
              "held_out7": REPO_ROOT / "tests/data/real_questions7.sha256"}


# the labelled people each counting item counts (by eye): "given found" counts
COUNT_MEMBERS = REPO_ROOT / "tests/data/count_members.json"


def frozen_sha(set_name: str) -> str:
    """The SHA-256 of a frozen set's question file; SystemExit when it differs from the recorded one."""
    sha = hashlib.sha256(SETS[set_name][0].read_bytes()).hexdigest()
    frozen = FROZEN_SHA[set_name].read_text().split()[0]
    if sha != frozen:
        raise SystemExit(f"{set_name} set changed: sha256 {sha} != frozen {frozen}")
    return sha


PERSON = ("attribute", "position", "ordinal", "distance", "posture", "object", "relation", "negation", "correction")
ABLATIONS = {"bag_of_words": None, "no_colour": {"colour"}, "no_pattern": {"pattern"}, "no_skin": {"skin"},
             "no_pose_codes": {"posture", "gesture", "facing"}, "no_position": {"position", "ordinal", "distance"},
             "no_objects": {"object"}, "no_relations": {"relation"}}


def contradicts(question: str, answer: str) -> bool:
    """A yes/no answer that states the opposite of its first word about the asked posture/gesture."""
    a, said = answer.lower(), answer_yes_no(answer)
    words = [w for w in ("standing", "sitting", "lying", "crouching", "kneeling", "raising", "waving", "pointing")
             if w in question.lower()]
    if not words:
        return False
    if said == "no" and any(re.search(rf"\bis (?!not ){w}", a) for w in words):
        return True
    return said == "yes" and any(re.search(rf"\bnot {w}", a) for w in words)


def outcome(q: dict, res, labels, expected=None) -> str:
    """One of right / wrong / asked / refused for the question's category."""
    cat = q["category"]
    expected = q.get("expected") if expected is None else expected
    sel = res.selected_person
    chosen = chosen_label(sel.box if sel is not None and not sel.generated else None, labels)
    asked = res.selected < 0 and (res.clarify or res.answer.rstrip().endswith("?"))
    if cat in PERSON or cat == "follow_up":
        if chosen != CHOSE_NOBODY:
            return "right" if chosen == expected else "wrong"
        return "asked" if asked else "refused"
    if cat == "no_match":
        if res.selected >= 0:
            return "wrong"
        return "asked" if asked else "right"
    if cat == "counting":
        return "right" if answer_count(res.answer) == expected else "wrong"
    if cat in ("yes_no", "pose"):
        got = answer_yes_no(res.answer)  # "Nobody here matches ..." is no answer "no"
        if got is None:
            return "asked" if asked else "refused"
        return "right" if got == expected else "wrong"
    if cat == "clarify":
        if res.selected >= 0:
            return "wrong"
        return "right" if asked or "can't" in res.answer or "cannot" in res.answer else "refused"
    raise ValueError(f"unknown category {cat!r}")


def count_members(set_name: str, questions: list[dict], n_people: dict[str, int],
                  path: Path = COUNT_MEMBERS) -> dict[str, list[int] | None]:
    """The labelled people each counting item of `set_name` counts: item id -> label indices (None where
    the count is not a set of labelled people; the file's "notes" says why), {} (and a warning) when the
    file has no such set and its counting items carry no `members` of their own (held_out7 writes them
    in the question file). `questions` is the set's question list, `n_people` image id -> number of
    labelled people. ValueError when the file has no entry for a counting item, an entry for any other
    item, a list that is not exactly `expected` distinct indices into the image's people, or a null
    without a note."""
    doc = json.loads(Path(path).read_text())
    members = doc["sets"].get(set_name)
    if members is None and any("members" in q for q in questions):
        members = {q["id"]: q.get("members") for q in questions if q["category"] == "counting"}
    if members is None:
        log.warning("%s has no set %r: no 'given found' count for it", path, set_name)
        return {}
    notes = doc.get("notes", {}).get(set_name, {})
    counting = {q["id"]: q for q in questions if q["category"] == "counting"}
    if set(members) != set(counting):
        raise ValueError(f"{path}: {set_name} entries {sorted(set(members) ^ set(counting))} are not exactly the "
                         "counting items")
    for qid, m in members.items():
        q = counting[qid]
        if m is None:
            if not notes.get(qid):
                raise ValueError(f"{path}: {set_name} {qid} is null without a note")
            continue
        n = n_people[q["image"]]
        if (not isinstance(m, list) or len(set(m)) != len(m) or len(m) != q["expected"]
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in m)):
            raise ValueError(f"{path}: {set_name} {qid} members {m!r} are not {q['expected']} distinct indices "
                             f"of the {n} people of {q['image']}")
    return dict(members)


def found_labels(pipe, images: dict, labels: dict) -> dict[str, set[int]]:
    """Image id -> the labelled people perception found there: each person perception finds in the
    scene (the pipeline's own perception pass, `see`) matched to the label its box overlaps most at
    IoU >= 0.5 (chosen_label, the matcher used for chosen people)."""
    see = (getattr(pipe, "base", None) or pipe).see
    out = {}
    for iid, img in images.items():
        out[iid] = {j for j in (chosen_label(p.box, labels[iid]) for p in see(img).people) if j >= 0}
    return out


def given_found(q: dict, answer: str, members: dict[str, list[int] | None], found: set[int]) -> dict:
    """The row fields for the figures given the people perception found (`found`: the labels found in
    q's image): a counting item with members gets `expected_given_found` (its members found) and
    `outcome_given_found` (right when the answer's first number equals it); a yes/no or pose item gets
    `about_found`; any other item nothing."""
    if q["category"] == "counting" and members.get(q["id"]) is not None:
        n = len(set(members[q["id"]]) & found)
        return {"expected_given_found": n, "outcome_given_found": "right" if answer_count(answer) == n else "wrong"}
    if q["category"] in ("yes_no", "pose"):
        return {"about_found": q["about"] in found}
    return {}


def run_profile(pipe, questions, images, labels) -> list[dict]:
    rows = []
    for q in questions:
        img = images[q["image"]]
        lab = labels[q["image"]]
        reset = getattr(pipe, "reset_conversation", None)
        if reset is not None:
            reset()
        turns = q.get("turns") or [{"question": q["question"], "expected": q.get("expected")}]
        results = []
        for t in turns:
            t0 = time.perf_counter()
            r = pipe.estimate(img, t["question"])
            results.append((t, r, outcome(q, r, lab, t["expected"]), (time.perf_counter() - t0) * 1e3))
        verdict = "right" if all(o == "right" for _, _, o, _ in results) else next(
            o for _, _, o, _ in results if o != "right")
        last = results[-1][1]
        rows.append({"id": q["id"], "category": q["category"], "question": " / ".join(t["question"] for t in turns),
                     "outcome": verdict, "answer": " / ".join(r.answer for _, r, _, _ in results),
                     "contradiction": any(contradicts(t["question"], r.answer) for t, r, _, _ in results),
                     "to_pose_ms": last.timings_ms.get("to_pose", results[-1][3])})
    return rows


def bag_of_words(req: Request, parser) -> Request:
    """The ablation: the constraints the parser found anywhere in the whole text (before any
    correction), without negation or relations, intent by keyword only."""
    text = req.text
    flat = parser.reference(text)
    cons = []
    for c in flat.constraints:
        if c.kind == "relation" and c.ref is not None:
            cons.extend(replace(x, negated=False) for x in c.ref.constraints)
        else:
            cons.append(replace(c, negated=False))
    intent = "count" if "how many" in text else "yes_no" if text.split()[:1] in (["is"], ["are"], ["does"]) else (
        req.intent if req.intent in ("imagine", "chat", "not_person") else "person")
    return Request(intent, Reference(tuple(cons), flat.head, False, False, flat.not_person), (), text, text)


def without(req: Request, kinds: set[str]) -> Request:
    def strip(ref: Reference | None) -> Reference | None:
        if ref is None:
            return None
        return replace(ref, constraints=tuple(
            Constraint("unchecked", "ablated", c.words) if c.kind in kinds else
            (replace(c, ref=strip(c.ref), ref2=strip(c.ref2)) if c.ref is not None else c) for c in ref.constraints))
    return replace(req, ref=strip(req.ref), predicate=tuple(
        Constraint("unchecked", "ablated", c.words) if c.kind in kinds else c for c in req.predicate))


def ablations(pipe, questions, images, labels) -> dict[str, dict]:
    """Grounded profile only: per ablation, person-question outcomes (single-turn questions)."""
    facts = {}
    for iid, img in images.items():
        scene, people = pipe.base.scene_and_people(img)
        faces = None if pipe.faces is None else {i: (f.p_male, f.face_px) for i, f in pipe.faces.read(img, scene).items()}
        facts[iid] = (measure(img, scene, faces=faces), people)
    out = {}
    for name, kinds in {"full": set(), **ABLATIONS}.items():
        tally = collections.Counter()
        for q in questions:
            if q["category"] not in PERSON:
                continue
            req = pipe.parser.parse(q["question"])
            req = bag_of_words(req, pipe.parser) if kinds is None else without(req, kinds)
            f, people = facts[q["image"]]
            o = pipe.grounder.answer(req, f, Context())
            sel = people[o.selected] if o.kind == "person" and o.selected >= 0 else None
            chosen = chosen_label(sel.box if sel is not None else None, labels[q["image"]])
            tally["right" if chosen == q["expected"] else "wrong" if chosen != CHOSE_NOBODY else
                  "asked" if o.kind == "clarify" else "refused"] += 1
        out[name] = dict(tally)
    return out


def summarise(rows: list[dict]) -> dict:
    cats = collections.defaultdict(collections.Counter)
    for r in rows:
        cats[r["category"]][r["outcome"]] += 1
    person = collections.Counter()
    for c, t in cats.items():
        if c in PERSON:
            person.update(t)
    n_p = sum(person.values())
    chose = person["right"] + person["wrong"]
    times = [r["to_pose_ms"] for r in rows if r["to_pose_ms"]]
    counted = [r for r in rows if "outcome_given_found" in r]
    about = {c: [r for r in rows if r["category"] == c and "about_found" in r] for c in ("yes_no", "pose")}
    return {"categories": {c: dict(t) for c, t in sorted(cats.items())}, "person": dict(person),
            "person_right_rate": person["right"] / n_p if n_p else None,
            "precision_when_choosing": person["right"] / chose if chose else None,
            "person_refused_rate": person["refused"] / n_p if n_p else None,
            "contradictions": sum(r["contradiction"] for r in rows),
            "counting_given_found": {"right": sum(r["outcome_given_found"] == "right" for r in counted),
                                     "n": len(counted)},
            "about_found": {c: {"n": len(rs), "found": sum(r["about_found"] for r in rs),
                                "right": sum(r["about_found"] and r["outcome"] == "right" for r in rs)}
                            for c, rs in about.items() if rs},
            "to_pose_ms_p50": statistics.median(times) if times else None}


def fmt(v) -> str:
    return "-" if v is None else f"{100 * v:.0f} %" if isinstance(v, float) and v <= 1 else f"{v:.0f}"


def given(summary: dict, category: str) -> str:
    """The figure given the people perception found, for a table cell: counting " (given found R/N)",
    yes_no / pose " (about found F/N: R/F right)"; "" for other categories (or summaries without it)."""
    if category == "counting" and summary.get("counting_given_found", {}).get("n"):
        return " (given found {right}/{n})".format_map(summary["counting_given_found"])
    a = summary.get("about_found", {}).get(category)
    return " (about found {found}/{n}: {right}/{found} right)".format_map(a) if a else ""


def table(results: dict) -> str:
    lines = []
    for set_name, by_profile in results.items():
        profiles = list(by_profile)
        lines.append(f"\n## {set_name}\n")
        lines.append("| | " + " | ".join(profiles) + " |")
        lines.append("|---|" + "---|" * len(profiles))
        s = {p: by_profile[p]["summary"] for p in profiles}
        for key, label in (("person_right_rate", "which person: right"), ("precision_when_choosing",
                           "right when it chooses"), ("person_refused_rate", "person in view refused")):
            lines.append(f"| {label} | " + " | ".join(fmt(s[p][key]) for p in profiles) + " |")
        lines.append("| which person: right / wrong / asked / refused | " + " | ".join(
            "{right}/{wrong}/{asked}/{refused}".format_map(collections.defaultdict(int, s[p]["person"]))
            for p in profiles) + " |")
        cats = sorted({c for p in profiles for c in s[p]["categories"]})
        for c in cats:
            lines.append(f"| {c} | " + " | ".join(
                "{right}/{n}".format(right=s[p]["categories"].get(c, {}).get("right", 0),
                                     n=sum(s[p]["categories"].get(c, {}).values())) + given(s[p], c)
                for p in profiles) + " |")
        lines.append("| self-contradicting answers | " + " | ".join(str(s[p]["contradictions"]) for p in profiles) + " |")
        lines.append("| to the pose p50 (ms) | " + " | ".join(fmt(s[p]["to_pose_ms_p50"]) for p in profiles) + " |")
        for prof in profiles:
            abl = by_profile[prof].get("ablations")
            if abl:
                lines.append(f"\n{prof} ablations, which-person questions (right/wrong/asked/refused):\n")
                for name, t in abl.items():
                    t = collections.defaultdict(int, t)
                    lines.append(f"- {name}: {t['right']}/{t['wrong']}/{t['asked']}/{t['refused']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", default="default,reader,grounded,grounded+llm",
                    help="profiles side by side; grounded+llm: the grounded profile with the LLM question parser")
    ap.add_argument("--sets", default="held_out7,held_out6,held_out5,held_out4,held_out3,held_out,diagnosis")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("build/eval_grounding.json"))
    ap.add_argument("--failures", action="store_true", help="print every answer that is not right")
    ap.add_argument("--no-ablations", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sets = args.sets.split(",")
    shas = {name: frozen_sha(name) for name in ["held_out", *sets] if name in FROZEN_SHA}
    results: dict = {}
    for prof in args.profiles.split(","):
        if prof.startswith("grounded+"):  # the grounded profile with another question parser ("grounded+llm")
            from chatpose_ros.models.grounded.pipeline import GroundedPipeline

            pipe = GroundedPipeline.from_config(PipelineConfig(profile="grounded", cpu_threads=args.threads),
                                                parser=prof.split("+", 1)[1])
        else:
            pipe = build_pipeline(PipelineConfig(profile=prof, cpu_threads=args.threads))
        try:
            for set_name in sets:
                qfile, lfile = SETS[set_name]
                questions = json.loads(qfile.read_text())["questions"]
                labelled = {li.id: li for li in load_labels(lfile)}
                images = {iid: load_image(li) for iid, li in labelled.items()}
                boxes = {iid: [p.box for p in li.people] for iid, li in labelled.items()}
                members = count_members(set_name, questions, {iid: len(b) for iid, b in boxes.items()})
                rows = run_profile(pipe, questions, images, boxes)
                found = found_labels(pipe, images, boxes)
                for q, r in zip(questions, rows):
                    r.update(given_found(q, r["answer"], members, found[q["image"]]))
                entry = {"summary": summarise(rows), "rows": rows,
                         "found_labels": {iid: sorted(f) for iid, f in found.items()}}
                if prof == "grounded" and not args.no_ablations:  # the LLM parser's ablation: make eval-parse
                    entry["ablations"] = ablations(pipe, questions, images, boxes)
                results.setdefault(set_name, {})[prof] = entry
                if args.failures:
                    for r in rows:
                        if r["outcome"] != "right":
                            print(f"[{set_name} {prof}] {r['category']:10} {r['outcome']:8} {r['question'][:60]!r} -> "
                                  f"{r['answer'][:140]!r}")
        finally:
            pipe.close()
        args.json.parent.mkdir(parents=True, exist_ok=True)  # after each profile: a later failure keeps these
        args.json.write_text(json.dumps(results, indent=1))
    for name, sha in shas.items():
        print(f"{name} set sha256 {sha} (frozen)")
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
