"""Question families of the synthetic generator, held-out wordings, and grounding ablations.

Offline tooling (`chatpose-eval-default --families`, i.e. `evaluate.py --families`); runtime code
never imports this module. It changes nothing the training uses: `queries.py` draws exactly the
queries it drew before.

- **Family tags.** :data:`TEMPLATE_FAMILIES` tags every template of :mod:`queries` (wrappers,
  colour, space, posture, speculative, counting and text-to-pose phrasings) with its family;
  :func:`parse_query` reads a generated grounding query back into (family, meaning, slot), e.g.
  "Where is the leftmost person?" -> ("space_side", "leftmost", None).
- **Held-out families** (never in training): the same scenes and targets as the in-distribution
  samples, re-worded by :func:`reword`: new phrasings of each meaning (:data:`HELD_OUT_TEMPLATES`,
  "whoever is standing on the left", "the {c}-shirted person", "the person crouched down") inside
  new wrappers (:data:`HELD_OUT_WRAPPERS`); and held-out words: the training templates with a
  colour synonym no template has (:data:`COLOUR_SYNONYMS`: "crimson", "navy", "gray").
  Speculative phrasings have no re-wording and are left out of the held-out rows (their count
  is reported).
- **Ablations** (in-distribution samples): the grounding head reads the LLM's last-layer states
  of the person tokens, of the pose token and (pooled) of the question, plus a direct path over
  the person features. Zeroing the person-token states, the pose state, both, or every LLM state
  the head reads (people, pose and question) shows how much the LLM decides; shuffling the
  question's words shows whether the word order matters.

    report = family_report(llm, n=200)   # dict; format_family_table(report) -> markdown
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from chatpose_ros.models.default.offline import queries as Q

log = logging.getLogger(__name__)

# -- family tags of the training templates ------------------------------------------------------
SINGLE_PERSON_QUERY = "the person"  # what scene_queries asks of a one-person scene with no other query
SPACE_FAMILY = {"left2": "space_side", "right2": "space_side", "leftmost": "space_side", "rightmost": "space_side",
                "middle": "space_middle", "nearest": "space_depth", "farthest": "space_depth"}


def _families() -> dict[str, str]:
    out: dict[str, str] = {}
    out.update(dict.fromkeys(Q.WRAPPERS, "wrapper"))
    out.update(dict.fromkeys(Q.UPPER_TEMPLATES, "upper_colour"))
    out.update(dict.fromkeys(Q.LOWER_TEMPLATES, "lower_colour"))
    for key, phrases in Q.SPACE_TEMPLATES.items():
        out.update(dict.fromkeys(phrases, SPACE_FAMILY[key]))
    out.update(dict.fromkeys(Q.POSTURE_TEMPLATES, "posture"))
    out[SINGLE_PERSON_QUERY] = "single_person"
    out.update(dict.fromkeys(Q.SPECULATIVE, "speculative"))
    out.update(dict.fromkeys(Q.COUNT_QUESTIONS, "count"))
    out.update(dict.fromkeys(Q.TEXT_POSE_TEMPLATES, "text_pose"))
    out.update(dict.fromkeys(Q.SPECULATIVE_POSE, "speculative_pose"))
    return out


# template text (as in queries.py) -> family name
TEMPLATE_FAMILIES: dict[str, str] = _families()

# -- held-out wordings: new phrasings of the same meanings (none is in queries.py) ---------------
HELD_OUT_WRAPPERS: tuple[str, ...] = ("Could you show me {x}?", "I'd like the pose of {x}.", "Find {x} for me.",
                                      "Point out {x}.", "{X}, if you can see them.")
HELD_OUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    # appearance, {c} = colour name
    "upper": ("whoever has a {c} top on", "the {c}-shirted person", "the one whose shirt is {c}"),
    "lower": ("the person whose trousers are {c}", "the one in {c} bottoms", "whoever has {c} legwear"),
    # space
    "left2": ("whoever is standing on the left", "the left one"),
    "right2": ("whoever is standing on the right", "the right one"),
    "leftmost": ("the person at the left end", "the one at the far left end of the group"),
    "rightmost": ("the person at the right end", "the one at the far right end of the group"),
    "middle": ("the one between the other two", "the person standing in between"),
    "nearest": ("the one closest to us", "the one right at the front"),
    "farthest": ("the one furthest back", "whoever stands furthest off"),
    "only": ("whoever is in the picture", "the only one here"),
    # posture labels (posecodes.LABELS)
    "raising the left arm": ("the person with the left hand up", "the one lifting the left arm"),
    "raising the right arm": ("the person with the right hand up", "the one lifting the right arm"),
    "raising both arms": ("the person with both hands up", "the one holding both arms in the air"),
    "arms stretched out": ("the one with the arms out to the sides", "the person holding the arms wide"),
    "crouching": ("the person crouched down", "the one who is crouched low"),
    "squatting": ("the person in a squat", "the one down in a squat"),
    "sitting": ("the person who is seated", "the one sitting down"),
    "kicking": ("the one kicking out a leg", "the person in the middle of a kick"),
    "bending forward": ("the person bent over", "the one bent forwards at the waist"),
    "standing straight": ("the person standing up straight", "the one standing upright"),
    "leaning": ("the person tilted to one side", "the one who leans over"),
}
# colour name of the generator -> synonyms no template has (held-out words)
COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet"), "blue": ("navy", "cobalt"), "green": ("emerald",), "yellow": ("golden", "lemon"),
    "black": ("jet-black",), "white": ("snow-white",), "orange": ("tangerine",), "purple": ("violet",),
    "pink": ("rose",), "grey": ("gray", "charcoal"),
}


def _template_regex(template: str, slot: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(re.escape("{" + slot + "}"), "(.+?)"))


_WRAPPER_RES = [(w, re.compile(re.escape(w).replace(re.escape("{x}"), "(.+)").replace(re.escape("{X}"), "(.+)")))
                for w in Q.WRAPPERS if w != "{x}"]
_SPACE_KEY = {p: k for k, ps in Q.SPACE_TEMPLATES.items() for p in ps}
_COLOUR_RES = [("upper", t, _template_regex(t, "c")) for t in Q.UPPER_TEMPLATES] + \
              [("lower", t, _template_regex(t, "c")) for t in Q.LOWER_TEMPLATES]
_POSTURE_RES = [(t, _template_regex(t, "l")) for t in Q.POSTURE_TEMPLATES]
_SPECULATIVE = {p[0].upper() + p[1:]: p for p in Q.SPECULATIVE}


def unwrap(query: str) -> str:
    """The description inside a generated query ("Where is the leftmost person?" -> "the
    leftmost person"); a query ending in "?" that no wrapper made comes back lower-cased first."""
    for w, rx in _WRAPPER_RES:
        m = rx.fullmatch(query)
        if m:
            x = m.group(1)
            return x[0].lower() + x[1:] if "{X}" in w else x
    return query[0].lower() + query[1:] if query.endswith("?") else query


def parse_query(query: str) -> tuple[str, str, str | None] | None:
    """A generated grounding query -> (family, meaning, slot): ("upper_colour", "upper", "red"),
    ("space_side", "leftmost", None), ("posture", "sitting", None), ("single_person", "only",
    None) or ("speculative", phrase, None); None when it is no query the generator makes."""
    if query in _SPECULATIVE:
        return "speculative", _SPECULATIVE[query], None
    x = unwrap(query)
    if x == SINGLE_PERSON_QUERY:
        return "single_person", "only", None
    if x in _SPACE_KEY:
        key = _SPACE_KEY[x]
        return SPACE_FAMILY[key], key, None
    for region, t, rx in _COLOUR_RES:
        m = rx.fullmatch(x)
        if m:
            return TEMPLATE_FAMILIES[t], region, m.group(1)
    for t, rx in _POSTURE_RES:
        m = rx.fullmatch(x)
        if m and m.group(1) in HELD_OUT_TEMPLATES:
            return "posture", m.group(1), None
    return None


def _pick(rng: np.random.Generator, xs: Sequence[str]) -> str:
    return xs[int(rng.integers(len(xs)))]


def reword(query: str, rng: np.random.Generator) -> str | None:
    """The same request in a held-out wording (new phrasing and wrapper); None for speculative
    phrasings and for text the generator does not make."""
    parsed = parse_query(query)
    if parsed is None or parsed[0] == "speculative":
        return None
    _, meaning, slot = parsed
    x = _pick(rng, HELD_OUT_TEMPLATES[meaning]).format(c=slot or "")
    return _pick(rng, HELD_OUT_WRAPPERS).format(x=x, X=x[0].upper() + x[1:])


def with_colour_synonym(query: str, rng: np.random.Generator) -> str | None:
    """A colour query of the generator with its colour word replaced by a synonym no template has;
    None for other queries."""
    parsed = parse_query(query)
    if parsed is None or parsed[1] not in ("upper", "lower"):
        return None
    colour = parsed[2]
    return re.sub(rf"\b{re.escape(colour)}\b", _pick(rng, COLOUR_SYNONYMS[colour]), query, count=1)


def shuffle_words(query: str, rng: np.random.Generator) -> str:
    """The query's words in a random order (another order whenever the query has two distinct words)."""
    words = query.split()
    if len(set(words)) < 2:
        return query
    while True:
        out = [words[i] for i in rng.permutation(len(words))]
        if out != words:
            return " ".join(out)


# -- grounding with ablations ---------------------------------------------------------------------
ABLATIONS: tuple[str, ...] = ("none", "people_states_zeroed", "pose_state_zeroed", "people_and_pose_zeroed",
                              "all_llm_states_zeroed")


@torch.no_grad()
def grounding_predictions(llm, samples: Sequence, ablation: str = "none", batch: int = 16) -> list[int]:
    """Index of the chosen person for every sample (teacher-forced answer, as evaluate.py does),
    with the LLM states the grounding head reads zeroed as `ablation` (one of ABLATIONS) says."""
    from chatpose_ros.models.default.offline.train_llm import collate

    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    out = []
    for i in range(0, len(samples), batch):
        part = list(samples[i:i + batch])
        b = collate(llm, part)
        h = llm.backbone(llm.embed(b["ids"], b["feats"], b["counts"]), b["att"])
        for j, s in enumerate(part):
            ids, hj = b["ids"][j], h[j].clone()
            hp = hj[int((ids == llm.pose_token_id).nonzero()[0])].clone()
            if ablation in ("people_states_zeroed", "people_and_pose_zeroed", "all_llm_states_zeroed"):
                hj[ids == llm.person_token_id] = 0.0
            if ablation in ("pose_state_zeroed", "people_and_pose_zeroed", "all_llm_states_zeroed"):
                hp = torch.zeros_like(hp)
            if ablation == "all_llm_states_zeroed":
                hj[llm.question_positions(ids)] = 0.0
            feats = torch.from_numpy(np.asarray(s.features, np.float32))
            out.append(int(llm.ground_sequence(ids, hj, hp, feats).argmax()))
    return out


def _accuracy(llm, samples: Sequence, ablation: str = "none") -> dict:
    pred = grounding_predictions(llm, samples, ablation)
    hits = [int(p == s.target) for p, s in zip(pred, samples)]
    per: dict[str, list[int]] = {}
    for h, s in zip(hits, samples):
        per.setdefault(s.kind, []).append(h)
    return {"n": len(samples), "accuracy": float(np.mean(hits)) if hits else float("nan"),
            "chance": float(np.mean([1.0 / s.features.shape[0] for s in samples])) if samples else float("nan"),
            "per_kind": {k: {"n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(per.items())}}


def _rewritten(samples: Sequence, rewrite: Callable[[str, np.random.Generator], str | None],
               rng: np.random.Generator) -> tuple[list, list]:
    """(originals that have a rewrite, their rewritten copies)."""
    orig, new = [], []
    for s in samples:
        q = rewrite(s.query, rng)
        if q is not None:
            orig.append(s)
            new.append(replace(s, query=q))
    return orig, new


def family_report(llm, n: int = 200, seed: int = 1234, features=None) -> dict:
    """Grounding on `n` held-out-scene samples (mocap test split, the seed of evaluate.py's
    synthetic grounding): in distribution, re-worded into held-out families, with held-out colour
    words (each beside the in-distribution accuracy of the same samples), and the ablations.

    Returns {"in_distribution", "held_out_wording", "held_out_wording_same_samples",
    "held_out_colour_words", "held_out_colour_words_same_samples", "ablations": {name: ...},
    "unparsed": queries no family matched, "speculative_left_out": count}."""
    from chatpose_ros.models.default.offline.mocap import load_mocap

    stream = Q.SampleStream(load_mocap("test"), seed, features=features)
    samples = [stream.grounding() for _ in range(n)]
    rng = np.random.default_rng(seed)
    unparsed = sorted({s.query for s in samples if parse_query(s.query) is None})
    if unparsed:
        log.warning("%d generated queries match no family (queries.py changed?): %s", len(unparsed), unparsed[:5])
    r: dict = {"in_distribution": _accuracy(llm, samples), "unparsed": unparsed,
               "speculative_left_out": sum(s.kind == "speculative" for s in samples)}
    orig, new = _rewritten(samples, reword, rng)
    r["held_out_wording_same_samples"] = _accuracy(llm, orig)
    r["held_out_wording"] = _accuracy(llm, new)
    r["held_out_wording_examples"] = [(a.query, b.query) for a, b in zip(orig[:6], new[:6])]
    orig, new = _rewritten(samples, with_colour_synonym, rng)
    r["held_out_colour_words_same_samples"] = _accuracy(llm, orig)
    r["held_out_colour_words"] = _accuracy(llm, new)
    r["ablations"] = {a: _accuracy(llm, samples, a) for a in ABLATIONS[1:]}
    shuffled = [replace(s, query=shuffle_words(s.query, rng)) for s in samples]
    r["ablations"]["question_shuffled"] = _accuracy(llm, shuffled)
    return r


def format_family_table(r: dict) -> str:
    """Markdown table of :func:`family_report`."""
    def row(name: str, v: dict, beside: dict | None = None) -> str:
        same = f" (same samples in distribution: {beside['accuracy']:.1%})" if beside else ""
        return f"| {name} (n={v['n']}) | {v['accuracy']:.1%}{same} | {v['chance']:.1%} |"

    ind = r["in_distribution"]
    lines = ["| synthetic grounding, held-out scenes | accuracy | uniform pick |", "|---|---|---|",
             row("in distribution (training templates and words)", ind)]
    lines += [f"| - {k} (n={v['n']}) | {v['accuracy']:.1%} | |" for k, v in ind["per_kind"].items()]
    lines.append(row("held-out wording families (new phrasings and wrappers; speculative left out: "
                     f"{r['speculative_left_out']})", r["held_out_wording"], r["held_out_wording_same_samples"]))
    lines += [f"| - {k} (n={v['n']}) | {v['accuracy']:.1%} | |" for k, v in r["held_out_wording"]["per_kind"].items()]
    lines.append(row("held-out colour words (synonyms, training templates)", r["held_out_colour_words"],
                     r["held_out_colour_words_same_samples"]))
    for name, v in r["ablations"].items():
        lines.append(row(f"ablation: {name.replace('_', ' ')}", v))
    return "\n".join(lines)
