"""rviz/chatpose.rviz loads as YAML with the displays a user needs, on the node's real topics,
and is installed and launchable (rviz2 itself is not installable here)."""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

from chatpose_ros.core.config import NodeConfig

ROOT = Path(__file__).resolve().parents[1]
NODE_NS = "/chatpose_node"


def _displays() -> dict[str, dict]:
    cfg = yaml.safe_load((ROOT / "rviz" / "chatpose.rviz").read_text())
    displays = cfg["Visualization Manager"]["Displays"]
    return cfg, {d["Class"].split("/")[-1]: d for d in displays}


def test_rviz_file_has_image_markers_tf_and_target_pose_on_the_nodes_topics():
    cfg, displays = _displays()
    assert {"Image", "MarkerArray", "TF", "Pose"} <= set(displays)
    assert all(d["Class"].startswith("rviz_default_plugins/") for d in displays.values())
    assert displays["Image"]["Topic"]["Value"] == NodeConfig().image_topic
    assert displays["Image"]["Topic"]["Reliability Policy"] == "Best Effort"  # cameras publish sensor-data QoS
    assert displays["MarkerArray"]["Topic"]["Value"] == f"{NODE_NS}/markers"
    assert displays["Pose"]["Topic"]["Value"] == f"{NODE_NS}/target_pose"
    assert all(d["Enabled"] for d in displays.values())
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == NodeConfig().frame_id


def test_marker_namespaces_are_the_nodes():
    from chatpose_ros.ros.markers import NAMESPACES

    _, displays = _displays()
    assert set(displays["MarkerArray"]["Namespaces"]) == set(NAMESPACES)


def test_rviz_folder_is_installed_and_the_launch_file_starts_rviz_on_request():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    install = [line for line in cmake.splitlines() if "install(DIRECTORY" in line and "share/" in line]
    assert any(" rviz" in line for line in install), install
    src = (ROOT / "launch" / "chatpose.launch.py").read_text()
    consts = {n.value for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"rviz", "rviz2", "chatpose.rviz", "-d"} <= consts
