"""House rule 1: the core, perception and the models never import rclpy or ROS messages."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "chatpose_ros"
ROS_MODULES = {"rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
               "builtin_interfaces", "rcl_interfaces", "lifecycle_msgs", "chatpose_ros.msg", "chatpose_ros.action",
               "chatpose_ros.ros"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_and_models_do_not_import_ros():
    offenders = []
    for sub in ("core", "perception", "grounding", "models"):
        for path in (PKG / sub).rglob("*.py"):
            for mod in _imports(path):
                if any(mod == r or mod.startswith(r + ".") for r in ROS_MODULES):
                    offenders.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not offenders, offenders


def test_importing_core_loads_no_ros_and_no_heavy_optional_libraries():
    code = ("import sys, chatpose_ros.core.pipeline, chatpose_ros.core.body, chatpose_ros.core.viz, chatpose_ros.cli;"
            "bad=[m for m in ('rclpy','tensorrt','onnxruntime','mediapipe','transformers') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
