"""Fault campaign in the suite (issue 21; the bench mode runs it larger: chatpose_ros/tools/fault_campaign.py):
lifecycle cycles leak no thread, file, shared-memory block, process or memory; a query storm
keeps its queue bounded and reports every drop."""
from __future__ import annotations

import pytest

from chatpose_ros.tools.fault_campaign import leaks, lifecycle_cycles, query_storm
from fakes import FakePipeline, fake_pipeline

pytestmark = pytest.mark.timeout(240)


def _ask_and_wait(h, i):
    h.publish_and_wait(__import__("numpy").zeros((30, 40, 3), "uint8"))
    n = h.node.stats["queries_answered"] + 1
    h.ask(f"cycle {i}")
    h.wait_until(lambda: h.node.stats["queries_answered"] >= n, what="the cycle's answer")


def _serving(h):
    """What each lifecycle cycle does once active: wait for the connections, ask, wait for the answer."""
    def serve(node, i):
        h.wait_for_connections()
        _ask_and_wait(h, i)
    return serve


def test_ten_lifecycle_cycles_leak_nothing(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, autostart=False)
    figures = lifecycle_cycles(h.node, 10, _serving(h))
    print(figures)
    assert not figures["failed"] and not leaks(figures), figures


def test_lifecycle_cycles_with_a_worker_process_leak_no_process_or_shared_memory(ros_harness):
    h = ros_harness(fake_pipeline, autostart=False, model_in_process=False)
    figures = lifecycle_cycles(h.node, 3, _serving(h))
    print(figures)
    assert not figures["failed"] and not leaks(figures), figures
    assert figures["after_last"]["children"] == 0 and figures["after_last"]["shm_blocks"] == figures["after_first"]["shm_blocks"]


def test_query_storm_keeps_the_queue_bounded_and_reports_every_drop(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(delay_s=0.02), track_after_query=False, query_queue_size=4,
                    output_qos_depth=1000)
    figures = query_storm(h, queries=300, seconds=3.0)
    print(figures)
    assert figures["received"] > 0 and figures["max_queue"] <= 4
    assert figures["answered"] + figures["dropped"] + figures["invalid"] == figures["received"], figures
    assert figures["drops_on_status"] == figures["dropped"] > 0, figures
