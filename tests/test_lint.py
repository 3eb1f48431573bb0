"""The code base is ruff-clean (rules and line length in ruff.toml at the repository root)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINTED = ("chatpose_ros", "tests", "launch", "scripts")


def _ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_ruff_finds_nothing():
    res = _ruff("check", "--no-cache", "--output-format", "concise", *LINTED)
    assert res.returncode == 0, f"ruff findings (fix them, or `ruff check --fix`):\n{res.stdout}{res.stderr}"


def test_ruff_uses_the_repository_config_and_reports_findings():
    # An unused import and a 140-character line in a file under tests/: both must be reported.
    bad = "import os\n\nx = '" + "a" * 134 + "'\n"
    res = _ruff("check", "--no-cache", "--output-format", "concise", "--stdin-filename", "tests/lint_probe.py", "-", stdin=bad)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "F401" in res.stdout and "E501" in res.stdout, res.stdout


def test_library_code_may_not_print_or_grow_too_complex():
    # A print and a function of complexity 17 in a library file under chatpose_ros/core: both reported.
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(16))
    bad = "def f(x):\n    print(x)\n" + branches + "    return -1\n"
    res = _ruff("check", "--no-cache", "--output-format", "concise", "--stdin-filename", "chatpose_ros/core/lint_probe.py", "-",
                stdin=bad)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "T201" in res.stdout and "C901" in res.stdout, res.stdout
