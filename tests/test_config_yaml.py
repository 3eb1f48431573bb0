"""config/default.yaml, the ROS parameters and the config dataclasses agree."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from chatpose_ros.core.config import NodeConfig, PipelineConfig, from_mapping
from chatpose_ros.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_defaults_equal_dataclass_defaults():
    params = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())["chatpose_node"]["ros__parameters"]
    expected = {f.name: f.default for f in dataclasses.fields(NodeConfig)}
    expected.update({"model." + f.name: f.default for f in dataclasses.fields(PipelineConfig)})
    assert params == expected


def test_every_field_has_help():
    for cls in (NodeConfig, PipelineConfig):
        for f in dataclasses.fields(cls):
            assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} lacks help text"


def test_unknown_values_and_keys_are_refused():
    with pytest.raises(ConfigError, match="profile"):
        PipelineConfig(profile="gpt5")
    with pytest.raises(ConfigError, match="unknown"):
        from_mapping(NodeConfig, {"imagetopic": "/x"})
    with pytest.raises(ConfigError, match="must be"):
        from_mapping(NodeConfig, {"query_queue_size": "four"})
    assert from_mapping(NodeConfig, {"max_image_age_s": 2}).max_image_age_s == 2.0


def test_build_pipeline_refuses_unknown_profile():
    from chatpose_ros.profiles import build_pipeline

    cfg = PipelineConfig()
    object.__setattr__(cfg, "profile", "nonsense")
    with pytest.raises(ConfigError, match="unknown profile"):
        build_pipeline(cfg)
