"""Hand-written questions about real photos: accuracy per category of an embedded profile (default or reader).

Offline tooling (`make eval-questions`); runtime code never imports this module.

The question set is `tests/data/real_questions.json`: questions written by hand (none from the
query generator of `offline.queries`) about the labelled photos of
`tests/data/perception_labels.json`, one category each (attribute, position, ordinal, relation,
posture, negation, correction, pose, counting, no_match; the file's header says what each means
and how its expected answer is written). Every question goes through the pipeline the registry
builds for `PipelineConfig(profile=--profile)` (`chatpose_ros.profiles.build_pipeline`; "default"
unless told), exactly as the node would ask it. Scoring:

- person categories (attribute ... correction): the selected person's box is matched to the
  labelled boxes (the label of highest IoU, at IoU >= 0.5, the COCO AP50 criterion of
  eval_perception); correct when that label is the expected one. Choosing nobody is wrong;
- no_match: correct when the pipeline chooses nobody (`selected == -1`), i.e. refuses;
- counting: correct when the first number in the answer text (digits or a number word) equals the
  expected count; the number of people the pipeline returned is reported beside it (what
  perception found, not what the model said);
- pose: correct when the answer starts with "yes" / "no" as expected;
- answer variety: how many distinct answer texts over all questions.

`--lines` prints, for every person question, the scene line the model read about the expected
person (scene_words: what perception told it), or that perception did not find that person: it
tells a failure of perception (the line does not say what the question asks) from a failure of
reading (it does, and the model chose someone else).

    python -m chatpose_ros.models.default.offline.eval_questions [--profile default|reader] [--questions FILE]
        [--labels FILE] [--weights-dir DIR] [--threads N] [--json FILE] [--failures] [--lines]
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from chatpose_ros.core.geometry import box_iou
from chatpose_ros.perception.offline.eval_perception import DEFAULT_LABELS, MATCH_IOU, REPO_ROOT, LabelledImage, load_labels

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

DEFAULT_QUESTIONS = REPO_ROOT / "tests" / "data" / "real_questions.json"
# categories whose expected answer is one labelled person (index into the image's boxes)
PERSON_CATEGORIES: tuple[str, ...] = ("attribute", "position", "ordinal", "relation", "posture", "negation",
                                      "correction")
NO_MATCH = "no_match"
COUNTING = "counting"
POSE = "pose"
CATEGORIES: tuple[str, ...] = PERSON_CATEGORIES + (POSE, COUNTING, NO_MATCH)
NONE_EXPECTED = "none"
YES_NO: tuple[str, ...] = ("yes", "no")
# chosen-person codes besides a label index
CHOSE_NOBODY = -1          # the pipeline selected nobody (refused)
CHOSE_UNLABELLED = -2      # it selected a box that matches no label at IoU >= MATCH_IOU
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
     "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
NUMBER_WORDS.update({"no": 0, "nobody": 0, "noone": 0})
_NUMBER = re.compile(r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


# -- the question set -------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    """One hand-written question.

    Attributes:
        id: unique name ("q001").
        image: id of a labelled image (perception_labels.json).
        question: the text asked.
        category: one of CATEGORIES.
        expected: person categories: index of the target's labelled box; no_match: "none";
            counting: the number of people; pose: "yes" or "no".
        note: what the writer saw (free text).
        about: pose questions: index of the labelled person asked about, or None.
    """

    id: str
    image: str
    question: str
    category: str
    expected: int | str
    note: str = ""
    about: int | None = None


def load_questions(path: Path | str = DEFAULT_QUESTIONS,
                   labels: Sequence[LabelledImage] | None = None) -> list[Question]:
    """Parse and check the question file against the labels (default: perception_labels.json).

    Raises ValueError on a duplicate id, an unknown image or category, an expected answer of the
    wrong kind for its category, or a box index the image does not have."""
    labels = load_labels(DEFAULT_LABELS) if labels is None else labels
    people = {im.id: len(im.people) for im in labels}
    data = json.loads(Path(path).read_text())
    out: list[Question] = []
    seen: set[str] = set()
    for rec in data["questions"]:
        q = Question(id=rec["id"], image=rec["image"], question=rec["question"], category=rec["category"],
                     expected=rec["expected"], note=rec.get("note", ""), about=rec.get("about"))
        where = f"{q.id} ({q.image}: {q.question!r})"
        if q.id in seen:
            raise ValueError(f"duplicate question id {q.id!r}")
        seen.add(q.id)
        if q.image not in people:
            raise ValueError(f"{where}: no labelled image {q.image!r}")
        if q.category not in CATEGORIES:
            raise ValueError(f"{where}: category must be one of {CATEGORIES}, got {q.category!r}")
        if not q.question.strip():
            raise ValueError(f"{where}: empty question")
        n = people[q.image]
        if q.category in PERSON_CATEGORIES:
            if not (isinstance(q.expected, int) and 0 <= q.expected < n):
                raise ValueError(f"{where}: expected must be a box index in [0, {n}), got {q.expected!r}")
        elif q.category == NO_MATCH:
            if q.expected != NONE_EXPECTED:
                raise ValueError(f"{where}: expected must be {NONE_EXPECTED!r}, got {q.expected!r}")
        elif q.category == COUNTING:
            if not (isinstance(q.expected, int) and q.expected >= 0):
                raise ValueError(f"{where}: expected must be a count >= 0, got {q.expected!r}")
        elif q.expected not in YES_NO:
            raise ValueError(f"{where}: expected must be one of {YES_NO}, got {q.expected!r}")
        if q.about is not None and not (isinstance(q.about, int) and 0 <= q.about < n):
            raise ValueError(f"{where}: about must be a box index in [0, {n}), got {q.about!r}")
        out.append(q)
    return out


# -- scoring (pure) -------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    """What the pipeline answered to one question, reduced to what scoring needs.

    Attributes:
        answer: the answer text.
        selected_box: (x_min, y_min, x_max, y_max) px of the selected person, None when the
            pipeline selected nobody (or a generated pose without a box).
        people: how many people the pipeline returned (perception's count).
        confidence: the selected person's confidence, 0 when nobody was selected.
    """

    answer: str
    selected_box: Box | None
    people: int
    confidence: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One scored question: the question, what came back and whether it was right.

    `chosen` is the label index of the selected person, CHOSE_NOBODY or CHOSE_UNLABELLED;
    `count` the number read from the answer (None when it has none); `yes_no` the leading
    "yes"/"no" of the answer (None when it has none); `labelled` the number of labelled people
    in the image (chance of a uniform pick is 1 / labelled); `about` the person a pose question
    asks about (label index) or None."""

    id: str
    image: str
    question: str
    category: str
    expected: int | str
    answer: str
    chosen: int
    count: int | None
    yes_no: str | None
    people: int
    confidence: float
    correct: bool
    labelled: int = 0
    about: int | None = None


def chosen_label(selected_box: Box | None, labels: Sequence[Box], iou_threshold: float = MATCH_IOU) -> int:
    """Label index of the selected box (highest IoU, at IoU >= `iou_threshold`), CHOSE_NOBODY
    when nothing was selected, CHOSE_UNLABELLED when the box matches no label."""
    if selected_box is None:
        return CHOSE_NOBODY
    best, best_iou = CHOSE_UNLABELLED, iou_threshold
    for j, lab in enumerate(labels):
        iou = box_iou(tuple(selected_box), tuple(lab))
        if iou >= best_iou and (best < 0 or iou > best_iou):
            best, best_iou = j, iou
    return best


def answer_count(answer: str) -> int | None:
    """The first number in `answer` (digits or an English number word up to twenty; "no" /
    "nobody" read as 0), None when there is none."""
    m = _NUMBER.search(answer.replace("no one", "noone"))
    if m is None:
        return None
    word = m.group(1).lower()
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def answer_yes_no(answer: str) -> str | None:
    """"yes" or "no" when the answer starts with that word, else None."""
    m = _YES_NO.match(answer)
    return m.group(1).lower() if m else None


def score(q: Question, r: Response, labels: Sequence[Box]) -> Outcome:
    """Score one response against question `q`, whose image has the labelled boxes `labels`."""
    chosen = chosen_label(r.selected_box, labels)
    count = answer_count(r.answer)
    yes_no = answer_yes_no(r.answer)
    if q.category in PERSON_CATEGORIES:
        correct = chosen == q.expected
    elif q.category == NO_MATCH:
        correct = chosen == CHOSE_NOBODY
    elif q.category == COUNTING:
        correct = count == q.expected
    else:
        correct = yes_no == q.expected
    return Outcome(q.id, q.image, q.question, q.category, q.expected, r.answer, chosen, count, yes_no,
                   r.people, float(r.confidence), bool(correct), len(labels), q.about)


def summarise(outcomes: Sequence[Outcome]) -> dict:
    """Figures over scored questions.

    Returns a dict: per_category {category: {n, correct, accuracy, refused, unlabelled, chance}}
    for every category present ("refused": selected nobody; "unlabelled": selected a box that
    matches no label; "chance": for person categories, the mean of 1 / labelled people, the
    accuracy of a uniform pick, else None); person_grounding {n, correct, accuracy, chance} over
    the person categories; no_match_refusal
    (fraction of no_match questions refused); counting_answer (fraction of counting answers
    with the right number); counting_people_found (fraction of counting questions where the
    pipeline returned the right number of people); pose_yes_no; pose_referent_chosen (fraction of
    pose questions whose selected person is the one asked about); distinct_answers; n;
    top_answers [(text, times)] (five most common)."""
    def frac(a: int, b: int) -> float:
        return a / b if b else float("nan")

    per: dict[str, dict] = {}
    for c in CATEGORIES:
        xs = [o for o in outcomes if o.category == c]
        if not xs:
            continue
        ok = sum(o.correct for o in xs)
        per[c] = {"n": len(xs), "correct": ok, "accuracy": frac(ok, len(xs)),
                  "refused": sum(o.chosen == CHOSE_NOBODY for o in xs),
                  "unlabelled": sum(o.chosen == CHOSE_UNLABELLED for o in xs),
                  "chance": _chance(xs) if c in PERSON_CATEGORIES else None}
    person = [o for o in outcomes if o.category in PERSON_CATEGORIES]
    counting = [o for o in outcomes if o.category == COUNTING]
    about = [o for o in outcomes if o.category == POSE and o.about is not None]
    answers = collections.Counter(o.answer for o in outcomes)
    return {
        "n": len(outcomes),
        "per_category": per,
        "person_grounding": {"n": len(person), "correct": sum(o.correct for o in person),
                             "accuracy": frac(sum(o.correct for o in person), len(person)),
                             "chance": _chance(person)},
        "no_match_refusal": per.get(NO_MATCH, {}).get("accuracy", float("nan")),
        "counting_answer": per.get(COUNTING, {}).get("accuracy", float("nan")),
        "counting_people_found": frac(sum(o.people == o.expected for o in counting), len(counting)),
        "pose_yes_no": per.get(POSE, {}).get("accuracy", float("nan")),
        "pose_referent_chosen": frac(sum(o.chosen == o.about for o in about), len(about)),
        "distinct_answers": len(answers),
        "top_answers": answers.most_common(5),
    }


def _chance(xs: Sequence[Outcome]) -> float:
    """Expected accuracy of picking one labelled person uniformly at random."""
    return sum(1.0 / o.labelled for o in xs if o.labelled) / len(xs) if xs else float("nan")


def format_table(s: dict) -> str:
    """A markdown table of `summarise`'s figures."""
    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.1%}"

    lines = ["| category | n | correct | accuracy | uniform pick | chose nobody | chose an unlabelled box |",
             "|---|---|---|---|---|---|---|"]
    for c, v in s["per_category"].items():
        lines.append(f"| {c} | {v['n']} | {v['correct']} | {v['accuracy']:.1%} | {pct(v['chance'])} | "
                     f"{v['refused']} | {v['unlabelled']} |")
    g = s["person_grounding"]
    lines.append(f"| all person categories | {g['n']} | {g['correct']} | {g['accuracy']:.1%} | "
                 f"{pct(g['chance'])} | | |")
    lines += [
        "",
        "| figure | value |", "|---|---|",
        f"| questions that match nobody, refused (selected -1) | {s['no_match_refusal']:.1%} |",
        f"| counting: right number in the answer | {s['counting_answer']:.1%} |",
        f"| counting: right number of people returned (perception) | {s['counting_people_found']:.1%} |",
        f"| pose yes/no answered right | {s['pose_yes_no']:.1%} |",
        f"| pose questions: the person asked about was selected | {s['pose_referent_chosen']:.1%} |",
        f"| distinct answer texts | {s['distinct_answers']} of {s['n']} |",
    ]
    for text, k in s["top_answers"]:
        lines.append(f"| - \"{text}\" | {k} times |")
    return "\n".join(lines)


