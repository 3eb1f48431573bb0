"""Issue 24's fourth frozen held-out question set (tests/data/real_questions4.json over the images of
tests/data/perception_labels4.json, stored in tests/data/people4/) is well-formed, unchanged since it
was written, held out from the first three sets (images and questions), and not made of generator
questions (the default profile's scene generator and grounding templates, and the grounded parser's
training generator). No model is run."""
from __future__ import annotations

from real_sets import MINIMUM, HeldOutSet, NewWordingChecks


class TestHeldOut4(NewWordingChecks):
    # the least each kind of question the set must hold (issue 24's brief for the fourth set): set 2's,
    # with at least 8 no-match, 10 yes/no and 5 clarify questions, 60 "which person" and 85 in all
    SET = HeldOutSet(4, "held_out4", dict(MINIMUM, no_match=8, yes_no=10, clarify=5), min_where=12, min_questions=85,
                     min_person=60, max_side=1280, max_bytes=1_500_000, min_images=8, min_people=40, max_people=7)
