"""Issue 24's third frozen held-out question set (tests/data/real_questions3.json over the images of
tests/data/perception_labels3.json, stored in tests/data/people3/) is well-formed, unchanged since it
was written, held out from the first two sets, and not made of generator questions. No model is run."""
from __future__ import annotations

from real_sets import MINIMUM, HeldOutSet, SetChecks


class TestHeldOut3(SetChecks):
    # the least each kind of question the set must hold: set 2's, and at least 55 "which person"
    # questions and 90 in all (issue 24's brief for the third set)
    SET = HeldOutSet(3, "held_out3", MINIMUM, min_where=12, min_questions=90, min_person=55, max_side=1280,
                     max_bytes=6_000_000, min_images=10, min_people=40)