def format_failures(outcomes: Sequence[Outcome]) -> str:
    """One line per wrong answer, grouped by category."""
    def who(o: Outcome) -> str:
        return {CHOSE_NOBODY: "nobody", CHOSE_UNLABELLED: "an unlabelled box"}.get(o.chosen, f"box {o.chosen}")

    lines = []
    for c in CATEGORIES:
        for o in (o for o in outcomes if o.category == c and not o.correct):
            lines.append(f"{c} {o.id} {o.image}: \"{o.question}\" expected {o.expected!r}, chose {who(o)} "
                         f"(conf {o.confidence:.2f}), answer \"{o.answer}\"")
    return "\n".join(lines)


# -- running the pipeline -------------------------------------------------------------------
def response_of(result) -> Response:
    """Reduce a core.types.PoseResult to a Response."""
    p = result.selected_person
    box = None if p is None or p.box is None else tuple(float(v) for v in p.box)
    return Response(answer=result.answer, selected_box=box, people=len(result.people),
                    confidence=0.0 if p is None else float(p.confidence))


def run(pipe, questions: Sequence[Question], labels: Sequence[LabelledImage], root: Path = REPO_ROOT) -> list[Outcome]:
    """Ask every question of `pipe` (a core.pipeline.PosePipeline) about its image and score it."""
    from chatpose_ros.perception.offline.eval_perception import load_image

    by_id = {im.id: im for im in labels}
    images: dict[str, object] = {}
    out = []
    for q in questions:
        item = by_id[q.image]
        if q.image not in images:
            images[q.image] = load_image(item, root)
        res = pipe.estimate(images[q.image], q.question)
        out.append(score(q, response_of(res), [p.box for p in item.people]))
    return out


