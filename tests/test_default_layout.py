"""The default profile's runtime modules and the shared perception package never import the
default profile's offline package (mocap, synthetic scenes and queries, training, evaluation):
checked by reading every import statement (also those inside functions) and by importing the
runtime modules with the offline package blocked."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "chatpose_ros" / "models" / "default"
PERCEPTION = ROOT / "chatpose_ros" / "perception"
OFFLINE_PACKAGE = "chatpose_ros.models.default.offline"
# every package of offline code a runtime module could reach for
OFFLINE_PACKAGES = (OFFLINE_PACKAGE, "chatpose_ros.perception.offline", "chatpose_ros.tools")
# what the node and the CLI load at run time
RUNTIME = ("pipeline", "llm", "person_features", "reader_pipeline", "reader", "scene_words")


def _runtime_files() -> list[Path]:
    """The default profile's runtime modules and every module of the shared perception package."""
    return [DEFAULT / f"{m}.py" for m in RUNTIME if (DEFAULT / f"{m}.py").is_file()] + sorted(PERCEPTION.glob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, package: str | None = None) -> list[str]:
    """Absolute names of every module `path` imports (relative imports resolved against
    `package`, by default the package `path` sits in)."""
    package = package or ".".join(path.relative_to(ROOT).parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


def test_every_top_level_module_is_classified():
    """A new module beside the runtime ones must be listed as runtime here (or go offline)."""
    names = {p.stem for p in DEFAULT.glob("*.py")} - {"__init__"}
    unknown = names - set(RUNTIME)
    assert not unknown, f"classify {sorted(unknown)} as runtime (RUNTIME) or move them to {OFFLINE_PACKAGE}"


def test_runtime_sources_do_not_import_offline_code():
    files = _runtime_files()
    assert {p.stem for p in files} >= {"pipeline", "llm", "regressor", "keypoints", "person_features", "tracking",
                                       "perception", "perception_attributes", "scene_input"}
    bad = {p.name: [m for m in _imported_modules(p) if m.startswith(OFFLINE_PACKAGES)] for p in files}
    assert not any(bad.values()), f"runtime modules import offline code: {bad}"


def test_runtime_imports_with_offline_package_blocked():
    """Import every runtime module (and build nothing) in a fresh interpreter where importing an
    offline package (or the tools) raises."""
    mods = [_module(p) for p in _runtime_files()]
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == o or name.startswith(o + ".") for o in {OFFLINE_PACKAGES!r}):
                    raise ImportError("offline code imported at run time: " + name)
                return None

        sys.meta_path.insert(0, Block())
        for m in {mods!r}:
            try:
                importlib.import_module(m)
            except ImportError as exc:
                if "offline code" in str(exc):
                    raise
                print("skipped", m, exc)  # an optional backend missing is not this test's concern
        assert not any(k.startswith({OFFLINE_PACKAGES!r}) for k in sys.modules), sorted(sys.modules)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_blocking_catches_an_offline_import(tmp_path):
    """The AST scan sees an import inside a function (the check can fail)."""
    f = tmp_path / "bad.py"
    f.write_text("def f():\n    from .offline.train_llm import ADAPTER_FILE\n    return ADAPTER_FILE\n")
    assert f"{OFFLINE_PACKAGE}.train_llm" in _imported_modules(f, package="chatpose_ros.models.default")


@pytest.mark.parametrize("module", ["train", "evaluate", "train_regressor", "train_llm", "train_reader", "eval_reader",
                                    "evaluate_reader", "eval_questions"])
def test_offline_entry_points_import(module):
    """The console entry points (setup.py) and make targets point at importable modules."""
    import importlib

    mod = importlib.import_module(f"{OFFLINE_PACKAGE}.{module}")
    assert callable(getattr(mod, "main"))
