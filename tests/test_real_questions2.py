"""Issue 24's frozen held-out question set (tests/data/real_questions2.json over the images of
tests/data/perception_labels2.json) is well-formed, unchanged since it was written, held out from
the first real set, and not made of generator questions. No model is run."""
from __future__ import annotations

from real_sets import MINIMUM, HeldOutSet, SetChecks


class TestHeldOut2(SetChecks):
    # MINIMUM is this set's brief; at least 12 position + ordinal + distance and 90 questions in all
    SET = HeldOutSet(2, "held_out", MINIMUM, min_where=12, min_questions=90, min_person=0, max_side=800,
                     max_bytes=1_500_000, min_images=8, min_people=25)
