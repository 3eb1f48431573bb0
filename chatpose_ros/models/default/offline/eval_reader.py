"""Evaluate the scene reader on questions it was not trained on, with ablations and calibration.

    OMP_NUM_THREADS=1 python -m chatpose_ros.models.default.offline.eval_reader --threads 1 --json build/eval_reader.json

Splits (offline.scene_questions.SPLITS, each drawn with its own seed, none with the training
seed): ``in_dist`` (the training families, words and layouts), ``family`` (held-out template
families), ``words`` (every question uses a held-out synonym), ``layout`` (scenes of
HELD_OUT_PEOPLE people, a count training never shows).

Figures per split: decision accuracy (the first answer token: the right person, <none>, [POSE]
or a text answer), per category; counting exact (the number in the generated answer); pose
yes/no (right person and right yes/no in the generated answer); chance (one over the
candidates <p1..pN>, <none> of the person and no-match questions).

Ablations (on in_dist and family): the LLM's last states zeroed (the LM head then sees no
input: ties broken at random), the question's words shuffled, the question removed, and the
scene lines cut to their positions (no clothing, posture, objects).

Answers (person questions where a person was chosen): the share whose answer is one its line
makes true (scene_words.true_answers; the reader keeps to them, so under 100 % means a bug), and
of the right choices the share whose answer is the training target word for word (the reason
the question gave, e.g. "in the red top" for "the one in the red shirt").

Calibration: expected calibration error (10 bins) of the decision probability over
<p1..pN>, <none> (reader.SceneReader.decision_probs, with the fitted temperature) on in_dist,
and the share of no-match questions refused / person questions wrongly refused at the
threshold ``PipelineConfig.min_grounding_confidence``.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.models.default.offline.scene_questions import QA, SPLITS, make_qa
from chatpose_ros.models.default.scene_words import SceneWords, true_answers

log = logging.getLogger(__name__)

EVAL_SEEDS = {"in_dist": 101, "family": 202, "words": 303, "layout": 404}
ABLATION_SPLITS = ("in_dist", "family")
ECE_BINS = 10
_NUMBER = re.compile(r"\b(\d+)\b")


def load_reader(folder: Path, int8: bool = False):
    from chatpose_ros.models.default.reader import ADAPTER_FILE, SceneReader

    return SceneReader.load(folder / ADAPTER_FILE, SceneReader.read_spec(folder), int8=int8)


def generate(model, d, max_tokens: int = 24) -> str:
    """The answer the reader writes after its decision `d` (SceneReader.generate), as text."""
    return model.render(model.generate(d, max_tokens))


def expected_token(model, qa: QA) -> int | None:
    """The id the first answer token must be, or None for a text answer (any ordinary token)."""
    if qa.target >= 0:
        return int(model.person_ids[qa.target])
    if qa.target == -1:
        return model.none_id
    if qa.target == -3:
        return model.pose_id
    return None


def correct(model, qa: QA, first: int) -> bool:
    want = expected_token(model, qa)
    special = set(model.new_ids.tolist())
    return first not in special if want is None else first == want


def tie_broken(model, d, n: int, rng: np.random.Generator) -> int:
    """The decision's first token, exact ties (zeroed states: every logit equal) broken at random
    among the candidates instead of by index."""
    logits = d.logits
    if model.pointer is None:
        logits = logits.clone()
        logits[model.person_ids[n:]] = float("-inf")
        top = torch.nonzero(logits == logits.max()).flatten().tolist()
        return int(top[int(rng.integers(len(top)))])
    top = torch.nonzero(logits == logits.max()).flatten().tolist()
    k = int(top[int(rng.integers(len(top)))])
    if k < n:
        return int(model.person_ids[k])
    return model.kind_token(model.kinds[k - n])


def _shuffle(rng, q: str) -> str:
    w = q.split()
    rng.shuffle(w)
    return " ".join(w)


def _positions_only(s: SceneWords) -> SceneWords:
    return replace(s, people=tuple(type(p)(order=p.order, count=p.count, near=p.near, edge=p.edge) for p in s.people),
                   objects=())


def evaluate_split(model, split: str, n: int, ablations: bool, threshold: float, free_answers: bool = False) -> dict:
    """One split's rows, summarised. `free_answers` (ablation): the LM's words after a person
    token are not kept to the person's true answers (Decision.chosen cleared)."""
    rng = np.random.default_rng(EVAL_SEEDS[split])
    arng = np.random.default_rng(EVAL_SEEDS[split] + 1)
    rows = []
    for _ in range(n):
        qa = make_qa(rng, split)
        k = len(qa.scene.people)
        d = model.decide(qa.scene, qa.question, k)
        if free_answers:
            d = replace(d, chosen=None)
        logits, first = d.logits, d.first
        persons = model.person_ids[:k].tolist()
        row = {"category": qa.category, "family": qa.family, "question": qa.question, "people": k,
               "target": qa.target, "first": model.tokenizer.convert_ids_to_tokens(first), "ok": correct(model, qa, first)}
        if qa.target >= -1 and k:
            probs = model.decision_probs(logits, k)
            row["chance"] = 1.0 / (k + 1)
            row["confidence"] = float(probs.max())
            row["top_ok"] = int(probs.argmax()) == (qa.target if qa.target >= 0 else k)
            row["refused"] = first == model.none_id or (
                first in persons and float(probs[persons.index(first)]) < threshold)
        if qa.target >= 0 and qa.category != "pose" and first in persons:  # what the answer says of its choice
            answer = generate(model, d)
            row["answer_true"] = answer in true_answers(qa.scene.people[persons.index(first)])
            if row["ok"]:
                row["answer_as_trained"] = answer == qa.answer.split(" ", 1)[1]
        if qa.category in ("counting", "pose"):
            answer = generate(model, d)
            row["answer"] = answer
            if qa.category == "counting":
                m = _NUMBER.search(answer)
                got = int(m.group(1)) if m else (0 if "anyone" in answer else None)
                row["count_ok"] = got == qa.count
            else:
                yn = answer.lower().startswith("yes") if answer.lower().startswith(("yes", "no")) else None
                row["yes_no_ok"] = row["ok"] and yn == qa.yes
        if ablations:
            z = model.decide(qa.scene, qa.question, k, zero_states=True)
            row["abl_zero_states"] = correct(model, qa, tie_broken(model, z, k, arng))
            row["abl_shuffled_question"] = correct(model, qa, model.decide(qa.scene, _shuffle(arng, qa.question), k).first)
            row["abl_no_question"] = correct(model, qa, model.decide(qa.scene, "?", k).first)
            row["abl_positions_only"] = correct(model, qa, model.decide(_positions_only(qa.scene), qa.question, k).first)
        rows.append(row)
    return summarise(rows)


