"""Offline code of the grounding parser: the question generator, training and evaluation of the LLM tagger.
The runtime modules (one level up) never import this package."""
