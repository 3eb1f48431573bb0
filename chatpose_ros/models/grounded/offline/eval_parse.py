"""Parse accuracy of the question parsers side by side: the LLM tagger, the deterministic grammar, and the
bag-of-words ablation, on held-out generated wordings and on hand-written new-user questions.

    make eval-parse        # = python -m chatpose_ros.models.grounded.offline.eval_parse --threads 2 --json build/eval_parse.json

Figures per parser: exact match of the canonical Request.describe() (constraint order ignored), intent
accuracy, per-slot F1 (each constraint, head and flag as an atom with its scope: the person, the person
of a relation, the predicate), parse time p50 (one question at a time, `--threads` torch threads).
- held-out: generated questions whose vocabulary items, slot phrasings and sentence frames were all held
  out of training (models.grounded.offline.generate); the tagger's own training questions for the gap;
- hand-written: models/grounded/offline/data/handwritten_parse_gold.json (its sha256 printed), frozen before
  any parser was run on it.
The bag of words: the tagger's heads on each word's input embedding alone (no LLM, no GRU), trained on
the same data by train_parser; every tag is decided from its word alone, the intent from the bag.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from chatpose_ros.models.grounded.llm_parse import WEIGHTS_DIR, LlmQuestionParser, Normaliser, assemble, words_of
from chatpose_ros.models.grounded.offline.generate import canonical, generate
from chatpose_ros.grounding.parse import QuestionParser, clean

log = logging.getLogger(__name__)

GOLD_FILE = Path(__file__).resolve().parent / "data" / "handwritten_parse_gold.json"


def split_top(s: str) -> list[str]:
    """Split at the commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def normal_describe(s: str) -> str:
    """A describe() string with the constraints of every description (and of the predicate) sorted."""
    def ref(body: str) -> str:
        head, _, rest = body.partition(": ")
        items = [re.sub(r"\((.*)\)$", lambda m: "(" + ref(m.group(1)) + ")", c) for c in split_top(rest)]
        return head + ": " + ", ".join(sorted(items))

    m = re.match(r"^(\w+)(?: \[(.*)\])?(?: \? (.*))?$", s.strip())
    if not m:
        return s.strip()
    out = m.group(1)
    if out in ("imagine", "chat"):
        return out
    if m.group(2) is not None:
        out += " [" + ref(m.group(2)) + "]"
    if m.group(3):
        out += " ? " + ", ".join(sorted(split_top(m.group(3))))
    return out


def atoms(s: str) -> list[tuple[str, str]]:
    """(slot, atom) pairs of a normal describe() string: each constraint, head and flag, with its scope."""
    out: list[tuple[str, str]] = []
    m = re.match(r"^(\w+)(?: \[(.*)\])?(?: \? (.*))?$", s)
    if not m or m.group(1) in ("imagine", "chat"):
        return out

    def ref(body: str, scope: str) -> None:
        head, _, rest = body.partition(": ")
        for flag in ("pronoun", "other"):
            if re.search(rf"\b{flag}\b", head.split(" not_person=")[0]):
                out.append((flag, scope + flag))
        np_ = re.search(r"not_person=(\S+)", head)
        if np_:
            out.append(("not_person", scope + "not_person"))
        name = head.split()[-1] if head.split() else "-"
        if name != "-":
            out.append(("head", scope + "head=" + name))
        for c in split_top(rest):
            kind = c.removeprefix("not ").split("=")[0]
            inner = re.search(r"\((.*)\)$", c)
            if inner:
                ref(inner.group(1), scope + "rel:")
                c = c[:inner.start()]
            out.append((kind, scope + c))

    if m.group(2) is not None:
        ref(m.group(2), "")
    for c in split_top(m.group(3) or ""):
        out.append((c.removeprefix("not ").split("=")[0], "pred:" + c))
    return out


def score(golds: list[str], preds: list[str]) -> dict:
    """Exact match, intent accuracy and per-slot precision / recall / F1 over atoms."""
    tp, fp, fn = Counter(), Counter(), Counter()
    exact = intent = 0
    for g, p in zip(golds, preds):
        g, p = normal_describe(g), normal_describe(p)
        exact += g == p
        intent += g.split()[0] == p.split()[0]
        ga, pa = Counter(atoms(g)), Counter(atoms(p))
        for (slot, _a), n in (ga & pa).items():
            tp[slot] += n
        for (slot, _a), n in (pa - ga).items():
            fp[slot] += n
        for (slot, _a), n in (ga - pa).items():
            fn[slot] += n
    f1 = {}
    for slot in sorted(set(tp) | set(fp) | set(fn)):
        prec = tp[slot] / max(1, tp[slot] + fp[slot])
        rec = tp[slot] / max(1, tp[slot] + fn[slot])
        f1[slot] = {"f1": round(2 * prec * rec / max(1e-9, prec + rec), 3), "support": tp[slot] + fn[slot]}
    n = max(1, len(golds))
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    micro = 2 * all_tp / max(1, 2 * all_tp + all_fp + all_fn)
    return {"n": len(golds), "exact": round(exact / n, 4), "intent": round(intent / n, 4),
            "slot_micro_f1": round(micro, 4), "per_slot_f1": f1}


