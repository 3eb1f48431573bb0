"""Compositional grounding: a question parsed into a typed request (`parse`), open-vocabulary
scorers evaluated on every person in view (`facts`, `colours`, `words`), and decisions with answers
that say what was checked (`ground`). ROS-free; the `grounded` profile composes it with perception
and the pose regressor."""
