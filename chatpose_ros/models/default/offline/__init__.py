"""Offline code of the default profile: mocap retargeting, synthetic scene and query
generators, training and evaluation. The runtime modules (one level up) never import this
package; ``tests/test_default_layout.py`` guards that."""