def predict(parser, questions: list[str], batch: int = 32) -> list[str]:
    """canonical(parse(q)) for each question; the LLM taggers in batches (same results, faster)."""
    if isinstance(parser, LlmQuestionParser):
        out = []
        for i in range(0, len(questions), batch):
            qs = questions[i:i + batch]
            words = [words_of(q) for q in qs]
            for q, w, (tags, intent) in zip(qs, words, parser.tag_batch(words)):
                out.append(canonical(assemble(w, tags, intent, parser.norm, clean(q))))
        return out
    return [canonical(parser.parse(q)) for q in questions]


def p50_ms(parser, questions: list[str]) -> float:
    times = []
    for q in questions:
        t = time.perf_counter()
        parser.parse(q)
        times.append((time.perf_counter() - t) * 1e3)
    return round(statistics.median(times), 2)


def main(argv: list[str] | None = None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-held", type=int, default=1000, help="held-out generated questions")
    ap.add_argument("--n-train", type=int, default=300, help="training questions (the tagger's gap)")
    ap.add_argument("--n-speed", type=int, default=60, help="questions timed one at a time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--failures", type=int, default=8, help="failures printed per parser and set")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    norm = Normaliser()
    data = generate(args.seed, args.n_train, args.n_held, norm)
    gold_doc = json.loads(GOLD_FILE.read_text())
    sha = hashlib.sha256(GOLD_FILE.read_bytes()).hexdigest()
    sets = {"held-out generated": ([e.question for e in data.held], [e.gold for e in data.held]),
            "hand-written": ([r["question"] for r in gold_doc["questions"]], [r["gold"] for r in gold_doc["questions"]]),
            "train generated": ([e.question for e in data.train], [e.gold for e in data.train])}
    parsers = {"llm tagger": LlmQuestionParser.load(args.weights, norm.colours, norm.lex),
               "grammar": QuestionParser(norm.colours, norm.lex),
               "bag of words": LlmQuestionParser.load(args.weights, norm.colours, norm.lex, stem="llm_parser_bow")}
    report: dict = {"hand-written sha256": sha, "threads": args.threads, "seed": args.seed,
                    "note": "timings on a shared 2-core machine (other jobs running)", "sets": {}}
    speed_qs = [e.question for e in data.held[:args.n_speed]]
    for set_name, (qs, golds) in sets.items():
        report["sets"][set_name] = {}
        for pname, parser in parsers.items():
            if set_name == "train generated" and pname == "grammar":
                continue
            preds = predict(parser, qs)
            s = score(golds, preds)
            fails = [(q, normal_describe(g), normal_describe(p)) for q, g, p in zip(qs, golds, preds)
                     if normal_describe(g) != normal_describe(p)]
            s["failures"] = [{"question": q, "gold": g, "got": p} for q, g, p in fails[:args.failures]]
            report["sets"][set_name][pname] = s
    for pname, parser in parsers.items():
        parser.parse("warm up")
        report.setdefault("parse_ms_p50", {})[pname] = p50_ms(parser, speed_qs)
    log.info("hand-written set sha256 %s; %d held-out generated questions; timings on a shared machine, %d threads",
             sha, args.n_held, args.threads)
    log.info("%-20s %-13s %7s %7s %8s", "set", "parser", "exact", "intent", "slot F1")
    for set_name, per in report["sets"].items():
        for pname, s in per.items():
            log.info("%-20s %-13s %7.3f %7.3f %8.3f", set_name, pname, s["exact"], s["intent"], s["slot_micro_f1"])
    slots = sorted({k for per in report["sets"].values() for s in per.values() for k in s["per_slot_f1"]})
    log.info("per-slot F1 on held-out generated (support): %s", "")
    per = report["sets"]["held-out generated"]
    for slot in slots:
        cells = [f"{pn}={per[pn]['per_slot_f1'].get(slot, {}).get('f1', float('nan')):.2f}" for pn in per]
        sup = per["llm tagger"]["per_slot_f1"].get(slot, {}).get("support", 0)
        log.info("  %-11s %s (%d)", slot, " ".join(cells), sup)
    log.info("parse p50 ms (%d threads): %s", args.threads, report["parse_ms_p50"])
    for set_name in ("held-out generated", "hand-written"):
        for pname in ("llm tagger", "grammar"):
            for f in report["sets"][set_name][pname]["failures"]:
                log.info("FAIL %s / %s: %s\n    gold %s\n    got  %s", set_name, pname, f["question"], f["gold"], f["got"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        log.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
