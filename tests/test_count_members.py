"""tests/data/count_members.json: for every counting item of the six frozen question sets, the labelled
people it counts (eval_grounding's "counts given found"). Every counting item has an entry, nothing else
does, and each list is exactly `expected` distinct indices into the image's labelled people (or null with
a note). No model is run."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from chatpose_ros.perception.offline.eval_perception import load_labels
from chatpose_ros.tools import eval_grounding as eg

MEMBERS = Path(__file__).parent / "data" / "count_members.json"


def _set(name: str) -> tuple[list[dict], dict[str, int]]:
    qfile, lfile = eg.SETS[name]
    return json.loads(qfile.read_text())["questions"], {li.id: len(li.people) for li in load_labels(lfile)}


def test_the_eval_reads_this_file():
    assert eg.COUNT_MEMBERS.resolve() == MEMBERS.resolve()


@pytest.mark.parametrize("name", sorted(eg.SETS))
def test_every_counting_item_has_its_members(name):
    doc = json.loads(MEMBERS.read_text())
    questions, n_people = _set(name)
    members = doc["sets"][name]
    by_id = {q["id"]: q for q in questions}
    counting = {q["id"] for q in questions if q["category"] == "counting"}
    assert counting, f"{name} has counting items"
    assert set(members) == counting, f"{name}: not exactly the counting items: {sorted(set(members) ^ counting)}"
    for qid, m in members.items():
        q = by_id[qid]
        if m is None:
            assert doc["notes"][name][qid], f"{name} {qid} null without a reason"
            continue
        assert len(m) == len(set(m)) == q["expected"], (name, qid, m, q["expected"])
        assert all(type(i) is int and 0 <= i < n_people[q["image"]] for i in m), (name, qid, m)
    for qid in doc.get("notes", {}).get(name, {}):
        assert qid in members, f"{name}: a note for {qid}, which is no counting item"
    assert eg.count_members(name, questions, n_people, MEMBERS) == members  # the eval's own check agrees


def test_no_set_is_missing_or_extra():
    assert set(json.loads(MEMBERS.read_text())["sets"]) == set(eg.SETS)


def _broken(tmp_path, name: str, change) -> Path:
    doc = copy.deepcopy(json.loads(MEMBERS.read_text()))
    change(doc["sets"][name], doc.setdefault("notes", {}).setdefault(name, {}))
    path = tmp_path / "members.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("change, match", [
    (lambda m, n: m.pop("v097"), "not exactly the counting items"),
    (lambda m, n: m.update(v001=[0]), "not exactly the counting items"),        # a person item
    (lambda m, n: m.update(v097=[0, 1]), "not 3 distinct indices"),              # one short
    (lambda m, n: m.update(v097=[0, 1, 1]), "not 3 distinct indices"),           # a duplicate
    (lambda m, n: m.update(v097=[0, 1, 6]), "not 3 distinct indices"),           # past the six people
    (lambda m, n: m.update(v097=[0, 1, -1]), "not 3 distinct indices"),
    (lambda m, n: m.update(v097=None), "null without a note"),
])
def test_a_broken_file_is_refused(tmp_path, change, match):
    questions, n_people = _set("held_out6")
    assert any(q["id"] == "v001" and q["category"] != "counting" for q in questions)
    with pytest.raises(ValueError, match=match):
        eg.count_members("held_out6", questions, n_people, _broken(tmp_path, "held_out6", change))


def test_null_with_a_note_is_accepted(tmp_path):
    questions, n_people = _set("held_out6")

    def change(m, n):
        m["v097"] = None
        n["v097"] = "counts something other than labelled people"

    got = eg.count_members("held_out6", questions, n_people, _broken(tmp_path, "held_out6", change))
    assert got["v097"] is None and got["v096"] == [0, 1, 2, 3, 4, 5]


def test_a_set_the_file_lacks_gives_no_members(tmp_path):
    path = tmp_path / "members.json"
    path.write_text(json.dumps({"sets": {}}))
    assert eg.count_members("held_out6", *_set("held_out6"), path) == {}