def _mean(rows, key) -> float | None:
    vals = [float(r[key]) for r in rows if key in r]
    return round(float(np.mean(vals)), 4) if vals else None


def ece(rows) -> float | None:
    rs = [r for r in rows if "confidence" in r]
    if not rs:
        return None
    conf = np.array([r["confidence"] for r in rs])
    ok = np.array([r["top_ok"] for r in rs], float)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    return round(float(sum(abs(conf[bins == b].mean() - ok[bins == b].mean()) * (bins == b).mean()
                           for b in range(ECE_BINS) if (bins == b).any())), 4)


def summarise(rows) -> dict:
    cats = sorted({r["category"] for r in rows})
    nm = [r for r in rows if r["category"] == "no_match" and "refused" in r]
    person = [r for r in rows if r["target"] >= 0 and "refused" in r]
    return {
        "n": len(rows), "decision_accuracy": _mean(rows, "ok"),
        "chance_person_or_none": _mean(rows, "chance"),
        "per_category": {c: {"n": sum(r["category"] == c for r in rows),
                             "accuracy": _mean([r for r in rows if r["category"] == c], "ok")} for c in cats},
        "counting_exact": _mean(rows, "count_ok"), "pose_yes_no": _mean(rows, "yes_no_ok"),
        "person_answer_true": _mean(rows, "answer_true"), "person_answer_as_trained": _mean(rows, "answer_as_trained"),
        "no_match_refused": _mean(nm, "refused"), "person_wrongly_refused": _mean(person, "refused"),
        "ece": ece(rows),
        "ablations": {k: _mean(rows, k) for k in ("abl_zero_states", "abl_shuffled_question", "abl_no_question",
                                                   "abl_positions_only") if any(k in r for r in rows)},
        "failures": [{k: r[k] for k in ("category", "question", "people", "target", "first") + (
            ("answer",) if "answer" in r else ())} for r in rows if not r["ok"]][:12],
    }


