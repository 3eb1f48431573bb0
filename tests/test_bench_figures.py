"""The executors bench's own figures (chatpose_ros/tools/bench.py), without ROS: /tf after its
~/pose (negative when /tf came first; a stamp with two outputs), CPU per process and the node's
child processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from chatpose_ros.tools.bench import CpuMeter, _children, _Recorder

pytestmark = pytest.mark.timeout(60)


def test_tf_after_pose_is_signed_and_paired_with_the_nearest_tf_of_its_stamp():
    rec = SimpleNamespace(
        tf=[(10.000, 1), (10.050, 2), (12.000, 3), (12.500, 3)],  # (arrival s, stamp): stamp 3 has two outputs
        pose=[(10.002, 1), (10.049, 2), (12.498, 3), (13.0, 4), (20.0, 1)])
    delays = _Recorder.tf_delays_ms(rec, 10.0, 13.0)
    assert delays == pytest.approx([-2.0, 1.0, 2.0])  # /tf first, /tf after, the second output's own /tf
    assert _Recorder.tf_delays_ms(rec, 15.0, 16.0) == []


def test_cpu_meter_counts_this_process_and_finds_its_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in _children(os.getpid())
        meter = CpuMeter({"self": os.getpid(), "child": child.pid}, threads_of=os.getpid())
        meter.start()
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
        procs, threads = meter.stop()
        assert procs["self"] >= 0.1 and procs["child"] < 0.1
        assert threads and threads[0] >= 0.1 and threads == sorted(threads, reverse=True)
    finally:
        child.kill()
        child.wait()
