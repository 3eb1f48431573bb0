"""Bad input never stalls the node (issue 21), with the node in a process of its own (the shipped
entry point, the pipeline's test double in it) over ROS 2 on loopback: 1000 bad inputs write at
most 16 kB of log, and with its stderr a full pipe nobody reads the node still answers a good
question afterwards and stops on SIGINT."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatpose_ros.tools.log_storm import node_command, run_storm
from conftest import STATE_DIR

pytestmark = pytest.mark.timeout(240)
FAKE_NODE = [sys.executable, str(Path(__file__).resolve().parent / "fake_node.py")]
LOG_BUDGET_BYTES = 16_000


def fake_node(state_dir: str) -> list[str]:
    return node_command(state_dir, FAKE_NODE, ("model_in_process:=true",))


def test_storm_of_1000_bad_inputs_writes_at_most_16_kb_of_log():
    figures = run_storm(1000, "file", rate_hz=400.0, answer_timeout_s=60.0, start_timeout_s=120.0,
                        node_cmd=fake_node, state_dir=str(STATE_DIR / "storm"), loopback=False)
    print(figures)
    assert figures["node_up"] and figures["answered_after_storm"], figures
    assert figures["log_bytes"] <= LOG_BUDGET_BYTES, figures
    assert figures["tracebacks"] == 0 and figures["publish_errors"] == 0, figures
    assert figures["exit_on_sigint"] and figures["exit_code"] == 0, figures


def test_node_answers_after_a_storm_with_its_stderr_never_read():
    figures = run_storm(1000, "unread", rate_hz=400.0, answer_timeout_s=60.0, start_timeout_s=120.0,
                        node_cmd=fake_node, state_dir=str(STATE_DIR / "storm"), loopback=False)
    print(figures)
    assert figures["node_up"] and figures["answered_after_storm"], figures
    assert figures["exit_on_sigint"], figures
