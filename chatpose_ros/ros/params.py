"""ROS parameters derived from the core's config dataclasses (names, types, descriptions)."""
from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from chatpose_ros.core.config import from_mapping


def declare_from_dataclass(node: Node, cls: type, prefix: str = "") -> None:
    """Declare one ROS parameter per field of config dataclass `cls`, with its help text as
    description and its default as default value."""
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        desc = f.metadata.get("help", "")
        if choices:
            desc += f" One of: {', '.join(map(str, choices))}."
        node.declare_parameter(prefix + f.name, f.default, ParameterDescriptor(description=desc, read_only=True))


def read_dataclass(node: Node, cls: type, prefix: str = "") -> Any:
    """Build `cls` from the node's current parameter values (ConfigError when invalid)."""
    values = {f.name: node.get_parameter(prefix + f.name).value for f in dataclasses.fields(cls)}
    return from_mapping(cls, values)
