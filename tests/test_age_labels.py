"""The by-eye age labels (tests/data/age_labels.json) cover every labelled person of the five perception
label sets exactly once, hold only known values, and the per-set counts written in their description
are the file's own. No model is run and no image is read."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from real_sets import check_one_entry_per_person


DATA = Path(__file__).parent / "data"
AGE_LABELS = DATA / "age_labels.json"
SETS = ("perception_labels.json", "perception_labels2.json", "perception_labels3.json",
        "perception_labels4.json", "perception_labels5.json")
AGES = ("child", "teen", "adult", "cannot_tell")  # the order of the counts in the description
SEEN = ("full", "upper", "head", "little")
COUNTS = re.compile(r"(\S+) (\d+)/(\d+)/(\d+)/(\d+)[;.]")


@pytest.fixture(scope="module")
def age_labels() -> dict:
    return json.loads(AGE_LABELS.read_text())


def test_the_file_has_its_parts(age_labels):
    assert set(age_labels) == {"description", "protocol", "labels"}
    assert age_labels["protocol"].strip() and age_labels["description"].strip()
    assert tuple(age_labels["labels"]) == SETS


@pytest.mark.parametrize("set_name", SETS)
def test_every_labelled_person_has_exactly_one_entry(age_labels, set_name):
    check_one_entry_per_person(age_labels["labels"][set_name], set_name)


@pytest.mark.parametrize("set_name", SETS)
def test_values_are_known(age_labels, set_name):
    for image_id, people in age_labels["labels"][set_name].items():
        for k, person in enumerate(people):
            assert set(person) == {"age", "seen"}, f"{image_id} {k}"
            assert person["age"] in AGES, f"{image_id} {k}: {person['age']!r}"
            assert person["seen"] in SEEN, f"{image_id} {k}: {person['seen']!r}"


def test_counts_in_the_description_match_the_file(age_labels):
    written = {name: tuple(int(v) for v in counts) for name, *counts in COUNTS.findall(age_labels["description"])}
    assert set(written) == {*SETS, "all"}
    total: Counter[str] = Counter()
    for set_name in SETS:
        counts = Counter(p["age"] for people in age_labels["labels"][set_name].values() for p in people)
        total += counts
        assert written[set_name] == tuple(counts[a] for a in AGES), set_name
    assert written["all"] == tuple(total[a] for a in AGES)


def test_children_are_labelled_where_the_images_show_them(age_labels):
    """A file of adults only could not tune a child check: the photo of five children is all children."""
    assert {p["age"] for p in age_labels["labels"]["perception_labels4.json"]["realesrgan_children"]} == {"child"}
