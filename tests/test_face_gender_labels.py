"""The by-eye gender labels (tests/data/face_gender_labels.json) cover every labelled person of the seven perception
label sets exactly once, hold only known values, the per-set counts written in their description are the file's
own, and eval_faces can read every set. No model is run and no image is read."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from real_sets import check_one_entry_per_person

from chatpose_ros.perception.offline import eval_faces

DATA = Path(__file__).parent / "data"
GENDER_LABELS = DATA / "face_gender_labels.json"
SETS = ("perception_labels.json", "perception_labels2.json", "perception_labels3.json",
        "perception_labels4.json", "perception_labels5.json", "perception_labels6.json", "perception_labels7.json")
LABEL = re.compile(r"[mf?][+-]")
COUNTS = re.compile(r"(\S+) (\d+)/(\d+)/(\d+)/(\d+)[;.]")  # man/woman/cannot_tell/face_visible


@pytest.fixture(scope="module")
def gender_labels() -> dict:
    return json.loads(GENDER_LABELS.read_text())


def test_the_file_has_its_parts(gender_labels):
    assert set(gender_labels) == {"description", "protocol", "sets"}
    assert gender_labels["protocol"].strip() and gender_labels["description"].strip()
    assert tuple(gender_labels["sets"]) == SETS


@pytest.mark.parametrize("set_name", SETS)
def test_every_labelled_person_has_exactly_one_entry(gender_labels, set_name):
    labels = gender_labels["sets"][set_name]
    for im in check_one_entry_per_person(labels, set_name):
        for k, value in enumerate(labels[im.id]):
            assert LABEL.fullmatch(value), f"{set_name} {im.id} {k}: {value!r}"


def test_counts_in_the_description_match_the_file(gender_labels):
    written = {name: tuple(int(v) for v in counts)
               for name, *counts in COUNTS.findall(gender_labels["description"])}
    assert set(written) == {*SETS, "all"}
    total: Counter[str] = Counter()
    for set_name in SETS:
        values = [v for people in gender_labels["sets"][set_name].values() for v in people]
        counts = Counter(v[0] for v in values) + Counter(v[1] for v in values)
        total += counts
        assert written[set_name] == (counts["m"], counts["f"], counts["?"], counts["+"]), set_name
    assert written["all"] == (total["m"], total["f"], total["?"], total["+"])


def test_eval_faces_reads_every_set():
    assert sorted(eval_faces.SETS.values()) == sorted(SETS)
