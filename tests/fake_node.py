"""chatpose-node (chatpose_ros.ros.main, the shipped entry point) with the test double of the
pipeline, for tests that run the node in a process of its own without loading a model:

    python tests/fake_node.py --state-dir DIR --ros-args -p model_in_process:=true ...
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from fakes import fake_pipeline  # noqa: E402

from chatpose_ros.ros.main import main  # noqa: E402


if __name__ == "__main__":
    sys.exit(main(pipeline_factory=fake_pipeline))
