"""ROS parameters derived from the core's config dataclasses (names, types, descriptions)."""
from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from chatpose_ros.core.config import from_mapping


def declare_from_dataclass(node: Node, cls: type, prefix: str = "") -> None:
    """Declare one ROS parameter per field of config dataclass `cls`, with its help text as
    description and its default as default value; read-only unless the field is in
    `cls.RUNTIME` (the node then takes changes through its set-parameters callback)."""
    runtime = getattr(cls, "RUNTIME", frozenset())
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        desc = f.metadata.get("help", "")
        if choices:
            desc += f" One of: {', '.join(map(str, choices))}."
        desc += " Can be set at run time." if f.name in runtime else " Read-only: read at configure."
        node.declare_parameter(prefix + f.name, f.default,
                               ParameterDescriptor(description=desc, read_only=f.name not in runtime))


def runtime_changes(cls: type, current: Any, params: list, prefix: str = "") -> tuple[Any, list[str]]:
    """`current` (a `cls`) with the run-time parameters among `params` (rclpy Parameters) applied,
    and the names changed. Raises ConfigError when a value is invalid (wrong type, out of range)."""
    runtime = getattr(cls, "RUNTIME", frozenset())
    changes = {p.name[len(prefix):]: p.value for p in params
               if p.name.startswith(prefix) and p.name[len(prefix):] in runtime}
    if not changes:
        return current, []
    return from_mapping(cls, {**dataclasses.asdict(current), **changes}), sorted(changes)


def read_dataclass(node: Node, cls: type, prefix: str = "") -> Any:
    """Build `cls` from the node's current parameter values (ConfigError when invalid)."""
    values = {f.name: node.get_parameter(prefix + f.name).value for f in dataclasses.fields(cls)}
    return from_mapping(cls, values)
