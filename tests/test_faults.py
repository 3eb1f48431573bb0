"""Faults in model files: missing or corrupt weights fail the lifecycle transition cleanly, and
no loader ever unpickles untrusted data."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ModelLoadError
from chatpose_ros.profiles import build_pipeline
from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR

PKG = Path(__file__).resolve().parents[1] / "chatpose_ros"


def test_no_loader_unpickles_untrusted_data():
    bad = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if name == "torch.load" and kw.get("weights_only") != "True":
                bad.append(f"{path.name}:{node.lineno} torch.load without weights_only=True")
            if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load"):
                bad.append(f"{path.name}:{node.lineno} {name}")
            if name.endswith("np.load") and kw.get("allow_pickle") == "True":
                bad.append(f"{path.name}:{node.lineno} np.load(allow_pickle=True)")
    assert not bad, bad


@pytest.fixture
def weights_copy(tmp_path):
    dst = tmp_path / "weights"
    shutil.copytree(DEFAULT_WEIGHTS_DIR, dst)
    return dst


@pytest.mark.parametrize("victim", ["regressor.safetensors", "llm_adapter.safetensors"])
@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_default_profile_bad_weights_raise_typed_error(weights_copy, victim, damage):
    f = weights_copy / victim
    if damage == "missing":
        f.unlink()
    elif damage == "garbage":
        f.write_bytes(b"\x00not a safetensors file" * 10)
    else:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    with pytest.raises(ModelLoadError) as info:
        build_pipeline(PipelineConfig(profile="default", weights_dir=str(weights_copy)))
    assert victim in str(info.value) or str(weights_copy) in str(info.value)


def test_node_configure_fails_cleanly_on_corrupt_default_weights(ros_harness, weights_copy):
    (weights_copy / "regressor.safetensors").write_bytes(b"corrupt")
    h = ros_harness(build_pipeline, autostart=False, **{"model.weights_dir": str(weights_copy)})
    assert h.node.autostart() is False
    assert "regressor.safetensors" in h.node.model_state
    assert h.node._state_machine.current_state[1] == "unconfigured"