def evaluate(folder: Path, n: int = 120, threshold: float | None = None, int8: bool = False,
             splits: tuple[str, ...] = SPLITS[1:], ablations: bool = True, free_answers: bool = False) -> dict:
    from chatpose_ros.core.config import PipelineConfig

    threshold = PipelineConfig().min_grounding_confidence if threshold is None else threshold
    model = load_reader(folder, int8)
    out = {"weights": str(folder), "threshold": threshold, "temperature": model.spec.temperature, "int8": int8,
           "free_answers": free_answers}
    for split in splits:
        t = time.perf_counter()
        out[split] = evaluate_split(model, split, n, ablations and split in ABLATION_SPLITS, threshold, free_answers)
        log.info("%s: %.1f%% (%.0f s)", split, 100 * out[split]["decision_accuracy"], time.perf_counter() - t)
    return out


def table(res: dict) -> str:
    lines = ["| split | n | decision accuracy | chance | counting exact | pose yes/no | no-match refused | ECE | "
             "answer true to the chosen line | answer as trained |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in SPLITS[1:]:
        if s not in res:
            continue
        r = res[s]

        def f(v):
            return "-" if v is None else f"{100 * v:.1f} %"
        lines.append(f"| {s} | {r['n']} | {f(r['decision_accuracy'])} | {f(r['chance_person_or_none'])} | "
                     f"{f(r['counting_exact'])} | {f(r['pose_yes_no'])} | {f(r['no_match_refused'])} | "
                     f"{'-' if r['ece'] is None else r['ece']} | {f(r.get('person_answer_true'))} | "
                     f"{f(r.get('person_answer_as_trained'))} |")
    lines += ["", "| ablation | " + " | ".join(ABLATION_SPLITS) + " |", "|---|" + "---|" * len(ABLATION_SPLITS)]
    for k in ("abl_zero_states", "abl_shuffled_question", "abl_no_question", "abl_positions_only"):
        vals = [res[s]["ablations"].get(k) if s in res else None for s in ABLATION_SPLITS]
        lines.append(f"| {k[4:].replace('_', ' ')} | " + " | ".join("-" if v is None else f"{100 * v:.1f} %"
                                                                    for v in vals) + " |")
    lines += ["", "| category | " + " | ".join(SPLITS[1:]) + " |", "|---|" + "---|" * 4]
    cats = sorted({c for s in SPLITS[1:] if s in res for c in res[s]["per_category"]})
    for c in cats:
        vals = [res[s]["per_category"].get(c, {}).get("accuracy") if s in res else None for s in SPLITS[1:]]
        lines.append(f"| {c} | " + " | ".join("-" if v is None else f"{100 * v:.0f} %" for v in vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR

    p = argparse.ArgumentParser(description="Evaluate the scene reader (held-out families, words, layouts; "
                                            "ablations; calibration).")
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS_DIR)
    p.add_argument("-n", type=int, default=120, help="questions per split")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--int8", action="store_true", help="decoder layers quantised to int8 (reader.SceneReader.load)")
    p.add_argument("--splits", default=",".join(SPLITS[1:]), help="comma-separated splits to evaluate")
    p.add_argument("--free-answers", action="store_true",
                   help="ablation: the LM's words about a chosen person not kept to the answers its line makes true")
    p.add_argument("--no-ablations", action="store_true", help="skip the decision ablations (faster)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)
    res = evaluate(a.weights, a.n, int8=a.int8, splits=tuple(a.splits.split(",")), ablations=not a.no_ablations,
                   free_answers=a.free_answers)
    print(table(res))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
