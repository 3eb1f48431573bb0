"""Offline tooling of the perception stack (evaluation on the labelled real photos): never
imported at run time (tests/test_default_layout.py guards this)."""
