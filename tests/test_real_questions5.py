"""Issue 24's fifth frozen held-out question set (tests/data/real_questions5.json over the images of
tests/data/perception_labels5.json, stored in tests/data/people5/) is well-formed, unchanged since it
was written, held out from the first four sets (images and questions), and not made of generator
questions (the default profile's scene generator and grounding templates, and the grounded parser's
training generator). No model is run."""
from __future__ import annotations

from real_sets import MINIMUM, HeldOutSet, NewWordingChecks


class TestHeldOut5(NewWordingChecks):
    # the least each kind of question the set must hold (issue 24's brief for the fifth set): set 2's,
    # with at least 10 counting, 10 no-match, 12 yes/no and 7 clarify questions, 65 "which person" and 100
    # in all; 8-10 new images with at least 40 labelled people in all
    SET = HeldOutSet(5, "held_out5", dict(MINIMUM, counting=10, no_match=10, yes_no=12, clarify=7), min_where=12,
                     min_questions=100, min_person=65, max_side=1280, max_bytes=1_500_000, min_images=8, min_people=40,
                     max_people=7)
