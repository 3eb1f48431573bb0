"""Dependencies point one way: core <- perception <- profiles (models) <- registry (chatpose_ros.profiles)
<- ros / cli / tools. Checked on the import statements of the source files (top level and inside
functions)."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "chatpose_ros"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the file's package
                base = list(path.relative_to(PKG.parent).with_suffix("").parts[:-node.level])
                out.add(".".join(base + [node.module]))
            else:
                out.add(node.module)
    return out


def _offenders(folder: str, forbidden: tuple[str, ...], skip: str = "") -> list[str]:
    return [f"{p.relative_to(PKG)} imports {m}" for p in sorted((PKG / folder).rglob("*.py")) for m in _imports(p)
            if any(m == f or m.startswith(f + ".") for f in forbidden) and not (skip and skip in p.parts)]


def test_core_imports_no_profile_registry_or_front_end():
    assert not _offenders("core", ("chatpose_ros.perception", "chatpose_ros.grounding", "chatpose_ros.models",
                                   "chatpose_ros.profiles", "chatpose_ros.ros", "chatpose_ros.cli", "chatpose_ros.tools"))


def test_perception_and_grounding_import_no_profile_registry_or_front_end():
    for folder in ("perception", "grounding"):
        assert not _offenders(folder, ("chatpose_ros.models", "chatpose_ros.profiles", "chatpose_ros.ros",
                                       "chatpose_ros.cli", "chatpose_ros.tools"))


def test_profiles_import_no_registry_or_front_end():
    # offline tools (training, evaluation) are front ends of their profile: they may build the
    # pipeline through the registry, exactly as the node does
    assert not _offenders("models", ("chatpose_ros.profiles", "chatpose_ros.ros", "chatpose_ros.cli", "chatpose_ros.tools"),
                          skip="offline")


def test_ros_layer_imports_no_profile_and_not_the_cli():
    assert not _offenders("ros", ("chatpose_ros.perception", "chatpose_ros.grounding", "chatpose_ros.models", "chatpose_ros.cli",
                                  "chatpose_ros.tools"))


def test_registry_is_the_only_way_to_a_profile_from_the_front_ends():
    cli = _imports(PKG / "cli.py")
    assert not any(m.startswith("chatpose_ros.models") for m in cli), cli


def _offline(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "chatpose_ros" and ("offline" in parts or parts[:2] == ["chatpose_ros", "tools"])


def test_runtime_imports_no_offline_code_or_tools():
    """Training, data generation and evaluation live in `offline` packages (of a profile, of
    perception) or in chatpose_ros/tools: no module outside them imports them (the node, the CLI
    and the profiles' runtime load none of them)."""
    runtime = [p for p in sorted(PKG.rglob("*.py")) if "offline" not in p.parts and p.relative_to(PKG).parts[0] != "tools"]
    assert any(p.parts[-2:] == ("perception", "perception.py") for p in runtime)
    bad = [f"{p.relative_to(PKG)} imports {m}" for p in runtime for m in _imports(p) if _offline(m)]
    assert not bad, bad


def test_offline_check_sees_offline_modules():
    """The check can fail: an offline module and a tool are recognised as such, runtime ones not."""
    assert _offline("chatpose_ros.perception.offline.eval_perception") and _offline("chatpose_ros.tools.bench")
    assert _offline("chatpose_ros.models.default.offline.train")
    assert not _offline("chatpose_ros.perception.perception") and not _offline("chatpose_ros.core.session")