def target_lines(perception, questions: Sequence[Question], labels: Sequence[LabelledImage],
                 root: Path = REPO_ROOT) -> dict[str, str | None]:
    """Question id -> the scene line (scene_words) of the person whose box best matches the
    expected label (IoU >= MATCH_IOU), None when perception found no such person; person
    categories only. `perception`: anything with see(image) -> core.scene.Scene."""
    from chatpose_ros.perception.offline.eval_perception import load_image
    from chatpose_ros.models.default.scene_words import PERSON_TOKENS, scene_words

    by_id = {im.id: im for im in labels}
    seen: dict[str, object] = {}
    out: dict[str, str | None] = {}
    for q in questions:
        if q.category not in PERSON_CATEGORIES:
            continue
        if q.image not in seen:
            scene = perception.see(load_image(by_id[q.image], root))
            seen[q.image] = (scene, scene_words(scene))
        scene, words = seen[q.image]
        # the line whose box best matches the expected label: chosen_label with the roles swapped
        k = chosen_label(by_id[q.image].people[q.expected].box, [scene.people[i].box for i in words.index])
        out[q.id] = f"{PERSON_TOKENS[k]} {words.people[k].line()}" if k >= 0 else None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Accuracy per category on hand-written questions about real photos.")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="question file (JSON)")
    p.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labelled images (JSON)")
    p.add_argument("--weights-dir", default="", help="default profile weights folder (default: the shipped ones)")
    p.add_argument("--profile", default="default", choices=("default", "reader"), help="which embedded profile answers")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (PipelineConfig.cpu_threads)")
    p.add_argument("--json", type=Path, default=Path("build/eval_questions.json"),
                   help="where to write every outcome and the figures")
    p.add_argument("--failures", action="store_true", help="also print every wrong answer")
    p.add_argument("--lines", action="store_true",
                   help="also print, per person question, the scene line the model read about the expected person")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.profiles import build_pipeline

    labels = load_labels(args.labels)
    questions = load_questions(args.questions, labels)
    pipe = build_pipeline(PipelineConfig(profile=args.profile, weights_dir=args.weights_dir, cpu_threads=args.threads))
    t = time.perf_counter()
    try:
        outcomes = run(pipe, questions, labels)
        model_id = pipe.model_id
        lines = target_lines(pipe.perception, questions, labels) if args.lines else {}
    finally:
        pipe.close()
    log.info("%d questions in %.0f s", len(outcomes), time.perf_counter() - t)
    s = summarise(outcomes)
    table = format_table(s)
    print(f"model {model_id}, {len(questions)} hand-written questions ({args.questions.name})")
    print(table)
    failures = format_failures(outcomes)
    if args.failures:
        print("\nwrong answers:\n" + failures)
    if lines:
        print("\nwhat the model read about the expected person (right / wrong):")
        for o in outcomes:
            if o.id in lines:
                print(f"{'right' if o.correct else 'WRONG'} {o.category} {o.id} \"{o.question}\": "
                      f"{lines[o.id] or 'not found by perception'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model_id": model_id, "summary": s, "table": table,
                                     "outcomes": [asdict(o) for o in outcomes]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
